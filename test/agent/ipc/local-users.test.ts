import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MAX_PENDING_PER_USER, createExceptionBook } from '../../../src/agent/exceptions';
import { createAgentService, type AgentServiceHost, type ServiceLimits } from '../../../src/agent/ipc/service';
import { connectIpc, startIpcServer, type ConnectionLimits, type IpcServer } from '../../../src/agent/ipc/socket';
import { saveEnrollment } from '../../../src/agent/policy';
import { openEventStore, type EventStore } from '../../../src/agent/store';
import { createIpcClient, fixedClock, makeUnlockCode } from '../../../src/shared';

// Hardening item 3 (docs/design.md#ipc-limits): every local user is a possible adversary. These
// tests run the real server on a real Unix socket with the real peer lookup (ss + /proc): the test
// process (root here) is the console session's user B, and clients spawned under other uids
// (nobody, and uids with no account at all, which the kernel accepts as well) are the other users.

const silent = { info() {}, warn() {}, error() {}, debug() {} } as never;
const secret = Buffer.alloc(32, 3).toString('base64');
const stick = { vendorId: '0781', productId: '5581', serial: 'S1' };
const B = process.getuid!();
const NOBODY = 65534;
const clock = fixedClock('2026-11-24T09:00:00.000Z');

let dir: string;
let store: EventStore;
let host: AgentServiceHost;
let server: IpcServer;
let syncs: number;
const socketPath = () => path.join(dir, 'run', 'agent.sock');

async function start(limits: Partial<ServiceLimits> = {}, connections: Partial<ConnectionLimits> = {}) {
  host = createAgentService({
    store,
    exceptions: createExceptionBook(store, () => clock.now()),
    enforcement: () => 'active',
    collectorReachable: () => true,
    syncSoon: () => void syncs++,
    reconcileNow: () => undefined,
    now: () => clock.now(),
    sessions: { consoleUser: async () => ({ key: `uid:${B}`, user: 'root' }) },
    limits,
  });
  server = await startIpcServer({ path: socketPath(), service: host, logger: silent, limits: connections });
}

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mamori-users-'));
  fs.chmodSync(dir, 0o755); // other uids must reach the socket inside
  store = openEventStore(path.join(dir, 'agent.db'), { clock });
  saveEnrollment(store, {
    collectorUrl: 'http://127.0.0.1:1',
    agentId: 'agent-42',
    agentToken: 't',
    segment: 'mynumber',
    collectorPublicKey: 'k',
    unlockSecret: secret,
    enrolledAt: clock.now().toISOString(),
  });
  store.append({
    type: 'device.blocked',
    payload: { ...stick, manufacturer: 'SanDisk', product: 'Ultra', deviceClass: '00', port: '1-2', reason: 'policy block' },
  });
  syncs = 0;
});
afterEach(async () => {
  await server?.stop();
  host?.stop();
  store.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

/**
 * Runs a raw JSON-RPC client as `uid`: opens `connections` connections, makes `calls` in order on
 * the first, then asks `status` on every connection and reports how many were served (`open`),
 * the refusals the server sent, and every answer. Keeps its connections open until killed.
 */
interface Plan {
  connections?: number;
  calls?: { method: string; params?: unknown }[];
  settleMs?: number;
}
interface Report {
  open: number;
  refusals: string[];
  answers: { result?: unknown; error?: { data?: { code?: string } } }[];
}
const CLIENT = `
const net = require('net');
const [socketPath, planJson] = process.argv.slice(1);
const plan = JSON.parse(planJson);
const conns = [];
const refusals = [];
function connect() {
  return new Promise((resolve) => {
    const s = net.connect(socketPath);
    let buf = '';
    const waiters = [];
    s.on('data', (d) => {
      buf += d;
      let i;
      while ((i = buf.indexOf('\\n')) >= 0) {
        const msg = JSON.parse(buf.slice(0, i));
        buf = buf.slice(i + 1);
        if (msg.id === null) refusals.push(msg.error.data.code);
        else waiters.shift()?.(msg);
      }
    });
    s.on('error', () => {});
    s.on('close', () => { s.closed = true; waiters.splice(0).forEach((w) => w({ error: { data: { code: 'closed' } } })); });
    s.on('connect', () => resolve({ s, waiters }));
  });
}
(async () => {
  for (let i = 0; i < (plan.connections ?? 1); i++) conns.push(await connect());
  const answers = [];
  let id = 1;
  for (const call of plan.calls ?? []) {
    const c = conns[0];
    const answer = await new Promise((resolve) => {
      if (c.s.closed) return resolve({ error: { data: { code: 'closed' } } });
      c.waiters.push(resolve);
      c.s.write(JSON.stringify({ jsonrpc: '2.0', id: id++, method: call.method, params: call.params }) + '\\n');
    });
    answers.push(answer);
  }
  // Served means answered: a connection still open but not yet admitted does not count.
  const served = await Promise.all(conns.map((c) => new Promise((resolve) => {
    if (c.s.closed) return resolve(false);
    c.waiters.push((msg) => resolve(Boolean(msg.result)));
    c.s.write(JSON.stringify({ jsonrpc: '2.0', id: id++, method: 'status' }) + '\\n');
  })));
  await new Promise((r) => setTimeout(r, plan.settleMs ?? 100));
  process.stdout.write(JSON.stringify({ open: served.filter(Boolean).length, refusals, answers }) + '\\n');
})();
`;

const children: ReturnType<typeof spawn>[] = [];
afterEach(() => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
});

function runAs(uid: number, plan: Plan): Promise<Report> {
  const child = spawn(process.execPath, ['-e', CLIENT, socketPath(), JSON.stringify(plan)], {
    uid,
    gid: uid === NOBODY ? 65534 : uid,
    cwd: '/',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) resolve(JSON.parse(out) as Report);
    });
    child.once('exit', (code) => reject(new Error(`client as uid ${uid} exited ${code} before reporting`)));
  });
}

