import type { Kysely } from 'kysely';
import { InventorySnapshot, type Segment } from '../../shared';
import { outboxState } from '../agents';
import type { AgentsTable, Database } from '../db/schema';
import type { LedgerRow } from './columns';

const GB = 1024 ** 3;

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const hasText = (o: Json, keys: readonly string[]): boolean => keys.every((k) => typeof o[k] === 'string');
const isNumberOrNull = (v: unknown): boolean => v === null || (typeof v === 'number' && Number.isFinite(v));

/**
 * A stored snapshot, or null when it no longer reads: one bad row must not sink a page or the
 * ledger. The export comes here only for rows stored before the ledger columns were kept beside them.
 */
export function storedSnapshot(json: string): InventorySnapshot | null {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    return null;
  }
  const parsed = InventorySnapshot.safeParse(value);
  return parsed.success ? parsed.data : null;
}

/** The ledger columns that come from a terminal's inventory snapshot. */
export type InventoryColumns = Pick<
  LedgerRow,
  | 'hostname'
  | 'os'
  | 'os_version'
  | 'manufacturer'
  | 'model'
  | 'serial'
  | 'cpu'
  | 'memory_gb'
  | 'disks'
  | 'ip_addresses'
  | 'mac_addresses'
  | 'usb_devices'
  | 'agent_version'
>;

/**
 * The snapshot's share of a ledger row. Pure. `storeInventory` keeps it beside the snapshot, so an
 * export reads half a kilobyte per terminal instead of parsing its whole snapshot.
 */
export function inventoryColumns(snapshot: InventorySnapshot): InventoryColumns {
  const external = snapshot.network.filter((n) => !n.internal);
  return {
    hostname: snapshot.hostname,
    os: snapshot.os.distro || snapshot.os.platform || '',
    os_version: [snapshot.os.release, snapshot.os.kernel && snapshot.os.kernel !== snapshot.os.release ? `(${snapshot.os.kernel})` : '']
      .filter(Boolean)
      .join(' '),
    manufacturer: snapshot.system.manufacturer,
    model: snapshot.system.model,
    serial: snapshot.system.serial,
    cpu: snapshot.cpu.brand,
    memory_gb: snapshot.memory.totalBytes ? Math.round((snapshot.memory.totalBytes / GB) * 10) / 10 : null,
    disks: snapshot.disks
      .map(
        (d) =>
          `${[d.vendor, d.name].filter(Boolean).join(' ') || d.device}${d.sizeBytes ? ` ${Math.round(d.sizeBytes / GB)}GB` : ''}${d.serial ? ` (${d.serial})` : ''}`,
      )
      .join('; '),
    ip_addresses: external.flatMap((n) => [...n.ipv4, ...n.ipv6]).join('; '),
    mac_addresses: [...new Set(external.map((n) => n.mac).filter((m) => m && m !== '00:00:00:00:00:00'))].join('; '),
    usb_devices: snapshot.usb
      .filter((d) => !d.rootHub)
      .map((d) => [`${d.vendorId}:${d.productId}`, d.serial, [d.manufacturer, d.product].filter(Boolean).join(' ')].filter(Boolean).join(' '))
      .join('; '),
    agent_version: snapshot.agentVersion,
  };
}

const INVENTORY_KEYS = [
  'hostname',
  'os',
  'os_version',
  'manufacturer',
  'model',
  'serial',
  'cpu',
  'disks',
  'ip_addresses',
  'mac_addresses',
  'usb_devices',
  'agent_version',
] as const;

/** Stored inventory columns, or null when the text is not what `inventoryColumns` wrote. */
function storedColumns(json: string): InventoryColumns | null {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    return null;
  }
  if (!isObject(value) || !hasText(value, INVENTORY_KEYS) || !isNumberOrNull(value.memory_gb)) return null;
  return value as unknown as InventoryColumns;
}

/** The agents columns a ledger row reads. */
const AGENT_COLUMNS = [
  'id',
  'hostname',
  'segment',
  'last_seen',
  'policy_version',
  'enforcement',
  'agent_version',
  'last_user',
  'chain_broken_seq',
  'chain_broken_reason',
  'head_seq',
  'ack_seq',
  'progress_at',
] as const;
type LedgerAgent = Pick<AgentsTable, (typeof AGENT_COLUMNS)[number]>;

/** One ledger row from an agent and its inventory columns (none before its first snapshot). Pure. */
export function ledgerRow(agent: LedgerAgent, inventory: InventoryColumns | null, blocked7d: number): LedgerRow {
  const outbox = outboxState(agent);
  return {
    agent_id: agent.id,
    hostname: inventory?.hostname || agent.hostname,
    segment: agent.segment,
    os: inventory?.os ?? '',
    os_version: inventory?.os_version ?? '',
    manufacturer: inventory?.manufacturer ?? '',
    model: inventory?.model ?? '',
    serial: inventory?.serial ?? '',
    cpu: inventory?.cpu ?? '',
    memory_gb: inventory?.memory_gb ?? null,
    disks: inventory?.disks ?? '',
    ip_addresses: inventory?.ip_addresses ?? '',
    mac_addresses: inventory?.mac_addresses ?? '',
    usb_devices: inventory?.usb_devices ?? '',
    last_user: agent.last_user ?? '',
    last_seen: agent.last_seen,
    policy_version: agent.policy_version === null ? null : Number(agent.policy_version),
    enforcement: agent.enforcement ?? '',
    blocked_7d: blocked7d,
    agent_version: agent.agent_version || inventory?.agent_version || '',
    pending_events: outbox.pendingEvents,
    stalled: outbox.stalled ? 'stalled' : '',
    chain_broken_seq: agent.chain_broken_seq === null ? null : Number(agent.chain_broken_seq),
    chain_broken_reason: agent.chain_broken_seq === null ? '' : (agent.chain_broken_reason ?? ''),
  };
}

