import os from 'node:os';
import { Option, type Command } from 'commander';
import { UsageError } from '../../shared';
import { addAdmin, ROLES } from '../admins';
import { dbOptions, promptPassword, usage, withDb, type DbOptions } from './common';

/** `mamori collector admin add`: admin and auditor accounts. */
export function registerAdminCommands(collector: Command): void {
  const admin = collector.command('admin').description('admin and auditor accounts');
  dbOptions(
    admin
      .command('add <user>')
      .description('add an admin or auditor; the password comes from MAMORI_ADMIN_PASSWORD or a prompt; prints the API token')
      .addOption(new Option('--role <role>', 'admin or auditor').choices([...ROLES]).makeOptionMandatory())
      .option('--reset', "replace an existing user's role, password and API token and end their console sessions (audited)"),
  ).action(async (user: string, opts: DbOptions & { role: string; reset?: boolean }) => {
    const password = process.env.MAMORI_ADMIN_PASSWORD ?? (await promptPassword(`password for ${user}: `));
    const actor = { username: `cli:${os.userInfo().username}`, role: 'admin' as const, address: os.hostname() };
    const token = await withDb(opts, ({ db }) =>
      usage(addAdmin(db, user, opts.role, password, { reset: !!opts.reset, actor })).catch((err: unknown) => {
        if (err instanceof UsageError && !opts.reset && /already exists/.test(err.message)) throw new UsageError(`${err.message}; give --reset to replace its role, password and API token`);
        throw err;
      }),
    );
    process.stdout.write(`${token}\n`);
  });
}
