import os from 'node:os';
import { InventorySnapshot, MAMORI_VERSION, diffInventory, inventoryHash, sanitizeText, systemClock, type Clock } from '../shared';
import { createInventoryCollector, type InventoryCollector } from './inventory';
import { createLoginSource, type LoginSource } from './logins';
import type { Logger } from './logger';
import { nextDelayMs } from './backoff';
import { createDeviceHints, createEnforcementService, createEnforcer, createReconciler, loadLocalAllow, withLocalAllow, type DeviceHints, type Enforcer } from './enforcement';
import { storeFile } from './paths';
import { enrollFromProvision } from './provision';
import { createExceptionBook } from './exceptions';
import { createAgentService } from './ipc/service';
import { startIpcServer, type IpcServer } from './ipc/socket';
import { execRunner } from './os/command';
import { createSessionProbe } from './os/session';
import { defaultIpcPath } from './paths';
import { acceptPolicy, loadEnrollment, loadPolicy } from './policy';
import { AGENT_RETENTION_DAYS, openEventStore, type EventStore } from './store';
import { syncEvents } from './sync';
import { CollectorRefusedError, CollectorUnreachableError, createSyncClient, type SyncClient } from './sync-client';

/** State keys the agent keeps in its store. */
export const STATE = {
  inventory: 'inventory.snapshot',
  inventoryHash: 'inventory.hash',
  inventorySentHash: 'inventory.sent_hash',
  lastSyncAt: 'sync.last_at',
  lastSyncError: 'sync.last_error',
  /** Why enrolling from the installer's provision last failed; empty once it worked. */
  provisionError: 'provision.last_error',
} as const;

export interface AgentOptions {
  dataDir: string;
  systemRoot: string;
  ipcPath?: string;
  logger: Logger;
  /** For tests: another inventory source. */
  inventory?: InventoryCollector;
  /** For tests: another collector client. */
  client?: SyncClient;
  /** For tests: another login source. */
  logins?: LoginSource;
  /** For tests: another enforcer. */
  enforcer?: Enforcer;
  /** How often the reconciler runs without a hint (default 30 s). */
  reconcileIntervalMs?: number;
  /**
   * The time every decision reads (exception expiries, 72-hour unlock windows, event times, the
   * inventory's `collectedAt`); the wall clock by default.
   */
  clock?: Clock;
  /** For tests: other USB device notices (usb-detection by default). */
  hints?: DeviceHints;
}

/** What one cycle achieved with the collector. */
export interface CycleResult {
  enrolled: boolean;
  /** Not enrolled yet, with an installer's provision that could not enroll this time. */
  provisionPending?: boolean;
  collectorReachable: boolean;
  sent: number;
  ackSeq: number;
}

/** The agent service: the composition root of everything that runs privileged on a terminal. */
export interface Agent {
  readonly store: EventStore;
  /** One full cycle (policy, inventory, sync) between `agent.started` and `agent.stopped`. */
  runOnce(): Promise<CycleResult>;
  /** Cycles on the policy's interval until SIGINT, SIGTERM or `stop()`, backing off while offline. */
  runForever(): Promise<void>;
  /** Asks `runForever` to finish as SIGTERM does (it resolves once stopped). */
  stop(): void;
  /** Asks for a cycle now, as an incident or an exception request over IPC does. */
  requestCycle(): void;
}

/**
 * Opens the store and wires the agent's parts.
 * @throws StoreError when the store cannot be opened (it is never overwritten).
 */
