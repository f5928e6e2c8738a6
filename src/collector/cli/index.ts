import type { Command } from 'commander';
import { registerAdminCommands } from './admin';
import { registerAlertCommands } from './alerts';
import { defaultCollectorDataDir } from '../server';
import { registerExportCommands } from './export';
import { registerForwardCommands } from './forward';
import { registerKeyCommands } from './key';
import { registerRetentionCommands } from './retention';
import { registerServeCommand } from './serve';
import { registerTokenCommands } from './token';
import { registerUnlockCommand } from './unlock';

export { MAX_TOKEN_TTL_MS, MIN_TOKEN_TTL_MS, parseDuration } from './common';

/** Adds `mamori collector …` and `mamori export …` to the program; one file per command. */
export function registerCollectorCommands(program: Command): void {
  const collector = program
    .command('collector')
    .description('the central collector: API, policies, ledger')
    .addHelpText(
      'after',
      `\nDefault data directory: ${defaultCollectorDataDir()} (Linux /var/lib/mamori/collector, Windows %ProgramData%\\Mamori\\collector, macOS /Library/Application Support/Mamori/collector)`,
    );
  registerServeCommand(collector);
  registerAdminCommands(collector);
  registerKeyCommands(collector);
  registerTokenCommands(collector);
  registerUnlockCommand(collector);
  registerForwardCommands(collector);
  registerAlertCommands(collector);
  registerRetentionCommands(collector);
  registerExportCommands(program);
}
