import fs from 'node:fs';
import path from 'node:path';
import type { RemovableMediaMode, UsbDevice, UsbInterface } from '../../shared';
import type { CommandRunner } from '../os/command';
import { createLinuxUsbReader, readAttr, resolveEntry, usbDevicesDir, type UsbReader } from '../os/usb';
import { isRemovableMediaInterface } from './evaluate';
import type { DeviceDecision, Drift, Enforcer, EnforcerPass } from './types';

export const UDEV_RULES_FILE = path.join('etc', 'udev', 'rules.d', '70-mamori-usb.rules');

const PROBE = 'RUN+="/bin/sh -c \'echo %k > /sys/bus/usb/drivers_probe\'"';
const NEW_INTERFACE = 'ACTION=="add", SUBSYSTEM=="usb", ENV{DEVTYPE}=="usb_interface"';

/**
 * The udev rules that make blocking independent of the agent being alive. Root hubs authorize no
 * new interface by default (set again as hubs appear), and udev authorizes and probes every
 * interface that cannot be removable media as it is added, so keyboards, mice and card readers
 * work even with the agent stopped (a plain `1` binds no driver on 6.1, hence the probe).
 *
 * Vendor-specific interfaces (class ff) are split: Android phones expose MTP as an ff interface
 * named "MTP", so udev never authorizes an ff interface whose name contains MTP or "media
 * transfer" in any case (the agent decides on those); other ff interfaces (USB-serial and network adapters, a phone's ADB)
 * are authorized, including ones without a name, where the name test cannot run. The agent's own
 * test (`isRemovableMediaInterface`) is narrower (MTP as a word), so what udev leaves alone and
 * is not MTP still comes up at the agent's next pass; nothing udev authorizes is media.
 *
 * Under `readonly`, USB block devices are made read-only as they appear, before anything can
 * mount them (RUN runs before the event reaches udisks or a desktop's automounter). That covers
 * allowlisted sticks too; the agent takes the flag back off those.
 */
export function udevRules(mode: 'block' | 'readonly'): string {
  const lines = [
    '# Mamori: removable media control. Written by the Mamori agent; hand edits are undone.',
    'ACTION=="add", SUBSYSTEM=="usb", ENV{DEVTYPE}=="usb_device", TEST=="interface_authorized_default", ATTR{interface_authorized_default}="0"',
    `${NEW_INTERFACE}, ATTR{bInterfaceClass}!="08", ATTR{bInterfaceClass}!="06", ATTR{bInterfaceClass}!="ff", ATTR{authorized}="1", ${PROBE}`,
    `${NEW_INTERFACE}, ATTR{bInterfaceClass}=="ff", TEST!="interface", ATTR{authorized}="1", ${PROBE}`,
    `${NEW_INTERFACE}, ATTR{bInterfaceClass}=="ff", ATTR{interface}!="*[Mm][Tt][Pp]*|*[Mm][Ee][Dd][Ii][Aa] [Tt][Rr][Aa][Nn][Ss][Ff][Ee][Rr]*", ATTR{authorized}="1", ${PROBE}`,
  ];
  if (mode === 'readonly') {
    lines.push('ACTION=="add", SUBSYSTEM=="block", ENV{ID_BUS}=="usb", RUN+="/sbin/blockdev --setro $env{DEVNAME}"');
  }
  return `${lines.join('\n')}\n`;
}

function write(file: string, value: string): string | null {
  try {
    fs.writeFileSync(file, value);
    return null;
  } catch (err) {
    return `${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`;
  }
}

/** Where the enforcer keeps what it set, across agent restarts (the agent's store). */
export interface EnforcerMemory {
  load(): string | null;
  save(json: string): void;
}

/** What a whole device looked like before Mamori deauthorized it (its interfaces go with it). */
type RememberedInterfaces = UsbInterface[];

const identity = (d: UsbDevice) => `${d.port} ${d.vendorId}:${d.productId}:${d.serial}`;

/**
 * Linux: USB interface authorization in sysfs plus a udev rules file, under a system root.
 * Remembers what it set (in `memory`, for this boot), so a value found changed later, even by
 * someone acting while the agent was stopped, is reported as drift. A reboot resets the kernel's
 * controls, so the memory of an earlier boot is dropped rather than reported.
 *
 * `runner` runs `blockdev` (read-only) and `udevadm control --reload`; tests pass one that flips
 * the fixture's `ro` file instead.
 */
