import { spawn } from 'node:child_process';
import path from 'node:path';
import { beforeAll, expect, it } from 'vitest';
import { ROOT, requireBuild } from './helpers';

beforeAll(() => requireBuild());

interface SoakFigures {
  kills: number;
  collectorKills: number;
  killsLeavingBacklog: number;
  delivered: boolean;
  events: number;
  collectorEvents: number;
  lost: number;
  duplicated: number;
  extra: number;
  altered: number;
  agentChain: string;
  collectorChain: string;
  chainBrokenFlag: number | null;
  integrity: { agent: string; collector: string };
  passed: boolean;
}

/** `npm run soak` without the build: the script itself, as the e2e suite runs dist/ already built. */
function soak(kills: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(ROOT, 'scripts', 'soak.js'), '--kills', String(kills), '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

it('the soak kills agent and collector 20 times mid-sync and finds every event stored once, both chains intact', async () => {
  const { code, stdout, stderr } = await soak(20);
  const json = stdout.trim().split('\n').pop() ?? '';
  expect(json.startsWith('{'), `no figures printed: ${stdout}\n${stderr}`).toBe(true);
  const figures = JSON.parse(json) as SoakFigures;
  expect(figures, stdout).toMatchObject({
    kills: 20,
    collectorKills: 2,
    delivered: true,
    lost: 0,
    duplicated: 0,
    extra: 0,
    altered: 0,
    agentChain: 'intact',
    collectorChain: 'intact',
    chainBrokenFlag: null,
    integrity: { agent: 'ok', collector: 'ok' },
    passed: true,
  });
  // The kills really interrupted deliveries of thousands of events.
  expect(figures.killsLeavingBacklog).toBeGreaterThan(0);
  expect(figures.events).toBeGreaterThan(20 * 1000);
  expect(figures.collectorEvents).toBe(figures.events);
  expect(stdout).toMatch(/^lost: +0$/m);
  expect(stdout).toMatch(/^duplicated: +0$/m);
  expect(code).toBe(0);
}, 240_000);
