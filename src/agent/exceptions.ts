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
}

const KEYS = { pending: 'exceptions.pending', active: 'exceptions.active' } as const;
/** A request code stays redeemable this long. */
const REQUEST_LIFETIME_MS = 72 * 60 * 60 * 1000;
const MAX_PENDING = 50;

function readJson<T>(store: EventStore, key: Parameters<EventStore['getState']>[0], fallback: T): T {
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
   * @throws UnlockCodeError when there is none or its device has neither a usable serial nor a port.
   */
  request(input: { blockedSeq?: number; reason: string; minutes: number }, agentId: string | null): { requestId: string; requestCode: string; device: ExceptionScope };
  /**
   * Redeems an offline unlock code.
   * @throws UnlockCodeError when it is wrong, expired, already used or for another terminal
   *   (the refusal is recorded as `tamper.detected`).
   */
  redeem(code: string, unlockSecret: string, requestId?: string): ActiveException;
  /** Grants an exception approved at the collector (online path). */
  grantApproved(requestId: string, expiresAt: string): ActiveException | null;
  /** The exceptions in force now; records `exception.expired` for those that ran out. */
  active(now?: Date): ActiveException[];
}

export function createExceptionBook(store: EventStore, now: () => Date = () => new Date()): ExceptionBook {
  const pending = () => readJson<PendingRequest[]>(store, KEYS.pending, []);
  const savePending = (list: PendingRequest[]) => store.setState(KEYS.pending, JSON.stringify(list.slice(-MAX_PENDING)));
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
    request(input, agentId) {
      const device = blockedScope(store, input.blockedSeq);
      const requestId = crypto.randomUUID();
      const requestCode = makeRequestCode(agentId ?? 'unenrolled', device, crypto.randomBytes(5));
      const request: PendingRequest = { requestId, requestCode, device, minutes: input.minutes, requestedAt: now().toISOString(), used: false };
      store.transaction(() => {
        savePending([...pending(), request]);
        store.append({ type: 'exception.requested', payload: { requestId, requestCode, device, reason: input.reason, minutes: input.minutes } });
      });
      return { requestId, requestCode, device };
    },

    redeem(code, unlockSecret, requestId) {
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
        if (refusal) {
          store.append({ type: 'tamper.detected', payload: { what: 'unlock code', detail: `${refusal} (request ${request.requestCode})` } });
          throw new UnlockCodeError(refusal);
        }
        return grant(request, minutes, 'unlock-code');
      }
      store.append({ type: 'tamper.detected', payload: { what: 'unlock code', detail: 'an unlock code that matches no request of this terminal was refused' } });
      throw new UnlockCodeError('the code is not valid for a request on this terminal');
    },

    grantApproved(requestId, expiresAt) {
      const request = pending().find((p) => p.requestId === requestId && !p.used);
      if (!request || Date.parse(expiresAt) <= now().getTime()) return null;
      return grant(request, 0, 'admin', expiresAt);
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
