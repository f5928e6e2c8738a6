import type { CommandRunner } from '../os/command';
import type { EnforcerMemory } from './linux';
import type { Enforcer } from './types';

/**
 * This OS's enforcer, loading only its own module (the macOS one carries an XML parser): for the
 * start-up pass, which runs before anything else is loaded (docs/design.md#agent-cycle). The
 * service builds its enforcer with `createEnforcer`, which chooses the same way.
 */
export async function loadEnforcer(opts: { platform: NodeJS.Platform; systemRoot: string; runner?: CommandRunner; memory?: EnforcerMemory }): Promise<Enforcer> {
  const runner = opts.runner ?? (await import('../os/command.js')).execRunner;
  if (opts.platform === 'linux') return (await import('./linux.js')).createLinuxEnforcer({ systemRoot: opts.systemRoot, runner, ...(opts.memory ? { memory: opts.memory } : {}) });
  if (opts.platform === 'win32') return (await import('./windows.js')).createWindowsEnforcer({ runner });
  if (opts.platform === 'darwin') return (await import('./macos.js')).createMacEnforcer({ runner });
  return (await import('./factory.js')).createEnforcer(opts);
}
