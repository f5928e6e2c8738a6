import { EventSchemaError, GENESIS_HASH, MAX_BATCH_EVENTS, parseEventPayload, verifyChain, type StoredEvent } from '../shared';
import type { EventStore } from './store';
import { CollectorRefusedError, type SyncClient } from './sync-client';
import { STATE_KEYS } from './state-keys';

/** What one sync of the outbox did. */
export interface SyncResult {
  sent: number;
  ackSeq: number;
}

/**
 * The first event of `batch` that the collector would refuse: a seq that does not follow, a hash
 * that does not chain, or a type or payload the schema does not know. Null when the batch is sound.
 */
export function firstBadEvent(batch: readonly StoredEvent[], after: { seq: number; hash: string }): { seq: number; reason: string } | null {
  const broken = verifyChain(batch, after);
  for (const e of batch) {
    if (broken && e.seq >= broken.seq) break;
    try {
      parseEventPayload(e.type, e.payload);
    } catch (err) {
      if (err instanceof EventSchemaError) return { seq: e.seq, reason: `event does not match its schema: ${err.message}` };
      return { seq: e.seq, reason: `event does not match its schema: ${(err as Error).message}` };
    }
    if (Number.isNaN(Date.parse(e.at))) return { seq: e.seq, reason: 'event time is not a timestamp' };
  }
  return broken ? { seq: broken.seq, reason: broken.reason.replace(/_/g, ' ') } : null;
}

/** The seq and hash of the event at `seq` (the genesis before the first). */
function chainPoint(store: EventStore, seq: number): { seq: number; hash: string } {
  if (seq <= 0) return { seq: 0, hash: GENESIS_HASH };
  const [event] = store.readSince(seq - 1, 1);
  // The event itself is gone: the next one's prevHash is all there is, and the gap shows as one.
  return event && event.seq === seq ? { seq, hash: event.hash } : { seq, hash: GENESIS_HASH };
}

/**
 * Sends every event above the acknowledged seq, in ascending batches, until the collector has
 * them all. The outbox is the store itself: an acknowledged event is never sent again, and an
 * unacknowledged one is sent again until it is (the collector ignores seqs it already holds).
 * Each range is verified before it is sent (hash chain, seq continuity, schema): the sound events
 * before a break are delivered, the break itself is recorded as `tamper.detected` once and still
 * sent, so that the collector refuses it and flags the terminal with its seq.
 * @throws CollectorUnreachableError when the collector cannot be reached (nothing is lost).
 * @throws CollectorRefusedError when it refuses a batch for a reason a retry cannot mend.
 */
export async function syncEvents(store: EventStore, client: SyncClient, batchSize = MAX_BATCH_EVENTS): Promise<SyncResult> {
  let cursor = store.ackSeq();
  let sent = 0;
  let realigned = false;
  for (;;) {
    let batch = store.readSince(cursor, batchSize);
    if (batch.length === 0) break;
    const bad = firstBadEvent(batch, chainPoint(store, cursor));
    const sound = bad ? batch.filter((e) => e.seq < bad.seq) : batch;
    // The sound events first: they are evidence the break must not hold back.
    if (sound.length > 0) batch = sound;
    else if (bad) recordBreakOnce(store, bad);
    let ack: number;
    try {
      ack = await client.postEvents(batch);
    } catch (err) {
      // The collector holds a different prefix than we think (a lost acknowledgement, or its
      // database was restored): start again where it says, once per sync.
      if (err instanceof CollectorRefusedError && err.code === 'seq_conflict' && err.details.expectedSeq !== undefined && !realigned) {
        realigned = true;
        cursor = Math.max(0, Math.min(err.details.expectedSeq - 1, store.head().seq));
        continue;
      }
      throw err;
    }
    store.setAckSeq(ack);
    sent += batch.length;
    const last = batch[batch.length - 1]!.seq;
    if (ack < last) break; // the collector took less than we sent; try the rest next time
    cursor = ack;
  }
  return { sent, ackSeq: store.ackSeq() };
}

/** `tamper.detected` for a break in the local log, once per break however often the sync retries. */
// The last local break recorded is kept, so a break is recorded once, not on every retry.
function recordBreakOnce(store: EventStore, bad: { seq: number; reason: string }): void {
  const mark = `${bad.seq}:${bad.reason}`;
  store.transaction(() => {
    if (store.getState(STATE_KEYS.syncTamperRecorded) === mark) return;
    store.append({ type: 'tamper.detected', payload: { what: 'event log', detail: `the unsent event log is broken at seq ${bad.seq} (${bad.reason}); the collector will flag this terminal` } });
    store.setState(STATE_KEYS.syncTamperRecorded, mark);
  });
}
