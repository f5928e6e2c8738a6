import pino from 'pino';

/** The agent's structured logger: JSON lines on stderr, secrets redacted. */
export type Logger = pino.Logger;

/** Creates the agent logger. `MAMORI_LOG_LEVEL` overrides the level. */
export function createLogger(opts: { level?: string } = {}): Logger {
  return pino(
    {
      name: 'mamori-agent',
      level: process.env.MAMORI_LOG_LEVEL ?? opts.level ?? 'info',
      redact: { paths: ['*.agentToken', '*.token', '*.unlockSecret', '*.password', 'authorization', '*.authorization'], censor: '[redacted]' },
    },
    pino.destination({ fd: 2, sync: true }),
  );
}

/** A logger that writes nothing, for tests. */
export const silentLogger: Logger = pino({ level: 'silent' });
