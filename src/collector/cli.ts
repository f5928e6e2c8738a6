import fs from 'node:fs';
import path from 'node:path';
import { Option, type Command } from 'commander';
import { MAX_UNLOCK_MINUTES, MamoriError, SEGMENTS, UsageError, type Segment } from '../shared';
import os from 'node:os';
import { addAdmin, audit, ROLES } from './admins';
import { registerForwardCommands } from './cli-forward';
import { registerRetentionCommands } from './cli-retention';
import { createEnrollmentToken } from './agents';
import { KEY_FILE_NAME, loadSigningKey, rotateSigningKey } from './crypto';
import { unlockCode } from './exceptions';
import { ensureDefaultPolicies } from './policies';
import { openCollectorDb, parseDbUrl } from './db/connect';
import { createCollector, createCollectorLogger, defaultCollectorDataDir, isLoopback, keyFileFor, parseListen, readTls } from './server';

interface DbOptions {
  dataDir: string;
  db?: string;
  keyFile?: string;
}

/** The policy-signing key file: `--key-file`, else beside a SQLite database, else in the data directory. */
function keyFile(opts: DbOptions): string {
  const url = parseDbUrl(dbUrl(opts));
  return keyFileFor(url, opts.keyFile ?? (url.engine === 'postgres' ? path.join(path.resolve(opts.dataDir), KEY_FILE_NAME) : undefined));
}

/** Adds `--key-file` to a command that signs or reads the policy-signing key. */
function keyFileOption(command: Command): Command {
  return command.option('--key-file <file>', `policy-signing key file, mode 0600 (default: ${KEY_FILE_NAME} beside a SQLite database, in --data-dir for PostgreSQL)`);
}

function dbUrl(opts: DbOptions): string {
  return opts.db ?? `sqlite:${path.join(path.resolve(opts.dataDir), 'collector.db')}`;
}

function dbOptions(command: Command): Command {
  return command
    .addOption(new Option('--data-dir <dir>', 'collector data directory').default(defaultCollectorDataDir()))
    .option('--db <url>', 'sqlite:PATH or postgres://… (default: sqlite:<data-dir>/collector.db)');
}

/** Runs `fn` with the collector database open (migrated), closing it afterwards. */
async function withDb<T>(opts: DbOptions, fn: (db: Awaited<ReturnType<typeof openCollectorDb>>) => Promise<T>): Promise<T> {
  const handle = await openCollectorDb(parseDbUrl(dbUrl(opts)));
  try {
    return await fn(handle);
  } finally {
    await handle.destroy();
  }
}

/** The shortest and longest life of an enrollment token. */
export const MIN_TOKEN_TTL_MS = 60_000;
export const MAX_TOKEN_TTL_MS = 365 * 86_400_000;

/**
 * `24h`, `30m`, `7d`, `90s` → milliseconds, from one minute to 365 days.
 * @throws UsageError for anything else (`0s`, `99999d`, `1.5h`).
 */
export function parseDuration(text: string): number {
  const match = /^(\d{1,9})\s*([smhd])$/.exec(text.trim());
  if (!match) throw new UsageError(`--ttl takes a duration such as 24h, 30m or 7d, not '${text}'`);
  const unit = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[match[2] as 's' | 'm' | 'h' | 'd'];
  const ms = Number(match[1]) * unit;
  if (ms < MIN_TOKEN_TTL_MS || ms > MAX_TOKEN_TTL_MS) throw new UsageError(`--ttl must be from 1 minute to 365 days, not '${text}'`);
  return ms;
}

function positiveInt(name: string, max = Number.MAX_SAFE_INTEGER) {
  return (value: string): number => {
    if (!/^\d{1,16}$/.test(value) || Number(value) < 1 || Number(value) > max) throw new UsageError(`${name} takes a whole number from 1 to ${max}, not '${value}'`);
    return Number(value);
  };
}

/** Reads a password without echoing it, from a terminal. */
async function promptPassword(question: string): Promise<string> {
  if (!process.stdin.isTTY) throw new UsageError('set MAMORI_ADMIN_PASSWORD or run on a terminal to be asked for the password');
  process.stderr.write(question);
  const stdin = process.stdin;
  stdin.setRawMode(true);
  stdin.resume();
  stdin.setEncoding('utf8');
  return new Promise((resolve, reject) => {
    let value = '';
    const onData = (chunk: string) => {
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n') {
          stdin.setRawMode(false);
          stdin.pause();
          stdin.off('data', onData);
          process.stderr.write('\n');
          return resolve(value);
        }
        if (ch === '\u0003') {
          stdin.setRawMode(false);
          return reject(new UsageError('cancelled'));
        }
        if (ch === '\u007f') value = value.slice(0, -1);
        else value += ch;
      }
    };
    stdin.on('data', onData);
  });
}

