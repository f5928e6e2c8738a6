import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createExceptionBook } from '../../../src/agent/exceptions';
import { createAgentService, type AgentServiceHost } from '../../../src/agent/ipc/service';
import { connectIpc, startIpcServer, type IpcServer } from '../../../src/agent/ipc/socket';
import { saveEnrollment } from '../../../src/agent/policy';
import { openEventStore, type EventStore } from '../../../src/agent/store';
import { IPC_ERROR_CODES, IpcError, createIpcClient, createMemoryTransportPair, handleIpcLine, makeUnlockCode, type AgentService } from '../../../src/shared';

const silent = { info() {}, warn() {}, error() {}, debug() {} } as never;
const secret = Buffer.alloc(32, 3).toString('base64');
const stick = { vendorId: '0781', productId: '5581', serial: 'S1' };
let dir: string;
let store: EventStore;
let reconciles: number;
let syncs: number;
let service: AgentService;
let host: AgentServiceHost;
// The tests run as one user (root here), who is also the console session's user.
const uid = process.getuid!();
const me = { key: `uid:${uid}`, verified: true, uid, user: 'me' };

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mamori-ipc-'));
  store = openEventStore(path.join(dir, 'agent.db'));
  saveEnrollment(store, {
    collectorUrl: 'http://127.0.0.1:1',
    agentId: 'agent-42',
    agentToken: 'secret-token',
    segment: 'mynumber',
    collectorPublicKey: 'k',
    unlockSecret: secret,
    enrolledAt: '2026-11-24T00:00:00.000Z',
  });
  store.append({
    type: 'device.blocked',
    payload: {
      vendorId: '0781',
      productId: '5581',
      serial: 'S1',
      manufacturer: 'SanDisk',
      product: 'Ultra',
      deviceClass: '00',
      port: '1-2',
      reason: 'policy block',
    },
  });
  reconciles = 0;
  syncs = 0;
  host = createAgentService({
    store,
    exceptions: createExceptionBook(store),
    enforcement: () => 'active',
    collectorReachable: () => false,
    syncSoon: () => void syncs++,
    reconcileNow: () => void reconciles++,
    sessions: { consoleUser: async () => ({ key: me.key, user: me.user }) },
    limits: { incidents: { count: 2, windowMs: 60_000 } },
  });
  service = host.forPeer(me);
});
afterEach(() => {
  host.stop();
  store.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

function memoryClient() {
  const [serverSide, clientSide] = createMemoryTransportPair();
  serverSide.onLine((line) => void handleIpcLine(service, line).then((r) => r && serverSide.send(r)));
  return createIpcClient(clientSide);
}

describe('IPC contract over an in-memory pair', () => {
  it('reports status without any secret', async () => {
    const client = memoryClient();
    const status = await client.status(undefined);
    expect(status).toMatchObject({ agentId: 'agent-42', segment: 'mynumber', enforcement: 'active', collectorReachable: false });
    expect(JSON.stringify(status)).not.toContain('secret-token');
    expect(JSON.stringify(status)).not.toContain(secret);
  });

  it('files an incident with context, returns a receipt, asks for a sync, and queues what is over the quota', async () => {
    const client = memoryClient();
    const { receipt, queued } = await client.reportIncident({ category: 'suspicious_email', description: '不審なメールの添付ファイルを開いてしまった' });
    expect(receipt).toMatch(/^INC-\d{8}-[0-9A-F]{6}$/);
    expect(queued).toBe(true);
    expect(syncs).toBe(1);
    const [event] = store.recent(1);
    expect(event!.type).toBe('incident.reported');
    expect((event!.payload as { context: { recentEvents: unknown[] } }).context.recentEvents).toHaveLength(1);
    await client.reportIncident({ category: 'other', description: 'second' });
    await expect(client.reportIncident({ category: 'other', description: 'third' })).resolves.toMatchObject({ queued: true });
    expect(store.recent(10, ['incident.reported'])).toHaveLength(2);
  });

  it('requests an exception for the last blocked stick and redeems its unlock code once', async () => {
    const client = memoryClient();
    const { requestId, requestCode } = await client.requestException({ reason: '会議資料の受け取り', minutes: 30 });
    const code = makeUnlockCode(secret, requestCode, 30, stick);
    const granted = await client.redeemUnlockCode({ code });
    expect(granted.device).toMatchObject({ vendorId: '0781', productId: '5581', serial: 'S1' });
    expect(Date.parse(granted.expiresAt) - Date.now()).toBeGreaterThan(29 * 60_000);
    expect(reconciles).toBe(1);
    await expect(client.redeemUnlockCode({ code, requestId })).rejects.toMatchObject({ code: 'unlock_refused' });
    const types = store.readSince(0).map((e) => e.type);
    expect(types).toEqual(['device.blocked', 'exception.requested', 'exception.granted', 'tamper.detected']);
  });

  it("refuses another terminal's code and records the refusal", async () => {
    const client = memoryClient();
    const { requestCode } = await client.requestException({ reason: 'x', minutes: 10 });
    const forged = makeUnlockCode(Buffer.alloc(32, 4).toString('base64'), requestCode, 10, stick);
    await expect(client.redeemUnlockCode({ code: forged })).rejects.toBeInstanceOf(IpcError);
    expect(store.recent(1)[0]!.type).toBe('tamper.detected');
    expect(reconciles).toBe(0);
  });

  it('refuses unknown methods and params that try to do more than the contract allows', async () => {
    expect(JSON.parse((await handleIpcLine(service, '{"jsonrpc":"2.0","id":1,"method":"setPolicy","params":{"mode":"allow"}}'))!).error.data.code).toBe(
      'method_not_found',
    );
    expect(
      JSON.parse((await handleIpcLine(service, '{"jsonrpc":"2.0","id":2,"method":"sessionEvent","params":{"kind":"lock","mode":"allow"}}'))!).error.data.code,
    ).toBe('invalid_params');
    expect(JSON.parse((await handleIpcLine(service, 'not json'))!).error.code).toBe(-32700);
    expect(JSON.parse((await handleIpcLine(service, '{"jsonrpc":"2.0","id":3,"method":"__proto__"}'))!).error.data.code).toBe('method_not_found');
  });
});

describe('IPC over a real Unix socket', () => {
  let server: IpcServer;
  const socketPath = () => path.join(dir, 'run', 'agent.sock');

  beforeEach(async () => {
    server = await startIpcServer({ path: socketPath(), service: host, logger: silent });
  });
  afterEach(async () => server.stop());

  it('serves the same contract, and local users may connect', async () => {
    const client = createIpcClient(await connectIpc(socketPath()));
    await client.sessionEvent({ kind: 'lock' });
    expect(store.recent(1)[0]!.type).toBe('session.lock');
    expect((await client.recentEvents({ limit: 1 }))[0]!.type).toBe('session.lock');
    expect(fs.statSync(socketPath()).mode & 0o777).toBe(0o666);
    expect(fs.statSync(path.dirname(socketPath())).mode & 0o022).toBe(0);
    client.close();
  });

  it('will not start over a live agent nor replace a file that is not a socket', async () => {
    await expect(startIpcServer({ path: socketPath(), service: host, logger: silent })).rejects.toThrow(/already listening/);
    const file = path.join(dir, 'plain');
    fs.writeFileSync(file, 'x');
    await expect(startIpcServer({ path: file, service: host, logger: silent })).rejects.toThrow(/not a socket/);
    expect(fs.readFileSync(file, 'utf8')).toBe('x');
  });

  it('drops a connection that sends an endless line', async () => {
    const socket = net.connect(socketPath());
    await new Promise((r) => socket.once('connect', r));
    const closed = new Promise((r) => socket.once('close', r));
    socket.on('error', () => undefined);
    socket.write('x'.repeat(200 * 1024));
    await closed;
  });
});

describe('IPC error codes', () => {
  it('every stable code is in docs/design.md#ipc-errors', () => {
    const design = fs.readFileSync(path.resolve(__dirname, '../../../docs/design.md'), 'utf8');
    const section = design.slice(design.indexOf('#### IPC errors'), design.indexOf('#### Tray bridge'));
    for (const code of IPC_ERROR_CODES) expect(section).toContain(`\`${code}\``);
  });
});
