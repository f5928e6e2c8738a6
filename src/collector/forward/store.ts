import { sql, type Kysely } from 'kysely';
import { MamoriError } from '../../shared';
import { audit, type Actor } from '../admins';
import type { Database, ForwardDestinationsTable } from '../db/schema';
import type { AuditRow, EventRow } from './records';

export const TRANSPORTS = ['tcp', 'tls'] as const;
export const FORMATS = ['rfc5424', 'cef'] as const;
export type Transport = (typeof TRANSPORTS)[number];
export type Format = (typeof FORMATS)[number];

/** A destination as an admin configures it. */
export interface DestinationConfig {
  name: string;
  host: string;
  port: number;
  transport: Transport;
  /** TLS only: the CA certificate file (PEM) the SIEM's certificate must chain to (default: the system's). */
  caFile?: string;
  /** TLS only: the name the certificate must carry (default: `host`). */
  serverName?: string;
  format: Format;
  sendEvents: boolean;
  sendAudit: boolean;
  enabled: boolean;
}

/** A destination with where it stands. */
export interface Destination extends DestinationConfig {
  eventCursor: number;
  auditCursor: number;
  lastSuccessAt: string | null;
  lastError: string | null;
  lastErrorAt: string | null;
  leaseOwner: string | null;
  leaseUntil: string | null;
}

const CONFIG_KEYS = new Set(['name', 'host', 'port', 'transport', 'caFile', 'serverName', 'format', 'sendEvents', 'sendAudit', 'enabled']);

/**
 * Checks a destination an admin gave, field by field.
 * @throws MamoriError `validation_failed` naming the field (an unknown field is refused by name).
 */
export function validateDestination(input: Record<string, unknown>): DestinationConfig {
  const fail = (msg: string): never => {
    throw new MamoriError('validation_failed', msg);
  };
  for (const key of Object.keys(input)) if (!CONFIG_KEYS.has(key)) fail(`unknown field '${key}'`);
  const { name, host, port, transport, caFile, serverName, format, sendEvents, sendAudit, enabled } = input;
  if (typeof name !== 'string' || !/^[a-z0-9][a-z0-9._-]{0,62}$/.test(name)) fail('name: 1–63 of a–z, 0–9, ".", "_", "-", starting with a letter or digit');
  if (typeof host !== 'string' || !/^[A-Za-z0-9.:[\]-]{1,253}$/.test(host)) fail('host: a host name or an IP address');
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) fail('port: a whole number from 1 to 65535');
  if (!(TRANSPORTS as readonly unknown[]).includes(transport)) fail(`transport: tcp or tls, not '${String(transport)}'`);
  if (!(FORMATS as readonly unknown[]).includes(format)) fail(`format: rfc5424 or cef, not '${String(format)}'`);
  if (caFile !== undefined && (typeof caFile !== 'string' || caFile === '' || caFile.includes('\0'))) fail('caFile: a file path');
  if (serverName !== undefined && (typeof serverName !== 'string' || !/^[A-Za-z0-9.-]{1,253}$/.test(serverName))) fail('serverName: a DNS name');
  if (transport === 'tcp' && (caFile !== undefined || serverName !== undefined)) fail('caFile and serverName apply to transport tls only');
  for (const [key, value] of [
    ['sendEvents', sendEvents],
    ['sendAudit', sendAudit],
    ['enabled', enabled],
  ] as const) {
    if (typeof value !== 'boolean') fail(`${key}: true or false`);
  }
  if (!sendEvents && !sendAudit) fail('sendEvents, sendAudit: a destination must receive something');
  return {
    name,
    host,
    port,
    transport,
    caFile,
    serverName,
    format,
    sendEvents,
    sendAudit,
    enabled,
  } as DestinationConfig;
}

function fromRow(r: ForwardDestinationsTable): Destination {
  return {
    name: r.name,
    host: r.host,
    port: Number(r.port),
    transport: r.transport as Transport,
    caFile: r.ca_file ?? undefined,
    serverName: r.server_name ?? undefined,
    format: r.format as Format,
    sendEvents: Number(r.send_events) === 1,
    sendAudit: Number(r.send_audit) === 1,
    enabled: Number(r.enabled) === 1,
    eventCursor: Number(r.event_cursor),
    auditCursor: Number(r.audit_cursor),
    lastSuccessAt: r.last_success_at,
    lastError: r.last_error,
    lastErrorAt: r.last_error_at,
    leaseOwner: r.lease_owner,
    leaseUntil: r.lease_until,
  };
}

