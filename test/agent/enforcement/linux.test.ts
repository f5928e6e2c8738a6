import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { UDEV_RULES_FILE, createLinuxEnforcer } from '../../../src/agent/enforcement/linux';
import { createReconciler } from '../../../src/agent/enforcement/reconciler';
import type { ActiveException } from '../../../src/agent/exceptions';
import { silentLogger } from '../../../src/agent/logger';
import { openEventStore, type EventStore } from '../../../src/agent/store';
import { PolicyInput, type Policy } from '../../../src/shared';
import { PRESETS, buildSysfs, deviceDir } from '../../fixtures/linux/sysfs';

let root: string;
let store: EventStore;
let policy: Policy;
let exceptions: ActiveException[];
const commands: string[][] = [];

function setPolicy(mode: Policy['removableMedia']['mode'], allow: unknown[] = [], version = 1): void {
  policy = { ...PolicyInput.parse({ segment: 'mynumber', removableMedia: { mode, allow } }), version, issuedAt: '2026-11-24T00:00:00.000Z', signature: 's' };
}

const sys = (...p: string[]) => path.join(root, 'sys', ...p);
const attr = (link: string, name: string) => fs.readFileSync(path.join(fs.realpathSync(sys('bus', 'usb', 'devices', link)), name), 'utf8').trim();
const setAttr = (link: string, name: string, value: string) => fs.writeFileSync(path.join(fs.realpathSync(sys('bus', 'usb', 'devices', link)), name), `${value}\n`);

/** A SCSI disk below a storage interface, as the kernel links it from /sys/block. */
function addBlockDevice(iface: string, name: string): void {
  const target = path.join(fs.realpathSync(sys('bus', 'usb', 'devices', iface)), 'host0', 'target0:0:0', '0:0:0:0', 'block', name);
  fs.mkdirSync(target, { recursive: true });
  fs.writeFileSync(path.join(target, 'ro'), '0\n');
  fs.mkdirSync(sys('block'), { recursive: true });
  fs.symlinkSync(path.relative(sys('block'), target), sys('block', name));
}

function reconciler() {
  const enforcer = createLinuxEnforcer({
    systemRoot: root,
    // blockdev on a fixture: flip the ro flag sysfs would show.
    runner: async (cmd, args) => {
      commands.push([cmd, ...args]);
      const name = path.basename(args[1]!);
      fs.writeFileSync(path.join(fs.realpathSync(sys('block', name)), 'ro'), args[0] === '--setro' ? '1\n' : '0\n');
      return { stdout: '', code: 0 };
    },
  });
  return createReconciler({ store, enforcer, getPolicy: () => policy, getExceptions: () => exceptions, logger: silentLogger });
}

const types = (since = 0) => store.readSince(since, 1000).map((e) => e.type);

beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'mamori-enforce-'));
  store = openEventStore(path.join(root, 'agent.db'));
  exceptions = [];
  commands.length = 0;
  buildSysfs(root, [PRESETS.keyboard(), PRESETS.stickWithSerial(), PRESETS.stickWithoutSerial(), PRESETS.composite(), PRESETS.phoneMtp(), PRESETS.smartCardReader()]);
  setPolicy('block');
});
afterEach(() => {
  store.close();
  fs.rmSync(root, { recursive: true, force: true });
});

