import type { CommandRunner } from './command';
import type { ConsoleUser } from './session';

/**
 * Windows: `query user` (quser), the row whose SESSIONNAME is `console` and STATE `Active`. Pipe
 * clients are not identified on Windows (see peer-win32.ts), so this name is never matched to a
 * connection; it is reported for what it is.
 */

/** The active console user in `query user` output, or null. */
export function parseQueryUser(stdout: string): string | null {
  for (const raw of stdout.split(/\r?\n/).slice(1)) {
    const m = /^[ >](\S+)\s+console\s+\d+\s+Active\b/i.exec(raw);
    if (m) return m[1]!;
  }
  return null;
}

export async function windowsConsoleUser(run: CommandRunner): Promise<ConsoleUser | null> {
  // quser exits 1 when it lists nobody; its output is still read.
  const { stdout } = await run('query', ['user']);
  const name = parseQueryUser(stdout);
  return name ? { key: `name:${name.toLowerCase()}`, user: name } : null;
}
