import fs from 'node:fs';
import path from 'node:path';
import { UsageError, parseProvision, provisionFromArgs, provisionText, type Provision } from '../shared';
import { enrollAgent } from './enroll';
import { storeFile } from './paths';
import { loadEnrollment, type Enrollment } from './policy';
import { openEventStore, type EventStore } from './store';

/** The provision the installer left for the service, inside the agent's data directory. */
export function provisionFile(dataDir: string): string {
  return path.join(dataDir, 'provision.json');
}

/** The file IT puts beside the installer (or in /etc/mamori on Linux). */
export const PROVISION_FILE_NAME = 'mamori-provision.json';

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

/** Where an installer's provision comes from. */
export interface InstallerProvisionInput {
  dataDir: string;
  /** An explicit `mamori-provision.json` (it must exist). */
  file?: string;
  /**
   * The installer (or its folder): a `mamori-provision.json` beside it is read when present. A
   * file path is accepted so installers need not strip a trailing backslash (`"D:\"` would escape
   * the closing quote on a Windows command line).
   */
  beside?: string;
  /** Installer arguments, NSIS (`/COLLECTOR=…`) or MSI (`COLLECTOR=…`) style; they win over the file. */
  args: readonly string[];
}

/** What installer provisioning decided. */
export type InstallerProvisionOutcome =
  | { outcome: 'stored'; provision: Provision; message: string }
  | { outcome: 'enrolled'; enrollment: Enrollment; message: string }
  | { outcome: 'pending'; provision: Provision; message: string };

/** Reads a provision file as Windows editors save it too (UTF-8 with a BOM). */
function readProvisionFile(file: string): Record<string, unknown> {
  try {
    const value = JSON.parse(fs.readFileSync(file, 'utf8').replace(/^\uFEFF/, '')) as unknown;
    if (!value || typeof value !== 'object' || Array.isArray(value)) throw new Error('not a JSON object');
    return value as Record<string, unknown>;
  } catch (err) {
    throw new UsageError(provisionText('unreadable', { file, reason: (err as NodeJS.ErrnoException).code ?? (err as Error).message }));
  }
}

/** The enrollment in a data directory, without creating anything there. */
function existingEnrollment(dataDir: string): Enrollment | null {
  const file = storeFile(dataDir);
  if (!fs.existsSync(file)) return null;
  const store = openEventStore(file, { readonly: true });
  try {
    return loadEnrollment(store);
  } finally {
    store.close();
  }
}

function pendingProvision(dataDir: string): Provision | null {
  try {
    return parseProvision(JSON.parse(fs.readFileSync(provisionFile(dataDir), 'utf8')));
  } catch {
    // Absent, or the token-less record an enrollment leaves: nothing is waiting.
    return null;
  }
}

function besideFile(beside: string): string {
  let dir = beside;
  try {
    if (!fs.statSync(beside).isDirectory()) dir = path.dirname(beside);
  } catch {
    dir = path.dirname(beside);
  }
  return path.join(dir, PROVISION_FILE_NAME);
}

/**
 * What an installer runs, on a fresh install and on every upgrade or repair alike:
 * - a terminal already enrolled keeps its enrollment and data; the provision is not used (nor
 *   stored: a spent token is not left on disk), so an upgrade with the original command line
 *   passes;
 * - otherwise the provision from the arguments (over a file given or found beside the
 *   installer) is validated and stored for the service's first start;
 * - with nothing given, a provision stored by an earlier install that is still waiting is kept;
 * - with nothing given and nothing waiting, the install must fail: a terminal that never enrolls
 *   is not protected.
 * @throws UsageError (one `日本語 / English` line) when the provision is invalid or missing.
 * @throws StoreError when the data directory holds a store that cannot be read.
 */
export function provisionFromInstaller(input: InstallerProvisionInput): InstallerProvisionOutcome {
  const enrollment = existingEnrollment(input.dataDir);
  if (enrollment) {
    return {
      outcome: 'enrolled',
      enrollment,
      message: provisionText('enrolled', { agentId: enrollment.agentId, segment: enrollment.segment, url: enrollment.collectorUrl }),
    };
  }
  let fromFile: Record<string, unknown> = {};
  if (input.file) fromFile = readProvisionFile(input.file);
  else if (input.beside && fs.existsSync(besideFile(input.beside))) fromFile = readProvisionFile(besideFile(input.beside));
  const fromArgs = provisionFromArgs(input.args);
  const value = { ...fromFile, ...fromArgs };
  if (Object.keys(value).length === 0) {
    const pending = pendingProvision(input.dataDir);
    if (pending) return { outcome: 'pending', provision: pending, message: provisionText('pending', { url: pending.collectorUrl, segment: pending.segment }) };
    throw new UsageError(provisionText('missing'));
  }
  let provision: Provision;
  try {
    provision = parseProvision(value);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  // A data directory that cannot be written is a failure of the machine, not bad usage (exit 1).
  writeProvision(input.dataDir, provision);
  const pinned = provision.collectorPublicKey !== undefined;
  return {
    outcome: 'stored',
    provision,
    message: provisionText('stored', {
      url: provision.collectorUrl,
      segment: provision.segment,
      pinnedJa: pinned ? '、公開鍵を固定' : '',
      pinned: pinned ? ', collector key pinned' : '',
    }),
  };
}

/**
 * Appends one line to the installer log (`install.log` in the data directory by default), so an
 * MSI or a silent install, which can show nothing, leaves the reason where IT looks.
 */
export function appendInstallLog(file: string, line: string): void {
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    fs.appendFileSync(file, `${new Date().toISOString()} ${line}\n`, { mode: 0o600 });
  } catch {
    // The log is a courtesy; the exit code and stderr still carry the outcome.
  }
}
