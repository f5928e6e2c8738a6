import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createPnputilReplay } from '../fixtures/windows/enforcement/pnputil';
import {
  INSTALL_KEY,
  STORAGE_KEY,
  UDEV_RULES_FILE,
  createLinuxEnforcer,
  createReconciler,
  createWindowsEnforcer,
  releaseControls,
  type EnforcerMemory,
} from '../../src/agent/enforcement';
import { silentLogger } from '../../src/agent/logger';
import { openEventStore, type EventStore } from '../../src/agent/store';
import { PolicyInput, type Policy } from '../../src/shared';
import { PRESETS, buildSysfs } from '../fixtures/linux/sysfs';
import { addBlockDevice, blockRo, fixtureRunner, setBootId, usbAttr } from '../fixtures/linux/sysfs-enforcement';

// What an uninstall leaves: `mamori agent release` runs with the service stopped, as a new
// process that knows only what the agent stored. Each test lets an agent enforce first, then
// releases with a fresh enforcer, as the CLI does.

function policy(mode: Policy['removableMedia']['mode']): Policy {
  return {
    ...PolicyInput.parse({ segment: 'mynumber', removableMedia: { mode, allow: [] } }),
    version: 1,
    issuedAt: '2026-11-24T00:00:00.000Z',
    signature: 's',
  };
}

