import path from 'node:path';
import type { Command } from 'commander';
import { allowPresentDevices, createEnforcer } from '../enforcement';
import { enrollAgent } from '../enroll';
import { storeFile } from '../paths';
import { loadPolicy } from '../policy';
import { openEventStore } from '../store';
import { dataDirOption, print, printJson, systemRootOption, type CommonOptions } from './common';

/** `mamori agent enroll`: enroll with a collector and pin its key. */
export function registerEnrollCommand(agent: Command): void {
  agent
    .command('enroll')
    .description('enroll this terminal with a collector (pins its public key)')
    .requiredOption('--collector <url>', 'collector URL, e.g. https://mamori.example.lg.jp:8765')
    .requiredOption('--token <token>', 'enrollment token from `mamori collector token create`')
    .addOption(dataDirOption())
    .addOption(systemRootOption())
    .option('--pubkey <base64>', "the collector's public key (`mamori collector key`, SPKI base64): enrollment fails when the collector presents another")
    .option('--allow-present', 'allow the removable media plugged in now (lockout safety)')
    .option('--json', 'print the enrollment as JSON')
    .action(async (opts: CommonOptions & { collector: string; token: string; pubkey?: string; allowPresent?: boolean }) => {
      const store = openEventStore(storeFile(path.resolve(opts.dataDir)));
      try {
        const systemRoot = path.resolve(opts.systemRoot);
        const e = await enrollAgent({ store, collectorUrl: opts.collector, token: opts.token, systemRoot, ...(opts.pubkey !== undefined ? { expectedPublicKey: opts.pubkey } : {}) });
        if (opts.allowPresent) {
          const allowed = await allowPresentDevices(store, createEnforcer({ platform: process.platform, systemRoot }));
          if (!opts.json) for (const a of allowed) print(`allowed: ${a.vendorId}:${a.productId}${a.serial ? ` serial ${JSON.stringify(a.serial)}` : ' (any serial)'}`);
        }
        const policy = loadPolicy(store);
        if (opts.json) return printJson({ agentId: e.agentId, segment: e.segment, collectorUrl: e.collectorUrl, policyVersion: policy?.version ?? null });
        print(`enrolled as ${e.agentId} in segment ${e.segment} (policy v${policy?.version ?? '?'}, mode ${policy?.removableMedia.mode ?? '?'})`);
      } finally {
        store.close();
      }
    });
}
