import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { loadEnrollment } from '../../src/agent/policy';
import { openEventStore } from '../../src/agent/store';
import { mamori, requireBuild, startCollector, type TestCollector } from './helpers';

/**
 * What the proxy does to one HTTP request between agent and collector:
 * - `pass`: relays it and the whole answer;
 * - `reset-before` / `reset-after`: a TCP reset before the collector sees the request, or after it
 *   has processed it (its answer is lost);
 * - `stall-after`: the collector processes the request and the answer never comes, for longer
 *   than the agent's timeout;
 * - `truncate`: the collector's answer cut in the middle of its body;
 * - `truncated-2xx`: a 200 whose body is cut short, the collector never having seen the request;
 * - `503` / `502-html`: a server error in place of the collector's answer (a restarting
 *   collector, a reverse proxy's HTML page);
 * - `cut-body`: the request body cut in half on its way to the collector, then a reset.
 */
type Fault = 'pass' | 'reset-before' | 'reset-after' | 'stall-after' | 'truncate' | 'truncated-2xx' | '503' | '502-html' | 'cut-body';

/** The nth request of a kind (after enrollment) meets the nth fault of its list; later ones pass. */
const SCHEDULE: Record<string, Fault[]> = {
  'PUT inventory': ['truncated-2xx'],
  'GET policy': ['pass', 'truncate'],
  'GET exceptions': ['pass', 'reset-after'],
  'POST events': ['cut-body', '503', 'reset-after', 'truncate', 'stall-after', '502-html', 'reset-before'],
};
const ALL_FAULTS = [
  ...new Set(
    Object.values(SCHEDULE)
      .flat()
      .filter((f) => f !== 'pass'),
  ),
];

interface ParsedRequest {
  head: string;
  body: Buffer;
  method: string;
  kind: string;
}

/** A request kind from its path: `/api/v1/agents/{id}/events` is `events`. */
function kindOf(url: string): string {
  const m = /^\/api\/v1\/agents\/[^/]+\/([a-z]+)/.exec(url);
  return m ? m[1]! : url.startsWith('/api/v1/enroll') ? 'enroll' : 'other';
}

/** Reads one HTTP/1.1 request (head and Content-Length body) from a socket. */
function readRequest(socket: net.Socket): Promise<ParsedRequest | null> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = buf.subarray(0, end).toString('latin1');
      if (/^transfer-encoding:/im.test(head)) return reject(new Error(`the proxy only relays Content-Length bodies: ${head}`));
      const length = Number(/^content-length:\s*(\d+)/im.exec(head)?.[1] ?? 0);
      if (buf.length < end + 4 + length) return;
      socket.off('data', onData);
      const [method = '', url = ''] = head.split(' ');
      resolve({ head, body: buf.subarray(end + 4, end + 4 + length), method, kind: kindOf(url) });
    };
    socket.on('data', onData);
    socket.once('end', () => resolve(null));
    socket.once('error', () => resolve(null));
  });
}

/** Sends a request to the collector on a fresh connection and returns its whole answer. */
function forward(port: number, head: string, body: Buffer, cut = false): Promise<Buffer> {
  return new Promise((resolve) => {
    const upstream = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    // One request per connection: the answer ends when the collector closes it.
    const closeHead = `${head.replace(/^connection:.*\r\n?/gim, '').replace(/\r\n$/, '')}\r\nconnection: close\r\n\r\n`;
    upstream.on('connect', () => {
      if (cut) {
        upstream.write(closeHead);
        upstream.write(body.subarray(0, Math.floor(body.length / 2)), () => setTimeout(() => upstream.resetAndDestroy(), 50));
      } else upstream.end(Buffer.concat([Buffer.from(closeHead, 'latin1'), body]));
    });
    upstream.on('data', (c: Buffer) => chunks.push(c));
    upstream.on('close', () => resolve(Buffer.concat(chunks)));
    upstream.on('error', () => undefined);
  });
}

function errorAnswer(status: number, reason: string, type: string, body: string): string {
  return `HTTP/1.1 ${status} ${reason}\r\ncontent-type: ${type}\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`;
}

