import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { parse as parseCsv } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadEnrollment, saveEnrollment } from '../../src/agent/policy';
import { openEventStore } from '../../src/agent/store';
import { PG_URL, createTestDatabase } from '../helpers/pg';
import { MAMORI, freePort, mamori, requireBuild, startMamori, waitFor, type Running } from './helpers';

let dir: string;
beforeAll(() => {
  requireBuild();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mamori-e2e-sync-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const PASSWORD = { MAMORI_ADMIN_PASSWORD: 'correct horse battery staple' };

async function serve(args: string[]): Promise<{ proc: Running; url: string }> {
  const port = await freePort();
  const proc = startMamori(['collector', 'serve', '--listen', `127.0.0.1:${port}`, ...args]);
  await waitFor(() => proc.output().includes('listening on'), 'the collector to listen');
  return { proc, url: `http://127.0.0.1:${port}` };
}

async function ok(args: string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
  const r = await mamori(args, env);
  if (r.code !== 0) throw new Error(`mamori ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout.trim();
}

async function adminGet<T>(url: string, token: string, route: string): Promise<T> {
  const res = await fetch(`${url}${route}`, { headers: { authorization: `Bearer ${token}` } });
  expect(res.status).toBe(200);
  return (await res.json()) as T;
}

/** The seqs the collector holds for an agent, each listed as often as stored. */
async function storedSeqs(url: string, token: string, agentId: string): Promise<number[]> {
  const seqs: number[] = [];
  for (;;) {
    const since = seqs.length ? seqs[seqs.length - 1] : 0;
    const page = await adminGet<{ seq: number }[]>(url, token, `/api/v1/admin/events?agentId=${agentId}&since=${since}&limit=5000`);
    if (page.length === 0) return seqs;
    seqs.push(...page.map((e) => e.seq));
  }
}

function appendNoise(agentDir: string, count: number): number {
  const store = openEventStore(path.join(agentDir, 'agent.db'));
  try {
    for (let i = 0; i < count; i++)
      store.append({ type: 'login.failure', payload: { user: `user${i}`, source: 'btmp', line: 'ssh:notty', remoteHost: '10.0.0.9' } });
    return store.head().seq;
  } finally {
    store.close();
  }
}

describe('collector and agent, as processes on 127.0.0.1', () => {
  it("pins the key with enroll --pubkey, and after collector key rotate the agent follows the old key's signature (a deleted row then flags the terminal)", async () => {
    const data = path.join(dir, 'rot');
    const { proc, url } = await serve(['--data-dir', data]);
    try {
      const adminToken = await ok(['collector', 'admin', 'add', 'kanri', '--role', 'admin', '--data-dir', data], PASSWORD);
      const pubkey = await ok(['collector', 'key', '--data-dir', data]);
      expect(fs.statSync(path.join(data, 'policy-signing.key')).mode & 0o777).toBe(0o600);
      const token = await ok(['collector', 'token', 'create', '--segment', 'lgwan', '--uses', '2', '--data-dir', data]);
      const wrong = await mamori([
        'agent',
        'enroll',
        '--collector',
        url,
        '--token',
        token,
        '--pubkey',
        'MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=',
        '--data-dir',
        path.join(dir, 'rot-wrong'),
      ]);
      expect(wrong.code).not.toBe(0);
      expect(wrong.stderr).toMatch(/different public key/);
      const agentDir = path.join(dir, 'rot-agent');
      await ok(['agent', 'enroll', '--collector', url, '--token', token, '--pubkey', pubkey, '--data-dir', agentDir]);
      await ok(['agent', 'run', '--once', '--data-dir', agentDir]);

      const rotatedKey = await ok(['collector', 'key', 'rotate', '--data-dir', data]);
      expect(rotatedKey).not.toBe(pubkey);
      expect(await ok(['collector', 'key', '--data-dir', data])).toBe(rotatedKey);
      await ok(['agent', 'run', '--once', '--data-dir', agentDir]);
      const store = openEventStore(path.join(agentDir, 'agent.db'));
      let agentId: string;
      try {
        expect(loadEnrollment(store)!.collectorPublicKey).toBe(rotatedKey);
        const types = store.readSince(0, 10_000).map((e) => e.type);
        expect(types).toContain('policy.key_rotated');
        expect(types).not.toContain('tamper.detected');
        agentId = loadEnrollment(store)!.agentId;
        // A local user deletes one unsent event: the next sync must flag the terminal, not go quiet.
        for (let i = 0; i < 3; i++) store.append({ type: 'agent.stopped', payload: { reason: `noise ${i}` } });
      } finally {
        store.close();
      }
      const sqlite = new (await import('better-sqlite3')).default(path.join(agentDir, 'agent.db'));
      const victim = (sqlite.prepare('SELECT MAX(seq) AS s FROM events').get() as { s: number }).s - 1;
      sqlite.prepare('DELETE FROM events WHERE seq = ?').run(victim);
      sqlite.close();
      await mamori(['agent', 'run', '--once', '--data-dir', agentDir]);
      const terminals = await adminGet<{ agentId: string; chainBroken: number | null; chainBrokenReason: string | null }[]>(
        url,
        adminToken,
        '/api/v1/admin/terminals',
      );
      const t = terminals.find((x) => x.agentId === agentId)!;
      expect(t.chainBroken).toBe(victim);
      expect(t.chainBrokenReason).toBeTruthy();
    } finally {
      await proc.stop();
    }
  });
  it('enrolls, syncs with run --once, and the CSV ledger shows the terminal; a second run adds nothing twice', async () => {
    const data = path.join(dir, 'c1');
    const { proc, url } = await serve(['--data-dir', data]);
    try {
      const adminToken = await ok(['collector', 'admin', 'add', 'kanri', '--role', 'admin', '--data-dir', data], PASSWORD);
      const token = await ok(['collector', 'token', 'create', '--segment', 'internet', '--data-dir', data]);
      const agentDir = path.join(dir, 'a1');
      expect(await ok(['agent', 'enroll', '--collector', url, '--token', token, '--data-dir', agentDir])).toMatch(/enrolled as .* in segment internet/);
      await ok(['agent', 'run', '--once', '--data-dir', agentDir]);
      const out = path.join(dir, 'ledger.csv');
      await ok(['export', 'inventory', '--collector', url, '--format', 'csv', '-o', out], { MAMORI_ADMIN_TOKEN: adminToken });
      const rows = parseCsv(fs.readFileSync(out, 'utf8').replace(/^\ufeff/, '')) as string[][];
      expect(rows).toHaveLength(2);
      expect(rows[1]![1]).toBe(os.hostname());
      expect(rows[1]![2]).toBe('internet');

      await ok(['agent', 'run', '--once', '--data-dir', agentDir]);
      const agentId = rows[1]![0]!;
      const seqs = await storedSeqs(url, adminToken, agentId);
      const local = JSON.parse(await ok(['agent', 'events', '--json', '--data-dir', agentDir])) as { seq: number }[];
      expect(seqs).toEqual(local.map((e) => e.seq));
      expect(new Set(seqs).size).toBe(seqs.length);
      // The token was single-use.
      expect((await mamori(['agent', 'enroll', '--collector', url, '--token', token, '--data-dir', path.join(dir, 'a1b')])).code).toBe(1);
    } finally {
      await proc.stop();
    }
  });

  it('loses nothing and stores nothing twice when the collector is killed mid-sync and restarted', async () => {
    const data = path.join(dir, 'c2');
    const first = await serve(['--data-dir', data]);
    const url = first.url;
    let proc = first.proc;
    const adminToken = await ok(['collector', 'admin', 'add', 'kanri', '--role', 'admin', '--data-dir', data], PASSWORD);
    const agentDir = path.join(dir, 'a2');
    await ok([
      'agent',
      'enroll',
      '--collector',
      url,
      '--token',
      await ok(['collector', 'token', 'create', '--segment', 'lgwan', '--data-dir', data]),
      '--data-dir',
      agentDir,
    ]);
    const port = new URL(url).port;
    try {
      for (const delay of [150, 400, 800]) {
        appendNoise(agentDir, 2500);
        const run = spawn(process.execPath, [MAMORI, 'agent', 'run', '--once', '--data-dir', agentDir], { stdio: 'ignore' });
        const exited = new Promise((r) => run.once('exit', r));
        await new Promise((r) => setTimeout(r, delay));
        proc.child.kill('SIGKILL');
        await exited;
        proc = startMamori(['collector', 'serve', '--listen', `127.0.0.1:${port}`, '--data-dir', data]);
        await waitFor(() => proc.output().includes('listening on'), 'the collector to come back');
      }
      await ok(['agent', 'run', '--once', '--data-dir', agentDir]);
      const store = openEventStore(path.join(agentDir, 'agent.db'));
      const head = store.head().seq;
      const agentId = loadEnrollment(store)!.agentId;
      expect(store.ackSeq()).toBe(head);
      store.close();
      const seqs = await storedSeqs(url, adminToken, agentId);
      expect(seqs).toEqual(Array.from({ length: head }, (_, i) => i + 1));
    } finally {
      await proc.stop();
    }
  });
});

describe.skipIf(!PG_URL)('two collectors on one PostgreSQL', () => {
  it('stores each event once while the agent alternates between them', async () => {
    const db = await createTestDatabase();
    const a = await serve(['--db', db.url]);
    const b = await serve(['--db', db.url]);
    try {
      const adminToken = await ok(['collector', 'admin', 'add', 'kanri', '--role', 'admin', '--db', db.url], PASSWORD);
      const agentDir = path.join(dir, 'a3');
      await ok([
        'agent',
        'enroll',
        '--collector',
        a.url,
        '--token',
        await ok(['collector', 'token', 'create', '--segment', 'mynumber', '--db', db.url]),
        '--data-dir',
        agentDir,
      ]);
      for (let round = 0; round < 4; round++) {
        const store = openEventStore(path.join(agentDir, 'agent.db'));
        saveEnrollment(store, { ...loadEnrollment(store)!, collectorUrl: round % 2 ? a.url : b.url });
        store.close();
        appendNoise(agentDir, 700);
        await ok(['agent', 'run', '--once', '--data-dir', agentDir]);
      }
      const store = openEventStore(path.join(agentDir, 'agent.db'));
      const head = store.head().seq;
      const agentId = loadEnrollment(store)!.agentId;
      expect(store.ackSeq()).toBe(head);
      store.close();
      for (const c of [a, b]) {
        expect(await storedSeqs(c.url, adminToken, agentId)).toEqual(Array.from({ length: head }, (_, i) => i + 1));
      }
      // Both collectors sign with the one key in the database.
      const terminals = await adminGet<{ policyVersion: number }[]>(b.url, adminToken, '/api/v1/admin/terminals');
      expect(terminals[0]!.policyVersion).toBe(1);
    } finally {
      await a.proc.stop();
      await b.proc.stop();
      await db.drop();
    }
  });
});
