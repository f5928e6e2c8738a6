import type { AllowEntry, RemovableMediaMode, UsbDevice } from '../../shared';
import type { CommandRunner } from '../os/command';
import { createWindowsUsbReader, type UsbReader } from '../os/usb';
import { isPseudoSerial, isRemovableMediaInterface } from './evaluate';
import type { DeviceDecision, Enforcer, EnforcerPass } from './types';

/** The removable-storage policy key Group Policy writes ("All Removable Storage classes"). */
export const STORAGE_KEY = 'HKLM\\SOFTWARE\\Policies\\Microsoft\\Windows\\RemovableStorageDevices';
/** Device installation restrictions, for allowlists. */
export const INSTALL_KEY = 'HKLM\\SOFTWARE\\Policies\\Microsoft\\Windows\\DeviceInstall\\Restrictions';

/** Device classes whose writes `readonly` denies: removable disks, WPD (two GUIDs), CD/DVD. */
export const READONLY_CLASSES = [
  '{53f5630d-b6bf-11d0-94f2-00a0c91efb8b}',
  '{6AC27878-A6FA-4155-BA85-F98F491D4F33}',
  '{F33FDC04-D1AC-4E8E-9A30-19BBD4B108AE}',
  '{53f56308-b6bf-11d0-94f2-00a0c91efb8b}',
] as const;

/** `KEY\value` → data, as `reg query KEY /s` prints them (DWORDs as numbers). */
export type RegistryValues = Map<string, string | number>;

/** The registry ignores case in key and value names; so do comparisons. */
function byLowerCase(values: RegistryValues): Map<string, { path: string; value: string | number }> {
  return new Map([...values].map(([path, value]) => [path.toLowerCase(), { path, value }]));
}

/**
 * Parses `reg query KEY /s` output: a key line, then indented `name    TYPE    data` lines.
 * Works on Windows' reg.exe and Wine's (CRLF, `0x1` DWORDs).
 */
export function parseRegQuery(output: string): RegistryValues {
  const values: RegistryValues = new Map();
  let key = '';
  for (const raw of output.split(/\r?\n/)) {
    if (!raw.trim()) continue;
    if (/^HKEY_|^HK[A-Z]{2}\\/.test(raw)) {
      key = raw.trim().replace(/^HKEY_LOCAL_MACHINE/i, 'HKLM');
      continue;
    }
    const m = /^\s{2,}(.+?)\s{2,}(REG_[A-Z_]+)\s{2,}(.*)$/.exec(raw) ?? /^\s{2,}(.+?)\s{2,}(REG_[A-Z_]+)\s*$/.exec(raw);
    if (!m || !key) continue;
    const [, name, type, data = ''] = m;
    values.set(`${key}\\${name}`, type === 'REG_DWORD' || type === 'REG_QWORD' ? Number.parseInt(data, 16) : data);
  }
  return values;
}

/** What an allowlist allows on Windows: instance ids (with a serial) and hardware ids (a model). */
export interface WindowsAllow {
  instanceIds: string[];
  deviceIds: string[];
}

/** The registry values a mode wants; names not listed must not exist. */
export function desiredRegistry(mode: RemovableMediaMode, allow: WindowsAllow): RegistryValues {
  const want: RegistryValues = new Map();
  const set = (key: string, name: string, value: string | number) => want.set(`${key}\\${name}`, value);
  const allowing = allow.instanceIds.length + allow.deviceIds.length > 0;
  if (mode === 'block' && !allowing) set(STORAGE_KEY, 'Deny_All', 1);
  if (mode === 'readonly') for (const guid of READONLY_CLASSES) set(`${STORAGE_KEY}\\${guid}`, 'Deny_Write', 1);
  if (mode === 'block' && allowing) {
    // Deny_All would also deny the allowlisted stick: deny mass storage and MTP by compatible id
    // at installation instead, and allow the listed devices on top ("layered" evaluation).
    set(INSTALL_KEY, 'DenyDeviceIDs', 1);
    set(INSTALL_KEY, 'AllowDenyLayered', 1);
    set(`${INSTALL_KEY}\\DenyDeviceIDs`, '1', 'USB\\Class_08');
    set(`${INSTALL_KEY}\\DenyDeviceIDs`, '2', 'USB\\Class_06');
    // Android phones in MTP mode show a vendor-specific interface whose Microsoft OS descriptor
    // gives this compatible id; Windows installs them as WPD devices through it.
    set(`${INSTALL_KEY}\\DenyDeviceIDs`, '3', 'USB\\MS_COMP_MTP');
    if (allow.instanceIds.length) set(INSTALL_KEY, 'AllowInstanceIDs', 1);
    allow.instanceIds.forEach((id, i) => set(`${INSTALL_KEY}\\AllowInstanceIDs`, String(i + 1), id));
    if (allow.deviceIds.length) set(INSTALL_KEY, 'AllowDeviceIDs', 1);
    allow.deviceIds.forEach((id, i) => set(`${INSTALL_KEY}\\AllowDeviceIDs`, String(i + 1), id));
  }
  return want;
}

