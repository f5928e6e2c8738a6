import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { sanitizeText } from '../../shared';
import { createEnforcer, releaseControls } from '../enforcement';
import { isLive } from '../ipc/socket';
import { defaultIpcPath } from '../ipc-path';
import { execRunner } from '../os/command';
import { storeFile } from '../paths';
import { loadEnrollment } from '../policy';
import { appendInstallLog } from '../provision';
import { STATE_KEYS } from '../state-keys';
import { openEventStore, type EventStore } from '../store';
import { syncEvents } from '../sync';
import { createSyncClient } from '../sync-client';
import { dataDirOption, print, printJson, systemRootOption, type CommonOptions } from './common';

/** `mamori agent release`: give the OS its removable-media controls back, for an uninstall. */
export function registerReleaseCommand(agent: Command): void {
  agent
    .command('release')
    .description('give the OS its removable-media controls back, for an uninstall (stop the service first)')
    .addOption(dataDirOption())
    .addOption(systemRootOption())
    .option('--ipc <path>', 'IPC socket or pipe of the agent, to check that it is stopped', defaultIpcPath())
    .option('--log <file>', 'also append the outcome to this file')
    .option('--json', 'print the result as JSON')
    .action(async (opts: CommonOptions & { ipc: string; log?: string }) => {
      const log = (line: string) => opts.log && appendInstallLog(opts.log, `agent release: ${line}`);
      // A running agent would put every control back at its next pass.
      if (await isLive(opts.ipc)) {
        const message = 'エージェントのサービスが動作中です。先に停止してください / the agent service is still running: stop it first (systemctl stop mamori-agent, sc stop MamoriAgent, launchctl bootout system/jp.mamori.agent)';
        log(message);
        throw new Error(message);
      }
      const dataDir = path.resolve(opts.dataDir);
      const systemRoot = path.resolve(opts.systemRoot);
      let store: EventStore | null = null;
      try {
        if (fs.existsSync(storeFile(dataDir))) store = openEventStore(storeFile(dataDir));
      } catch (err) {
        // A damaged store must not keep the OS controls from being given back: release without
        // what the agent remembered (read-only flags it set stay; everything else is undone).
        log(`local log unreadable, releasing without it: ${(err as Error).message}`);
      }
      try {
        const enforcer = createEnforcer({
          platform: process.platform,
          systemRoot,
          // What the agent set on this boot, so read-only flags it put on are taken off too.
          ...(store ? { memory: { load: () => store.getState(STATE_KEYS.enforcementSet), save: (json: string) => store.setState(STATE_KEYS.enforcementSet, json) } } : {}),
        });
        const result = await releaseControls({ enforcer, platform: process.platform, runner: execRunner });
        const summary = result.failures.length === 0 ? 'removable-media controls given back to the OS' : `could not restore: ${result.failures.join('; ')}`;
        if (store) {
          store.append({ type: 'agent.stopped', payload: { reason: sanitizeText(`released (uninstall): ${summary}`, 500) } });
          // Best effort, bounded: the collector learns the terminal was uninstalled; the event
          // stays in the local log otherwise.
          const enrollment = loadEnrollment(store);
          if (enrollment) {
            const api = createSyncClient({ baseUrl: enrollment.collectorUrl, agentId: enrollment.agentId, agentToken: enrollment.agentToken, timeoutMs: 5_000, head: () => store.head() });
            await syncEvents(store, api).catch(() => undefined);
          }
        }
        log(summary);
        if (opts.json) printJson(result);
        else {
          print(result.failures.length === 0 ? 'OS の外部記録媒体の制御を元に戻しました / released: removable-media controls given back to the OS' : `一部を元に戻せませんでした / not all controls could be restored: ${result.failures.join('; ')}`);
          for (const id of result.reEnabled) print(`re-enabled: ${id}`);
        }
        if (result.failures.length > 0) process.exitCode = 1;
      } finally {
        store?.close();
      }
    });
}
