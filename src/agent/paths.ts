import path from 'node:path';

// No import of ../shared here: the start-up path (docs/design.md#agent-cycle) reads these before
// the schemas are loaded.

/** Where the agent keeps its store and state on each OS, unless `--data-dir` says otherwise. */
export function defaultAgentDataDir(
  platform: NodeJS.Platform = process.platform,
  env: NodeJS.ProcessEnv = process.env,
): string {
  switch (platform) {
    case 'win32':
      return path.win32.join(env.ProgramData ?? 'C:\\ProgramData', 'Mamori');
    case 'darwin':
      return '/Library/Application Support/Mamori';
    default:
      return '/var/lib/mamori';
  }
}

/** The event store file inside a data directory. */
export function storeFile(dataDir: string): string {
  return path.join(dataDir, 'agent.db');
}
