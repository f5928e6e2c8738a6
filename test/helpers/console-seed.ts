import crypto from 'node:crypto';
import { GENESIS_HASH, eventHash, makeRequestCode, type EnrollResponse, type InventorySnapshot, type StoredEvent } from '../../src/shared';

/**
 * Strings a terminal could send that must stay inert in every page and file: formulas, markup,
 * script, control characters, a bidi override, and quotes and line breaks for CSV.
 */
export const HOSTILE = {
  formula: '=HYPERLINK("http://evil.example/","click me")',
  plus: "+cmd|' /C calc'!A0",
  at: '@SUM(1,1)',
  script: '<script>window.__xss=1</script>',
  img: '<img src=x onerror="window.__xss=2">',
  controls: 'bell\u0007esc\u001b[31mred',
  bidi: 'report\u202Egnp.exe',
  quotes: '改行\r\nあり, "引用"',
} as const;

/** Calls the collector: in-process (`app.inject`) or over real HTTP; bodies are JSON. */
export type Call = (method: string, url: string, opts?: { token?: string; body?: unknown }) => Promise<{ status: number; json: unknown }>;

export function fetchCall(base: string): Call {
  return async (method, url, opts = {}) => {
    const res = await fetch(`${base}${url}`, {
      method,
      headers: { ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}), ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
    });
    const text = await res.text();
    return { status: res.status, json: text ? (JSON.parse(text) as unknown) : null };
  };
}

export interface SeededTerminal {
  hostname: string;
  segment: 'mynumber' | 'lgwan' | 'internet';
  enrolled: EnrollResponse;
  /** The chain so far, to continue it. */
  last: { seq: number; hash: string };
}

function snapshot(hostname: string, opts: { usbProduct?: string; usbSerial?: string; os?: string } = {}): InventorySnapshot {
  return {
    collectedAt: new Date().toISOString(),
    agentVersion: '0.1.0',
    hostname,
    system: {
      manufacturer: 'FUJITSU',
      model: 'ESPRIMO D7012/M',
      serial: `YM${crypto.randomBytes(3).toString('hex').toUpperCase()}`,
      uuid: crypto.randomUUID(),
    },
    bios: { vendor: 'FUJITSU', version: 'V5.0.0.13', releaseDate: '2025-04-01' },
    os: { platform: 'win32', distro: opts.os ?? 'Microsoft Windows 11 Pro', release: '10.0.22631', kernel: '10.0.22631', arch: 'x64' },
    cpu: { manufacturer: 'Intel', brand: 'Core i5-13500', cores: 14, physicalCores: 14 },
    memory: { totalBytes: 16 * 1024 ** 3 },
    disks: [{ device: 'disk0', type: 'SSD', name: 'KIOXIA EXCERIA', vendor: 'KIOXIA', serial: 'X2ABC0001', sizeBytes: 512 * 1024 ** 3, interfaceType: 'NVMe' }],
    network: [
      { iface: 'イーサネット', mac: '00:1a:2b:3c:4d:5e', ipv4: ['10.10.1.21'], ipv6: [], internal: false, virtual: false },
      { iface: 'lo', mac: '00:00:00:00:00:00', ipv4: ['127.0.0.1'], ipv6: ['::1'], internal: true, virtual: false },
    ],
    users: [],
    usb: [
      {
        port: '1-1',
        vendorId: '046d',
        productId: 'c31c',
        serial: '',
        manufacturer: 'Logitech',
        product: 'USB Keyboard',
        deviceClass: '00',
        interfaces: [
          { name: '1-1:1.0', interfaceClass: '03', interfaceSubClass: '01', interfaceProtocol: '01', description: '', authorized: true, driver: 'usbhid' },
        ],
        authorized: true,
        rootHub: false,
      },
      {
        port: '1-2',
        vendorId: '0781',
        productId: '5581',
        serial: opts.usbSerial ?? '4C530001230101109473',
        manufacturer: 'SanDisk',
        product: opts.usbProduct ?? 'Ultra',
        deviceClass: '00',
        interfaces: [
          { name: '1-2:1.0', interfaceClass: '08', interfaceSubClass: '06', interfaceProtocol: '50', description: '', authorized: false, driver: '' },
        ],
        authorized: true,
        rootHub: false,
      },
    ],
    enforcement: 'active',
    warnings: [],
  };
}

/** Chains `events` onto a terminal's log and sends them; returns the HTTP status. */
export async function sendEvents(call: Call, t: SeededTerminal, events: { at: Date; type: string; payload: unknown }[]): Promise<number> {
  const chained: StoredEvent[] = [];
  let { seq, hash } = t.last;
  for (const e of events) {
    seq += 1;
    const fields = { seq, at: e.at.toISOString(), type: e.type as StoredEvent['type'], payload: e.payload };
    const h = eventHash(hash, fields);
    chained.push({ ...fields, prevHash: hash, hash: h });
    hash = h;
  }
  const res = await call('POST', `/api/v1/agents/${t.enrolled.agentId}/events`, { token: t.enrolled.agentToken, body: { events: chained } });
  if (res.status === 200) t.last = { seq, hash };
  return res.status;
}

