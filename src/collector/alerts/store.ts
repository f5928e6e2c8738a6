import { sql, type Kysely, type Selectable } from 'kysely';
import { MamoriError } from '../../shared';
import { audit, type Actor } from '../admins';
import type { AlertOutboxTable, AlertSmtpTable, Database } from '../db/schema';
import { formatMail } from './format';
import { DEFAULT_RATE_PER_HOUR, isPlainAddress, ruleMatches, type AlertFacts, type Rule, type RuleConfig } from './rules';

export const SECURITIES = ['starttls', 'tls', 'none'] as const;
export type Security = (typeof SECURITIES)[number];

/** The relay as an admin configures it (the password travels apart from it). */
export interface SmtpConfig {
  host: string;
  port: number;
  security: Security;
  username?: string;
  from: string;
  /** The console's address, put before links such as `/incidents/<agentId>:<receipt>`. */
  consoleUrl?: string;
}

/** The relay with where it stands; never the password. */
export interface SmtpSettings extends SmtpConfig {
  hasPassword: boolean;
  lastSuccessAt: string | null;
  lastError: string | null;
  lastErrorAt: string | null;
}

const fail = (msg: string): never => {
  throw new MamoriError('validation_failed', msg);
};

/**
 * Checks relay settings field by field.
 * @throws MamoriError `validation_failed` naming the field (an unknown field is refused by name).
 */
export function validateSmtp(input: Record<string, unknown>): SmtpConfig {
  for (const key of Object.keys(input)) if (!['host', 'port', 'security', 'username', 'from', 'consoleUrl'].includes(key)) fail(`unknown field '${key}'`);
  const { host, port, security, username, from, consoleUrl } = input;
  if (typeof host !== 'string' || !/^[A-Za-z0-9.:[\]-]{1,253}$/.test(host)) fail('host: a host name or an IP address');
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) fail('port: a whole number from 1 to 65535');
  if (!(SECURITIES as readonly unknown[]).includes(security)) fail(`security: starttls, tls or none, not '${String(security)}'`);
  if (username !== undefined && (typeof username !== 'string' || !/^[\x21-\x7e]{1,254}$/.test(username))) fail('username: printable ASCII without spaces');
  if (!isPlainAddress(from)) fail('from: a plain mail address');
  if (consoleUrl !== undefined && (typeof consoleUrl !== 'string' || !/^https?:\/\/[\x21-\x7e]{1,500}$/.test(consoleUrl))) fail('consoleUrl: an http(s) URL');
  return { host, port, security, username, from, consoleUrl } as SmtpConfig;
}

function smtpFromRow(r: AlertSmtpTable): SmtpSettings {
  return {
    host: r.host,
    port: Number(r.port),
    security: r.security as Security,
    username: r.username ?? undefined,
    from: r.from_address,
    consoleUrl: r.console_url ?? undefined,
    hasPassword: r.password_enc !== null,
    lastSuccessAt: r.last_success_at,
    lastError: r.last_error,
    lastErrorAt: r.last_error_at,
  };
}

/**
 * Sets the relay, with its audit entry (the password never in it). `passwordEnc` is the password
 * already encrypted (secret.ts); undefined keeps the stored one, null removes it.
 */
export async function setSmtp(db: Kysely<Database>, actor: Actor, config: SmtpConfig, passwordEnc: string | null | undefined, now: Date): Promise<void> {
  await db.transaction().execute(async (trx) => {
    const existing = await trx.selectFrom('alert_smtp').select('password_enc').where('name', '=', 'default').executeTakeFirst();
    const values = {
      host: config.host,
      port: config.port,
      security: config.security,
      username: config.username ?? null,
      password_enc: passwordEnc === undefined ? (existing?.password_enc ?? null) : passwordEnc,
      from_address: config.from,
      console_url: config.consoleUrl ?? null,
      last_error: null,
      last_error_at: null,
      updated_at: now.toISOString(),
    };
    if (existing) await trx.updateTable('alert_smtp').set(values).where('name', '=', 'default').execute();
    else
      await trx
        .insertInto('alert_smtp')
        .values({ name: 'default', ...values })
        .execute();
    await audit(
      trx,
      actor,
      'alerts.smtp',
      `${config.host}:${config.port}`,
      { ...config, password: passwordEnc === undefined ? 'kept' : passwordEnc === null ? 'none' : 'set' },
      { now: () => now },
    );
  });
}

