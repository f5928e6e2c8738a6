import type { CommandRunner } from './command';
import type { ConsoleUser } from './session';

/** macOS: the owner of `/dev/console` is the user at the console (`root` at the login window). */
export function parseConsoleStat(stdout: string): ConsoleUser | null {
  const m = /^(\d+) (\S+)\s*$/.exec(stdout.trim());
  if (!m || m[1] === '0') return null;
  return { key: `uid:${m[1]}`, user: m[2]! };
}

export async function darwinConsoleUser(run: CommandRunner): Promise<ConsoleUser | null> {
  const { stdout, code } = await run('stat', ['-f', '%u %Su', '/dev/console']);
  return code === 0 ? parseConsoleStat(stdout) : null;
}