const device = (product: string, serial = '4C530001230101109473') => ({
  vendorId: '0781',
  productId: '5581',
  serial,
  manufacturer: 'SanDisk',
  product,
  deviceClass: '00',
  port: '1-2',
});

export interface Seeded {
  terminals: SeededTerminal[];
  byHost: (hostname: string) => SeededTerminal;
  incidentReceipts: string[];
  /** Pending exception requests: id, terminal, and the request code the terminal showed. */
  requests: { id: string; terminal: SeededTerminal; requestCode: string }[];
  hostileHost: string;
}

/**
 * A small fleet through the real API: enrolment tokens come from `token(segment)`; every terminal
 * enrolls, sends an inventory and a chained history (blocks over the last week, logons, a
 * degraded one, an incident, exception requests, hostile strings), and one sends a forged batch.
 */
export async function seedFleet(call: Call, token: (segment: 'mynumber' | 'lgwan' | 'internet') => Promise<string>, now = new Date()): Promise<Seeded> {
  const hostileHost = `${HOSTILE.img}pc`;
  const plan: { hostname: string; segment: SeededTerminal['segment']; usbProduct?: string; usbSerial?: string }[] = [
    { hostname: 'SOUMU-PC001', segment: 'mynumber' },
    { hostname: 'ZEIMU-PC014', segment: 'mynumber', usbProduct: `${HOSTILE.formula} ${HOSTILE.script}`, usbSerial: HOSTILE.plus },
    { hostname: hostileHost, segment: 'mynumber', usbProduct: HOSTILE.controls },
    { hostname: 'KOSEKI-PC003', segment: 'mynumber' },
    { hostname: 'LGWAN-PC101', segment: 'lgwan' },
    { hostname: 'LGWAN-PC102', segment: 'lgwan' },
    { hostname: 'NET-PC201', segment: 'internet' },
    { hostname: 'NET-PC202', segment: 'internet' },
  ];
  const terminals: SeededTerminal[] = [];
  for (const p of plan) {
    const res = await call('POST', '/api/v1/enroll', { body: { token: await token(p.segment), hostname: p.hostname, machineId: crypto.randomUUID() } });
    if (res.status !== 200) throw new Error(`enroll ${p.hostname}: ${res.status} ${JSON.stringify(res.json)}`);
    const t: SeededTerminal = { hostname: p.hostname, segment: p.segment, enrolled: res.json as EnrollResponse, last: { seq: 0, hash: GENESIS_HASH } };
    terminals.push(t);
    const inv = await call('PUT', `/api/v1/agents/${t.enrolled.agentId}/inventory`, { token: t.enrolled.agentToken, body: snapshot(p.hostname, p) });
    if (inv.status !== 204) throw new Error(`inventory ${p.hostname}: ${inv.status}`);
    const ago = (days: number, hours = 0) => new Date(now.getTime() - days * 86_400_000 - hours * 3_600_000);
    const mode = p.segment === 'mynumber' ? 'block' : p.segment === 'lgwan' ? 'readonly' : 'audit';
    const events: { at: Date; type: string; payload: unknown }[] = [
      { at: ago(8), type: 'agent.started', payload: { version: '0.1.0', platform: 'win32', hostname: p.hostname } },
      { at: ago(8), type: 'policy.applied', payload: { segment: p.segment, version: 1, mode, enforcement: p.segment === 'internet' ? 'audit' : 'active' } },
      { at: ago(7, 23), type: 'device.blocked', payload: { ...device('Old stick'), reason: 'policy block', mode: 'block' } },
      {
        at: ago(2, 3),
        type: 'login.success',
        payload: { user: p.segment === 'mynumber' ? 'yamada.taro' : 'suzuki.hanako', source: 'security-log', logonType: 2 },
      },
      { at: ago(2, 2), type: 'login.failure', payload: { user: 'yamada.taro', source: 'security-log', logonType: 2, reason: 'bad password' } },
      { at: ago(1, 1), type: 'session.lock', payload: { user: 'yamada.taro', source: 'session' } },
      { at: ago(0, 1), type: 'session.unlock', payload: { user: 'yamada.taro', source: 'session' } },
    ];
    if (p.segment !== 'internet') {
      const blocks = p.segment === 'mynumber' ? [5, 3, 3, 1, 0] : [4, 2];
      for (const d of blocks) {
        events.push({ at: ago(d, 2), type: 'device.attached', payload: device(p.usbProduct ?? 'Ultra', p.usbSerial) });
        events.push({ at: ago(d, 2), type: 'device.blocked', payload: { ...device(p.usbProduct ?? 'Ultra', p.usbSerial), reason: 'policy block', mode } });
      }
    }
    if (p.hostname === 'ZEIMU-PC014')
      events.push({
        at: ago(0, 2),
        type: 'login.success',
        payload: { user: HOSTILE.formula, source: 'security-log', logonType: 10, remoteHost: HOSTILE.script },
      });
    if (p.hostname === 'LGWAN-PC102')
      events.push({
        at: ago(0, 3),
        type: 'agent.warning',
        payload: { component: 'enforcement', code: 'sysfs_unwritable', message: 'cannot write interface_authorized_default' },
      });
    const status = await sendEvents(call, t, events);
    if (status !== 200) throw new Error(`events ${p.hostname}: ${status}`);
  }
  const byHost = (hostname: string) => terminals.find((t) => t.hostname === hostname)!;

  // Incidents, one of them hostile.
  const incidentReceipts: string[] = [];
  const incidents = [
    {
      host: 'SOUMU-PC001',
      receipt: 'INC-20261124-7K3Q9D',
      category: 'suspicious_email',
      description: '「請求書」という件名のメールの添付ファイルを開いてしまいました。差出人に心当たりがありません。',
    },
    {
      host: 'ZEIMU-PC014',
      receipt: 'INC-20261125-X7Z2PL',
      category: 'malware',
      description: `${HOSTILE.script}\n${HOSTILE.formula}\n${HOSTILE.controls}\n${HOSTILE.bidi}\n${HOSTILE.img}`,
    },
    {
      host: 'LGWAN-PC101',
      receipt: 'INC-20261125-LM5T8R',
      category: 'loss_theft',
      description: '外出先で USB メモリ（総務課配布、管理番号 12）を紛失しました。',
    },
  ];
  for (const i of incidents) {
    const t = byHost(i.host);
    const status = await sendEvents(call, t, [
      {
        at: new Date(now.getTime() - 3_600_000),
        type: 'incident.reported',
        payload: {
          receipt: i.receipt,
          category: i.category,
          description: i.description,
          contact: i.host === 'ZEIMU-PC014' ? HOSTILE.at : '内線 2345',
          context: {
            hostname: t.hostname,
            osUser: i.host === 'ZEIMU-PC014' ? HOSTILE.script : 'yamada.taro',
            inventoryHash: '0'.repeat(64),
            recentEvents: [{ seq: 3, at: new Date(now.getTime() - 7_200_000).toISOString(), type: 'device.blocked', summary: `SanDisk ${HOSTILE.formula}` }],
          },
        },
      },
    ]);
    if (status !== 200) throw new Error(`incident ${i.receipt}: ${status}`);
    incidentReceipts.push(i.receipt);
  }

  // Exception requests, pending at the collector.
  const requests: Seeded['requests'] = [];
  const asks = [
    { host: 'SOUMU-PC001', reason: '住民説明会の資料を会議室のプロジェクター用 PC に移すため', minutes: 60 },
    { host: 'ZEIMU-PC014', reason: `${HOSTILE.formula} ${HOSTILE.script}`, minutes: 120 },
    { host: 'KOSEKI-PC003', reason: '法務局への提出データを書き出すため', minutes: 30 },
  ];
  for (const a of asks) {
    const t = byHost(a.host);
    const id = crypto.randomUUID();
    const device = { vendorId: '0781', productId: '5581', serial: '4C530001230101109473' };
    const requestCode = makeRequestCode(t.enrolled.agentId, device, crypto.randomBytes(5));
    const status = await sendEvents(call, t, [
      {
        at: new Date(now.getTime() - 1_800_000),
        type: 'exception.requested',
        payload: { requestId: id, requestCode, device, reason: a.reason, minutes: a.minutes },
      },
    ]);
    if (status !== 200) throw new Error(`request ${a.host}: ${status}`);
    requests.push({ id, terminal: t, requestCode });
  }

  // A terminal whose next batch was rewritten on the way: the collector refuses it and flags it.
  const koseki = byHost('KOSEKI-PC003');
  const forged = [
    { seq: koseki.last.seq + 1, at: now.toISOString(), type: 'agent.stopped', payload: { reason: 'stop' }, prevHash: koseki.last.hash, hash: 'f'.repeat(64) },
  ];
  const refused = await call('POST', `/api/v1/agents/${koseki.enrolled.agentId}/events`, { token: koseki.enrolled.agentToken, body: { events: forged } });
  if (refused.status !== 422) throw new Error(`forged batch: expected 422, got ${refused.status}`);

  return { terminals, byHost, incidentReceipts, requests, hostileHost };
}
