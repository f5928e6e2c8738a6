import os from 'node:os';
import type { Command } from 'commander';
import { MamoriError, UsageError, systemClock } from '../../shared';
import { loadSigningKey } from '../crypto';
import { MAX_RETENTION_YEARS, getRetention, pruneEvents, setRetention, type PruneResult } from '../retention/retention';
import { dbOptions, keyFile, keyFileOption, withDb as withOpenDb, type DbOptions } from './common';

/** Runs `fn` with the database open; a refused value is bad usage (exit 2). */
async function withDb<T>(opts: DbOptions, fn: Parameters<typeof withOpenDb<T>>[1]): Promise<T> {
  try {
    return await withOpenDb(opts, fn);
  } catch (err) {
    if (err instanceof MamoriError && err.code === 'validation_failed') throw new UsageError(err.message);
    throw err;
  }
}

const cliActor = () => ({ username: `cli:${os.userInfo().username}`, role: 'admin' as const, address: os.hostname() });

/**
 * `forever` or a whole number of years from 1 to 100.
 * @throws UsageError for anything else.
 */
export function parseYears(text: string): number | null {
  if (text === 'forever') return null;
  if (!/^\d{1,3}$/.test(text) || Number(text) < 1 || Number(text) > MAX_RETENTION_YEARS)
    throw new UsageError(`--events takes a whole number of years from 1 to ${MAX_RETENTION_YEARS}, or forever, not '${text}'`);
  return Number(text);
}

/** One line per terminal a pass pruned. */
export function describePrune(r: PruneResult): string {
  const broken = r.broken ? `\tSTOPPED: the stored chain does not verify at seq ${r.broken.seq} (${r.broken.reason.replace(/_/g, ' ')})` : '';
  return `${r.agentId}\tpruned ${r.pruned}\tchain kept from seq ${r.checkpointSeq + 1}${broken}`;
}

/** Adds `mamori collector retention show|set|run` (docs/design.md#retention). */
export function registerRetentionCommands(collector: Command): void {
  const retention = collector.command('retention').description('how long the collector keeps events; older ones are pruned behind a signed checkpoint');

  dbOptions(retention.command('show').description('the events retention period').option('--json', 'as JSON')).action(
    async (opts: DbOptions & { json?: boolean }) => {
      const setting = await withDb(opts, ({ db }) => getRetention(db));
      if (opts.json) process.stdout.write(`${JSON.stringify({ events: setting })}\n`);
      else if (setting.years === null) process.stdout.write('events: kept for ever (default)\n');
      else process.stdout.write(`events: kept ${setting.years} years (set by ${setting.updatedBy} at ${setting.updatedAt})\n`);
    },
  );

  dbOptions(
    retention
      .command('set')
      .description('set the events retention period; audited as retention.set')
      .requiredOption('--events <years>', `years to keep events (1–${MAX_RETENTION_YEARS}), or forever`, parseYears),
  ).action(async (opts: DbOptions & { events: number | null }) => {
    await withDb(opts, ({ db }) => setRetention(db, cliActor(), opts.events, systemClock));
    process.stdout.write(opts.events === null ? 'events: kept for ever\n' : `events: kept ${opts.events} years\n`);
  });

  keyFileOption(dbOptions(retention.command('run').description('prune now what the daily job would; audited as retention.prune'))).action(
    async (opts: DbOptions) => {
      const file = keyFile(opts);
      const results = await withDb(opts, async ({ db, engine }) => {
        const key = await loadSigningKey(db, file, systemClock);
        return pruneEvents({ db, engine, key, clock: systemClock }, { actor: cliActor() });
      });
      process.stdout.write(results.length === 0 ? 'nothing to prune\n' : `${results.map(describePrune).join('\n')}\n`);
      if (results.some((r) => r.broken)) process.exitCode = 1;
    },
  );
}