/** MamoriErrors from the domain are bad usage at the command line. */
function usage<T>(promise: Promise<T>): Promise<T> {
  return promise.catch((err: unknown) => {
    if (err instanceof MamoriError && (err.code === 'bad_request' || err.code === 'validation_failed')) throw new UsageError(err.message);
    if (err instanceof MamoriError) throw new Error(err.message);
    throw err;
  });
}

/** Adds `mamori collector …` and `mamori export …` to the program. */
export function registerCollectorCommands(program: Command): void {
  const collector = program
    .command('collector')
    .description('the central collector: API, policies, ledger')
    .addHelpText('after', `\nDefault data directory: ${defaultCollectorDataDir()} (Linux /var/lib/mamori/collector, Windows %ProgramData%\\Mamori\\collector, macOS /Library/Application Support/Mamori/collector)`);
  registerForwardCommands(collector);
  registerRetentionCommands(collector);

  keyFileOption(dbOptions(
    collector
      .command('serve')
      .description('serve the collector API (and console) until SIGINT or SIGTERM')
      .option('--listen <host:port>', 'address to listen on', '127.0.0.1:8765')
      .option('--tls-cert <file>', 'TLS certificate (PEM)')
      .option('--tls-key <file>', 'TLS private key (PEM)')
      .option('--insecure-http', 'allow plain HTTP on a non-loopback address'),
  )).action(async (opts: DbOptions & { listen: string; tlsCert?: string; tlsKey?: string; insecureHttp?: boolean }) => {
    const { host, port } = parseListen(opts.listen);
    if (!!opts.tlsCert !== !!opts.tlsKey) throw new UsageError('--tls-cert and --tls-key go together');
    const https = opts.tlsCert && opts.tlsKey ? readTls(opts.tlsCert, opts.tlsKey) : undefined;
    if (!https && !isLoopback(host) && !opts.insecureHttp) {
      throw new UsageError(`refusing plain HTTP on ${host}: give --tls-cert and --tls-key, or --insecure-http`);
    }
    if (!opts.db) fs.mkdirSync(path.resolve(opts.dataDir), { recursive: true, mode: 0o700 });
    const logger = createCollectorLogger();
    const instance = await createCollector({ db: dbUrl(opts), logger, https, keyFile: keyFile(opts) });
    const url = await instance.listen({ host, port });
    process.stdout.write(`listening on ${url}\n`);
    await new Promise<void>((resolve) => {
      const stop = (signal: string) => {
        logger.info({ signal }, 'stopping');
        void instance.stop().then(resolve);
      };
      process.once('SIGINT', () => stop('SIGINT'));
      process.once('SIGTERM', () => stop('SIGTERM'));
    });
  });

  const admin = collector.command('admin').description('admin and auditor accounts');
  dbOptions(
    admin
      .command('add <user>')
      .description('add an admin or auditor; the password comes from MAMORI_ADMIN_PASSWORD or a prompt; prints the API token')
      .addOption(new Option('--role <role>', 'admin or auditor').choices([...ROLES]).makeOptionMandatory())
      .option('--reset', "replace an existing user's role, password and API token and end their console sessions (audited)"),
  ).action(async (user: string, opts: DbOptions & { role: string; reset?: boolean }) => {
    const password = process.env.MAMORI_ADMIN_PASSWORD ?? (await promptPassword(`password for ${user}: `));
    const actor = { username: `cli:${os.userInfo().username}`, role: 'admin' as const, address: os.hostname() };
    const token = await withDb(opts, ({ db }) =>
      usage(addAdmin(db, user, opts.role, password, { reset: !!opts.reset, actor })).catch((err: unknown) => {
        if (err instanceof UsageError && !opts.reset && /already exists/.test(err.message)) throw new UsageError(`${err.message}; give --reset to replace its role, password and API token`);
        throw err;
      }),
    );
    process.stdout.write(`${token}\n`);
  });

  const key = keyFileOption(
    dbOptions(collector.command('key').description("print the collector's policy-signing public key (SPKI, base64): the PUBKEY installers pin")),
  ).action(async (opts: DbOptions) => {
    const publicKey = await withDb(opts, async ({ db }) => (await loadSigningKey(db, keyFile(opts))).publicKey);
    process.stdout.write(`${publicKey}\n`);
  });
  keyFileOption(
    dbOptions(
      key
        .command('rotate')
        .description('make a new policy-signing key, re-sign every segment\'s policy with it and publish the change signed by the old key; prints the new public key'),
    ),
  ).action(async (_opts: DbOptions, command: Command) => {
    // `--data-dir` and the others may be parsed by `key` itself: read them with the parent's.
    const opts = command.optsWithGlobals<DbOptions>();
    const file = keyFile(opts);
    const actor = { username: `cli:${os.userInfo().username}`, role: 'admin' as const, address: os.hostname() };
    const result = await withDb(opts, async ({ db }) => {
      await ensureDefaultPolicies(db, await loadSigningKey(db, file));
      return rotateSigningKey(db, file, actor);
    });
    process.stderr.write(`rotated the policy-signing key in ${file}; policies re-signed: ${Object.entries(result.versions).map(([s, v]) => `${s} v${v}`).join(', ')}\n`);
    process.stdout.write(`${result.publicKey}\n`);
  });

  const token = collector.command('token').description('enrollment tokens');
  dbOptions(
    token
      .command('create')
      .description('make an enrollment token for a segment; prints it')
      .addOption(new Option('--segment <segment>', 'mynumber, lgwan or internet').choices([...SEGMENTS]).makeOptionMandatory())
      .option('--ttl <duration>', 'how long it stays valid (e.g. 24h, 7d)', '24h')
      .option('--uses <n>', 'how many terminals may enroll with it', positiveInt('--uses'), 1),
  ).action(async (opts: DbOptions & { segment: Segment; ttl: string; uses: number }) => {
    const ttlMs = parseDuration(opts.ttl);
    const value = await withDb(opts, ({ db }) => createEnrollmentToken(db, { segment: opts.segment, ttlMs, uses: opts.uses }));
    process.stdout.write(`${value}\n`);
  });

  dbOptions(
    collector
      .command('unlock')
      .description("answer a terminal's request code (申請コード) with an unlock code (許可コード)")
      .requiredOption('--request <code>', 'the request code the terminal shows, e.g. 3F7K9-QM2X9-ABCD12')
      .option('--device <scope>', "the device as the terminal shows it, when the request has not reached the collector: 'VVVV:PPPP serial S' or 'VVVV:PPPP port P'")
      .option('--minutes <n>', 'how long the stick may be used', positiveInt('--minutes', MAX_UNLOCK_MINUTES), 60),
  ).action(async (opts: DbOptions & { request: string; minutes: number; device?: string }) => {
    const result = await withDb(opts, async ({ db }) => {
      const answer = await usage(unlockCode(db, opts.request, opts.minutes, opts.device));
      const who = `cli:${os.userInfo().username}`;
      await audit(db, { username: who, role: 'admin', address: os.hostname() }, 'unlock', answer.agentId, { requestCode: opts.request, minutes: opts.minutes, device: answer.scopeText });
      return answer;
    });
    // The exact scope, so whoever reads the code out knows what it lets through.
    process.stderr.write(`unlock code for ${result.hostname}, device ${result.scopeText}, ${opts.minutes} min:\n`);
    process.stdout.write(`${result.code}\n`);
  });

  program
    .command('export')
    .description('exports from a collector (admin API token in MAMORI_ADMIN_TOKEN)')
    .command('inventory')
    .description('download the terminal ledger (端末台帳)')
    .requiredOption('--collector <url>', 'collector URL')
    .addOption(new Option('--format <format>', 'csv, xlsx or json').choices(['csv', 'xlsx', 'json']).makeOptionMandatory())
    .addOption(new Option('--segment <segment>', 'only one segment').choices([...SEGMENTS]))
    .addOption(new Option('--lang <lang>', 'header language').choices(['ja', 'en']).default('ja'))
    .requiredOption('-o, --output <file>', 'file to write')
    .action(async (opts: { collector: string; format: string; segment?: string; lang: string; output: string }) => {
      const tokenValue = process.env.MAMORI_ADMIN_TOKEN;
      if (!tokenValue) throw new UsageError('set MAMORI_ADMIN_TOKEN to an admin or auditor API token');
      let base: URL;
      try {
        base = new URL('/api/v1/admin/inventory/export', opts.collector);
      } catch {
        throw new UsageError(`--collector is not a URL: ${opts.collector}`);
      }
      base.searchParams.set('format', opts.format);
      base.searchParams.set('lang', opts.lang);
      if (opts.segment) base.searchParams.set('segment', opts.segment);
      let res: Response;
      try {
        res = await fetch(base, { headers: { authorization: `Bearer ${tokenValue}` } });
      } catch (err) {
        throw new Error(`cannot reach ${base.origin}: ${(err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message}`);
      }
      const body = Buffer.from(await res.arrayBuffer());
      if (!res.ok) {
        let message = `HTTP ${res.status}`;
        try {
          message = (JSON.parse(body.toString('utf8')) as { error: { message: string } }).error.message;
        } catch {
          // not the error body: keep the status
        }
        throw new Error(`export refused: ${message}`);
      }
      fs.writeFileSync(opts.output, body);
      process.stderr.write(`wrote ${body.length} bytes to ${opts.output}\n`);
    });
}
