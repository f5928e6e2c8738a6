import { canonicalJson } from './canonical-json';

/**
 * Where a terminal's stored chain starts once retention has pruned the events before it
 * (docs/design.md#retention): the seq and hash of the last pruned event and the time it was
 * recorded. The collector signs it with the policy-signing key, so a checkpoint moved or edited in
 * the database does not verify, and the events after it verify from its hash on.
 */
export interface ChainCheckpoint {
  agentId: string;
  seq: number;
  hash: string;
  at: string;
}

/** The bytes a checkpoint signature covers; the kind keeps it from passing as any other document. */
export function checkpointSigningPayload(c: ChainCheckpoint): string {
  return canonicalJson({ kind: 'mamori.chain-checkpoint', agentId: c.agentId, seq: c.seq, hash: c.hash, at: c.at });
}
