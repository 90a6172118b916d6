import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { DeadlineExceeded, deadlineAt, invocationDeadline } from '../../../functions/shared/aws/deadline.ts';

const START = 1_700_000_000_000;

/** Follows a promise's state without leaving a rejection unhandled. */
function track<T>(promise: Promise<T>) {
  const state: { settled: 'pending' | 'resolved' | 'rejected'; value?: T; error?: unknown } = {
    settled: 'pending',
  };
  promise.then(
    (value) => {
      state.settled = 'resolved';
      state.value = value;
    },
    (error: unknown) => {
      state.settled = 'rejected';
      state.error = error;
    },
  );
  return state;
}

const never = <T>() => new Promise<T>(() => {});

describe('DeadlineExceeded', () => {
  it('names what was waited for and how long, in whole milliseconds', () => {
    const error = new DeadlineExceeded('SSM GetParameter', 12.4);
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('DeadlineExceeded');
    expect(error.what).toBe('SSM GetParameter');
    expect(error.afterMs).toBe(12.4);
    expect(error.message).toBe('SSM GetParameter: no complete answer within 12 ms');
  });

  it.each([
    [12.5, '13'],
    [0, '0'],
    [-3, '0'],
    [-0.4, '0'],
    [1500, '1500'],
  ])('reports %s ms as %s ms', (afterMs, shown) => {
    expect(new DeadlineExceeded('x', afterMs).message).toBe(`x: no complete answer within ${shown} ms`);
  });
});

