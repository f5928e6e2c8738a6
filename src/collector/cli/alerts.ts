import os from 'node:os';
import path from 'node:path';
import { Option, type Command } from 'commander';
import { UsageError, systemClock } from '../../shared';
import { KEY_FILE_NAME } from '../crypto';
import { openCollectorDb, parseDbUrl } from '../db/connect';
import { alertSecretFileFor, encryptSecret, loadAlertSecret } from '../alerts/secret';
import { sendTestMail } from '../alerts/service';
import { ALERT_TYPES, DIGEST_PERIODS, parseRecipient, validateRule, type Rule } from '../alerts/rules';
import { SECURITIES, addRule, getSmtp, listRules, outboxSummary, removeRule, setSmtp, validateSmtp } from '../alerts/store';
import { defaultCollectorDataDir, keyFileFor } from '../server';

interface DbOptions {
  dataDir: string;
  db?: string;
  keyFile?: string;
}

function withDbOptions(command: Command): Command {
  return command
    .addOption(new Option('--data-dir <dir>', 'collector data directory').default(defaultCollectorDataDir()))
    .option('--db <url>', 'sqlite:PATH or postgres://… (default: sqlite:<data-dir>/collector.db)')
    .option(
      '--key-file <file>',
      `the policy-signing key file; the alert secret (alert-smtp.key) lives beside it (default: ${KEY_FILE_NAME} beside a SQLite database, in --data-dir for PostgreSQL)`,
    );
}

const dbUrl = (opts: DbOptions) => opts.db ?? `sqlite:${path.join(path.resolve(opts.dataDir), 'collector.db')}`;

/** The alert secret file the collector started with the same options uses. */
function secretFile(opts: DbOptions): string {
  const url = parseDbUrl(dbUrl(opts));
  return alertSecretFileFor(keyFileFor(url, opts.keyFile ?? (url.engine === 'postgres' ? path.join(path.resolve(opts.dataDir), KEY_FILE_NAME) : undefined)));
}

async function withDb<T>(opts: DbOptions, fn: (db: Awaited<ReturnType<typeof openCollectorDb>>) => Promise<T>): Promise<T> {
  const handle = await openCollectorDb(parseDbUrl(dbUrl(opts)));
  try {
    return await fn(handle);
  } finally {
    await handle.destroy();
  }
}

const cliActor = () => ({ username: `cli:${os.userInfo().username}`, role: 'admin' as const, address: os.hostname() });

function whole(name: string) {
  return (value: string): number => {
    if (!/^\d{1,6}$/.test(value)) throw new UsageError(`${name} takes a whole number, not '${value}'`);
    return Number(value);
  };
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
}

/** One line per rule. */
export function describeRule(r: Rule): string {
  const opts = Object.entries(r.options)
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(' ');
  return `${r.id}\t${r.type}\t${r.segment}\t${r.recipients.map((x) => `${x.address}:${x.language}`).join(',')}${opts ? `\t${opts}` : ''}`;
}

