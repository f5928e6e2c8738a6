import crypto from 'node:crypto';
import type { IpcParams, StoredEvent } from '../../shared';
import type { PeerIdentity } from '../os/peer';
import { STATE_KEYS, type StateKey } from '../state-keys';
import type { EventStore } from '../store';
import { createWindowCounter } from './limits';

/**
 * What the IPC service keeps per user in the store so that nothing a user sends is lost and no
 * user can flood the log (docs/design.md#ipc-limits): whose events are whose, the one queued
 * incident of a user over the quota, and the wrong unlock codes counted in a window.
 */

const STATE = { queued: STATE_KEYS.ipcIncidentsQueued, tamper: STATE_KEYS.ipcTamperPending, owners: STATE_KEYS.ipcOwners } as const;
const MAX_OWNERS = 2_000;
/** Room the merged reports' text may take in one description (4,000 characters at most). */
const MERGED_TEXT_ROOM = 3_900;

function stateMap<T>(store: EventStore, key: StateKey) {
  return {
    read: (): Record<string, T> => JSON.parse(store.getState(key) ?? '{}') as Record<string, T>,
    write: (map: Record<string, T>) => (Object.keys(map).length ? store.setState(key, JSON.stringify(map)) : store.deleteState(key)),
  };
}

export function receiptNumber(now: Date): string {
  const day = now.toISOString().slice(0, 10).replace(/-/g, '');
  return `INC-${day}-${crypto.randomBytes(3).toString('hex').toUpperCase()}`;
}

/** Which peer caused which event (the newest 2,000), for `recentEvents`. */
export function createOwnerIndex(store: EventStore) {
  const owners = stateMap<string>(store, STATE.owners);
  return {
    /** Appends an event the peer caused and remembers it is theirs, in one transaction. */
    append(peer: PeerIdentity, event: Parameters<EventStore['append']>[0]): StoredEvent {
      return store.transaction(() => {
        const stored = store.append(event);
        const map = owners.read();
        map[stored.seq] = peer.key;
        // Integer keys keep ascending order: the oldest go first.
        const seqs = Object.keys(map);
        for (const old of seqs.slice(0, Math.max(0, seqs.length - MAX_OWNERS))) delete map[old];
        owners.write(map);
        return stored;
      });
    },
    /** Peer key by seq. */
    read: owners.read,
  };
}

/** Wrong unlock codes of one user in the current window. */
interface RefusalWindow {
  user: string;
  since: number;
  more: number;
  last: string;
}

/**
 * Unlock-code refusals per user: the first in a window is one `tamper.detected` at once, the rest
 * are counted and recorded as one more when the window ends.
 */
export function createRefusalMerger(store: EventStore, opts: { windowMs: number; now: () => number }) {
  const windows = stateMap<RefusalWindow>(store, STATE.tamper);
  return {
    record(peer: PeerIdentity, detail: string) {
      const map = windows.read();
      const w = map[peer.key];
      if (w) {
        map[peer.key] = { ...w, more: w.more + 1, last: detail.slice(0, 300) };
        windows.write(map);
        return;
      }
      store.transaction(() => {
        store.append({ type: 'tamper.detected', payload: { what: 'unlock code', detail: `${detail} (from ${peer.user})`.slice(0, 1024) } });
        map[peer.key] = { user: peer.user, since: opts.now(), more: 0, last: '' };
        windows.write(map);
      });
    },
    /** Records the count of every window that has ended. */
    flush() {
      for (const [key, w] of Object.entries(windows.read())) {
        if (opts.now() - w.since < opts.windowMs) continue;
        store.transaction(() => {
          if (w.more > 0) {
            const detail = `${w.more} more unlock code${w.more === 1 ? '' : 's'} refused from ${w.user} since ${new Date(w.since).toISOString()} (last: ${w.last})`;
            store.append({ type: 'tamper.detected', payload: { what: 'unlock code', detail: detail.slice(0, 1024) } });
          }
          const rest = windows.read();
          delete rest[key];
          windows.write(rest);
        });
      }
    },
  };
}

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

/** Records one incident for `peer` (in the caller's transaction, if any). */
export type RecordIncident = (peer: PeerIdentity, receipt: string, params: IpcParams<'reportIncident'>, osUser: string, description: string) => void;

/**
 * Incidents per user: `count` per window recorded at once, the rest merged into the user's one
 * queued incident, recorded when the user's window has room. Never refuses.
 */
export function createIncidentQueue(store: EventStore, opts: { count: number; windowMs: number; now: () => Date; record: RecordIncident }) {
  const queue = stateMap<QueuedIncident>(store, STATE.queued);
  const window = createWindowCounter(opts.windowMs, () => opts.now().getTime());
  return {
    /** Records or queues a report; `queued` when it waits. */
    submit(peer: PeerIdentity, params: IpcParams<'reportIncident'>, osUser: string): { receipt: string; queued: boolean } {
      const map = queue.read();
      const waiting = map[peer.key];
      if (!waiting && window.count(peer.key) < opts.count) {
        const receipt = receiptNumber(opts.now());
        opts.record(peer, receipt, params, osUser, params.description);
        window.add(peer.key);
        return { receipt, queued: false };
      }
      if (!waiting) {
        map[peer.key] = { receipt: receiptNumber(opts.now()), params, user: peer.user, osUser, more: 0, merged: '' };
      } else {
        const line = `\n- ${opts.now().toISOString()} ${params.category}: ${params.description}`;
        waiting.more += 1;
        if (waiting.params.description.length + waiting.merged.length + line.length < MERGED_TEXT_ROOM) waiting.merged += line;
      }
      queue.write(map);
      return { receipt: map[peer.key]!.receipt, queued: true };
    },
    /** Records every queued incident whose user has room again; returns how many. */
    flush(): number {
      let recorded = 0;
      for (const [key, q] of Object.entries(queue.read())) {
        if (window.count(key) >= opts.count) continue;
        const note = q.more > 0 ? `\n\n[+${q.more} more report${q.more === 1 ? '' : 's'} from ${q.user}]${q.merged}` : '';
        store.transaction(() => {
          opts.record({ key, verified: key !== 'unverified', user: q.user }, q.receipt, q.params, q.osUser, (q.params.description + note).slice(0, 4000));
          const rest = queue.read();
          delete rest[key];
          queue.write(rest);
        });
        window.add(key);
        recorded++;
      }
      return recorded;
    },
  };
}
