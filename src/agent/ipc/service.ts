import crypto from 'node:crypto';
import os from 'node:os';
import {
  IpcError,
  JSON_RPC_ERRORS,
  UnlockCodeError,
  type AgentService,
  type DegradedReason,
  type EnforcementState,
  type InventorySnapshot,
  type StoredEvent,
} from '../../shared';
import type { ExceptionBook } from '../exceptions';
import { loadEnrollment, loadPolicy } from '../policy';
import type { EventStore } from '../store';
import { summariseEvent } from '../summary';

/** What the IPC service needs from the running agent. */
export interface AgentServiceDeps {
  store: EventStore;
  exceptions: ExceptionBook;
  enforcement: () => EnforcementState;
  /** Why enforcement is degraded (empty when it is not); none known when omitted. */
  degradedReasons?: () => DegradedReason[];
  collectorReachable: () => boolean;
  /** Asks the agent to sync now (an incident goes out ahead of the next timer). */
  syncSoon: () => void;
  /** Asks the agent to reconcile now (a granted exception takes effect at once). */
  reconcileNow: () => void;
  now?: () => Date;
  /** Incidents accepted per window, across all callers. */
  incidentLimit?: { count: number; windowMs: number };
}

const CONTEXT_TYPES = ['device.blocked', 'device.attached', 'device.allowed', 'login.success', 'login.failure', 'logout', 'session.lock', 'session.unlock'] as const;

function receiptNumber(now: Date): string {
  const day = now.toISOString().slice(0, 10).replace(/-/g, '');
  return `INC-${day}-${crypto.randomBytes(3).toString('hex').toUpperCase()}`;
}

/**
 * The agent's IPC service. What each method may do:
 * - `status`, `recentEvents`: read only; no secrets (tokens, the unlock secret) ever leave.
 * - `reportIncident`: records one event; rate-limited so a caller cannot flood the log.
 * - `requestException`: records a request; grants nothing.
 * - `redeemUnlockCode`: grants one device for the minutes the collector's code carries, only when
 *   the code verifies with the per-agent secret the caller cannot read; each code works once.
 * - `sessionEvent`: records a lock or unlock; changes no policy.
 * Nothing here changes the policy, the mode or the allowlist.
 */
export function createAgentService(deps: AgentServiceDeps): AgentService {
  const now = deps.now ?? (() => new Date());
  const limit = deps.incidentLimit ?? { count: 5, windowMs: 10 * 60_000 };
  const incidentTimes: number[] = [];

  return {
    async status() {
      const enrollment = loadEnrollment(deps.store);
      const policy = loadPolicy(deps.store);
      return {
        agentId: enrollment?.agentId ?? null,
        hostname: os.hostname(),
        segment: enrollment?.segment ?? null,
        policyVersion: policy?.version ?? null,
        enforcement: deps.enforcement(),
        degradedReasons: deps.degradedReasons?.() ?? [],
        lastSyncAt: deps.store.getState('sync.last_at'),
        collectorReachable: deps.collectorReachable(),
        pendingEvents: deps.store.pendingCount(),
        incidentContact: policy?.incidentContact ?? '',
      };
    },

    async recentEvents(params) {
      return deps.store.recent(params?.limit ?? 20).map(({ seq, at, type, payload }) => ({ seq, at, type, payload }));
    },

    async reportIncident(params) {
      const t = now().getTime();
      while (incidentTimes.length && t - incidentTimes[0]! > limit.windowMs) incidentTimes.shift();
      if (incidentTimes.length >= limit.count) {
        throw new IpcError(JSON_RPC_ERRORS.application, 'rate_limited', 'too many reports in a short time; call the CSIRT contact instead');
      }
      incidentTimes.push(t);
      const snapshotJson = deps.store.getState('inventory.snapshot');
      const snapshot = snapshotJson ? (JSON.parse(snapshotJson) as InventorySnapshot) : null;
      const receipt = receiptNumber(now());
      const recent = deps.store.recent(10, [...CONTEXT_TYPES]) as StoredEvent[];
      deps.store.append({
        type: 'incident.reported',
        payload: {
          receipt,
          category: params.category,
          description: params.description,
          ...(params.occurredAt ? { occurredAt: params.occurredAt } : {}),
          ...(params.contact ? { contact: params.contact } : {}),
          context: {
            hostname: os.hostname(),
            osUser: snapshot?.users.map((u) => u.user).filter(Boolean).join(', ') ?? '',
            inventoryHash: deps.store.getState('inventory.hash') ?? '',
            recentEvents: recent.map((e) => ({ seq: e.seq, at: e.at, type: e.type, summary: summariseEvent(e) })),
          },
        },
      });
      deps.syncSoon();
      return { receipt, queued: !deps.collectorReachable() };
    },

    async requestException(params) {
      try {
        const request = deps.exceptions.request(params, loadEnrollment(deps.store)?.agentId ?? null);
        // Online, admins see the request at once.
        deps.syncSoon();
        return request;
      } catch (err) {
        if (err instanceof UnlockCodeError) throw new IpcError(JSON_RPC_ERRORS.invalidParams, 'no_device', err.message);
        throw err;
      }
    },

    async redeemUnlockCode(params) {
      const enrollment = loadEnrollment(deps.store);
      if (!enrollment) throw new IpcError(JSON_RPC_ERRORS.application, 'not_enrolled', 'this terminal is not enrolled');
      try {
        const granted = deps.exceptions.redeem(params.code, enrollment.unlockSecret, params.requestId);
        deps.reconcileNow();
        deps.syncSoon();
        return { granted: true as const, device: granted.device, expiresAt: granted.expiresAt };
      } catch (err) {
        if (err instanceof UnlockCodeError) throw new IpcError(JSON_RPC_ERRORS.application, 'unlock_refused', err.message);
        throw err;
      }
    },

    async sessionEvent(params) {
      if (params.kind === 'lock' || params.kind === 'unlock') {
        deps.store.append({ type: params.kind === 'lock' ? 'session.lock' : 'session.unlock', payload: { source: 'session' } });
      } else {
        // Resuming may mean devices changed while asleep; reconcile rather than trust the old view.
        deps.reconcileNow();
      }
      return {};
    },
  };
}
