import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openCollectorDb, parseDbUrl, type CollectorDb } from '../../src/collector/db/connect';
import { acquireLease, addDestination, advanceCursors, auditAfter, stampPending } from '../../src/collector/forward/store';
import { PG_URL, createEngineDatabase } from '../helpers/pg';

const ENGINES = (process.env.MAMORI_TEST_DB ?? 'sqlite,postgres').split(',');
const ACTOR = { username: 'kanri', role: 'admin' as const, address: '127.0.0.1' };
const now = () => new Date();

describe.each(ENGINES)('forwarding store on %s', (engine) => {
  const skip = engine === 'postgres' && !PG_URL;
  let handle: CollectorDb;
  let url: string;
  let drop: () => Promise<void>;

  beforeEach(async () => {
    if (skip) return;
    ({ url, drop } = await createEngineDatabase(engine, 'mamori-fwdstore-'));
    handle = await openCollectorDb(parseDbUrl(url));
  });
  afterEach(async () => {
    if (skip) return;
    await handle.destroy();
    await drop();
  });

  const insertAudit = (target: string) =>
    handle.db
      .insertInto('audit_log')
      .values({ at: now().toISOString(), actor: 'x', role: 'admin', action: 'test', target, detail: '{}', address: '' })
      .execute();

  it.skipIf(skip)('only the lease holder moves a cursor; an expired lease is taken over', async () => {
    await addDestination(
      handle.db,
      ACTOR,
      { name: 'soc', host: '127.0.0.1', port: 1, transport: 'tcp', format: 'rfc5424', sendEvents: true, sendAudit: true, enabled: true },
      now(),
    );
    const t = now();
    expect(await acquireLease(handle.db, 'soc', 'a', t, 30_000)).toBe(true);
    expect(await acquireLease(handle.db, 'soc', 'b', t, 30_000)).toBe(false);
    expect(await advanceCursors(handle.db, 'soc', 'b', { event: 5, audit: 5 }, t)).toBe(false);
    expect(await advanceCursors(handle.db, 'soc', 'a', { event: 5, audit: 5 }, t)).toBe(true);
    expect(await acquireLease(handle.db, 'soc', 'b', new Date(t.getTime() + 31_000), 30_000)).toBe(true);
    expect(await advanceCursors(handle.db, 'soc', 'a', { event: 9, audit: 9 }, t)).toBe(false);
  });

  it.skipIf(skip)('stamping orders every pending row once, in batches', async () => {
    for (let i = 0; i < 2500; i++) await insertAudit(`t${i}`);
    while ((await stampPending(handle.db)) > 0);
    const rows = await auditAfter(handle.db, 0, 5000);
    expect(rows.map((r) => r.forward_order)).toEqual(Array.from({ length: 2500 }, (_, i) => i + 1));
    expect(rows.map((r) => r.target)).toEqual(Array.from({ length: 2500 }, (_, i) => `t${i}`));
  });
});

// Only PostgreSQL hands out ids before commit (SQLite has one writer at a time).
describe.skipIf(!PG_URL)('forwarding order on PostgreSQL', () => {
  let handle: CollectorDb;
  let url: string;
  let drop: () => Promise<void>;
  beforeEach(async () => {
    ({ url, drop } = await createEngineDatabase('postgres', 'mamori-fwdorder-'));
    handle = await openCollectorDb(parseDbUrl(url));
  });
  afterEach(async () => {
    await handle.destroy();
    await drop();
  });
  const insertAudit = (target: string) =>
    handle.db
      .insertInto('audit_log')
      .values({ at: now().toISOString(), actor: 'x', role: 'admin', action: 'test', target, detail: '{}', address: '' })
      .execute();

  it('an audit entry committed after a later one is forwarded, not passed by the cursor (ids are taken before commit)', async () => {
    // Transaction 1 takes the lower id and commits last.
    const slow = new pg.Client({ connectionString: url });
    await slow.connect();
    try {
      await slow.query('BEGIN');
      await slow.query(
        "INSERT INTO audit_log (at, actor, role, action, target, detail, address) VALUES ('2026-12-03T00:00:00.000Z', 'x', 'admin', 'test', 'slow', '{}', '')",
      );
      await insertAudit('fast');
      await stampPending(handle.db);
      const first = await auditAfter(handle.db, 0, 100);
      expect(first.map((r) => r.target)).toEqual(['fast']);
      const cursor = first[0]!.forward_order;
      await slow.query('COMMIT');
      await stampPending(handle.db);
      const next = await auditAfter(handle.db, cursor, 100);
      expect(next.map((r) => r.target)).toEqual(['slow']);
      expect(Number(next[0]!.id)).toBeLessThan(Number(first[0]!.id));
    } finally {
      await slow.end();
    }
  });
});
