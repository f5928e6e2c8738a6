import { Command, CommanderError } from 'commander';
import { MAMORI_VERSION, UsageError } from '../shared';
import { registerAgentCommands } from '../agent/cli';
import { registerCollectorCommands } from '../collector/cli';
import { registerStartCommand } from './start';

/**
 * Builds the `mamori` program. Every command exits 0 on success, 1 on failure and 2 on bad usage,
 * with a one-line error on stderr (DESIGN.md, "CLI").
 */
export function createProgram(): Command {
  const program = new Command('mamori')
    .description('Mamori (守り): endpoint protection for local-government terminals')
    .version(MAMORI_VERSION)
    .showSuggestionAfterError(true);
  registerStartCommand(program);
  registerAgentCommands(program);
  registerCollectorCommands(program);
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
  const program = createProgram();
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
    if (err instanceof UsageError) {
      process.stderr.write(`mamori: ${err.message}\n`);
      return 2;
    }
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`mamori: ${message.split('\n')[0]}\n`);
    return 1;
  }
}
