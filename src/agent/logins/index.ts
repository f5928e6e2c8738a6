import { execFile } from 'node:child_process';
import { createLinuxLoginSource, type LoginSource, type LoginState } from './linux-source';
import { createMacLoginSource } from './macos';
import { createWindowsLoginSource, type CommandRunner } from './windows';

export * from './linux-source';
export * from './macos';
export * from './utmp';
export * from './windows';

/** Runs an OS tool without a shell, with a size limit on what it prints. */
export const execRunner: CommandRunner = (command, args) =>
  new Promise((resolve) => {
    execFile(command, args, { maxBuffer: 64 * 1024 * 1024, windowsHide: true, encoding: 'utf8' }, (err, stdout) => {
      resolve({ stdout: stdout ?? '', code: err ? (typeof err.code === 'number' ? err.code : 1) : 0 });
    });
  });

/** The login source of this OS, chosen once at start-up. */
export function createLoginSource(opts: { platform: NodeJS.Platform; systemRoot: string; state: LoginState; runner?: CommandRunner }): LoginSource {
  const runner = opts.runner ?? execRunner;
  if (opts.platform === 'win32') return createWindowsLoginSource({ runner, state: opts.state });
  if (opts.platform === 'darwin') return createMacLoginSource({ runner, state: opts.state });
  return createLinuxLoginSource({ systemRoot: opts.systemRoot, state: opts.state });
}
