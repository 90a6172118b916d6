/**
 * One deadline per invocation, enforced on every remote call.
 *
 * A deadline is an instant. `run(what, fn)` gives `fn` an AbortSignal that fires at the deadline (or
 * sooner, with a cap) and settles at that instant whatever `fn` does: a dependency that hangs, answers
 * its headers and then trickles its body one byte at a time, or ignores the signal, still cannot hold the
 * caller past it. The signal lets the SDK or `fetch` tear the connection down; the race is what makes the
 * bound hold even when that cleanup is slow.
 */

/** A remote call was cut off at its deadline (or at its cap). */
export class DeadlineExceeded extends Error {
  constructor(
    /** What was being waited for (an operation name, never a URL). */
    readonly what: string,
    readonly afterMs: number,
  ) {
    super(`${what}: no complete answer within ${Math.max(0, Math.round(afterMs))} ms`);
    this.name = 'DeadlineExceeded';
  }
}

export interface Deadline {
  /** Epoch milliseconds of the deadline. */
  readonly at: number;
  /** Milliseconds left (negative once past). */
  remainingMs(): number;
  /**
   * Runs `fn` with a signal that aborts at the deadline, or after `capMs` if that comes first; rejects
   * with {@link DeadlineExceeded} at that instant. Rejects at once, without calling `fn`, when no time
   * is left.
   */
  run<T>(what: string, fn: (signal: AbortSignal) => Promise<T>, capMs?: number): Promise<T>;
  /** A deadline `ms` from now, or this one if it comes sooner. */
  within(ms: number): Deadline;
  /** This deadline moved `ms` earlier (time kept back to report an outcome). */
  reserve(ms: number): Deadline;
}

const MAX_TIMER_MS = 2 ** 31 - 1;
/** The largest shortfall (ms) between the timer and the clock that is waited out, and how often. */
const REARM_MAX_MS = 50;
const REARM_TIMES = 3;

export function deadlineAt(at: number, now: () => number = Date.now): Deadline {
  const remainingMs = () => at - now();
  return {
    at,
    remainingMs,
    within: (ms) => deadlineAt(Math.min(at, now() + ms), now),
    reserve: (ms) => deadlineAt(at - ms, now),
    run<T>(what: string, fn: (signal: AbortSignal) => Promise<T>, capMs?: number): Promise<T> {
      const remaining = remainingMs();
      const allowed = Math.min(remaining, capMs ?? Number.POSITIVE_INFINITY);
      if (!(allowed > 0)) return Promise.reject(new DeadlineExceeded(what, 0));
      const controller = new AbortController();
      // setTimeout cannot wait longer than 2^31 - 1 ms (about 24.8 days): a later deadline is waited for in steps.
      const wait = Math.min(allowed, MAX_TIMER_MS);
      // Cut at the deadline itself (not at a shorter cap): the timer runs on a monotonic clock and may
      // fire a millisecond before `now()` reaches the deadline, so it is re-armed for that shortfall, so
      // whoever sees this rejection also sees `remainingMs() <= 0`, which is how callers tell "out of
      // time" from a failure. Only a small shortfall, a few times: a wall clock stepped back (or frozen)
      // never holds a call past the time it was given.
      const atDeadline = capMs === undefined || capMs >= remaining;
      let rearms = 0;
      // One promise settled by whichever comes first, the work or the deadline (no Promise.race, no
      // finally: this runs once per remote call, on the receiver's hot path).
      return new Promise<T>((resolve, reject) => {
        let timer: ReturnType<typeof setTimeout>;
        const fire = (): void => {
          const left = remainingMs();
          if (
            atDeadline &&
            left > 0 &&
            (wait === MAX_TIMER_MS || (left <= REARM_MAX_MS && rearms < REARM_TIMES))
          ) {
            rearms += 1;
            timer = setTimeout(fire, Math.min(Math.ceil(left), MAX_TIMER_MS));
            return;
          }
          const error = new DeadlineExceeded(what, wait);
          controller.abort(error);
          reject(error);
        };
        timer = setTimeout(fire, wait);
        let work: Promise<T>;
        try {
          work = Promise.resolve(fn(controller.signal));
        } catch (error) {
          clearTimeout(timer);
          reject(error);
          return;
        }
        work.then(
          (value) => {
            clearTimeout(timer);
            resolve(value);
          },
          (error: unknown) => {
            clearTimeout(timer);
            reject(error);
          },
        );
      });
    },
  };
}

/** The part of Lambda's context a deadline is read from. */
export interface RemainingTime {
  getRemainingTimeInMillis?(): number;
}

/**
 * The invocation's deadline: Lambda's remaining time minus `reserveMs` (kept back to answer or report),
 * or `fallbackMs` from now when there is no Lambda context (the local server, tests).
 */
export function invocationDeadline(
  context: RemainingTime | undefined,
  reserveMs: number,
  fallbackMs: number,
  now: () => number = Date.now,
): Deadline {
  const remaining =
    typeof context?.getRemainingTimeInMillis === 'function' ? context.getRemainingTimeInMillis() : fallbackMs;
  return deadlineAt(now() + remaining - reserveMs, now);
}
