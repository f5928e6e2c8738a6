import crypto from 'node:crypto';
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
import type { EventStore } from '../store';
import { summariseEvent } from '../summary';
import { createTokenBuckets, createWindowCounter, throttle } from './limits';

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
const STATE = { queued: 'ipc.incidents.queued', tamper: 'ipc.tamper.pending', owners: 'ipc.owners' } as const;
const MAX_OWNERS = 2_000;

/** Reports over a user's quota, waiting as one incident. */
interface QueuedIncident {
  receipt: string;
  params: IpcParams<'reportIncident'>;
  user: string;
  osUser: string;
  more: number;
  /** Text of the merged reports, as much as fits in one description. */
  merged: string;
}

/** Wrong unlock codes of one user in the current window. */
interface TamperWindow {
  user: string;
  since: number;
  more: number;
  last: string;
}

function receiptNumber(now: Date): string {
  const day = now.toISOString().slice(0, 10).replace(/-/g, '');
  return `INC-${day}-${crypto.randomBytes(3).toString('hex').toUpperCase()}`;
}

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
  const incidentWindow = createWindowCounter(limits.incidents.windowMs, ms);
  const syncSoon = throttle(deps.syncSoon, limits.wakeIntervalMs, ms);
  const reconcileSoon = throttle(deps.reconcileNow, limits.wakeIntervalMs, ms);
  const { store } = deps;

  const readMap = <T>(key: string): Record<string, T> => JSON.parse(store.getState(key) ?? '{}') as Record<string, T>;
  const writeMap = (key: string, map: Record<string, unknown>) =>
    Object.keys(map).length ? store.setState(key, JSON.stringify(map)) : store.deleteState(key);

  /** Appends an event the peer caused and remembers it is theirs, in one transaction. */
  function appendOwned(peer: PeerIdentity, event: Parameters<EventStore['append']>[0]): StoredEvent {
    return store.transaction(() => {
      const stored = store.append(event);
      const owners = readMap<string>(STATE.owners);
      owners[stored.seq] = peer.key;
      const seqs = Object.keys(owners);
      for (const old of seqs.slice(0, Math.max(0, seqs.length - MAX_OWNERS))) delete owners[old];
      store.setState(STATE.owners, JSON.stringify(owners));
      return stored;
    });
  }

  function incidentEvent(receipt: string, params: IpcParams<'reportIncident'>, osUser: string, description = params.description) {
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
          inventoryHash: store.getState('inventory.hash') ?? '',
          recentEvents: recent.map((e) => ({ seq: e.seq, at: e.at, type: e.type, summary: summariseEvent(e) })),
        },
      },
    };
  }

  function flush() {
    const queued = readMap<QueuedIncident>(STATE.queued);
    for (const [key, q] of Object.entries(queued)) {
      if (incidentWindow.count(key) >= limits.incidents.count) continue;
      const note = q.more > 0 ? `\n\n[+${q.more} more report${q.more === 1 ? '' : 's'} from ${q.user}]${q.merged}` : '';
      const description = (q.params.description + note).slice(0, 4000);
      store.transaction(() => {
        appendOwned({ key, verified: key !== 'unverified', user: q.user }, incidentEvent(q.receipt, q.params, q.osUser, description));
        const rest = readMap<QueuedIncident>(STATE.queued);
        delete rest[key];
        writeMap(STATE.queued, rest);
      });
      incidentWindow.add(key);
      syncSoon.call();
    }
    const tamper = readMap<TamperWindow>(STATE.tamper);
    for (const [key, w] of Object.entries(tamper)) {
      if (ms() - w.since < limits.tamperWindowMs) continue;
      store.transaction(() => {
        if (w.more > 0) {
          const detail = `${w.more} more unlock code${w.more === 1 ? '' : 's'} refused from ${w.user} since ${new Date(w.since).toISOString()} (last: ${w.last})`;
          store.append({ type: 'tamper.detected', payload: { what: 'unlock code', detail: detail.slice(0, 1024) } });
        }
        const rest = readMap<TamperWindow>(STATE.tamper);
        delete rest[key];
        writeMap(STATE.tamper, rest);
      });
    }
  }

  /** The first refusal in a window is recorded at once; the rest are counted into one event. */
  function recordRefusal(peer: PeerIdentity, detail: string) {
    const tamper = readMap<TamperWindow>(STATE.tamper);
    const w = tamper[peer.key];
    if (w) {
      tamper[peer.key] = { ...w, more: w.more + 1, last: detail.slice(0, 300) };
      store.setState(STATE.tamper, JSON.stringify(tamper));
      return;
    }
    store.transaction(() => {
      store.append({ type: 'tamper.detected', payload: { what: 'unlock code', detail: `${detail} (from ${peer.user})`.slice(0, 1024) } });
      tamper[peer.key] = { user: peer.user, since: ms(), more: 0, last: '' };
      store.setState(STATE.tamper, JSON.stringify(tamper));
    });
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

  function forPeer(peer: PeerIdentity): AgentService {
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
          lastSyncAt: store.getState('sync.last_at'),
          collectorReachable: deps.collectorReachable(),
          pendingEvents: store.pendingCount(),
          incidentContact: policy?.incidentContact ?? '',
        };
      },

      async recentEvents(params) {
        const limit = params?.limit ?? 20;
        const visible = visibleTo(peer, readMap<string>(STATE.owners));
        return store
          .recent(Math.min(2_000, limit * 20))
          .filter(visible)
          .slice(0, limit)
          .map(({ seq, at, type, payload }) => ({ seq, at, type, payload }));
      },

      async reportIncident(params) {
        flush();
        const snapshotJson = store.getState('inventory.snapshot');
        const snapshot = snapshotJson ? (JSON.parse(snapshotJson) as InventorySnapshot) : null;
        // The reporter as the OS names them; where it cannot, the users logged in.
        const osUser = peer.verified ? peer.user : (snapshot?.users.map((u) => u.user).filter(Boolean).join(', ') ?? '');
        const queued = readMap<QueuedIncident>(STATE.queued);
        const waiting = queued[peer.key];
        if (!waiting && incidentWindow.count(peer.key) < limits.incidents.count) {
          const receipt = receiptNumber(now());
          appendOwned(peer, incidentEvent(receipt, params, osUser));
          incidentWindow.add(peer.key);
          syncSoon.call();
          return { receipt, queued: !deps.collectorReachable() };
        }
        // Over the quota: never refused, merged into this user's one queued incident.
        if (!waiting) {
          queued[peer.key] = { receipt: receiptNumber(now()), params, user: peer.user, osUser, more: 0, merged: '' };
        } else {
          const line = `\n- ${now().toISOString()} ${params.category}: ${params.description}`;
          waiting.more += 1;
          if (waiting.params.description.length + waiting.merged.length + line.length < 3_900) waiting.merged += line;
        }
        store.setState(STATE.queued, JSON.stringify(queued));
        return { receipt: queued[peer.key]!.receipt, queued: true };
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
          const granted = deps.exceptions.redeem(params.code, enrollment.unlockSecret, params.requestId, (detail) => recordRefusal(peer, detail));
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
          appendOwned(peer, { type, payload: { user: peer.user, source: 'session' } });
        } else {
          // Resuming may mean devices changed while asleep; reconcile rather than trust the old view.
          reconcileSoon.call();
        }
        return {};
      },
    };
  }

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
