import crypto from 'node:crypto';
import type { Kysely, Transaction } from 'kysely';
import {
  GENESIS_HASH,
  EventSchemaError,
  MamoriError,
  inventoryHash,
  parseEventPayload,
  verifyChain,
  type EnrollRequest,
  type EnrollResponse,
  type InventorySnapshot,
  type Segment,
  type StoredEvent,
  systemClock,
  type Clock,
} from '../shared';
import { randomToken, sameHash, tokenHash, type SigningKey } from './crypto';
import type { DbEngine } from './db/connect';
import type { AgentsTable, Database } from './db/schema';
import { inventoryColumns } from './export/ledger';
import { currentPolicy } from './policies';

/**
 * An untrusted string bound for a text column. PostgreSQL's text cannot hold NUL (the whole batch
 * would fail, and the agent would retry it forever), so NUL becomes U+FFFD on both engines; the
 * event's own payload keeps it, escaped in its JSON.
 */
export function dbText(text: string): string {
  return text.includes('\u0000') ? text.replace(/\u0000/g, '\ufffd') : text;
}

/** Makes an enrollment token for a segment; only its hash is stored. */
export async function createEnrollmentToken(db: Kysely<Database>, opts: { segment: Segment; ttlMs: number; uses: number }, clock: Clock = systemClock): Promise<string> {
  const token = randomToken('enr_', 24);
  const now = () => clock.now().toISOString();
  await db
    .insertInto('enrollment_tokens')
    .values({ hash: tokenHash(token), segment: opts.segment, expires_at: new Date(clock.now().getTime() + opts.ttlMs).toISOString(), uses_left: opts.uses, created_at: now() })
    .execute();
  return token;
}

/**
 * Enrolls a terminal: spends one use of the token (atomically, so two collectors cannot both
 * spend the last one) and creates the agent with a secret token and an unlock secret.
 * @throws MamoriError token_invalid when the token is unknown, expired or used up.
 */
export async function enroll(db: Kysely<Database>, key: SigningKey, request: EnrollRequest, clock: Clock = systemClock): Promise<EnrollResponse> {
  const hash = tokenHash(request.token);
  const now = () => clock.now().toISOString();
  return db.transaction().execute(async (trx) => {
    const spent = await trx
      .updateTable('enrollment_tokens')
      .set((eb) => ({ uses_left: eb('uses_left', '-', 1) }))
      .where('hash', '=', hash)
      .where('uses_left', '>', 0)
      .where('expires_at', '>', now())
      .executeTakeFirst();
    if (Number(spent.numUpdatedRows) !== 1) {
      throw new MamoriError('token_invalid', 'the enrollment token is unknown, expired or used up');
    }
    const { segment } = await trx.selectFrom('enrollment_tokens').select('segment').where('hash', '=', hash).executeTakeFirstOrThrow();
    const agentId = crypto.randomUUID();
    const agentToken = randomToken('agt_');
    const unlockSecret = crypto.randomBytes(32).toString('base64');
    await trx
      .insertInto('agents')
      .values({
        id: agentId,
        hostname: dbText(request.hostname),
        machine_id: dbText(request.machineId),
        segment,
        token_hash: tokenHash(agentToken),
        unlock_secret: unlockSecret,
        enrolled_at: now(),
        last_seen: now(),
        ack_seq: 0,
        last_hash: GENESIS_HASH,
        chain_broken_seq: null,
        policy_version: null,
        enforcement: null,
        agent_version: null,
        last_user: null,
      })
      .execute();
    const policy = await currentPolicy(trx, segment as Segment);
    return { agentId, agentToken, segment: segment as Segment, policy, collectorPublicKey: key.publicKey, unlockSecret };
  });
}

/**
 * Checks that the bearer token belongs to the agent named in the path and marks it seen.
 * @throws MamoriError unauthorized (no or wrong token) or forbidden (another agent's token).
 */
