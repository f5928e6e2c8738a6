import crypto from 'node:crypto';
import os from 'node:os';
import type { Kysely } from 'kysely';
import { MamoriError } from '../../shared';
import { audit, type Actor } from '../admins';
import type { CollectorContext } from '../context';
import type { Database } from '../db/schema';
import { retryDelayMs } from '../forward/forwarder';
import { stampPending } from '../forward/store';
import { formatMail } from './format';
import { createMailer, describeSmtpError, type Mailer, type MailerTimeouts } from './mailer';
import type { Language } from './messages';
import { DEFAULT_NOT_SEEN_DAYS, alertForEvent, lastDigestPeriod, type AlertFacts, type Rule } from './rules';
import { decryptSecret, loadAlertSecret } from './secret';
import {
  acquireAlertLease,
  advanceAlertCursor,
  alertCursor,
  alertEventsAfter,
  dueMails,
  enqueueAlert,
  getSmtp,
  listRules,
  markFailed,
  markSent,
  recordSmtpError,
  recordSmtpSuccess,
  releaseAlertLease,
  type SmtpSettings,
} from './store';

export interface AlertOptions extends MailerTimeouts {
  /** The key file the SMTP password is encrypted with (secret.ts). */
  secretFile: string;
  pollMs: number;
  /** Events read per evaluation pass. */
  batchSize: number;
  leaseMs: number;
  maxBackoffMs: number;
  owner: string;
}

export const DEFAULT_ALERTS: Omit<AlertOptions, 'secretFile' | 'owner'> = {
  pollMs: 500,
  batchSize: 500,
  leaseMs: 30_000,
  maxBackoffMs: 5 * 60_000,
  connectTimeoutMs: 10_000,
  socketTimeoutMs: 30_000,
};

/** The relay's password, decrypted with the secret file. */
export function smtpPassword(smtp: { passwordEnc: string | null }, secretFile: string): string | undefined {
  return smtp.passwordEnc === null ? undefined : decryptSecret(loadAlertSecret(secretFile), smtp.passwordEnc);
}

/**
 * One pass over new events: the mails they raise (each rule for the events received since it was
 * added) and the cursor move, in one transaction. Returns the events read.
 */
export async function evaluateEvents(
  db: Kysely<Database>,
  rules: Rule[],
  owner: string,
  consoleUrl: string | undefined,
  now: Date,
  batchSize: number,
): Promise<number> {
  return db.transaction().execute(async (trx) => {
    const cursor = await alertCursor(trx);
    const events = await alertEventsAfter(trx, cursor, batchSize);
    if (events.length === 0) return 0;
    for (const e of events) {
      const alert = alertForEvent(e);
      // A rule speaks for events received after it was added, not for the history before it.
      if (alert)
        await enqueueAlert(
          trx,
          rules.filter((r) => r.createdAt <= e.received_at),
          alert,
          consoleUrl,
          now,
        );
    }
    if (!(await advanceAlertCursor(trx, owner, events.at(-1)!.forward_order))) throw new LeaseLost();
    return events.length;
  });
}

class LeaseLost extends Error {}

