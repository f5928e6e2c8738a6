import { nextDelayMs } from './backoff';
import type { CycleResult } from './cycle';
import type { Logger } from './logger';

/** Runs the cycle on the policy's interval, backing off while offline, until stopped. */
export interface Scheduler {
  /** Forgets an earlier `stop()`: called as the service starts, before its slow start-up steps. */
  reset(): void;
  /**
   * Cycles until SIGINT, SIGTERM or `stop()` (also one made since `reset()`); resolves once the
   * last cycle has ended.
   */
  run(): Promise<void>;
  /** Asks for a cycle now; one asked for while a cycle runs is served right after it. */
  requestCycle(): void;
  /** Ends `run` after the cycle in progress, as SIGTERM does. */
  stop(): void;
}

export function createScheduler(opts: {
  cycle: () => Promise<CycleResult>;
  /** The policy's sync interval, read before every wait. */
  intervalSeconds: () => number;
  log: Logger;
}): Scheduler {
  const { log } = opts;
  let stopping = false;
  let wakeNow: (() => void) | null = null;
  // Set when something asks for a cycle while one is running, so the request is not lost.
  let cycleRequested = false;

  const wait = (delay: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, delay);
      wakeNow = () => {
        clearTimeout(timer);
        wakeNow = null;
        resolve();
      };
    });

  async function loop(): Promise<void> {
    let failures = 0;
    while (!stopping) {
      // A request made before this cycle starts is served by it; only one made while it runs
      // asks for another (a request during the wait wakes the loop and is consumed here).
      cycleRequested = false;
      try {
        const result = await opts.cycle();
        // Offline, or installed before the collector could be reached: retry with backoff.
        failures = (result.enrolled && !result.collectorReachable) || result.provisionPending ? failures + 1 : 0;
      } catch (err) {
        failures += 1;
        log.error({ err }, 'cycle failed');
      }
      if (stopping) break;
      await wait(cycleRequested ? 0 : nextDelayMs(opts.intervalSeconds(), failures));
    }
  }

  return {
    reset() {
      stopping = false;
    },
    async run() {
      const stop = (signal: string) => {
        stopping = true;
        log.info({ signal }, 'stopping');
        wakeNow?.();
      };
      const onSigint = () => stop('SIGINT');
      const onSigterm = () => stop('SIGTERM');
      process.once('SIGINT', onSigint);
      process.once('SIGTERM', onSigterm);
      try {
        await loop();
      } finally {
        process.off('SIGINT', onSigint);
        process.off('SIGTERM', onSigterm);
      }
    },
    requestCycle() {
      cycleRequested = true;
      wakeNow?.();
    },
    stop() {
      stopping = true;
      wakeNow?.();
    },
  };
}
