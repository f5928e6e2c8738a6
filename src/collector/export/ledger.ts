import type { Kysely } from 'kysely';
import { InventorySnapshot, type Segment } from '../../shared';
import type { Database } from '../db/schema';
import type { LedgerRow } from './columns';

const GB = 1024 ** 3;

function snapshotOf(json: string | null | undefined): InventorySnapshot | null {
  if (!json) return null;
  const parsed = InventorySnapshot.safeParse(JSON.parse(json));
  return parsed.success ? parsed.data : null;
}

/** One ledger row from an agent and its latest snapshot. Pure. */
export function ledgerRow(
  agent: { id: string; hostname: string; segment: string; last_seen: string | null; policy_version: number | null; enforcement: string | null; agent_version: string | null; last_user: string | null },
  snapshot: InventorySnapshot | null,
  blocked7d: number,
): LedgerRow {
  const external = snapshot?.network.filter((n) => !n.internal) ?? [];
  return {
    agent_id: agent.id,
    hostname: snapshot?.hostname || agent.hostname,
    segment: agent.segment,
    os: snapshot?.os.distro || snapshot?.os.platform || '',
    os_version: [snapshot?.os.release, snapshot?.os.kernel && snapshot.os.kernel !== snapshot.os.release ? `(${snapshot.os.kernel})` : ''].filter(Boolean).join(' '),
    manufacturer: snapshot?.system.manufacturer ?? '',
    model: snapshot?.system.model ?? '',
    serial: snapshot?.system.serial ?? '',
    cpu: snapshot?.cpu.brand ?? '',
    memory_gb: snapshot?.memory.totalBytes ? Math.round((snapshot.memory.totalBytes / GB) * 10) / 10 : null,
    disks: (snapshot?.disks ?? []).map((d) => `${[d.vendor, d.name].filter(Boolean).join(' ') || d.device}${d.sizeBytes ? ` ${Math.round(d.sizeBytes / GB)}GB` : ''}${d.serial ? ` (${d.serial})` : ''}`).join('; '),
    ip_addresses: external.flatMap((n) => [...n.ipv4, ...n.ipv6]).join('; '),
    mac_addresses: [...new Set(external.map((n) => n.mac).filter((m) => m && m !== '00:00:00:00:00:00'))].join('; '),
    usb_devices: (snapshot?.usb ?? [])
      .filter((d) => !d.rootHub)
      .map((d) => [`${d.vendorId}:${d.productId}`, d.serial, [d.manufacturer, d.product].filter(Boolean).join(' ')].filter(Boolean).join(' '))
      .join('; '),
    last_user: agent.last_user ?? '',
    last_seen: agent.last_seen,
    policy_version: agent.policy_version === null ? null : Number(agent.policy_version),
    enforcement: agent.enforcement ?? '',
    blocked_7d: blocked7d,
    agent_version: agent.agent_version ?? snapshot?.agentVersion ?? '',
  };
}

/** The fleet ledger, one row per terminal, by host name; optionally one segment. */
export async function ledgerRows(db: Kysely<Database>, segment?: Segment, at = new Date()): Promise<LedgerRow[]> {
  let query = db
    .selectFrom('agents')
    .leftJoin('inventory_latest', 'inventory_latest.agent_id', 'agents.id')
    .select(['agents.id', 'agents.hostname', 'agents.segment', 'agents.last_seen', 'agents.policy_version', 'agents.enforcement', 'agents.agent_version', 'agents.last_user', 'inventory_latest.snapshot'])
    .orderBy('agents.hostname')
    .orderBy('agents.id');
  if (segment) query = query.where('agents.segment', '=', segment);
  const agents = await query.execute();
  const since = new Date(at.getTime() - 7 * 24 * 3600 * 1000).toISOString();
  const counts = await db
    .selectFrom('events')
    .select(['agent_id', (eb) => eb.fn.countAll<number>().as('n')])
    .where('type', '=', 'device.blocked')
    .where('at', '>=', since)
    .groupBy('agent_id')
    .execute();
  const blocked = new Map(counts.map((c) => [c.agent_id, Number(c.n)]));
  return agents.map((a) => ledgerRow(a, snapshotOf(a.snapshot), blocked.get(a.id) ?? 0));
}
