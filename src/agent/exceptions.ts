import crypto from 'node:crypto';
import {
  UnlockCodeError,
  isExactScope,
  makeRequestCode,
  scopeOfDevice,
  verifyUnlockCode,
  type DevicePayload,
  type ExceptionScope,
  type StoredEvent,
} from '../shared';
import { STATE_KEYS, type StateKey } from './state-keys';
import type { EventStore } from './store';

/**
 * The device an exception is for: exactly one (ids plus a usable serial, or the port). Stores
 * from before this rule may hold broader ones; those never match (see `matchesException`).
 */
export type ExceptionDevice = Partial<ExceptionScope>;

/** A granted, time-boxed exception for one device on this terminal. */
export interface ActiveException {
  requestId?: string;
  device: ExceptionDevice;
  expiresAt: string;
  via: 'unlock-code' | 'admin';
}

/** A request waiting for an approval or an unlock code. */
interface PendingRequest {
  requestId: string;
  requestCode: string;
  device: ExceptionDevice;
  minutes: number;
  requestedAt: string;
  used: boolean;
  /** The IPC peer key of who asked (`uid:1000`); absent in stores from before per-user caps. */
  owner?: string;
}

const KEYS = { pending: STATE_KEYS.exceptionsPending, active: STATE_KEYS.exceptionsActive } as const;
/** A request code stays redeemable this long. */
const REQUEST_LIFETIME_MS = 72 * 60 * 60 * 1000;
/** Open requests kept per user; a user's new request drops only that user's oldest. */
export const MAX_PENDING_PER_USER = 10;

function readJson<T>(store: EventStore, key: StateKey, fallback: T): T {
  const json = store.getState(key);
  return json ? (JSON.parse(json) as T) : fallback;
}

/**
 * The exact device of a recorded `device.blocked` event: the one at `blockedSeq`, or the latest.
 * A request takes its device only from here, never from what the caller names.
 * @throws UnlockCodeError when there is no such event or the device cannot be named alone.
 */
function blockedScope(store: EventStore, blockedSeq?: number): ExceptionScope {
  const [event] = (blockedSeq === undefined ? store.recent(1, ['device.blocked']) : store.readSince(blockedSeq - 1, 1)) as StoredEvent[];
  if (!event || (blockedSeq !== undefined && event.seq !== blockedSeq)) throw new UnlockCodeError('no blocked device to request an exception for');
  if (event.type !== 'device.blocked') throw new UnlockCodeError(`event ${event.seq} is not a blocked device`);
  return scopeOfDevice(event.payload as DevicePayload);
}

/** Exception requests, grants and expiries, kept in the agent's store. */
export interface ExceptionBook {
  /**
   * Records a request for the device of a recorded `device.blocked` (at `blockedSeq`, or the latest).
   * At most `MAX_PENDING_PER_USER` open requests are kept per `owner`; beyond that the owner's own
   * oldest is dropped, never another user's.
   * @throws UnlockCodeError when there is none or its device has neither a usable serial nor a port.
   */
  request(
    input: { blockedSeq?: number; reason: string; minutes: number },
    agentId: string | null,
    owner?: string,
  ): { requestId: string; requestCode: string; device: ExceptionScope; seq: number };
  /**
   * Redeems an offline unlock code.
   * @throws UnlockCodeError when it is wrong, expired, already used or for another terminal
   *   (the refusal is recorded as `tamper.detected`, or handed to `onRefused` when given, which
   *   then records it: the IPC service merges repeated refusals into one event).
   */
  redeem(code: string, unlockSecret: string, requestId?: string, onRefused?: (detail: string) => void): ActiveException;
  /** Grants an exception approved at the collector (online path). */
  grantApproved(requestId: string, expiresAt: string): ActiveException | null;
  /** The exceptions in force now; records `exception.expired` for those that ran out. */
  active(now?: Date): ActiveException[];
  /** Who asked for a request still on the book (its IPC peer key), if known. */
  ownerOf(requestId: string): string | undefined;
}

