import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  INSTALL_KEY,
  STORAGE_KEY,
  createMacEnforcer,
  createReconciler,
  createWindowsEnforcer,
  desiredRegistry,
  parseDiskutilExternal,
  parseDiskutilList,
  parseDiskutilWritable,
  parseRegQuery,
  windowsAllow,
} from '../../../src/agent/enforcement';
import { parsePnputilDevices, parseSystemProfilerUsb, pnpToUsbDevices } from '../../../src/agent/os/usb';
import { silentLogger } from '../../../src/agent/logger';
import { openEventStore } from '../../../src/agent/store';
import { PolicyInput, type Policy } from '../../../src/shared';
import os from 'node:os';

const WIN = path.resolve(__dirname, '../../fixtures/windows/enforcement');
const MAC = path.resolve(__dirname, '../../fixtures/macos/enforcement');
const read = (dir: string, f: string) => fs.readFileSync(path.join(dir, f), 'utf8');
/** `diskutil list -plist external` with no external disk left. */
const EMPTY_LIST = '<?xml version="1.0" encoding="UTF-8"?><plist version="1.0"><dict><key>AllDisksAndPartitions</key><array/><key>WholeDisks</key><array/></dict></plist>';

function policy(mode: Policy['removableMedia']['mode'], allow: unknown[] = []): Policy {
  return { ...PolicyInput.parse({ segment: 'mynumber', removableMedia: { mode, allow } }), version: 1, issuedAt: '2026-11-24T00:00:00.000Z', signature: 's' };
}

describe('Windows parsing', () => {
  it("reads reg query output as Wine's reg.exe prints it", () => {
    const values = parseRegQuery(read(WIN, 'reg-query-wine.txt'));
    expect(values.get(`${STORAGE_KEY}\\Deny_All`)).toBe(1);
    expect(values.get(`${STORAGE_KEY}\\{53f5630d-b6bf-11d0-94f2-00a0c91efb8b}\\Deny_Write`)).toBe(1);
  });

  it('reads pnputil devices and finds the sticks and the phone as removable media', () => {
    const devices = pnpToUsbDevices(parsePnputilDevices(read(WIN, 'pnputil-enum-connected.txt')));
    const byId = Object.fromEntries(devices.map((d) => [`${d.vendorId}:${d.productId}`, d]));
    expect(byId['0781:5581']).toMatchObject({ serial: '4C530001230101109473', interfaces: [expect.objectContaining({ interfaceClass: '08' })] });
    expect(byId['090c:1000']!.serial).toContain('&');
    expect(byId['04e8:6860']!.interfaces[0]!.interfaceClass).toBe('06');
    expect(byId['04e6:5116']!.interfaces[0]!.interfaceClass).toBe('0b');
    expect(devices.find((d) => d.rootHub)).toBeUndefined(); // the root hub has no VID
  });

  it('denies all under block, deny-write per class under readonly, and layers an allowlist on install restrictions', () => {
    expect([...desiredRegistry('block', { instanceIds: [], deviceIds: [] }).keys()]).toEqual([`${STORAGE_KEY}\\Deny_All`]);
    expect([...desiredRegistry('readonly', { instanceIds: [], deviceIds: [] }).keys()]).toHaveLength(4);
    const allow = windowsAllow([{ vendorId: '0781', productId: '5581', serial: '4C530001230101109473' }, { vendorId: '0930', productId: '6545' }, { vendorId: '090c', productId: '1000', serial: '6&2B5E1A0F&0&2' }], []);
    expect(allow).toEqual({ instanceIds: ['USB\\VID_0781&PID_5581\\4C530001230101109473'], deviceIds: ['USB\\VID_0930&PID_6545'] });
    const layered = desiredRegistry('block', allow);
    expect(layered.has(`${STORAGE_KEY}\\Deny_All`)).toBe(false);
    expect(layered.get(`${INSTALL_KEY}\\DenyDeviceIDs\\1`)).toBe('USB\\Class_08');
    expect(layered.get(`${INSTALL_KEY}\\AllowInstanceIDs\\1`)).toBe('USB\\VID_0781&PID_5581\\4C530001230101109473');
    expect(desiredRegistry('audit', allow).size).toBe(0);
  });
});

