import type { CommandRunner } from './command';
import { darwinConsoleUser } from './session-darwin';
import { linuxConsoleUser } from './session-linux';
import { windowsConsoleUser } from './session-win32';

/**
 * The user of the console session: the one at the keyboard and screen, whose tray keeps slots on
 * the IPC server and whose word alone records a lock or unlock (docs/design.md#ipc-peers).
 */
export interface ConsoleUser {
  /** Compared with `PeerIdentity.key`: `uid:1000` on Linux and macOS, `name:alice` on Windows. */
  key: string;
  user: string;
}

/** Asks the OS for the console user, cached for a few seconds. */
export interface SessionProbe {
  /** The console session's user; null when nobody is at the console or the OS cannot say. Never rejects. */
  consoleUser(): Promise<ConsoleUser | null>;
}

export interface SessionProbeOptions {
  platform: string;
  run: CommandRunner;
  /** Where `/run` is found (Linux); `/` by default. */
  systemRoot?: string;
  now?: () => number;
  /** How long an answer is kept; 5 s by default. */
  ttlMs?: number;
}

/** The probe for a platform (`process.platform`'s names). */
export function createSessionProbe(opts: SessionProbeOptions): SessionProbe {
  const now = opts.now ?? Date.now;
  const ttl = opts.ttlMs ?? 5_000;
  const ask =
    opts.platform === 'win32'
      ? () => windowsConsoleUser(opts.run)
      : opts.platform === 'darwin'
        ? () => darwinConsoleUser(opts.run)
        : () => linuxConsoleUser(opts.run, opts.systemRoot ?? '/');
  let cached: { at: number; value: Promise<ConsoleUser | null> } | null = null;
  return {
    consoleUser() {
      if (!cached || now() - cached.at >= ttl) cached = { at: now(), value: ask().catch(() => null) };
      return cached.value;
    },
  };
}
