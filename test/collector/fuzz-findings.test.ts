import crypto from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { addAdmin } from '../../src/collector/admins';
import { createEnrollmentToken } from '../../src/collector/agents';
import { createCollector, type Collector } from '../../src/collector/server';
import { fixedClock, type EnrollResponse } from '../../src/shared';
import { PG_URL, createEngineDatabase } from '../helpers/pg';

// Regressions for what the fuzzer (test/e2e/fuzz.test.ts) found answering 500.

const ENGINES = (process.env.MAMORI_TEST_DB ?? 'sqlite,postgres').split(',');

describe.each(ENGINES)('fuzzer findings on %s', (engine) => {
  const skip = engine === 'postgres' && !PG_URL;
  let collector: Collector;
  let cleanup: () => Promise<void>;
  const clock = fixedClock(new Date());

  async function start() {
    const { url, drop } = await createEngineDatabase(engine, 'mamori-findings-');
    cleanup = drop;
    collector = await createCollector({ db: url, logger: false, clock });
  }
  afterEach(async () => {
    if (skip || !collector) return;
    await collector.stop();
    await cleanup();
  });
  const api = (method: string, url: string, token: string | undefined, body: string) =>
    collector.app.inject({
      method: method as 'PUT',
      url,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), 'content-type': 'application/json' },
      payload: body,
    });
  const enroll = async (): Promise<EnrollResponse> => {
    const token = await createEnrollmentToken(collector.ctx.db, { segment: 'lgwan', ttlMs: 3_600_000, uses: 1 }, clock);
    const res = await api('POST', '/api/v1/enroll', undefined, JSON.stringify({ token, hostname: 'pc-1', machineId: crypto.randomUUID() }));
    return res.json() as EnrollResponse;
  };

  it.skipIf(skip)('an inventory with a lone surrogate no longer answers 500 (CanonicalJsonError while hashing it)', async () => {
    await start();
    const a = await enroll();
    const snapshot = {
      collectedAt: clock.now().toISOString(),
      agentVersion: '0.1.0',
      hostname: 'pc-1',
      system: { manufacturer: '\udfff', model: 'm', serial: 's', uuid: crypto.randomUUID() },
      bios: { vendor: 'v', version: '1', releaseDate: '2025-04-01' },
      os: { platform: 'linux', distro: 'd', release: '6.1', kernel: '6.1', arch: 'x64' },
      cpu: { manufacturer: 'Intel', brand: 'b', cores: 4, physicalCores: 4 },
      memory: { totalBytes: 1 },
      disks: [],
      network: [],
      users: [],
      usb: [],
      enforcement: 'active',
      warnings: [],
    };
    // JSON.stringify writes the lone surrogate as the escape \udfff, as a hostile agent would.
    const res = await api('PUT', `/api/v1/agents/${a.agentId}/inventory`, a.agentToken, JSON.stringify(snapshot));
    expect(res.statusCode).toBe(400);
    expect(res.json()).toEqual({ error: { code: 'validation_failed', message: expect.stringContaining('lone surrogate') } });
    expect(await collector.ctx.db.selectFrom('inventory_latest').selectAll().execute()).toEqual([]);
  });

  it.skipIf(skip)('a policy with a lone surrogate no longer answers 500 when it is signed', async () => {
    await start();
    const admin = await addAdmin(collector.ctx.db, 'kanri', 'admin', 'correct horse battery staple');
    const res = await api(
      'PUT',
      '/api/v1/admin/policies/lgwan',
      admin,
      JSON.stringify({ removableMedia: { mode: 'block', allow: [] }, incidentContact: 'CSIRT \ud800' }),
    );
    expect(res.statusCode).toBe(400);
    const res2 = await api('GET', '/api/v1/admin/policies/lgwan', admin, '');
    expect(res2.json().version).toBe(1);
  });
  it.skipIf(skip)('a refused batch with a seq beyond the integer range flags the terminal instead of answering 500', async () => {
    await start();
    const a = await enroll();
    const events = [
      { seq: 2_147_483_649, at: clock.now().toISOString(), type: 'agent.stopped', payload: { reason: 42 }, prevHash: '0'.repeat(64), hash: '0'.repeat(64) },
    ];
    const res = await api('POST', `/api/v1/agents/${a.agentId}/events`, a.agentToken, JSON.stringify({ events }));
    expect(res.statusCode).toBeGreaterThanOrEqual(400);
    expect(res.statusCode).toBeLessThan(500);
    const row = await collector.ctx.db
      .selectFrom('agents')
      .select(['chain_broken_seq', 'chain_broken_reason'])
      .where('id', '=', a.agentId)
      .executeTakeFirstOrThrow();
    expect(Number(row.chain_broken_seq)).toBe(1);
    expect(row.chain_broken_reason).toContain('2147483649');
  });
  it.skipIf(skip)('a mamori-head beyond the integer range is refused as malformed instead of answering 500', async () => {
    await start();
    const a = await enroll();
    const res = await collector.app.inject({
      method: 'GET',
      url: `/api/v1/agents/${a.agentId}/policy`,
      headers: { authorization: `Bearer ${a.agentToken}`, 'mamori-head': `2147483649:${'0'.repeat(64)}` },
    });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.code).toBe('validation_failed');
  });
});
