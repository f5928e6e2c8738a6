import { sql, type Expression, type ExpressionBuilder, type Kysely, type Selectable, type SelectQueryBuilder, type SqlBool } from 'kysely';
import { SEGMENTS, verifyChain, type ChainBreak, type Segment } from '../../shared';
import { outboxState } from '../agents';
import { chainStart, keptSince } from '../retention/retention';
import type { Database } from '../db/schema';
import { storedSnapshot } from '../export/ledger';
import { listIncidents } from '../incidents';
import { currentPolicy } from '../policies';

const DAY_MS = 86_400_000;

/** A terminal counts as online when it synced within three sync intervals, and at least 10 minutes. */
export function onlineWindowMs(syncIntervalSeconds: number): number {
  return Math.max(3 * syncIntervalSeconds * 1000, 10 * 60_000);
}

/** Per segment: the earliest last-seen time that is still online, and the policy in force. */
export async function segmentFacts(
  db: Kysely<Database>,
  at: Date,
): Promise<Record<Segment, { onlineSince: string; policyVersion: number; syncIntervalSeconds: number }>> {
  const out = {} as Record<Segment, { onlineSince: string; policyVersion: number; syncIntervalSeconds: number }>;
  for (const segment of SEGMENTS) {
    const policy = await currentPolicy(db, segment);
    out[segment] = {
      onlineSince: new Date(at.getTime() - onlineWindowMs(policy.syncIntervalSeconds)).toISOString(),
      policyVersion: policy.version,
      syncIntervalSeconds: policy.syncIntervalSeconds,
    };
  }
  return out;
}

type Facts = Awaited<ReturnType<typeof segmentFacts>>;
type AgentsEb = ExpressionBuilder<Database, 'agents'>;

function onlineExpr(eb: AgentsEb, facts: Facts): Expression<SqlBool> {
  return eb.or(SEGMENTS.map((s) => eb.and([eb('agents.segment', '=', s), eb('agents.last_seen', '>=', facts[s].onlineSince)])));
}

/** What the dashboard shows. */
export interface DashboardData {
  total: number;
  perSegment: Record<Segment, { total: number; online: number }>;
  enforcement: Record<string, number>;
  degraded: number;
  openIncidents: number;
  pendingExceptions: number;
  broken: { id: string; hostname: string; segment: string; seq: number }[];
  /** Blocked attempts per hour bucket (`YYYY-MM-DDTHH`, UTC) and segment over the last 7 days. */
  blockedHours: { hour: string; segment: string; n: number }[];
  recentIncidents: { agentId: string; receipt: string; hostname: string; category: string; status: string; reportedAt: string }[];
}

