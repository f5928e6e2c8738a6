import fs from 'node:fs';
import os from 'node:os';
import type { Clock } from '../shared/clock';

/**
 * The agent's structured logger: JSON lines on stderr in pino's format (`level` as pino's
 * numbers, `time` in ms, `pid`, `hostname`, `name`, `msg`), secrets redacted. Written here rather
 * than with pino, which the collector keeps: pino alone is about 9 MB of the agent's resident
 * memory and 40 ms of its start on every terminal (docs/design.md#agent-cycle).
 */
export interface Logger {
  error(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  info(fields: object, message: string): void;
  debug(fields: object, message: string): void;
}

const LEVELS = { debug: 20, info: 30, warn: 40, error: 50, silent: Infinity } as const;
type Level = keyof typeof LEVELS;

/** Field names whose values never reach a log line, at the top level or one level down. */
const SECRETS = new Set(['agentToken', 'token', 'unlockSecret', 'password', 'authorization']);
const CENSOR = '[redacted]';

/** An Error as pino's standard serializer gives it; anything else as it is. */
function serialise(value: unknown): unknown {
  if (value instanceof Error) return { type: value.name, message: value.message, stack: value.stack };
  return value;
}

function redact(fields: object): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(fields)) {
    if (key === 'authorization') out[key] = CENSOR;
    else if (value && typeof value === 'object' && !Array.isArray(value) && !(value instanceof Error)) {
      out[key] = Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, SECRETS.has(k) ? CENSOR : v]));
    } else out[key] = serialise(value);
  }
  return out;
}

/** Creates the agent logger. `MAMORI_LOG_LEVEL` overrides the level. */
export function createLogger(opts: { level?: string; write?: (line: string) => void; clock?: Clock } = {}): Logger {
  const name = process.env.MAMORI_LOG_LEVEL || opts.level || 'info';
  const threshold = Object.hasOwn(LEVELS, name) ? LEVELS[name as Level] : LEVELS.info;
  // Synchronous, as the service's logs must survive a crash right after the line.
  const write = opts.write ?? ((line: string) => fs.writeSync(2, line));
  const hostname = os.hostname();
  const at = (level: Exclude<Level, 'silent'>) => (fields: object, message: string) => {
    if (LEVELS[level] < threshold) return;
    const line = { level: LEVELS[level], time: opts.clock ? opts.clock.now().getTime() : Date.now(), pid: process.pid, hostname, name: 'mamori-agent', ...redact(fields), msg: message };
    try {
      write(`${JSON.stringify(line)}\n`);
    } catch {
      // A closed or full stderr must not stop the service.
    }
  };
  return { error: at('error'), warn: at('warn'), info: at('info'), debug: at('debug') };
}

/** A logger that writes nothing, for tests. */
export const silentLogger: Logger = { error() {}, warn() {}, info() {}, debug() {} };
