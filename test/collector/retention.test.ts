import crypto from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { addAdmin } from '../../src/collector/admins';
import { createEnrollmentToken, enroll, ingestEvents } from '../../src/collector/agents';
import { verifyStoredChain } from '../../src/collector/console/queries';
import { addDestination } from '../../src/collector/forward/store';
import { chainStart, getRetention, keptSince, pruneEvents, retentionCutoff, setRetention } from '../../src/collector/retention/retention';
import { createCollector, type Collector } from '../../src/collector/server';
import { fixedClock, type StoredEvent } from '../../src/shared';
import { makeChain } from '../helpers/chain';
import { consoleLogin } from '../helpers/console-login';
import { PG_URL, createEngineDatabase } from '../helpers/pg';

const ENGINES = (process.env.MAMORI_TEST_DB ?? 'sqlite,postgres').split(',');
const DAY = 86_400_000;
const ADMIN = { username: 'kanri', role: 'admin' as const, address: '127.0.0.1' };

describe.each(ENGINES)('retention on %s', (engine) => {
  const skip = engine === 'postgres' && !PG_URL;
  const now = new Date('2026-12-01T03:00:00.000Z');
  const clock = fixedClock(now);
  let collector: Collector;
  let cleanup: () => Promise<void>;
  let dbUrl: string;

  beforeEach(async () => {
    if (skip) return;
    clock.set(now);
    const { url, drop } = await createEngineDatabase(engine, 'mamori-retention-');
    cleanup = drop;
    dbUrl = url;
    collector = await createCollector({ db: url, logger: false, clock });
  });
  afterEach(async () => {
    if (skip) return;
    await collector.stop();
    await cleanup();
  });

  async function terminal(hostname: string): Promise<string> {
    const token = await createEnrollmentToken(collector.ctx.db, { segment: 'lgwan', ttlMs: 3 * 365 * DAY, uses: 1 }, clock);
    return (await enroll(collector.ctx.db, collector.ctx.key, { token, hostname, machineId: crypto.randomUUID() }, clock)).agentId;
  }

  /** Two years of a terminal's events, received a batch of `perWeek` each week; the clock ends at `now`. */
  async function twoYears(agentId: string, perWeek = 10): Promise<StoredEvent[]> {
    const all: StoredEvent[] = [];
    let last = { seq: 0, hash: '0'.repeat(64) };
    for (let week = 104; week >= 1; week--) {
      clock.set(now.getTime() - week * 7 * DAY);
      const batch = makeChain(perWeek, { from: last.seq + 1, prevHash: last.hash, start: clock.now() });
      await ingestEvents(collector.ctx.db, collector.ctx.engine, agentId, batch, clock);
      all.push(...batch);
      last = { seq: batch[batch.length - 1]!.seq, hash: batch[batch.length - 1]!.hash };
    }
    clock.set(now);
    return all;
  }

  const stored = async (agentId: string) =>
    (await collector.ctx.db.selectFrom('events').select(['seq', 'received_at']).where('agent_id', '=', agentId).orderBy('seq').execute()).map((r) => ({
      seq: Number(r.seq),
      receivedAt: r.received_at,
    }));

  it.skipIf(skip)('keeps everything by default: a pass without a period prunes nothing', async () => {
    const id = await terminal('LG-PC001');
    await twoYears(id, 2);
    expect(await getRetention(collector.ctx.db)).toEqual({ years: null, updatedAt: null, updatedBy: null });
    expect(await pruneEvents(collector.ctx)).toEqual([]);
    expect((await stored(id)).length).toBe(208);
  });

  it.skipIf(skip)('prunes a year of two in batches behind a signed checkpoint; the stored chain verifies from it and ingest goes on', async () => {
    // Enrolled two years ago: their agent.enroll audit entries are older than any event.
    clock.set(now.getTime() - 105 * 7 * DAY);
    const a = await terminal('LG-PC001');
    const b = await terminal('LG-PC002');
    const chain = await twoYears(a);
    await twoYears(b, 3);
    await setRetention(collector.ctx.db, ADMIN, 1, clock);
    const cutoff = retentionCutoff(clock.now(), 1).toISOString();

    const results = await pruneEvents(collector.ctx, { batch: 64 });

    const left = await stored(a);
    expect(left.every((e) => e.receivedAt >= cutoff)).toBe(true);
    expect(left.length).toBeGreaterThan(500);
    expect(left.length).toBeLessThan(540);
    const first = left[0]!.seq;
    expect(results.find((r) => r.agentId === a)).toEqual({ agentId: a, pruned: first - 1, checkpointSeq: first - 1 });
    expect(results.find((r) => r.agentId === b)?.pruned).toBeGreaterThan(150);
    expect(await verifyStoredChain(collector.ctx.db, a)).toEqual({ count: 1040 - (first - 1), broken: null });
    expect(await chainStart(collector.ctx.db, a)).toEqual({ seq: first - 1, hash: chain[first - 2]!.hash });
    expect(await keptSince(collector.ctx.db, a)).toEqual({ fromSeq: first, before: chain[first - 2]!.at, prunedAt: now.toISOString() });

    // The terminal carries on where it was: its next batch is stored and chains on.
    const next = makeChain(5, { from: 1041, prevHash: chain[1039]!.hash, start: clock.now() });
    expect(await ingestEvents(collector.ctx.db, collector.ctx.engine, a, next, clock)).toBe(1045);
    expect((await verifyStoredChain(collector.ctx.db, a)).broken).toBeNull();

    // A second pass finds nothing more; the audit log keeps what the first did, and older entries.
    expect(await pruneEvents(collector.ctx)).toEqual([]);
    const audit = await collector.ctx.db
      .selectFrom('audit_log')
      .select(['action', 'actor', 'detail'])
      .where('action', 'in', ['retention.set', 'retention.prune'])
      .orderBy('id')
      .execute();
    expect(audit.map((e) => [e.action, e.actor])).toEqual([
      ['retention.set', 'kanri'],
      ['retention.prune', 'system:retention'],
    ]);
    expect(JSON.parse(audit[1]!.detail)).toMatchObject({ years: 1, cutoff });
    const enrolAudit = await collector.ctx.db.selectFrom('audit_log').select('at').where('action', '=', 'agent.enroll').execute();
    expect(enrolAudit.map((e) => e.at < cutoff)).toEqual([true, true]);
  });

  it.skipIf(skip)('detects a checkpoint edited in the database, and one removed with the events', async () => {
    const a = await terminal('LG-PC001');
    await twoYears(a, 4);
    await setRetention(collector.ctx.db, ADMIN, 1, clock);
    await pruneEvents(collector.ctx);
    const cp = await collector.ctx.db.selectFrom('chain_checkpoints').selectAll().where('agent_id', '=', a).executeTakeFirstOrThrow();
    const seq = Number(cp.seq);

    // Moved back by one with the event before it "pruned" too: the signature no longer matches.
    await collector.ctx.db
      .updateTable('chain_checkpoints')
      .set({
        seq: seq + 1,
        hash: (
          await collector.ctx.db
            .selectFrom('events')
            .select('hash')
            .where('agent_id', '=', a)
            .where('seq', '=', seq + 1)
            .executeTakeFirstOrThrow()
        ).hash,
      })
      .where('agent_id', '=', a)
      .execute();
    await collector.ctx.db
      .deleteFrom('events')
      .where('agent_id', '=', a)
      .where('seq', '=', seq + 1)
      .execute();
    expect(await verifyStoredChain(collector.ctx.db, a)).toEqual({ count: 0, broken: { seq: seq + 1, reason: 'checkpoint_invalid' } });
    // And the pass refuses to prune behind it.
    clock.set(now.getTime() + 30 * DAY);
    expect((await pruneEvents(collector.ctx)).find((r) => r.agentId === a)?.broken).toEqual({ seq: seq + 1, reason: 'checkpoint_invalid' });

    // Signed by a key this collector never had.
    const other = crypto.generateKeyPairSync('ed25519');
    await collector.ctx.db
      .updateTable('chain_checkpoints')
      .set({ seq, hash: cp.hash, public_key: other.publicKey.export({ format: 'der', type: 'spki' }).toString('base64') })
      .where('agent_id', '=', a)
      .execute();
    expect((await verifyStoredChain(collector.ctx.db, a)).broken).toEqual({ seq, reason: 'checkpoint_invalid' });

    // Gone altogether: the chain no longer starts at seq 1.
    await collector.ctx.db.deleteFrom('chain_checkpoints').where('agent_id', '=', a).execute();
    expect((await verifyStoredChain(collector.ctx.db, a)).broken).toEqual({ seq: seq + 2, reason: 'seq_gap' });
  });

  it.skipIf(skip)('does not prune over a stored chain that no longer verifies, nor events a destination has not yet sent', async () => {
    const a = await terminal('LG-PC001');
    await twoYears(a, 2);
    // An old event edited in the database: no checkpoint may vouch for it.
    await collector.ctx.db
      .updateTable('events')
      .set({ payload: '{"version":"9.9.9","platform":"linux","hostname":"pc-001"}' })
      .where('agent_id', '=', a)
      .where('seq', '=', 3)
      .execute();
    await setRetention(collector.ctx.db, ADMIN, 1, clock);
    const results = await pruneEvents(collector.ctx, { batch: 50 });
    expect(results).toEqual([{ agentId: a, pruned: 0, checkpointSeq: 0, broken: { seq: 3, reason: 'hash_mismatch' } }]);
    expect((await stored(a)).length).toBe(208);

    const b = await terminal('LG-PC002');
    await twoYears(b, 2);
    await addDestination(
      collector.ctx.db,
      ADMIN,
      { name: 'siem1', host: '127.0.0.1', port: 1, transport: 'tcp', format: 'rfc5424', sendEvents: true, sendAudit: false, enabled: true },
      clock.now(),
    );
    // Nothing is stamped or sent yet: nothing of b goes.
    expect((await pruneEvents(collector.ctx)).find((r) => r.agentId === b)).toBeUndefined();
    expect((await stored(b)).length).toBe(208);
  });

  it.skipIf(skip)("a pruned terminal's console page says what is kept since when, and its re-verification starts at the checkpoint", async () => {
    const a = await terminal('LG-PC001');
    await twoYears(a, 2);
    await addAdmin(collector.ctx.db, 'kansa', 'auditor', 'correct horse battery staple');
    const session = await consoleLogin(collector, 'kansa', 'correct horse battery staple');
    const page = async () =>
      (await collector.app.inject({ method: 'GET', url: `/terminals/${a}`, headers: { cookie: `${session.cookie}; mamori_lang=en` } })).body;
    expect(await page()).not.toContain('id="kept-since"');
    await setRetention(collector.ctx.db, ADMIN, 1, clock);
    await pruneEvents(collector.ctx);
    const kept = (await keptSince(collector.ctx.db, a))!;
    const html = await page();
    expect(html).toContain('id="kept-since"');
    expect(html).toContain(`from seq ${kept.fromSeq}. Older records past the retention period`);
    expect(html).toContain(`datetime="${kept.before}"`);
    const verified = await collector.app.inject({
      method: 'POST',
      url: `/terminals/${a}/verify`,
      headers: { cookie: `${session.cookie}; mamori_lang=en`, 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams({ _csrf: session.csrf }).toString(),
    });
    expect(verified.body).toContain(`from the signed retention checkpoint, the hash chain of seq ${kept.fromSeq}–208 is intact`);
  });

  // PostgreSQL only: two collectors in one process cannot share a SQLite file (better-sqlite3 blocks
  // the thread while it waits for the other's lock); test/e2e/retention.test.ts runs two processes.
  if (engine === 'postgres') {
    it.skipIf(skip)('two collectors on one PostgreSQL pruning at once remove each event once and leave a chain that verifies', async () => {
      const ids = [await terminal('LG-PC001'), await terminal('LG-PC002')];
      for (const id of ids) await twoYears(id, 6);
      await setRetention(collector.ctx.db, ADMIN, 1, clock);
      const second = await createCollector({ db: dbUrl, logger: false, clock });
      try {
        const [one, two] = await Promise.all([pruneEvents(collector.ctx, { batch: 40 }), pruneEvents(second.ctx, { batch: 40 })]);
        for (const id of ids) {
          const pruned = [...one, ...two].filter((r) => r.agentId === id).reduce((n, r) => n + r.pruned, 0);
          const left = await stored(id);
          expect(pruned + left.length).toBe(624);
          expect(left[0]!.seq).toBe(pruned + 1);
          expect(await verifyStoredChain(collector.ctx.db, id)).toEqual({ count: left.length, broken: null });
        }
      } finally {
        await second.stop();
      }
    });
  }

  it.skipIf(skip)('refuses a period that is not 1 to 100 whole years, changing nothing', async () => {
    for (const years of [0, -1, 1.5, 101])
      await expect(setRetention(collector.ctx.db, ADMIN, years, clock)).rejects.toThrow(/whole number of years from 1 to 100/);
    expect((await getRetention(collector.ctx.db)).years).toBeNull();
  });
});
