import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { audit } from '../../src/collector/admins';
import { createEnrollmentToken } from '../../src/collector/agents';
import { DEFAULT_FORWARDING } from '../../src/collector/forward/forwarder';
import { addDestination, getDestination, type DestinationConfig } from '../../src/collector/forward/store';
import { createCollector, type Collector } from '../../src/collector/server';
import type { EnrollResponse, StoredEvent } from '../../src/shared';
import { parse5424 } from '../collector/forward-parse';
import { makeChain } from '../helpers/chain';
import { PG_URL, createTestDatabase } from '../helpers/pg';
import { freePort, mamori, requireBuild, waitFor } from './helpers';
import { issue, makePki, rsyslog, type Rsyslog } from './forward-rsyslog';

let dir: string;
let pki: ReturnType<typeof makePki>;
const cleanups: (() => Promise<void>)[] = [];

beforeAll(() => {
  requireBuild();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mamori-e2e-forward-'));
  pki = makePki(dir);
});
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn().catch(() => undefined);
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const ACTOR = { username: 'kanri', role: 'admin' as const, address: '127.0.0.1' };

/** A collector on 127.0.0.1 (real HTTP) over a database; stopped after the test. */
async function collectorOn(db: string, keyFile = path.join(dir, `key-${crypto.randomUUID()}`)): Promise<{ collector: Collector; url: string }> {
  const collector = await createCollector({ db, logger: false, keyFile });
  const url = await collector.listen({ host: '127.0.0.1', port: 0 });
  cleanups.push(() => collector.stop());
  return { collector, url };
}

async function startRsyslog(tls?: boolean): Promise<Rsyslog> {
  const server = rsyslog(fs.mkdtempSync(path.join(dir, 'rsyslog-')), await freePort(), tls ? pki : undefined);
  await server.start();
  cleanups.push(() => server.stop());
  return server;
}

/** A terminal enrolled over HTTP, sending its chain in batches like an agent. */
async function terminal(collector: Collector, url: string, hostname: string) {
  const token = await createEnrollmentToken(collector.ctx.db, { segment: 'mynumber', ttlMs: 3_600_000, uses: 1 });
  const res = await fetch(`${url}/api/v1/enroll`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ token, hostname, machineId: crypto.randomUUID() }),
  });
  expect(res.status).toBe(200);
  const agent = (await res.json()) as EnrollResponse;
  let last: StoredEvent | undefined;
  return {
    agentId: agent.agentId,
    /** Sends `count` more events; resolves to the time ingest took. */
    async send(count: number): Promise<number> {
      const chain = makeChain(count, {
        from: (last?.seq ?? 0) + 1,
        prevHash: last?.hash,
        type: 'login.failure',
        payload: (seq) => ({
          user: `山田 太郎"]\\${seq}`,
          source: 'btmp',
          line: 'tty1',
          remoteHost: '10.0.0.9',
          reason: `パスワード誤り ${'漢字'.repeat(100)}`,
        }),
      });
      const started = performance.now();
      const r = await fetch(`${url}/api/v1/agents/${agent.agentId}/events`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${agent.agentToken}` },
        body: JSON.stringify({ events: chain }),
      });
      expect(r.status).toBe(200);
      last = chain[chain.length - 1];
      return performance.now() - started;
    },
  };
}

function destination(over: Partial<DestinationConfig> & Pick<DestinationConfig, 'name' | 'port'>): DestinationConfig {
  return { host: '127.0.0.1', transport: 'tcp', format: 'rfc5424', sendEvents: true, sendAudit: true, enabled: true, ...over };
}

/** What rsyslog wrote, read back line by line: per terminal the seqs in arrival order, and the audit entries. */
function received(server: Rsyslog) {
  const seqs = new Map<string, number[]>();
  const audits: { id: number; action: string; msg: string }[] = [];
  for (const line of server.lines()) {
    const m = parse5424(line);
    if (m.sdId === 'mamori@32473') {
      const list = seqs.get(m.params.terminal!) ?? [];
      list.push(Number(m.params.seq));
      seqs.set(m.params.terminal!, list);
      expect(m.params.user).toBe(`山田 太郎"]\\${m.params.seq}`);
      expect(m.msg).toContain(`パスワード誤り ${'漢字'.repeat(100)}`);
      expect(m.params.segment).toBe('mynumber');
    } else if (m.sdId === 'mamoriAudit@32473') audits.push({ id: Number(m.params.id), action: m.msgid, msg: m.msg });
    else throw new Error(`unexpected line ${line.slice(0, 100)}`);
  }
  return { seqs, audits };
}

