/**
 * The time as a process sees it. Every decision that depends on the time (expiries, "the last 7
 * days", "not seen for N days", lending periods) reads a `Clock` it was given, never the wall
 * clock directly, so tests can set the date and fixtures stay valid as the calendar moves on.
 */
export interface Clock {
  /** Now. */
  now(): Date;
}

/** The wall clock. */
export const systemClock: Clock = { now: () => new Date() };

/** A clock fixed at `at` until moved, for tests and replays. */
export function fixedClock(at: Date | string | number): Clock & { set(at: Date | string | number): void; advance(ms: number): void } {
  let t = new Date(at).getTime();
  return {
    now: () => new Date(t),
    set(next) {
      t = new Date(next).getTime();
    },
    advance(ms) {
      t += ms;
    },
  };
}
