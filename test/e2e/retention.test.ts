import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEnrollmentToken, enroll, ingestEvents } from '../../src/collector/agents';
import { verifyStoredChain } from '../../src/collector/console/queries';
import { createCollector } from '../../src/collector/server';
import { fixedClock } from '../../src/shared';
import { makeChain } from '../helpers/chain';
import { mamori, requireBuild } from './helpers';

const DAY = 86_400_000;

// `mamori collector retention show|set|run` as an admin runs them, on a SQLite database holding
// two years of one terminal's events (received at the collector's clock, set back in process).
describe('collector retention CLI', () => {
  let dir: string;
  let db: string;
  let agentId: string;

  /** A SQLite collector database with two years of one terminal's events, five a month. */
  async function twoYearsDb(file: string): Promise<string> {
    const now = Date.now();
    const clock = fixedClock(now - 730 * DAY);
    const collector = await createCollector({ db: `sqlite:${file}`, logger: false, clock });
    try {
      const token = await createEnrollmentToken(collector.ctx.db, { segment: 'mynumber', ttlMs: 3_600_000, uses: 1 }, clock);
      const id = (await enroll(collector.ctx.db, collector.ctx.key, { token, hostname: 'MN-PC001', machineId: crypto.randomUUID() }, clock)).agentId;
      let last = { seq: 0, hash: '0'.repeat(64) };
      for (let month = 24; month >= 1; month--) {
        clock.set(now - month * 30 * DAY);
        const batch = makeChain(5, { from: last.seq + 1, prevHash: last.hash, start: clock.now() });
        await ingestEvents(collector.ctx.db, collector.ctx.engine, id, batch, clock);
        last = { seq: batch[4]!.seq, hash: batch[4]!.hash };
      }
      return id;
    } finally {
      await collector.stop();
    }
  }

  beforeAll(async () => {
    requireBuild();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mamori-retention-cli-'));
    db = `sqlite:${path.join(dir, 'collector.db')}`;
    agentId = await twoYearsDb(path.join(dir, 'collector.db'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('shows the default, refuses a bad period by name, sets one, prunes behind a checkpoint the chain verifies from', async () => {
    expect((await mamori(['collector', 'retention', 'show', '--db', db])).stdout).toBe('events: kept for ever (default)\n');
    expect((await mamori(['collector', 'retention', 'run', '--db', db])).stdout).toBe('nothing to prune\n');

    const bad = await mamori(['collector', 'retention', 'set', '--events', '0', '--db', db]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("--events takes a whole number of years from 1 to 100, or forever, not '0'");

    const set = await mamori(['collector', 'retention', 'set', '--events', '1', '--db', db]);
    expect(set).toMatchObject({ code: 0, stdout: 'events: kept 1 years\n' });
    expect((await mamori(['collector', 'retention', 'show', '--db', db])).stdout).toMatch(/^events: kept 1 years \(set by cli:.+ at 20\d\d-/);

    const run = await mamori(['collector', 'retention', 'run', '--db', db]);
    expect(run.code).toBe(0);
    // Months 24 to 13 ago (12 of 5 events each) are older than a year; month 12 is 360 days old.
    expect(run.stdout).toBe(`${agentId}\tpruned 60\tchain kept from seq 61\n`);

    const collector = await createCollector({ db, logger: false });
    try {
      expect(await verifyStoredChain(collector.ctx.db, agentId)).toEqual({ count: 60, broken: null });
      const audit = await collector.ctx.db.selectFrom('audit_log').select(['action', 'actor']).where('action', 'like', 'retention.%').orderBy('id').execute();
      expect(audit.map((a) => a.action)).toEqual(['retention.set', 'retention.prune']);
      expect(audit.every((a) => a.actor.startsWith('cli:'))).toBe(true);
    } finally {
      await collector.stop();
    }
  });

  it('two passes at once on one SQLite file (two processes) both finish and prune each event once', async () => {
    const file = path.join(dir, 'twice.db');
    const id = await twoYearsDb(file);
    expect((await mamori(['collector', 'retention', 'set', '--events', '1', '--db', `sqlite:${file}`])).code).toBe(0);
    const runs = await Promise.all([0, 1].map(() => mamori(['collector', 'retention', 'run', '--db', `sqlite:${file}`])));
    expect(runs.map((r) => r.code)).toEqual([0, 0]);
    const pruned = runs.map((r) => Number(/pruned (\d+)/.exec(r.stdout)?.[1] ?? 0)).reduce((a, b) => a + b, 0);
    expect(pruned).toBe(60);
    const collector = await createCollector({ db: `sqlite:${file}`, logger: false });
    try {
      expect(await verifyStoredChain(collector.ctx.db, id)).toEqual({ count: 60, broken: null });
    } finally {
      await collector.stop();
    }
  });
});
