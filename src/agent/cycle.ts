import { InventorySnapshot, diffInventory, inventoryHash, sanitizeText, type Clock } from '../shared';
import type { EnforcementService, Reconciler } from './enforcement';
import type { ExceptionBook } from './exceptions';
import type { InventoryCollector } from './inventory';
import type { Logger } from './logger';
import type { LoginSource } from './logins';
import { acceptPolicy, loadEnrollment, loadPolicy } from './policy';
import { enrollFromProvision } from './provision';
import { STATE_KEYS } from './state-keys';
import { AGENT_RETENTION_DAYS, type EventStore } from './store';
import { syncEvents } from './sync';
import { CollectorRefusedError, CollectorUnreachableError, type SyncClient } from './sync-client';

/** What one cycle achieved with the collector. */
export interface CycleResult {
  enrolled: boolean;
  /** Not enrolled yet, with an installer's provision that could not enroll this time. */
  provisionPending?: boolean;
  collectorReachable: boolean;
  sent: number;
  ackSeq: number;
}

/** What a cycle works with; built once by the agent's wiring (src/agent/main.ts). */
export interface CycleParts {
  store: EventStore;
  clock: Clock;
  log: Logger;
  dataDir: string;
  systemRoot: string;
  inventory: InventoryCollector;
  logins: LoginSource;
  exceptions: ExceptionBook;
  reconciler: Reconciler;
  enforcement: Pick<EnforcementService, 'state' | 'reasons'>;
  /** The collector client of the current enrollment; null before enrollment. */
  client(): SyncClient | null;
}

/** One cycle of the agent (docs/design.md#agent-cycle), and the pieces the scheduler runs apart. */
export interface Cycle {
  /** Enforce, inventory, logins, then policy, inventory upload, approvals and events with the collector. */
  run(): Promise<CycleResult>;
  /** Enrolls from an installer's provision when there is one and the terminal is not enrolled. */
  provisionIfNeeded(): Promise<void>;
  /** Delivers the events still unsent; `previous` when there is no collector or it fails. */
  syncOnly(previous: CycleResult): Promise<CycleResult>;
  /** Whether the last cycle reached the collector. */
  collectorReachable(): boolean;
}

/**
 * A terminal installed with a provision enrolls itself: at start, and again every cycle until it
 * has, since a PC is often installed before it can reach the collector. Each new reason for a
 * failure is recorded once.
 */
async function provisionIfNeeded(parts: CycleParts): Promise<void> {
  const { store, log } = parts;
  try {
    if (await enrollFromProvision(store, parts.dataDir, parts.systemRoot)) {
      log.info({}, 'enrolled from the installer provision');
      store.setState(STATE_KEYS.provisionError, '');
    }
  } catch (err) {
    const message = sanitizeText((err as Error).message, 500);
    log.error({ err: message }, 'enrollment from the installer provision failed; retrying at the next cycle');
    if (store.getState(STATE_KEYS.provisionError) === message) return;
    store.setState(STATE_KEYS.provisionError, message);
    store.append({ type: 'agent.warning', payload: { component: 'provision', code: 'enroll_failed', message } });
  }
}

