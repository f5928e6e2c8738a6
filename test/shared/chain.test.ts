import { describe, expect, it } from 'vitest';
import { GENESIS_HASH, eventHash, sha256Hex, verifyChain, type ChainedEvent } from '../../src/shared';
import { createHash } from 'node:crypto';

function chain(n: number): ChainedEvent[] {
  const out: ChainedEvent[] = [];
  let prev = GENESIS_HASH;
  for (let seq = 1; seq <= n; seq++) {
    const e = { seq, at: `2026-11-22T09:00:0${seq}.000Z`, type: 'agent.started', payload: { n: seq } };
    const hash = eventHash(prev, e);
    out.push({ ...e, prevHash: prev, hash });
    prev = hash;
  }
  return out;
}

describe('event hash chain', () => {
  it('is SHA-256 over prev hash followed by canonical JSON of seq, at, type, payload', () => {
    const expected = createHash('sha256')
      .update(GENESIS_HASH + '{"at":"2026-11-22T09:00:00.000Z","payload":{"user":"山田"},"seq":1,"type":"login.success"}', 'utf8')
      .digest('hex');
    expect(eventHash(GENESIS_HASH, { seq: 1, at: '2026-11-22T09:00:00.000Z', type: 'login.success', payload: { user: '山田' } })).toBe(expected);
    expect(sha256Hex('abc')).toBe(createHash('sha256').update('abc').digest('hex'));
  });

  it('verifies an intact chain', () => {
    expect(verifyChain(chain(5))).toBeNull();
  });

  it('names the first seq whose payload was edited', () => {
    const events = chain(5);
    events[2] = { ...events[2]!, payload: { n: 99 } };
    expect(verifyChain(events)).toEqual({ seq: 3, reason: 'hash_mismatch' });
  });

  it('names a gap and a relinked event', () => {
    const events = chain(5);
    expect(verifyChain([events[0]!, events[2]!])).toEqual({ seq: 3, reason: 'seq_gap' });
    const relinked = { ...events[3]!, prevHash: GENESIS_HASH };
    expect(verifyChain([events[0]!, events[1]!, events[2]!, relinked])).toEqual({ seq: 4, reason: 'prev_hash_mismatch' });
  });

  it('continues a chain from a trusted head', () => {
    const events = chain(6);
    expect(verifyChain(events.slice(3), { seq: 3, hash: events[2]!.hash })).toBeNull();
    expect(verifyChain(events.slice(3), { seq: 3, hash: GENESIS_HASH })).toEqual({ seq: 4, reason: 'prev_hash_mismatch' });
  });
});
