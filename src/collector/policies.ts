import type { Kysely } from 'kysely';
import { Policy, SEGMENTS, defaultPolicyInput, systemClock, type Clock, type PolicyInput, type PolicyResponse, type Segment } from '../shared';
import { audit, type Actor } from './admins';
import { keyRotations, type SigningKey } from './crypto';
import type { Database } from './db/schema';

/** Creates version 1 of each segment's default policy where the segment has none. */
export async function ensureDefaultPolicies(db: Kysely<Database>, key: SigningKey, clock: Clock = systemClock): Promise<void> {
  for (const segment of SEGMENTS) {
    const existing = await db.selectFrom('policies').select('version').where('segment', '=', segment).executeTakeFirst();
    if (existing) continue;
    const doc = key.sign({ ...defaultPolicyInput(segment), version: 1, issuedAt: clock.now().toISOString() });
    await db
      .insertInto('policies')
      .values({ segment, version: 1, document: JSON.stringify(doc), created_at: doc.issuedAt, created_by: 'system' })
      .onConflict((oc) => oc.columns(['segment', 'version']).doNothing())
      .execute();
  }
}

/** The signed policy in force for a segment. */
export async function currentPolicy(db: Kysely<Database>, segment: Segment): Promise<Policy> {
  const row = await db.selectFrom('policies').select('document').where('segment', '=', segment).orderBy('version', 'desc').limit(1).executeTakeFirstOrThrow();
  return Policy.parse(JSON.parse(row.document));
}

/**
 * What `GET /api/v1/agents/{id}/policy` answers: the segment's current policy, the signed statement
 * that it is current now, and the key rotations an agent pinned to an older key follows.
 */
export async function policyForAgent(db: Kysely<Database>, key: SigningKey, segment: Segment, clock: Clock = systemClock): Promise<PolicyResponse> {
  const policy = await currentPolicy(db, segment);
  return { ...policy, freshness: key.freshness(segment, policy.version, clock.now()), rotations: await keyRotations(db) };
}

/** Every version of a segment's policy, newest first. */
export async function policyHistory(db: Kysely<Database>, segment: Segment): Promise<{ policy: Policy; createdBy: string }[]> {
  const rows = await db.selectFrom('policies').select(['document', 'created_by']).where('segment', '=', segment).orderBy('version', 'desc').execute();
  return rows.map((r) => ({ policy: Policy.parse(JSON.parse(r.document)), createdBy: r.created_by }));
}

/**
 * An admin's policy change, from the API or the console: the next version, signed, and its audit
 * entry (`policy.change`, with the policy before and after) in one transaction. The version is the
 * next free one, so two collectors saving at once get two versions rather than one lost write.
 */
export async function applyPolicyChange(
  db: Kysely<Database>,
  key: SigningKey,
  input: PolicyInput,
  actor: Actor,
  clock: Clock = systemClock,
): Promise<{ before: Policy; after: Policy }> {
  const body = (p: Policy) => ({ removableMedia: p.removableMedia, syncIntervalSeconds: p.syncIntervalSeconds, incidentContact: p.incidentContact });
  for (let attempt = 0; attempt < 5; attempt++) {
    const saved = await db.transaction().execute(async (trx) => {
      const before = await currentPolicy(trx, input.segment);
      const after = key.sign({ ...input, version: before.version + 1, issuedAt: clock.now().toISOString() });
      const result = await trx
        .insertInto('policies')
        .values({ segment: input.segment, version: after.version, document: JSON.stringify(after), created_at: after.issuedAt, created_by: actor.username })
        .onConflict((oc) => oc.columns(['segment', 'version']).doNothing())
        .executeTakeFirst();
      if (Number(result.numInsertedOrUpdatedRows ?? 0) !== 1) return null;
      await audit(
        trx,
        actor,
        'policy.change',
        input.segment,
        { fromVersion: before.version, toVersion: after.version, before: body(before), after: body(after) },
        clock,
      );
      return { before, after };
    });
    if (saved) return saved;
  }
  throw new Error('the policy changed under us five times; try again');
}
