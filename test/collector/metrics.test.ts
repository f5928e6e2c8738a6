import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addAdmin } from '../../src/collector/admins';
import { createEnrollmentToken } from '../../src/collector/agents';
import { addDestination } from '../../src/collector/forward/store';
import { createCollector, type Collector } from '../../src/collector/server';
import { fixedClock, type EnrollResponse } from '../../src/shared';
import { makeChain } from '../helpers/chain';
import { PG_URL, createEngineDatabase } from '../helpers/pg';

const ENGINES = (process.env.MAMORI_TEST_DB ?? 'sqlite,postgres').split(',');

/** The text format as name{labels} → value, for the samples a test looks at. */
function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^(\S+?)(\{.*\})? (\S+)$/.exec(line);
    if (!match) throw new Error(`not a sample line: ${line}`);
    out.set(`${match[1]}${match[2] ?? ''}`, Number(match[3]));
  }
  return out;
}

describe.each(ENGINES)('GET /metrics on %s', (engine) => {
  const skip = engine === 'postgres' && !PG_URL;
  const clock = fixedClock(new Date());
  let collector: Collector;
  let cleanup: () => Promise<void>;
  let auditorToken: string;

  const inject = (method: string, url: string, token?: string, body?: unknown) =>
    collector.app.inject({
      method: method as 'GET',
      url,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      payload: body === undefined ? undefined : JSON.stringify(body),
    });

  async function enrolled(segment: 'mynumber' | 'lgwan', hostname: string): Promise<EnrollResponse> {
    const token = await createEnrollmentToken(collector.ctx.db, { segment, ttlMs: 3_600_000, uses: 1 }, clock);
    const res = await inject('POST', '/api/v1/enroll', undefined, { token, hostname, machineId: crypto.randomUUID() });
    expect(res.statusCode).toBe(200);
    return res.json() as EnrollResponse;
  }

  beforeAll(async () => {
    if (skip) return;
    const { url, drop } = await createEngineDatabase(engine, 'mamori-metrics-');
    cleanup = drop;
    collector = await createCollector({ db: url, logger: false, clock });
    auditorToken = await addAdmin(collector.ctx.db, 'kansa', 'auditor', 'correct horse battery staple');
  });
  afterAll(async () => {
    if (skip) return;
    await collector.stop();
    await cleanup();
  });

  it.skipIf(skip)('reports terminals by segment and state, ingest counts and latency, outbox and forwarding lag after known ingest', async () => {
    const a = await enrolled('mynumber', 'MN-PC001');
    const b = await enrolled('lgwan', 'LG-PC001');
    const c = await enrolled('lgwan', 'LG-PC002');
    // Last seen a month ago: offline.
    await collector.ctx.db
      .updateTable('agents')
      .set({ last_seen: new Date(clock.now().getTime() - 30 * 86_400_000).toISOString() })
      .where('id', '=', c.agentId)
      .execute();
    const chainA = makeChain(7, { start: clock.now() });
    const send = (t: EnrollResponse, events: unknown[], head?: string) =>
      collector.app.inject({
        method: 'POST',
        url: `/api/v1/agents/${t.agentId}/events`,
        headers: { authorization: `Bearer ${t.agentToken}`, 'content-type': 'application/json', ...(head ? { 'mamori-head': head } : {}) },
        payload: JSON.stringify({ events }),
      });
    expect((await send(a, chainA.slice(0, 4))).statusCode).toBe(200);
    expect((await send(a, chainA.slice(4))).statusCode).toBe(200);
    // b reports a head of 10 but sends 3: 7 events wait in its outbox.
    const chainB = makeChain(10, { start: clock.now() });
    expect((await send(b, chainB.slice(0, 3), `10:${chainB[9]!.hash}`)).statusCode).toBe(200);
    // A batch with a gap is refused.
    expect((await send(a, makeChain(2, { from: 20, start: clock.now() }))).statusCode).toBe(409);
    await addDestination(
      collector.ctx.db,
      { username: 'kanri', role: 'admin', address: '127.0.0.1' },
      { name: 'siem1', host: '127.0.0.1', port: 1, transport: 'tcp', format: 'rfc5424', sendEvents: true, sendAudit: false, enabled: false },
      clock.now(),
    );
    await collector.ctx.db.updateTable('forward_counters').set({ value: 10 }).where('name', '=', 'events').execute();

    const res = await inject('GET', '/metrics', auditorToken);
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toContain('text/plain');
    const m = parseMetrics(res.body);
    expect(m.get('mamori_terminals{segment="mynumber",state="online"}')).toBe(1);
    expect(m.get('mamori_terminals{segment="lgwan",state="online"}')).toBe(1);
    expect(m.get('mamori_terminals{segment="lgwan",state="offline"}')).toBe(1);
    expect(m.get('mamori_terminals{segment="internet",state="online"}')).toBe(0);
    expect(m.get('mamori_ingest_events_total')).toBe(10);
    expect(m.get('mamori_ingest_batches_total{outcome="stored"}')).toBe(3);
    expect(m.get('mamori_ingest_batches_total{outcome="refused"}')).toBe(1);
    expect(m.get('mamori_ingest_duration_seconds_count{outcome="stored"}')).toBe(3);
    expect(m.get('mamori_ingest_duration_seconds_bucket{le="+Inf",outcome="stored"}')).toBe(3);
    expect(m.get('mamori_agent_outbox_pending_events{segment="lgwan"}')).toBe(7);
    expect(m.get('mamori_agent_outbox_pending_events{segment="mynumber"}')).toBe(0);
    expect(m.get('mamori_forward_lag{destination="siem1",kind="events"}')).toBe(10);
    expect(m.get('mamori_forward_failing{destination="siem1"}')).toBe(0);
  });

  it.skipIf(skip)('reports alert mails by state, and the pending ones whose last attempt failed', async () => {
    const before = parseMetrics((await inject('GET', '/metrics', auditorToken)).body);
    expect(before.get('mamori_alert_mails_failing')).toBe(0);
    const mail = (id: number, state: string, lastError: string | null) => ({
      dedup_key: `k${id}`,
      rule_id: 1,
      recipient: 'csirt@city.example.lg.jp',
      language: 'ja',
      subject: '件名',
      body: '本文',
      state,
      attempts: lastError ? 1 : 0,
      next_attempt_at: clock.now().toISOString(),
      last_error: lastError,
      created_at: clock.now().toISOString(),
      sent_at: state === 'sent' ? clock.now().toISOString() : null,
    });
    await collector.ctx.db
      .insertInto('alert_outbox')
      .values([
        mail(1, 'sent', null),
        mail(2, 'sent', null),
        mail(3, 'pending', '535 authentication failed'),
        mail(4, 'pending', null),
        mail(5, 'suppressed', null),
      ])
      .execute();
    const m = parseMetrics((await inject('GET', '/metrics', auditorToken)).body);
    expect(m.get('mamori_alert_mails{state="sent"}')).toBe(2);
    expect(m.get('mamori_alert_mails{state="pending"}')).toBe(2);
    expect(m.get('mamori_alert_mails{state="suppressed"}')).toBe(1);
    expect(m.get('mamori_alert_mails_failing')).toBe(1);
  });

  it.skipIf(skip)('answers 401 without a token and 401 with a wrong one, showing nothing', async () => {
    for (const token of [undefined, 'mam_wrong']) {
      const res = await inject('GET', '/metrics', token);
      expect(res.statusCode).toBe(401);
      expect(res.body).not.toContain('mamori_');
    }
  });

  it.skipIf(skip)('keeps one registry per collector: a second collector counts only its own ingest', async () => {
    const { url, drop } = await createEngineDatabase(engine, 'mamori-metrics2-');
    const second = await createCollector({ db: url, logger: false, clock });
    try {
      const token = await addAdmin(second.ctx.db, 'kanri', 'admin', 'correct horse battery staple');
      const res = await second.app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${token}` } });
      expect(parseMetrics(res.body).get('mamori_ingest_events_total')).toBe(0);
    } finally {
      await second.stop();
      await drop();
    }
  });
});
