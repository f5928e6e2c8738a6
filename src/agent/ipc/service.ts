import os from 'node:os';
import {
  IpcError,
  JSON_RPC_ERRORS,
  UnlockCodeError,
  type AgentService,
  type DegradedReason,
  type EnforcementState,
  type EventType,
  type InventorySnapshot,
  type IpcParams,
  type StoredEvent,
} from '../../shared';
import type { ExceptionBook } from '../exceptions';
import type { PeerIdentity } from '../os/peer';
import type { SessionProbe } from '../os/session';
import { loadEnrollment, loadPolicy } from '../policy';
import { STATE_KEYS } from '../state-keys';
import type { EventStore } from '../store';
import { summariseEvent } from '../summary';
import { createTokenBuckets, throttle } from './limits';
import { createIncidentQueue, createOwnerIndex, createRefusalMerger } from './merging';

/** Per-user limits of the IPC service (docs/design.md#ipc-limits). */
export interface ServiceLimits {
  /** Token bucket per user on `requestException`, `redeemUnlockCode` and `sessionEvent`. */
  writes: { capacity: number; perMinute: number };
  /** Incidents recorded at once per user per window; more are merged into one queued incident. */
  incidents: { count: number; windowMs: number };
  /** Wrong unlock codes after the first in this window are merged into one `tamper.detected`. */
  tamperWindowMs: number;
  /** `syncSoon` and a `resume`'s reconcile run at most once per this many ms. */
  wakeIntervalMs: number;
}

export const DEFAULT_SERVICE_LIMITS: ServiceLimits = {
  writes: { capacity: 10, perMinute: 10 },
  incidents: { count: 3, windowMs: 10 * 60_000 },
  tamperWindowMs: 10 * 60_000,
  wakeIntervalMs: 10_000,
};

/** What the IPC service needs from the running agent. */
export interface AgentServiceDeps {
  store: EventStore;
  exceptions: ExceptionBook;
  enforcement: () => EnforcementState;
  /** Why enforcement is degraded (empty when it is not); none known when omitted. */
  degradedReasons?: () => DegradedReason[];
  collectorReachable: () => boolean;
  /** Asks the agent to sync now (an incident goes out ahead of the next timer); throttled here. */
  syncSoon: () => void;
  /** Asks the agent to reconcile now (a granted exception takes effect at once). */
  reconcileNow: () => void;
  /** The console session's user; without it nobody may record a lock or unlock. */
  sessions?: SessionProbe;
  now?: () => Date;
  limits?: Partial<ServiceLimits>;
}

/** The service, one view per connected peer. */
export interface AgentServiceHost {
  /** The service as `peer` may use it. */
  forPeer(peer: PeerIdentity): AgentService;
  /** The console session's user as the service sees it; the IPC server keeps slots for them. */
  readonly sessions?: SessionProbe;
  /** Records merged incidents and wrong-code counts whose wait is over; the host's timer calls it too. */
  flush(): void;
  /** Stops the host's timers; nothing queued is lost (it is in the store). */
  stop(): void;
}

const CONTEXT_TYPES = ['device.blocked', 'device.attached', 'device.allowed', 'login.success', 'login.failure', 'logout', 'session.lock', 'session.unlock'] as const;
/** Shown to every local user: what happened to devices and the policy, never who did what. */
const SHARED_PREFIXES = ['device.', 'policy.'];
const OWN_LOGON_TYPES = new Set<string>(['login.success', 'login.failure', 'logout', 'session.lock', 'session.unlock']);

function rateLimited(retryMs: number): IpcError {
  return new IpcError(JSON_RPC_ERRORS.application, 'rate_limited', `too many requests in a short time; try again in ${Math.ceil(retryMs / 1000)} s`);
}

