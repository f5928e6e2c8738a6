import { GENESIS_HASH, eventHash, type StoredEvent } from '../../src/shared';

/**
 * Builds a valid chained run of events, as an agent would send them. The events are dated an hour
 * before `start` (default: the wall clock now), one second apart, so windows such as "the last 7
 * days" hold them whatever the date the suite runs on.
 */
export function makeChain(
  count: number,
  opts: { from?: number; prevHash?: string; type?: string; payload?: (seq: number) => unknown; start?: Date } = {},
): StoredEvent[] {
  const base = Math.floor(((opts.start ?? new Date()).getTime() - 3_600_000) / 1000) * 1000;
  const out: StoredEvent[] = [];
  let prev = opts.prevHash ?? GENESIS_HASH;
  const from = opts.from ?? 1;
  for (let seq = from; seq < from + count; seq++) {
    const e = {
      seq,
      at: new Date(base + seq * 1000).toISOString(),
      type: (opts.type ?? 'agent.started') as StoredEvent['type'],
      payload: opts.payload ? opts.payload(seq) : { version: '0.1.0', platform: 'linux', hostname: 'pc-001' },
    };
    const hash = eventHash(prev, e);
    out.push({ ...e, prevHash: prev, hash });
    prev = hash;
  }
  return out;
}
