import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { NewEvent } from '../../shared';
import { UT, UTMP_RECORD_SIZE, decodeUtmp, utmpTime, type UtmpRecord } from './utmp';
import { STATE_KEYS, type StateKey } from '../state-keys';

/** The store's key-value state, which keeps each file's position across restarts. */
export interface LoginState {
  getState(key: StateKey): string | null;
}

/** What one pass over the login records found. */
export interface LoginPass {
  events: NewEvent[];
  /** Records that could not be decoded and were skipped. */
  badRecords: number;
  /**
   * The positions to remember once the events are stored: the caller writes them in the same
   * transaction as the events, so a crash between the two cannot lose or repeat a record.
   */
  state: [key: StateKey, value: string][];
}

/** A source of login events; each record becomes exactly one event across restarts. */
export interface LoginSource {
  readNew(): Promise<LoginPass>;
}

/** Where a file was read up to: its identity (device, inode, first record) and the offset. */
interface Position {
  dev: number;
  ino: number;
  head: string;
  offset: number;
}

interface OpenSession {
  user: string;
  seconds: number;
}

/** Records per read: 96 KiB at a time, whatever the file's size. */
export const READ_RECORDS = 256;
const MAX_OPEN_SESSIONS = 512;

function headOf(fd: number, size: number): string {
  if (size < UTMP_RECORD_SIZE) return '';
  const buf = Buffer.alloc(UTMP_RECORD_SIZE);
  fs.readSync(fd, buf, 0, UTMP_RECORD_SIZE, 0);
  return crypto.createHash('sha256').update(buf).digest('hex').slice(0, 16);
}

/** The events one utmp record makes; `open` holds the sessions still open, by line. */
function toEvents(kind: 'wtmp' | 'btmp', r: UtmpRecord, open: Record<string, OpenSession>, out: NewEvent[]): void {
  const time = utmpTime(r);
  const remote = r.host ? { remoteHost: r.host } : {};
  if (kind === 'btmp') {
    if (r.type === UT.USER_PROCESS || r.type === UT.LOGIN_PROCESS) {
      out.push({ type: 'login.failure', payload: { user: r.user, source: 'btmp', line: r.line, ...remote, time } });
    }
    return;
  }
  const closeAll = (reason: string) => {
    for (const [line, s] of Object.entries(open)) {
      out.push({ type: 'logout', payload: { user: s.user, source: 'wtmp', line, time, reason, sessionSeconds: Math.max(0, r.seconds - s.seconds) } });
      delete open[line];
    }
  };
  switch (r.type) {
    case UT.USER_PROCESS:
      open[r.line] = { user: r.user, seconds: r.seconds };
      out.push({ type: 'login.success', payload: { user: r.user, source: 'wtmp', line: r.line, ...remote, time } });
      break;
    case UT.DEAD_PROCESS: {
      const s = open[r.line];
      // A DEAD_PROCESS without a login on its line is a getty ending, not a logout.
      if (!s) break;
      delete open[r.line];
      out.push({ type: 'logout', payload: { user: s.user, source: 'wtmp', line: r.line, time, sessionSeconds: Math.max(0, r.seconds - s.seconds) } });
      break;
    }
    case UT.BOOT_TIME:
      closeAll('system boot');
      out.push({ type: 'system.boot', payload: { source: 'wtmp', time, kernel: r.host } });
      break;
    case UT.RUN_LVL:
      if (r.user === 'shutdown') {
        closeAll('shutdown');
        out.push({ type: 'system.shutdown', payload: { source: 'wtmp', time } });
      }
      break;
    default:
      break;
  }
}