export function createLinuxEnforcer(opts: { systemRoot: string; runner: CommandRunner; memory?: EnforcerMemory; usb?: UsbReader }): Enforcer {
  const root = opts.systemRoot;
  const usb = opts.usb ?? createLinuxUsbReader(root);
  const onRealRoot = path.resolve(root) === path.parse(path.resolve(root)).root;
  const bootId = readAttr(path.join(root, 'proc', 'sys', 'kernel', 'random'), 'boot_id').trim();
  const saved = (() => {
    try {
      const json = JSON.parse(opts.memory?.load() ?? 'null') as { bootId: string; set: Record<string, string>; devices?: Record<string, RememberedInterfaces> } | null;
      return json && json.bootId === bootId ? json : null;
    } catch {
      return null;
    }
  })();
  const setByUs = new Map<string, string>(Object.entries(saved?.set ?? {}));
  // Devices switched off whole (kernels without interface authorization), by identity.
  const offDevices = new Map<string, RememberedInterfaces>(Object.entries(saved?.devices ?? {}));

  const st: LinuxEnforcerState = { root, runner: opts.runner, onRealRoot, setByUs, offDevices, adopted: false, reloadUdev: false };

  return {
    async devices() {
      const devices = await usb.devices();
      // A device Mamori switched off whole has no interfaces in sysfs: give it back the ones it had.
      for (const d of devices) {
        const remembered = d.authorized === false && d.interfaces.length === 0 ? st.offDevices.get(identity(d)) : undefined;
        if (remembered) d.interfaces = remembered.map((i) => ({ ...i }));
      }
      return devices;
    },

    async enforce(mode, decisions: DeviceDecision[]) {
      const pass: EnforcerPass = { drift: [], failures: [], changed: false };
      try {
        return await enforcePass(st, pass, mode, decisions);
      } finally {
        if (pass.changed || st.adopted) opts.memory?.save(JSON.stringify({ bootId, set: Object.fromEntries(setByUs), devices: Object.fromEntries(offDevices) }));
        st.adopted = false;
      }
    },
  };
}

/** What one Linux enforcer keeps between passes: what it set (by control), devices it switched off whole. */
interface LinuxEnforcerState {
  root: string;
  runner: CommandRunner;
  onRealRoot: boolean;
  setByUs: Map<string, string>;
  offDevices: Map<string, RememberedInterfaces>;
  /** Set when the memory gained a value without a write, so it is saved all the same. */
  adopted: boolean;
  reloadUdev: boolean;
}

function adopt(st: LinuxEnforcerState, control: string, value: string): void {
  if (st.setByUs.get(control) === value) return;
  st.setByUs.set(control, value);
  st.adopted = true;
}

function ensure(st: LinuxEnforcerState, pass: EnforcerPass, control: string, file: string, desired: string, device?: UsbDevice, after?: () => void): void {
  const found = readAttr(path.dirname(file), path.basename(file)).trim();
  if (found === desired) {
    // Already as wanted (a stick kept at 0 by the st.root hub's default): Mamori owns the value
    // from now on, so a hand change to it is drift like any other.
    adopt(st, control, desired);
    return;
  }
  if (st.setByUs.get(control) === desired) pass.drift.push({ control, expected: desired, found, ...(device ? { device } : {}) });
  const error = write(file, desired);
  if (error) {
    pass.failures.push(error);
    return;
  }
  pass.changed = true;
  after?.();
  const readBack = readAttr(path.dirname(file), path.basename(file)).trim();
  if (readBack !== desired) pass.failures.push(`${control} reads ${readBack || 'nothing'} after writing ${desired}`);
  else st.setByUs.set(control, desired);
}

function probe(st: LinuxEnforcerState, pass: EnforcerPass, name: string): void {
  // Writing 1 to `authorized` does not bind a driver (kernel 6.1); asking for a probe does.
  const error = write(path.join(usbDevicesDir(st.root), '..', 'drivers_probe'), name);
  if (error) pass.failures.push(error);
}

