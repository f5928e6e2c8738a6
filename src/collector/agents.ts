import crypto from 'node:crypto';
import type { Kysely, Transaction } from 'kysely';
import {
  GENESIS_HASH,
  HEAD_HEADER,
  EventSchemaError,
  agentTag,
  MAX_STORED_SEQ,
  parseHead,
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
export async function createEnrollmentToken(
  db: Kysely<Database>,
  opts: { segment: Segment; ttlMs: number; uses: number },
  clock: Clock = systemClock,
): Promise<string> {
  const token = randomToken('enr_', 24);
  const now = () => clock.now().toISOString();
  await db
    .insertInto('enrollment_tokens')
    .values({
      hash: tokenHash(token),
      segment: opts.segment,
      expires_at: new Date(clock.now().getTime() + opts.ttlMs).toISOString(),
      uses_left: opts.uses,
      created_at: now(),
    })
    .execute();
  return token;
}

/**
 * Enrolls a terminal in one transaction: spends one use of the token (so two collectors cannot
 * both spend the last one), creates the agent with a secret token and an unlock secret, and
 * writes the `agent.enroll` audit entry.
 * @throws MamoriError token_invalid when the token is unknown, expired or used up.
 */
export async function enroll(
  db: Kysely<Database>,
  key: SigningKey,
  request: EnrollRequest,
  clock: Clock = systemClock,
  address?: string,
): Promise<EnrollResponse> {
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
        unlock_tag: agentTag(agentId),
        chain_broken_reason: null,
        head_seq: null,
        head_hash: null,
        progress_at: now(),
        conflict_seq: null,
      })
      .execute();
    // The audit entry commits with the agent row and the spent token, or none of them does.
    await trx
      .insertInto('audit_log')
      .values({
        at: now(),
        actor: `token:${hash.slice(0, 12)}`,
        role: 'agent',
        action: 'agent.enroll',
        target: agentId,
        detail: JSON.stringify({ hostname: dbText(request.hostname), machineId: dbText(request.machineId), segment }),
        address: address ?? '',
      })
      .execute();
    const policy = await currentPolicy(trx, segment as Segment);
    return { agentId, agentToken, segment: segment as Segment, policy, collectorPublicKey: key.publicKey, unlockSecret };
  });
}

/** A terminal whose outbox has not moved for this long while it kept calling shows as stalled. */
export const STALL_AFTER_MS = 30 * 60_000;

/** How many events a terminal holds that the collector does not, and whether they are stuck. */
export function outboxState(agent: Pick<AgentsTable, 'head_seq' | 'ack_seq' | 'progress_at' | 'last_seen'>): {
  pendingEvents: number | null;
  stalled: boolean;
} {
  if (agent.head_seq === null) return { pendingEvents: null, stalled: false };
  const pendingEvents = Math.max(0, Number(agent.head_seq) - Number(agent.ack_seq));
  const since = agent.progress_at ? Date.parse(agent.progress_at) : NaN;
  const seen = agent.last_seen ? Date.parse(agent.last_seen) : NaN;
  return { pendingEvents, stalled: pendingEvents > 0 && seen - since > STALL_AFTER_MS };
}

/**
 * Flags the terminal's chain as broken at `seq` with the reason shown in the console, the API and
 * the ledger. The first flag stays: a later one does not overwrite it.
 */
export async function flagChain(db: Kysely<Database>, agentId: string, seq: number, reason: string): Promise<void> {
  await db
    .updateTable('agents')
    .set({ chain_broken_seq: seq, chain_broken_reason: dbText(reason.slice(0, 500)) })
    .where('id', '=', agentId)
    .where('chain_broken_seq', 'is', null)
    .execute();
}

/**
 * What the head an agent reports says against what the collector holds: null when it extends
 * everything seen, else the seq and reason to flag. Pure, for the tests.
 */
