import path from 'node:path';
import { Option, type Command } from 'commander';
import { MamoriError, UsageError } from '../../shared';
import { KEY_FILE_NAME } from '../crypto';
import { openCollectorDb, parseDbUrl } from '../db/connect';
import { defaultCollectorDataDir, keyFileFor } from '../server';

/** The options of every command that opens the collector database. */
export interface DbOptions {
  dataDir: string;
  db?: string;
  keyFile?: string;
}

/** The policy-signing key file: `--key-file`, else beside a SQLite database, else in the data directory. */
export function keyFile(opts: DbOptions): string {
  const url = parseDbUrl(dbUrl(opts));
  return keyFileFor(url, opts.keyFile ?? (url.engine === 'postgres' ? path.join(path.resolve(opts.dataDir), KEY_FILE_NAME) : undefined));
}

/** Adds `--key-file` to a command that signs or reads the policy-signing key. */
export function keyFileOption(command: Command): Command {
  return command.option('--key-file <file>', `policy-signing key file, mode 0600 (default: ${KEY_FILE_NAME} beside a SQLite database, in --data-dir for PostgreSQL)`);
}

export function dbUrl(opts: DbOptions): string {
  return opts.db ?? `sqlite:${path.join(path.resolve(opts.dataDir), 'collector.db')}`;
}

export function dbOptions(command: Command): Command {
  return command
    .addOption(new Option('--data-dir <dir>', 'collector data directory').default(defaultCollectorDataDir()))
    .option('--db <url>', 'sqlite:PATH or postgres://… (default: sqlite:<data-dir>/collector.db)');
}

/** Runs `fn` with the collector database open (migrated), closing it afterwards. */
export async function withDb<T>(opts: DbOptions, fn: (db: Awaited<ReturnType<typeof openCollectorDb>>) => Promise<T>): Promise<T> {
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

export function positiveInt(name: string, max = Number.MAX_SAFE_INTEGER) {
  return (value: string): number => {
    if (!/^\d{1,16}$/.test(value) || Number(value) < 1 || Number(value) > max) throw new UsageError(`${name} takes a whole number from 1 to ${max}, not '${value}'`);
    return Number(value);
  };
}

/** Reads a password without echoing it, from a terminal. */
export async function promptPassword(question: string): Promise<string> {
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
export function usage<T>(promise: Promise<T>): Promise<T> {
  return promise.catch((err: unknown) => {
    if (err instanceof MamoriError && (err.code === 'bad_request' || err.code === 'validation_failed')) throw new UsageError(err.message);
    if (err instanceof MamoriError) throw new Error(err.message);
    throw err;
  });
}
