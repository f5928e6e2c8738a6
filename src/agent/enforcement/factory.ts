import type { UsbDevice } from '../../shared';
import { execRunner, type CommandRunner } from '../os/command';
import type { UsbReader } from '../os/usb';
import { createLinuxEnforcer, type EnforcerMemory } from './linux';
import { createMacEnforcer } from './macos';
import type { Enforcer } from './types';
import { createWindowsEnforcer } from './windows';

/**
 * An OS whose enforcer this build lacks: it lists devices and reports every pass as failed, so
 * the terminal shows "protection degraded" instead of pretending to protect.
 */
function createUnsupportedEnforcer(platform: string): Enforcer {
  return {
    async devices(): Promise<UsbDevice[]> {
      return [];
    },
    async enforce() {
      return { drift: [], failures: [`removable-media enforcement is not available on ${platform} in this build`], changed: false };
    },
  };
}

/**
 * The enforcer of this OS, chosen once at start-up. `runner` runs the OS tools (blockdev and
 * udevadm; reg and pnputil; diskutil and system_profiler), the real ones by default. `memory`
 * keeps what the Linux enforcer set across agent restarts, so a change made while the agent was
 * stopped is still recorded as drift. `usb` is the OS layer's USB reader the inventory shares
 * (src/agent/os/usb), made from `runner` when absent.
 */
export function createEnforcer(opts: { platform: NodeJS.Platform; systemRoot: string; runner?: CommandRunner; memory?: EnforcerMemory; usb?: UsbReader }): Enforcer {
  const runner = opts.runner ?? execRunner;
  const usb = opts.usb ? { usb: opts.usb } : {};
  if (opts.platform === 'linux') return createLinuxEnforcer({ systemRoot: opts.systemRoot, runner, ...usb, ...(opts.memory ? { memory: opts.memory } : {}) });
  if (opts.platform === 'win32') return createWindowsEnforcer({ runner, ...usb });
  if (opts.platform === 'darwin') return createMacEnforcer({ runner, ...usb });
  return createUnsupportedEnforcer(opts.platform);
}
