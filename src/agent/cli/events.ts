import path from 'node:path';
import type { Command } from 'commander';
import { UsageError, type StoredEvent } from '../../shared';
import { storeFile } from '../paths';
import { openEventStore } from '../store';
import { summariseEvent } from '../summary';
import { dataDirOption, print, printJson, type CommonOptions } from './common';

/** `--since`: a whole number. @throws UsageError for anything else. */
function parseSeq(value: string): number {
  if (!/^\d+$/.test(value)) throw new UsageError(`--since takes a whole number, not '${value}'`);
  return Number(value);
}

/** `mamori agent events`: list the local log. */
export function registerEventsCommand(agent: Command): void {
  agent
    .command('events')
    .description('list the events in the local log')
    .addOption(dataDirOption())
    .option('--since <seq>', 'only events after this seq', parseSeq, 0)
    .option('--json', 'print the events as JSON')
    .action((opts: CommonOptions & { since: number }) => {
      const store = openEventStore(storeFile(path.resolve(opts.dataDir)), { readonly: true });
      try {
        const events: StoredEvent[] = [];
        let after = opts.since;
        for (;;) {
          const page = store.readSince(after, 1000);
          if (page.length === 0) break;
          events.push(...page);
          after = page[page.length - 1]!.seq;
        }
        if (opts.json) return printJson(events);
        for (const e of events) print(`${e.seq}\t${e.at}\t${e.type}\t${summariseEvent(e)}`);
      } finally {
        store.close();
      }
    });
}
