import type { UsbDevice } from '../../shared';
import { execRunner, type CommandRunner } from '../os/command';
import { createLinuxEnforcer, type EnforcerMemory } from './linux';
import { createMacEnforcer } from './macos';
import { createWindowsEnforcer } from './windows';
import type { Enforcer } from './types';

export * from './evaluate';
export * from './hints';
export * from './linux';
export * from './reconciler';
export * from './release';
export * from './service';
export * from './types';
export * from './windows';

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
 * stopped is still recorded as drift.
 */
export function createEnforcer(opts: { platform: NodeJS.Platform; systemRoot: string; runner?: CommandRunner; memory?: EnforcerMemory }): Enforcer {
  const runner = opts.runner ?? execRunner;
  if (opts.platform === 'linux') return createLinuxEnforcer({ systemRoot: opts.systemRoot, runner, ...(opts.memory ? { memory: opts.memory } : {}) });
  if (opts.platform === 'win32') return createWindowsEnforcer({ runner });
  if (opts.platform === 'darwin') return createMacEnforcer({ runner });
  return createUnsupportedEnforcer(opts.platform);
}
export * from './local-allow';
export * from './macos';
