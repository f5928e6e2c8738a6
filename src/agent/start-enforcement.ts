import fs from 'node:fs';
import Database from 'better-sqlite3';
import type { AllowEntry, Policy, RemovableMediaMode } from '../shared';
// The shared modules' own files, not their index: the index builds every schema (zod), which is
// what this pass runs ahead of (docs/design.md#agent-cycle).
import { systemClock, type Clock } from '../shared/clock';
import { sanitizeDeep } from '../shared/text';
import { loadEnforcer } from './enforcement/load';
import { evaluateDevice, type ExceptionGrant } from './enforcement/evaluate';
import type { CommandRunner } from './os/command';
import { storeFile } from './paths';
import { STATE_KEYS, type StateKey } from './state-keys';
import { APPLICATION_ID } from './store-id';

/** What the start-up pass did; logged by the service once its logger is loaded. */
export interface StartEnforcement {
  /** Whether controls were brought to the stored policy. */
  ran: boolean;
  /** Why it did not run (no store yet, no policy, a store it cannot read). */
  skipped?: string;
  mode?: RemovableMediaMode;
  changed?: boolean;
  /** Controls it could not set; the service's first pass tries again and records them. */
  failures?: string[];
}

const MODES = { block: true, readonly: true, audit: true, allow: true } satisfies Record<RemovableMediaMode, true>;
const HEX4 = /^[0-9a-f]{4}$/;

const isAllowEntry = (e: unknown): e is AllowEntry => {
  const entry = e as Partial<AllowEntry> | null;
  return (
    !!entry &&
    typeof entry === 'object' &&
    HEX4.test(String(entry.vendorId)) &&
    HEX4.test(String(entry.productId)) &&
    (entry.serial === undefined || typeof entry.serial === 'string') &&
    (entry.note === undefined || typeof entry.note === 'string')
  );
};

/**
 * The stored policy's removable-media part, checked by hand for what evaluation reads. It was
 * verified and parsed when it was accepted (src/agent/policy.ts); anything odd here means the
 * pass is skipped and left to the service, which reads the policy through its schema.
 */
function storedPolicy(json: string | null, localJson: string | null): Policy | null {
  try {
    const policy = JSON.parse(json ?? 'null') as Policy | null;
    const local = JSON.parse(localJson ?? '[]') as unknown;
    const media = policy?.removableMedia;
    if (!media || !Object.hasOwn(MODES, media.mode) || !Array.isArray(media.allow) || !Array.isArray(local)) return null;
    const allow = [...media.allow, ...local];
    return allow.every(isAllowEntry) ? { ...policy, removableMedia: { mode: media.mode, allow } } : null;
  } catch {
    return null;
  }
}

function grants(json: string | null): ExceptionGrant[] {
  try {
    const list = JSON.parse(json ?? '[]') as unknown;
    return Array.isArray(list) ? list.filter((g): g is ExceptionGrant => !!g && typeof (g as ExceptionGrant).expiresAt === 'string' && typeof (g as ExceptionGrant).device === 'object') : [];
  } catch {
    return [];
  }
}

/** The agent's store, opened for its state table only; null when it is not (yet) one. */
function openState(file: string): Database.Database | null {
  if (!fs.existsSync(file)) return null;
  const db = new Database(file, { fileMustExist: true });
  try {
    db.pragma('busy_timeout = 5000');
    const isOurs = db.pragma('application_id', { simple: true }) === APPLICATION_ID;
    const hasState = db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'state'`).get() !== undefined;
    if (isOurs && hasState) return db;
  } catch {
    // A damaged file: the service reports it when it opens the store.
  }
  db.close();
  return null;
}

/**
 * The start-up pass: before the service loads its schemas, logger and probes, bring the OS
 * controls to the policy already stored (verified when it was accepted), the terminal's own
 * allowlist and the exceptions granted, so a stick plugged in while the agent was stopped is
 * blocked within milliseconds of the process starting rather than after the whole service has
 * loaded. It records no event: events need the schemas. What it changed the service's first pass
 * finds already in place and records as usual (`device.blocked`, `policy.applied`); drift it
 * corrected is kept in `enforcement.start_drift`, in the same transaction as the enforcer's
 * memory, and recorded by that first pass. Never throws.
 */
export async function enforceStoredPolicy(opts: { dataDir: string; systemRoot: string; platform?: NodeJS.Platform; runner?: CommandRunner; clock?: Clock }): Promise<StartEnforcement> {
  let db: Database.Database | null = null;
  try {
    db = openState(storeFile(opts.dataDir));
    if (!db) return { ran: false, skipped: 'no agent store yet' };
    const read = db.prepare('SELECT value FROM state WHERE key = ?').pluck();
    const get = (key: StateKey) => (read.get(key) as string | undefined) ?? null;
    const policy = storedPolicy(get(STATE_KEYS.policy), get(STATE_KEYS.localAllow));
    if (!policy) return { ran: false, skipped: 'no stored policy' };
    let memory: string | null = null;
    const enforcer = await loadEnforcer({
      platform: opts.platform ?? process.platform,
      systemRoot: opts.systemRoot,
      ...(opts.runner ? { runner: opts.runner } : {}),
      memory: { load: () => get(STATE_KEYS.enforcementSet), save: (json) => (memory = json) },
    });
    const now = (opts.clock ?? systemClock).now();
    const exceptions = grants(get(STATE_KEYS.exceptionsActive));
    const devices = sanitizeDeep(await enforcer.devices());
    const decisions = devices.map((device) => ({ device, evaluation: evaluateDevice(device, policy, exceptions, now) }));
    const pass = await enforcer.enforce(policy.removableMedia.mode, decisions, policy.removableMedia.allow);
    save(db, memory, pass.drift);
    return { ran: true, mode: policy.removableMedia.mode, changed: pass.changed, failures: pass.failures };
  } catch (err) {
    return { ran: false, skipped: `start-up pass failed: ${(err as Error).message}` };
  } finally {
    db?.close();
  }
}

/** The enforcer's memory and the drift to record, in one transaction. */
function save(db: Database.Database, memory: string | null, drift: unknown[]): void {
  const read = db.prepare('SELECT value FROM state WHERE key = ?').pluck();
  const write = db.prepare('INSERT INTO state (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value');
  db.transaction(() => {
    if (memory !== null) write.run(STATE_KEYS.enforcementSet, memory);
    if (drift.length === 0) return;
    // A second start before the service recorded the first one's drift keeps both.
    const earlier = JSON.parse((read.get(STATE_KEYS.enforcementStartDrift) as string | undefined) ?? '[]') as unknown[];
    write.run(STATE_KEYS.enforcementStartDrift, JSON.stringify([...earlier, ...drift]));
  }).immediate();
}
