import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { mamori, requireBuild, startCollector } from './helpers';

const FIXTURES = path.resolve(__dirname, '../fixtures/linux/utmp');
let dir: string;
beforeAll(() => {
  requireBuild();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mamori-e2e-logins-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const utmp = (dump: string) => execFileSync('utmpdump', ['-r'], { input: fs.readFileSync(path.join(FIXTURES, dump)), stdio: ['pipe', 'pipe', 'ignore'] });

it('sends each wtmp and btmp record to the collector once, and a record appended later once', async () => {
  const root = path.join(dir, 'root');
  fs.mkdirSync(path.join(root, 'var', 'log'), { recursive: true });
  fs.writeFileSync(path.join(root, 'var', 'log', 'wtmp'), utmp('wtmp.txt'));
  fs.writeFileSync(path.join(root, 'var', 'log', 'btmp'), utmp('btmp.txt'));

  const collector = await startCollector(path.join(dir, 'collector'), 'auditor');
  const { url } = collector;
  try {
    const token = await collector.token('mynumber');
    const agentDir = path.join(dir, 'agent');
    const args = ['--data-dir', agentDir, '--system-root', root];
    expect((await mamori(['agent', 'enroll', '--collector', url, '--token', token, ...args])).code).toBe(0);

    const loginEvents = async () => {
      const all = (await collector.api<{ type: string; payload: { user?: string } }[]>('/api/v1/admin/events?limit=5000')).body;
      return all.filter((e) => ['login.success', 'login.failure', 'logout'].includes(e.type)).map((e) => `${e.type} ${e.payload.user}`);
    };

    expect((await mamori(['agent', 'run', '--once', ...args])).code).toBe(0);
    expect(await loginEvents()).toEqual(['login.success yamada', 'login.success suzuki', 'logout suzuki', 'login.failure tanaka']);
    expect((await mamori(['agent', 'run', '--once', ...args])).code).toBe(0);
    expect(await loginEvents()).toHaveLength(4);

    fs.appendFileSync(path.join(root, 'var', 'log', 'wtmp'), utmp('wtmp-append.txt'));
    expect((await mamori(['agent', 'run', '--once', ...args])).code).toBe(0);
    expect((await mamori(['agent', 'run', '--once', ...args])).code).toBe(0);
    expect(await loginEvents()).toEqual(['login.success yamada', 'login.success suzuki', 'logout suzuki', 'login.failure tanaka', 'logout yamada']);

    const ledger = await collector.api<{ last_user: string }[]>('/api/v1/admin/inventory/export?format=json');
    expect(ledger.body[0]!.last_user).toBe('suzuki');
  } finally {
    await collector.stop();
  }
});
