import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { freePort, mamori, requireBuild, startCollector, startMamori, waitFor } from './helpers';

let dir: string;
beforeAll(() => {
  requireBuild();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mamori-e2e-provision-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

it('enrolls on the first start from the installer provision, drops the token, refuses a bad one, and survives an upgrade', async () => {
  const collector = await startCollector(path.join(dir, 'collector'));
  try {
    const data = path.join(dir, 'agent');
    const bad = await mamori(['agent', 'provision', '--data-dir', data, '/S', '/COLLECTOR=collector.city.lg.jp', '/SEGMENT=kokuho']);
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toMatch(
      /^mamori: インストール設定（プロビジョニング）が不正です: .*COLLECTOR.*TOKEN.*SEGMENT.* \/ invalid provisioning: collectorUrl: .*; token: missing \(TOKEN\); segment: /,
    );
    expect(fs.existsSync(path.join(data, 'provision.json'))).toBe(false);

    const token = await collector.token('lgwan');
    // IT pins the collector's key, printed by the collector itself.
    const key = await mamori(['collector', 'key', '--data-dir', collector.data]);
    expect(key.stdout).toMatch(/^[A-Za-z0-9+/]{40,}={0,2}\n$/);
    const ok = await mamori([
      'agent',
      'provision',
      '--data-dir',
      data,
      '/S',
      `/COLLECTOR=${collector.url}`,
      `/TOKEN=${token}`,
      '/SEGMENT=lgwan',
      `/PUBKEY=${key.stdout.trim()}`,
    ]);
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

    // An upgrade runs the installer's command line again, its token spent: it passes, keeps the
    // enrollment, and writes no token back to disk.
    const upgrade = await mamori(['agent', 'provision', '--data-dir', data, '--', '/S', `/COLLECTOR=${collector.url}`, `/TOKEN=${token}`, '/SEGMENT=lgwan']);
    expect(upgrade.code, upgrade.stderr).toBe(0);
    expect(upgrade.stdout).toMatch(/^この端末は登録済みです（.*? \/ already enrolled as \S+ in segment lgwan/);
    expect(JSON.parse(fs.readFileSync(path.join(data, 'provision.json'), 'utf8'))).not.toHaveProperty('token');
    expect((await mamori(['agent', 'run', '--once', '--data-dir', data, '--system-root', path.join(dir, 'root')])).code).toBe(0);
    expect((await collector.api<unknown[]>('/api/v1/admin/terminals')).body).toHaveLength(1);
  } finally {
    await collector.stop();
  }
});

it('keeps trying to enroll when the PC was installed before the collector could be reached', async () => {
  const port = await freePort();
  const collectorData = path.join(dir, 'late-collector');
  // The token exists in the collector's database; the collector itself is not running yet.
  const token = (await mamori(['collector', 'token', 'create', '--segment', 'mynumber', '--data-dir', collectorData])).stdout.trim();
  const data = path.join(dir, 'late-agent');
  expect(
    (await mamori(['agent', 'provision', '--data-dir', data, '/S', `/COLLECTOR=http://127.0.0.1:${port}`, `/TOKEN=${token}`, '/SEGMENT=mynumber'])).code,
  ).toBe(0);
  const agent = startMamori([
    'agent',
    'run',
    '--data-dir',
    data,
    '--system-root',
    path.join(dir, 'late-root'),
    '--ipc',
    path.join(dir, 'late-run', 'agent.sock'),
  ]);
  try {
    await waitFor(() => agent.output().includes('enrollment from the installer provision failed'), 'the first enrollment attempt to fail');
    const collector = await startCollector(collectorData, 'admin', port);
    try {
      await waitFor(
        async () => (await collector.api<unknown[]>('/api/v1/admin/terminals')).body.length === 1,
        'the agent to enroll once the collector is up',
        30_000,
      );
      const warnings = async () =>
        (await collector.api<{ type: string; payload: { component?: string } }[]>('/api/v1/admin/events?type=agent.warning')).body.filter(
          (e) => e.payload.component === 'provision',
        );
      // What happened before enrollment reaches the collector with the rest of the log; however
      // many attempts failed, the reason was recorded once.
      await waitFor(async () => (await warnings()).length > 0, 'the failed attempts in the log', 30_000);
      expect(await warnings()).toHaveLength(1);
      expect(JSON.parse(fs.readFileSync(path.join(data, 'provision.json'), 'utf8'))).not.toHaveProperty('token');
    } finally {
      await collector.stop();
    }
  } finally {
    await agent.stop();
  }
});
