import { defaultIpcPathFor } from '../shared';

/** The agent's IPC endpoint on each OS, unless `--ipc` says otherwise. */
export function defaultIpcPath(platform: NodeJS.Platform = process.platform): string {
  return defaultIpcPathFor(platform);
}