/**
 * The Windows ids an allowlist names, plus the removable devices allowed right now (an
 * exception). An entry with a serial names one instance (`USB\VID_0781&PID_5581\SERIAL`), one
 * without names the model's hardware id; a pseudo-serial never names an instance.
 */
export function windowsAllow(allow: AllowEntry[], decisions: DeviceDecision[]): WindowsAllow {
  const hw = (a: { vendorId: string; productId: string }) => `USB\\VID_${a.vendorId.toUpperCase()}&PID_${a.productId.toUpperCase()}`;
  const instanceIds = new Set<string>();
  const deviceIds = new Set<string>();
  for (const a of allow) {
    if (a.serial && !isPseudoSerial(a.serial)) instanceIds.add(`${hw(a)}\\${a.serial}`);
    else if (!a.serial) deviceIds.add(hw(a));
  }
  for (const d of decisions) {
    if (d.evaluation.interfaces.length > 0 && d.evaluation.decision === 'allow' && !isPseudoSerial(d.device.serial)) instanceIds.add(d.device.port);
  }
  return { instanceIds: [...instanceIds].sort(), deviceIds: [...deviceIds].sort() };
}

/** The values under Mamori's two policy keys, as `reg query /s` lists them. */
async function readRegistry(run: CommandRunner): Promise<RegistryValues> {
  const values: RegistryValues = new Map();
  for (const key of [STORAGE_KEY, INSTALL_KEY]) {
    // A missing key exits 1 ("unable to find the specified registry key"): no values.
    const { stdout, code } = await run('reg', ['query', key, '/s']);
    if (code === 0) for (const [k, v] of parseRegQuery(stdout)) values.set(k, v);
  }
  return values;
}

/**
 * Brings the registry to what `mode` and the allowlist want, and reads it back. `ours` holds the
 * values Mamori wrote or found as wanted (by lower-cased `KEY\value`), so one changed back by hand is drift.
 */
async function applyRegistry(run: CommandRunner, ours: Map<string, string | number>, pass: EnforcerPass, mode: RemovableMediaMode, decisions: DeviceDecision[], allow: AllowEntry[]): Promise<void> {
  const want = byLowerCase(desiredRegistry(mode, windowsAllow(allow, decisions)));
  const have = byLowerCase(await readRegistry(run));
  const underOurKeys = (k: string) => k.startsWith(`${STORAGE_KEY.toLowerCase()}\\`) || k.startsWith(`${INSTALL_KEY.toLowerCase()}\\`);
  const split = (p: string) => ({ key: p.slice(0, p.lastIndexOf('\\')), name: p.slice(p.lastIndexOf('\\') + 1) });
  for (const [k, { path: p, value }] of want) {
    const found = have.get(k)?.value;
    if (found === value) {
      ours.set(k, value);
      continue;
    }
    if (ours.get(k) === value) pass.drift.push({ control: p, expected: String(value), found: found === undefined ? 'absent' : String(found) });
    const { key, name } = split(p);
    const type = typeof value === 'number' ? 'REG_DWORD' : 'REG_SZ';
    const r = await run('reg', ['add', key, '/v', name, '/t', type, '/d', String(value), '/f']);
    pass.changed = true;
    if (r.code !== 0) pass.failures.push(`reg add ${key} /v ${name} exited ${r.code}`);
  }
  for (const [k, { path: p }] of have) {
    if (want.has(k) || !underOurKeys(k)) continue;
    const { key, name } = split(p);
    const r = await run('reg', ['delete', key, '/v', name, '/f']);
    pass.changed = true;
    ours.delete(k);
    if (r.code !== 0) pass.failures.push(`reg delete ${p} exited ${r.code}`);
  }
  if (!pass.changed) return;
  const check = byLowerCase(await readRegistry(run));
  for (const [k, { path: p, value }] of want) {
    if (check.get(k)?.value !== value) pass.failures.push(`${p} reads ${String(check.get(k)?.value ?? 'nothing')} after writing ${value}`);
    else ours.set(k, value);
  }
  for (const [k, { path: p }] of check) if (!want.has(k) && underOurKeys(k)) pass.failures.push(`${p} is still set after deleting it`);
}

