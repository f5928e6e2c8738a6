import type { DegradedReason, EnforcementState } from '../../shared';
import type { Logger } from '../logger';
import type { DeviceHints } from './hints';
import type { ReconcileResult, Reconciler } from './reconciler';

/** Runs the reconciler at start, on every device hint, and on a timer. */
export interface EnforcementService {
  /**
   * Runs the start-up pass (devices present before the agent started are reconciled now), then
   * starts the hints and the timer. Resolves with the start-up pass.
   */
  start(): Promise<ReconcileResult>;
  /** Stops the timer and the hints, and waits for a pass in progress. */
  stop(): Promise<void>;
  /**
   * Asks for a pass as soon as possible. Requests that arrive while a pass runs collapse into one
   * more pass after it (a plug brings a burst of hints), so none is lost and none piles up.
   */
  poke(reason: string): void;
  /**
   * The reconciler's state; `degraded` as well while device hints are unavailable, since a device
   * then waits for the timer (up to `intervalMs`) to be blocked where blocking is reactive
   * (Windows' present devices, macOS) or to become usable when it is allowed.
   */
  state(): EnforcementState;
  /**
   * Why `state()` is `degraded` (empty when it is not): the last pass's reasons, and
   * `device_notices_unavailable` while hints are unavailable.
   */
  reasons(): DegradedReason[];
  /** Why device hints are unavailable, or null when they work (or before `start`). */
  hintsUnavailable(): string | null;
}

/**
 * The enforcement scheduler of the enforcement model (docs/design.md#enforcement-model): hints and a timer only trigger level-triggered
 * passes. `onHintsUnavailable` is called once per start when hints cannot start, for the caller
 * to record one `agent.warning`.
 */
export function createEnforcementService(opts: {
  reconciler: Reconciler;
  hints: DeviceHints;
  /** Timer period; default 30 s. */
  intervalMs?: number;
  logger?: Pick<Logger, 'error'>;
  onHintsUnavailable?: (reason: string) => void;
}): EnforcementService {
  const intervalMs = opts.intervalMs ?? 30_000;
  let timer: NodeJS.Timeout | null = null;
  let inFlight: Promise<unknown> | null = null;
  let again: string | null = null;
  let stopped = true;
  let hintsError: string | null = null;

  function run(reason: string): Promise<unknown> {
    const pass = opts.reconciler
      .reconcile(reason)
      .catch((err: unknown) => opts.logger?.error({ err, reason }, 'reconcile failed'))
      .finally(() => {
        inFlight = null;
        if (again !== null && !stopped) {
          const next = again;
          again = null;
          inFlight = run(next);
        }
      });
    return pass;
  }

  function poke(reason: string): void {
    if (stopped) return;
    if (inFlight) {
      again ??= reason;
      return;
    }
    inFlight = run(reason);
  }

  return {
    async start() {
      if (!stopped) throw new Error('the enforcement service is already running');
      stopped = false;
      const first = opts.reconciler.reconcile('start');
      inFlight = first.finally(() => {
        inFlight = null;
      });
      const result = await first;
      if (stopped) return result;
      hintsError = opts.hints.start(() => poke('hint'));
      if (hintsError) opts.onHintsUnavailable?.(hintsError);
      timer = setInterval(() => poke('timer'), intervalMs);
      // The agent's own loop keeps the process alive; the timer must not keep a test alive.
      timer.unref();
      return result;
    },
    async stop() {
      stopped = true;
      again = null;
      if (timer) clearInterval(timer);
      timer = null;
      opts.hints.stop();
      await inFlight;
    },
    poke,
    state() {
      const state = opts.reconciler.state();
      return hintsError && state === 'active' ? 'degraded' : state;
    },
    reasons() {
      const state = opts.reconciler.state();
      const reasons = state === 'degraded' ? opts.reconciler.reasons() : [];
      return hintsError && (state === 'active' || state === 'degraded') ? ['device_notices_unavailable', ...reasons] : reasons;
    },
    hintsUnavailable: () => hintsError,
  };
}
