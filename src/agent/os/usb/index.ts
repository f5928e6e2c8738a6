import { execRunner, type CommandRunner } from '../command';
import { createLinuxUsbReader } from './linux';
import { createMacUsbReader } from './macos';
import type { UsbReader } from './types';
import { createWindowsUsbReader } from './windows';

export * from './linux';
export * from './macos';
export * from './types';
export * from './windows';

/**
 * The USB reader of this OS, chosen once: the inventory and the enforcer take the same one.
 * An OS without a reader lists no devices.
 */
export function createUsbReader(opts: { platform: NodeJS.Platform; systemRoot: string; runner?: CommandRunner }): UsbReader {
  const runner = opts.runner ?? execRunner;
  if (opts.platform === 'linux') return createLinuxUsbReader(opts.systemRoot);
  if (opts.platform === 'win32') return createWindowsUsbReader(runner);
  if (opts.platform === 'darwin') return createMacUsbReader(runner);
  return { devices: async () => [] };
}
