import type { Command } from 'commander';
import { defaultAgentDataDir } from '../paths';

/**
 * One file per command, each loaded only when its command is named (all of them for help and for
 * a typo that wants a suggestion), so `mamori agent run` loads the service and nothing else.
 */
const COMMANDS: Record<string, () => Promise<(agent: Command) => void>> = {
  inventory: async () => (await import('./inventory.js')).registerInventoryCommand,
  enroll: async () => (await import('./enroll.js')).registerEnrollCommand,
  provision: async () => (await import('./provision.js')).registerProvisionCommand,
  release: async () => (await import('./release.js')).registerReleaseCommand,
  run: async () => (await import('./run.js')).registerRunCommand,
  status: async () => (await import('./status.js')).registerStatusCommand,
  events: async () => (await import('./events.js')).registerEventsCommand,
  'verify-log': async () => (await import('./verify-log.js')).registerVerifyLogCommand,
};

/** Adds `mamori agent …` to the program: the command `argv` names, or all of them. */
export async function registerAgentCommands(program: Command, argv: readonly string[] = []): Promise<void> {
  const agent = program
    .command('agent')
    .description('the endpoint agent: enforcement, inventory, logins, local log, sync')
    .addHelpText(
      'after',
      `\nDefault data directory: ${defaultAgentDataDir()} (Linux /var/lib/mamori, Windows %ProgramData%\\Mamori, macOS /Library/Application Support/Mamori)`,
    );
  const named = argv[3];
  const loaders = named !== undefined && Object.hasOwn(COMMANDS, named) ? [COMMANDS[named]!] : Object.values(COMMANDS);
  for (const register of await Promise.all(loaders.map((load) => load()))) register(agent);
}
