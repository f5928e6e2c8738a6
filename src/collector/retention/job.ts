import type { CollectorContext } from '../context';
import { pruneEvents } from './retention';

export interface RetentionJobOptions {
  /** The wait before the first pass after start (default five minutes: a restart loop does not prune in a loop). */
  firstRunMs: number;
  /** The wait between passes (default a day). */
  intervalMs: number;
  /** Told of a pass that failed; the job goes on at the next interval. */
  onError?: (err: unknown) => void;
}

export const DEFAULT_RETENTION_JOB: RetentionJobOptions = { firstRunMs: 5 * 60_000, intervalMs: 24 * 3_600_000 };

export interface RetentionJob {
  /** Stops the timer and waits for a pass under way. */
  stop(): Promise<void>;
}

/**
 * The daily retention pass of a running collector (docs/design.md#retention). Several collectors
 * on one PostgreSQL may all run it: each batch locks its terminal's row, and a batch that finds
 * nothing older left does nothing.
 */
export function startRetentionJob(ctx: CollectorContext, options: Partial<RetentionJobOptions> = {}): RetentionJob {
  const opts = { ...DEFAULT_RETENTION_JOB, ...options };
  let stopped = false;
  let running: Promise<void> = Promise.resolve();
  let timer: NodeJS.Timeout | undefined;
  const schedule = (ms: number) => {
    timer = setTimeout(() => {
      running = pruneEvents(ctx)
        .then(
          () => undefined,
          (err: unknown) => opts.onError?.(err),
        )
        .finally(() => {
          if (!stopped) schedule(opts.intervalMs);
        });
    }, ms);
    timer.unref();
  };
  schedule(opts.firstRunMs);
  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
