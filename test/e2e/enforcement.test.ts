import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { PRESETS, buildSysfs } from '../fixtures/linux/sysfs';
import { mamori, requireBuild, startCollector } from './helpers';

let dir: string;
beforeAll(() => {
  requireBuild();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mamori-e2e-enforce-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

it('blocks a new stick on a My Number terminal, spares the one present at enrollment, and undoes a hand edit', async () => {
  const root = path.join(dir, 'root');
  buildSysfs(root, [PRESETS.keyboard(), PRESETS.stickWithSerial('1-2', 'INSTALLER01')]);
  const iface = (name: string) => path.join(fs.realpathSync(path.join(root, 'sys', 'bus', 'usb', 'devices', name)), 'authorized');
  const collector = await startCollector(path.join(dir, 'collector'));
  const { url } = collector;
  try {
    const token = await collector.token('mynumber');
    const args = ['--data-dir', path.join(dir, 'agent'), '--system-root', root];
    const enroll = await mamori(['agent', 'enroll', '--collector', url, '--token', token, '--allow-present', ...args]);
    expect(enroll.stdout).toContain('allowed: 0781:5581 serial "INSTALLER01"');

    buildSysfs(root, [PRESETS.stickWithoutSerial('1-3')]);
    expect((await mamori(['agent', 'run', '--once', ...args])).code).toBe(0);
    expect(fs.readFileSync(iface('1-2:1.0'), 'utf8').trim()).toBe('1');
    expect(fs.readFileSync(iface('1-3:1.0'), 'utf8').trim()).toBe('0');
    expect(fs.readFileSync(iface('1-1:1.0'), 'utf8').trim()).toBe('1');

    fs.writeFileSync(iface('1-3:1.0'), '1\n');
    expect((await mamori(['agent', 'run', '--once', ...args])).code).toBe(0);
    expect(fs.readFileSync(iface('1-3:1.0'), 'utf8').trim()).toBe('0');

    const get = async (route: string) => (await collector.api(route)).body;
    const events = (await get('/api/v1/admin/events?limit=5000')) as { type: string; payload: { port?: string; control?: string } }[];
    expect(events.filter((e) => e.type === 'device.blocked').map((e) => e.payload.port)).toEqual(['1-3']);
    expect(events.filter((e) => e.type === 'policy.drift_corrected').map((e) => e.payload.control)).toEqual(['1-3:1.0 authorized']);
    const terminals = (await get('/api/v1/admin/terminals')) as { enforcement: string; policyVersion: number }[];
    expect(terminals[0]).toMatchObject({ enforcement: 'active', policyVersion: 1 });
    const ledger = (await get('/api/v1/admin/inventory/export?format=json')) as { blocked_7d: number }[];
    expect(ledger[0]!.blocked_7d).toBe(1);
  } finally {
    await collector.stop();
  }
});
