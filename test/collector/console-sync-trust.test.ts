import crypto from 'node:crypto';
import { parse as parseCsv } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addAdmin } from '../../src/collector/admins';
import { createEnrollmentToken } from '../../src/collector/agents';
import { createCollector, type Collector } from '../../src/collector/server';
import { GENESIS_HASH, fixedClock, type EnrollResponse } from '../../src/shared';
import { consoleLogin, type ConsoleLogin } from '../helpers/console-login';
import { HOSTILE, sendEvents, type Call, type SeededTerminal } from '../helpers/console-seed';
import { PG_URL, createEngineDatabase } from '../helpers/pg';

const ENGINES = (process.env.MAMORI_TEST_DB ?? 'sqlite,postgres').split(',');
const PASSWORD = 'correct horse battery staple';
const RECEIPT = 'INC-20261201-SAME01';

/**
 * What an admin sees of sync trust (docs/design.md#sync-trust) on the terminal pages and in the
 * ledger, and incidents of two terminals that issued the same receipt.
 */
describe.each(ENGINES)('sync trust and incident ids in the console on %s', (engine) => {
  const skip = engine === 'postgres' && !PG_URL;
  const clock = fixedClock(new Date());
  let collector: Collector;
  let cleanup: () => Promise<void>;
  let admin: ConsoleLogin;
  const t: Record<'stalled' | 'hostile' | 'twin' | 'twin2', SeededTerminal> = {} as never;

  const call =
    (head?: string): Call =>
    async (method, url, opts = {}) => {
      const res = await collector.app.inject({
        method: method as 'GET',
        url,
        headers: {
          ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}),
          ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...(head ? { 'mamori-head': head } : {}),
        },
        payload: opts.body === undefined ? undefined : JSON.stringify(opts.body),
      });
      return { status: res.statusCode, json: res.body ? (JSON.parse(res.body) as unknown) : null };
    };
  const page = async (url: string) => {
    const res = await collector.app.inject({ method: 'GET', url, headers: { cookie: admin.cookie } });
    return { status: res.statusCode, body: res.body, headers: res.headers };
  };
  const enroll = async (hostname: string): Promise<SeededTerminal> => {
    const token = await createEnrollmentToken(collector.ctx.db, { segment: 'lgwan', ttlMs: 3_600_000, uses: 1 }, clock);
    const res = await call()('POST', '/api/v1/enroll', { body: { token, hostname, machineId: crypto.randomUUID() } });
    expect(res.status).toBe(200);
    return { hostname, segment: 'lgwan', enrolled: res.json as EnrollResponse, last: { seq: 0, hash: GENESIS_HASH } };
  };
  const incident = (who: SeededTerminal, description: string) =>
    sendEvents(call(), who, [
      {
        at: clock.now(),
        type: 'incident.reported',
        payload: {
          receipt: RECEIPT,
          category: 'suspicious_email',
          description,
          contact: '内線 2345',
          context: { hostname: who.hostname, osUser: 'yamada.taro', inventoryHash: '0'.repeat(64), recentEvents: [] },
        },
      },
    ]);

  beforeAll(async () => {
    if (skip) return;
    const { url, drop } = await createEngineDatabase(engine, 'mamori-console-trust-');
    cleanup = drop;
    collector = await createCollector({ db: url, logger: false, clock });
    await addAdmin(collector.ctx.db, 'kanri', 'admin', PASSWORD);
    t.stalled = await enroll('STALL-PC001');
    t.hostile = await enroll('HOSTILE-PC002');
    t.twin = await enroll('TWIN-PC003');
    t.twin2 = await enroll('TWIN-PC004');
    const started = { at: clock.now(), type: 'agent.started', payload: { version: '0.1.0', platform: 'win32', hostname: 'x' } };
    for (const x of Object.values(t)) expect(await sendEvents(call(), x, [started])).toBe(200);
    // STALL-PC001 says it holds 40 more events, then keeps calling for 31 minutes without sending any.
    const head = `${t.stalled.last.seq + 40}:${'a'.repeat(64)}`;
    expect((await call(head)('GET', `/api/v1/agents/${t.stalled.enrolled.agentId}/policy`, { token: t.stalled.enrolled.agentToken })).status).toBe(200);
    clock.advance(31 * 60_000);
    expect((await call(head)('GET', `/api/v1/agents/${t.stalled.enrolled.agentId}/policy`, { token: t.stalled.enrolled.agentToken })).status).toBe(200);
    // HOSTILE-PC002 sends an event with a field no schema knows, named as markup: refused, and the
    // terminal flagged with a reason that quotes the name.
    const forged = {
      seq: t.hostile.last.seq + 1,
      at: clock.now().toISOString(),
      type: 'agent.stopped',
      payload: { reason: 'stop' },
      prevHash: t.hostile.last.hash,
      hash: 'f'.repeat(64),
      [HOSTILE.img]: 1,
    };
    const refused = await call()('POST', `/api/v1/agents/${t.hostile.enrolled.agentId}/events`, {
      token: t.hostile.enrolled.agentToken,
      body: { events: [forged] },
    });
    expect(refused.status).toBe(400);
    // Two terminals issue the same receipt number.
    expect(await incident(t.twin, '双子の端末 A の報告')).toBe(200);
    expect(await incident(t.twin2, '双子の端末 B の報告')).toBe(200);
    admin = await consoleLogin(collector, 'kanri', PASSWORD);
  });
  afterAll(async () => {
    if (skip) return;
    await collector.stop();
    await cleanup();
  });

  /** The row of `host` in the terminal list, as text and markup. */
  const listRow = (body: string, host: string) => body.split('<tr').find((r) => r.includes(`>${host}<`)) ?? '';

  it.skipIf(skip)('the terminal list says which terminal is stalled and why a chain is broken, the reason as text', async () => {
    const res = await page('/terminals');
    expect(res.status).toBe(200);
    expect(listRow(res.body, 'STALL-PC001')).toContain('送信が停滞');
    expect(listRow(res.body, 'STALL-PC001')).toContain('送信待ちの記録 40 件が 30 分以上減っていません');
    expect(listRow(res.body, 'TWIN-PC003')).not.toContain('送信が停滞');
    const hostile = listRow(res.body, 'HOSTILE-PC002');
    expect(hostile).toContain('異常 (seq 2)');
    // The markup in the reason arrives escaped, never as an element.
    expect(hostile).toContain('理由: batch refused: body.events.0.&lt;img src=x onerror=&quot;window.__xss=2&quot;>: unknown field');
    expect(res.body).not.toContain('<img src=x');
    const en = await collector.app.inject({ method: 'GET', url: '/terminals', headers: { cookie: `${admin.cookie}; mamori_lang=en` } });
    expect(listRow(en.body, 'STALL-PC001')).toContain('sending stalled');
    expect(listRow(en.body, 'HOSTILE-PC002')).toContain('reason: batch refused');
  });

  it.skipIf(skip)('the terminal page shows the records waiting to be sent, the stall, and the reason of a broken chain', async () => {
    const stalled = await page(`/terminals/${t.stalled.enrolled.agentId}`);
    expect(stalled.body).toMatch(/id="outbox-status">40 <span class="badge warn wrap">送信が停滞しています: 送信待ちの記録 40 件が 30 分以上減っていません/);
    expect(stalled.body).not.toContain('id="chain-reason"');
    const hostile = await page(`/terminals/${t.hostile.enrolled.agentId}`);
    expect(hostile.body).toContain('ログの完全性: 異常（seq 2 以降）');
    expect(hostile.body).toContain(
      'id="chain-reason" class="untrusted">batch refused: body.events.0.&lt;img src=x onerror=&quot;window.__xss=2&quot;>: unknown field &quot;&lt;img',
    );
    expect(hostile.body).not.toContain('<img src=x');
    expect(hostile.body).not.toContain('id="outbox-status">40');
  });

  it.skipIf(skip)('the ledger export carries records waiting to be sent, the stall and the broken chain with its reason', async () => {
    const res = await page('/exports/download?format=csv&lang=en');
    expect(res.status).toBe(200);
    const rows = parseCsv(res.body.replace(/^\ufeff/, ''), { columns: true }) as Record<string, string>[];
    const by = (host: string) => rows.find((r) => r.hostname === host)!;
    expect(by('STALL-PC001')).toMatchObject({ pending_events: '40', stalled: 'stalled', chain_broken_seq: '', chain_broken_reason: '' });
    expect(by('HOSTILE-PC002')).toMatchObject({ stalled: '', chain_broken_seq: '2' });
    expect(by('HOSTILE-PC002').chain_broken_reason).toBe(`batch refused: body.events.0.${HOSTILE.img}: unknown field ${JSON.stringify(HOSTILE.img)}`);
    const ja = await page('/exports/download?format=csv&lang=ja');
    expect(ja.body.split('\r\n')[0]).toContain('送信待ちの記録,送信の停滞,ログの異常(seq),ログの異常の理由');
  });

  it.skipIf(skip)('two terminals with the same receipt each open their own incident', async () => {
    const list = await page('/incidents');
    const links = [...list.body.matchAll(/href="(\/incidents\/[^"]+)"/g)].map((m) => m[1]!);
    expect(links.sort()).toEqual([`/incidents/${t.twin2.enrolled.agentId}:${RECEIPT}`, `/incidents/${t.twin.enrolled.agentId}:${RECEIPT}`].sort());
    const a = await page(`/incidents/${t.twin.enrolled.agentId}:${RECEIPT}`);
    expect(a.body).toContain('双子の端末 A の報告');
    expect(a.body).not.toContain('双子の端末 B の報告');
    expect(a.body).toContain(`action="/incidents/${t.twin.enrolled.agentId}:${RECEIPT}/status"`);
    const b = await page(`/incidents/${t.twin2.enrolled.agentId}:${RECEIPT}`);
    expect(b.body).toContain('双子の端末 B の報告');
    // Moving one moves only that one.
    const moved = await collector.app.inject({
      method: 'POST',
      url: `/incidents/${t.twin.enrolled.agentId}:${RECEIPT}/status`,
      headers: { cookie: admin.cookie, 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams({ _csrf: admin.csrf, status: 'investigating' }).toString(),
    });
    expect(moved.statusCode).toBe(303);
    const rows = await collector.ctx.db.selectFrom('incidents').select(['agent_id', 'status', 'updated_at']).where('receipt', '=', RECEIPT).execute();
    expect(Object.fromEntries(rows.map((r) => [r.agent_id, r.status]))).toEqual({
      [t.twin.enrolled.agentId]: 'investigating',
      [t.twin2.enrolled.agentId]: 'new',
    });
    // The move is dated by the collector's clock, not the wall clock.
    expect(rows.find((r) => r.agent_id === t.twin.enrolled.agentId)!.updated_at).toBe(clock.now().toISOString());
    const flash = moved.cookies.find((c) => c.name === 'mamori_flash')!;
    const after = await collector.app.inject({
      method: 'GET',
      url: moved.headers.location as string,
      headers: { cookie: `${admin.cookie}; mamori_flash=${flash.value}` },
    });
    expect(after.body).toContain(`インシデント ${RECEIPT} を「対応中」にしました。`);
  });
});
