import os from 'node:os';
import type { Command } from 'commander';
import { loadSigningKey, rotateSigningKey } from '../crypto';
import { ensureDefaultPolicies } from '../policies';
import { dbOptions, keyFile, keyFileOption, withDb, type DbOptions } from './common';

/** `mamori collector key` and `key rotate`: the policy-signing key. */
export function registerKeyCommands(collector: Command): void {
  const key = keyFileOption(
    dbOptions(collector.command('key').description("print the collector's policy-signing public key (SPKI, base64): the PUBKEY installers pin")),
  ).action(async (opts: DbOptions) => {
    const publicKey = await withDb(opts, async ({ db }) => (await loadSigningKey(db, keyFile(opts))).publicKey);
    process.stdout.write(`${publicKey}\n`);
  });
  keyFileOption(
    dbOptions(
      key
        .command('rotate')
        .description('make a new policy-signing key, re-sign every segment\'s policy with it and publish the change signed by the old key; prints the new public key'),
    ),
  ).action(async (_opts: DbOptions, command: Command) => {
    // `--data-dir` and the others may be parsed by `key` itself: read them with the parent's.
    const opts = command.optsWithGlobals<DbOptions>();
    const file = keyFile(opts);
    const actor = { username: `cli:${os.userInfo().username}`, role: 'admin' as const, address: os.hostname() };
    const result = await withDb(opts, async ({ db }) => {
      await ensureDefaultPolicies(db, await loadSigningKey(db, file));
      return rotateSigningKey(db, file, actor);
    });
    process.stderr.write(`rotated the policy-signing key in ${file}; policies re-signed: ${Object.entries(result.versions).map(([s, v]) => `${s} v${v}`).join(', ')}\n`);
    process.stdout.write(`${result.publicKey}\n`);
  });
}