describe('Windows enforcement, with pnputil replayed', () => {
  it('disables present sticks and the phone, leaves keyboard and card reader, and re-enables what it disabled', async () => {
    const disabled = new Set<string>();
    const registry = new Map<string, string>();
    const calls: string[] = [];
    const runner = async (cmd: string, args: string[]) => {
      calls.push(`${cmd} ${args.join(' ')}`);
      if (cmd === 'pnputil' && args[0] === '/enum-devices') {
        let out = read(WIN, 'pnputil-enum-connected.txt');
        for (const id of disabled) out = out.replace(new RegExp(`(Instance ID:\\s+${id.replace(/[\\^$.*+?()[\]{}|&]/g, '\\$&')}[\\s\\S]*?Status:\\s+)Started`), '$1Disabled');
        return { stdout: out, code: 0 };
      }
      if (cmd === 'pnputil') {
        if (args[0] === '/disable-device') disabled.add(args[1]!);
        else disabled.delete(args[1]!);
        return { stdout: '', code: 0 };
      }
      // reg: a small in-memory registry in reg.exe's own output format
      if (args[0] === 'add') registry.set(`${args[1]}|${args[3]}`, `    ${args[3]}    ${args[5]}    ${args[5] === 'REG_DWORD' ? `0x${Number(args[7]).toString(16)}` : args[7]}`);
      if (args[0] === 'delete') registry.delete(`${args[1]}|${args[3]}`);
      if (args[0] === 'query') {
        const keys = [...registry.keys()].filter((k) => k.toLowerCase().startsWith(args[1]!.toLowerCase()));
        if (!keys.length) return { stdout: '', code: 1 };
        return { stdout: keys.map((k) => `\r\n${k.split('|')[0]!.replace(/^HKLM/, 'HKEY_LOCAL_MACHINE')}\r\n${registry.get(k)}\r\n`).join(''), code: 0 };
      }
      return { stdout: '', code: 0 };
    };
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mamori-win-'));
    const store = openEventStore(path.join(dir, 'agent.db'));
    let current = policy('block');
    const r = createReconciler({ store, enforcer: createWindowsEnforcer({ runner }), getPolicy: () => current, getExceptions: () => [], logger: silentLogger });
    try {
      expect((await r.reconcile('start')).state).toBe('active');
      expect([...disabled].sort()).toEqual(['USB\\VID_04E8&PID_6860\\R58M12345AB', 'USB\\VID_0781&PID_5581\\4C530001230101109473', 'USB\\VID_090C&PID_1000\\6&2B5E1A0F&0&2']);
      expect(calls).toContain(`reg add ${STORAGE_KEY} /v Deny_All /t REG_DWORD /d 1 /f`);
      expect(store.readSince(0).filter((e) => e.type === 'device.blocked')).toHaveLength(3);
      const before = store.head().seq;
      expect((await r.reconcile('timer')).changed).toBe(false);
      expect(store.head().seq).toBe(before);

      // Someone enables the stick in Device Manager and deletes Deny_All with regedit.
      disabled.delete('USB\\VID_0781&PID_5581\\4C530001230101109473');
      registry.delete(`${STORAGE_KEY}|Deny_All`);
      expect((await r.reconcile('timer')).state).toBe('active');
      expect(disabled.has('USB\\VID_0781&PID_5581\\4C530001230101109473')).toBe(true);
      expect(registry.has(`${STORAGE_KEY}|Deny_All`)).toBe(true);
      const drift = store.readSince(before).filter((e) => e.type === 'policy.drift_corrected').map((e) => e.payload as { control: string; found: string });
      expect(drift).toEqual([
        { control: `${STORAGE_KEY}\\Deny_All`, expected: '1', found: 'absent' },
        expect.objectContaining({ control: 'USB\\VID_0781&PID_5581\\4C530001230101109473 disabled', found: 'enabled' }),
      ]);

      current = policy('block', [{ vendorId: '0781', productId: '5581', serial: '4C530001230101109473' }]);
      await r.reconcile('policy');
      expect(disabled.has('USB\\VID_0781&PID_5581\\4C530001230101109473')).toBe(false);
      expect(registry.has(`${STORAGE_KEY}|Deny_All`)).toBe(false);
      expect(registry.get(`${INSTALL_KEY}\\AllowInstanceIDs|1`)).toContain('USB\\VID_0781&PID_5581\\4C530001230101109473');

      current = policy('audit');
      expect((await r.reconcile('policy')).state).toBe('audit');
      expect(disabled.size).toBe(0);
      expect(registry.size).toBe(0);
    } finally {
      store.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('Windows read-back', () => {
  it('reports degraded when a stick pnputil disabled still reads as started, or a policy value does not stick', async () => {
    // pnputil /disable-device can exit 0 and leave a device running until a restart; here the
    // listing never changes, as on such a machine.
    const registry = new Map<string, string>();
    let registryWorks = true;
    const runner = async (cmd: string, args: string[]) => {
      if (cmd === 'pnputil') return { stdout: args[0] === '/enum-devices' ? read(WIN, 'pnputil-enum-connected.txt') : '', code: 0 };
      if (args[0] === 'add' && registryWorks) registry.set(`${args[1]}|${args[3]}`, `    ${args[3]}    ${args[5]}    ${args[7]}`);
      if (args[0] !== 'query') return { stdout: '', code: 0 };
      const keys = [...registry.keys()].filter((k) => k.toLowerCase().startsWith(args[1]!.toLowerCase()));
      return keys.length ? { stdout: keys.map((k) => `\r\n${k.split('|')[0]}\r\n${registry.get(k)}\r\n`).join(''), code: 0 } : { stdout: '', code: 1 };
    };
    const devices = await createWindowsEnforcer({ runner }).devices();
    const stick = devices.find((d) => d.serial === '4C530001230101109473')!;
    const decision = { device: stick, evaluation: { decision: 'block' as const, reason: 'policy', interfaces: [stick.port], flags: { pseudoSerial: false, missingSerial: false } } };
    const pass = await createWindowsEnforcer({ runner }).enforce('block', [decision], []);
    expect(pass.failures).toEqual([`${stick.port} reads enabled after pnputil /disable-device`]);

    registry.clear();
    registryWorks = false; // e.g. the key's permissions were changed to deny SYSTEM
    const second = await createWindowsEnforcer({ runner }).enforce('block', [], []);
    expect(second.failures).toEqual([`${STORAGE_KEY}\\Deny_All reads nothing after writing 1`]);
  });

  it('denies Android MTP by its compatible id as well as the storage and still-image classes', () => {
    const layered = desiredRegistry('block', { instanceIds: ['USB\\VID_0781&PID_5581\\X'], deviceIds: [] });
    const denied = [...layered].filter(([k]) => k.startsWith(`${INSTALL_KEY}\\DenyDeviceIDs\\`)).map(([, v]) => v);
    expect(denied).toEqual(['USB\\Class_08', 'USB\\Class_06', 'USB\\MS_COMP_MTP']);
  });
});

describe('macOS (reactive)', () => {
  it('finds the stick and its disk, and ejects it under block', async () => {
    const devices = parseSystemProfilerUsb(read(MAC, 'spusb.json'));
    expect(devices[0]).toMatchObject({ vendorId: '0781', productId: '5581', serial: '4C530001230101109473', interfaces: [expect.objectContaining({ name: 'disk4', interfaceClass: '08' })] });
    expect(devices[1]!.interfaces).toEqual([]);
    expect(parseDiskutilExternal(read(MAC, 'diskutil-list-external.plist'))).toEqual(['disk4']);
    expect(parseDiskutilList(read(MAC, 'diskutil-list-external.plist'))).toEqual([{ disk: 'disk4', volumes: [{ id: 'disk4s1', mountPoint: '/Volumes/USB' }] }]);
    const calls: string[] = [];
    const runner = async (cmd: string, args: string[]) => {
      calls.push(`${cmd} ${args.join(' ')}`);
      if (cmd === 'system_profiler') return { stdout: read(MAC, 'spusb.json'), code: 0 };
      if (args[0] === 'list') return { stdout: ejected ? EMPTY_LIST : read(MAC, 'diskutil-list-external.plist'), code: 0 };
      if (args[0] === 'eject') ejected = true;
      return { stdout: '', code: 0 };
    };
    let ejected = false;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mamori-mac-'));
    const store = openEventStore(path.join(dir, 'agent.db'));
    try {
      await createReconciler({ store, enforcer: createMacEnforcer({ runner }), getPolicy: () => policy('block'), getExceptions: () => [], logger: silentLogger }).reconcile('start');
      expect(calls).toContain('diskutil eject /dev/disk4');
      expect(store.readSince(0).filter((e) => e.type === 'device.blocked')).toHaveLength(1);
      expect(store.readSince(0).find((e) => e.type === 'policy.applied')?.payload).toMatchObject({ enforcement: 'active' });
    } finally {
      store.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('macOS read-only', () => {
  it('remounts a writable volume read-only, checks it, and records a read-write remount by hand as drift', async () => {
    let writable = true;
    const calls: string[] = [];
    const runner = async (cmd: string, args: string[]) => {
      calls.push(`${cmd} ${args.join(' ')}`);
      if (cmd === 'system_profiler') return { stdout: read(MAC, 'spusb.json'), code: 0 };
      if (args[0] === 'list') return { stdout: read(MAC, 'diskutil-list-external.plist'), code: 0 };
      if (args[0] === 'info') return { stdout: read(MAC, `diskutil-info-disk4s1-${writable ? 'writable' : 'readonly'}.plist`), code: 0 };
      if (args[0] === 'mount') writable = args[1] !== 'readOnly';
      return { stdout: '', code: 0 };
    };
    expect(parseDiskutilWritable(read(MAC, 'diskutil-info-disk4s1-writable.plist'))).toBe(true);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mamori-mac-'));
    const store = openEventStore(path.join(dir, 'agent.db'));
    try {
      const r = createReconciler({ store, enforcer: createMacEnforcer({ runner }), getPolicy: () => policy('readonly'), getExceptions: () => [], logger: silentLogger });
      expect((await r.reconcile('start')).state).toBe('active');
      expect(calls).toContain('diskutil mount readOnly disk4s1');
      expect(calls).not.toContain('diskutil eject /dev/disk4');
      expect(writable).toBe(false);
      const before = store.head().seq;
      expect((await r.reconcile('timer')).changed).toBe(false);
      writable = true; // sudo mount -uw /Volumes/USB
      await r.reconcile('timer');
      expect(writable).toBe(false);
      expect(store.readSince(before).map((e) => e.type)).toEqual(['policy.drift_corrected']);
    } finally {
      store.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