/**
 * Adds a destination, with its audit entry; it receives everything stored from the first event and audit entry on.
 * @throws MamoriError `bad_request` when the name exists.
 */
export async function addDestination(db: Kysely<Database>, actor: Actor, config: DestinationConfig, now: Date): Promise<void> {
  await db.transaction().execute(async (trx) => {
    const existing = await trx.selectFrom('forward_destinations').select('name').where('name', '=', config.name).executeTakeFirst();
    if (existing) throw new MamoriError('bad_request', `a destination named ${config.name} exists: remove it first`);
    await trx
      .insertInto('forward_destinations')
      .values({
        name: config.name,
        host: config.host,
        port: config.port,
        transport: config.transport,
        ca_file: config.caFile ?? null,
        server_name: config.serverName ?? null,
        format: config.format,
        send_events: config.sendEvents ? 1 : 0,
        send_audit: config.sendAudit ? 1 : 0,
        enabled: config.enabled ? 1 : 0,
        event_cursor: 0,
        audit_cursor: 0,
        created_at: now.toISOString(),
      })
      .execute();
    const { name, ...detail } = config;
    await audit(trx, actor, 'forward.add', name, detail);
  });
}

/** Every destination, by name. */
export async function listDestinations(db: Kysely<Database>): Promise<Destination[]> {
  return (await db.selectFrom('forward_destinations').selectAll().orderBy('name').execute()).map(fromRow);
}

/** One destination. @throws MamoriError `not_found`. */
export async function getDestination(db: Kysely<Database>, name: string): Promise<Destination> {
  const row = await db.selectFrom('forward_destinations').selectAll().where('name', '=', name).executeTakeFirst();
  if (!row) throw new MamoriError('not_found', `no destination named ${name}`);
  return fromRow(row);
}

/** Removes a destination, with its audit entry. @throws MamoriError `not_found`. */
export async function removeDestination(db: Kysely<Database>, actor: Actor, name: string): Promise<void> {
  await db.transaction().execute(async (trx) => {
    const result = await trx.deleteFrom('forward_destinations').where('name', '=', name).executeTakeFirst();
    if (Number(result.numDeletedRows) === 0) throw new MamoriError('not_found', `no destination named ${name}`);
    await audit(trx, actor, 'forward.remove', name);
  });
}

/** Rows stamped per pass: one short transaction, well under both engines' limits. */
const STAMP_BATCH = 2000;

/**
 * Gives the forwarding order to rows not yet ordered, in one transaction per table. The counter
 * row is written first, so stampers (several collectors on one PostgreSQL) take turns on its
 * lock, and each pass's statement sees every row committed before it: a row committed late is
 * stamped after every row stamped before, never behind a cursor. Returns the rows stamped.
 */
export async function stampPending(db: Kysely<Database>): Promise<number> {
  let stamped = 0;
  for (const [table, counter, keys] of [
    ['events', 'events', ['agent_id', 'seq']],
    ['audit_log', 'audit', ['id']],
  ] as const) {
    stamped += await db.transaction().execute(async (trx) => {
      await trx
        .updateTable('forward_counters')
        .set({ value: sql`value` })
        .where('name', '=', counter)
        .execute();
      const base = Number((await trx.selectFrom('forward_counters').select('value').where('name', '=', counter).executeTakeFirstOrThrow()).value);
      const order = sql.join(keys.map((k) => sql.ref(k)));
      const match = sql.join(
        keys.map((k) => sql`${sql.ref(`${table}.${k}`)} = ${sql.ref(`s.${k}`)}`),
        sql` AND `,
      );
      const result = await sql`UPDATE ${sql.table(table)} SET forward_order = ${base} + s.rn
        FROM (SELECT ${order}, ROW_NUMBER() OVER (ORDER BY ${order}) AS rn FROM ${sql.table(table)} WHERE forward_order IS NULL ORDER BY ${order} LIMIT ${STAMP_BATCH}) AS s
        WHERE ${match}`.execute(trx);
      const n = Number(result.numAffectedRows ?? 0);
      if (n > 0)
        await trx
          .updateTable('forward_counters')
          .set({ value: base + n })
          .where('name', '=', counter)
          .execute();
      return n;
    });
  }
  return stamped;
}

