import { MAX_BATCH_EVENTS } from '../shared';
import type { EventStore } from './store';
import { CollectorRefusedError, type SyncClient } from './sync-client';

/** What one sync of the outbox did. */
export interface SyncResult {
  sent: number;
  ackSeq: number;
}

/**
 * Sends every event above the acknowledged seq, in ascending batches, until the collector has
 * them all. The outbox is the store itself: an acknowledged event is never sent again, and an
 * unacknowledged one is sent again until it is (the collector ignores seqs it already holds).
 * @throws CollectorUnreachableError when the collector cannot be reached (nothing is lost).
 * @throws CollectorRefusedError when it refuses a batch for a reason a retry cannot mend.
 */
export async function syncEvents(store: EventStore, client: SyncClient, batchSize = MAX_BATCH_EVENTS): Promise<SyncResult> {
  let cursor = store.ackSeq();
  let sent = 0;
  let realigned = false;
  for (;;) {
    const batch = store.readSince(cursor, batchSize);
    if (batch.length === 0) break;
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
