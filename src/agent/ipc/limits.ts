/**
 * Per-user limits for the IPC server (docs/design.md#ipc-limits): pure, and timed by the clock
 * they are given, so tests move time instead of waiting.
 */

/** A token bucket per key: `capacity` calls at once, refilled at `perMinute` a minute. */
export interface TokenBuckets {
  /** Takes one token for `key`; false when its bucket is empty. */
  take(key: string): boolean;
  /** Milliseconds until `key` has a token again (0 when it has one). */
  retryAfterMs(key: string): number;
}

export function createTokenBuckets(opts: { capacity: number; perMinute: number; now: () => number; maxKeys?: number }): TokenBuckets {
  const buckets = new Map<string, { tokens: number; at: number }>();
  const msPerToken = 60_000 / opts.perMinute;
  const maxKeys = opts.maxKeys ?? 1_000;
  function refill(key: string) {
    const t = opts.now();
    const b = buckets.get(key) ?? { tokens: opts.capacity, at: t };
    b.tokens = Math.min(opts.capacity, b.tokens + Math.max(0, t - b.at) / msPerToken);
    b.at = t;
    buckets.delete(key);
    buckets.set(key, b); // newest last, so the oldest is dropped first
    if (buckets.size > maxKeys) buckets.delete(buckets.keys().next().value as string);
    return b;
  }
  return {
    take(key) {
      const b = refill(key);
      if (b.tokens < 1) return false;
      b.tokens -= 1;
      return true;
    },
    retryAfterMs(key) {
      const b = refill(key);
      return b.tokens >= 1 ? 0 : Math.ceil((1 - b.tokens) * msPerToken);
    },
  };
}

/**
 * Calls `fn` at once, then at most once per `intervalMs`: calls in between are folded into one
 * that runs when the interval ends. `stop()` drops a pending one.
 */
export function throttle(fn: () => void, intervalMs: number, now: () => number): { call(): void; stop(): void } {
  let last = -Infinity;
  let timer: ReturnType<typeof setTimeout> | null = null;
  const run = () => {
    timer = null;
    last = now();
    fn();
  };
  return {
    call() {
      if (timer) return;
      const wait = last + intervalMs - now();
      if (wait <= 0) run();
      else {
        timer = setTimeout(run, wait);
        timer.unref?.();
      }
    },
    stop() {
      if (timer) clearTimeout(timer);
      timer = null;
    },
  };
}

/** Times of the events of each key within a sliding window. */
export function createWindowCounter(windowMs: number, now: () => number) {
  const times = new Map<string, number[]>();
  const live = (key: string) => {
    const t = now();
    const list = (times.get(key) ?? []).filter((x) => t - x < windowMs);
    if (list.length) times.set(key, list);
    else times.delete(key);
    return list;
  };
  return {
    count: (key: string) => live(key).length,
    add(key: string) {
      const list = live(key);
      list.push(now());
      times.set(key, list);
    },
  };
}
