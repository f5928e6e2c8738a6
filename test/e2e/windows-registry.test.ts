import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INSTALL_KEY, STORAGE_KEY, createReconciler, createWindowsEnforcer, parseRegQuery } from '../../src/agent/enforcement';
import { silentLogger } from '../../src/agent/logger';
import { openEventStore, type EventStore } from '../../src/agent/store';
import { PolicyInput, type Policy } from '../../src/shared';

/** Debian's wine64 runs Windows' reg.exe against a real registry (BUILD-NOTES.md); CI installs it. */
const WINE = '/usr/lib/wine/wine64';
const hasWine = fs.existsSync(WINE);
if (!hasWine) console.warn('windows-registry: skipped, wine64 is not installed (apt-get install wine64; CI does)');

let dir: string;
let store: EventStore;
const wineEnv = () => ({ ...process.env, WINEPREFIX: path.join(dir, 'prefix'), WINEDEBUG: '-all' });
let wineserver: ChildProcess | undefined;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mamori-wine-'));
  store = openEventStore(path.join(dir, 'agent.db'));
  // A persistent wineserver makes each reg.exe call take a tenth of a second instead of seconds.
  // The prefix has to exist first (its creation takes a few seconds, once).
  if (hasWine) {
    execFileSync(WINE, ['reg', 'query', 'HKLM\\Software'], { env: wineEnv(), stdio: 'ignore' });
    wineserver = spawn('/usr/lib/wine/wineserver', ['-p', '-f'], { env: wineEnv(), stdio: 'ignore' });
  }
});
afterAll(async () => {
  store.close();
  if (wineserver) {
    await new Promise((r) => execFile('/usr/lib/wine/wineserver', ['-k'], { env: wineEnv() }, r));
    wineserver.kill();
  }
  fs.rmSync(dir, { recursive: true, force: true });
});

const PNPUTIL = fs.readFileSync(path.resolve(__dirname, '../fixtures/windows/enforcement/pnputil-enum-connected.txt'), 'utf8');

/** reg through Wine's real reg.exe; pnputil replayed (Wine has none). */
function runner(cmd: string, args: string[]): Promise<{ stdout: string; code: number }> {
  if (cmd === 'pnputil') return Promise.resolve({ stdout: args[0] === '/enum-devices' ? PNPUTIL : '', code: 0 });
  return new Promise((resolve) => {
    execFile(WINE, [cmd, ...args], { env: wineEnv(), encoding: 'utf8' }, (err, stdout) =>
      resolve({ stdout, code: err ? (typeof err.code === 'number' ? err.code : 1) : 0 }),
    );
  });
}

function policy(mode: Policy['removableMedia']['mode'], allow: unknown[] = [], version = 1): Policy {
  return { ...PolicyInput.parse({ segment: 'lgwan', removableMedia: { mode, allow } }), version, issuedAt: '2026-11-24T00:00:00.000Z', signature: 's' };
}

describe.skipIf(!hasWine)("the Windows enforcer against Wine's reg.exe", () => {
  it('writes, reads back and removes the removable-storage policy values per mode', async () => {
    let current = policy('readonly');
    const r = createReconciler({ store, enforcer: createWindowsEnforcer({ runner }), getPolicy: () => current, getExceptions: () => [], logger: silentLogger });
    expect((await r.reconcile('start')).state).toBe('active');
    const query = async (key: string) => parseRegQuery((await runner('reg', ['query', key, '/s'])).stdout);
    const readonly = await query(STORAGE_KEY);
    expect([...readonly.entries()].filter(([, v]) => v === 1).map(([k]) => k.split('\\').slice(-2).join('\\'))).toHaveLength(4);
    expect(readonly.get(`${STORAGE_KEY}\\{53f5630d-b6bf-11d0-94f2-00a0c91efb8b}\\Deny_Write`)).toBe(1);

    current = policy('block', [{ vendorId: '0781', productId: '5581', serial: '4C530001230101109473' }], 2);
    expect((await r.reconcile('policy')).state).toBe('active');
    const layered = await query(INSTALL_KEY);
    expect(layered.get(`${INSTALL_KEY}\\AllowInstanceIDs\\1`)).toBe('USB\\VID_0781&PID_5581\\4C530001230101109473');
    expect([...(await query(STORAGE_KEY)).values()].filter((v) => v === 1)).toHaveLength(0);

    // A value removed by hand is put back at the next pass.
    await runner('reg', ['delete', INSTALL_KEY, '/v', 'DenyDeviceIDs', '/f']);
    await r.reconcile('timer');
    expect((await query(INSTALL_KEY)).get(`${INSTALL_KEY}\\DenyDeviceIDs`)).toBe(1);

    current = policy('audit', [], 3);
    expect((await r.reconcile('policy')).state).toBe('audit');
    expect((await query(STORAGE_KEY)).size + (await query(INSTALL_KEY)).size).toBe(0);
  });
});