/** A TCP proxy on 127.0.0.1 that relays to the collector and injects the scheduled faults. */
async function startFaultProxy(upstreamPort: number) {
  const seen = new Map<string, number>();
  const injected: { fault: Fault; request: string }[] = [];
  /** Requests of each kind the collector received whole through the proxy. */
  const delivered = new Map<string, number>();
  const sockets = new Set<net.Socket>();
  let armed = false;

  async function handle(socket: net.Socket): Promise<void> {
    const request = await readRequest(socket);
    if (!request) return void socket.destroy();
    const key = `${request.method} ${request.kind}`;
    const n = seen.get(key) ?? 0;
    seen.set(key, n + 1);
    const fault: Fault = armed ? (SCHEDULE[key]?.[n] ?? 'pass') : 'pass';
    if (fault !== 'pass') injected.push({ fault, request: `${key} #${n + 1}` });
    const relay = async () => {
      const answer = await forward(upstreamPort, request.head, request.body);
      delivered.set(key, (delivered.get(key) ?? 0) + 1);
      return answer;
    };
    switch (fault) {
      case 'pass':
        return void socket.end(await relay());
      case 'reset-before':
        return void socket.resetAndDestroy();
      case 'reset-after':
        await relay();
        return void socket.resetAndDestroy();
      case 'stall-after':
        await relay();
        return; // the agent gives up on its own; close() ends the socket
      case 'truncate': {
        const answer = await relay();
        const bodyAt = answer.indexOf('\r\n\r\n') + 4;
        return void socket.end(answer.subarray(0, bodyAt + Math.floor((answer.length - bodyAt) / 2)));
      }
      case 'truncated-2xx':
        return void socket.end('HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 64\r\nconnection: close\r\n\r\n{"ok":');
      case '503':
        return void socket.end(errorAnswer(503, 'Service Unavailable', 'application/json', '{"error":{"code":"unavailable","message":"restarting"}}'));
      case '502-html':
        return void socket.end(errorAnswer(502, 'Bad Gateway', 'text/html', '<html><body><h1>502 Bad Gateway</h1></body></html>'));
      case 'cut-body':
        await forward(upstreamPort, request.head, request.body, true);
        return void socket.resetAndDestroy();
    }
  }

  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    void handle(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    injected,
    delivered,
    /** Faults apply from now on (enrollment went through untouched). */
    arm: () => {
      armed = true;
      seen.clear();
    },
    pending: () => Object.entries(SCHEDULE).some(([key, faults]) => (seen.get(key) ?? 0) < faults.length),
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

let dir: string;
let collector: TestCollector | undefined;
beforeAll(() => {
  requireBuild();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mamori-e2e-faults-'));
});
afterAll(async () => {
  await collector?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

function appendBacklog(agentDir: string, count: number): void {
  const store = openEventStore(path.join(agentDir, 'agent.db'));
  try {
    store.transaction(() => {
      for (let i = 0; i < count; i++)
        store.append({ type: 'login.failure', payload: { user: `職員${i % 40}`, source: 'btmp', line: 'ssh:notty', remoteHost: '10.2.0.7' } });
    });
  } finally {
    store.close();
  }
}

it('delivers every event once through resets, stalls, truncated answers, 5xx and cut request bodies; a truncated 2xx does not count as the inventory delivered', async () => {
  collector = await startCollector(path.join(dir, 'collector'));
  const proxy = await startFaultProxy(Number(new URL(collector.url).port));
  try {
    const agentDir = path.join(dir, 'agent');
    const root = path.join(dir, 'root');
    fs.mkdirSync(root);
    const args = ['--data-dir', agentDir, '--system-root', root];
    const enrolled = await mamori(['agent', 'enroll', '--collector', proxy.url, '--token', await collector.token('lgwan'), ...args]);
    expect(enrolled.code, enrolled.stderr).toBe(0);
    appendBacklog(agentDir, 2600);
    proxy.arm();

    const state = () => {
      const store = openEventStore(path.join(agentDir, 'agent.db'), { readonly: true });
      try {
        return { head: store.head().seq, ack: store.ackSeq(), agentId: loadEnrollment(store)!.agentId, lastError: store.getState('sync.last_error') };
      } finally {
        store.close();
      }
    };
    // The agent runs as its service would, one cycle after another, until the collector has it all.
    for (let run = 0; run < 30; run++) {
      const r = await mamori(['agent', 'run', '--once', ...args]);
      expect(r.code, r.stderr).toBe(0);
      const s = state();
      if (!proxy.pending() && s.ack === s.head && !s.lastError) break;
    }
    expect(proxy.injected.map((i) => i.fault).sort()).toEqual(
      Object.values(SCHEDULE)
        .flat()
        .filter((f) => f !== 'pass')
        .sort(),
    );
    expect(new Set(proxy.injected.map((i) => i.fault))).toEqual(new Set(ALL_FAULTS));

    const { head, ack, agentId } = state();
    expect(ack).toBe(head);
    const stored: { seq: number; hash: string }[] = [];
    for (;;) {
      const page = await collector.api<{ seq: number; hash: string }[]>(`/api/v1/admin/events?agentId=${agentId}&since=${stored.at(-1)?.seq ?? 0}&limit=5000`);
      if (page.body.length === 0) break;
      stored.push(...page.body);
    }
    expect(stored.map((e) => e.seq)).toEqual(Array.from({ length: head }, (_, i) => i + 1));
    const local = openEventStore(path.join(agentDir, 'agent.db'), { readonly: true });
    try {
      expect(stored.map((e) => e.hash)).toEqual(local.readSince(0, head).map((e) => e.hash));
      expect(local.verify()).toBeNull();
    } finally {
      local.close();
    }
    const terminals = await collector.api<{ agentId: string; ackSeq: number; chainBroken: number | null }[]>('/api/v1/admin/terminals');
    expect(terminals.body).toMatchObject([{ agentId, ackSeq: head, chainBroken: null }]);

    // The first inventory upload got a 200 cut short: the agent must send it again, and the
    // ledger must show the terminal's inventory.
    expect(proxy.delivered.get('PUT inventory') ?? 0, 'the inventory never reached the collector after a truncated 2xx').toBeGreaterThanOrEqual(1);
    const ledger = await collector.api<Record<string, unknown>[]>('/api/v1/admin/inventory/export?format=json&lang=en');
    expect(ledger.status).toBe(200);
    expect(ledger.body).toHaveLength(1);
    expect(ledger.body[0]!.os_version).toContain(os.release());
    // The collector itself never answered with a server error.
    expect(collector.proc.output()).not.toMatch(/"statusCode":5\d\d/);
  } finally {
    await proxy.close();
  }
}, 170_000);
