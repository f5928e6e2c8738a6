import crypto from 'node:crypto';
import { parse as parseCsv } from 'csv-parse/sync';
import ExcelJS from 'exceljs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { addAdmin } from '../../src/collector/admins';
import { createEnrollmentToken } from '../../src/collector/agents';
import { createCollector, type Collector } from '../../src/collector/server';
import { Policy, policyOfResponse, policySigningPayload, type EnrollResponse, type InventorySnapshot, type PolicyResponse } from '../../src/shared';
import { makeChain } from '../helpers/chain';
import { PG_URL, createEngineDatabase } from '../helpers/pg';

const ENGINES = (process.env.MAMORI_TEST_DB ?? 'sqlite,postgres').split(',');
if (ENGINES.includes('postgres') && !PG_URL) {
  console.warn('collector suite: PostgreSQL skipped (set MAMORI_TEST_PG_URL; CI always does)');
}

const HOSTILE = [
  '=HYPERLINK("http://evil.example/","click")',
  '+cmd|" /C calc"!A0',
  '-2+3',
  '@SUM(1,1)',
  '\tTAB',
  '<script>alert(1)</script>',
  '改行\r\nあり, "引用"',
];

function snapshot(hostname: string, product = 'Ultra'): InventorySnapshot {
  return {
    collectedAt: new Date().toISOString(),
    agentVersion: '0.1.0',
    hostname,
    system: { manufacturer: 'FUJITSU', model: 'ESPRIMO D588', serial: 'YMAB012345', uuid: 'u-1' },
    bios: { vendor: 'FUJITSU', version: '1.2', releaseDate: '2024-01-01' },
    os: { platform: 'win32', distro: 'Microsoft Windows 11 Pro', release: '10.0.22631', kernel: '10.0.22631', arch: 'x64' },
    cpu: { manufacturer: 'Intel', brand: 'Core i5-8500', cores: 6, physicalCores: 6 },
    memory: { totalBytes: 16 * 1024 ** 3 },
    disks: [
      { device: 'disk0', type: 'SSD', name: 'Samsung SSD 870', vendor: 'Samsung', serial: 'S5Y1NX0R', sizeBytes: 500 * 1024 ** 3, interfaceType: 'SATA' },
    ],
    network: [
      { iface: 'Ethernet', mac: '00:11:22:33:44:55', ipv4: ['10.20.30.40'], ipv6: [], internal: false, virtual: false },
      { iface: 'lo', mac: '00:00:00:00:00:00', ipv4: ['127.0.0.1'], ipv6: ['::1'], internal: true, virtual: false },
    ],
    users: [],
    usb: [
      {
        port: '1-2',
        vendorId: '0781',
        productId: '5581',
        serial: '4C530001230101109473',
        manufacturer: 'SanDisk',
        product,
        deviceClass: '00',
        interfaces: [],
        authorized: false,
        rootHub: false,
      },
    ],
    warnings: [],
  };
}

