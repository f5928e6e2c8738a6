import fs from 'node:fs';
import path from 'node:path';
import { parseProvision, type Provision } from '../shared';
import { enrollAgent } from './enroll';
import { loadEnrollment } from './policy';
import type { EventStore } from './store';

/** The provision the installer left for the service, inside the agent's data directory. */
export function provisionFile(dataDir: string): string {
  return path.join(dataDir, 'provision.json');
}

/**
 * Writes a validated provision into the data directory (mode 0600), for the service to enroll with
 * on its first start.
 * @throws Error naming what is wrong; nothing is written then.
 */
export function writeProvision(dataDir: string, value: unknown): Provision {
  const provision = parseProvision(value);
  fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  fs.writeFileSync(provisionFile(dataDir), JSON.stringify(provision, null, 2), { mode: 0o600 });
  return provision;
}

/**
 * At start: when the terminal is not enrolled and a provision is waiting, enroll with it, then
 * delete the token (the file keeps the rest for IT to read). An enrolled terminal ignores it.
 * @returns whether it enrolled now.
 * @throws the enrollment's error; the provision stays for the next start.
 */
export async function enrollFromProvision(store: EventStore, dataDir: string, systemRoot: string): Promise<boolean> {
  const file = provisionFile(dataDir);
  if (loadEnrollment(store) || !fs.existsSync(file)) return false;
  const provision = parseProvision(JSON.parse(fs.readFileSync(file, 'utf8')));
  await enrollAgent({
    store,
    collectorUrl: provision.collectorUrl,
    token: provision.token,
    systemRoot,
    ...(provision.collectorPublicKey ? { expectedPublicKey: provision.collectorPublicKey } : {}),
  });
  const { token: _spent, ...rest } = provision;
  fs.writeFileSync(file, JSON.stringify({ ...rest, enrolled: true }, null, 2), { mode: 0o600 });
  return true;
}