function rulesFile(st: LinuxEnforcerState, pass: EnforcerPass, mode: RemovableMediaMode): void {
  const file = path.join(st.root, UDEV_RULES_FILE);
  const desired = mode === 'block' || mode === 'readonly' ? udevRules(mode) : null;
  let found: string | null = null;
  try {
    found = fs.readFileSync(file, 'utf8');
  } catch {
    found = null;
  }
  if (found === desired) {
    if (desired !== null) adopt(st, 'udev rules', desired);
    return;
  }
  const control = `udev rules ${UDEV_RULES_FILE}`;
  const ours = st.setByUs.get('udev rules');
  // Mamori's own file edited or removed while it should be in force: that disables blocking
  // for every future device, so it is tampering, not one device's setting.
  if (ours !== undefined && ours === (desired ?? '')) {
    pass.drift.push({ control, expected: desired ? 'Mamori rules' : 'absent', found: found === null ? 'absent' : 'edited', tamper: desired !== null });
  }
  try {
    if (desired === null) fs.rmSync(file, { force: true });
    else {
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, desired, { mode: 0o644 });
    }
    st.setByUs.set('udev rules', desired ?? '');
    pass.changed = true;
  } catch (err) {
    pass.failures.push(`${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    return;
  }
  // udevd notices a changed rules file only when its next event arrives, up to 3 s later; a
  // stick plugged in between would meet the old rules. On the real system st.root, reload now.
  if (st.onRealRoot) st.reloadUdev = true;
}

/** The block devices (`sdb`, …) that sit below a USB interface. */
function blockDevicesOf(root: string, interfaceDir: string): string[] {
  const blockDir = path.join(root, 'sys', 'block');
  let names: string[];
  try {
    names = fs.readdirSync(blockDir);
  } catch {
    return [];
  }
  return names.filter((name) => {
    try {
      return fs.realpathSync(path.join(blockDir, name)).startsWith(`${interfaceDir}${path.sep}`);
    } catch {
      return false;
    }
  });
}

async function readOnly(st: LinuxEnforcerState, pass: EnforcerPass, interfaceDir: string, wantRo: boolean, mode: RemovableMediaMode, device: UsbDevice): Promise<void> {
  for (const name of blockDevicesOf(st.root, interfaceDir)) {
    const dir = path.join(st.root, 'sys', 'block', name);
    const found = readAttr(dir, 'ro').trim();
    const desired = wantRo ? '1' : '0';
    const control = `block device ${name} read-only`;
    if (found === desired) {
      // Read-only already, by Mamori's udev rule at add: Mamori's to keep and to undo later.
      if (wantRo) adopt(st, control, desired);
      continue;
    }
    // A read-only flag is taken off only where Mamori put it: by its own hand, or (under
    // `readonly`, on a stick the policy lets write) by its udev rule, which sets it on every USB
    // disk as it appears. One set by someone else is theirs.
    if (!wantRo && st.setByUs.get(control) !== '1' && mode !== 'readonly') continue;
    if (st.setByUs.get(control) === desired) pass.drift.push({ control, expected: desired, found, device });
    const result = await st.runner('blockdev', [wantRo ? '--setro' : '--setrw', path.join(st.root, 'dev', name)]);
    pass.changed = true;
    if (result.code !== 0 || readAttr(dir, 'ro').trim() !== desired) pass.failures.push(`${control}: blockdev ${wantRo ? '--setro' : '--setrw'} exited ${result.code}`);
    else st.setByUs.set(control, desired);
  }
}

/** Whole-device control, for kernels without interface authorization (before 4.4). */
function deviceLevel(st: LinuxEnforcerState, pass: EnforcerPass, device: UsbDevice, deviceDir: string, blockIt: boolean): void {
  const control = `${device.port} authorized`;
  if (blockIt) {
    // Only when that spares no keyboard or card reader; otherwise enforcement is degraded and
    // says so rather than locking someone out.
    if (!device.interfaces.every((i) => isRemovableMediaInterface(i))) {
      pass.failures.push(`${device.port}: this kernel cannot block one interface of a composite device`);
      return;
    }
    // The kernel drops a deauthorized device's interfaces; remember them, so the device is
    // still known as storage when the policy later allows it.
    if (!st.offDevices.has(identity(device))) {
      st.offDevices.set(identity(device), device.interfaces.map((i) => ({ ...i, authorized: false, driver: '' })));
      st.adopted = true;
    }
    ensure(st, pass, control, path.join(deviceDir, 'authorized'), '0', device);
  } else if (device.authorized === false && st.offDevices.has(identity(device))) {
    // Authorizing a whole device configures it and binds its drivers by itself.
    ensure(st, pass, control, path.join(deviceDir, 'authorized'), '1', device);
    if (readAttr(deviceDir, 'authorized').trim() === '1') {
      st.offDevices.delete(identity(device));
      st.adopted = true;
    }
  }
}

async function enforcePass(st: LinuxEnforcerState, pass: EnforcerPass, mode: RemovableMediaMode, decisions: DeviceDecision[]): Promise<EnforcerPass> {
  const blocking = mode === 'block' || mode === 'readonly';
  rulesFile(st, pass, mode);
  if (st.reloadUdev) {
    st.reloadUdev = false;
    // Not a failure of enforcement when it fails: the st.root hubs' default still holds the line.
    await st.runner('udevadm', ['control', '--reload']);
  }
  for (const { device, evaluation } of decisions) {
    const deviceDir = resolveEntry(st.root, device.port);
    if (!deviceDir) continue;
    if (device.rootHub && fs.existsSync(path.join(deviceDir, 'interface_authorized_default'))) {
      ensure(st, pass, `${device.port} interface_authorized_default`, path.join(deviceDir, 'interface_authorized_default'), blocking ? '0' : '1');
    }
    const media = new Set(evaluation.interfaces);
    const blockIt = evaluation.decision === 'block' && media.size > 0;
    if (device.authorized === false && st.offDevices.has(identity(device))) {
      deviceLevel(st, pass, device, deviceDir, blockIt);
      continue;
    }
    let wholeDevice = false;
    for (const iface of device.interfaces) {
      const dir = resolveEntry(st.root, iface.name);
      if (!dir) continue;
      const isMedia = media.has(iface.name);
      if (!fs.existsSync(path.join(dir, 'authorized'))) {
        if (isMedia && blockIt) wholeDevice = true;
        continue;
      }
      const desired = isMedia && blockIt ? '0' : '1';
      ensure(st, pass, `${iface.name} authorized`, path.join(dir, 'authorized'), desired, device, desired === '1' ? () => probe(st, pass, iface.name) : undefined);
      if (isMedia) await readOnly(st, pass, dir, evaluation.decision === 'readonly', mode, device);
    }
    if (wholeDevice) deviceLevel(st, pass, device, deviceDir, true);
  }
  return pass;
}

export type { Drift };