/**
 * The agent's IPC service. What each method may do, per peer (docs/design.md#ipc-methods):
 * - `status`: read only; no secrets (tokens, the unlock secret) ever leave.
 * - `recentEvents`: device and policy events, and the caller's own.
 * - `reportIncident`: never refused: up to the quota at once, then merged into one queued incident.
 * - `requestException`: records a request; grants nothing.
 * - `redeemUnlockCode`: grants one device for the minutes the collector's code carries, only when
 *   the code verifies with the per-agent secret the caller cannot read; each code works once.
 * - `sessionEvent`: a lock or unlock only from the console session's user; changes no policy.
 * Writes other than incidents take a token from the caller's bucket. Nothing here changes the
 * policy, the mode or the allowlist.
 */
export function createAgentService(deps: AgentServiceDeps): AgentServiceHost {
  const now = deps.now ?? (() => new Date());
  const ms = () => now().getTime();
  const limits = { ...DEFAULT_SERVICE_LIMITS, ...deps.limits };
  const buckets = createTokenBuckets({ ...limits.writes, now: ms });
  const syncSoon = throttle(deps.syncSoon, limits.wakeIntervalMs, ms);
  const reconcileSoon = throttle(deps.reconcileNow, limits.wakeIntervalMs, ms);
  const { store } = deps;
  const owners = createOwnerIndex(store);
  const refusals = createRefusalMerger(store, { windowMs: limits.tamperWindowMs, now: ms });
  const incidents = createIncidentQueue(store, {
    ...limits.incidents,
    now,
    record: (peer, receipt, params, osUser, description) => void owners.append(peer, incidentEvent(receipt, params, osUser, description)),
  });

  function incidentEvent(receipt: string, params: IpcParams<'reportIncident'>, osUser: string, description: string) {
    const recent = store.recent(10, [...CONTEXT_TYPES]);
    return {
      type: 'incident.reported' as const,
      payload: {
        receipt,
        category: params.category,
        description,
        ...(params.occurredAt ? { occurredAt: params.occurredAt } : {}),
        ...(params.contact ? { contact: params.contact } : {}),
        context: {
          hostname: os.hostname(),
          osUser,
          inventoryHash: store.getState(STATE_KEYS.inventoryHash) ?? '',
          recentEvents: recent.map((e) => ({ seq: e.seq, at: e.at, type: e.type, summary: summariseEvent(e) })),
        },
      },
    };
  }

  function flush() {
    if (incidents.flush() > 0) syncSoon.call();
    refusals.flush();
  }

  function takeWrite(peer: PeerIdentity) {
    if (!buckets.take(peer.key)) throw rateLimited(buckets.retryAfterMs(peer.key));
  }

  function visibleTo(peer: PeerIdentity, owners: Record<string, string>) {
    return (e: StoredEvent): boolean => {
      if (SHARED_PREFIXES.some((p) => e.type.startsWith(p))) return true;
      if (owners[e.seq] === peer.key) return true;
      const payload = e.payload as { user?: unknown; requestId?: unknown };
      if (e.type.startsWith('exception.') && typeof payload.requestId === 'string') return deps.exceptions.ownerOf(payload.requestId) === peer.key;
      return peer.verified && OWN_LOGON_TYPES.has(e.type) && payload.user === peer.user;
    };
  }

  const timer = setInterval(() => {
    try {
      flush();
    } catch {
      // A store error is retried at the next tick; the queue is still in the store.
    }
  }, 30_000);
  timer.unref();

  const core: ServiceCore = { deps, store, owners, incidents, refusals, syncSoon, reconcileSoon, flush, takeWrite, visibleTo };
  const forPeer = (peer: PeerIdentity): AgentService => peerService(core, peer);

  return {
    forPeer,
    ...(deps.sessions ? { sessions: deps.sessions } : {}),
    flush,
    stop() {
      clearInterval(timer);
      syncSoon.stop();
      reconcileSoon.stop();
    },
  };
}

/** What every peer's view of the service shares: the store, the queues and the throttles. */
interface ServiceCore {
  deps: AgentServiceDeps;
  store: AgentServiceDeps['store'];
  owners: ReturnType<typeof createOwnerIndex>;
  incidents: ReturnType<typeof createIncidentQueue>;
  refusals: ReturnType<typeof createRefusalMerger>;
  syncSoon: ReturnType<typeof throttle>;
  reconcileSoon: ReturnType<typeof throttle>;
  flush(): void;
  takeWrite(peer: PeerIdentity): void;
  visibleTo(peer: PeerIdentity, owners: Record<string, string>): (e: StoredEvent) => boolean;
}