/** Events after `cursor`, in forwarding order, with their terminal's host name and segment. */
export async function eventsAfter(db: Kysely<Database>, cursor: number, limit: number): Promise<(EventRow & { forward_order: number })[]> {
  const rows = await db
    .selectFrom('events as e')
    .innerJoin('agents as a', 'a.id', 'e.agent_id')
    .select(['e.agent_id', 'e.seq', 'e.at', 'e.type', 'e.payload', 'e.forward_order', 'a.hostname', 'a.segment'])
    .where('e.forward_order', '>', cursor)
    .orderBy('e.forward_order')
    .limit(limit)
    .execute();
  return rows.map((r) => ({ ...r, forward_order: Number(r.forward_order) }));
}

/** Audit entries after `cursor`, in forwarding order. */
export async function auditAfter(db: Kysely<Database>, cursor: number, limit: number): Promise<(AuditRow & { forward_order: number })[]> {
  const rows = await db
    .selectFrom('audit_log')
    .select(['id', 'at', 'actor', 'role', 'action', 'target', 'detail', 'address', 'forward_order'])
    .where('forward_order', '>', cursor)
    .orderBy('forward_order')
    .limit(limit)
    .execute();
  return rows.map((r) => ({ ...r, forward_order: Number(r.forward_order) }));
}

/**
 * Takes or renews the lease on a destination for `ms`: true when this collector may forward it.
 * Only an enabled destination is leased; an expired lease is taken over.
 */
export async function acquireLease(db: Kysely<Database>, name: string, owner: string, now: Date, ms: number): Promise<boolean> {
  const at = now.toISOString();
  const result = await db
    .updateTable('forward_destinations')
    .set({
      lease_owner: owner,
      lease_until: new Date(now.getTime() + ms).toISOString(),
    })
    .where('name', '=', name)
    .where('enabled', '=', 1)
    .where((eb) => eb.or([eb('lease_owner', 'is', null), eb('lease_owner', '=', owner), eb('lease_until', '<', at)]))
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

/** Gives the lease back (on stop), so another collector takes over at once. */
export async function releaseLease(db: Kysely<Database>, name: string, owner: string): Promise<void> {
  await db
    .updateTable('forward_destinations')
    .set({ lease_owner: null, lease_until: null })
    .where('name', '=', name)
    .where('lease_owner', '=', owner)
    .execute();
}

/**
 * Moves the cursors forward after bytes were written and settled; false when the lease was lost
 * (another collector forwards it now).
 */
export async function advanceCursors(
  db: Kysely<Database>,
  name: string,
  owner: string,
  cursors: { event: number; audit: number },
  now: Date,
): Promise<boolean> {
  const result = await db
    .updateTable('forward_destinations')
    .set({
      event_cursor: sql`CASE WHEN event_cursor < ${cursors.event} THEN ${cursors.event} ELSE event_cursor END`,
      audit_cursor: sql`CASE WHEN audit_cursor < ${cursors.audit} THEN ${cursors.audit} ELSE audit_cursor END`,
      last_success_at: now.toISOString(),
      last_error: null,
    })
    .where('name', '=', name)
    .where('lease_owner', '=', owner)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

/** Records why forwarding failed; the time it last worked stays. */
export async function recordError(db: Kysely<Database>, name: string, owner: string, message: string, now: Date): Promise<void> {
  await db
    .updateTable('forward_destinations')
    .set({
      last_error: message.slice(0, 500),
      last_error_at: now.toISOString(),
    })
    .where('name', '=', name)
    .where('lease_owner', '=', owner)
    .execute();
}

/** Records that the SIEM took what was sent and nothing is pending (a success with nothing to move). */
export async function recordIdle(db: Kysely<Database>, name: string, owner: string, now: Date): Promise<void> {
  await db
    .updateTable('forward_destinations')
    .set({ last_success_at: now.toISOString(), last_error: null })
    .where('name', '=', name)
    .where('lease_owner', '=', owner)
    .execute();
}
