import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createEnrollmentToken } from '../../src/collector/agents';
import { createCollector, type Collector } from '../../src/collector/server';
import { GENESIS_HASH, eventHash, type EnrollResponse, type StoredEvent } from '../../src/shared';
import { PG_URL, createTestDatabase } from '../helpers/pg';
import { MAMORI, ROOT, freePort, requireBuild, waitFor, type RunResult } from './helpers';

let dir: string;
const cleanups: (() => Promise<void>)[] = [];

beforeAll(() => {
  requireBuild();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mamori-e2e-alerts-'));
});
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn().catch(() => undefined);
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const CSIRT = 'csirt@city.example.lg.jp';
const VENDOR = 'soc@vendor.example.com';

interface Received {
  mailFrom: string;
  rcptTos: string[];
  subject: string;
  messageId: string;
  headers: [string, string][];
  body: string;
}

/** A real SMTP server (aiosmtpd) on 127.0.0.1 writing each accepted message to a directory. */
function smtpSink(port: number, box: string, extra: string[] = []) {
  let child: ChildProcess | undefined;
  const start = async () => {
    child = spawn('/usr/bin/python3', [path.join(ROOT, 'test', 'helpers', 'smtp-sink.py'), '--port', String(port), '--dir', box, ...extra], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    await waitFor(() => out.includes('ready'), 'the SMTP sink to listen', 10_000);
  };
  const stop = (signal: NodeJS.Signals = 'SIGTERM') =>
    new Promise<void>((resolve) => {
      const c = child;
      if (!c || c.exitCode !== null || c.signalCode !== null) return resolve();
      c.once('exit', () => resolve());
      c.kill(signal);
    });
  const mails = (): Received[] =>
    fs
      .readdirSync(box)
      .filter((f) => f.endsWith('.json'))
      .sort()
      .map((f) => JSON.parse(fs.readFileSync(path.join(box, f), 'utf8')) as Received);
  return { port, start, stop, mails };
}

async function startSink(extra: string[] = []) {
  const sink = smtpSink(await freePort(), fs.mkdtempSync(path.join(dir, 'box-')), extra);
  await sink.start();
  cleanups.push(() => sink.stop());
  return sink;
}

/** `mamori ARGS` with `input` on standard input. */
function mamoriIn(args: string[], input = ''): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAMORI, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(input);
  });
}

/** A collector on 127.0.0.1 (real HTTP) over `db`, with its key (and alert secret) in `keyDir`. */
async function collectorOn(
  db: string,
  keyDir: string,
): Promise<{ collector: Collector; url: string; cli: (args: string[], input?: string) => Promise<RunResult> }> {
  const keyFile = path.join(keyDir, 'policy-signing.key');
  const collector = await createCollector({ db, logger: false, keyFile });
  const url = await collector.listen({ host: '127.0.0.1', port: 0 });
  cleanups.push(() => collector.stop());
  const cli = async (args: string[], input?: string) => {
    const r = await mamoriIn(['collector', 'alerts', ...args, '--db', db, '--key-file', keyFile], input);
    return r;
  };
  return { collector, url, cli };
}

/** A terminal enrolled over HTTP, sending chained events like an agent. */
async function terminal(collector: Collector, url: string, hostname: string) {
  const token = await createEnrollmentToken(collector.ctx.db, { segment: 'lgwan', ttlMs: 3_600_000, uses: 1 });
  const res = await fetch(`${url}/api/v1/enroll`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ token, hostname, machineId: crypto.randomUUID() }),
  });
  expect(res.status).toBe(200);
  const agent = (await res.json()) as EnrollResponse;
  let seq = 0;
  let prev = GENESIS_HASH;
  const post = (events: StoredEvent[]) =>
    fetch(`${url}/api/v1/agents/${agent.agentId}/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${agent.agentToken}` },
      body: JSON.stringify({ events }),
    });
  return {
    agentId: agent.agentId,
    async send(events: { type: string; payload: unknown }[]): Promise<void> {
      const chain = events.map((e) => {
        seq++;
        const body = { seq, at: new Date().toISOString(), type: e.type as StoredEvent['type'], payload: e.payload };
        const hash = eventHash(prev, body);
        const stored = { ...body, prevHash: prev, hash };
        prev = hash;
        return stored as StoredEvent;
      });
      const r = await post(chain);
      expect(r.status).toBe(200);
    },
    /** Sends the next event with a hash that does not follow: the collector flags the chain. */
    async sendBroken(): Promise<void> {
      const body = { seq: seq + 1, at: new Date().toISOString(), type: 'agent.started' as const, payload: { version: '0.1.0', platform: 'linux', hostname } };
      await post([{ ...body, prevHash: prev, hash: 'f'.repeat(64) } as StoredEvent]);
    },
  };
}

