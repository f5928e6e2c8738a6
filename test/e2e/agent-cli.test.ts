import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type * as Sysfs from '../fixtures/linux/sysfs';
import { mamori, requireBuild } from './helpers';

let dir: string;
let buildSysfs: typeof Sysfs.buildSysfs;
let PRESETS: typeof Sysfs.PRESETS;
const fixtureRoot = () => path.join(dir, 'root');

beforeAll(async () => {
  requireBuild();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mamori-agent-cli-'));
  ({ buildSysfs, PRESETS } = await import('../fixtures/linux/sysfs'));
  buildSysfs(fixtureRoot(), [PRESETS.stickWithSerial(), PRESETS.keyboard()]);
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('mamori agent, as an IT person runs it', () => {
  it("prints this machine's hostname, OS and network interfaces", async () => {
    const r = await mamori(['agent', 'inventory', '--json']);
    expect(r.code).toBe(0);
    const snapshot = JSON.parse(r.stdout);
    expect(snapshot.hostname).toBe(os.hostname());
    expect(snapshot.os.platform).toBe(process.platform);
    expect(snapshot.network.length).toBeGreaterThan(0);
  });

  it("lists a fixture root's USB devices with their serials", async () => {
    const r = await mamori(['agent', 'inventory', '--json', '--system-root', fixtureRoot()]);
    expect(r.code).toBe(0);
    const usb = JSON.parse(r.stdout).usb as { vendorId: string; serial: string; rootHub: boolean }[];
    expect(usb.filter((d) => !d.rootHub).map((d) => d.vendorId)).toContain('0781');
    expect(usb.some((d) => d.serial.length > 0)).toBe(true);
  });

  it('records inventory.changed once over two runs, and verify-log finds a hand edit', async () => {
    const data = path.join(dir, 'data');
    const args = ['--data-dir', data, '--system-root', fixtureRoot()];
    expect((await mamori(['agent', 'run', '--once', ...args])).code).toBe(0);
    expect((await mamori(['agent', 'run', '--once', ...args])).code).toBe(0);
    const list = await mamori(['agent', 'events', '--json', '--data-dir', data]);
    const types = (JSON.parse(list.stdout) as { type: string }[]).map((e) => e.type);
    expect(types.filter((t) => t === 'inventory.changed')).toHaveLength(1);
    expect(types.filter((t) => t === 'agent.started')).toHaveLength(2);
    expect(types.filter((t) => t === 'agent.stopped')).toHaveLength(2);

    const intact = await mamori(['agent', 'verify-log', '--data-dir', data]);
    expect(intact.code).toBe(0);
    expect(intact.stdout).toMatch(/intact/);

    const db = new Database(path.join(data, 'agent.db'));
    db.prepare(`UPDATE events SET at = '2020-01-01T00:00:00.000Z' WHERE seq = 2`).run();
    db.close();
    const broken = await mamori(['agent', 'verify-log', '--data-dir', data]);
    expect(broken.code).toBe(1);
    expect(broken.stdout).toMatch(/broken at seq 2/);
  });

  it('a USB product of 1,023 characters and an emoji is recorded, not a crash at start', async () => {
    // A 1,024-unit bound used to cut the emoji's surrogate pair in half: the snapshot could not be
    // hashed, `agent run` exited 1 at start, and systemd restarted it in a loop.
    const root = path.join(dir, 'long-root');
    buildSysfs(root, [{ ...PRESETS.stickWithSerial(), product: `${'x'.repeat(1023)}😀`, manufacturer: '\u{1F600}'.repeat(600) }]);
    const data = path.join(dir, 'long-data');
    const run = await mamori(['agent', 'run', '--once', '--data-dir', data, '--system-root', root]);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const list = await mamori(['agent', 'events', '--json', '--data-dir', data]);
    const types = (JSON.parse(list.stdout) as { type: string }[]).map((e) => e.type);
    expect(types).toEqual(['agent.started', 'inventory.changed', 'agent.stopped']);
    const inventory = await mamori(['agent', 'inventory', '--json', '--system-root', root]);
    const stick = (JSON.parse(inventory.stdout).usb as { vendorId: string; product: string; manufacturer: string }[]).find((d) => d.vendorId === '0781')!;
    expect(stick.product).toBe('x'.repeat(1023));
    expect(stick.manufacturer).toBe('\u{1F600}'.repeat(512));
    expect((await mamori(['agent', 'verify-log', '--data-dir', data])).code).toBe(0);
  });

  it('answers bad usage with one line and exit 2', async () => {
    const r = await mamori(['agent', 'events', '--since', 'yesterday', '--data-dir', dir]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    const unknown = await mamori(['agent', 'frobnicate']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('names a foreign database file and leaves it alone', async () => {
    const data = path.join(dir, 'foreign');
    fs.mkdirSync(data);
    fs.writeFileSync(path.join(data, 'agent.db'), 'not a database');
    const r = await mamori(['agent', 'run', '--once', '--data-dir', data, '--system-root', fixtureRoot()]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(path.join(data, 'agent.db'));
    expect(fs.readFileSync(path.join(data, 'agent.db'), 'utf8')).toBe('not a database');
  });

  it('prints help with the default data directory', async () => {
    const r = await mamori(['agent', 'run', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('/var/lib/mamori');
  });
});
