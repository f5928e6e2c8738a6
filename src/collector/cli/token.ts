import { Option, type Command } from 'commander';
import { SEGMENTS, type Segment } from '../../shared';
import { createEnrollmentToken } from '../agents';
import { dbOptions, parseDuration, positiveInt, withDb, type DbOptions } from './common';

/** `mamori collector token create`: enrollment tokens. */
export function registerTokenCommands(collector: Command): void {
  const token = collector.command('token').description('enrollment tokens');
  dbOptions(
    token
      .command('create')
      .description('make an enrollment token for a segment; prints it')
      .addOption(new Option('--segment <segment>', 'mynumber, lgwan or internet').choices([...SEGMENTS]).makeOptionMandatory())
      .option('--ttl <duration>', 'how long it stays valid (e.g. 24h, 7d)', '24h')
      .option('--uses <n>', 'how many terminals may enroll with it', positiveInt('--uses'), 1),
  ).action(async (opts: DbOptions & { segment: Segment; ttl: string; uses: number }) => {
    const ttlMs = parseDuration(opts.ttl);
    const value = await withDb(opts, ({ db }) => createEnrollmentToken(db, { segment: opts.segment, ttlMs, uses: opts.uses }));
    process.stdout.write(`${value}\n`);
  });
}