export function headProblem(
  agent: Pick<AgentsTable, 'ack_seq' | 'last_hash' | 'head_seq' | 'head_hash'>,
  head: { seq: number; hash: string },
): { seq: number; reason: string } | null {
  const ack = Number(agent.ack_seq);
  if (head.seq < ack) return { seq: head.seq + 1, reason: `the terminal's log ends at seq ${head.seq}, but the collector already holds up to seq ${ack}` };
  if (head.seq === ack && ack > 0 && head.hash !== agent.last_hash)
    return { seq: ack, reason: `the terminal's event seq ${ack} differs from the one the collector holds` };
  if (agent.head_seq !== null) {
    const high = Number(agent.head_seq);
    if (head.seq < high) return { seq: head.seq + 1, reason: `the terminal's log was cut back from seq ${high} to seq ${head.seq} before the rest was sent` };
    if (head.seq === high && head.hash !== agent.head_hash) return { seq: high, reason: `the terminal's event seq ${high} changed after it was reported` };
  }
  return null;
}

/**
 * Checks that the bearer token belongs to the agent named in the path and marks it seen. The
 * agent's `mamori-head` (its newest seq and hash) is kept as the high-water mark; a head below
 * it or beside it flags the chain.
 * @throws MamoriError unauthorized (no or wrong token), forbidden (another agent's token), or
 *   validation_failed (a malformed `mamori-head`).
 */