const incident = (receipt: string, hostname: string) => ({
  type: 'incident.reported',
  payload: {
    receipt,
    category: 'suspicious_email',
    description: '添付ファイルを開いてしまった\r\nBcc: attacker@evil.example',
    context: { hostname, osUser: 'tanaka', inventoryHash: '', recentEvents: [] },
  },
});

describe('alert mail through a real SMTP server', () => {
  it('an incident, a tamper event, a chain break and a test mail arrive with subject, recipient and body; a hostile host name adds no header', async () => {
    const sink = await startSink();
    const { collector, url, cli } = await collectorOn(`sqlite:${path.join(dir, `a-${crypto.randomUUID()}.db`)}`, fs.mkdtempSync(path.join(dir, 'keys-')));
    expect(
      (
        await cli([
          'smtp',
          '--host',
          '127.0.0.1',
          '--port',
          String(sink.port),
          '--security',
          'none',
          '--from',
          'mamori@city.example.lg.jp',
          '--console-url',
          'https://collector.city.example.lg.jp:8443',
        ])
      ).code,
    ).toBe(0);
    for (const type of ['incident', 'tamper', 'chain_broken']) {
      const r = await cli(['add', type, '--to', CSIRT, `${VENDOR}:en`]);
      expect(r.stderr).toBe('');
      expect(r.stdout).toMatch(/^added rule \d+\n$/);
    }
    const hostile = 'SOUMU-PC01\r\nBcc: attacker@evil.example';
    const pc = await terminal(collector, url, hostile);
    await pc.send([incident('20261203-0001', hostile), { type: 'tamper.detected', payload: { what: 'service', detail: 'MamoriAgent was stopped by tanaka' } }]);
    await pc.sendBroken();
    const test = await cli(['test', CSIRT]);
    expect(test.stderr).toBe('');
    expect(test.stdout).toBe(`sent a test mail to ${CSIRT}\n`);

    await waitFor(() => sink.mails().length >= 7, 'seven mails');
    await new Promise((r) => setTimeout(r, 1500));
    const mails = sink.mails();
    expect(mails).toHaveLength(7);
    const to = (address: string) =>
      mails
        .filter((m) => m.rcptTos.join() === address)
        .map((m) => m.subject)
        .sort();
    const host = 'SOUMU-PC01 Bcc: attacker@evil.example';
    expect(to(CSIRT)).toEqual(
      [
        `【Mamori】インシデントの報告 受付番号 20261203-0001 (${host})`,
        '【Mamori】テストメール',
        `【Mamori】ログの完全性: 異常 (${host})`,
        `【Mamori】改ざんを検知 (${host})`,
      ].sort(),
    );
    expect(to(VENDOR)).toEqual(
      [
        `[Mamori] Incident reported, receipt number 20261203-0001 (${host})`,
        `[Mamori] Log integrity: broken (${host})`,
        `[Mamori] Tamper detected (${host})`,
      ].sort(),
    );
    const ja = mails.find((m) => m.rcptTos[0] === CSIRT && m.subject.includes('インシデント'))!;
    expect(ja.body).toContain('受付番号: 20261203-0001');
    expect(ja.body).toContain('区分 (インシデント): 不審なメール');
    expect(ja.body).toContain(`コンソール: https://collector.city.example.lg.jp:8443/incidents/${pc.agentId}:20261203-0001`);
    expect(ja.body).toContain('内容: 添付ファイルを開いてしまった\n    Bcc: attacker@evil.example');
    for (const m of mails) {
      expect(m.mailFrom).toBe('mamori@city.example.lg.jp');
      // No header but the ones we set: the CR/LF in the host name and description stayed inert.
      expect(m.headers.map(([k]) => k.toLowerCase()).sort()).toEqual([
        'content-transfer-encoding',
        'content-type',
        'date',
        'from',
        'message-id',
        'mime-version',
        'subject',
        'to',
      ]);
      expect(m.rcptTos).toHaveLength(1);
    }
    const list = await cli(['list']);
    expect(list.stdout).toMatch(/^relay\t127\.0\.0\.1:\d+ none from=mamori@city\.example\.lg\.jp\tok\tlast worked: 20/m);
    expect(list.stdout).toContain('outbox\tpending 0, sent 6, suppressed 0');
  });

  it('the relay killed mid-stream and restarted: every mail arrives once', async () => {
    const sink = await startSink(['--delay-ms', '60']);
    const { collector, url, cli } = await collectorOn(`sqlite:${path.join(dir, `k-${crypto.randomUUID()}.db`)}`, fs.mkdtempSync(path.join(dir, 'keys-')));
    await cli(['smtp', '--host', '127.0.0.1', '--port', String(sink.port), '--security', 'none', '--from', 'mamori@city.example.lg.jp']);
    await cli(['add', 'incident', '--to', CSIRT, '--rate', '1000']);
    const pc = await terminal(collector, url, 'pc-kill');
    const receipts = Array.from({ length: 40 }, (_, i) => `R-${String(i + 1).padStart(3, '0')}`);
    await pc.send(receipts.map((r) => incident(r, 'pc-kill')));
    await waitFor(() => sink.mails().length >= 5, 'the first mails', 20_000);
    await sink.stop('SIGKILL');
    const before = sink.mails().length;
    expect(before).toBeLessThan(40);
    await new Promise((r) => setTimeout(r, 1500));
    const down = await cli(['list']);
    expect(down.stdout).toMatch(/ERROR .*ECONNREFUSED|ERROR /);
    await sink.start();
    await waitFor(() => sink.mails().length >= 40, 'every mail after the restart', 60_000);
    await new Promise((r) => setTimeout(r, 1500));
    const got = sink.mails().map((m) => /受付番号 (R-\d+)/.exec(m.subject)![1]);
    expect(got.slice().sort()).toEqual(receipts);
    const list = await cli(['list']);
    expect(list.stdout).toContain('outbox\tpending 0, sent 40, suppressed 0');
  });

  it('a wrong SMTP password is shown in `alerts list` with when the relay last worked, and nothing queued is lost', async () => {
    const sink = await startSink(['--auth', 'mamori:正しい-pass']);
    const keyDir = fs.mkdtempSync(path.join(dir, 'keys-'));
    const db = `sqlite:${path.join(dir, `p-${crypto.randomUUID()}.db`)}`;
    const { collector, url, cli } = await collectorOn(db, keyDir);
    const smtp = [
      'smtp',
      '--host',
      '127.0.0.1',
      '--port',
      String(sink.port),
      '--security',
      'none',
      '--from',
      'mamori@city.example.lg.jp',
      '--user',
      'mamori',
      '--password-stdin',
    ];
    expect((await cli(smtp, '正しい-pass\n')).code).toBe(0);
    // The password is nowhere in the database file; the secret file beside the key is 0600.
    expect(fs.readFileSync(db.slice('sqlite:'.length)).includes(Buffer.from('正しい-pass'))).toBe(false);
    expect(fs.statSync(path.join(keyDir, 'alert-smtp.key')).mode & 0o777).toBe(0o600);
    expect((await cli(['test', CSIRT])).code).toBe(0);
    const worked = /last worked: (\S+)/.exec((await cli(['list'])).stdout)![1]!;
    expect(Date.parse(worked)).not.toBeNaN();

    expect((await cli(smtp, 'wrong\n')).code).toBe(0);
    const test = await cli(['test', CSIRT]);
    expect(test.code).not.toBe(0);
    expect(test.stderr).toMatch(/535/);
    await cli(['add', 'incident', '--to', CSIRT]);
    const pc = await terminal(collector, url, 'pc-auth');
    await pc.send([incident('R-AUTH', 'pc-auth')]);
    await waitFor(async () => (await cli(['list'])).stdout.includes('last error: EAUTH'), 'the queued mail to fail');
    const list = (await cli(['list'])).stdout;
    expect(list).toMatch(/^relay\t.* user=mamori .*\tERROR EAUTH 535 .*\tlast worked: (\S+)$/m);
    expect(/last worked: (\S+)/.exec(list)![1]).toBe(worked);
    expect(list).toContain('outbox\tpending 1, sent 0');

    expect((await cli(smtp, '正しい-pass\n')).code).toBe(0);
    await waitFor(() => sink.mails().some((m) => m.subject.includes('R-AUTH')), 'the queued mail after the fix', 30_000);
  });
});