/** The service as one peer may use it (the rules are createAgentService's). */
function peerService(core: ServiceCore, peer: PeerIdentity): AgentService {
  const { deps, store, owners, incidents, syncSoon, reconcileSoon, flush, takeWrite } = core;
  return {
    async status() {
      const enrollment = loadEnrollment(store);
      const policy = loadPolicy(store);
      return {
        agentId: enrollment?.agentId ?? null,
        hostname: os.hostname(),
        segment: enrollment?.segment ?? null,
        policyVersion: policy?.version ?? null,
        enforcement: deps.enforcement(),
        degradedReasons: deps.degradedReasons?.() ?? [],
        lastSyncAt: store.getState(STATE_KEYS.lastSyncAt),
        collectorReachable: deps.collectorReachable(),
        pendingEvents: store.pendingCount(),
        incidentContact: policy?.incidentContact ?? '',
      };
    },

    async recentEvents(params) {
      const limit = params?.limit ?? 20;
      const visible = core.visibleTo(peer, owners.read());
      return store
        .recent(Math.min(2_000, limit * 20))
        .filter(visible)
        .slice(0, limit)
        .map(({ seq, at, type, payload }) => ({ seq, at, type, payload }));
    },

    async reportIncident(params) {
      flush();
      const snapshotJson = store.getState(STATE_KEYS.inventory);
      const snapshot = snapshotJson ? (JSON.parse(snapshotJson) as InventorySnapshot) : null;
      // The reporter as the OS names them; where it cannot, the users logged in.
      const osUser = peer.verified ? peer.user : (snapshot?.users.map((u) => u.user).filter(Boolean).join(', ') ?? '');
      // Over the quota a report is not refused: it is merged into this user's one queued incident.
      const { receipt, queued } = incidents.submit(peer, params, osUser);
      if (!queued) syncSoon.call();
      return { receipt, queued: queued || !deps.collectorReachable() };
    },

    async requestException(params) {
      takeWrite(peer);
      try {
        const { seq: _seq, ...request } = deps.exceptions.request(params, loadEnrollment(store)?.agentId ?? null, peer.key);
        // Online, admins see the request at once.
        syncSoon.call();
        return request;
      } catch (err) {
        if (err instanceof UnlockCodeError) throw new IpcError(JSON_RPC_ERRORS.invalidParams, 'no_device', err.message);
        throw err;
      }
    },

    async redeemUnlockCode(params) {
      flush();
      takeWrite(peer);
      const enrollment = loadEnrollment(store);
      if (!enrollment) throw new IpcError(JSON_RPC_ERRORS.application, 'not_enrolled', 'this terminal is not enrolled');
      try {
        const granted = deps.exceptions.redeem(params.code, enrollment.unlockSecret, params.requestId, (detail) => core.refusals.record(peer, detail));
        deps.reconcileNow();
        syncSoon.call();
        return { granted: true as const, device: granted.device, expiresAt: granted.expiresAt };
      } catch (err) {
        if (err instanceof UnlockCodeError) throw new IpcError(JSON_RPC_ERRORS.application, 'unlock_refused', err.message);
        throw err;
      }
    },

    async sessionEvent(params) {
      takeWrite(peer);
      if (params.kind === 'lock' || params.kind === 'unlock') {
        const console = await deps.sessions?.consoleUser();
        if (!peer.verified || !console || console.key !== peer.key) {
          throw new IpcError(JSON_RPC_ERRORS.application, 'not_session_user', 'only the console session’s user may record a lock or unlock');
        }
        const type: EventType = params.kind === 'lock' ? 'session.lock' : 'session.unlock';
        owners.append(peer, { type, payload: { user: peer.user, source: 'session' } });
      } else {
        // Resuming may mean devices changed while asleep; reconcile rather than trust the old view.
        reconcileSoon.call();
      }
      return {};
    },
  };
}
