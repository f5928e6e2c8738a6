import path from 'node:path';
import type { Command } from 'commander';
import { PROVISION_FILE_NAME, appendInstallLog, provisionFromInstaller } from '../provision';
import { dataDirOption, print, type CommonOptions } from './common';

/** `mamori agent provision`: validate and store an installer's provision. */
export function registerProvisionCommand(agent: Command): void {
  agent
    .command('provision [installerArgs...]')
    .description('validate and store the installer provision (collector URL, token, segment) for the service to enroll with; an enrolled terminal keeps its enrollment')
    .addOption(dataDirOption())
    .option('--file <file>', 'a mamori-provision.json')
    .option('--beside <path>', `the installer (or its folder): a ${PROVISION_FILE_NAME} beside it is read when present`)
    .option('--log <file>', 'also append the outcome to this file (installers pass <data-dir>/install.log)')
    .addHelpText('after', '\nInstaller arguments: NSIS style /COLLECTOR=URL /TOKEN=T /SEGMENT=S [/PUBKEY=K] or MSI style COLLECTOR=URL …; they win over the file. Put -- before them when they may contain other switches.')
    .action((installerArgs: string[], opts: CommonOptions & { file?: string; beside?: string; log?: string }) => {
      const dataDir = path.resolve(opts.dataDir);
      try {
        const result = provisionFromInstaller({ dataDir, args: installerArgs, ...(opts.file ? { file: opts.file } : {}), ...(opts.beside ? { beside: opts.beside } : {}) });
        if (opts.log) appendInstallLog(opts.log, `agent provision: ${result.message}`);
        print(result.message);
      } catch (err) {
        if (opts.log) appendInstallLog(opts.log, `agent provision failed: ${(err as Error).message}`);
        throw err;
      }
    });
}