export async function authenticateAgent(db: Kysely<Database>, agentId: string, bearer: string | undefined, clock: Clock = systemClock): Promise<AgentsTable> {
  if (!bearer) throw new MamoriError('unauthorized', 'missing bearer token');
  const hash = tokenHash(bearer);
  const agent = await db.selectFrom('agents').selectAll().where('id', '=', agentId).executeTakeFirst();
  if (agent && sameHash(agent.token_hash, hash)) {
    await db.updateTable('agents').set({ last_seen: clock.now().toISOString() }).where('id', '=', agentId).execute();
    return agent;
  }
  // A valid token of another agent is a terminal writing under someone else's id.
  const other = await db.selectFrom('agents').select('id').where('token_hash', '=', hash).executeTakeFirst();
  if (other) throw new MamoriError('forbidden', 'this token belongs to another agent');
  throw new MamoriError('unauthorized', 'unknown agent or wrong token');
}

/** Agent fields that follow from the events it sent. */
function derivedFields(events: StoredEvent[]): Partial<AgentsTable> {
  const out: Partial<AgentsTable> = {};
  for (const e of events) {
    const p = e.payload as Record<string, unknown>;
    if (e.type === 'login.success' && typeof p.user === 'string') out.last_user = dbText(p.user);
    if (e.type === 'agent.started' && typeof p.version === 'string') out.agent_version = dbText(p.version);
    if (e.type === 'policy.applied' && typeof p.version === 'number') {
      out.policy_version = p.version;
      if (typeof p.enforcement === 'string') out.enforcement = p.enforcement;
    }
    if (e.type === 'agent.warning' && p.component === 'enforcement') out.enforcement = 'degraded';
  }
  return out;
}

async function recordSideTables(trx: Transaction<Database>, agentId: string, events: StoredEvent[], now: string): Promise<void> {
  for (const e of events) {
    const p = e.payload as Record<string, unknown>;
    if (e.type === 'incident.reported') {
      await trx
        .insertInto('incidents')
        .values({
          receipt: dbText(String(p.receipt)),
          agent_id: agentId,
          seq: e.seq,
          category: String(p.category),
          description: dbText(String(p.description)),
          occurred_at: typeof p.occurredAt === 'string' ? p.occurredAt : null,
          contact: typeof p.contact === 'string' ? dbText(p.contact) : null,
          context: JSON.stringify(p.context ?? {}),
          reported_at: e.at,
          status: 'new',
          updated_at: now,
          updated_by: null,
        })
        .onConflict((oc) => oc.column('receipt').doNothing())
        .execute();
    }
    if (e.type === 'exception.requested') {
      await trx
        .insertInto('exceptions')
        .values({
          request_id: dbText(String(p.requestId)),
          agent_id: agentId,
          request_code: dbText(String(p.requestCode)),
          device: JSON.stringify(p.device ?? {}),
          reason: dbText(String(p.reason)),
          minutes: Number(p.minutes),
          requested_at: e.at,
          status: 'pending',
          decided_at: null,
          decided_by: null,
          expires_at: null,
        })
        .onConflict((oc) => oc.column('request_id').doNothing())
        .execute();
    }
    if (e.type === 'exception.granted' && typeof p.requestId === 'string') {
      await trx
        .updateTable('exceptions')
        .set({ status: 'granted', expires_at: String(p.expiresAt) })
        .where('request_id', '=', dbText(p.requestId))
        .where('agent_id', '=', agentId)
        .execute();
    }
  }
}

/**
 * Stores a batch of events from one agent, all or nothing, and returns the new acknowledged seq.
 * Seqs at or below the acknowledged one are already stored: they are skipped when their hash
 * matches, and refused when it does not (a rewritten history).
 * @throws MamoriError bad_request (not ascending, invalid payload), seq_conflict (a gap, with the
 *   expected seq), chain_broken (hash chain does not verify; the terminal is flagged).
 */
