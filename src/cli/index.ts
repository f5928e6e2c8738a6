import { Command, CommanderError } from 'commander';
// The shared modules' own files, not the index (which builds every schema): `mamori agent run`
// enforces before loading them (docs/design.md#agent-cycle).
import { MAMORI_VERSION } from '../shared/version';

/**
 * The command groups, each loaded only when its group is named: the agent service (`mamori agent
 * run`) must not carry the collector, its console and its exporters (kysely, fastify, exceljs, pg,
 * preact) in memory on every terminal.
 */
const GROUPS: Record<string, () => Promise<(program: Command, argv: readonly string[]) => void | Promise<void>>> = {
  start: async () => (await import('./start.js')).registerStartCommand,
  agent: async () => (await import('../agent/cli/index.js')).registerAgentCommands,
  collector: async () => (await import('../collector/cli/index.js')).registerCollectorCommands,
};

/**
 * Builds the `mamori` program for one command line: the group it names, or every group when it
 * names none (help, version, a typo that wants a suggestion). Every command exits 0 on success, 1
 * on failure and 2 on bad usage, with a one-line error on stderr (docs/design.md#cli).
 */
export async function createProgram(argv: readonly string[] = []): Promise<Command> {
  const program = new Command('mamori')
    .description('Mamori (守り): endpoint protection for local-government terminals')
    .version(MAMORI_VERSION)
    .showSuggestionAfterError(true);
  const named = argv[2];
  const groups = named !== undefined && Object.hasOwn(GROUPS, named) ? [GROUPS[named]!] : Object.values(GROUPS);
  for (const load of groups) await (await load())(program, argv);
  configureTree(program);
  return program;
}

/** Commander's defaults print help text on usage errors; we want one line and exit 2. */
function configureTree(command: Command): void {
  command.exitOverride();
  command.configureOutput({
    writeErr: (text) => {
      // Usage errors arrive here as "error: …"; help requested on stderr too.
      process.stderr.write(text.startsWith('error:') ? `mamori: ${text.slice(7).trim()}\n` : text);
    },
  });
  command.showHelpAfterError(false);
  for (const sub of command.commands) configureTree(sub);
}

/** Runs the CLI; resolves to the process exit code. */
export async function main(argv: string[]): Promise<number> {
  const program = await createProgram(argv);
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // A group named without its subcommand shows help on stderr: that is bad usage too.
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return err.exitCode === 0 ? 0 : 2;
      if (err.code === 'commander.executeSubCommandAsync') return err.exitCode;
      return 2;
    }
    const { UsageError } = await import('../shared/errors.js');
    if (err instanceof UsageError) {
      process.stderr.write(`mamori: ${err.message}\n`);
      return 2;
    }
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`mamori: ${message.split('\n')[0]}\n`);
    return 1;
  }
}
