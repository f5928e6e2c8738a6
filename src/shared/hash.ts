import { sha256 } from '@noble/hashes/sha2';
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils';
import { canonicalJson } from './canonical-json';

/** `prev_hash` of the first event of every agent's chain. */
export const GENESIS_HASH = '0'.repeat(64);

/** SHA-256 of a string's UTF-8 bytes, lower-case hex. */
export function sha256Hex(text: string): string {
  return bytesToHex(sha256(utf8ToBytes(text)));
}

/** The fields of an event that its hash covers. */
export interface HashedEventFields {
  seq: number;
  at: string;
  type: string;
  payload: unknown;
}

/**
 * The event hash (docs/design.md#hash-chain): SHA-256 over the UTF-8 bytes of `prevHash` (64 hex characters)
 * followed by the canonical JSON of `{seq, at, type, payload}`.
 * @throws CanonicalJsonError when the payload is not canonical JSON.
 */
export function eventHash(prevHash: string, event: HashedEventFields): string {
  return sha256Hex(prevHash + canonicalJson({ seq: event.seq, at: event.at, type: event.type, payload: event.payload }));
}

/** A chained event as stored by the agent and sent to the collector. */
export interface ChainedEvent extends HashedEventFields {
  prevHash: string;
  hash: string;
}

/** Where a chain first goes wrong, or null when it is intact. */
export interface ChainBreak {
  seq: number;
  reason: 'seq_gap' | 'prev_hash_mismatch' | 'hash_mismatch' | 'unhashable' | 'checkpoint_invalid';
}

/**
 * Checks a run of events against the chain, starting after `expected` (the seq and hash of the
 * last event already trusted; seq 0 and GENESIS_HASH for a chain that starts here).
 * @returns the first break, or null.
 */
export function verifyChain(events: Iterable<ChainedEvent>, expected: { seq: number; hash: string } = { seq: 0, hash: GENESIS_HASH }): ChainBreak | null {
  let prevSeq = expected.seq;
  let prevHash = expected.hash;
  for (const event of events) {
    if (event.seq !== prevSeq + 1) return { seq: event.seq, reason: 'seq_gap' };
    if (event.prevHash !== prevHash) return { seq: event.seq, reason: 'prev_hash_mismatch' };
    let computed: string;
    try {
      computed = eventHash(prevHash, event);
    } catch {
      return { seq: event.seq, reason: 'unhashable' };
    }
    if (computed !== event.hash) return { seq: event.seq, reason: 'hash_mismatch' };
    prevSeq = event.seq;
    prevHash = event.hash;
  }
  return null;
}