describe('a relay that accepts and never answers', () => {
  it('stalls no ingest; the collector stops within the greeting timeout (10 s)', async () => {
    const sockets: net.Socket[] = [];
    const silent = net.createServer((s) => sockets.push(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    cleanups.push(async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => silent.close(() => r()));
    });
    const port = (silent.address() as net.AddressInfo).port;
    const { collector, url, cli } = await collectorOn(`sqlite:${path.join(dir, `h-${crypto.randomUUID()}.db`)}`, fs.mkdtempSync(path.join(dir, 'keys-')));
    await cli(['smtp', '--host', '127.0.0.1', '--port', String(port), '--security', 'none', '--from', 'mamori@city.example.lg.jp']);
    await cli(['add', 'incident', '--to', CSIRT]);
    const pc = await terminal(collector, url, 'pc-hang');
    await pc.send([incident('R-HANG', 'pc-hang')]);
    await waitFor(() => sockets.length > 0, 'the collector to connect to the relay');
    const started = Date.now();
    await pc.send([{ type: 'tamper.detected', payload: { what: 'x', detail: 'y' } }]);
    expect(Date.now() - started).toBeLessThan(2000);
    const stopping = Date.now();
    await collector.stop();
    expect(Date.now() - stopping).toBeLessThan(12_000);
  });
});