describe('deadlineAt (arithmetic)', () => {
  it('exposes its instant and the time left, negative once past', () => {
    let t = 1_000;
    const deadline = deadlineAt(5_000, () => t);
    expect(deadline.at).toBe(5_000);
    expect(deadline.remainingMs()).toBe(4_000);
    t = 4_999;
    expect(deadline.remainingMs()).toBe(1);
    t = 6_000;
    expect(deadline.remainingMs()).toBe(-1_000);
  });

  it('within(ms) is ms from now when that comes sooner, else the same instant', () => {
    let t = 1_000;
    const deadline = deadlineAt(5_000, () => t);
    expect(deadline.within(300).at).toBe(1_300);
    expect(deadline.within(4_000).at).toBe(5_000);
    expect(deadline.within(10_000).at).toBe(5_000);
    t = 2_000;
    const sooner = deadline.within(500);
    expect(sooner.at).toBe(2_500);
    // The derived deadline reads the same clock.
    t = 2_100;
    expect(sooner.remainingMs()).toBe(400);
  });

  it('reserve(ms) moves the instant ms earlier, on the same clock', () => {
    let t = 1_000;
    const deadline = deadlineAt(5_000, () => t);
    const reserved = deadline.reserve(300);
    expect(reserved.at).toBe(4_700);
    expect(reserved.remainingMs()).toBe(3_700);
    t = 2_000;
    expect(reserved.remainingMs()).toBe(2_700);
    expect(deadline.reserve(0).at).toBe(5_000);
    expect(deadline.reserve(300).reserve(200).at).toBe(4_500);
    expect(deadline.reserve(300).within(10_000).at).toBe(4_700);
  });

  it('uses Date.now by default', () => {
    vi.useFakeTimers({ now: START });
    try {
      const deadline = deadlineAt(START + 1_000);
      expect(deadline.remainingMs()).toBe(1_000);
      vi.setSystemTime(START + 250);
      expect(deadline.remainingMs()).toBe(750);
      expect(deadline.within(100).at).toBe(START + 350);
      expect(deadline.reserve(100).remainingMs()).toBe(650);
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('deadlineAt().run', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: START });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('resolves with what fn resolves and leaves no timer behind', async () => {
    const deadline = deadlineAt(START + 1_000);
    let signal: AbortSignal | undefined;
    const result = await deadline.run('op', async (s) => {
      signal = s;
      return 'value';
    });
    expect(result).toBe('value');
    expect(signal).toBeInstanceOf(AbortSignal);
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(signal?.aborted).toBe(false);
  });

  it('rejects with what fn rejects and leaves no timer behind', async () => {
    const deadline = deadlineAt(START + 1_000);
    const failure = new Error('boom');
    await expect(deadline.run('op', async () => Promise.reject(failure))).rejects.toBe(failure);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('turns fn throwing synchronously into a rejected promise, and leaves no timer behind', async () => {
    const deadline = deadlineAt(START + 1_000);
    const failure = new TypeError('sync bug');
    let returned: Promise<unknown> | undefined;
    expect(() => {
      returned = deadline.run('op', () => {
        throw failure;
      });
    }).not.toThrow();
    expect(returned).toBeInstanceOf(Promise);
    await expect(returned).rejects.toBe(failure);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('rejects with DeadlineExceeded at the deadline even when fn ignores the signal, and aborts the signal', async () => {
    const deadline = deadlineAt(START + 100);
    let signal: AbortSignal | undefined;
    const state = track(
      deadline.run('EventBridge PutEvents', (s) => {
        signal = s;
        return never<string>();
      }),
    );
    await vi.advanceTimersByTimeAsync(99);
    expect(state.settled).toBe('pending');
    expect(signal?.aborted).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(state.settled).toBe('rejected');
    expect(state.error).toBeInstanceOf(DeadlineExceeded);
    expect(state.error).toMatchObject({ what: 'EventBridge PutEvents', afterMs: 100 });
    expect((state.error as Error).message).toBe('EventBridge PutEvents: no complete answer within 100 ms');
    expect(signal?.aborted).toBe(true);
    expect(signal?.reason).toBe(state.error);
  });

  it('settles at the deadline even when fn would answer later', async () => {
    const deadline = deadlineAt(START + 100);
    const slow = () => new Promise<string>((resolve) => setTimeout(() => resolve('late'), 500));
    const state = track(deadline.run('op', slow));
    await vi.advanceTimersByTimeAsync(100);
    expect(state.settled).toBe('rejected');
    expect(state.error).toBeInstanceOf(DeadlineExceeded);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(state.settled).toBe('rejected');
  });

  it('cuts off at the cap when it comes before the deadline', async () => {
    const deadline = deadlineAt(START + 1_000);
    let signal: AbortSignal | undefined;
    const state = track(
      deadline.run(
        'op',
        (s) => {
          signal = s;
          return never();
        },
        40,
      ),
    );
    await vi.advanceTimersByTimeAsync(39);
    expect(state.settled).toBe('pending');
    await vi.advanceTimersByTimeAsync(1);
    expect(state.settled).toBe('rejected');
    expect(state.error).toMatchObject({ name: 'DeadlineExceeded', what: 'op', afterMs: 40 });
    expect(signal?.aborted).toBe(true);
  });

  it('cuts off at the deadline when the cap comes after it', async () => {
    const deadline = deadlineAt(START + 100);
    const state = track(deadline.run('op', () => never(), 150));
    await vi.advanceTimersByTimeAsync(99);
    expect(state.settled).toBe('pending');
    await vi.advanceTimersByTimeAsync(1);
    expect(state.settled).toBe('rejected');
    expect(state.error).toMatchObject({ afterMs: 100 });
  });

  it('measures the time left when run is called, not when the deadline was made', async () => {
    const deadline = deadlineAt(START + 100);
    vi.setSystemTime(START + 60);
    const state = track(deadline.run('op', () => never()));
    await vi.advanceTimersByTimeAsync(39);
    expect(state.settled).toBe('pending');
    await vi.advanceTimersByTimeAsync(1);
    expect(state.error).toMatchObject({ afterMs: 40 });
  });

  it.each([
    ['no time is left', 0, undefined],
    ['the deadline has passed', -50, undefined],
    ['the cap is 0', 1_000, 0],
    ['the cap is negative', 1_000, -1],
  ])('rejects at once, without calling fn, when %s', async (_case, left, cap) => {
    const deadline = deadlineAt(START + left);
    const fn = vi.fn(() => never());
    const state = track(deadline.run('op', fn, cap));
    await Promise.resolve();
    await Promise.resolve();
    expect(state.settled).toBe('rejected');
    expect(state.error).toBeInstanceOf(DeadlineExceeded);
    expect(state.error).toMatchObject({ what: 'op', afterMs: 0 });
    expect((state.error as Error).message).toBe('op: no complete answer within 0 ms');
    expect(fn).not.toHaveBeenCalled();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('rejects at once when the time left is not a number', async () => {
    const deadline = deadlineAt(Number.NaN);
    const fn = vi.fn(() => never());
    await expect(deadline.run('op', fn)).rejects.toBeInstanceOf(DeadlineExceeded);
    expect(fn).not.toHaveBeenCalled();
  });

  it('calls fn with 1 ms left', async () => {
    const deadline = deadlineAt(START + 1);
    const fn = vi.fn(async () => 'ok');
    await expect(deadline.run('op', fn)).resolves.toBe('ok');
    expect(fn).toHaveBeenCalledOnce();
  });

  it('gives each run its own signal', async () => {
    const deadline = deadlineAt(START + 1_000);
    const signals: AbortSignal[] = [];
    const first = track(
      deadline.run(
        'first',
        (s) => {
          signals.push(s);
          return never();
        },
        10,
      ),
    );
    const second = track(
      deadline.run('second', (s) => {
        signals.push(s);
        return Promise.resolve(2);
      }),
    );
    await vi.advanceTimersByTimeAsync(10);
    expect(first.settled).toBe('rejected');
    expect(second).toMatchObject({ settled: 'resolved', value: 2 });
    expect(signals[0]?.aborted).toBe(true);
    expect(signals[1]?.aborted).toBe(false);
  });
});

describe('deadlineAt().run with real timers', () => {
  it('settles a call that never answers by its deadline', async () => {
    const started = Date.now();
    let signal: AbortSignal | undefined;
    const call = deadlineAt(started + 30).run('op', (s) => {
      signal = s;
      return never();
    });
    await expect(call).rejects.toBeInstanceOf(DeadlineExceeded);
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(signal?.aborted).toBe(true);
  });
});

describe('deadlineAt().run beyond the range of setTimeout', () => {
  // Node cannot arm a timer longer than 2^31 - 1 ms (~24.8 days; it would fire after 1 ms): such a
  // deadline is cut at that limit instead, never at once.
  it('holds a call until a deadline more than 2^31 - 1 ms away', async () => {
    const warning = vi.spyOn(process, 'emitWarning');
    const state = track(deadlineAt(Date.now() + 2 ** 31 + 10_000).run('op', () => never()));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(state.settled).toBe('pending');
    expect(warning).not.toHaveBeenCalled();
  });
});

describe('deadlineAt().run against a clock behind its timers', () => {
  // Timers run on a monotonic clock; Date.now can read a millisecond short of the deadline when one fires.
  // A cut at the deadline must leave remainingMs() <= 0, or callers read "out of time" as a failure.
  it('rejects at the deadline only once its clock has reached it', async () => {
    let t = 0;
    const deadline = deadlineAt(30, () => t);
    const state = track(deadline.run('op', () => never()));
    // The timer fired (30 ms) with the clock 30 ms short: waited out, not cut.
    await new Promise((resolve) => setTimeout(resolve, 45));
    expect(state.settled).toBe('pending');
    t = 30;
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(state.settled).toBe('rejected');
    expect(state.error).toBeInstanceOf(DeadlineExceeded);
    expect(deadline.remainingMs()).toBeLessThanOrEqual(0);
  });

  it('never holds a call long past its time when the clock stands still or steps back', async () => {
    // A frozen clock 30 ms short: waited out a few times only, then cut.
    const frozen = deadlineAt(30, () => 0);
    let started = Date.now();
    await expect(frozen.run('op', () => never())).rejects.toBeInstanceOf(DeadlineExceeded);
    expect(Date.now() - started).toBeLessThan(30 * 4 + 100);
    // A wall clock stepped back 3 s during a 100 ms call: cut at the timer, as without a clock.
    let offset = 0;
    const stepped = deadlineAt(Date.now() + 100, () => Date.now() - offset);
    started = Date.now();
    const call = stepped.run('op', () => never());
    offset = 3_000;
    await expect(call).rejects.toBeInstanceOf(DeadlineExceeded);
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it('still cuts at a shorter cap whatever its clock says', async () => {
    const deadline = deadlineAt(10_000, () => 0);
    const started = Date.now();
    await expect(deadline.run('op', () => never(), 40)).rejects.toBeInstanceOf(DeadlineExceeded);
    expect(Date.now() - started).toBeLessThan(1_000);
  });
});

describe('invocationDeadline', () => {
  it("is Lambda's remaining time minus the reserve", () => {
    const getRemainingTimeInMillis = vi.fn(() => 3_000);
    const deadline = invocationDeadline({ getRemainingTimeInMillis }, 500, 10_000, () => 1_000);
    expect(deadline.at).toBe(3_500);
    expect(deadline.remainingMs()).toBe(2_500);
    expect(getRemainingTimeInMillis).toHaveBeenCalledOnce();
  });

  it('is the fallback minus the reserve without a Lambda context', () => {
    expect(invocationDeadline(undefined, 500, 10_000, () => 1_000).at).toBe(10_500);
    expect(invocationDeadline({}, 500, 10_000, () => 1_000).at).toBe(10_500);
  });

  it('reads the clock it is given for remainingMs', () => {
    let t = 1_000;
    const deadline = invocationDeadline({ getRemainingTimeInMillis: () => 3_000 }, 500, 10_000, () => t);
    t = 1_400;
    expect(deadline.remainingMs()).toBe(2_100);
  });

  it('uses Date.now by default', () => {
    vi.useFakeTimers({ now: START });
    try {
      const deadline = invocationDeadline({ getRemainingTimeInMillis: () => 3_000 }, 500, 10_000);
      expect(deadline.at).toBe(START + 2_500);
      vi.setSystemTime(START + 100);
      expect(deadline.remainingMs()).toBe(2_400);
    } finally {
      vi.useRealTimers();
    }
  });
});
