import { execFile } from 'node:child_process';

/**
 * Runs an OS tool and gives its stdout and exit code; never rejects. Every enforcer, login source
 * and probe that runs a tool takes one, so tests replay the recorded output of the real tool.
 */
export type CommandRunner = (command: string, args: string[]) => Promise<{ stdout: string; code: number }>;

/** The real runner: `execFile`, no shell, output up to 64 MiB. */
export const execRunner: CommandRunner = (command, args) =>
  new Promise((resolve) => {
    execFile(command, args, { maxBuffer: 64 * 1024 * 1024, windowsHide: true, encoding: 'utf8' }, (err, stdout) => {
      resolve({ stdout: stdout ?? '', code: err ? (typeof err.code === 'number' ? err.code : 1) : 0 });
    });
  });