/**
 * Windows: the removable-storage policy values, device installation restrictions for allowlists,
 * and pnputil for devices already present, all through a command runner (reg.exe, pnputil.exe);
 * devices are listed by the OS layer's USB reader, the one the inventory uses.
 * It remembers (for the agent's run) the values it wrote and the devices it disabled, so a value
 * or device someone changed back by hand is reported as drift when it is restored.
 */
export function createWindowsEnforcer(opts: { runner: CommandRunner; usb?: UsbReader }): Enforcer {
  const run = opts.runner;
  const usb = opts.usb ?? createWindowsUsbReader(run);
  const disabledByUs = new Set<string>();
  /** Registry values Mamori wrote or found as wanted, by lower-cased `KEY\value`. */
  const ours = new Map<string, string | number>();

  const listDevices = (): Promise<UsbDevice[]> => usb.devices();

  return {
    devices: listDevices,

    async enforce(mode, decisions, allow = []) {
      const pass: EnforcerPass = { drift: [], failures: [], changed: false };
      await applyRegistry(run, ours, pass, mode, decisions, allow);

      // Policy values stop new devices; a device already present is switched off by pnputil.
      const expectDisabled = new Map<string, boolean>();
      for (const { device, evaluation } of decisions) {
        if (evaluation.interfaces.length === 0 || !device.interfaces.some(isRemovableMediaInterface)) continue;
        const id = device.port;
        if (evaluation.decision === 'block' && device.authorized !== false) {
          // Enabled again by hand (Device Manager, pnputil) after Mamori disabled it.
          if (disabledByUs.has(id)) pass.drift.push({ control: `${id} disabled`, expected: 'disabled', found: 'enabled', device });
          const r = await run('pnputil', ['/disable-device', id]);
          pass.changed = true;
          expectDisabled.set(id, true);
          if (r.code !== 0) pass.failures.push(`pnputil /disable-device ${id} exited ${r.code}`);
        } else if (evaluation.decision === 'block') {
          disabledByUs.add(id);
        } else if (device.authorized === false && disabledByUs.has(id)) {
          const r = await run('pnputil', ['/enable-device', id]);
          pass.changed = true;
          expectDisabled.set(id, false);
          if (r.code !== 0) pass.failures.push(`pnputil /enable-device ${id} exited ${r.code}`);
        }
      }
      if (expectDisabled.size > 0) {
        // Read back: pnputil exits 0 for a device it could not stop until a restart.
        const now = new Map((await listDevices().catch(() => [])).map((d) => [d.port, d.authorized === false]));
        for (const [id, disabled] of expectDisabled) {
          const found = now.get(id);
          if (found === undefined) continue; // unplugged meanwhile
          if (found !== disabled) pass.failures.push(`${id} reads ${found ? 'disabled' : 'enabled'} after pnputil /${disabled ? 'disable' : 'enable'}-device`);
          else if (disabled) disabledByUs.add(id);
          else disabledByUs.delete(id);
        }
      }
      return pass;
    },
  };
}
