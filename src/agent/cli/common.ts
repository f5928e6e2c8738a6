import { Option } from 'commander';
import { defaultAgentDataDir } from '../paths';

// Loaded by `agent run` before the schemas: nothing from ../../shared here.

/** Options most agent commands take. */
export interface CommonOptions {
  dataDir: string;
  systemRoot: string;
  json?: boolean;
}

export function print(line: string): void {
  process.stdout.write(`${line}\n`);
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export const dataDirOption = (): Option => new Option('--data-dir <dir>', 'agent data directory').default(defaultAgentDataDir(), defaultAgentDataDir());

export const systemRootOption = (): Option => new Option('--system-root <dir>', 'root under which /sys, /etc and /var/log are read').default('/');
