import os from 'node:os';
import { MAMORI_VERSION, sanitizeText, systemClock, type Clock } from '../shared';
import { createCycle, type Cycle, type CycleResult } from './cycle';
import { createDeviceHints, createEnforcementService, createEnforcer, createReconciler, loadLocalAllow, withLocalAllow, type DeviceHints, type EnforcementService, type Enforcer, type Reconciler } from './enforcement';
import { createExceptionBook, type ExceptionBook } from './exceptions';
import { createInventoryCollector, type InventoryCollector } from './inventory';
import { createAgentService } from './ipc/service';
import { startIpcServer, type IpcServer } from './ipc/socket';
import { execRunner } from './os/command';
import { createSessionProbe } from './os/session';
import { defaultIpcPath } from './ipc-path';
import type { Logger } from './logger';
import { createLoginSource, type LoginSource } from './logins';
import { createUsbReader } from './os/usb';
import { storeFile } from './paths';
import { loadEnrollment, loadPolicy } from './policy';
import { createScheduler, type Scheduler } from './scheduler';
import { STATE_KEYS } from './state-keys';
import { openEventStore, type EventStore } from './store';
import { syncEvents } from './sync';
import { createSyncClient, type SyncClient } from './sync-client';

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

export type { CycleResult } from './cycle';

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

/** The enforcement parts: the enforcer on the shared USB reader, the reconciler and its service. */
function wireEnforcement(opts: AgentOptions, store: EventStore, exceptions: ExceptionBook, now: () => Date): { reconciler: Reconciler; enforcement: EnforcementService; usb: ReturnType<typeof createUsbReader> } {
  const log = opts.logger;
  // One USB reader for the inventory and the enforcer: both see the devices the same way.
  const usb = createUsbReader({ platform: process.platform, systemRoot: opts.systemRoot });
  const reconciler = createReconciler({
    store,
    enforcer:
      opts.enforcer ??
      createEnforcer({
        platform: process.platform,
        systemRoot: opts.systemRoot,
        usb,
        memory: { load: () => store.getState(STATE_KEYS.enforcementSet), save: (json) => store.setState(STATE_KEYS.enforcementSet, json) },
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
      if (store.getState(STATE_KEYS.hintsFailure) === error) return;
      const message = sanitizeText(`USB device notices unavailable (${error}); enforcing every ${Math.round(intervalMs / 1000)} s`, 500);
      store.append({ type: 'agent.warning', payload: { component: 'device-hints', code: 'unavailable', message } });
      store.setState(STATE_KEYS.hintsFailure, error);
    },
  });
  return { reconciler, enforcement, usb };
}

/** The agent's parts, wired in order; `createAgent` drives them. */
interface Wiring {
  store: EventStore;
  log: Logger;
  cycle: Cycle;
  scheduler: Scheduler;
  enforcement: EnforcementService;
  service: ReturnType<typeof createAgentService>;
  client(): SyncClient | null;
}

function wire(opts: AgentOptions): Wiring {
  const clock = opts.clock ?? systemClock;
  const now = () => clock.now();
  const store = openEventStore(storeFile(opts.dataDir), { clock });
  const log = opts.logger;
  const exceptions = createExceptionBook(store, now);
  const { reconciler, enforcement, usb } = wireEnforcement(opts, store, exceptions, now);
  const inventory = opts.inventory ?? createInventoryCollector({ systemRoot: opts.systemRoot, logger: log, agentVersion: MAMORI_VERSION, now, usb });
  const logins = opts.logins ?? createLoginSource({ platform: process.platform, systemRoot: opts.systemRoot, state: store, now });
  const client = (): SyncClient | null => {
    if (opts.client) return opts.client;
    const enrollment = loadEnrollment(store);
    if (!enrollment) return null;
    return createSyncClient({ baseUrl: enrollment.collectorUrl, agentId: enrollment.agentId, agentToken: enrollment.agentToken, head: () => store.head() });
  };
  // The console session's user keeps IPC slots and alone records locks (docs/design.md#ipc-peers).
  const sessions = createSessionProbe({ platform: process.platform, run: execRunner, systemRoot: opts.systemRoot, now: () => clock.now().getTime() });
  const cycle = createCycle({ store, clock, log, dataDir: opts.dataDir, systemRoot: opts.systemRoot, inventory, logins, exceptions, reconciler, enforcement, client });
  const scheduler = createScheduler({ cycle: () => cycle.run(), intervalSeconds: () => loadPolicy(store)?.syncIntervalSeconds ?? 300, log });
  const service = createAgentService({
    store,
    sessions,
    exceptions,
    now,
    enforcement: () => enforcement.state(),
    degradedReasons: () => enforcement.reasons(),
    collectorReachable: () => cycle.collectorReachable(),
    syncSoon: () => scheduler.requestCycle(),
    reconcileNow: () => void reconciler.reconcile('exception'),
  });
  return { store, log, cycle, scheduler, enforcement, service, client };
}

/**
 * Opens the store and wires the agent's parts.
 * @throws StoreError when the store cannot be opened (it is never overwritten).
 */
export function createAgent(opts: AgentOptions): Agent {
  const { store, log, cycle, scheduler, enforcement, service, client } = wire(opts);
  const recordStart = () =>
    store.append({ type: 'agent.started', payload: { version: MAMORI_VERSION, platform: process.platform, hostname: os.hostname(), pid: process.pid } });
  const recordStop = (reason: string) => store.append({ type: 'agent.stopped', payload: { reason } });

  return {
    store,
    async runOnce() {
      try {
        await cycle.provisionIfNeeded();
        recordStart();
        const first = await cycle.run();
        recordStop('once');
        // Deliver the stop record too, so the collector sees the whole run.
        if (first.collectorReachable) return await cycle.syncOnly(first);
        return first;
      } finally {
        store.close();
      }
    },
    requestCycle: () => scheduler.requestCycle(),
    stop: () => scheduler.stop(),
    async runForever() {
      scheduler.reset();
      await cycle.provisionIfNeeded();
      recordStart();
      const ipc: IpcServer = await startIpcServer({ path: opts.ipcPath ?? defaultIpcPath(), service, logger: log });
      await enforcement.start();
      await scheduler.run();
      await enforcement.stop();
      await ipc.stop();
      service.stop();
      recordStop('signal');
      const api = client();
      if (api) await syncEvents(store, api).catch(() => undefined);
      store.close();
    },
  };
}