export async function dashboardData(db: Kysely<Database>, at: Date): Promise<DashboardData> {
  const facts = await segmentFacts(db, at);
  const perSegment = Object.fromEntries(SEGMENTS.map((s) => [s, { total: 0, online: 0 }])) as DashboardData['perSegment'];
  const counts = await db
    .selectFrom('agents')
    .select((eb) => ['segment', eb.fn.countAll<number>().as('n'), eb.fn.sum<number>(eb.case().when(onlineExpr(eb, facts)).then(1).else(0).end()).as('online')])
    .groupBy('segment')
    .execute();
  let total = 0;
  for (const c of counts) {
    total += Number(c.n);
    if (c.segment in perSegment) perSegment[c.segment as Segment] = { total: Number(c.n), online: Number(c.online ?? 0) };
  }
  const enforcementRows = await db
    .selectFrom('agents')
    .select((eb) => ['enforcement', eb.fn.countAll<number>().as('n')])
    .groupBy('enforcement')
    .execute();
  const enforcement: Record<string, number> = {};
  for (const r of enforcementRows) enforcement[r.enforcement ?? 'none'] = Number(r.n);
  const openIncidents = await db
    .selectFrom('incidents')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('status', '!=', 'closed')
    .executeTakeFirstOrThrow();
  const pending = await db
    .selectFrom('exceptions')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('status', '=', 'pending')
    .executeTakeFirstOrThrow();
  const broken = await db
    .selectFrom('agents')
    .select(['id', 'hostname', 'segment', 'chain_broken_seq'])
    .where('chain_broken_seq', 'is not', null)
    .orderBy('hostname')
    .limit(50)
    .execute();
  // Hour buckets keep the grouping in the database small on both engines; the page folds them
  // into days of the reader's time zone.
  const hour = sql<string>`substr(events.at, 1, 13)`;
  const blockedHours = await db
    .selectFrom('events')
    .innerJoin('agents', 'agents.id', 'events.agent_id')
    .select((eb) => [hour.as('hour'), 'agents.segment', eb.fn.countAll<number>().as('n')])
    .where('events.type', '=', 'device.blocked')
    .where('events.at', '>=', new Date(at.getTime() - 8 * DAY_MS).toISOString())
    .groupBy([hour, 'agents.segment'])
    .execute();
  const recent = await db
    .selectFrom('incidents')
    .leftJoin('agents', 'agents.id', 'incidents.agent_id')
    .select(['incidents.receipt', 'incidents.agent_id', 'agents.hostname', 'incidents.category', 'incidents.status', 'incidents.reported_at'])
    .where('incidents.status', '!=', 'closed')
    .orderBy('incidents.reported_at', 'desc')
    .limit(5)
    .execute();
  return {
    total,
    perSegment,
    enforcement,
    degraded: enforcement.degraded ?? 0,
    openIncidents: Number(openIncidents.n),
    pendingExceptions: Number(pending.n),
    broken: broken.map((b) => ({ id: b.id, hostname: b.hostname, segment: b.segment, seq: Number(b.chain_broken_seq) })),
    blockedHours: blockedHours.map((b) => ({ hour: String(b.hour), segment: b.segment, n: Number(b.n) })),
    recentIncidents: recent.map((r) => ({
      agentId: r.agent_id,
      receipt: r.receipt,
      hostname: r.hostname ?? '',
      category: r.category,
      status: r.status,
      reportedAt: r.reported_at,
    })),
  };
}

export const TERMINAL_STATES = ['online', 'offline', 'never', 'degraded', 'chain_broken'] as const;
export const SEEN_FILTERS = ['1d', '7d', 'older7d', 'older30d'] as const;

export interface TerminalFilter {
  q?: string;
  segment?: Segment;
  state?: (typeof TERMINAL_STATES)[number];
  seen?: (typeof SEEN_FILTERS)[number];
  sort?: 'hostname' | 'last_seen';
  page: number;
  pageSize: number;
}

export interface TerminalListRow {
  id: string;
  hostname: string;
  segment: string;
  lastSeen: string | null;
  online: boolean;
  policyVersion: number | null;
  currentVersion: number;
  enforcement: string | null;
  chainBroken: number | null;
  /** Why the chain is flagged (collector text that may quote what the terminal sent). */
  chainBrokenReason: string | null;
  /** Events the terminal holds that the collector does not; null before it reported a head. */
  pendingEvents: number | null;
  /** Events pending while the terminal kept calling for 30 minutes without its outbox moving. */
  stalled: boolean;
  blocked7d: number;
  agentVersion: string | null;
}

type ChainColumns = Pick<Selectable<Database['agents']>, 'chain_broken_seq' | 'chain_broken_reason' | 'head_seq' | 'ack_seq' | 'progress_at' | 'last_seen'>;

/** The chain and outbox fields of a terminal, as the API's terminal list names them. */
function chainState(a: ChainColumns): Pick<TerminalListRow, 'chainBroken' | 'chainBrokenReason' | 'pendingEvents' | 'stalled'> {
  return {
    chainBroken: a.chain_broken_seq === null ? null : Number(a.chain_broken_seq),
    chainBrokenReason: a.chain_broken_seq === null ? null : a.chain_broken_reason,
    ...outboxState(a),
  };
}

