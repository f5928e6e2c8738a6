import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { MAMORI, freePort, requireBuild, waitFor } from './helpers';

let dir: string;
beforeAll(() => {
  requireBuild();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mamori-start-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Runs `mamori start` in `dir` until it says it is running, then presses Ctrl-C. */
async function startOnce(port: number): Promise<{ output: string; code: number | null; ledger: unknown[] }> {
  const child = spawn(process.execPath, [MAMORI, 'start', '--listen', `127.0.0.1:${port}`], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (c: Buffer) => (output += c.toString('utf8')));
  child.stderr.on('data', (c: Buffer) => (output += c.toString('utf8')));
  const exited = new Promise<number | null>((r) => child.once('close', (code) => r(code)));
  await waitFor(() => output.includes('Press Ctrl-C to stop.'), `mamori start to come up:\n${output}`, 60_000);
  const { adminToken } = JSON.parse(fs.readFileSync(path.join(dir, 'var', 'start.json'), 'utf8')) as { adminToken: string };
  let ledger: unknown[] = [];
  // The agent syncs right after it starts; wait until the ledger lists it.
  await waitFor(async () => {
    const res = await fetch(`http://127.0.0.1:${port}/api/v1/admin/inventory/export?format=json`, { headers: { authorization: `Bearer ${adminToken}` } });
    ledger = (await res.json()) as unknown[];
    return ledger.length === 1 && (ledger[0] as { last_seen: string | null }).last_seen !== null;
  }, 'the local agent in the ledger');
  child.kill('SIGINT');
  const code = await exited;
  return { output, code, ledger };
}

it('brings up a collector and an enrolled agent, stops on Ctrl-C, and reuses its data on the next start', async () => {
  const port = await freePort();
  const first = await startOnce(port);
  expect(first.code).toBe(0);
  expect(first.output).toContain(`console and API: http://127.0.0.1:${port}/`);
  expect(first.output).toMatch(/admin password: {2}\S{12,}/);
  expect(first.output).toContain('audit only');
  expect(first.output).toMatch(/tray: .*Electron/);
  expect(first.output).toContain('stopped.');
  const agentId = (first.ledger[0] as { agent_id: string }).agent_id;

  const second = await startOnce(port);
  expect(second.code).toBe(0);
  expect(second.output).not.toContain('admin password');
  expect((second.ledger[0] as { agent_id: string }).agent_id).toBe(agentId);
});