/** Reads records of one file from `offset`; returns the offset after the last whole record. */
function readFrom(kind: 'wtmp' | 'btmp', fd: number, size: number, offset: number, open: Record<string, OpenSession>, pass: LoginPass): number {
  const buf = Buffer.alloc(UTMP_RECORD_SIZE * READ_RECORDS);
  let at = offset;
  while (size - at >= UTMP_RECORD_SIZE) {
    const want = Math.min(buf.length, Math.floor((size - at) / UTMP_RECORD_SIZE) * UTMP_RECORD_SIZE);
    const got = fs.readSync(fd, buf, 0, want, at);
    const whole = Math.floor(got / UTMP_RECORD_SIZE);
    if (whole === 0) break;
    for (let i = 0; i < whole; i++) {
      const record = decodeUtmp(buf, i * UTMP_RECORD_SIZE);
      if (!record) pass.badRecords++;
      else toEvents(kind, record, open, pass.events);
    }
    at += whole * UTMP_RECORD_SIZE;
  }
  return at;
}

/**
 * Reads `<systemRoot>/var/log/wtmp` and `btmp` as glibc writes them. A file is known by its
 * device, inode and first record, so a rotation (`wtmp` → `wtmp.1` and a new `wtmp`) finishes the
 * old file from where it stopped and starts the new one at 0, and a file replaced or truncated in
 * place is read again from 0. A partial record at the end is left for the next pass.
 */
export function createLinuxLoginSource(opts: { systemRoot: string; state: LoginState }): LoginSource {
  const logDir = path.join(opts.systemRoot, 'var', 'log');

  function loadOpen(): Record<string, OpenSession> {
    const json = opts.state.getState(STATE_KEYS.loginsOpen);
    return json ? (JSON.parse(json) as Record<string, OpenSession>) : {};
  }

  function readFile(kind: 'wtmp' | 'btmp', open: Record<string, OpenSession>, pass: LoginPass): void {
    const file = path.join(logDir, kind);
    const key = kind === 'wtmp' ? STATE_KEYS.loginsWtmp : STATE_KEYS.loginsBtmp;
    const storedJson = opts.state.getState(key);
    const stored = storedJson ? (JSON.parse(storedJson) as Position) : null;
    let fd: number;
    try {
      fd = fs.openSync(file, 'r');
    } catch {
      return; // no such log on this system
    }
    try {
      const stat = fs.fstatSync(fd);
      const head = headOf(fd, stat.size);
      let offset = 0;
      const same = stored && stored.dev === stat.dev && stored.ino === stat.ino;
      if (same && stored.head === head && stat.size >= stored.offset) {
        offset = stored.offset;
      } else if (stored && !same) {
        finishRotated(kind, stored, open, pass);
      }
      const end = readFrom(kind, fd, stat.size, offset, open, pass);
      pass.state.push([key, JSON.stringify({ dev: stat.dev, ino: stat.ino, head, offset: end } satisfies Position)]);
    } finally {
      fs.closeSync(fd);
    }
  }

  /** After a rotation, reads what was left of the old file, now `wtmp.1`, when it is that file. */
  function finishRotated(kind: 'wtmp' | 'btmp', stored: Position, open: Record<string, OpenSession>, pass: LoginPass): void {
    let fd: number;
    try {
      fd = fs.openSync(path.join(logDir, `${kind}.1`), 'r');
    } catch {
      return;
    }
    try {
      const stat = fs.fstatSync(fd);
      if (stat.dev === stored.dev && stat.ino === stored.ino && headOf(fd, stat.size) === stored.head && stat.size >= stored.offset) {
        readFrom(kind, fd, stat.size, stored.offset, open, pass);
      }
    } finally {
      fs.closeSync(fd);
    }
  }

  return {
    async readNew() {
      const pass: LoginPass = { events: [], badRecords: 0, state: [] };
      const open = loadOpen();
      readFile('wtmp', open, pass);
      readFile('btmp', open, pass);
      const lines = Object.keys(open);
      for (const line of lines.slice(0, Math.max(0, lines.length - MAX_OPEN_SESSIONS))) delete open[line];
      pass.state.push([STATE_KEYS.loginsOpen, JSON.stringify(open)]);
      return pass;
    },
  };
}