/** The relay, or undefined when none is set. */
export async function getSmtp(db: Kysely<Database>): Promise<(SmtpSettings & { passwordEnc: string | null }) | undefined> {
  const row = await db.selectFrom('alert_smtp').selectAll().where('name', '=', 'default').executeTakeFirst();
  return row ? { ...smtpFromRow(row), passwordEnc: row.password_enc } : undefined;
}

/** Records that the relay took a mail. */
export async function recordSmtpSuccess(db: Kysely<Database>, now: Date): Promise<void> {
  await db.updateTable('alert_smtp').set({ last_success_at: now.toISOString(), last_error: null }).where('name', '=', 'default').execute();
}

/** Records why the relay refused; the time it last worked stays. */
export async function recordSmtpError(db: Kysely<Database>, message: string, now: Date): Promise<void> {
  await db
    .updateTable('alert_smtp')
    .set({ last_error: message.slice(0, 500), last_error_at: now.toISOString() })
    .where('name', '=', 'default')
    .execute();
}

/** Adds a rule, with its audit entry; returns its id. */
export async function addRule(db: Kysely<Database>, actor: Actor, rule: RuleConfig, now: Date): Promise<number> {
  return db.transaction().execute(async (trx) => {
    const row = await trx
      .insertInto('alert_rules')
      .values({
        alert_type: rule.type,
        segment: rule.segment,
        recipients: JSON.stringify(rule.recipients),
        options: JSON.stringify(rule.options),
        created_at: now.toISOString(),
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    await audit(trx, actor, 'alerts.add', String(row.id), rule, { now: () => now });
    return Number(row.id);
  });
}

/** Every rule, by id. */
export async function listRules(db: Kysely<Database>): Promise<Rule[]> {
  const rows = await db.selectFrom('alert_rules').selectAll().orderBy('id').execute();
  return rows.map((r) => ({
    id: Number(r.id),
    type: r.alert_type as Rule['type'],
    segment: r.segment,
    recipients: JSON.parse(r.recipients) as Rule['recipients'],
    options: JSON.parse(r.options) as Rule['options'],
    createdAt: r.created_at,
  }));
}

/** Removes a rule, with its audit entry; mails already in the outbox are still sent. @throws MamoriError `not_found`. */
export async function removeRule(db: Kysely<Database>, actor: Actor, id: number, now: Date): Promise<void> {
  await db.transaction().execute(async (trx) => {
    const result = await trx.deleteFrom('alert_rules').where('id', '=', id).executeTakeFirst();
    if (Number(result.numDeletedRows) === 0) throw new MamoriError('not_found', `no alert rule ${id}`);
    await audit(trx, actor, 'alerts.remove', String(id), {}, { now: () => now });
  });
}

/**
 * Puts one mail per matching rule and recipient into the outbox, inside the caller's transaction.
 * A key already there is skipped (deduplication); a rule over its hourly limit has the mail kept as
 * `suppressed`, visible in `alerts list`, not sent. Returns the mails queued to send.
 */
export async function enqueueAlert(trx: Kysely<Database>, rules: Rule[], alert: AlertFacts, consoleUrl: string | undefined, now: Date): Promise<number> {
  let queued = 0;
  const at = now.toISOString();
  const hourAgo = new Date(now.getTime() - 3_600_000).toISOString();
  for (const rule of rules) {
    if (!ruleMatches(rule, alert)) continue;
    for (const r of rule.recipients) {
      const key = `${alert.key}|${r.address}`;
      const mail = formatMail(alert, r.language, consoleUrl);
      const recent = await trx
        .selectFrom('alert_outbox')
        .select((eb) => eb.fn.countAll<number | string>().as('n'))
        .where('rule_id', '=', rule.id)
        .where('created_at', '>', hourAgo)
        .where('state', '!=', 'suppressed')
        .executeTakeFirstOrThrow();
      const state = Number(recent.n) >= (rule.options.ratePerHour ?? DEFAULT_RATE_PER_HOUR) ? 'suppressed' : 'pending';
      const result = await trx
        .insertInto('alert_outbox')
        .values({
          dedup_key: key,
          rule_id: rule.id,
          recipient: r.address,
          language: r.language,
          subject: mail.subject,
          body: mail.body,
          state,
          attempts: 0,
          next_attempt_at: at,
          created_at: at,
        })
        .onConflict((oc) => oc.column('dedup_key').doNothing())
        .returning('id')
        .executeTakeFirst();
      if (state === 'pending' && result) queued++;
    }
  }
  return queued;
}

/** Mails due to be sent, oldest first. */
export async function dueMails(db: Kysely<Database>, now: Date, limit: number): Promise<Selectable<AlertOutboxTable>[]> {
  return db
    .selectFrom('alert_outbox')
    .selectAll()
    .where('state', '=', 'pending')
    .where('next_attempt_at', '<=', now.toISOString())
    .orderBy('id')
    .limit(limit)
    .execute();
}

export async function markSent(db: Kysely<Database>, id: number, now: Date): Promise<void> {
  await db
    .updateTable('alert_outbox')
    .set({ state: 'sent', sent_at: now.toISOString(), last_error: null, attempts: sql`attempts + 1` })
    .where('id', '=', id)
    .where('state', '=', 'pending')
    .execute();
}

export async function markFailed(db: Kysely<Database>, id: number, message: string, next: Date): Promise<void> {
  await db
    .updateTable('alert_outbox')
    .set({ last_error: message.slice(0, 500), next_attempt_at: next.toISOString(), attempts: sql`attempts + 1` })
    .where('id', '=', id)
    .where('state', '=', 'pending')
    .execute();
}

/** How the outbox stands, for `alerts list` and the console. */
export interface OutboxSummary {
  pending: number;
  sent: number;
  suppressed: number;
  oldestPendingAt: string | null;
  lastError: string | null;
}

export async function outboxSummary(db: Kysely<Database>): Promise<OutboxSummary> {
  const rows = await db
    .selectFrom('alert_outbox')
    .select(['state', (eb) => eb.fn.countAll<number | string>().as('n'), (eb) => eb.fn.min('created_at').as('oldest')])
    .groupBy('state')
    .execute();
  const count = (s: string) => Number(rows.find((r) => r.state === s)?.n ?? 0);
  const err = await db
    .selectFrom('alert_outbox')
    .select('last_error')
    .where('state', '=', 'pending')
    .where('last_error', 'is not', null)
    .orderBy('id', 'desc')
    .limit(1)
    .executeTakeFirst();
  return {
    pending: count('pending'),
    sent: count('sent'),
    suppressed: count('suppressed'),
    oldestPendingAt: (rows.find((r) => r.state === 'pending')?.oldest as string | undefined) ?? null,
    lastError: err?.last_error ?? null,
  };
}

/** Events after `cursor` in forwarding order, with their terminal and when the collector received them. */
export async function alertEventsAfter(db: Kysely<Database>, cursor: number, limit: number) {
  const rows = await db
    .selectFrom('events as e')
    .innerJoin('agents as a', 'a.id', 'e.agent_id')
    .select(['e.agent_id', 'e.seq', 'e.at', 'e.type', 'e.payload', 'e.received_at', 'e.forward_order', 'a.hostname', 'a.segment'])
    .where('e.forward_order', '>', cursor)
    .orderBy('e.forward_order')
    .limit(limit)
    .execute();
  return rows.map((r) => ({ ...r, seq: Number(r.seq), forward_order: Number(r.forward_order) }));
}

/** Takes or renews the evaluator's lease for `ms`: true when this collector evaluates and sends. */
export async function acquireAlertLease(db: Kysely<Database>, owner: string, now: Date, ms: number): Promise<boolean> {
  const result = await db
    .updateTable('alert_state')
    .set({ lease_owner: owner, lease_until: new Date(now.getTime() + ms).toISOString() })
    .where('name', '=', 'alerts')
    .where((eb) => eb.or([eb('lease_owner', 'is', null), eb('lease_owner', '=', owner), eb('lease_until', '<', now.toISOString())]))
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

export async function releaseAlertLease(db: Kysely<Database>, owner: string): Promise<void> {
  await db.updateTable('alert_state').set({ lease_owner: null, lease_until: null }).where('name', '=', 'alerts').where('lease_owner', '=', owner).execute();
}

/** The evaluator's cursor over `events.forward_order`. */
export async function alertCursor(db: Kysely<Database>): Promise<number> {
  return Number((await db.selectFrom('alert_state').select('event_cursor').where('name', '=', 'alerts').executeTakeFirstOrThrow()).event_cursor);
}

/** Moves the cursor, in the transaction that queued the mails; false when the lease was lost (the caller rolls back). */
export async function advanceAlertCursor(trx: Kysely<Database>, owner: string, cursor: number): Promise<boolean> {
  const result = await trx
    .updateTable('alert_state')
    .set({ event_cursor: cursor })
    .where('name', '=', 'alerts')
    .where('lease_owner', '=', owner)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}