/** Alerts from the collector's state rather than one event: broken chains, silent terminals, digests. */
export async function evaluateState(db: Kysely<Database>, rules: Rule[], consoleUrl: string | undefined, now: Date): Promise<void> {
  const wanted = new Set(rules.map((r) => r.type));
  const alerts: AlertFacts[] = [];
  if (wanted.has('chain_broken')) {
    const broken = await db
      .selectFrom('agents')
      .select(['id', 'hostname', 'segment', 'chain_broken_seq', 'chain_broken_reason'])
      .where('chain_broken_seq', 'is not', null)
      .execute();
    for (const a of broken)
      alerts.push({
        kind: 'chain_broken',
        key: `chain:${a.id}:${a.chain_broken_seq}`,
        segment: a.segment,
        facts: [
          ['hostname', a.hostname],
          ['agentId', a.id],
          ['segment', a.segment],
          ['seq', Number(a.chain_broken_seq)],
          ['reason', a.chain_broken_reason ?? ''],
        ],
        vars: { hostname: a.hostname },
      });
  }
  for (const rule of rules) {
    if (rule.type === 'not_seen') {
      const days = rule.options.days ?? DEFAULT_NOT_SEEN_DAYS;
      const before = new Date(now.getTime() - days * 86_400_000).toISOString();
      const silent = await db.selectFrom('agents').select(['id', 'hostname', 'segment', 'last_seen']).where('last_seen', '<', before).execute();
      for (const a of silent)
        alerts.push({
          kind: 'not_seen',
          ruleId: rule.id,
          key: `not_seen:${rule.id}:${a.id}:${a.last_seen}`,
          segment: a.segment,
          facts: [
            ['hostname', a.hostname],
            ['agentId', a.id],
            ['segment', a.segment],
            ['lastSeen', a.last_seen ?? ''],
          ],
          vars: { hostname: a.hostname, days },
        });
    }
    if (rule.type === 'blocked_digest') {
      const period = rule.options.period ?? 'hourly';
      const { from, to } = lastDigestPeriod(period, now);
      let q = db
        .selectFrom('events as e')
        .innerJoin('agents as a', 'a.id', 'e.agent_id')
        .select(['a.hostname', (eb) => eb.fn.countAll<number | string>().as('n')])
        .where('e.type', '=', 'device.blocked')
        .where('e.at', '>=', from.toISOString())
        .where('e.at', '<', to.toISOString())
        .groupBy('a.hostname')
        .orderBy('a.hostname');
      if (rule.segment !== '*') q = q.where('a.segment', '=', rule.segment);
      const counts = await q.execute();
      const total = counts.reduce((s, c) => s + Number(c.n), 0);
      if (total > 0)
        alerts.push({
          kind: 'blocked_digest',
          ruleId: rule.id,
          key: `digest:${rule.id}:${from.toISOString()}`,
          segment: rule.segment === '*' ? undefined : rule.segment,
          facts: [
            ['period', period],
            ['at', from.toISOString()],
            ['count', total],
            ...counts.slice(0, 200).map((c) => ['hostname', `${c.hostname} (${Number(c.n)})`] as ['hostname', string]),
          ],
          vars: { count: total, period },
        });
    }
  }
  if (alerts.length === 0) return;
  await db.transaction().execute(async (trx) => {
    for (const alert of alerts) await enqueueAlert(trx, rules, alert, consoleUrl, now);
  });
}

/** Sends what is due over one connection; stops at the first relay failure (the rest waits its turn). */
export async function sendDue(
  db: Kysely<Database>,
  smtp: SmtpSettings,
  mailer: Mailer,
  now: () => Date,
  maxBackoffMs: number,
  limit = 50,
): Promise<{ sent: number; failed: number }> {
  let sent = 0;
  for (const mail of await dueMails(db, now(), limit)) {
    try {
      const domain = smtp.from.split('@')[1]!;
      const tag = crypto.createHash('sha256').update(mail.dedup_key).digest('hex').slice(0, 16);
      await mailer.send(mail.recipient, { subject: mail.subject, body: mail.body }, `<mamori-alert-${Number(mail.id)}.${tag}@${domain}>`);
    } catch (err) {
      const message = describeSmtpError(err);
      const attempts = Number(mail.attempts) + 1;
      await markFailed(db, Number(mail.id), message, new Date(now().getTime() + retryDelayMs(attempts, maxBackoffMs)));
      await recordSmtpError(db, message, now());
      return { sent, failed: 1 };
    }
    await markSent(db, Number(mail.id), now());
    await recordSmtpSuccess(db, now());
    sent++;
  }
  return { sent, failed: 0 };
}

export interface Alerts {
  /** Stops the loop and gives back the lease. */
  stop(): Promise<void>;
}

/**
 * Starts alert mail (docs/design.md#alert-mail): the collector holding the lease orders new
 * events, turns them into outbox rows with its cursor move, and sends the outbox with backoff.
 * Ingest never waits for it; a relay down only delays the outbox.
 */
