import crypto from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import { GENESIS_HASH, MamoriError, checkpointSigningPayload, verifyChain, type ChainBreak, type ChainCheckpoint, type Clock } from '../../shared';
import { audit, type Actor } from '../admins';
import type { CollectorContext } from '../context';
import type { Database } from '../db/schema';

// Retention at the collector (docs/design.md#retention): events older than the period are pruned
// oldest first, per terminal, each batch in one transaction with the signed checkpoint the
// terminal's stored chain then starts from. Audit entries are never pruned here, so they are
// kept at least as long as events.

/** The longest period `retention set` takes. */
export const MAX_RETENTION_YEARS = 100;
/** Events deleted per transaction: short enough that ingest of the same terminal barely waits. */
export const PRUNE_BATCH = 2000;

export interface RetentionSetting {
  /** Years events are kept; null keeps everything (the default). */
  years: number | null;
  updatedAt: string | null;
  updatedBy: string | null;
}

/** The events retention period. */
export async function getRetention(db: Kysely<Database>): Promise<RetentionSetting> {
  const row = await db.selectFrom('retention_settings').selectAll().where('name', '=', 'events').executeTakeFirst();
  return row ? { years: Number(row.years), updatedAt: row.updated_at, updatedBy: row.updated_by } : { years: null, updatedAt: null, updatedBy: null };
}

/**
 * Sets (or with null clears) the events retention period, audited `retention.set` in the same
 * transaction.
 * @throws MamoriError validation_failed for anything but a whole number of years from 1 to 100.
 */
export async function setRetention(db: Kysely<Database>, actor: Actor, years: number | null, clock: Clock): Promise<void> {
  if (years !== null && (!Number.isSafeInteger(years) || years < 1 || years > MAX_RETENTION_YEARS)) {
    throw new MamoriError('validation_failed', `retention.events: a whole number of years from 1 to ${MAX_RETENTION_YEARS}, not '${years}'`);
  }
  const at = clock.now().toISOString();
  await db.transaction().execute(async (trx) => {
    const before = await getRetention(trx);
    if (years === null) await trx.deleteFrom('retention_settings').where('name', '=', 'events').execute();
    else {
      await trx
        .insertInto('retention_settings')
        .values({ name: 'events', years, updated_at: at, updated_by: actor.username })
        .onConflict((oc) => oc.column('name').doUpdateSet({ years, updated_at: at, updated_by: actor.username }))
        .execute();
    }
    await audit(trx, actor, 'retention.set', 'events', { years, before: before.years }, clock);
  });
}

/** The time before which events are pruned: `years` calendar years before now. */
export function retentionCutoff(now: Date, years: number): Date {
  const cutoff = new Date(now.getTime());
  cutoff.setUTCFullYear(cutoff.getUTCFullYear() - years);
  return cutoff;
}

/** Public keys that ever signed for this collector: the current one and every one a rotation names. */
async function trustedKeys(db: Kysely<Database>): Promise<Set<string>> {
  const keys = await db.selectFrom('keys').select('public_key').execute();
  const rotations = await db.selectFrom('key_rotations').select(['previous_public_key', 'public_key']).execute();
  return new Set([...keys.map((k) => k.public_key), ...rotations.flatMap((r) => [r.previous_public_key, r.public_key])].filter(Boolean));
}

function signatureValid(checkpoint: ChainCheckpoint, publicKey: string, signature: string): boolean {
  try {
    const key = crypto.createPublicKey({ key: Buffer.from(publicKey, 'base64'), format: 'der', type: 'spki' });
    return crypto.verify(null, Buffer.from(checkpointSigningPayload(checkpoint), 'utf8'), key, Buffer.from(signature, 'base64'));
  } catch {
    return false;
  }
}

/** A terminal's checkpoint as stored, or undefined when nothing was pruned. */
export async function checkpointOf(db: Kysely<Database>, agentId: string) {
  const row = await db.selectFrom('chain_checkpoints').selectAll().where('agent_id', '=', agentId).executeTakeFirst();
  return (
    row && {
      checkpoint: { agentId: row.agent_id, seq: Number(row.seq), hash: row.hash, at: row.at },
      prunedAt: row.pruned_at,
      publicKey: row.public_key,
      signature: row.signature,
    }
  );
}

/**
 * Where verification of a terminal's stored chain starts: after its checkpoint when retention
 * pruned events, else at the beginning. A checkpoint whose signature does not verify with a key
 * of this collector is a break at its seq (`checkpoint_invalid`).
 */
export async function chainStart(db: Kysely<Database>, agentId: string): Promise<{ seq: number; hash: string } | { broken: ChainBreak }> {
  const stored = await checkpointOf(db, agentId);
  if (!stored) return { seq: 0, hash: GENESIS_HASH };
  const trusted = await trustedKeys(db);
  if (!trusted.has(stored.publicKey) || !signatureValid(stored.checkpoint, stored.publicKey, stored.signature)) {
    return { broken: { seq: stored.checkpoint.seq, reason: 'checkpoint_invalid' } };
  }
  return { seq: stored.checkpoint.seq, hash: stored.checkpoint.hash };
}

/** What retention keeps of a terminal, for its console page: events from `fromSeq`, pruned at `prunedAt`. */
export async function keptSince(db: Kysely<Database>, agentId: string): Promise<{ fromSeq: number; before: string; prunedAt: string } | null> {
  const stored = await checkpointOf(db, agentId);
  return stored ? { fromSeq: stored.checkpoint.seq + 1, before: stored.checkpoint.at, prunedAt: stored.prunedAt } : null;
}

