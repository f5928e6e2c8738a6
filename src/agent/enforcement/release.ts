import type { UsbDevice } from '../../shared';
import type { CommandRunner } from '../os/command';
import { isPseudoSerial, removableInterfaces } from './evaluate';
import type { DeviceDecision, Enforcer } from './types';

/** What giving the OS its controls back did. */
export interface ReleaseResult {
  /** USB devices seen (root hubs included). */
  devices: number;
  /** Devices switched back on with `pnputil /enable-device` (Windows). */
  reEnabled: string[];
  /** Controls that could not be restored. Empty means the OS is as it was before Mamori. */
  failures: string[];
}

function allowed(device: UsbDevice): DeviceDecision {
  return {
    device,
    evaluation: {
      decision: 'allow',
      reason: 'Mamori removed: removable media is the OS default again',
      interfaces: removableInterfaces(device).map((i) => i.name),
      flags: { pseudoSerial: isPseudoSerial(device.serial), missingSerial: device.serial.trim() === '' },
    },
  };
}

/**
 * Gives the OS its removable-media controls back, for an uninstall: one pass of the enforcer in
 * `allow` mode with every device allowed. On Linux that removes the udev rules file, sets every
 * root hub's `interface_authorized_default` back to 1, authorizes and probes the storage
 * interfaces Mamori switched off, and clears the read-only flags Mamori set (those it remembers,
 * hence `memory`); on Windows it deletes Mamori's removable-storage and device-installation policy
 * values. The Windows enforcer only re-enables devices it disabled during its own run, and the
 * service that ran it is gone, so this also re-enables every removable-media device that Windows
 * lists as disabled: a stick Mamori disabled would otherwise stay disabled after the uninstall.
 * macOS has nothing to give back (its control is reactive).
 *
 * Run it with the agent service stopped: a running agent would put the controls back at its next
 * pass.
 */
export async function releaseControls(opts: { enforcer: Enforcer; platform: NodeJS.Platform; runner: CommandRunner }): Promise<ReleaseResult> {
  const failures: string[] = [];
  let devices: UsbDevice[] = [];
  try {
    devices = await opts.enforcer.devices();
  } catch (err) {
    // The device-independent controls (udev rules, registry policy) are still given back below.
    failures.push(`cannot list devices: ${(err as Error).message}`);
  }
  const pass = await opts.enforcer.enforce('allow', devices.map(allowed), []);
  failures.push(...pass.failures);
  const reEnabled: string[] = [];
  if (opts.platform === 'win32') {
    for (const d of devices) {
      if (d.authorized !== false || removableInterfaces(d).length === 0) continue;
      const r = await opts.runner('pnputil', ['/enable-device', d.port]);
      if (r.code === 0) reEnabled.push(d.port);
      else failures.push(`pnputil /enable-device ${d.port} exited ${r.code}`);
    }
  }
  return { devices: devices.length, reEnabled, failures };
}
