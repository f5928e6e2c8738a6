import path from 'node:path';
import { defaultIpcPathFor } from '../shared';

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

/** The agent's IPC endpoint on each OS, unless `--ipc` says otherwise. */
export function defaultIpcPath(platform: NodeJS.Platform = process.platform): string {
  return defaultIpcPathFor(platform);
}

/** The event store file inside a data directory. */
export function storeFile(dataDir: string): string {
  return path.join(dataDir, 'agent.db');
}
