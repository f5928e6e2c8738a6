import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INSTALL_KEY, READONLY_CLASSES, STORAGE_KEY, createReconciler, createWindowsEnforcer, parseRegQuery } from '../../src/agent/enforcement';
import { silentLogger } from '../../src/agent/logger';
import { openEventStore, type EventStore } from '../../src/agent/store';
import { PolicyInput, type Policy } from '../../src/shared';
import { createPnputilReplay } from '../fixtures/windows/enforcement/pnputil';

// The Windows enforcer's registry commands against a real implementation of reg.exe: Wine's
// (Debian's wine64, BUILD-NOTES.md). pnputil does not exist in Wine, so its listing is replayed
// from the fixture, with the status of each device following the enable/disable calls.

const WINE = '/usr/lib/wine/wine64';
const WINESERVER = '/usr/lib/wine/wineserver';
const hasWine = fs.existsSync(WINE) && fs.existsSync(WINESERVER);
const title = hasWine
  ? "the Windows enforcer against Wine's reg.exe"
  : "the Windows enforcer against Wine's reg.exe (skipped: wine64 is not installed; `apt-get install -y --no-install-recommends wine64`, which .ci/run does)";

const STICK = 'USB\\VID_0781&PID_5581\\4C530001230101109473';

let dir = '';
let store: EventStore;
let wineserver: ChildProcess | undefined;
const pnputil = createPnputilReplay();
const disabled = pnputil.disabled;
const wineEnv = () => ({ ...process.env, WINEPREFIX: path.join(dir, 'prefix'), WINEDEBUG: '-all' });

function reg(args: string[]): Promise<{ stdout: string; code: number }> {
  return new Promise((resolve) => {
    execFile(WINE, ['reg', ...args], { env: wineEnv(), encoding: 'utf8' }, (err, stdout) =>
      resolve({ stdout, code: err ? (typeof err.code === 'number' ? err.code : 1) : 0 }),
    );
  });
}

/** The enforcer's command runner: reg through Wine, pnputil replayed with live statuses. */
async function runner(cmd: string, args: string[]): Promise<{ stdout: string; code: number }> {
  if (cmd === 'reg') return reg(args);
  if (cmd !== 'pnputil') return { stdout: '', code: 1 };
  return pnputil.run(args);
}

function policy(mode: Policy['removableMedia']['mode'], allow: unknown[] = [], version = 1): Policy {
  return { ...PolicyInput.parse({ segment: 'lgwan', removableMedia: { mode, allow } }), version, issuedAt: '2026-11-24T00:00:00.000Z', signature: 's' };
}

const query = async (key: string) => parseRegQuery((await reg(['query', key, '/s'])).stdout);

describe.skipIf(!hasWine)(title, () => {
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mamori-wine-'));
    store = openEventStore(path.join(dir, 'agent.db'));
    // The first call creates the prefix (several seconds, once); a persistent wineserver then
    // makes each reg.exe call take a tenth of a second.
    execFileSync(WINE, ['reg', 'query', 'HKLM\\Software'], { env: wineEnv(), stdio: 'ignore' });
    wineserver = spawn(WINESERVER, ['-p', '-f'], { env: wineEnv(), stdio: 'ignore' });
  }, 120_000);

  afterAll(async () => {
    store?.close();
    if (wineserver) {
      await new Promise((r) => execFile(WINESERVER, ['-k'], { env: wineEnv() }, r));
      wineserver.kill();
    }
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('reads what reg.exe prints, and a missing key as no values', async () => {
    const missing = await reg(['query', STORAGE_KEY, '/s']);
    expect(missing.code).toBe(1);
    expect(parseRegQuery(missing.stdout).size).toBe(0);
  });

  it('writes, reads back, repairs and removes the removable-storage policy per mode', async () => {
    let current = policy('readonly');
    const r = createReconciler({ store, enforcer: createWindowsEnforcer({ runner }), getPolicy: () => current, getExceptions: () => [], logger: silentLogger });
    expect((await r.reconcile('start')).state).toBe('active');
    const readonly = await query(STORAGE_KEY);
    expect(READONLY_CLASSES.map((guid) => readonly.get(`${STORAGE_KEY}\\${guid}\\Deny_Write`))).toEqual([1, 1, 1, 1]);
    expect(readonly.has(`${STORAGE_KEY}\\Deny_All`)).toBe(false);
    // The phone cannot be made read-only through its driver stack here: disabled, like on Linux.
    expect([...disabled]).toEqual(['USB\\VID_04E8&PID_6860\\R58M12345AB']);

    current = policy('block', [{ vendorId: '0781', productId: '5581', serial: '4C530001230101109473' }], 2);
    expect((await r.reconcile('policy')).state).toBe('active');
    const layered = await query(INSTALL_KEY);
    expect(layered.get(`${INSTALL_KEY}\\AllowInstanceIDs\\1`)).toBe(STICK);
    expect(layered.get(`${INSTALL_KEY}\\DenyDeviceIDs\\1`)).toBe('USB\\Class_08');
    expect(layered.get(`${INSTALL_KEY}\\AllowDenyLayered`)).toBe(1);
    expect([...(await query(STORAGE_KEY)).values()]).toEqual([]);
    expect(disabled.has(STICK)).toBe(false);
    expect(disabled.has('USB\\VID_090C&PID_1000\\6&2B5E1A0F&0&2')).toBe(true); // the serial-less stick

    // A value removed by hand with reg.exe is put back at the next pass, and recorded.
    const before = store.head().seq;
    expect((await reg(['delete', INSTALL_KEY, '/v', 'DenyDeviceIDs', '/f'])).code).toBe(0);
    await r.reconcile('timer');
    expect((await query(INSTALL_KEY)).get(`${INSTALL_KEY}\\DenyDeviceIDs`)).toBe(1);
    expect(store.readSince(before).map((e) => [e.type, (e.payload as { control?: string }).control])).toEqual([
      ['policy.drift_corrected', `${INSTALL_KEY}\\DenyDeviceIDs`],
    ]);
    const quiet = store.head().seq;
    expect(await r.reconcile('timer')).toEqual({ state: 'active', changed: false });
    expect(store.head().seq).toBe(quiet);

    current = policy('audit', [], 3);
    expect((await r.reconcile('policy')).state).toBe('audit');
    expect((await query(STORAGE_KEY)).size + (await query(INSTALL_KEY)).size).toBe(0);
    expect(disabled.size).toBe(0);
  }, 60_000); // about 40 reg.exe calls: seconds, more when the other suites share the CPU
});