/** Adds `mamori collector alerts smtp|add|list|remove|test` (docs/design.md#alert-mail). */
export function registerAlertCommands(collector: Command): void {
  const alerts = collector.command('alerts').description('alert mail to the CSIRT: the SMTP relay, rules, the outbox');

  withDbOptions(
    alerts
      .command('smtp')
      .description('set the SMTP relay; the password is read from standard input with --password-stdin and stored encrypted')
      .requiredOption('--host <host>', 'the relay host')
      .requiredOption('--port <port>', 'its port', whole('--port'))
      .addOption(new Option('--security <security>', 'starttls, tls (implicit) or none').choices([...SECURITIES]).default('starttls'))
      .option('--user <user>', 'the user to authenticate as (none: no authentication)')
      .option('--password-stdin', 'read the password from standard input')
      .requiredOption('--from <address>', 'the sender address')
      .option('--console-url <url>', "the console's address, for links in mails (e.g. https://collector.example:8443)"),
  ).action(
    async (opts: DbOptions & { host: string; port: number; security: string; user?: string; passwordStdin?: boolean; from: string; consoleUrl?: string }) => {
      const config = validateSmtp({
        host: opts.host,
        port: opts.port,
        security: opts.security,
        username: opts.user,
        from: opts.from,
        consoleUrl: opts.consoleUrl,
      });
      if (opts.passwordStdin && !opts.user) throw new UsageError('--password-stdin needs --user');
      const password = opts.passwordStdin ? await readStdin() : undefined;
      const enc = password === undefined ? (opts.user ? undefined : null) : encryptSecret(loadAlertSecret(secretFile(opts)), password);
      await withDb(opts, ({ db }) => setSmtp(db, cliActor(), config, enc, systemClock.now()));
      process.stdout.write(`relay set: ${config.host}:${config.port} (${config.security})\n`);
    },
  );

  withDbOptions(
    alerts
      .command('add <type>')
      .description(`add a rule: ${ALERT_TYPES.join(', ')}`)
      .requiredOption('--to <recipient...>', 'recipients, ADDRESS or ADDRESS:en (default language ja)')
      .option('--segment <segment>', 'mynumber, lgwan, internet or * for every terminal', '*')
      .option('--days <n>', 'not_seen: days without contact (default 7)', whole('--days'))
      .addOption(new Option('--period <period>', 'blocked_digest: hourly or daily (default hourly)').choices([...DIGEST_PERIODS]))
      .option('--rate <n>', 'mails per hour at most for this rule (default 30)', whole('--rate')),
  ).action(async (type: string, opts: DbOptions & { to: string[]; segment: string; days?: number; period?: string; rate?: number }) => {
    const options: Record<string, unknown> = {};
    if (opts.days !== undefined) options.days = opts.days;
    if (opts.period !== undefined) options.period = opts.period;
    if (opts.rate !== undefined) options.ratePerHour = opts.rate;
    const rule = validateRule({ type, segment: opts.segment, recipients: opts.to.map(parseRecipient), options });
    const id = await withDb(opts, ({ db }) => addRule(db, cliActor(), rule, systemClock.now()));
    process.stdout.write(`added rule ${id}\n`);
  });

  withDbOptions(alerts.command('list').description('the relay with when it last worked, the rules and the outbox').option('--json', 'as JSON')).action(
    async (opts: DbOptions & { json?: boolean }) => {
      const { smtp, rules, outbox } = await withDb(opts, async ({ db }) => ({
        smtp: await getSmtp(db),
        rules: await listRules(db),
        outbox: await outboxSummary(db),
      }));
      const relay = smtp ? (({ passwordEnc: _, ...rest }) => rest)(smtp) : null;
      if (opts.json) {
        process.stdout.write(`${JSON.stringify({ smtp: relay, rules, outbox }, null, 2)}\n`);
        return;
      }
      const lines = [
        relay
          ? `relay\t${relay.host}:${relay.port} ${relay.security}${relay.username ? ` user=${relay.username}` : ''} from=${relay.from}\t${relay.lastError ? `ERROR ${relay.lastError} (at ${relay.lastErrorAt})` : relay.lastSuccessAt ? 'ok' : 'not yet used'}\tlast worked: ${relay.lastSuccessAt ?? 'never'}`
          : 'relay\tnot set',
        ...(rules.length === 0 ? ['no rules'] : rules.map(describeRule)),
        `outbox\tpending ${outbox.pending}, sent ${outbox.sent}, suppressed ${outbox.suppressed}${outbox.oldestPendingAt ? `, oldest pending ${outbox.oldestPendingAt}` : ''}${outbox.lastError ? `, last error: ${outbox.lastError}` : ''}`,
      ];
      process.stdout.write(`${lines.join('\n')}\n`);
    },
  );

  withDbOptions(alerts.command('remove <id>').description('remove a rule')).action(async (id: string, opts: DbOptions) => {
    await withDb(opts, ({ db }) => removeRule(db, cliActor(), whole('rule id')(id), systemClock.now()));
    process.stdout.write(`removed rule ${id}\n`);
  });

  withDbOptions(alerts.command('test <recipient>').description('send a test mail now (ADDRESS or ADDRESS:en)')).action(
    async (recipient: string, opts: DbOptions) => {
      const to = parseRecipient(recipient);
      await withDb(opts, ({ db }) => sendTestMail(db, cliActor(), secretFile(opts), to, () => systemClock.now()));
      process.stdout.write(`sent a test mail to ${to.address}\n`);
    },
  );
}