describe.skipIf(!PG_URL)('two collectors on one PostgreSQL', () => {
  it('send each alert once', async () => {
    const { url: dbUrl, drop } = await createTestDatabase();
    cleanups.push(drop);
    const sink = await startSink();
    const keyDir = fs.mkdtempSync(path.join(dir, 'keys-'));
    const a = await collectorOn(dbUrl, keyDir);
    const b = await collectorOn(dbUrl, keyDir);
    await a.cli(['smtp', '--host', '127.0.0.1', '--port', String(sink.port), '--security', 'none', '--from', 'mamori@city.example.lg.jp']);
    await a.cli(['add', 'incident', '--to', CSIRT, `${VENDOR}:en`, '--rate', '1000']);
    const pcs = [await terminal(a.collector, a.url, 'pc-a'), await terminal(b.collector, b.url, 'pc-b')];
    for (let i = 0; i < 10; i++) for (const [n, pc] of pcs.entries()) await pc.send([incident(`R-${n}-${i}`, `pc-${n}`)]);
    // Stop the lease holder half way: the other takes over and sends the rest, none twice.
    await waitFor(() => sink.mails().length >= 10, 'the first mails', 30_000);
    await a.collector.stop();
    await waitFor(() => sink.mails().length >= 40, 'every mail', 90_000);
    await new Promise((r) => setTimeout(r, 2000));
    const keys = sink.mails().map((m) => `${m.rcptTos[0]} ${/(R-\d-\d)/.exec(m.subject)![1]}`);
    expect(keys).toHaveLength(40);
    expect(new Set(keys).size).toBe(40);
  });
});
