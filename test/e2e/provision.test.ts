import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { mamori, requireBuild, startCollector } from './helpers';

let dir: string;
beforeAll(() => {
  requireBuild();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mamori-e2e-provision-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

it('enrolls on the first start from the installer provision, drops the token, and refuses a bad one', async () => {
  const collector = await startCollector(path.join(dir, 'collector'));
  try {
    const data = path.join(dir, 'agent');
    const bad = await mamori(['agent', 'provision', '--data-dir', data, '/S', '/COLLECTOR=collector.city.lg.jp', '/SEGMENT=kokuho']);
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toMatch(/collectorUrl/);
    expect(fs.existsSync(path.join(data, 'provision.json'))).toBe(false);

    const token = await collector.token('lgwan');
    const ok = await mamori(['agent', 'provision', '--data-dir', data, '/S', `/COLLECTOR=${collector.url}`, `/TOKEN=${token}`, '/SEGMENT=lgwan']);
    expect(ok.code).toBe(0);
    expect((await mamori(['agent', 'run', '--once', '--data-dir', data, '--system-root', path.join(dir, 'root')])).code).toBe(0);
    const left = JSON.parse(fs.readFileSync(path.join(data, 'provision.json'), 'utf8')) as Record<string, unknown>;
    expect(left).not.toHaveProperty('token');
    expect(left.enrolled).toBe(true);
    const terminals = (await collector.api<{ segment: string }[]>('/api/v1/admin/terminals')).body;
    expect(terminals).toEqual([expect.objectContaining({ segment: 'lgwan' })]);
    // A second start does not enroll again.
    expect((await mamori(['agent', 'run', '--once', '--data-dir', data, '--system-root', path.join(dir, 'root')])).code).toBe(0);
    expect((await collector.api<unknown[]>('/api/v1/admin/terminals')).body).toHaveLength(1);
  } finally {
    await collector.stop();
  }
});
