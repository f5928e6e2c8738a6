import type { ForwardRecord, Severity } from './format';

/** An event row as the forwarder reads it, with its terminal's host name and segment. */
export interface EventRow {
  agent_id: string;
  seq: number | string;
  at: string;
  type: string;
  payload: string;
  hostname: string;
  segment: string;
}

/** An audit row as the forwarder reads it. */
export interface AuditRow {
  id: number | string;
  at: string;
  actor: string;
  role: string;
  action: string;
  target: string;
  detail: string;
  address: string;
}

/** Event types a SOC wants to see first. */
const WARNING = /blocked|tamper|chain|failure|degraded|incident|stopped|released/;

function severityOf(type: string): Severity {
  return WARNING.test(type) ? 'warning' : 'info';
}

function parseJson(text: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(text);
    return value && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** Who and which device an event names: the payload's own fields, else its `device`. */
function subject(payload: Record<string, unknown>): {
  user?: string;
  vendor?: string;
  product?: string;
  serial?: string;
} {
  const device = payload.device && typeof payload.device === 'object' ? (payload.device as Record<string, unknown>) : payload;
  return {
    user: str(payload.user),
    vendor: str(device.vendorId),
    product: str(device.productId),
    serial: str(device.serial),
  };
}

/** The record forwarded for an event received from a terminal. */
export function eventRecord(row: EventRow): ForwardRecord {
  const payload = parseJson(row.payload);
  const who = subject(payload);
  return {
    kind: 'event',
    at: row.at,
    host: row.hostname,
    type: row.type,
    severity: severityOf(row.type),
    fields: [
      ['terminal', row.agent_id],
      ['hostname', row.hostname],
      ['segment', row.segment],
      ['user', who.user],
      ['vendor', who.vendor],
      ['product', who.product],
      ['serial', who.serial],
      ['type', row.type],
      ['seq', Number(row.seq)],
    ],
    message: row.payload,
  };
}

/** The record forwarded for an admin audit entry; `collectorHost` is the host that records it. */
export function auditRecord(row: AuditRow, collectorHost: string): ForwardRecord {
  return {
    kind: 'audit',
    at: row.at,
    host: collectorHost,
    type: row.action,
    severity: 'notice',
    fields: [
      ['id', Number(row.id)],
      ['actor', row.actor],
      ['role', row.role],
      ['type', row.action],
      ['target', row.target],
      ['address', row.address],
    ],
    message: row.detail,
  };
}