export async function authenticateAgent(
  db: Kysely<Database>,
  agentId: string,
  bearer: string | undefined,
  clock: Clock = systemClock,
  headHeader?: string,
): Promise<AgentsTable> {
  if (!bearer) throw new MamoriError('unauthorized', 'missing bearer token');
  const hash = tokenHash(bearer);
  const agent = await db.selectFrom('agents').selectAll().where('id', '=', agentId).executeTakeFirst();
  if (!agent || !sameHash(agent.token_hash, hash)) {
    // A valid token of another agent is a terminal writing under someone else's id.
    const other = await db.selectFrom('agents').select('id').where('token_hash', '=', hash).executeTakeFirst();
    if (other) throw new MamoriError('forbidden', 'this token belongs to another agent');
    throw new MamoriError('unauthorized', 'unknown agent or wrong token');
  }
  const now = clock.now().toISOString();
  const update: Partial<AgentsTable> = { last_seen: now };
  if (headHeader !== undefined) {
    const head = parseHead(headHeader);
    if (!head) throw new MamoriError('validation_failed', `header ${HEAD_HEADER}: expected <seq>:<sha256 hex>`);
    const problem = headProblem(agent, head);
    if (problem) await flagChain(db, agentId, problem.seq, problem.reason);
    else if (agent.head_seq === null || head.seq > Number(agent.head_seq)) {
      update.head_seq = head.seq;
      update.head_hash = head.hash;
    }
    // Nothing pending: the outbox is where it should be.
    if (head.seq <= Number(agent.ack_seq)) update.progress_at = now;
  }
  await db.updateTable('agents').set(update).where('id', '=', agentId).execute();
  return { ...agent, ...update };
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
        .onConflict((oc) => oc.columns(['agent_id', 'receipt']).doNothing())
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

/** Refusals a retry of the same batch can mend; every other refusal of an agent's batch flags it. */
const TRANSIENT = new Set(['seq_conflict', 'rate_limited', 'unavailable', 'internal', 'unauthorized', 'forbidden']);

/**
 * Flags the terminal for a refused batch that no retry can mend: its pending events, incidents
 * included, would otherwise never arrive while the terminal looked healthy. A `seq_conflict` is
 * transient once (a lost acknowledgement, a restored database); the same expected seq twice in a
 * row means the terminal cannot send that seq: a hole in its log.
 */
export async function flagRefusedBatch(db: Kysely<Database>, agentId: string, err: MamoriError, firstSeq: number | undefined): Promise<void> {
  if (err.code === 'seq_conflict' && err.details.expectedSeq !== undefined) {
    const expected = err.details.expectedSeq;
    const row = await db.selectFrom('agents').select('conflict_seq').where('id', '=', agentId).executeTakeFirst();
    if (row && row.conflict_seq !== null && Number(row.conflict_seq) === expected) {
      await flagChain(db, agentId, expected, `the terminal cannot send seq ${expected}: it is missing from its log (${err.message})`);
    } else {
      await db.updateTable('agents').set({ conflict_seq: expected }).where('id', '=', agentId).execute();
    }
    return;
  }
  if (TRANSIENT.has(err.code)) return;
  const ack = await db.selectFrom('agents').select('ack_seq').where('id', '=', agentId).executeTakeFirst();
  const next = Number(ack?.ack_seq ?? 0) + 1;
  const seq = err.details.seq ?? firstSeq ?? next;
  // A seq beyond any the events table can hold (a forged batch) is flagged at the first missing
  // one, naming what was sent: PostgreSQL's integer column refused it with a 500.
  const storable = Number.isSafeInteger(seq) && seq >= 1 && seq <= MAX_STORED_SEQ;
  await flagChain(db, agentId, storable ? seq : next, storable ? `batch refused: ${err.message}` : `batch refused at seq ${seq}: ${err.message}`);
}

/**
 * Stores a batch of events from one agent, all or nothing, and returns the new acknowledged seq.
 * Seqs at or below the acknowledged one are already stored: they are skipped when their hash
 * matches, and refused when it does not (a rewritten history). A refusal a retry cannot mend
 * flags the terminal (`flagRefusedBatch`).
 * @throws MamoriError bad_request (not ascending), validation_failed (invalid payload),
 *   seq_conflict (a gap, with the expected seq), chain_broken (hash chain does not verify, or does
 *   not reach the head the agent reported).
 */
export async function ingestEvents(
  db: Kysely<Database>,
  engine: DbEngine,
  agentId: string,
  events: StoredEvent[],
  clock: Clock = systemClock,
): Promise<number> {
  try {
    return await storeBatch(db, engine, agentId, events, clock);
  } catch (err) {
    if (err instanceof MamoriError) await flagRefusedBatch(db, agentId, err, events[0]?.seq);
    throw err;
  }
}

function checkBatch(events: StoredEvent[]): void {
  for (let i = 1; i < events.length; i++) {
    if (events[i]!.seq !== events[i - 1]!.seq + 1) {
      throw new MamoriError('bad_request', `events must be in ascending seq without gaps (at seq ${events[i]!.seq})`, { seq: events[i - 1]!.seq + 1 });
    }
  }
  for (const e of events) {
    try {
      parseEventPayload(e.type, e.payload);
    } catch (err) {
      if (err instanceof EventSchemaError) throw new MamoriError('validation_failed', `event seq ${e.seq}: ${err.message}`, { seq: e.seq });
      throw err;
    }
  }
}

async function storeBatch(db: Kysely<Database>, engine: DbEngine, agentId: string, events: StoredEvent[], clock: Clock): Promise<number> {
  checkBatch(events);
  return db.transaction().execute(async (trx) => {
    let query = trx.selectFrom('agents').select(['ack_seq', 'last_hash', 'head_seq', 'head_hash']).where('id', '=', agentId);
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
      if (rewritten) throw new MamoriError('chain_broken', `event seq ${rewritten.seq} differs from the one already stored`, { seq: rewritten.seq });
    }
    if (fresh.length === 0) return ack;
    if (fresh[0]!.seq !== ack + 1) {
      throw new MamoriError('seq_conflict', `expected seq ${ack + 1}, got ${fresh[0]!.seq}`, { expectedSeq: ack + 1 });
    }
    const broken = verifyChain(fresh, { seq: ack, hash: agent.last_hash });
    if (broken) throw new MamoriError('chain_broken', `hash chain broken at seq ${broken.seq} (${broken.reason.replace(/_/g, ' ')})`, { seq: broken.seq });
    // A chain that verifies but does not pass through the head the agent reported was rewritten since.
    const reported = agent.head_seq === null ? undefined : fresh.find((e) => e.seq === Number(agent.head_seq));
    if (reported && reported.hash !== agent.head_hash) {
      throw new MamoriError('chain_broken', `event seq ${reported.seq} differs from the one the terminal reported as its head`, { seq: reported.seq });
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
    const head = agent.head_seq === null || last.seq > Number(agent.head_seq) ? { head_seq: last.seq, head_hash: last.hash } : {};
    await trx
      .updateTable('agents')
      .set({ ...derivedFields(fresh), ...head, ack_seq: last.seq, last_hash: last.hash, last_seen: receivedAt, progress_at: receivedAt, conflict_seq: null })
      .where('id', '=', agentId)
      .execute();
    return last.seq;
  });
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
    await trx
      .updateTable('agents')
      .set({ hostname: snapshot.hostname ? dbText(snapshot.hostname) : undefined, last_seen: receivedAt })
      .where('id', '=', agentId)
      .execute();
  });
}