/** The last snapshot kept, read as the schema says (one from an older agent gains defaults). */
function storedSnapshot(store: EventStore): InventorySnapshot | null {
  const json = store.getState(STATE_KEYS.inventory);
  if (!json) return null;
  try {
    const parsed = InventorySnapshot.safeParse(JSON.parse(json));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

/** Records `inventory.changed` when the snapshot differs from the last one, never otherwise. */
async function refreshInventory(parts: CycleParts): Promise<InventorySnapshot> {
  const { store, enforcement } = parts;
  const snapshot: InventorySnapshot = { ...(await parts.inventory.collect()), enforcement: enforcement.state(), enforcementReasons: enforcement.reasons() };
  const hash = inventoryHash(snapshot);
  const previousHash = store.getState(STATE_KEYS.inventoryHash);
  if (hash !== previousHash) {
    const changes = diffInventory(storedSnapshot(store), snapshot).slice(0, 500);
    store.append({ type: 'inventory.changed', payload: { hash, previousHash, changes } });
    store.setState(STATE_KEYS.inventoryHash, hash);
  }
  // The latest snapshot is kept even when unchanged in substance, for the next upload.
  store.setState(STATE_KEYS.inventory, JSON.stringify(snapshot));
  for (const w of snapshot.warnings) parts.log.warn({ section: w.section }, `inventory probe failed: ${w.message}`);
  return snapshot;
}

/**
 * Records new logon, logoff, failure, lock and boot records. The events and the file positions
 * are committed together, so each record becomes exactly one event whatever stops the agent.
 */
async function readLogins(parts: CycleParts): Promise<void> {
  const { store } = parts;
  let pass;
  try {
    pass = await parts.logins.readNew();
  } catch (err) {
    // Recorded once per distinct failure, not once per cycle.
    const message = sanitizeText((err as Error).message, 500);
    if (store.getState(STATE_KEYS.loginsFailure) !== message) {
      store.append({ type: 'agent.warning', payload: { component: 'logins', code: 'source_failed', message } });
      store.setState(STATE_KEYS.loginsFailure, message);
    }
    return;
  }
  store.deleteState(STATE_KEYS.loginsFailure);
  store.transaction(() => {
    for (const event of pass.events) store.append(event);
    if (pass.badRecords > 0) {
      store.append({
        type: 'agent.warning',
        payload: { component: 'logins', code: 'bad_records', message: `${pass.badRecords} unreadable login record(s) skipped`, count: pass.badRecords },
      });
    }
    for (const [key, value] of pass.state) store.setState(key, value);
  });
}

/** Policy, inventory upload, approvals and events, in that order. */
async function talkToCollector(parts: CycleParts, api: SyncClient, snapshot: InventorySnapshot): Promise<CycleResult> {
  const { store, clock } = parts;
  const enrollment = loadEnrollment(store);
  const response = await api.getPolicy();
  if (enrollment) acceptPolicy(store, response, enrollment, { clock });
  const hash = inventoryHash(snapshot);
  if (store.getState(STATE_KEYS.inventorySentHash) !== hash) {
    await api.putInventory(snapshot);
    store.setState(STATE_KEYS.inventorySentHash, hash);
  }
  let granted = false;
  for (const approval of await api.getApprovedExceptions()) {
    if (parts.exceptions.grantApproved(approval.requestId, approval.expiresAt)) granted = true;
  }
  // An approval takes effect in this cycle, and its exception.granted goes out with it.
  if (granted) await parts.reconciler.reconcile('exception');
  const { sent, ackSeq } = await syncEvents(store, api);
  store.pruneAcknowledged(new Date(clock.now().getTime() - AGENT_RETENTION_DAYS * 86_400_000));
  store.setState(STATE_KEYS.lastSyncAt, clock.now().toISOString());
  store.deleteState(STATE_KEYS.lastSyncError);
  return { enrolled: true, collectorReachable: true, sent, ackSeq };
}

/** Builds the agent's cycle over its parts. */
export function createCycle(parts: CycleParts): Cycle {
  const { store, log, reconciler } = parts;
  let collectorReachable = false;

  async function withCollector(api: SyncClient, snapshot: InventorySnapshot): Promise<CycleResult> {
    try {
      const version = loadPolicy(store)?.version;
      const result = await talkToCollector(parts, api, snapshot);
      // A new policy takes effect in this cycle, and its policy.applied goes out with it.
      if (loadPolicy(store)?.version !== version) {
        await reconciler.reconcile('policy');
        const more = await syncEvents(store, api);
        result.sent += more.sent;
        result.ackSeq = more.ackSeq;
      }
      collectorReachable = true;
      return result;
    } catch (err) {
      if (err instanceof CollectorUnreachableError || err instanceof CollectorRefusedError) {
        collectorReachable = false;
        store.setState(STATE_KEYS.lastSyncError, err.message);
        log.warn({ code: err.code }, err.message);
        return { enrolled: true, collectorReachable: false, sent: 0, ackSeq: store.ackSeq() };
      }
      throw err;
    }
  }

  return {
    async run() {
      // The policy in force is enforced before anything else, whatever the collector says today.
      await reconciler.reconcile('cycle');
      const snapshot = await refreshInventory(parts);
      await readLogins(parts);
      let api = parts.client();
      if (!api) {
        await provisionIfNeeded(parts);
        api = parts.client();
      }
      if (!api)
        return { enrolled: false, provisionPending: !!store.getState(STATE_KEYS.provisionError), collectorReachable: false, sent: 0, ackSeq: store.ackSeq() };
      return withCollector(api, snapshot);
    },
    provisionIfNeeded: () => provisionIfNeeded(parts),
    async syncOnly(previous) {
      const api = parts.client();
      if (!api) return previous;
      try {
        const { sent, ackSeq } = await syncEvents(store, api);
        return { ...previous, sent: previous.sent + sent, ackSeq };
      } catch {
        return previous;
      }
    },
    collectorReachable: () => collectorReachable,
  };
}