/** `%` and `_` in a search are literal; `\` escapes them. */
function likePattern(q: string): string {
  return `%${q.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

/** A page of the terminal list, with the total that matches. */
export async function searchTerminals(db: Kysely<Database>, f: TerminalFilter, at: Date): Promise<{ rows: TerminalListRow[]; total: number }> {
  const facts = await segmentFacts(db, at);
  const where = (eb: ExpressionBuilder<Database, 'agents' | 'inventory_latest'>) => {
    const all: Expression<SqlBool>[] = [];
    if (f.q) {
      const p = likePattern(f.q);
      const like = (col: Expression<string | null>) => sql<SqlBool>`lower(${col}) like ${p} escape '\\'`;
      all.push(
        eb.or([like(eb.ref('agents.hostname')), like(eb.ref('agents.id')), like(eb.ref('agents.last_user')), like(eb.ref('inventory_latest.snapshot'))]),
      );
    }
    if (f.segment) all.push(eb('agents.segment', '=', f.segment));
    if (f.state === 'online') all.push(onlineExpr(eb as unknown as AgentsEb, facts));
    if (f.state === 'offline') all.push(eb.and([eb('agents.last_seen', 'is not', null), eb.not(onlineExpr(eb as unknown as AgentsEb, facts))]));
    if (f.state === 'never') all.push(eb('agents.last_seen', 'is', null));
    if (f.state === 'degraded') all.push(eb('agents.enforcement', '=', 'degraded'));
    if (f.state === 'chain_broken') all.push(eb('agents.chain_broken_seq', 'is not', null));
    const ago = (days: number) => new Date(at.getTime() - days * DAY_MS).toISOString();
    if (f.seen === '1d') all.push(eb('agents.last_seen', '>=', ago(1)));
    if (f.seen === '7d') all.push(eb('agents.last_seen', '>=', ago(7)));
    if (f.seen === 'older7d') all.push(eb.or([eb('agents.last_seen', '<', ago(7)), eb('agents.last_seen', 'is', null)]));
    if (f.seen === 'older30d') all.push(eb.or([eb('agents.last_seen', '<', ago(30)), eb('agents.last_seen', 'is', null)]));
    return eb.and(all);
  };
  const base = db.selectFrom('agents').leftJoin('inventory_latest', 'inventory_latest.agent_id', 'agents.id').where(where);
  const { n } = await base.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
  let query = base.select([
    'agents.id',
    'agents.hostname',
    'agents.segment',
    'agents.last_seen',
    'agents.policy_version',
    'agents.enforcement',
    'agents.chain_broken_seq',
    'agents.chain_broken_reason',
    'agents.head_seq',
    'agents.ack_seq',
    'agents.progress_at',
    'agents.agent_version',
  ]);
  query = f.sort === 'last_seen' ? query.orderBy('agents.last_seen', 'desc').orderBy('agents.hostname') : query.orderBy('agents.hostname').orderBy('agents.id');
  const rows = await query
    .limit(f.pageSize)
    .offset((f.page - 1) * f.pageSize)
    .execute();
  const blocked = await blockedSince(
    db,
    rows.map((r) => r.id),
    new Date(at.getTime() - 7 * DAY_MS),
  );
  return {
    total: Number(n),
    rows: rows.map((r) => {
      const segment = r.segment as Segment;
      return {
        id: r.id,
        hostname: r.hostname,
        segment: r.segment,
        lastSeen: r.last_seen,
        online: !!r.last_seen && !!facts[segment] && r.last_seen >= facts[segment].onlineSince,
        policyVersion: r.policy_version === null ? null : Number(r.policy_version),
        currentVersion: facts[segment]?.policyVersion ?? 0,
        enforcement: r.enforcement,
        ...chainState(r),
        blocked7d: blocked.get(r.id) ?? 0,
        agentVersion: r.agent_version,
      };
    }),
  };
}

/** device.blocked counts per agent since a time. */
async function blockedSince(db: Kysely<Database>, ids: string[], since: Date): Promise<Map<string, number>> {
  if (ids.length === 0) return new Map();
  const rows = await db
    .selectFrom('events')
    .select((eb) => ['agent_id', eb.fn.countAll<number>().as('n')])
    .where('agent_id', 'in', ids)
    .where('type', '=', 'device.blocked')
    .where('at', '>=', since.toISOString())
    .groupBy('agent_id')
    .execute();
  return new Map(rows.map((r) => [r.agent_id, Number(r.n)]));
}

export interface ConsoleEvent {
  seq: number;
  at: string;
  type: string;
  payload: Record<string, unknown>;
}

/** One terminal with its inventory, or null. */
export async function terminalDetail(db: Kysely<Database>, agentId: string, at: Date) {
  const agent = await db.selectFrom('agents').selectAll().where('id', '=', agentId).executeTakeFirst();
  if (!agent) return null;
  const inv = await db.selectFrom('inventory_latest').select(['snapshot', 'received_at']).where('agent_id', '=', agentId).executeTakeFirst();
  const snapshot = inv ? storedSnapshot(inv.snapshot) : null;
  const facts = await segmentFacts(db, at);
  const segment = agent.segment as Segment;
  const blocked = await blockedSince(db, [agentId], new Date(at.getTime() - 7 * DAY_MS));
  return {
    id: agent.id,
    hostname: agent.hostname,
    segment: agent.segment,
    enrolledAt: agent.enrolled_at,
    lastSeen: agent.last_seen,
    online: !!agent.last_seen && agent.last_seen >= (facts[segment]?.onlineSince ?? ''),
    policyVersion: agent.policy_version === null ? null : Number(agent.policy_version),
    currentVersion: facts[segment]?.policyVersion ?? 0,
    enforcement: agent.enforcement,
    ackSeq: Number(agent.ack_seq),
    headSeq: agent.head_seq === null ? null : Number(agent.head_seq),
    ...chainState(agent),
    agentVersion: agent.agent_version,
    lastUser: agent.last_user,
    blocked7d: blocked.get(agentId) ?? 0,
    snapshot,
    snapshotReceivedAt: inv?.received_at ?? null,
    /** What retention kept (docs/design.md#retention): null while nothing was pruned. */
    kept: await keptSince(db, agentId),
  };
}

const DEVICE_TYPES = ['device.attached', 'device.detached', 'device.blocked', 'device.allowed', 'exception.granted', 'exception.expired'] as const;

/**
 * A terminal's events, newest first: `before` pages back by seq; `types` narrows to some types.
 */
export async function terminalEvents(
  db: Kysely<Database>,
  agentId: string,
  opts: { types?: readonly string[]; before?: number; limit: number },
): Promise<ConsoleEvent[]> {
  let q = db.selectFrom('events').select(['seq', 'at', 'type', 'payload']).where('agent_id', '=', agentId).orderBy('seq', 'desc').limit(opts.limit);
  if (opts.types && opts.types.length > 0) q = q.where('type', 'in', [...opts.types]);
  if (opts.before !== undefined) q = q.where('seq', '<', opts.before);
  const rows = await q.execute();
  return rows.map((r) => ({ seq: Number(r.seq), at: r.at, type: r.type, payload: safeJson(r.payload) }));
}

export const usbHistory = (db: Kysely<Database>, agentId: string, limit = 50) => terminalEvents(db, agentId, { types: DEVICE_TYPES, limit });

function safeJson(text: string): Record<string, unknown> {
  try {
    const value = JSON.parse(text) as unknown;
    return value && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : { value };
  } catch {
    return {};
  }
}

/**
 * Re-verifies the hash chain of everything the collector stored for a terminal, reading it in
 * pages so a long history does not sit in memory at once.
 */
export async function verifyStoredChain(db: Kysely<Database>, agentId: string): Promise<{ count: number; broken: ChainBreak | null }> {
  // After retention pruned older events, the chain verifies from the signed checkpoint on.
  const start = await chainStart(db, agentId);
  if ('broken' in start) return { count: 0, broken: start.broken };
  let last = start;
  let count = 0;
  for (;;) {
    const rows = await db
      .selectFrom('events')
      .select(['seq', 'at', 'type', 'payload', 'prev_hash', 'hash'])
      .where('agent_id', '=', agentId)
      .where('seq', '>', last.seq)
      .orderBy('seq')
      .limit(2000)
      .execute();
    if (rows.length === 0) return { count, broken: null };
    const events = rows.map((r) => ({
      seq: Number(r.seq),
      at: r.at,
      type: r.type,
      payload: JSON.parse(r.payload) as unknown,
      prevHash: r.prev_hash,
      hash: r.hash,
    }));
    const broken = verifyChain(events, last);
    if (broken) return { count, broken };
    count += events.length;
    const tail = events[events.length - 1]!;
    last = { seq: tail.seq, hash: tail.hash };
  }
}

export interface AuditFilter {
  actor?: string;
  action?: string;
  from?: string;
  to?: string;
  page: number;
  pageSize: number;
}

export interface AuditRow {
  id: number;
  at: string;
  actor: string;
  role: string;
  action: string;
  target: string;
  detail: unknown;
  address: string;
}

/** The audit log narrowed by a filter; both the page and the CSV read through it. */
function auditWhere<Q extends SelectQueryBuilder<Database, 'audit_log', object>>(query: Q, f: Omit<AuditFilter, 'page' | 'pageSize'>): Q {
  let q = query;
  if (f.actor) q = q.where('actor', '=', f.actor) as Q;
  if (f.action) q = q.where('action', '=', f.action) as Q;
  if (f.from) q = q.where('at', '>=', f.from) as Q;
  if (f.to) q = q.where('at', '<', f.to) as Q;
  return q;
}

function auditRow(r: Selectable<Database['audit_log']>): AuditRow {
  return { id: Number(r.id), at: r.at, actor: r.actor, role: r.role, action: r.action, target: r.target, detail: safeJson(r.detail), address: r.address };
}

/** The audit log, newest first, filtered and paged. */
export async function searchAudit(db: Kysely<Database>, f: AuditFilter): Promise<{ rows: AuditRow[]; total: number; actions: string[] }> {
  const { n } = await auditWhere(
    db.selectFrom('audit_log').select((eb) => eb.fn.countAll<number>().as('n')),
    f,
  ).executeTakeFirstOrThrow();
  const rows = await auditWhere(db.selectFrom('audit_log').selectAll(), f)
    .orderBy('id', 'desc')
    .limit(f.pageSize)
    .offset((f.page - 1) * f.pageSize)
    .execute();
  const actions = (await db.selectFrom('audit_log').select('action').distinct().orderBy('action').execute()).map((r) => r.action);
  return { total: Number(n), actions, rows: rows.map(auditRow) };
}

/** Every audit row in a range, oldest first, in pages: for the audit log's CSV. */
export async function* auditRowsFor(db: Kysely<Database>, f: Omit<AuditFilter, 'page' | 'pageSize'>): AsyncGenerator<AuditRow[]> {
  let after = 0;
  for (;;) {
    const rows = await auditWhere(db.selectFrom('audit_log').selectAll(), f).where('id', '>', after).orderBy('id').limit(1000).execute();
    if (rows.length === 0) return;
    after = Number(rows[rows.length - 1]!.id);
    yield rows.map(auditRow);
  }
}

/** How many terminals a segment has: what a policy change reaches. */
export async function terminalsIn(db: Kysely<Database>, segment: Segment): Promise<number> {
  const { n } = await db
    .selectFrom('agents')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('segment', '=', segment)
    .executeTakeFirstOrThrow();
  return Number(n);
}

/** One incident with its terminal, or null. */
export async function incidentById(db: Kysely<Database>, receipt: string) {
  const [incident] = await listIncidents(db, undefined, receipt);
  return incident ?? null;
}