export function createAgent(opts: AgentOptions): Agent {
  const clock = opts.clock ?? systemClock;
  const now = () => clock.now();
  const store = openEventStore(storeFile(opts.dataDir), { clock });
  const log = opts.logger;
  const inventory =
    opts.inventory ??
    createInventoryCollector({ systemRoot: opts.systemRoot, logger: log, agentVersion: MAMORI_VERSION, now });

  const logins = opts.logins ?? createLoginSource({ platform: process.platform, systemRoot: opts.systemRoot, state: store, now });
  const exceptions = createExceptionBook(store, now);
  const reconciler = createReconciler({
    store,
    enforcer:
      opts.enforcer ??
      createEnforcer({
        platform: process.platform,
        systemRoot: opts.systemRoot,
        memory: { load: () => store.getState('enforcement.set'), save: (json) => store.setState('enforcement.set', json) },
      }),
    getPolicy: () => withLocalAllow(loadPolicy(store), loadLocalAllow(store)),
    getExceptions: () => exceptions.active(now()),
    logger: log,
    now,
  });
  // Device hints and a timer only trigger level-triggered passes; without hints the timer alone
  // keeps enforcing, and one agent.warning says so. Started by runForever; until then its state is
  // the reconciler's. Status and inventory report this service's state: it is the one that is true.
  const intervalMs = opts.reconcileIntervalMs ?? 30_000;
  const enforcement = createEnforcementService({
    reconciler,
    hints: opts.hints ?? createDeviceHints({ logger: log }),
    intervalMs,
    logger: log,
    onHintsUnavailable: (error) => {
      if (store.getState('hints.failure') === error) return;
      const message = sanitizeText(`USB device notices unavailable (${error}); enforcing every ${Math.round(intervalMs / 1000)} s`, 500);
      store.append({ type: 'agent.warning', payload: { component: 'device-hints', code: 'unavailable', message } });
      store.setState('hints.failure', error);
    },
  });
  let collectorReachable = false;
  let stopping = false;
  let wakeNow: (() => void) | null = null;
  // Set when something asks for a cycle while one is running, so the request is not lost.
  let cycleRequested = false;
  const requestCycle = () => {
    cycleRequested = true;
    wakeNow?.();
  };
  // The console session's user keeps IPC slots and alone records locks (docs/design.md#ipc-peers).
  const sessions = createSessionProbe({ platform: process.platform, run: execRunner, systemRoot: opts.systemRoot, now: () => clock.now().getTime() });
  const service = createAgentService({
    store,
    sessions,
    exceptions,
    now,
    enforcement: () => enforcement.state(),
    degradedReasons: () => enforcement.reasons(),
    collectorReachable: () => collectorReachable,
    syncSoon: requestCycle,
    reconcileNow: () => void reconciler.reconcile('exception'),
  });

  function client(): SyncClient | null {
    if (opts.client) return opts.client;
    const enrollment = loadEnrollment(store);
    if (!enrollment) return null;
    return createSyncClient({ baseUrl: enrollment.collectorUrl, agentId: enrollment.agentId, agentToken: enrollment.agentToken, head: () => store.head() });
  }

  /**
   * A terminal installed with a provision enrolls itself: at start, and again every cycle until it
   * has, since a PC is often installed before it can reach the collector. Each new reason for a
   * failure is recorded once.
   */
  async function provisionIfNeeded(): Promise<void> {
    try {
      if (await enrollFromProvision(store, opts.dataDir, opts.systemRoot)) {
        log.info({}, 'enrolled from the installer provision');
        store.setState(STATE.provisionError, '');
      }
    } catch (err) {
      const message = sanitizeText((err as Error).message, 500);
      log.error({ err: message }, 'enrollment from the installer provision failed; retrying at the next cycle');
      if (store.getState(STATE.provisionError) === message) return;
      store.setState(STATE.provisionError, message);
      store.append({ type: 'agent.warning', payload: { component: 'provision', code: 'enroll_failed', message } });
    }
  }

  function recordStart(): void {
    store.append({
      type: 'agent.started',
      payload: { version: MAMORI_VERSION, platform: process.platform, hostname: os.hostname(), pid: process.pid },
    });
  }

  function recordStop(reason: string): void {
    store.append({ type: 'agent.stopped', payload: { reason } });
  }

  /** The last snapshot kept, read as the schema says (one from an older agent gains defaults). */
  function storedSnapshot(): InventorySnapshot | null {
    const json = store.getState(STATE.inventory);
    if (!json) return null;
    try {
      const parsed = InventorySnapshot.safeParse(JSON.parse(json));
      return parsed.success ? parsed.data : null;
    } catch {
      return null;
    }
  }

  /** Records `inventory.changed` when the snapshot differs from the last one, never otherwise. */
  async function refreshInventory(): Promise<InventorySnapshot> {
    const snapshot: InventorySnapshot = { ...(await inventory.collect()), enforcement: enforcement.state(), enforcementReasons: enforcement.reasons() };
    const hash = inventoryHash(snapshot);
    const previousHash = store.getState(STATE.inventoryHash);
    if (hash !== previousHash) {
      const previous = storedSnapshot();
      const changes = diffInventory(previous, snapshot).slice(0, 500);
      store.append({ type: 'inventory.changed', payload: { hash, previousHash, changes } });
      store.setState(STATE.inventoryHash, hash);
    }
    // The latest snapshot is kept even when unchanged in substance, for the next upload.
    store.setState(STATE.inventory, JSON.stringify(snapshot));
    for (const w of snapshot.warnings) log.warn({ section: w.section }, `inventory probe failed: ${w.message}`);
    return snapshot;
  }

  async function talkToCollector(api: SyncClient, snapshot: InventorySnapshot): Promise<CycleResult> {
    const enrollment = loadEnrollment(store);
    const response = await api.getPolicy();
    if (enrollment) acceptPolicy(store, response, enrollment, { clock });
    const hash = inventoryHash(snapshot);
    if (store.getState(STATE.inventorySentHash) !== hash) {
      await api.putInventory(snapshot);
      store.setState(STATE.inventorySentHash, hash);
    }
    let granted = false;
    for (const approval of await api.getApprovedExceptions()) {
      if (exceptions.grantApproved(approval.requestId, approval.expiresAt)) granted = true;
    }
    // An approval takes effect in this cycle, and its exception.granted goes out with it.
    if (granted) await reconciler.reconcile('exception');
    const { sent, ackSeq } = await syncEvents(store, api);
    store.pruneAcknowledged(new Date(clock.now().getTime() - AGENT_RETENTION_DAYS * 86_400_000));
    store.setState(STATE.lastSyncAt, clock.now().toISOString());
    store.deleteState(STATE.lastSyncError);
    return { enrolled: true, collectorReachable: true, sent, ackSeq };
  }

  /**
   * Records new logon, logoff, failure, lock and boot records. The events and the file positions
   * are committed together, so each record becomes exactly one event whatever stops the agent.
   */
  async function readLogins(): Promise<void> {
    let pass;
    try {
      pass = await logins.readNew();
    } catch (err) {
      // Recorded once per distinct failure, not once per cycle.
      const message = sanitizeText((err as Error).message, 500);
      if (store.getState('logins.failure') !== message) {
        store.append({ type: 'agent.warning', payload: { component: 'logins', code: 'source_failed', message } });
        store.setState('logins.failure', message);
      }
      return;
    }
    store.deleteState('logins.failure');
    store.transaction(() => {
      for (const event of pass.events) store.append(event);
      if (pass.badRecords > 0) {
        store.append({ type: 'agent.warning', payload: { component: 'logins', code: 'bad_records', message: `${pass.badRecords} unreadable login record(s) skipped`, count: pass.badRecords } });
      }
      for (const [key, value] of pass.state) store.setState(key, value);
    });
  }

  async function cycle(): Promise<CycleResult> {
    // The policy in force is enforced before anything else, whatever the collector says today.
    await reconciler.reconcile('cycle');
    const snapshot = await refreshInventory();
    await readLogins();
    let api = client();
    if (!api) {
      await provisionIfNeeded();
      api = client();
    }
    if (!api) return { enrolled: false, provisionPending: !!store.getState(STATE.provisionError), collectorReachable: false, sent: 0, ackSeq: store.ackSeq() };
    try {
      const version = loadPolicy(store)?.version;
      const result = await talkToCollector(api, snapshot);
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
        store.setState(STATE.lastSyncError, err.message);
        log.warn({ code: err.code }, err.message);
        return { enrolled: true, collectorReachable: false, sent: 0, ackSeq: store.ackSeq() };
      }
      throw err;
    }
  }

  return {
    store,
    async runOnce() {
      try {
        await provisionIfNeeded();
        recordStart();
        const first = await cycle();
        recordStop('once');
        // Deliver the stop record too, so the collector sees the whole run.
        if (first.collectorReachable) return await cycleSyncOnly(first);
        return first;
      } finally {
        store.close();
      }
    },
    requestCycle,
    stop() {
      stopping = true;
      wakeNow?.();
    },
    async runForever() {
      stopping = false;
      await provisionIfNeeded();
      recordStart();
      const ipc: IpcServer = await startIpcServer({ path: opts.ipcPath ?? defaultIpcPath(), service, logger: log });
      await enforcement.start();
      const stop = (signal: string) => {
        stopping = true;
        log.info({ signal }, 'stopping');
        wakeNow?.();
      };
      const onSigint = () => stop('SIGINT');
      const onSigterm = () => stop('SIGTERM');
      process.once('SIGINT', onSigint);
      process.once('SIGTERM', onSigterm);
      let failures = 0;
      while (!stopping) {
        // A request made before this cycle starts is served by it; only one made while it runs
        // asks for another (a request during the wait wakes the loop and is consumed here).
        cycleRequested = false;
        try {
          const result = await cycle();
          // Offline, or installed before the collector could be reached: retry with backoff.
          failures = (result.enrolled && !result.collectorReachable) || result.provisionPending ? failures + 1 : 0;
        } catch (err) {
          failures += 1;
          log.error({ err }, 'cycle failed');
        }
        if (stopping) break;
        const delay = cycleRequested ? 0 : nextDelayMs(loadPolicy(store)?.syncIntervalSeconds ?? 300, failures);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, delay);
          wakeNow = () => {
            clearTimeout(timer);
            wakeNow = null;
            resolve();
          };
        });
      }
      process.off('SIGINT', onSigint);
      process.off('SIGTERM', onSigterm);
      await enforcement.stop();
      await ipc.stop();
      service.stop();
      recordStop('signal');
      const api = client();
      if (api) await syncEvents(store, api).catch(() => undefined);
      store.close();
    },
  };

  async function cycleSyncOnly(previous: CycleResult): Promise<CycleResult> {
    const api = client();
    if (!api) return previous;
    try {
      const { sent, ackSeq } = await syncEvents(store, api);
      return { ...previous, sent: previous.sent + sent, ackSeq };
    } catch {
      return previous;
    }
  }
}
