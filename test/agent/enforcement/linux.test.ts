import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { UDEV_RULES_FILE, createLinuxEnforcer, type EnforcerMemory } from '../../../src/agent/enforcement/linux';
import { createReconciler } from '../../../src/agent/enforcement/reconciler';
import type { ActiveException } from '../../../src/agent/enforcement/types';
import { silentLogger } from '../../../src/agent/logger';
import { openEventStore, type EventStore } from '../../../src/agent/store';
import { PolicyInput, type Policy } from '../../../src/shared';
import { PRESETS, buildSysfs } from '../../fixtures/linux/sysfs';
import {
  addBlockDevice,
  blockRo,
  fixtureRunner,
  kernelDropsInterfacesIfDeauthorized,
  setBootId,
  setUsbAttr,
  unplug,
  usbAttr,
  withoutInterfaceAuthorization,
} from '../../fixtures/linux/sysfs-enforcement';

let root: string;
let store: EventStore;
let policy: Policy;
let exceptions: ActiveException[];
let commands: string[][];

function setPolicy(mode: Policy['removableMedia']['mode'], allow: unknown[] = [], version = 1): void {
  policy = { ...PolicyInput.parse({ segment: 'mynumber', removableMedia: { mode, allow } }), version, issuedAt: '2026-11-24T00:00:00.000Z', signature: 's' };
}

const attr = (name: string, a = 'authorized') => usbAttr(root, name, a);
const rules = () => fs.readFileSync(path.join(root, UDEV_RULES_FILE), 'utf8');

/** The store's memory of what the enforcer set, as the agent wires it (main.ts). */
function storeMemory(): EnforcerMemory {
  return { load: () => store.getState('enforcement.set'), save: (json) => store.setState('enforcement.set', json) };
}

function reconciler(memory?: EnforcerMemory) {
  const enforcer = createLinuxEnforcer({ systemRoot: root, runner: fixtureRunner(root, commands), ...(memory ? { memory } : {}) });
  return createReconciler({ store, enforcer, getPolicy: () => policy, getExceptions: () => exceptions, logger: silentLogger });
}

const events = (since = 0) => store.readSince(since, 1000);
const types = (since = 0) => events(since).map((e) => e.type);
const ports = (type: string, since = 0) =>
  events(since)
    .filter((e) => e.type === type)
    .map((e) => (e.payload as { port: string }).port)
    .sort();

beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'mamori-enforce-'));
  store = openEventStore(path.join(root, 'agent.db'));
  exceptions = [];
  commands = [];
  // 1-1 keyboard, 1-2 stick with serial, 1-3 stick without serial (another model), 1-4 keyboard
  // with a card slot (composite), 1-6 Android phone (06 + ff "MTP"), 1-7 smart-card reader.
  buildSysfs(root, [
    PRESETS.keyboard(),
    PRESETS.stickWithSerial(),
    PRESETS.stickWithoutSerial(),
    PRESETS.composite(),
    PRESETS.phoneMtp(),
    PRESETS.smartCardReader(),
  ]);
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
    expect(attr('1-2:1.0')).toBe('0');
    expect(attr('1-3:1.0')).toBe('0');
    expect(attr('1-4:1.0')).toBe('1'); // the composite device's keyboard
    expect(attr('1-4:1.1')).toBe('0'); // and its card slot
    expect(attr('1-6:1.0')).toBe('0'); // still image / PTP
    expect(attr('1-6:1.1')).toBe('0'); // vendor interface named MTP
    expect(attr('1-1:1.0')).toBe('1');
    expect(attr('1-1:1.1')).toBe('1');
    expect(attr('1-7:1.0')).toBe('1');
    expect(attr('usb1', 'interface_authorized_default')).toBe('0');
    expect(rules()).toContain('ATTR{interface_authorized_default}="0"');
    expect(rules()).toContain('ATTR{bInterfaceClass}!="08"');
    expect(ports('device.blocked')).toEqual(['1-2', '1-3', '1-4', '1-6']);
    expect(ports('device.attached')).toEqual(['1-1', '1-2', '1-3', '1-4', '1-6', '1-7']);
    expect(types()).toContain('policy.applied');
    // Nothing was written to a keyboard or card reader, not even an unchanged value.
    expect(fs.readFileSync(path.join(root, 'sys', 'bus', 'usb', 'drivers_probe'), 'utf8')).toBe('');
  });

  it('writes udev rules that authorize what is not media, and leave vendor interfaces named MTP to the agent', async () => {
    await reconciler().reconcile('start');
    const lines = rules()
      .split('\n')
      .filter((l) => l.includes('ATTR{authorized}="1"'));
    // Every line that authorizes excludes storage and still image, and probes the driver.
    for (const line of lines) {
      expect(line).toMatch(/ATTR\{bInterfaceClass\}(!="08".*!="06"|=="ff")/);
      expect(line).toContain('RUN+="/bin/sh -c \'echo %k > /sys/bus/usb/drivers_probe\'"');
    }
    const ff = lines.filter((l) => l.includes('ATTR{bInterfaceClass}=="ff"'));
    expect(ff).toHaveLength(2);
    expect(ff.find((l) => l.includes('ATTR{interface}!='))).toContain('*[Mm][Tt][Pp]*');
    expect(rules()).not.toContain('--setro');
  });

  it('leaves a phone’s ADB interface usable while its MTP interface is blocked', async () => {
    buildSysfs(root, [
      {
        name: '1-8',
        vendorId: '18d1',
        productId: '4ee2',
        serial: '0A1B2C3D',
        manufacturer: 'Google',
        product: 'Pixel 7',
        interfaces: [
          { number: '1.0', cls: 'ff', subClass: 'ff', protocol: '00', description: 'MTP' },
          { number: '1.1', cls: 'ff', subClass: '42', protocol: '01', description: 'ADB Interface' },
        ],
      },
    ]);
    await reconciler().reconcile('start');
    expect(attr('1-8:1.0')).toBe('0');
    expect(attr('1-8:1.1')).toBe('1');
    const blocked = events().find((e) => e.type === 'device.blocked' && (e.payload as { port: string }).port === '1-8');
    expect(blocked?.payload).toMatchObject({ interfaces: ['1-8:1.0'], mode: 'block' });
  });

  it('changes and records nothing on a pass where nothing changed', async () => {
    const r = reconciler(storeMemory());
    await r.reconcile('start');
    const before = store.head().seq;
    const files = () =>
      fs
        .readdirSync(path.join(root, 'sys', 'bus', 'usb', 'devices'))
        .map((n) => `${n}=${fs.existsSync(path.join(root, 'sys', 'bus', 'usb', 'devices', n, 'authorized')) ? attr(n) : '-'}`);
    const snapshot = files();
    const ran = commands.length;
    expect(await r.reconcile('timer')).toEqual({ state: 'active', changed: false });
    expect(await r.reconcile('hint')).toEqual({ state: 'active', changed: false });
    expect(store.head().seq).toBe(before);
    expect(files()).toEqual(snapshot);
    expect(commands.length).toBe(ran);
  });

  it('undoes a re-authorization by hand and records it', async () => {
    const r = reconciler();
    await r.reconcile('start');
    const before = store.head().seq;
    setUsbAttr(root, '1-2:1.0', 'authorized', '1');
    setUsbAttr(root, 'usb1', 'interface_authorized_default', '1');
    await r.reconcile('timer');
    expect(attr('1-2:1.0')).toBe('0');
    expect(attr('usb1', 'interface_authorized_default')).toBe('0');
    const drift = events(before)
      .filter((e) => e.type === 'policy.drift_corrected')
      .map((e) => e.payload as { control: string; expected: string; found: string; device?: { port: string } });
    expect(drift.map((d) => d.control).sort()).toEqual(['1-2:1.0 authorized', 'usb1 interface_authorized_default']);
    expect(drift.find((d) => d.control === '1-2:1.0 authorized')).toMatchObject({
      expected: '0',
      found: '1',
      device: { port: '1-2', serial: '4C530001230101109473' },
    });
    // Correcting drift is not a new decision about the device.
    expect(types(before)).not.toContain('device.blocked');
  });

  it('records a removed or edited udev rules file as tampering, and puts it back', async () => {
    const r = reconciler();
    await r.reconcile('start');
    const before = store.head().seq;
    fs.rmSync(path.join(root, UDEV_RULES_FILE));
    await r.reconcile('timer');
    expect(rules()).toContain('Mamori');
    expect(events(before).map((e) => [e.type, (e.payload as { what?: string; control?: string; found?: string }).found ?? ''])).toEqual([
      ['tamper.detected', ''],
      ['policy.drift_corrected', 'absent'],
    ]);
    const mid = store.head().seq;
    fs.writeFileSync(path.join(root, UDEV_RULES_FILE), '# emptied\n');
    await r.reconcile('timer');
    expect(rules()).toContain('Mamori');
    expect(events(mid).find((e) => e.type === 'tamper.detected')?.payload).toMatchObject({
      what: `udev rules ${UDEV_RULES_FILE}`,
      detail: expect.stringContaining('found edited'),
    });
  });

  it('remembers what it set across an agent restart in the same boot, and forgets it after a reboot', async () => {
    setBootId(root, 'boot-1');
    await reconciler(storeMemory()).reconcile('start');
    // The agent is stopped; someone re-authorizes the stick; the agent starts again.
    setUsbAttr(root, '1-2:1.0', 'authorized', '1');
    const before = store.head().seq;
    await reconciler(storeMemory()).reconcile('start');
    expect(attr('1-2:1.0')).toBe('0');
    expect(
      events(before)
        .filter((e) => e.type === 'policy.drift_corrected')
        .map((e) => (e.payload as { control: string }).control),
    ).toEqual(['1-2:1.0 authorized']);

    // After a reboot the kernel starts from its defaults: that is not anyone's hand.
    setBootId(root, 'boot-2');
    setUsbAttr(root, '1-2:1.0', 'authorized', '1');
    setUsbAttr(root, 'usb1', 'interface_authorized_default', '1');
    const rebooted = store.head().seq;
    await reconciler(storeMemory()).reconcile('start');
    expect(attr('1-2:1.0')).toBe('0');
    expect(types(rebooted)).not.toContain('policy.drift_corrected');
  });

  it('makes an allowlisted serial usable, with its driver probed, while a serial-less stick of another model stays blocked', async () => {
    setPolicy('block', [{ vendorId: '0781', productId: '5581', serial: '4C530001230101109473', note: '総務課 配布用' }]);
    setUsbAttr(root, '1-2:1.0', 'authorized', '0'); // as the root hub's default left it
    await reconciler().reconcile('start');
    expect(attr('1-2:1.0')).toBe('1');
    expect(fs.readFileSync(path.join(root, 'sys', 'bus', 'usb', 'drivers_probe'), 'utf8')).toBe('1-2:1.0');
    expect(attr('1-3:1.0')).toBe('0');
    expect(events().find((e) => e.type === 'device.allowed')?.payload).toMatchObject({ port: '1-2', reason: 'allowlist: 総務課 配布用' });
    expect(events().find((e) => e.type === 'device.blocked' && (e.payload as { port: string }).port === '1-3')?.payload).toMatchObject({ serial: '' });
  });

  it('does not let a second stick of the allowlisted model in on the first one’s serial', async () => {
    setPolicy('block', [{ vendorId: '0781', productId: '5581', serial: '4C530001230101109473' }]);
    buildSysfs(root, [PRESETS.stickWithSerial('1-9', 'SOMEONEELSES0001')]);
    await reconciler().reconcile('start');
    expect(attr('1-2:1.0')).toBe('1');
    expect(attr('1-9:1.0')).toBe('0');
  });

  it('grants a temporary exception at once and takes it back when it expires', async () => {
    const r = reconciler();
    await r.reconcile('start');
    exceptions = [
      {
        requestId: 'r1',
        device: { vendorId: '0781', productId: '5581', serial: '4C530001230101109473' },
        expiresAt: new Date(Date.now() + 60_000).toISOString(),
        via: 'unlock-code',
      },
    ];
    await r.reconcile('exception');
    expect(attr('1-2:1.0')).toBe('1');
    expect(attr('1-3:1.0')).toBe('0');
    exceptions = [];
    await r.reconcile('timer');
    expect(attr('1-2:1.0')).toBe('0');
    expect(
      types()
        .filter((t) => t === 'device.blocked' || t === 'device.allowed')
        .slice(-2),
    ).toEqual(['device.allowed', 'device.blocked']);
  });

  it('under readonly lets sticks bind but makes their disks read-only, keeps the phone blocked, and restores everything under audit', async () => {
    addBlockDevice(root, '1-2:1.0', 'sdb');
    addBlockDevice(root, '1-4:1.1', 'sdc');
    setPolicy('readonly', [], 2);
    const r = reconciler();
    await r.reconcile('start');
    expect(attr('1-2:1.0')).toBe('1');
    expect(attr('1-4:1.1')).toBe('1');
    expect(blockRo(root, 'sdb')).toBe('1');
    expect(blockRo(root, 'sdc')).toBe('1');
    expect(commands).toContainEqual(['blockdev', '--setro', path.join(root, 'dev', 'sdb')]);
    expect(rules()).toContain('RUN+="/sbin/blockdev --setro $env{DEVNAME}"');
    // A phone cannot be made read-only: under readonly it stays blocked.
    expect(attr('1-6:1.0')).toBe('0');
    expect(attr('1-6:1.1')).toBe('0');
    expect(
      events()
        .filter((e) => e.type === 'device.allowed')
        .map((e) => e.payload),
    ).toContainEqual(expect.objectContaining({ port: '1-2', mode: 'readonly', reason: 'policy allows reading only' }));

    setPolicy('audit', [], 3);
    expect((await r.reconcile('policy')).state).toBe('audit');
    expect(blockRo(root, 'sdb')).toBe('0');
    expect(blockRo(root, 'sdc')).toBe('0');
    expect(fs.existsSync(path.join(root, UDEV_RULES_FILE))).toBe(false);
    expect(attr('usb1', 'interface_authorized_default')).toBe('1');
    expect(attr('1-3:1.0')).toBe('1');
    expect(attr('1-6:1.0')).toBe('1');
    const applied = events()
      .filter((e) => e.type === 'policy.applied')
      .map((e) => e.payload as { mode: string; enforcement: string });
    expect(applied.map((a) => `${a.mode}/${a.enforcement}`)).toEqual(['readonly/active', 'audit/audit']);
  });

  it('under readonly takes the flag its udev rule set off an allowlisted stick, and off every stick when the policy turns to allow', async () => {
    setPolicy('readonly', [{ vendorId: '0781', productId: '5581' }], 2);
    // Both disks came up read-only: udev's rule ran blockdev --setro as they appeared.
    addBlockDevice(root, '1-2:1.0', 'sdb', '1');
    addBlockDevice(root, '1-3:1.0', 'sdc', '1');
    const r = reconciler();
    await r.reconcile('hint');
    expect(blockRo(root, 'sdb')).toBe('0'); // allowlisted: writable
    expect(blockRo(root, 'sdc')).toBe('1');
    expect(commands.filter((c) => c[0] === 'blockdev')).toEqual([['blockdev', '--setrw', path.join(root, 'dev', 'sdb')]]);

    setPolicy('allow', [], 3);
    expect((await r.reconcile('policy')).state).toBe('audit');
    expect(blockRo(root, 'sdc')).toBe('0');
  });

  it('restores every control under allow', async () => {
    const r = reconciler();
    await r.reconcile('start');
    setPolicy('allow', [], 2);
    const before = store.head().seq;
    expect((await r.reconcile('policy')).state).toBe('audit');
    for (const name of ['1-1:1.0', '1-2:1.0', '1-3:1.0', '1-4:1.0', '1-4:1.1', '1-6:1.0', '1-6:1.1', '1-7:1.0']) expect(attr(name), name).toBe('1');
    expect(attr('usb1', 'interface_authorized_default')).toBe('1');
    expect(fs.existsSync(path.join(root, UDEV_RULES_FILE))).toBe(false);
    // The re-authorized media interfaces were probed so their drivers bind again.
    expect(fs.readFileSync(path.join(root, 'sys', 'bus', 'usb', 'drivers_probe'), 'utf8')).toMatch(/^1-\d:1\.\d$/);
    expect(ports('device.allowed', before)).toEqual(['1-2', '1-3', '1-4', '1-6']);
    expect(types(before)).not.toContain('policy.drift_corrected');
  });

  it('records a detached device and an attached one', async () => {
    const r = reconciler();
    await r.reconcile('start');
    const before = store.head().seq;
    unplug(root, '1-3');
    buildSysfs(root, [PRESETS.stickWithSerial('1-8', 'NEWSTICK')]);
    await r.reconcile('hint');
    expect(types(before).sort()).toEqual(['device.attached', 'device.blocked', 'device.detached']);
    expect(ports('device.detached', before)).toEqual(['1-3']);
    expect(attr('1-8:1.0')).toBe('0');
  });

  it('sets the default again on a root hub that appears later (a new controller)', async () => {
    const r = reconciler();
    await r.reconcile('start');
    buildSysfs(root, [PRESETS.rootHub(2), PRESETS.stickWithSerial('2-1', 'LATE')]);
    await r.reconcile('hint');
    expect(attr('usb2', 'interface_authorized_default')).toBe('0');
    expect(attr('2-1:1.0')).toBe('0');
  });

  it('reports degraded, not active, when it cannot write a control', async () => {
    // A control that cannot be written (here: not a file at all) must not pass for enforced.
    const authorized = path.join(fs.realpathSync(path.join(root, 'sys', 'bus', 'usb', 'devices', '1-2:1.0')), 'authorized');
    fs.rmSync(authorized);
    fs.mkdirSync(authorized);
    fs.writeFileSync(path.join(authorized, 'x'), '');
    const result = await reconciler().reconcile('start');
    expect(result.state).toBe('degraded');
    expect(events().find((e) => e.type === 'policy.applied')?.payload).toMatchObject({ enforcement: 'degraded' });
  });
});