describe.each(ENGINES)('collector on %s', (engine) => {
  const skip = engine === 'postgres' && !PG_URL;
  let collector: Collector;
  let cleanup: () => Promise<void>;
  let adminToken: string;
  let auditorToken: string;
  // The collector's clock: the wall clock moved by `offsetMs`, so a test can step into the future.
  let offsetMs = 0;
  const clock = { now: () => new Date(Date.now() + offsetMs) };

  beforeEach(async () => {
    if (skip) return;
    offsetMs = 0;
    const { url, drop } = await createEngineDatabase(engine, 'mamori-collector-');
    cleanup = drop;
    collector = await createCollector({ db: url, logger: false, clock });
    adminToken = await addAdmin(collector.ctx.db, 'kanri', 'admin', 'correct horse battery');
    auditorToken = await addAdmin(collector.ctx.db, 'kansa', 'auditor', 'correct horse battery');
  });
  afterEach(async () => {
    if (skip) return;
    await collector.stop();
    await cleanup();
  });

  const inject = (opts: { method: string; url: string; token?: string; body?: unknown; raw?: string }) =>
    collector.app.inject({
      method: opts.method as 'GET',
      url: opts.url,
      headers: {
        ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}),
        ...(opts.body !== undefined || opts.raw !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      payload: opts.raw ?? (opts.body === undefined ? undefined : JSON.stringify(opts.body)),
    });

  async function enrolled(segment: 'mynumber' | 'lgwan' | 'internet' = 'mynumber', hostname = 'pc-001'): Promise<EnrollResponse> {
    const token = await createEnrollmentToken(collector.ctx.db, { segment, ttlMs: 3_600_000, uses: 1 });
    const res = await inject({ method: 'POST', url: '/api/v1/enroll', body: { token, hostname, machineId: crypto.randomUUID() } });
    expect(res.statusCode).toBe(200);
    return res.json() as EnrollResponse;
  }

  const send = (agent: EnrollResponse, events: unknown[], token = agent.agentToken) =>
    inject({ method: 'POST', url: `/api/v1/agents/${agent.agentId}/events`, token, body: { events } });

  it.skipIf(skip)('enrolls with a token once and returns a policy signed by the key it pins', async () => {
    const token = await createEnrollmentToken(collector.ctx.db, { segment: 'lgwan', ttlMs: 3_600_000, uses: 1 });
    // A field the request schema does not know is refused by name, and the token is not spent.
    const unknown = await inject({ method: 'POST', url: '/api/v1/enroll', body: { token, hostname: 'pc-002', machineId: 'm-2', extra: 'dropped?' } });
    expect(unknown.statusCode).toBe(400);
    expect(unknown.json().error.message).toContain('"extra"');
    const res = await inject({ method: 'POST', url: '/api/v1/enroll', body: { token, hostname: 'pc-002', machineId: 'm-2' } });
    expect(res.statusCode).toBe(200);
    const body = res.json() as EnrollResponse;
    expect(body.segment).toBe('lgwan');
    const policy = Policy.parse(body.policy);
    expect(policy.removableMedia.mode).toBe('readonly');
    const key = crypto.createPublicKey({ key: Buffer.from(body.collectorPublicKey, 'base64'), format: 'der', type: 'spki' });
    expect(crypto.verify(null, Buffer.from(policySigningPayload(policy)), key, Buffer.from(policy.signature, 'base64'))).toBe(true);
    const again = await inject({ method: 'POST', url: '/api/v1/enroll', body: { token, hostname: 'pc-003', machineId: 'm-3' } });
    expect(again.statusCode).toBe(401);
    expect(again.json().error.code).toBe('token_invalid');
  });

  it.skipIf(skip)('refuses expired and unknown enrollment tokens', async () => {
    const expired = await createEnrollmentToken(collector.ctx.db, { segment: 'mynumber', ttlMs: -1000, uses: 5 });
    expect((await inject({ method: 'POST', url: '/api/v1/enroll', body: { token: expired, hostname: 'a', machineId: 'b' } })).statusCode).toBe(401);
    expect((await inject({ method: 'POST', url: '/api/v1/enroll', body: { token: 'enr_nope', hostname: 'a', machineId: 'b' } })).statusCode).toBe(401);
  });

  it.skipIf(skip)('stores a batch once however often it is retried', async () => {
    const agent = await enrolled();
    const events = makeChain(5);
    for (let i = 0; i < 3; i++) {
      const res = await send(agent, events);
      expect(res.statusCode).toBe(200);
      expect(res.json()).toEqual({ ackSeq: 5 });
    }
    const stored = await collector.ctx.db.selectFrom('events').select('seq').where('agent_id', '=', agent.agentId).execute();
    expect(stored).toHaveLength(5);
    const overlap = await send(agent, [...events.slice(3), ...makeChain(2, { from: 6, prevHash: events[4]!.hash })]);
    expect(overlap.json()).toEqual({ ackSeq: 7 });
  });

  it.skipIf(skip)('answers a gap with 409 and the seq it expects', async () => {
    const agent = await enrolled();
    const chain = makeChain(6);
    await send(agent, chain.slice(0, 2));
    const res = await send(agent, chain.slice(3));
    expect(res.statusCode).toBe(409);
    expect(res.json().error).toMatchObject({ code: 'seq_conflict', expectedSeq: 3 });
  });

  it.skipIf(skip)('refuses a broken chain with 422 naming the seq, stores nothing of it, and flags the terminal', async () => {
    const agent = await enrolled();
    const chain = makeChain(4);
    chain[2] = { ...chain[2]!, payload: { version: '9.9.9', platform: 'linux', hostname: 'pc-001' } };
    const res = await send(agent, chain);
    expect(res.statusCode).toBe(422);
    expect(res.json().error).toMatchObject({ code: 'chain_broken', seq: 3 });
    expect(await collector.ctx.db.selectFrom('events').select('seq').where('agent_id', '=', agent.agentId).execute()).toHaveLength(0);
    const terminals = (await inject({ method: 'GET', url: '/api/v1/admin/terminals', token: auditorToken })).json();
    expect(terminals[0].chainBroken).toBe(3);
  });

  it.skipIf(skip)('refuses a batch continuing from a forged previous hash', async () => {
    const agent = await enrolled();
    await send(agent, makeChain(2));
    const forged = makeChain(2, { from: 3, prevHash: 'f'.repeat(64) });
    expect((await send(agent, forged)).statusCode).toBe(422);
  });

  it.skipIf(skip)("refuses one agent writing under another's id, and missing or wrong tokens", async () => {
    const a = await enrolled('mynumber', 'pc-a');
    const b = await enrolled('mynumber', 'pc-b');
    expect((await send(a, makeChain(1), b.agentToken)).statusCode).toBe(403);
    expect((await send(a, makeChain(1), 'agt_wrong')).statusCode).toBe(401);
    const noAuth = await inject({ method: 'POST', url: `/api/v1/agents/${a.agentId}/events`, body: { events: makeChain(1) } });
    expect(noAuth.statusCode).toBe(401);
    expect(noAuth.json().error.code).toBe('unauthorized');
  });

  it.skipIf(skip)('answers malformed, invalid and oversized bodies with 4xx and stores nothing', async () => {
    const agent = await enrolled();
    const malformed = await inject({ method: 'POST', url: `/api/v1/agents/${agent.agentId}/events`, token: agent.agentToken, raw: '{"events": [' });
    expect(malformed.statusCode).toBe(400);
    expect(malformed.json().error.code).toBe('bad_request');
    const unknownType = makeChain(1, { type: 'device.exploded', payload: () => ({}) });
    const invalid = await send(agent, unknownType);
    expect(invalid.statusCode).toBe(400);
    expect(invalid.json().error.message).toMatch(/type/);
    const badPayload = makeChain(1, { type: 'device.blocked', payload: () => ({ vendorId: 'zzzz' }) });
    expect((await send(agent, badPayload)).statusCode).toBe(400);
    const huge = await inject({
      method: 'POST',
      url: `/api/v1/agents/${agent.agentId}/events`,
      token: agent.agentToken,
      raw: JSON.stringify({ events: [{ pad: 'x'.repeat(5 * 1024 * 1024) }] }),
    });
    expect(huge.statusCode).toBe(413);
    expect(huge.json().error.code).toBe('payload_too_large');
    expect(await collector.ctx.db.selectFrom('events').select('seq').execute()).toHaveLength(0);
  });

  it.skipIf(skip)('keeps the latest inventory and a history of changes only', async () => {
    const agent = await enrolled();
    const put = (s: InventorySnapshot) => inject({ method: 'PUT', url: `/api/v1/agents/${agent.agentId}/inventory`, token: agent.agentToken, body: s });
    expect((await put(snapshot('pc-001'))).statusCode).toBe(204);
    expect((await put(snapshot('pc-001'))).statusCode).toBe(204);
    expect((await put(snapshot('pc-001', 'Extreme'))).statusCode).toBe(204);
    const history = await collector.ctx.db.selectFrom('inventory_history').select('hash').where('agent_id', '=', agent.agentId).execute();
    expect(history).toHaveLength(2);
    expect((await put({ ...snapshot('x'), collectedAt: 'yesterday' } as InventorySnapshot)).statusCode).toBe(400);
  });

  it.skipIf(skip)('serves the segment policy to its agents, re-signed with a new version after a PUT', async () => {
    const agent = await enrolled('mynumber');
    const before = (await inject({ method: 'GET', url: `/api/v1/agents/${agent.agentId}/policy`, token: agent.agentToken })).json() as Policy;
    expect(before.version).toBe(1);
    const put = await inject({
      method: 'PUT',
      url: '/api/v1/admin/policies/mynumber',
      token: adminToken,
      body: {
        removableMedia: { mode: 'block', allow: [{ vendorId: '0781', productId: '5581', serial: '4C530001230101109473', note: '総務課 配布用' }] },
        syncIntervalSeconds: 120,
        incidentContact: '情報政策課 CSIRT 内線 1234',
      },
    });
    expect(put.statusCode).toBe(200);
    const after = (await inject({ method: 'GET', url: `/api/v1/agents/${agent.agentId}/policy`, token: agent.agentToken })).json() as Policy;
    expect(after.version).toBe(2);
    expect(after.removableMedia.allow).toHaveLength(1);
    const key = crypto.createPublicKey({ key: Buffer.from(agent.collectorPublicKey, 'base64'), format: 'der', type: 'spki' });
    expect(crypto.verify(null, Buffer.from(policySigningPayload(policyOfResponse(after as PolicyResponse))), key, Buffer.from(after.signature, 'base64'))).toBe(
      true,
    );
    const bad = await inject({ method: 'PUT', url: '/api/v1/admin/policies/mynumber', token: adminToken, body: { removableMedia: { mode: 'lockdown' } } });
    expect(bad.statusCode).toBe(400);
    const audit = (await inject({ method: 'GET', url: '/api/v1/admin/audit', token: auditorToken })).json();
    expect(audit[0]).toMatchObject({ actor: 'kanri', action: 'policy.change', target: 'mynumber', detail: { fromVersion: 1, toVersion: 2 } });
  });

  it.skipIf(skip)('enforces roles: an auditor reads but changes nothing, no token reads nothing', async () => {
    expect(
      (await inject({ method: 'PUT', url: '/api/v1/admin/policies/lgwan', token: auditorToken, body: { removableMedia: { mode: 'allow' } } })).statusCode,
    ).toBe(403);
    expect((await inject({ method: 'GET', url: '/api/v1/admin/policies/lgwan', token: auditorToken })).statusCode).toBe(403);
    expect((await inject({ method: 'GET', url: '/api/v1/admin/terminals', token: auditorToken })).statusCode).toBe(200);
    expect((await inject({ method: 'GET', url: '/api/v1/admin/terminals' })).statusCode).toBe(401);
    expect((await inject({ method: 'GET', url: '/api/v1/admin/terminals', token: 'mam_forged' })).statusCode).toBe(401);
  });

  it.skipIf(skip)('exports the ledger as CSV Excel opens as is, with hostile strings neutralised, and audits it', async () => {
    const agent = await enrolled('mynumber', HOSTILE[0]!);
    await inject({
      method: 'PUT',
      url: `/api/v1/agents/${agent.agentId}/inventory`,
      token: agent.agentToken,
      body: { ...snapshot(HOSTILE[0]!, HOSTILE.join(' | ')) },
    });
    const device = {
      vendorId: '0781',
      productId: '5581',
      serial: HOSTILE[1]!,
      manufacturer: 'SanDisk',
      product: HOSTILE[5]!,
      deviceClass: '00',
      port: '1-2',
      reason: 'policy block',
    };
    const login = { user: HOSTILE[3]!, source: 'security-log' };
    const chain = [...makeChain(2, { type: 'device.blocked', payload: () => device })];
    const next = makeChain(1, { from: 3, prevHash: chain[1]!.hash, type: 'login.success', payload: () => login });
    expect((await send(agent, [...chain, ...next])).statusCode).toBe(200);

    const res = await inject({ method: 'GET', url: '/api/v1/admin/inventory/export?format=csv&lang=ja', token: auditorToken });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/csv/);
    expect(String(res.headers['content-disposition'])).toContain(encodeURIComponent('端末台帳_'));
    const raw = res.rawPayload;
    expect([...raw.subarray(0, 3)]).toEqual([0xef, 0xbb, 0xbf]);
    const text = raw.toString('utf8');
    expect(text.split('\r\n').length).toBeGreaterThan(2);
    const rows = parseCsv(text.slice(1), { relax_column_count: false }) as string[][];
    expect(rows[0]).toEqual([
      '端末ID',
      'ホスト名',
      '区分',
      'OS',
      'OSバージョン',
      '製造元',
      '機種',
      '製造番号',
      'CPU',
      'メモリ(GB)',
      'ディスク',
      'IPアドレス',
      'MACアドレス',
      'USB機器',
      '最終ログオンユーザー',
      '最終接続',
      'ポリシー版',
      '保護状態',
      'ブロック件数(7日)',
      'エージェント版',
      '送信待ちの記録',
      '送信の停滞',
      'ログの異常(seq)',
      'ログの異常の理由',
    ]);
    const row = rows[1]!;
    expect(row[1]).toBe(`'${HOSTILE[0]}`);
    expect(row[13]).toContain('0781:5581 4C530001230101109473 SanDisk');
    expect(row[13]).toContain('<script>');
    expect(row[14]).toBe(`'${HOSTILE[3]}`);
    expect(row[18]).toBe('2');
    for (const cell of row) expect(cell).not.toMatch(/^[=+\-@\t\r]/);

    const en = await inject({ method: 'GET', url: '/api/v1/admin/inventory/export?format=json&lang=en', token: adminToken });
    const json = en.json() as Record<string, unknown>[];
    expect(Object.keys(json[0]!)).toEqual([
      'agent_id',
      'hostname',
      'segment',
      'os',
      'os_version',
      'manufacturer',
      'model',
      'serial',
      'cpu',
      'memory_gb',
      'disks',
      'ip_addresses',
      'mac_addresses',
      'usb_devices',
      'last_user',
      'last_seen',
      'policy_version',
      'enforcement',
      'blocked_7d',
      'agent_version',
      'pending_events',
      'stalled',
      'chain_broken_seq',
      'chain_broken_reason',
    ]);
    expect(json[0]!.memory_gb).toBe(16);
    expect(json[0]!.ip_addresses).toBe('10.20.30.40');
    expect(json[0]!.last_user).toBe(HOSTILE[3]);

    const xlsx = await inject({ method: 'GET', url: '/api/v1/admin/inventory/export?format=xlsx&lang=en', token: adminToken });
    expect(xlsx.statusCode).toBe(200);
    expect(xlsx.headers['content-type']).toBe('application/vnd.openxmlformats-officedocument.spreadsheetml.sheet');
    const workbook = new ExcelJS.Workbook();
    await workbook.xlsx.load(xlsx.rawPayload as unknown as ArrayBuffer);
    const sheet = workbook.worksheets[0]!;
    expect(sheet.getRow(1).getCell(2).value).toBe('hostname');
    expect(sheet.getRow(2).getCell(2).value).toBe(`'${HOSTILE[0]}`);
    expect(sheet.getRow(2).getCell(19).value).toBe(2);

    const bad = await inject({ method: 'GET', url: '/api/v1/admin/inventory/export?format=pdf', token: adminToken });
    expect(bad.statusCode).toBe(400);

    const audit = (await inject({ method: 'GET', url: '/api/v1/admin/audit', token: adminToken })).json() as {
      action: string;
      actor: string;
      address: string;
    }[];
    expect(
      audit
        .filter((a) => a.action === 'inventory.export')
        .map((a) => a.actor)
        .sort(),
    ).toEqual(['kanri', 'kanri', 'kansa']);
    expect(audit[0]!.address).toBeTruthy();
  });

  it.skipIf(skip)('counts blocked_7d by the collector clock, so the count does not age with the calendar (main went red on 2026-12-01)', async () => {
    const agent = await enrolled('lgwan');
    const device = {
      vendorId: '0781',
      productId: '5581',
      serial: 'S1',
      manufacturer: 'SanDisk',
      product: 'Cruzer',
      deviceClass: '00',
      port: '1-2',
      reason: 'policy block',
    };
    expect((await send(agent, makeChain(3, { type: 'device.blocked', payload: () => device }))).statusCode).toBe(200);
    const blocked = async () =>
      ((await inject({ method: 'GET', url: '/api/v1/admin/inventory/export?format=json&lang=en', token: adminToken })).json() as { blocked_7d: number }[])[0]!
        .blocked_7d;
    expect(await blocked()).toBe(3);
    offsetMs = 8 * 86_400_000;
    expect(await blocked()).toBe(0);
  });

  it.skipIf(skip)('records admin reads of events in the audit log', async () => {
    const agent = await enrolled();
    await send(agent, makeChain(3));
    const res = await inject({ method: 'GET', url: `/api/v1/admin/events?agentId=${agent.agentId}&since=1`, token: auditorToken });
    expect(res.json().map((e: { seq: number }) => e.seq)).toEqual([2, 3]);
    const audit = (await inject({ method: 'GET', url: '/api/v1/admin/audit', token: auditorToken })).json();
    expect(audit[0]).toMatchObject({ action: 'events.read', actor: 'kansa', target: agent.agentId });
  });

  it.skipIf(skip)('turns reported incidents and exception requests into workflows admins act on, auditors only read', async () => {
    const agent = await enrolled();
    const incident = {
      receipt: 'INC-20261124-ABC123',
      category: 'loss_theft',
      description: 'USBメモリを紛失',
      context: { hostname: 'pc-001', osUser: 'yamada', inventoryHash: '', recentEvents: [] },
    };
    const request = {
      requestId: 'req-1',
      requestCode: 'AAAA-BBBB-CCCCC',
      device: { vendorId: '0781', productId: '5581', serial: 'S1' },
      reason: '会議資料',
      minutes: 30,
    };
    const first = makeChain(1, { type: 'incident.reported', payload: () => incident });
    const second = makeChain(1, { from: 2, prevHash: first[0]!.hash, type: 'exception.requested', payload: () => request });
    expect((await send(agent, [...first, ...second])).statusCode).toBe(200);
    const listed = (await inject({ method: 'GET', url: '/api/v1/admin/incidents', token: auditorToken })).json();
    expect(listed[0]).toMatchObject({ receipt: 'INC-20261124-ABC123', status: 'new', category: 'loss_theft', hostname: 'pc-001' });
    expect(
      (await inject({ method: 'PATCH', url: '/api/v1/admin/incidents/INC-20261124-ABC123', token: auditorToken, body: { status: 'closed' } })).statusCode,
    ).toBe(403);
    expect(
      (await inject({ method: 'PATCH', url: '/api/v1/admin/incidents/INC-20261124-ABC123', token: adminToken, body: { status: 'closed' } })).statusCode,
    ).toBe(200);
    expect(
      (await inject({ method: 'PATCH', url: '/api/v1/admin/incidents/INC-20261124-ABC123', token: adminToken, body: { status: 'investigating' } })).statusCode,
    ).toBe(400);
    expect((await inject({ method: 'PATCH', url: '/api/v1/admin/incidents/NOPE', token: adminToken, body: { status: 'closed' } })).statusCode).toBe(404);

    expect((await inject({ method: 'GET', url: '/api/v1/admin/exceptions', token: auditorToken })).statusCode).toBe(403);
    expect((await inject({ method: 'GET', url: '/api/v1/admin/exceptions?status=pending', token: adminToken })).json()[0]).toMatchObject({
      id: 'req-1',
      minutes: 30,
      status: 'pending',
    });
    const approve = await inject({ method: 'POST', url: '/api/v1/admin/exceptions/req-1/approve', token: adminToken, body: { minutes: 45 } });
    expect(approve.statusCode).toBe(200);
    expect((await inject({ method: 'POST', url: '/api/v1/admin/exceptions/req-1/deny', token: adminToken })).statusCode).toBe(400);
    const approvals = (await inject({ method: 'GET', url: `/api/v1/agents/${agent.agentId}/exceptions`, token: agent.agentToken })).json();
    expect(approvals).toEqual([{ requestId: 'req-1', expiresAt: approve.json().expiresAt }]);
    const actions = ((await inject({ method: 'GET', url: '/api/v1/admin/audit', token: adminToken })).json() as { action: string }[]).map((a) => a.action);
    expect(actions).toEqual(expect.arrayContaining(['incidents.read', 'incident.status', 'exceptions.read', 'exception.approve']));
  });

  it.skipIf(skip)('stores a batch whose strings hold NUL (PostgreSQL text cannot) and refuses NUL in an address', async () => {
    const agent = await enrolled('lgwan', 'pc-\u0000-nul');
    const incident = {
      receipt: 'INC-20261125-NUL000',
      category: 'other',
      description: 'before\u0000after',
      contact: 'x\u0000',
      context: { hostname: 'pc', osUser: 'u', inventoryHash: '', recentEvents: [] },
    };
    const first = makeChain(1, { type: 'login.success', payload: () => ({ user: 'yamada\u0000taro', source: 'security-log' }) });
    const second = makeChain(1, { from: 2, prevHash: first[0]!.hash, type: 'incident.reported', payload: () => incident });
    expect((await send(agent, [...first, ...second])).statusCode).toBe(200);
    const row = await collector.ctx.db.selectFrom('agents').select(['hostname', 'last_user']).where('id', '=', agent.agentId).executeTakeFirstOrThrow();
    expect(row).toEqual({ hostname: 'pc-\ufffd-nul', last_user: 'yamada\ufffdtaro' });
    const stored = await collector.ctx.db.selectFrom('incidents').select('description').where('receipt', '=', 'INC-20261125-NUL000').executeTakeFirstOrThrow();
    expect(stored.description).toBe('before\ufffdafter');
    // The event itself is kept as sent, so its hash still verifies.
    const event = await collector.ctx.db
      .selectFrom('events')
      .select('payload')
      .where('agent_id', '=', agent.agentId)
      .where('seq', '=', 1)
      .executeTakeFirstOrThrow();
    expect(JSON.parse(event.payload).user).toBe('yamada\u0000taro');
    const nul = await inject({ method: 'GET', url: '/api/v1/admin/incidents/%00', token: adminToken });
    expect(nul.statusCode).toBe(400);
    expect(nul.json().error.code).toBe('bad_request');
  });

  it.skipIf(skip)('answers unknown routes with the error body', async () => {
    const res = await inject({ method: 'GET', url: '/api/v1/nothing' });
    expect(res.statusCode).toBe(404);
    expect(res.json().error.code).toBe('not_found');
  });
});