let dir: string;
let store: EventStore;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mamori-release-'));
  store = openEventStore(path.join(dir, 'agent.db'));
});
afterEach(() => {
  store.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('release on Linux', () => {
  let root: string;
  const memory = (): EnforcerMemory => ({ load: () => store.getState('enforcement.set'), save: (json) => store.setState('enforcement.set', json) });
  beforeEach(() => {
    root = path.join(dir, 'root');
    setBootId(root, '5b1c7a0e-2f4d-4d7a-9d3e-1a2b3c4d5e6f');
    buildSysfs(root, [PRESETS.keyboard(), PRESETS.stickWithSerial('1-2'), PRESETS.phoneMtp('1-6')]);
  });

  async function enforce(mode: Policy['removableMedia']['mode']): Promise<void> {
    const enforcer = createLinuxEnforcer({ systemRoot: root, runner: fixtureRunner(root), memory: memory() });
    const r = await createReconciler({ store, enforcer, getPolicy: () => policy(mode), getExceptions: () => [], logger: silentLogger }).reconcile('test');
    expect(r.state).toBe('active');
  }

  it('gives back what blocking took: the udev rules, the root hubs default, the storage and MTP interfaces', async () => {
    await enforce('block');
    expect(fs.existsSync(path.join(root, UDEV_RULES_FILE))).toBe(true);
    expect(usbAttr(root, 'usb1', 'interface_authorized_default')).toBe('0');
    expect(usbAttr(root, '1-2:1.0', 'authorized')).toBe('0');

    const calls: string[][] = [];
    const enforcer = createLinuxEnforcer({ systemRoot: root, runner: fixtureRunner(root, calls), memory: memory() });
    const result = await releaseControls({ enforcer, platform: 'linux', runner: fixtureRunner(root, calls) });

    expect(result.failures).toEqual([]);
    expect(fs.existsSync(path.join(root, UDEV_RULES_FILE))).toBe(false);
    expect(usbAttr(root, 'usb1', 'interface_authorized_default')).toBe('1');
    expect(usbAttr(root, '1-2:1.0', 'authorized')).toBe('1');
    expect(usbAttr(root, '1-6:1.0', 'authorized')).toBe('1');
    // Authorizing binds no driver by itself (kernel 6.1): what was released is probed, so it works
    // at once (the fixture's drivers_probe keeps the last name written).
    expect(['1-2:1.0', '1-6:1.0', '1-6:1.1']).toContain(fs.readFileSync(path.join(root, 'sys', 'bus', 'usb', 'drivers_probe'), 'utf8').trim());
    expect(usbAttr(root, '1-1:1.0', 'authorized')).toBe('1');
  });

  it('clears the read-only flag Mamori set and leaves one someone else set', async () => {
    addBlockDevice(root, '1-2:1.0', 'sdb');
    await enforce('readonly');
    expect(blockRo(root, 'sdb')).toBe('1');
    buildSysfs(root, [PRESETS.stickWithoutSerial('1-3')]);
    addBlockDevice(root, '1-3:1.0', 'sdc', '1');

    const enforcer = createLinuxEnforcer({ systemRoot: root, runner: fixtureRunner(root), memory: memory() });
    const result = await releaseControls({ enforcer, platform: 'linux', runner: fixtureRunner(root) });
    expect(result.failures).toEqual([]);
    expect(blockRo(root, 'sdb')).toBe('0');
    expect(blockRo(root, 'sdc')).toBe('1');
  });
});

describe('release on Windows', () => {
  // An in-memory registry answering reg.exe's commands the way reg.exe prints them (the parser
  // is checked against Wine's reg.exe in test/e2e/windows-wine.test.ts), and pnputil's listing
  // replayed from its fixture with live statuses.
  const STICK = 'USB\\VID_0781&PID_5581\\4C530001230101109473';
  let registry: Map<string, Map<string, string | number>>;
  let pnputil: ReturnType<typeof createPnputilReplay>;
  let disabled: Set<string>;
  let calls: string[][];

  async function runner(cmd: string, args: string[]): Promise<{ stdout: string; code: number }> {
    calls.push([cmd, ...args]);
    if (cmd === 'reg') {
      const [verb, key = ''] = args;
      const k = key.replace(/^HKLM/i, 'HKEY_LOCAL_MACHINE');
      if (verb === 'query') {
        const keys = [...registry.keys()].filter((x) => x.toLowerCase() === k.toLowerCase() || x.toLowerCase().startsWith(`${k.toLowerCase()}\\`));
        if (keys.length === 0) return { stdout: 'ERROR: The system was unable to find the specified registry key or value.\r\n', code: 1 };
        const out = keys.map(
          (x) =>
            `\r\n${x}\r\n${[...registry.get(x)!].map(([n, v]) => `    ${n}    ${typeof v === 'number' ? `REG_DWORD    0x${v.toString(16)}` : `REG_SZ    ${v}`}`).join('\r\n')}\r\n`,
        );
        return { stdout: out.join(''), code: 0 };
      }
      const name = args[args.indexOf('/v') + 1]!;
      if (verb === 'add') {
        const type = args[args.indexOf('/t') + 1];
        const data = args[args.indexOf('/d') + 1]!;
        if (!registry.has(k)) registry.set(k, new Map());
        registry.get(k)!.set(name, type === 'REG_DWORD' ? Number(data) : data);
        return { stdout: '', code: 0 };
      }
      if (verb === 'delete') {
        registry.get(k)?.delete(name);
        if (registry.get(k)?.size === 0) registry.delete(k);
        return { stdout: '', code: 0 };
      }
    }
    if (cmd === 'pnputil') return pnputil.run(args);
    return { stdout: '', code: 1 };
  }

  beforeEach(() => {
    registry = new Map();
    pnputil = createPnputilReplay();
    disabled = pnputil.disabled;
    calls = [];
  });

  it('deletes the removable-storage policy and switches the sticks it disabled back on', async () => {
    const enforcer = createWindowsEnforcer({ runner });
    await createReconciler({ store, enforcer, getPolicy: () => policy('block'), getExceptions: () => [], logger: silentLogger }).reconcile('test');
    expect(registry.get(`HKEY_LOCAL_MACHINE\\${STORAGE_KEY.slice(5)}`)?.get('Deny_All')).toBe(1);
    expect(disabled.has(STICK)).toBe(true);

    // The uninstaller's own process: a new enforcer that never disabled anything itself.
    calls = [];
    const result = await releaseControls({ enforcer: createWindowsEnforcer({ runner }), platform: 'win32', runner });
    expect(result.failures).toEqual([]);
    expect(
      [...registry.keys()].filter((k) => k.toLowerCase().includes('removablestoragedevices') || k.toLowerCase().includes(INSTALL_KEY.slice(5).toLowerCase())),
    ).toEqual([]);
    expect(disabled.size).toBe(0);
    expect(result.reEnabled).toContain(STICK);
    // Keyboards were never touched.
    expect(calls.filter((c) => c[0] === 'pnputil' && c[1] === '/enable-device').map((c) => c[2])).not.toContain('USB\\VID_046D&PID_C31C\\5&1a2b3c4d&0&1');
  });

  it('reports what it could not restore', async () => {
    registry.set(`HKEY_LOCAL_MACHINE\\${STORAGE_KEY.slice(5)}`, new Map([['Deny_All', 1]]));
    const failing = async (cmd: string, args: string[]) => (cmd === 'reg' && args[0] === 'delete' ? { stdout: '', code: 5 } : runner(cmd, args));
    const result = await releaseControls({ enforcer: createWindowsEnforcer({ runner: failing }), platform: 'win32', runner: failing });
    expect(result.failures.join('\n')).toMatch(/reg delete .*Deny_All exited 5/);
  });
});