/**
 * Terminals per page of {@link ledgerRowBatches}: one page's snapshots (a few KB each) are all the
 * export holds at a time, and 500 ids stay far below either engine's bound-parameter limit.
 */
export const LEDGER_PAGE_SIZE = 500;

const WEEK_MS = 7 * 24 * 3600 * 1000;

/**
 * The fleet ledger, one row per terminal, by host name then id, optionally one segment, as batches
 * of up to {@link LEDGER_PAGE_SIZE} rows read page by page (keyset pagination), so exporting 10,000
 * terminals never holds every snapshot at once. `blocked_7d` counts `device.blocked` events in the
 * 7 days before `at`.
 *
 * Each page is its own query rather than one transaction: on SQLite a read held open for the
 * length of a slow download would stall every agent's sync behind it. A terminal enrolled or
 * renamed while the export runs may therefore appear or not, but none appears twice.
 * @throws the database's error when a query fails; rows already yielded stay valid.
 */
export async function* ledgerRowBatches(db: Kysely<Database>, segment: Segment | undefined, at: Date): AsyncGenerator<LedgerRow[], void, undefined> {
  const blocked = await blockedCounts(db, new Date(at.getTime() - WEEK_MS).toISOString());
  let after: PageCursor | undefined;
  for (;;) {
    const { rows, next } = await ledgerPage(db, segment, blocked, after);
    if (rows.length > 0) yield rows;
    if (!next) return;
    after = next;
  }
}

/**
 * device.blocked events since `since`, per agent, for the whole fleet in one query. Counting per
 * page (`agent_id IN (…500 ids)`) looks leaner but is not: without ANALYZE statistics SQLite plans
 * it as a scan of every recent block in the fleet through `events_type_at`, once per page, which
 * grows with the square of the fleet (160 ms of a 1 s export at 10,000 terminals), and as a
 * correlated subquery it took 40 s. This map holds one number per terminal that had a block.
 */
async function blockedCounts(db: Kysely<Database>, since: string): Promise<Map<string, number>> {
  const counts = await db
    .selectFrom('events')
    .select(['agent_id', (eb) => eb.fn.countAll<number | string>().as('n')])
    .where('type', '=', 'device.blocked')
    .where('at', '>=', since)
    .groupBy('agent_id')
    .execute();
  // PostgreSQL's count() is a bigint, which pg hands over as a string.
  return new Map(counts.map((c) => [c.agent_id, Number(c.n)]));
}

interface PageCursor {
  hostname: string;
  id: string;
}

/**
 * One page of the ledger after `after`, and the cursor of the next page (none after the last).
 * A function of its own so that the page's raw rows and snapshot text are garbage by the time the
 * batch is yielded: a generator keeps its locals alive while the consumer writes.
 */
async function ledgerPage(
  db: Kysely<Database>,
  segment: Segment | undefined,
  blocked: ReadonlyMap<string, number>,
  after: PageCursor | undefined,
): Promise<{ rows: LedgerRow[]; next?: PageCursor }> {
  let page = db
    .selectFrom('agents')
    .select([...AGENT_COLUMNS])
    .orderBy('hostname')
    .orderBy('id')
    .limit(LEDGER_PAGE_SIZE);
  if (segment) page = page.where('segment', '=', segment);
  if (after) page = page.where(({ eb, refTuple, tuple }) => eb(refTuple('hostname', 'id'), '>', tuple(after.hostname, after.id)));
  // The page is chosen from agents alone and joined afterwards: joined first, the engine would
  // sort every remaining terminal's inventory to keep 500 of them, page after page.
  const agents = await db
    .selectFrom(page.as('a'))
    .leftJoin('inventory_latest', 'inventory_latest.agent_id', 'a.id')
    .select([...AGENT_COLUMNS.map((c) => `a.${c}` as const), 'inventory_latest.ledger', 'inventory_latest.received_at'])
    .orderBy('a.hostname')
    .orderBy('a.id')
    .execute();
  const last = agents[agents.length - 1];
  if (!last) return { rows: [] };
  const inventory = new Map<string, InventoryColumns | null>();
  for (const a of agents) if (a.ledger) inventory.set(a.id, storedColumns(a.ledger));
  // Snapshots stored before the columns were kept beside them (or whose columns do not read) are
  // parsed the slow way, only those.
  const missing = agents.filter((a) => a.received_at !== null && !inventory.get(a.id)).map((a) => a.id);
  if (missing.length > 0) {
    const snapshots = await db.selectFrom('inventory_latest').select(['agent_id', 'snapshot']).where('agent_id', 'in', missing).execute();
    for (const row of snapshots) {
      const snapshot = storedSnapshot(row.snapshot);
      inventory.set(row.agent_id, snapshot ? inventoryColumns(snapshot) : null);
    }
  }
  const rows = agents.map((a) => ledgerRow(a, inventory.get(a.id) ?? null, blocked.get(a.id) ?? 0));
  return agents.length < LEDGER_PAGE_SIZE ? { rows } : { rows, next: { hostname: last.hostname, id: last.id } };
}

/**
 * The whole ledger in memory, for small uses (JSON of one segment, tests); exports of the fleet
 * stream {@link ledgerRowBatches} instead.
 * @throws the database's error when a query fails.
 */
export async function ledgerRows(db: Kysely<Database>, segment: Segment | undefined, at: Date): Promise<LedgerRow[]> {
  const rows: LedgerRow[] = [];
  for await (const batch of ledgerRowBatches(db, segment, at)) rows.push(...batch);
  return rows;
}
