import os from 'node:os';
import type { Command } from 'commander';
import { MAX_UNLOCK_MINUTES } from '../../shared';
import { audit } from '../admins';
import { unlockCode } from '../exceptions';
import { dbOptions, positiveInt, usage, withDb, type DbOptions } from './common';

/** `mamori collector unlock`: answer a terminal's request code with an unlock code. */
export function registerUnlockCommand(collector: Command): void {
  dbOptions(
    collector
      .command('unlock')
      .description("answer a terminal's request code (申請コード) with an unlock code (許可コード)")
      .requiredOption('--request <code>', 'the request code the terminal shows, e.g. 3F7K9-QM2X9-ABCD12')
      .option('--device <scope>', "the device as the terminal shows it, when the request has not reached the collector: 'VVVV:PPPP serial S' or 'VVVV:PPPP port P'")
      .option('--minutes <n>', 'how long the stick may be used', positiveInt('--minutes', MAX_UNLOCK_MINUTES), 60),
  ).action(async (opts: DbOptions & { request: string; minutes: number; device?: string }) => {
    const result = await withDb(opts, async ({ db }) => {
      const answer = await usage(unlockCode(db, opts.request, opts.minutes, opts.device));
      const who = `cli:${os.userInfo().username}`;
      await audit(db, { username: who, role: 'admin', address: os.hostname() }, 'unlock', answer.agentId, { requestCode: opts.request, minutes: opts.minutes, device: answer.scopeText });
      return answer;
    });
    // The exact scope, so whoever reads the code out knows what it lets through.
    process.stderr.write(`unlock code for ${result.hostname}, device ${result.scopeText}, ${opts.minutes} min:\n`);
    process.stdout.write(`${result.code}\n`);
  });
}
