import fs from 'node:fs';
import path from 'node:path';
import type { RemovableMediaMode, UsbDevice } from '../../shared';
import { readAttr, readLinuxUsbDevices, resolveEntry, usbDevicesDir } from '../inventory/linux-usb';
import type { CommandRunner } from '../logins/windows';
import { isRemovableMediaInterface } from './evaluate';
import type { DeviceDecision, Drift, Enforcer, EnforcerPass } from './types';

export const UDEV_RULES_FILE = path.join('etc', 'udev', 'rules.d', '70-mamori-usb.rules');

/**
 * The udev rules that make blocking independent of the agent being alive: root hubs authorize no
 * new interface by default, and udev authorizes and probes every interface that cannot be
 * removable media as it appears, so keyboards, mice and card readers work even with the agent
 * stopped. Vendor-specific interfaces (ff) are left to the agent, which authorizes those that do
 * not name themselves MTP. Under `readonly`, USB block devices are made read-only as they appear,
 * before anything can mount them.
 */
export function udevRules(mode: 'block' | 'readonly'): string {
  const lines = [
    '# Mamori: removable media control. Written by the Mamori agent; hand edits are undone.',
    'ACTION=="add", SUBSYSTEM=="usb", ENV{DEVTYPE}=="usb_device", TEST=="interface_authorized_default", ATTR{interface_authorized_default}="0"',
    'ACTION=="add", SUBSYSTEM=="usb", ENV{DEVTYPE}=="usb_interface", ATTR{bInterfaceClass}!="08", ATTR{bInterfaceClass}!="06", ATTR{bInterfaceClass}!="ff", ATTR{authorized}="1", RUN+="/bin/sh -c \'echo %k > /sys/bus/usb/drivers_probe\'"',
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

/**
 * Linux: USB interface authorization in sysfs plus a udev rules file, under a system root.
 * Remembers what it set (in `memory`, for this boot), so a value found changed later, even by
 * someone acting while the agent was stopped, is reported as drift. A reboot resets the kernel's
 * controls, so the memory of an earlier boot is dropped rather than reported.
 */
export function createLinuxEnforcer(opts: { systemRoot: string; runner: CommandRunner; memory?: EnforcerMemory }): Enforcer {
  const root = opts.systemRoot;
  const bootId = readAttr(path.join(root, 'proc', 'sys', 'kernel', 'random'), 'boot_id').trim();
  const remembered = (() => {
    try {
      const saved = JSON.parse(opts.memory?.load() ?? 'null') as { bootId: string; set: Record<string, string> } | null;
      return saved && saved.bootId === bootId ? Object.entries(saved.set) : [];
    } catch {
      return [];
    }
  })();
  const setByUs = new Map<string, string>(remembered);

  // Set when the memory gained a value without a write, so it is saved all the same.
  let adopted = false;

  function ensure(pass: EnforcerPass, control: string, file: string, desired: string, device?: UsbDevice, after?: () => void): void {
    const found = readAttr(path.dirname(file), path.basename(file)).trim();
    if (found === desired) {
      // Already as wanted (a stick kept at 0 by the root hub's default): Mamori owns the value
      // from now on, so a hand change to it is drift like any other.
      if (setByUs.get(control) !== desired) {
        setByUs.set(control, desired);
        adopted = true;
      }
      return;
    }
    if (setByUs.get(control) === desired) pass.drift.push({ control, expected: desired, found, ...(device ? { device } : {}) });
    const error = write(file, desired);
    if (error) {
      pass.failures.push(error);
      return;
    }
    pass.changed = true;
    after?.();
    const readBack = readAttr(path.dirname(file), path.basename(file)).trim();
    if (readBack !== desired) pass.failures.push(`${control} reads ${readBack || 'nothing'} after writing ${desired}`);
    else setByUs.set(control, desired);
  }

  function probe(pass: EnforcerPass, name: string): void {
    // Writing 1 to `authorized` does not bind a driver (kernel 6.1); asking for a probe does.
    const error = write(path.join(usbDevicesDir(root), '..', 'drivers_probe'), name);
    if (error) pass.failures.push(error);
  }

  function rulesFile(pass: EnforcerPass, mode: RemovableMediaMode): void {
    const file = path.join(root, UDEV_RULES_FILE);
    const desired = mode === 'block' || mode === 'readonly' ? udevRules(mode) : null;
    let found: string | null = null;
    try {
      found = fs.readFileSync(file, 'utf8');
    } catch {
      found = null;
    }
    if (found === desired) return;
    const control = 'udev rules';
    const ours = setByUs.get(control);
    if (ours !== undefined && ours === (desired ?? '')) pass.drift.push({ control: `${control} ${UDEV_RULES_FILE}`, expected: desired ? 'Mamori rules' : 'absent', found: found === null ? 'absent' : 'edited' });
    try {
      if (desired === null) fs.rmSync(file, { force: true });
      else {
        fs.mkdirSync(path.dirname(file), { recursive: true });
        fs.writeFileSync(file, desired, { mode: 0o644 });
      }
      setByUs.set(control, desired ?? '');
      pass.changed = true;
    } catch (err) {
      pass.failures.push(`${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      return;
    }
    // udevd notices a changed rules file only when its next event arrives, up to 3 s later; a
    // stick plugged in between would meet the old rules. On the real system root, reload now.
    if (path.resolve(root) === path.parse(path.resolve(root)).root) reloadUdev = true;
  }

  let reloadUdev = false;

  /** The block devices (`sdb`, …) that sit below a USB interface. */
  function blockDevicesOf(interfaceDir: string): string[] {
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

  async function readOnly(pass: EnforcerPass, interfaceDir: string, wantRo: boolean, device: UsbDevice): Promise<void> {
    for (const name of blockDevicesOf(interfaceDir)) {
      const dir = path.join(root, 'sys', 'block', name);
      const found = readAttr(dir, 'ro').trim();
      const desired = wantRo ? '1' : '0';
      const control = `block device ${name} read-only`;
      if (found === desired) continue;
      // Only undo a read-only flag Mamori set; one set by someone else is theirs.
      if (!wantRo && setByUs.get(control) !== '1') continue;
      if (setByUs.get(control) === desired) pass.drift.push({ control, expected: desired, found, device });
      const result = await opts.runner('blockdev', [wantRo ? '--setro' : '--setrw', path.join(root, 'dev', name)]);
      pass.changed = true;
      if (result.code !== 0 || readAttr(dir, 'ro').trim() !== desired) pass.failures.push(`${control}: blockdev exited ${result.code}`);
      else setByUs.set(control, desired);
    }
  }

  return {
    async devices() {
      return readLinuxUsbDevices(root);
    },

    async enforce(mode, decisions: DeviceDecision[]) {
      const pass: EnforcerPass = { drift: [], failures: [], changed: false };
      try {
        return await enforcePass(pass, mode, decisions);
      } finally {
        if (pass.changed || adopted) opts.memory?.save(JSON.stringify({ bootId, set: Object.fromEntries(setByUs) }));
        adopted = false;
      }
    },
  };

  async function enforcePass(pass: EnforcerPass, mode: RemovableMediaMode, decisions: DeviceDecision[]): Promise<EnforcerPass> {
    const blocking = mode === 'block' || mode === 'readonly';
    rulesFile(pass, mode);
    if (reloadUdev) {
      reloadUdev = false;
      // Not a failure of enforcement when it fails: the root hubs' default still holds the line.
      await opts.runner('udevadm', ['control', '--reload']);
    }
    for (const { device, evaluation } of decisions) {
      if (device.rootHub) {
        const dir = resolveEntry(root, device.port);
        if (dir && fs.existsSync(path.join(dir, 'interface_authorized_default'))) {
          ensure(pass, `${device.port} interface_authorized_default`, path.join(dir, 'interface_authorized_default'), blocking ? '0' : '1');
        }
      }
      const deviceDir = resolveEntry(root, device.port);
      if (!deviceDir) continue;
      const media = new Set(evaluation.interfaces);
      for (const iface of device.interfaces) {
        const dir = resolveEntry(root, iface.name);
        if (!dir) continue;
        const hasAuth = fs.existsSync(path.join(dir, 'authorized'));
        const isMedia = media.has(iface.name) || (!device.rootHub && isRemovableMediaInterface(iface));
        const desired = isMedia && evaluation.decision === 'block' ? '0' : '1';
        if (hasAuth) {
          ensure(pass, `${iface.name} authorized`, path.join(dir, 'authorized'), desired, device, desired === '1' ? () => probe(pass, iface.name) : undefined);
        } else if (desired === '0') {
          // No interface authorization on this kernel: the whole device, when that spares no
          // keyboard or card reader; otherwise enforcement is degraded and says so.
          if (device.interfaces.every((i) => isRemovableMediaInterface(i))) ensure(pass, `${device.port} authorized`, path.join(deviceDir, 'authorized'), '0', device);
          else pass.failures.push(`${iface.name}: this kernel cannot block one interface of a composite device`);
        }
        if (isMedia && hasAuth) await readOnly(pass, dir, evaluation.decision === 'readonly', device);
      }
      // A whole device Mamori switched off (old kernels) comes back when the policy stops blocking.
      if (!blocking && device.authorized === false && setByUs.get(`${device.port} authorized`) === '0') {
        ensure(pass, `${device.port} authorized`, path.join(deviceDir, 'authorized'), '1', device);
      }
    }
    return pass;
  }
}

export type { Drift };