const asB = async () => createIpcClient(await connectIpc(socketPath()));
const incident = (description: string) => ({ method: 'reportIncident', params: { category: 'other', description } });
const codeOf = (a: Report['answers'][number]) => a.error?.data?.code;

describe('local users over IPC, by peer identity (regression)', () => {
  it('32 idle connections from user A do not lock out the console user B', async () => {
    await start();
    const a = await runAs(NOBODY, { connections: 32 });
    expect(a.open).toBe(4);
    expect(a.refusals.filter((r) => r === 'too_many_connections')).toHaveLength(28);
    // Even with ten more users each trying to hold 32, B's slots are kept.
    const crowd = await Promise.all(Array.from({ length: 10 }, (_, i) => runAs(20_001 + i, { connections: 32 })));
    const held = a.open + crowd.reduce((n, r) => n + r.open, 0);
    expect(held).toBeGreaterThan(4);
    expect(held).toBeLessThanOrEqual(28);
    expect(crowd.every((r) => r.open <= 4 && r.refusals.every((x) => x === 'too_many_connections'))).toBe(true);
    const b = await asB();
    expect((await b.status()).agentId).toBe('agent-42');
    b.close();
  });

  it('an idle connection is closed, so it gives its slot back', async () => {
    await start({}, { idleMs: 300 });
    const socket = net.connect(socketPath());
    socket.on('error', () => undefined);
    const t0 = Date.now();
    await new Promise((r) => socket.once('close', r));
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
    expect(Date.now() - t0).toBeLessThan(3_000);
  });

  it("5 spam reports from A do not block colleague B's real one, and A's are merged, not refused", async () => {
    await start({ incidents: { count: 3, windowMs: 10 * 60_000 } });
    const a = await runAs(NOBODY, { calls: Array.from({ length: 10 }, (_, i) => incident(`spam ${i}`)) });
    expect(a.answers.every((x) => typeof (x.result as { receipt?: string })?.receipt === 'string')).toBe(true);
    const b = await asB();
    const real = await b.reportIncident({ category: 'suspicious_email', description: '不審なメールを開いてしまった' });
    const recorded = store.recent(20, ['incident.reported']).map((e) => e.payload as { receipt: string; description: string; context: { osUser: string } });
    expect(recorded.find((p) => p.receipt === real.receipt)).toMatchObject({ description: '不審なメールを開いてしまった', context: { osUser: 'root' } });
    expect(recorded.filter((p) => p.context.osUser === 'nobody')).toHaveLength(3);
    // The rest wait as one incident, under one receipt, and go out when A's quota has room.
    const waiting = new Set(a.answers.slice(3).map((x) => (x.result as { receipt: string }).receipt));
    expect(waiting.size).toBe(1);
    clock.advance(10 * 60_000);
    host.flush();
    const merged = store.recent(1, ['incident.reported'])[0]!.payload as { receipt: string; description: string };
    expect(merged.receipt).toBe([...waiting][0]);
    expect(merged.description).toMatch(/^spam 3\n\n\[\+6 more reports from nobody\]/);
    expect(merged.description).toContain('other: spam 9');
    b.close();
  });

  it('1,000 wrong unlock codes append one tamper.detected with a count per window, not 1,000', async () => {
    await start({ writes: { capacity: 2_000, perMinute: 60 } });
    const before = store.head().seq;
    const a = await runAs(NOBODY, {
      calls: Array.from({ length: 1_000 }, () => ({ method: 'redeemUnlockCode', params: { code: 'AAAA-BBBB-CCCC-DDDD' } })),
      settleMs: 50,
    });
    expect(a.answers.map(codeOf).filter((c) => c === 'unlock_refused')).toHaveLength(1_000);
    expect(store.readSince(before).map((e) => e.type)).toEqual(['tamper.detected']);
    clock.advance(10 * 60_000);
    host.flush();
    const events = store.readSince(before);
    expect(events.map((e) => e.type)).toEqual(['tamper.detected', 'tamper.detected']);
    expect((events[1]!.payload as { detail: string }).detail).toMatch(/^999 more unlock codes refused from nobody/);
  }, 60_000);

  it("A's writes are rate-limited per user and B's still go through", async () => {
    await start({ writes: { capacity: 5, perMinute: 1 } });
    const a = await runAs(NOBODY, { calls: Array.from({ length: 8 }, () => ({ method: 'requestException', params: { reason: 'x', minutes: 30 } })) });
    expect(a.answers.map(codeOf)).toEqual([undefined, undefined, undefined, undefined, undefined, 'rate_limited', 'rate_limited', 'rate_limited']);
    const b = await asB();
    await expect(b.requestException({ reason: '会議資料', minutes: 30 })).resolves.toMatchObject({ device: stick });
    b.close();
  });

  it('sessionEvent lock records are accepted only from the console session user', async () => {
    await start();
    const a = await runAs(NOBODY, {
      calls: [
        { method: 'sessionEvent', params: { kind: 'lock' } },
        { method: 'sessionEvent', params: { kind: 'resume' } },
      ],
    });
    expect(a.answers.map(codeOf)).toEqual(['not_session_user', undefined]);
    expect(store.recent(5, ['session.lock'])).toHaveLength(0);
    const b = await asB();
    await b.sessionEvent({ kind: 'lock' });
    expect(store.recent(1, ['session.lock'])[0]!.payload).toEqual({ user: 'root', source: 'session' });
    b.close();
  });

  it("pending requests are capped per user and A's never evict B's", async () => {
    await start({ writes: { capacity: 100, perMinute: 60 } });
    const b = await asB();
    const mine = await b.requestException({ reason: '会議資料', minutes: 30 });
    const a = await runAs(NOBODY, { calls: Array.from({ length: 60 }, () => ({ method: 'requestException', params: { reason: 'x', minutes: 30 } })) });
    expect(a.answers.every((x) => x.result)).toBe(true);
    const pending = JSON.parse(store.getState('exceptions.pending')!) as { owner: string }[];
    expect(pending.filter((p) => p.owner === `uid:${NOBODY}`)).toHaveLength(MAX_PENDING_PER_USER);
    await expect(b.redeemUnlockCode({ code: makeUnlockCode(secret, mine.requestCode, 30, stick) })).resolves.toMatchObject({ granted: true });
    b.close();
  });

  it("recentEvents shows A only A's own and device/policy events, not B's incident or request", async () => {
    await start();
    const b = await asB();
    await b.reportIncident({ category: 'data_leak', description: '個人情報を誤送信した' });
    await b.requestException({ reason: '会議資料', minutes: 30 });
    const a = await runAs(NOBODY, { calls: [incident('mine'), { method: 'recentEvents', params: { limit: 50 } }] });
    const seen = a.answers[1]!.result as { type: string; payload: { description?: string } }[];
    expect(seen.map((e) => e.type)).toEqual(['incident.reported', 'device.blocked']);
    expect(seen[0]!.payload.description).toBe('mine');
    const own = (await b.recentEvents({ limit: 50 })).map((e) => e.type);
    expect(own).toEqual(['exception.requested', 'incident.reported', 'device.blocked']);
    b.close();
  });

  it('syncSoon is throttled: a burst of writes asks for one sync, not one each', async () => {
    await start({ incidents: { count: 50, windowMs: 60_000 }, writes: { capacity: 50, perMinute: 60 } });
    await runAs(NOBODY, {
      calls: [
        ...Array.from({ length: 20 }, (_, i) => incident(`r${i}`)),
        ...Array.from({ length: 10 }, () => ({ method: 'requestException', params: { reason: 'x', minutes: 5 } })),
      ],
    });
    expect(syncs).toBe(1);
  });
});