describe('Linux enforcement on a kernel without interface authorization', () => {
  beforeEach(() => withoutInterfaceAuthorization(root));

  it('switches a stick off whole, keeps it known as storage, and brings it back when allowlisted', async () => {
    const r = reconciler(storeMemory());
    const first = await r.reconcile('start');
    expect(attr('1-2')).toBe('0');
    expect(attr('1-3')).toBe('0');
    expect(attr('1-1')).toBe('1');
    expect(attr('1-7')).toBe('1');
    // The composite keyboard cannot lose only its card slot here: it is left working and the
    // terminal says enforcement is degraded rather than locking the keyboard.
    expect(attr('1-4')).toBe('1');
    expect(first.state).toBe('degraded');
    for (const d of ['1-2', '1-3', '1-6']) kernelDropsInterfacesIfDeauthorized(root, d);

    const before = store.head().seq;
    await r.reconcile('timer');
    // Its interfaces are gone from sysfs, yet it is the same blocked stick: nothing new recorded.
    expect(types(before).filter((t) => t.startsWith('device.'))).toEqual([]);

    setPolicy('block', [{ vendorId: '0781', productId: '5581', serial: '4C530001230101109473' }], 2);
    await reconciler(storeMemory()).reconcile('policy');
    expect(attr('1-2')).toBe('1');
    expect(attr('1-3')).toBe('0');
    expect(events(before).find((e) => e.type === 'device.allowed')?.payload).toMatchObject({ port: '1-2' });
  });

  it('undoes a device re-authorized by hand and records it', async () => {
    const r = reconciler();
    await r.reconcile('start');
    const before = store.head().seq;
    setUsbAttr(root, '1-3', 'authorized', '1');
    await r.reconcile('timer');
    expect(attr('1-3')).toBe('0');
    expect(
      events(before)
        .filter((e) => e.type === 'policy.drift_corrected')
        .map((e) => e.payload),
    ).toEqual([expect.objectContaining({ control: '1-3 authorized', expected: '0', found: '1' })]);
  });
});