describe('Linux enforcement on a sysfs tree', () => {
  it('blocks storage and MTP, leaves keyboard and card reader alone, and closes the door for new devices', async () => {
    const r = reconciler();
    expect((await r.reconcile('start')).state).toBe('active');
    expect(attr('1-2:1.0', 'authorized')).toBe('0');
    expect(attr('1-3:1.0', 'authorized')).toBe('0');
    expect(attr('1-4:1.0', 'authorized')).toBe('1'); // the composite device's keyboard
    expect(attr('1-4:1.1', 'authorized')).toBe('0'); // and its card reader
    expect(attr('1-6:1.0', 'authorized')).toBe('0');
    expect(attr('1-6:1.1', 'authorized')).toBe('0'); // vendor interface named MTP
    expect(attr('1-1:1.0', 'authorized')).toBe('1');
    expect(attr('1-7:1.0', 'authorized')).toBe('1');
    expect(attr('usb1', 'interface_authorized_default')).toBe('0');
    const rules = fs.readFileSync(path.join(root, UDEV_RULES_FILE), 'utf8');
    expect(rules).toContain('ATTR{interface_authorized_default}="0"');
    expect(rules).toContain('ATTR{bInterfaceClass}!="08"');
    const blocked = store.readSince(0).filter((e) => e.type === 'device.blocked').map((e) => (e.payload as { port: string }).port);
    expect(blocked.sort()).toEqual(['1-2', '1-3', '1-4', '1-6']);
    expect(types().filter((t) => t === 'device.attached')).toHaveLength(6);
    expect(types()).toContain('policy.applied');
  });

  it('changes and records nothing on a pass where nothing changed', async () => {
    const r = reconciler();
    await r.reconcile('start');
    const before = store.head().seq;
    expect(await r.reconcile('timer')).toEqual({ state: 'active', changed: false });
    expect(store.head().seq).toBe(before);
  });

  it('undoes a re-authorization by hand and records it', async () => {
    const r = reconciler();
    await r.reconcile('start');
    const before = store.head().seq;
    setAttr('1-2:1.0', 'authorized', '1');
    setAttr('usb1', 'interface_authorized_default', '1');
    await r.reconcile('timer');
    expect(attr('1-2:1.0', 'authorized')).toBe('0');
    expect(attr('usb1', 'interface_authorized_default')).toBe('0');
    const drift = store.readSince(before).filter((e) => e.type === 'policy.drift_corrected').map((e) => (e.payload as { control: string }).control);
    expect(drift.sort()).toEqual(['1-2:1.0 authorized', 'usb1 interface_authorized_default']);
    fs.writeFileSync(path.join(root, UDEV_RULES_FILE), '# emptied\n');
    await r.reconcile('timer');
    expect(fs.readFileSync(path.join(root, UDEV_RULES_FILE), 'utf8')).toContain('Mamori');
    expect(types(before)).toContain('policy.drift_corrected');
  });

  it('makes an allowlisted serial usable, with its driver probed, while a serial-less stick stays blocked', async () => {
    setPolicy('block', [{ vendorId: '0781', productId: '5581', serial: '4C530001230101109473' }]);
    setAttr('1-2:1.0', 'authorized', '0');
    await reconciler().reconcile('start');
    expect(attr('1-2:1.0', 'authorized')).toBe('1');
    expect(fs.readFileSync(sys('bus', 'usb', 'drivers_probe'), 'utf8')).toBe('1-2:1.0');
    expect(attr('1-3:1.0', 'authorized')).toBe('0');
    const allowed = store.readSince(0).find((e) => e.type === 'device.allowed');
    expect(allowed?.payload).toMatchObject({ port: '1-2', reason: 'allowlist' });
  });

  it('grants a temporary exception at once and takes it back when it expires', async () => {
    const r = reconciler();
    await r.reconcile('start');
    exceptions = [{ requestId: 'r1', device: { vendorId: '0781', productId: '5581', serial: '4C530001230101109473' }, expiresAt: new Date(Date.now() + 60_000).toISOString(), via: 'unlock-code' }];
    await r.reconcile('exception');
    expect(attr('1-2:1.0', 'authorized')).toBe('1');
    exceptions = [];
    await r.reconcile('timer');
    expect(attr('1-2:1.0', 'authorized')).toBe('0');
    expect(types().filter((t) => t === 'device.blocked' || t === 'device.allowed').slice(-2)).toEqual(['device.allowed', 'device.blocked']);
  });

  it('sets read-only on a stick’s block device under readonly, and restores everything under audit', async () => {
    addBlockDevice('1-2:1.0', 'sdb');
    setPolicy('readonly', [], 2);
    const r = reconciler();
    await r.reconcile('start');
    expect(attr('1-2:1.0', 'authorized')).toBe('1');
    expect(fs.readFileSync(sys('block', 'sdb', 'ro'), 'utf8').trim()).toBe('1');
    expect(commands).toContainEqual(['blockdev', '--setro', path.join(root, 'dev', 'sdb')]);
    expect(fs.readFileSync(path.join(root, UDEV_RULES_FILE), 'utf8')).toContain('--setro');
    setPolicy('audit', [], 3);
    expect((await r.reconcile('policy')).state).toBe('audit');
    expect(fs.readFileSync(sys('block', 'sdb', 'ro'), 'utf8').trim()).toBe('0');
    expect(fs.existsSync(path.join(root, UDEV_RULES_FILE))).toBe(false);
    expect(attr('usb1', 'interface_authorized_default')).toBe('1');
    expect(attr('1-3:1.0', 'authorized')).toBe('1');
    const applied = store.readSince(0).filter((e) => e.type === 'policy.applied').map((e) => (e.payload as { mode: string; enforcement: string }));
    expect(applied.map((a) => `${a.mode}/${a.enforcement}`)).toEqual(['readonly/active', 'audit/audit']);
  });

  it('records a detached device and an attached one', async () => {
    const r = reconciler();
    await r.reconcile('start');
    const before = store.head().seq;
    fs.rmSync(sys('bus', 'usb', 'devices', '1-3'));
    fs.rmSync(sys('bus', 'usb', 'devices', '1-3:1.0'));
    fs.rmSync(deviceDir(root, '1-3'), { recursive: true });
    buildSysfs(root, [{ ...PRESETS.stickWithSerial('1-8', 'NEWSTICK') }]);
    await r.reconcile('hint');
    expect(types(before).sort()).toEqual(['device.attached', 'device.blocked', 'device.detached']);
    expect(attr('1-8:1.0', 'authorized')).toBe('0');
  });

  it('reports degraded, not active, when it cannot write a control', async () => {
    // A control that cannot be written (here: not a file at all) must not pass for enforced.
    const authorized = path.join(fs.realpathSync(sys('bus', 'usb', 'devices', '1-2:1.0')), 'authorized');
    fs.rmSync(authorized);
    fs.mkdirSync(authorized);
    fs.writeFileSync(path.join(authorized, 'x'), '');
    const result = await reconciler().reconcile('start');
    expect(result.state).toBe('degraded');
    expect(store.readSince(0).find((e) => e.type === 'policy.applied')?.payload).toMatchObject({ enforcement: 'degraded' });
  });
});
