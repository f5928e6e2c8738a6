import fs from 'node:fs';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, Migrator, PostgresDialect, SqliteDialect } from 'kysely';
import pg from 'pg';
import { UsageError } from '../../shared';
import { migrationProvider } from './migrations';
import type { Database } from './schema';

export type DbEngine = 'sqlite' | 'postgres';

/** A parsed `--db` URL. */
export type DbUrl = { engine: 'sqlite'; file: string } | { engine: 'postgres'; url: string };

/**
 * Reads `sqlite:PATH` or `postgres://…` (also `postgresql://`).
 * @throws UsageError naming what is wrong with the URL.
 */
export function parseDbUrl(url: string): DbUrl {
  if (url.startsWith('sqlite:')) {
    const file = url.slice('sqlite:'.length).replace(/^\/\/(?=\/)/, '');
    if (!file) throw new UsageError(`--db ${url}: a sqlite URL needs a file path (sqlite:/var/lib/mamori/collector/collector.db)`);
    return { engine: 'sqlite', file: path.resolve(file) };
  }
  if (/^postgres(ql)?:\/\//.test(url)) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new UsageError(`--db ${url.replace(/:[^:@/]*@/, ':***@')}: not a valid PostgreSQL URL`);
    }
    if (!parsed.hostname) throw new UsageError('--db: the PostgreSQL URL has no host');
    return { engine: 'postgres', url };
  }
  throw new UsageError(`--db must be sqlite:PATH or postgres://…, not '${url.split(':')[0]}:…'`);
}

export interface CollectorDb {
  db: Kysely<Database>;
  engine: DbEngine;
  destroy(): Promise<void>;
}

/**
 * Opens the database and runs the migrations it lacks.
 * @throws Error naming the failed migration, or when the database cannot be reached.
 */
export async function openCollectorDb(url: DbUrl): Promise<CollectorDb> {
  let db: Kysely<Database>;
  if (url.engine === 'sqlite') {
    fs.mkdirSync(path.dirname(url.file), { recursive: true, mode: 0o700 });
    const sqlite = new BetterSqlite3(url.file);
    sqlite.pragma('journal_mode = WAL');
    sqlite.pragma('synchronous = NORMAL');
    sqlite.pragma('busy_timeout = 10000');
    sqlite.pragma('foreign_keys = ON');
    db = new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }) });
  } else {
    const pool = new pg.Pool({ connectionString: url.url, max: 10 });
    // An idle client whose server went away must not crash the process.
    pool.on('error', () => undefined);
    db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  }
  const migrator = new Migrator({
    db,
    provider: migrationProvider(url.engine),
    migrationTableName: 'mamori_migrations',
    migrationLockTableName: 'mamori_migrations_lock',
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    await db.destroy();
    const failed = results?.find((r) => r.status === 'Error');
    throw new Error(`database migration ${failed?.migrationName ?? ''} failed: ${(error as Error).message}`);
  }
  return { db, engine: url.engine, destroy: () => db.destroy() };
}
