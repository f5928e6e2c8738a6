import path from 'node:path';
import type { Command } from 'commander';
import { storeFile } from '../paths';
import { openEventStore } from '../store';
import { dataDirOption, print, printJson, type CommonOptions } from './common';

/** `mamori agent verify-log`: check the local log's hash chain. */
export function registerVerifyLogCommand(agent: Command): void {
  agent
    .command('verify-log')
    .description('check the hash chain of the local log (exit 0 intact, 1 broken)')
    .addOption(dataDirOption())
    .option('--json', 'print the result as JSON')
    .action((opts: CommonOptions) => {
      const store = openEventStore(storeFile(path.resolve(opts.dataDir)), { readonly: true });
      try {
        const broken = store.verify();
        const { seq } = store.head();
        if (opts.json) printJson({ intact: !broken, events: seq, firstBadSeq: broken?.seq ?? null, reason: broken?.reason ?? null });
        else if (broken) print(`log integrity: broken at seq ${broken.seq} (${broken.reason})`);
        else print(`log integrity: intact (${seq} events)`);
        if (broken) process.exitCode = 1;
      } finally {
        store.close();
      }
    });
}
