import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';

/** The PostgreSQL server for tests; `.ci/run` starts one and sets it. */
export const PG_URL = process.env.MAMORI_TEST_PG_URL;

/** Creates an empty database on the test server and returns its URL and a function to drop it. */
export async function createTestDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  if (!PG_URL) throw new Error('MAMORI_TEST_PG_URL is not set');
  const name = `mamori_t_${crypto.randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: PG_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(PG_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: PG_URL });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

/** A fresh, empty collector database on one engine: its `--db` URL and how to remove it. */
export async function createEngineDatabase(engine: string, prefix = 'mamori-test-'): Promise<{ url: string; drop: () => Promise<void> }> {
  if (engine === 'postgres') return createTestDatabase();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  return { url: `sqlite:${path.join(dir, 'collector.db')}`, drop: async () => fs.rmSync(dir, { recursive: true, force: true }) };
}
