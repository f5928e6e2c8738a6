import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { connectIpc } from '../../src/agent/ipc/socket';
import { createIpcClient, type AgentService } from '../../src/shared';
import { PRESETS, buildSysfs } from '../fixtures/linux/sysfs';
import { mamori, requireBuild, startCollector, startMamori, waitFor, type Running, type TestCollector } from './helpers';

let dir: string;
let collector: TestCollector;
let agent: Running;
let client: AgentService & { close(): void };
const root = () => path.join(dir, 'root');
const authorized = (iface: string) =>
  fs.readFileSync(path.join(fs.realpathSync(path.join(root(), 'sys', 'bus', 'usb', 'devices', iface)), 'authorized'), 'utf8').trim();
const api = (route: string, init: { method?: string; body?: unknown } = {}) => collector.api(route, init);

beforeAll(async () => {
  requireBuild();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mamori-e2e-staff-'));
  buildSysfs(root(), [PRESETS.keyboard(), PRESETS.stickWithSerial('1-2', 'STICK-A'), PRESETS.stickWithSerial('1-3', 'STICK-B')]);
  collector = await startCollector(path.join(dir, 'collector'));
  // Short sync interval so the agent picks up an approval within the test.
  await api('/api/v1/admin/policies/mynumber', {
    method: 'PUT',
    body: { removableMedia: { mode: 'block', allow: [] }, syncIntervalSeconds: 10, incidentContact: '情報政策課 CSIRT 内線 1234' },
  });
  const token = await collector.token('mynumber');
  const agentArgs = ['--data-dir', path.join(dir, 'agent'), '--system-root', root()];
  expect((await mamori(['agent', 'enroll', '--collector', collector.url, '--token', token, ...agentArgs])).code).toBe(0);
  const sock = path.join(dir, 'run', 'agent.sock');
  agent = startMamori(['agent', 'run', ...agentArgs, '--ipc', sock]);
  await waitFor(() => fs.existsSync(sock), 'the agent socket');
  client = createIpcClient(await connectIpc(sock));
  await waitFor(() => authorized('1-2:1.0') === '0', 'the sticks to be blocked');
});
afterAll(async () => {
  client?.close();
  await agent?.stop();
  await collector?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

it('reports status with the CSIRT contact over IPC, and mamori agent status reads it', async () => {
  await waitFor(async () => (await client.status(undefined)).collectorReachable, 'the first sync');
  const status = await client.status(undefined);
  expect(status).toMatchObject({ segment: 'mynumber', policyVersion: 2, enforcement: 'active', incidentContact: '情報政策課 CSIRT 内線 1234' });
  const cli = await mamori(['agent', 'status', '--ipc', path.join(dir, 'run', 'agent.sock'), '--json']);
  expect(JSON.parse(cli.stdout)).toMatchObject({ segment: 'mynumber', enforcement: 'active' });
});

it('files an incident that reaches the collector with its context, and moves it through the workflow', async () => {
  const { receipt } = await client.reportIncident({
    category: 'suspicious_email',
    description: '請求書を装ったメールの添付ファイルを開いた',
    contact: '内線 5678',
  });
  let incidents: { receipt: string; status: string; hostname: string; context: { recentEvents: unknown[] } }[] = [];
  await waitFor(async () => {
    incidents = (await api('/api/v1/admin/incidents')).body as typeof incidents;
    return incidents.some((i) => i.receipt === receipt);
  }, 'the incident at the collector');
  const incident = incidents.find((i) => i.receipt === receipt)!;
  expect(incident).toMatchObject({ status: 'new', hostname: os.hostname() });
  expect(incident.context.recentEvents.length).toBeGreaterThan(0);
  expect((await api(`/api/v1/admin/incidents/${receipt}`, { method: 'PATCH', body: { status: 'investigating' } })).status).toBe(200);
  expect((await api(`/api/v1/admin/incidents/${receipt}`, { method: 'PATCH', body: { status: 'new' } })).status).toBe(400);
});

/** The seq of the `device.blocked` of the stick with `serial`, as the tray's request window finds it. */
async function blockedSeq(serial: string): Promise<number> {
  const events = await client.recentEvents({ limit: 200 });
  const blocked = events.find((e) => e.type === 'device.blocked' && (e.payload as { serial: string }).serial === serial);
  if (!blocked) throw new Error(`no device.blocked for ${serial}`);
  return blocked.seq;
}

it('unlocks one stick offline with a code read over the phone, once, and names the exact device', async () => {
  const { requestCode, device } = await client.requestException({ blockedSeq: await blockedSeq('STICK-A'), reason: '会議資料の受け取り', minutes: 30 });
  expect(device).toEqual({ vendorId: '0781', productId: '5581', serial: 'STICK-A' });
  // The device read over the phone must be the request's: refused against the synced request, or
  // (offline, not synced yet) against the device tag in the request code.
  const wrong = await mamori([
    'collector',
    'unlock',
    '--request',
    requestCode,
    '--device',
    '0781:5581 serial STICK-B',
    '--minutes',
    '30',
    '--data-dir',
    path.join(dir, 'collector'),
  ]);
  expect(wrong.code).not.toBe(0);
  expect(wrong.stderr).toMatch(/request is for 0781:5581 serial STICK-A, not|not the one this request code was made for/);
  const answer = await mamori([
    'collector',
    'unlock',
    '--request',
    requestCode,
    '--device',
    '0781:5581 serial STICK-A',
    '--minutes',
    '30',
    '--data-dir',
    path.join(dir, 'collector'),
  ]);
  expect(answer.code).toBe(0);
  expect(answer.stderr).toContain('device 0781:5581 serial STICK-A, 30 min');
  const code = answer.stdout.trim();
  expect(code.replace(/-/g, '')).toHaveLength(16);
  const granted = await client.redeemUnlockCode({ code });
  expect(granted.device).toMatchObject({ serial: 'STICK-A' });
  await waitFor(() => authorized('1-2:1.0') === '1', 'the stick to be authorized');
  expect(authorized('1-3:1.0')).toBe('0');
  await expect(client.redeemUnlockCode({ code })).rejects.toMatchObject({ code: 'unlock_refused' });
  const audit = (await api('/api/v1/admin/audit')).body as { action: string }[];
  expect(audit.some((a) => a.action === 'unlock')).toBe(true);
});

it('applies an approval from the console at the next sync', async () => {
  const { requestId } = await client.requestException({ blockedSeq: await blockedSeq('STICK-B'), reason: '住民票データの移送', minutes: 60 });
  await waitFor(
    async () => ((await api('/api/v1/admin/exceptions?status=pending')).body as { id: string }[]).some((e) => e.id === requestId),
    'the request at the collector',
    30_000,
  );
  expect((await api(`/api/v1/admin/exceptions/${requestId}/approve`, { method: 'POST', body: { minutes: 60 } })).status).toBe(200);
  await waitFor(() => authorized('1-3:1.0') === '1', 'the approved stick to be authorized', 40_000);
  await waitFor(
    async () => {
      const events = (await api('/api/v1/admin/events?type=exception.granted&limit=100')).body as { payload: { requestId: string; via: string } }[];
      return events.some((e) => e.payload.requestId === requestId && e.payload.via === 'admin');
    },
    'exception.granted at the collector',
    30_000,
  );
});
