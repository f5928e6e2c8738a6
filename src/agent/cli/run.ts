import path from 'node:path';
import type { Command } from 'commander';
import { enforceStoredPolicy } from '../start-enforcement';
import { dataDirOption, systemRootOption, type CommonOptions } from './common';

/**
 * `mamori agent run`: the service. Only what the service needs is loaded, and the heavy parts
 * (schemas, logger, inventory) only once the stored policy is enforced (docs/design.md#agent-cycle).
 */
export function registerRunCommand(agent: Command): void {
  agent
    .command('run')
    .description('run the agent service (one full cycle with --once)')
    .addOption(dataDirOption())
    .addOption(systemRootOption())
    .option('--ipc <path>', 'IPC socket or pipe to listen on')
    .option('--once', 'run one cycle, then exit')
    .action(async (opts: CommonOptions & { once?: boolean; ipc?: string }) => {
      const dataDir = path.resolve(opts.dataDir);
      const systemRoot = path.resolve(opts.systemRoot);
      // The stored policy is enforced first; the service is loaded after it.
      const early = await enforceStoredPolicy({ dataDir, systemRoot });
      const [{ createAgent }, { createLogger }] = await Promise.all([import('../main.js'), import('../logger.js')]);
      const logger = createLogger();
      if (early.ran) logger.info({ mode: early.mode, changed: early.changed, failures: early.failures }, 'start-up pass enforced the stored policy');
      else logger.debug({ skipped: early.skipped }, 'start-up pass skipped');
      const agentProcess = createAgent({ dataDir, systemRoot, ipcPath: opts.ipc, logger });
      if (opts.once) {
        const result = await agentProcess.runOnce();
        if (result.enrolled && !result.collectorReachable) {
          process.stderr.write('mamori: collector unreachable; events stay in the local log until the next sync\n');
        }
        return;
      }
      await agentProcess.runForever();
    });
}
