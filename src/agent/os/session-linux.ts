import fs from 'node:fs';
import path from 'node:path';
import type { CommandRunner } from './command';
import type { ConsoleUser } from './session';

/**
 * Linux: systemd-logind's record of seat0 (`/run/systemd/seats/seat0`, `ACTIVE_UID=`), which is
 * what `loginctl show-seat seat0` reads; without logind, the newest `who` entry on a local
 * terminal (`tty*`, `:N`, `console`), never a remote `pts/*`.
 */

/** The active session's uid in a logind seat file (`KEY=value` lines), or null. */
export function parseSeatFile(text: string): number | null {
  const m = /^ACTIVE_UID=(\d+)$/m.exec(text);
  return m ? Number(m[1]) : null;
}

/** The newest user on a local terminal in `who` output (`name line YYYY-MM-DD HH:MM …`), or null. */
export function parseWhoConsole(stdout: string): string | null {
  let best: { name: string; at: string } | null = null;
  for (const line of stdout.split('\n')) {
    const m = /^(\S+)\s+(\S+)\s+(\d{4}-\d{2}-\d{2} \d{2}:\d{2})/.exec(line);
    if (!m || !/^(tty\d+|:\d+(\.\d+)?|console|seat\d+)$/.test(m[2]!)) continue;
    if (!best || m[3]! >= best.at) best = { name: m[1]!, at: m[3]! };
  }
  return best?.name ?? null;
}

/** Name and uid of a `getent passwd` line. */
function passwd(stdout: string): { name: string; uid: number } | null {
  const f = stdout.split('\n')[0]?.split(':') ?? [];
  return f.length >= 3 && /^\d+$/.test(f[2]!) ? { name: f[0]!, uid: Number(f[2]) } : null;
}

export async function linuxConsoleUser(run: CommandRunner, systemRoot: string): Promise<ConsoleUser | null> {
  let seat: string | null = null;
  try {
    seat = fs.readFileSync(path.join(systemRoot, 'run/systemd/seats/seat0'), 'utf8');
  } catch {
    seat = null;
  }
  const uid = seat === null ? null : parseSeatFile(seat);
  if (uid !== null) {
    const { stdout, code } = await run('getent', ['passwd', String(uid)]);
    return { key: `uid:${uid}`, user: (code === 0 && passwd(stdout)?.name) || String(uid) };
  }
  if (seat !== null) return null; // logind runs and nobody is active on seat0
  const who = await run('who', []);
  const name = who.code === 0 ? parseWhoConsole(who.stdout) : null;
  if (!name) return null;
  const entry = await run('getent', ['passwd', name]);
  const account = entry.code === 0 ? passwd(entry.stdout) : null;
  return account ? { key: `uid:${account.uid}`, user: account.name } : null;
}