/** One terminal's outcome of a retention pass. */
export interface PruneResult {
  agentId: string;
  pruned: number;
  /** The seq the stored chain now starts after (0: nothing pruned ever). */
  checkpointSeq: number;
  /** Why pruning stopped early: the stored chain does not verify, so no checkpoint may vouch for it. */
  broken?: ChainBreak;
}

/**
 * The highest forward order every enabled destination that sends events has settled, or null
 * when none does: an event not yet forwarded is not pruned.
 */
async function forwardedUpTo(db: Kysely<Database>): Promise<number | null> {
  const rows = await db.selectFrom('forward_destinations').select('event_cursor').where('enabled', '=', 1).where('send_events', '=', 1).execute();
  return rows.length === 0 ? null : Math.min(...rows.map((r) => Number(r.event_cursor)));
}

interface PruneStep {
  agentId: string;
  cutoff: string;
  forwarded: number | null;
  batch: number;
}

/**
 * Prunes one batch of a terminal's oldest events received before the cutoff, with its checkpoint,
 * in one transaction. The batch is verified first: a checkpoint only ever vouches for a chain that
 * verified up to it.
 * @returns how many events went, or the break that stopped it.
 */
async function pruneBatch(ctx: CollectorContext, step: PruneStep): Promise<{ pruned: number; seq: number; broken?: ChainBreak }> {
  return ctx.db.transaction().execute(async (trx) => {
    // A write first: it locks the agent row on PostgreSQL (serialising pruning with ingest of the
    // terminal and with other collectors' passes) and takes SQLite's write lock before anything is
    // read, so a pass beside another writer (`retention run` beside `collector serve`) waits for
    // it instead of failing with SQLITE_BUSY when its read snapshot goes stale.
    await sql`UPDATE agents SET id = id WHERE id = ${step.agentId}`.execute(trx);
    const start = await chainStart(trx, step.agentId);
    if ('broken' in start) return { pruned: 0, seq: start.broken.seq, broken: start.broken };
    const rows = await trx.selectFrom('events').selectAll().where('agent_id', '=', step.agentId).orderBy('seq').limit(step.batch).execute();
    const old = [];
    for (const r of rows) {
      if (r.received_at >= step.cutoff) break;
      if (step.forwarded !== null && (r.forward_order === null || Number(r.forward_order) > step.forwarded)) break;
      old.push({ seq: Number(r.seq), at: r.at, type: r.type, payload: JSON.parse(r.payload) as unknown, prevHash: r.prev_hash, hash: r.hash });
    }
    if (old.length === 0) return { pruned: 0, seq: start.seq };
    const broken = verifyChain(old, start);
    if (broken) return { pruned: 0, seq: start.seq, broken };
    const last = old[old.length - 1]!;
    const checkpoint: ChainCheckpoint = { agentId: step.agentId, seq: last.seq, hash: last.hash, at: last.at };
    const row = {
      seq: last.seq,
      hash: last.hash,
      at: last.at,
      pruned_at: ctx.clock.now().toISOString(),
      public_key: ctx.key.publicKey,
      signature: ctx.key.checkpoint(checkpoint),
    };
    await trx.deleteFrom('events').where('agent_id', '=', step.agentId).where('seq', '<=', last.seq).execute();
    await trx
      .insertInto('chain_checkpoints')
      .values({ agent_id: step.agentId, ...row })
      .onConflict((oc) => oc.column('agent_id').doUpdateSet(row))
      .execute();
    return { pruned: old.length, seq: last.seq };
  });
}

/** Who prunes when no admin asked: the daily job. */
export const RETENTION_ACTOR: Actor = { username: 'system:retention', role: 'admin', address: '' };

/**
 * One retention pass: for every terminal, prunes events received before the period in batches
 * (docs/design.md#retention), then audits `retention.prune` with what went. Nothing happens
 * without a period set.
 */
export async function pruneEvents(ctx: CollectorContext, opts: { actor?: Actor; batch?: number } = {}): Promise<PruneResult[]> {
  const { years } = await getRetention(ctx.db);
  if (years === null) return [];
  const cutoff = retentionCutoff(ctx.clock.now(), years).toISOString();
  const forwarded = await forwardedUpTo(ctx.db);
  const agents = await ctx.db.selectFrom('agents').select('id').orderBy('id').execute();
  const results: PruneResult[] = [];
  for (const { id } of agents) {
    const result: PruneResult = { agentId: id, pruned: 0, checkpointSeq: 0 };
    for (;;) {
      const step = await pruneBatch(ctx, { agentId: id, cutoff, forwarded, batch: opts.batch ?? PRUNE_BATCH });
      result.pruned += step.pruned;
      result.checkpointSeq = step.seq;
      if (step.broken) result.broken = step.broken;
      if (step.pruned === 0 || step.broken) break;
    }
    if (result.pruned > 0 || result.broken) results.push(result);
  }
  if (results.length > 0) {
    const detail = {
      years,
      cutoff,
      terminals: results.map((r) => ({ agentId: r.agentId, pruned: r.pruned, checkpointSeq: r.checkpointSeq, broken: r.broken ?? null })),
    };
    await audit(ctx.db, opts.actor ?? RETENTION_ACTOR, 'retention.prune', 'events', detail, ctx.clock);
  }
  return results;
}
