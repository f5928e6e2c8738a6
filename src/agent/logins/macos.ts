import type { NewEvent } from '../../shared';
import type { CommandRunner } from '../os/command';
import type { LoginPass, LoginSource, LoginState } from './linux-source';
import { STATE_KEYS } from '../state-keys';

/** One line of BSD `last`, as a session. */
export interface LastEntry {
  user: string;
  tty: string;
  host: string;
  /** Login (or boot/shutdown) time, UTC ISO. */
  start: string;
  /** Logout time when the session ended; null while logged in or for boot/shutdown lines. */
  end: string | null;
  kind: 'session' | 'reboot' | 'shutdown';
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const LINE =
  /^(\S+)\s+(\S+)\s+(?:(\S+)\s+)?(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) +(\d{1,2}) (\d{2}):(\d{2})(?:\s+(?:-\s+(?:(\d{2}):(\d{2})|crash|shutdown)\s+\((?:(\d+)\+)?(\d{2}):(\d{2})\)|still logged in|-\s+\w+))?\s*$/;

/**
 * Parses `last` output (BSD format, as macOS prints it). `last` gives no year and prints local
 * time: lines are read newest first, the year taken from `reference` and stepped back whenever the
 * month runs forwards, and times converted with `utcOffsetMinutes` (the terminal's offset).
 */
export function parseLast(output: string, reference: Date, utcOffsetMinutes = 0): { entries: LastEntry[]; bad: number } {
  const entries: LastEntry[] = [];
  let bad = 0;
  let year = reference.getUTCFullYear();
  let lastMonth = reference.getUTCMonth();
  for (const raw of output.split(/\r?\n/)) {
    const line = raw.trimEnd();
    if (!line || line.startsWith('wtmp begins')) continue;
    const m = LINE.exec(line);
    if (!m) {
      bad++;
      continue;
    }
    const [, user, tty, host, mon, day, hh, mm, , , durDays, durH, durM] = m;
    const month = MONTHS.indexOf(mon!);
    if (month > lastMonth) year--;
    lastMonth = month;
    const startMs = Date.UTC(year, month, Number(day), Number(hh), Number(mm)) - utcOffsetMinutes * 60_000;
    let end: string | null = null;
    if (durH !== undefined) {
      const minutes = Number(durDays ?? 0) * 1440 + Number(durH) * 60 + Number(durM);
      end = new Date(startMs + minutes * 60_000).toISOString();
    }
    const kind = user === 'reboot' ? 'reboot' : user === 'shutdown' ? 'shutdown' : 'session';
    entries.push({ user: user!, tty: tty!, host: host ?? '', start: new Date(startMs).toISOString(), end, kind });
  }
  return { entries, bad };
}

/** The events of one `last` entry: a login, and a logout when the session has ended. */
export function lastEntryEvents(e: LastEntry): NewEvent[] {
  if (e.kind === 'reboot') return [{ type: 'system.boot', payload: { source: 'last', time: e.start } }];
  if (e.kind === 'shutdown') return [{ type: 'system.shutdown', payload: { source: 'last', time: e.start } }];
  const remote = e.host ? { remoteHost: e.host } : {};
  const out: NewEvent[] = [{ type: 'login.success', payload: { user: e.user, source: 'last', line: e.tty, ...remote, time: e.start } }];
  if (e.end) {
    out.push({ type: 'logout', payload: { user: e.user, source: 'last', line: e.tty, time: e.end, sessionSeconds: Math.round((Date.parse(e.end) - Date.parse(e.start)) / 1000) } });
  }
  return out;
}

const SEEN_LIMIT = 2000;

/**
 * Runs `last` and emits what it had not emitted before: each entry's login once, and its logout
 * once it has one. `last` reprints everything each time, so what was emitted is remembered by key.
 */
export function createMacLoginSource(opts: { runner: CommandRunner; state: LoginState; now?: () => Date }): LoginSource {
  return {
    async readNew(): Promise<LoginPass> {
      const { stdout, code } = await opts.runner('last', []);
      if (code !== 0) throw new Error(`last exited ${code}`);
      const now = opts.now?.() ?? new Date();
      const { entries, bad } = parseLast(stdout, now, -now.getTimezoneOffset());
      const seen = new Set<string>(JSON.parse(opts.state.getState(STATE_KEYS.loginsLastSeen) ?? '[]') as string[]);
      const events: NewEvent[] = [];
      for (const entry of [...entries].reverse()) {
        for (const event of lastEntryEvents(entry)) {
          const key = `${event.type}|${entry.user}|${entry.tty}|${entry.start}`;
          if (seen.has(key)) continue;
          seen.add(key);
          events.push(event);
        }
      }
      const keep = [...seen].slice(-SEEN_LIMIT);
      return { events, badRecords: bad, state: [[STATE_KEYS.loginsLastSeen, JSON.stringify(keep)]] };
    },
  };
}