export async function ingestEvents(db: Kysely<Database>, engine: DbEngine, agentId: string, events: StoredEvent[], clock: Clock = systemClock): Promise<number> {
  for (let i = 1; i < events.length; i++) {
    if (events[i]!.seq !== events[i - 1]!.seq + 1) throw new MamoriError('bad_request', `events must be in ascending seq without gaps (at seq ${events[i]!.seq})`);
  }
  for (const e of events) {
    try {
      parseEventPayload(e.type, e.payload);
    } catch (err) {
      if (err instanceof EventSchemaError) throw new MamoriError('validation_failed', `event seq ${e.seq}: ${err.message}`);
      throw err;
    }
  }
  let brokenAt: number | null = null;
  try {
    return await db.transaction().execute(async (trx) => {
      let query = trx.selectFrom('agents').select(['ack_seq', 'last_hash']).where('id', '=', agentId);
      // Two collectors on one PostgreSQL serialise one agent's batches on its row.
      if (engine === 'postgres') query = query.forUpdate();
      const agent = await query.executeTakeFirstOrThrow();
      const ack = Number(agent.ack_seq);
      const known = events.filter((e) => e.seq <= ack);
      const fresh = events.filter((e) => e.seq > ack);
      if (known.length > 0) {
        const stored = await trx
          .selectFrom('events')
          .select(['seq', 'hash'])
          .where('agent_id', '=', agentId)
          .where('seq', '>=', known[0]!.seq)
          .where('seq', '<=', known[known.length - 1]!.seq)
          .execute();
        const byseq = new Map(stored.map((r) => [Number(r.seq), r.hash]));
        const rewritten = known.find((e) => byseq.has(e.seq) && byseq.get(e.seq) !== e.hash);
        if (rewritten) {
          brokenAt = rewritten.seq;
          throw new MamoriError('chain_broken', `event seq ${rewritten.seq} differs from the one already stored`, { seq: rewritten.seq });
        }
      }
      if (fresh.length === 0) return ack;
      if (fresh[0]!.seq !== ack + 1) {
        throw new MamoriError('seq_conflict', `expected seq ${ack + 1}, got ${fresh[0]!.seq}`, { expectedSeq: ack + 1 });
      }
      const broken = verifyChain(fresh, { seq: ack, hash: agent.last_hash });
      if (broken) {
        brokenAt = broken.seq;
        throw new MamoriError('chain_broken', `hash chain broken at seq ${broken.seq} (${broken.reason.replace(/_/g, ' ')})`, { seq: broken.seq });
      }
      const receivedAt = clock.now().toISOString();
      // Chunks keep each statement under SQLite's and PostgreSQL's parameter limits.
      for (let i = 0; i < fresh.length; i += 100) {
        await trx
          .insertInto('events')
          .values(
            fresh.slice(i, i + 100).map((e) => ({
              agent_id: agentId,
              seq: e.seq,
              at: e.at,
              type: e.type,
              payload: JSON.stringify(e.payload),
              prev_hash: e.prevHash,
              hash: e.hash,
              received_at: receivedAt,
            })),
          )
          .onConflict((oc) => oc.columns(['agent_id', 'seq']).doNothing())
          .execute();
      }
      await recordSideTables(trx, agentId, fresh, receivedAt);
      const last = fresh[fresh.length - 1]!;
      await trx
        .updateTable('agents')
        .set({ ...derivedFields(fresh), ack_seq: last.seq, last_hash: last.hash, last_seen: receivedAt })
        .where('id', '=', agentId)
        .execute();
      return last.seq;
    });
  } finally {
    if (brokenAt !== null) {
      // Outside the rolled-back batch: the flag must stay even though the events do not.
      await db.updateTable('agents').set({ chain_broken_seq: brokenAt }).where('id', '=', agentId).where('chain_broken_seq', 'is', null).execute();
    }
  }
}

/** Stores a snapshot as the latest, and in the history when it differs from the previous one. */
export async function storeInventory(db: Kysely<Database>, agentId: string, snapshot: InventorySnapshot, clock: Clock = systemClock): Promise<void> {
  const hash = inventoryHash(snapshot);
  const json = JSON.stringify(snapshot);
  const ledger = JSON.stringify(inventoryColumns(snapshot));
  const receivedAt = clock.now().toISOString();
  await db.transaction().execute(async (trx) => {
    const previous = await trx.selectFrom('inventory_latest').select('hash').where('agent_id', '=', agentId).executeTakeFirst();
    await trx
      .insertInto('inventory_latest')
      .values({ agent_id: agentId, hash, snapshot: json, received_at: receivedAt, ledger })
      .onConflict((oc) => oc.column('agent_id').doUpdateSet({ hash, snapshot: json, received_at: receivedAt, ledger }))
      .execute();
    if (previous?.hash !== hash) {
      await trx.insertInto('inventory_history').values({ agent_id: agentId, hash, snapshot: json, received_at: receivedAt }).execute();
    }
    await trx.updateTable('agents').set({ hostname: snapshot.hostname ? dbText(snapshot.hostname) : undefined, last_seen: receivedAt }).where('id', '=', agentId).execute();
  });
}
