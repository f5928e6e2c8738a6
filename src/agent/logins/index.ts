import { sanitizeDeep, type NewEvent } from '../../shared';
import { createLinuxLoginSource, type LoginSource, type LoginState } from './linux-source';
import { createMacLoginSource } from './macos';
import { execRunner, type CommandRunner } from '../os/command';
import { createWindowsLoginSource } from './windows';

export * from './linux-source';
export * from './macos';
export * from './utmp';
export * from './windows';

/**
 * A login source whose events carry only sanitized text (user names, lines and hosts are read
 * from files and tools any local user may influence).
 */
export function sanitizedLoginSource(source: LoginSource): LoginSource {
  return {
    async readNew() {
      const pass = await source.readNew();
      return { ...pass, events: pass.events.map((e) => ({ ...e, payload: sanitizeDeep(e.payload) }) as NewEvent) };
    },
  };
}

/** The login source of this OS, chosen once at start-up; its text is sanitized. */
export function createLoginSource(opts: {
  platform: NodeJS.Platform;
  systemRoot: string;
  state: LoginState;
  runner?: CommandRunner;
  now?: () => Date;
}): LoginSource {
  const runner = opts.runner ?? execRunner;
  if (opts.platform === 'win32') return sanitizedLoginSource(createWindowsLoginSource({ runner, state: opts.state }));
  if (opts.platform === 'darwin') return sanitizedLoginSource(createMacLoginSource({ runner, state: opts.state, ...(opts.now ? { now: opts.now } : {}) }));
  return sanitizedLoginSource(createLinuxLoginSource({ systemRoot: opts.systemRoot, state: opts.state }));
}
