import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/agent/logger';
import { fixedClock } from '../../src/shared';

function capture(level?: string) {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({ ...(level ? { level } : {}), clock: fixedClock('2026-12-03T09:00:00.000Z'), write: (line) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  return { logger, lines };
}

describe('the agent logger', () => {
  it('writes JSON lines a pino reader understands', () => {
    const { logger, lines } = capture();
    logger.warn({ section: 'usb' }, 'inventory probe failed');
    expect(lines).toEqual([{ level: 40, time: Date.parse('2026-12-03T09:00:00.000Z'), pid: process.pid, hostname: expect.any(String), name: 'mamori-agent', section: 'usb', msg: 'inventory probe failed' }]);
  });

  it('never writes a token, secret or password, at the top or one level down', () => {
    const { logger, lines } = capture();
    logger.info({ authorization: 'Bearer abc', enrollment: { agentId: 'a1', agentToken: 't0k3n', unlockSecret: 's3cr3t' }, body: { password: 'pw' } }, 'x');
    const text = JSON.stringify(lines);
    for (const secret of ['abc', 't0k3n', 's3cr3t', '"pw"']) expect(text).not.toContain(secret);
    expect(lines[0]).toMatchObject({ enrollment: { agentId: 'a1', agentToken: '[redacted]' } });
  });

  it('keeps an error’s message and stack, and drops lines below its level', () => {
    const { logger, lines } = capture('warn');
    logger.info({}, 'not written');
    logger.error({ err: new Error('disk full') }, 'cycle failed');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 50, msg: 'cycle failed', err: { type: 'Error', message: 'disk full', stack: expect.stringContaining('disk full') } });
  });
});