export function createExceptionBook(store: EventStore, now: () => Date = () => new Date()): ExceptionBook {
  const pending = () => readJson<PendingRequest[]>(store, KEYS.pending, []);
  const savePending = (list: PendingRequest[]) => store.setState(KEYS.pending, JSON.stringify(list));
  const isOpen = (p: PendingRequest) => !p.used && now().getTime() - Date.parse(p.requestedAt) < REQUEST_LIFETIME_MS;
  /** Drops used or expired requests past their lifetime, and an owner's oldest beyond the cap. */
  function withRequest(list: PendingRequest[], added: PendingRequest): PendingRequest[] {
    // Used ones stay for their lifetime, so a code used twice is told apart from a wrong one.
    const kept = list.filter((p) => now().getTime() - Date.parse(p.requestedAt) < REQUEST_LIFETIME_MS);
    const mine = kept.filter((p) => isOpen(p) && (p.owner ?? '') === (added.owner ?? ''));
    const drop = new Set(mine.slice(0, Math.max(0, mine.length + 1 - MAX_PENDING_PER_USER)));
    return [...kept.filter((p) => !drop.has(p)), added];
  }
  const activeList = () => readJson<ActiveException[]>(store, KEYS.active, []);
  const saveActive = (list: ActiveException[]) => store.setState(KEYS.active, JSON.stringify(list));

  function grant(request: PendingRequest, minutes: number, via: ActiveException['via'], expiresAt?: string): ActiveException {
    const exception: ActiveException = {
      requestId: request.requestId,
      device: request.device,
      expiresAt: expiresAt ?? new Date(now().getTime() + minutes * 60_000).toISOString(),
      via,
    };
    // One transaction: an active exception never exists without its exception.granted event.
    store.transaction(() => {
      savePending(pending().map((p) => (p.requestId === request.requestId ? { ...p, used: true } : p)));
      saveActive([...activeList().filter((a) => a.requestId !== request.requestId), exception]);
      store.append({ type: 'exception.granted', payload: { requestId: request.requestId, device: request.device, expiresAt: exception.expiresAt, via } });
    });
    return exception;
  }

  return {
    request(input, agentId, owner) {
      const device = blockedScope(store, input.blockedSeq);
      const requestId = crypto.randomUUID();
      const requestCode = makeRequestCode(agentId ?? 'unenrolled', device, crypto.randomBytes(5));
      const request: PendingRequest = { requestId, requestCode, device, minutes: input.minutes, requestedAt: now().toISOString(), used: false, ...(owner ? { owner } : {}) };
      const seq = store.transaction(() => {
        savePending(withRequest(pending(), request));
        return store.append({ type: 'exception.requested', payload: { requestId, requestCode, device, reason: input.reason, minutes: input.minutes } }).seq;
      });
      return { requestId, requestCode, device, seq };
    },

    redeem(code, unlockSecret, requestId, onRefused) {
      const refuse = (detail: string, message: string): never => {
        if (onRefused) onRefused(detail);
        else store.append({ type: 'tamper.detected', payload: { what: 'unlock code', detail } });
        throw new UnlockCodeError(message);
      };
      const isFresh = (p: PendingRequest) => now().getTime() - Date.parse(p.requestedAt) < REQUEST_LIFETIME_MS;
      const candidates = requestId ? pending().filter((p) => p.requestId === requestId) : pending();
      for (const request of candidates) {
        let minutes: number;
        try {
          if (!isExactScope(request.device)) continue;
          minutes = verifyUnlockCode(unlockSecret, request.requestCode, code, request.device);
        } catch {
          continue;
        }
        const refusal = request.used
          ? 'this unlock code was already used'
          : !isFresh(request)
            ? 'this request has expired; request again'
            : null;
        if (refusal) refuse(`${refusal} (request ${request.requestCode})`, refusal);
        return grant(request, minutes, 'unlock-code');
      }
      return refuse('an unlock code that matches no request of this terminal was refused', 'the code is not valid for a request on this terminal');
    },

    grantApproved(requestId, expiresAt) {
      const request = pending().find((p) => p.requestId === requestId && !p.used);
      if (!request || Date.parse(expiresAt) <= now().getTime()) return null;
      return grant(request, 0, 'admin', expiresAt);
    },

    ownerOf(requestId) {
      return pending().find((p) => p.requestId === requestId)?.owner;
    },

    active(at = now()) {
      const list = activeList();
      const live = list.filter((a) => Date.parse(a.expiresAt) > at.getTime());
      if (live.length !== list.length) {
        // One transaction: the expiry events and the shorter list together.
        store.transaction(() => {
          for (const gone of list.filter((a) => !live.includes(a))) {
            store.append({ type: 'exception.expired', payload: { requestId: gone.requestId, device: gone.device } });
          }
          saveActive(live);
        });
      }
      return live;
    },
  };
}