export function startAlerts(ctx: CollectorContext, options: Partial<AlertOptions> & { secretFile: string }): Alerts {
  const opts: AlertOptions = { ...DEFAULT_ALERTS, owner: `${os.hostname()}:${process.pid}:${crypto.randomBytes(4).toString('hex')}`, ...options };
  const { db, clock } = ctx;
  let stopped = false;
  let wake: (() => void) | undefined;
  let failures = 0;
  let leaseAt: number | undefined;
  // The relay's own backoff: while it is down, evaluation goes on and sending waits.
  let relayFailures = 0;
  let relayRetryAt = 0;

  async function pass(): Promise<number> {
    const now = clock.now();
    if (leaseAt === undefined || now.getTime() - leaseAt >= opts.leaseMs / 3) {
      leaseAt = (await acquireAlertLease(db, opts.owner, now, opts.leaseMs)) ? now.getTime() : undefined;
    }
    if (leaseAt === undefined) return opts.pollMs * 4;
    const rules = await listRules(db);
    const smtp = await getSmtp(db);
    if (rules.length > 0) {
      await stampPending(db);
      let read;
      do {
        read = await evaluateEvents(db, rules, opts.owner, smtp?.consoleUrl, clock.now(), opts.batchSize);
      } while (read === opts.batchSize && !stopped);
      await evaluateState(db, rules, smtp?.consoleUrl, clock.now());
    }
    if (!smtp || Date.now() < relayRetryAt || (await dueMails(db, clock.now(), 1)).length === 0) return opts.pollMs;
    let mailer: Mailer | undefined;
    try {
      mailer = createMailer(smtp, smtpPassword(smtp, opts.secretFile), opts);
      const result = await sendDue(db, smtp, mailer, () => clock.now(), opts.maxBackoffMs);
      if (result.failed > 0) relayRetryAt = Date.now() + retryDelayMs(++relayFailures, opts.maxBackoffMs);
      else relayFailures = 0;
      return result.failed > 0 ? opts.pollMs : result.sent > 0 ? 0 : opts.pollMs;
    } catch (err) {
      // The password cannot be decrypted: shown with the relay, retried as the file may be restored.
      await recordSmtpError(db, describeSmtpError(err), clock.now());
      relayRetryAt = Date.now() + retryDelayMs(++relayFailures, opts.maxBackoffMs);
      return opts.pollMs;
    } finally {
      mailer?.close();
    }
  }

  const loop = (async () => {
    while (!stopped) {
      let wait: number;
      try {
        wait = await pass();
        failures = 0;
      } catch (err) {
        // A lost lease rolled its pass back; a database error (PostgreSQL restarting) is retried.
        leaseAt = undefined;
        wait = err instanceof LeaseLost ? opts.pollMs : retryDelayMs(++failures, 30_000);
      }
      if (!stopped && wait > 0)
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, wait);
          wake = () => {
            clearTimeout(t);
            resolve();
          };
        });
    }
    await releaseAlertLease(db, opts.owner).catch(() => undefined);
  })();

  return {
    async stop() {
      stopped = true;
      wake?.();
      await loop;
    },
  };
}

/**
 * Sends a test mail now, straight to the relay (not through the outbox), and records the outcome
 * with the relay and in the audit log.
 * @throws MamoriError `not_found` without a relay, `bad_request` with the relay's error.
 */
export async function sendTestMail(
  db: Kysely<Database>,
  actor: Actor,
  secretFile: string,
  to: { address: string; language: Language },
  now: () => Date,
  timeouts: MailerTimeouts = DEFAULT_ALERTS,
): Promise<void> {
  const smtp = await getSmtp(db);
  if (!smtp) throw new MamoriError('not_found', 'no SMTP relay is set: set one with `alerts smtp`');
  const mail = formatMail({ kind: 'test', key: 'test', facts: [['at', now().toISOString()]], vars: {} }, to.language, smtp.consoleUrl);
  let mailer: Mailer | undefined;
  try {
    mailer = createMailer(smtp, smtpPassword(smtp, secretFile), timeouts);
    await mailer.send(to.address, mail);
  } catch (err) {
    const message = describeSmtpError(err);
    await recordSmtpError(db, message, now());
    await audit(db, actor, 'alerts.test', to.address, { ok: false, error: message }, { now });
    throw new MamoriError('bad_request', `the relay did not take the test mail: ${message}`);
  } finally {
    mailer?.close();
  }
  await recordSmtpSuccess(db, now());
  await audit(db, actor, 'alerts.test', to.address, { ok: true }, { now });
}