/** Like waitFor, polling every few milliseconds: to stop rsyslog in the middle of a stream. */
async function until(predicate: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

describe('forwarding to a real rsyslog', () => {
  it('every event from terminals and every admin audit entry arrives over TCP, in order per terminal, Japanese intact', async () => {
    const { collector, url } = await collectorOn(`sqlite:${path.join(dir, `tcp-${crypto.randomUUID()}.db`)}`);
    const siem = await startRsyslog();
    const pcs = [await terminal(collector, url, '庁舎PC-01'), await terminal(collector, url, 'pc-02')];
    for (const pc of pcs) await pc.send(300);
    await audit(collector.ctx.db, ACTOR, 'policy.update', 'mynumber', { 理由: '持ち出し禁止"]\\' });
    await addDestination(collector.ctx.db, ACTOR, destination({ name: 'siem', port: siem.port }), collector.ctx.clock.now());
    for (const pc of pcs) await pc.send(200);
    const audits = await collector.ctx.db.selectFrom('audit_log').select(['id', 'action']).orderBy('id').execute();
    await waitFor(() => hasLines(siem, 1000 + audits.length), 'everything to reach rsyslog');
    const got = received(siem);
    for (const pc of pcs) expect(got.seqs.get(pc.agentId)).toEqual(range(500));
    expect(got.audits.map((a) => a.id)).toEqual(audits.map((a) => a.id));
    expect(got.audits.find((a) => a.action === 'policy.update')!.msg).toBe(JSON.stringify({ 理由: '持ち出し禁止"]\\' }));
    // The cursor moves once the bytes stayed on an open connection for the settle time.
    await waitFor(async () => {
      const d = await getDestination(collector.ctx.db, 'siem');
      return d.auditCursor === audits.length && d.eventCursor === 1000;
    }, 'the cursors to settle');
    const dest = await getDestination(collector.ctx.db, 'siem');
    expect(dest.lastError).toBeNull();
    expect(dest.lastSuccessAt).not.toBeNull();
  });

  it('rsyslog stopped (SIGTERM) and killed (SIGKILL) mid-stream, then restarted: nothing lost, order per terminal kept, repeats only within the at-least-once window', async () => {
    const { collector, url } = await collectorOn(`sqlite:${path.join(dir, `restart-${crypto.randomUUID()}.db`)}`);
    const siem = await startRsyslog();
    const pcs = [await terminal(collector, url, 'pc-a'), await terminal(collector, url, 'pc-b'), await terminal(collector, url, 'pc-c')];
    const total = 3000;
    await addDestination(collector.ctx.db, ACTOR, destination({ name: 'siem', port: siem.port, sendAudit: false }), collector.ctx.clock.now());
    // Terminals keep syncing through both breaks, so each comes in the middle of a live stream.
    let ingestDone = false;
    const ingest = (async () => {
      for (let round = 0; round < total / 50; round++) {
        for (const pc of pcs) await pc.send(50);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      ingestDone = true;
    })();
    await until(() => siem.lines().length >= 300, 'the first part');
    await siem.stop('SIGTERM');
    expect(ingestDone).toBe(false);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const beforeSecond = siem.lines().length;
    await siem.start();
    await until(() => siem.lines().length >= beforeSecond + 300, 'the second part');
    await siem.stop('SIGKILL');
    expect(ingestDone).toBe(false);
    await siem.start();
    await ingest;
    await waitFor(
      () => {
        const { seqs } = received(siem);
        return pcs.every((pc) => new Set(seqs.get(pc.agentId)).size === total);
      },
      'every event after the restarts',
      60_000,
    );
    const { seqs } = received(siem);
    for (const pc of pcs) {
      const list = seqs.get(pc.agentId)!;
      expect(new Set(list)).toEqual(new Set(range(total)));
      // Order per terminal: each seq first arrives after the one before it; a repeat is a replay
      // from the settled cursor after a break, at most one per restart.
      const seen = new Set<number>();
      const firstArrivals = list.filter((s) => !seen.has(s) && seen.add(s));
      expect(firstArrivals).toEqual(range(total));
      const backSteps = list.filter((s, i) => i > 0 && s <= list[i - 1]!).length;
      expect(backSteps).toBeLessThanOrEqual(2);
      console.log(`restart: ${pc.agentId.slice(0, 8)} received ${list.length} lines for ${total} events, ${backSteps} replays`);
      expect(list.length - total).toBeLessThanOrEqual(2 * DEFAULT_FORWARDING.maxUnsettled * DEFAULT_FORWARDING.batchSize);
    }
  });

  it('over TLS (RFC 5425) it arrives; a certificate that does not match shows in `forward list` with when it last worked, and ingest goes on', async () => {
    const dbFile = path.join(dir, `tls-${crypto.randomUUID()}.db`);
    const { collector, url } = await collectorOn(`sqlite:${dbFile}`);
    const siem = await startRsyslog(true);
    const add = (name: string, serverName: string) =>
      mamori([
        'collector',
        'forward',
        'add',
        name,
        '--db',
        `sqlite:${dbFile}`,
        '--host',
        '127.0.0.1',
        '--port',
        String(siem.port),
        '--transport',
        'tls',
        '--ca-file',
        pki.ca,
        '--server-name',
        serverName,
        '--no-audit',
      ]);
    expect((await add('good', 'siem.test')).code).toBe(0);
    expect((await add('wrong', 'other.test')).code).toBe(0);
    const pc = await terminal(collector, url, 'pc-tls');
    await pc.send(100);
    await waitFor(() => received(siem).seqs.get(pc.agentId)?.length === 100, 'the events over TLS');
    expect(received(siem).seqs.get(pc.agentId)).toEqual(range(100));
    await waitFor(async () => (await getDestination(collector.ctx.db, 'wrong')).lastError !== null, 'the mismatch to be recorded');
    // Ingest is not held up by the destination that fails.
    const took = await pc.send(100);
    expect(took).toBeLessThan(2000);
    const list = await mamori(['collector', 'forward', 'list', '--db', `sqlite:${dbFile}`]);
    expect(list.code).toBe(0);
    const wrong = list.stdout.split('\n').find((l) => l.startsWith('wrong\t'))!;
    expect(wrong).toMatch(/ERROR ERR_TLS_CERT_ALTNAME_INVALID: .*other\.test/);
    expect(wrong).toContain('last worked: never');
    const good = list.stdout.split('\n').find((l) => l.startsWith('good\t'))!;
    expect(good).toMatch(/\tok\tlast worked: \d{4}-\d{2}-\d{2}T/);
    const json = JSON.parse((await mamori(['collector', 'forward', 'list', '--json', '--db', `sqlite:${dbFile}`])).stdout) as {
      name: string;
      lastErrorAt: string | null;
    }[];
    expect(json.find((d) => d.name === 'wrong')!.lastErrorAt).toMatch(/^\d{4}-/);
    await waitFor(() => received(siem).seqs.get(pc.agentId)?.length === 200, 'the rest over TLS');

    // The SIEM comes back with a certificate for another name: `good` fails too, and shows when it last worked.
    const worked = (await getDestination(collector.ctx.db, 'good')).lastSuccessAt;
    await siem.stop();
    const other = rsyslog(fs.mkdtempSync(path.join(dir, 'rsyslog-')), siem.port, issue(dir, 'other.test'));
    await other.start();
    cleanups.push(() => other.stop());
    expect(await pc.send(50)).toBeLessThan(2000);
    await waitFor(
      async () => /ALTNAME/.test((await getDestination(collector.ctx.db, 'good')).lastError ?? ''),
      'the changed certificate to be refused',
      30_000,
    );
    const after = (await mamori(['collector', 'forward', 'list', '--db', `sqlite:${dbFile}`])).stdout.split('\n').find((l) => l.startsWith('good\t'))!;
    expect(after).toMatch(/ERROR ERR_TLS_CERT_ALTNAME_INVALID: .*siem\.test/);
    expect(after).toContain(`last worked: ${worked}`);
    expect(worked).toMatch(/^\d{4}-\d{2}-\d{2}T/);
    // `wrong` names other.test: it now gets everything from its cursor (0), the backlog it missed.
    await waitFor(() => received(other).seqs.get(pc.agentId)?.length === 250, 'the backlog for `wrong`');
    expect(received(other).seqs.get(pc.agentId)).toEqual(range(250));
  });

  it('a listener that accepts and never reads: ingest is unaffected, memory stays bounded, the error is shown', async () => {
    const { collector, url } = await collectorOn(`sqlite:${path.join(dir, `hole-${crypto.randomUUID()}.db`)}`);
    const sockets: net.Socket[] = [];
    const hole = net.createServer((s) => {
      s.pause();
      sockets.push(s);
    });
    await new Promise<void>((resolve) => hole.listen(0, '127.0.0.1', resolve));
    cleanups.push(async () => {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => hole.close(resolve));
    });
    await addDestination(collector.ctx.db, ACTOR, destination({ name: 'hole', port: (hole.address() as net.AddressInfo).port }), collector.ctx.clock.now());
    const pcs = await Promise.all(range(4).map((i) => terminal(collector, url, `pc-hole-${i}`)));
    const heapBefore = process.memoryUsage().heapUsed;
    const times: number[] = [];
    for (let round = 0; round < 20; round++) for (const pc of pcs) times.push(await pc.send(250));
    await waitFor(async () => /read nothing/.test((await getDestination(collector.ctx.db, 'hole')).lastError ?? ''), 'the write timeout', 30_000);
    for (const pc of pcs) times.push(await pc.send(250));
    const heapGrowth = process.memoryUsage().heapUsed - heapBefore;
    times.sort((a, b) => a - b);
    // 21,000 events of about 1 KB went in; what is held for the SIEM is a few batches at most.
    expect(heapGrowth).toBeLessThan(64 * 1024 * 1024);
    expect(times[Math.floor(times.length * 0.95)]).toBeLessThan(2000);
    const dest = await getDestination(collector.ctx.db, 'hole');
    expect(dest.lastError).toMatch(/the SIEM read nothing for \d+ ms/);
  });
});

function hasLines(siem: Rsyslog, expected: number): boolean {
  return siem.lines().length >= expected;
}

describe.skipIf(!PG_URL)('two collectors on one PostgreSQL', () => {
  it('forward each event once', async () => {
    const { url: dbUrl, drop } = await createTestDatabase();
    cleanups.push(drop);
    const keyFile = path.join(dir, `key-${crypto.randomUUID()}`);
    const a = await collectorOn(dbUrl, keyFile);
    const b = await collectorOn(dbUrl, keyFile);
    const siem = await startRsyslog();
    await addDestination(a.collector.ctx.db, ACTOR, destination({ name: 'siem', port: siem.port, sendAudit: false }), a.collector.ctx.clock.now());
    const pcs = [await terminal(a.collector, a.url, 'pc-pg-1'), await terminal(b.collector, b.url, 'pc-pg-2')];
    for (let round = 0; round < 10; round++) await Promise.all(pcs.map((pc) => pc.send(50)));
    await waitFor(() => siem.lines().length >= 1000, 'every event from both collectors', 30_000);
    // Give a second forwarder time to repeat anything, if it did.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const { seqs } = received(siem);
    for (const pc of pcs) expect(seqs.get(pc.agentId)).toEqual(range(500));
    expect(siem.lines().length).toBe(1000);
  });
});
