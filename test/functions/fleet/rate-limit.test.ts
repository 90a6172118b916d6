/**
 * The run's adaptive Z-API rate limit (functions/fleet/rate-limit.ts): pacing at the configured
 * rate, growth while answers are fine, a run-wide pause and a lower rate on 429, slots refused (not
 * waited for) past the deadline, and Retry-After in seconds or as an HTTP date.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { AdaptiveRateLimiter, RateLimitTimeout, retryAfterMs } from '../../../functions/fleet/rate-limit.ts';
import { deadlineAt } from '../../../functions/shared/aws/deadline.ts';

const soon = (ms = 10_000) => deadlineAt(Date.now() + ms);
/** Two 429s with no answer between them: Z-API refusing everyone, the whole run waits. */
const storm = (limiter: AdaptiveRateLimiter, ms: number | undefined) => {
  limiter.rateLimited(ms);
  return limiter.rateLimited(ms);
};

describe('retryAfterMs', () => {
  const now = Date.parse('2026-12-02T08:00:00.000Z');
  it.each([
    ['0', 0],
    ['1', 1_000],
    [' 30 ', 30_000],
    ['Wed, 02 Dec 2026 08:00:05 GMT', 5_000],
    ['Wed, 02 Dec 2026 07:59:00 GMT', 0], // a date in the past: at once
    ['Wed, 21 Oct 2015 07:28:00 GMT', 0], // a valid date, long past: at once too
    ['Wednesday, 02-Dec-26 08:00:02 GMT', 2_000], // the obsolete RFC 850 form
    ['Wed Dec  2 08:00:03 2026', 3_000], // the obsolete asctime form (always GMT)
    ['Wed Dec 02 08:00:03 2026', 3_000],
  ])('%j -> %i ms', (value, ms) => {
    expect(retryAfterMs(value, now)).toBe(ms);
  });

  it('reads every weekday of the obsolete forms as of the IMF-fixdate', () => {
    for (let day = 0; day < 7; day++) {
      const at = Date.UTC(2026, 11, 2 + day, 8, 0, 5);
      const imf = new Date(at).toUTCString(); // e.g. "Wed, 02 Dec 2026 08:00:05 GMT"
      const [weekday, date, month, year, time] = imf.replace(',', '').split(' ') as string[];
      const long = new Date(at).toLocaleDateString('en-US', { weekday: 'long', timeZone: 'UTC' });
      const rfc850 = `${long}, ${date}-${month}-${year?.slice(2)} ${time} GMT`;
      const asctime = `${weekday} ${month} ${date?.replace(/^0/, ' ')} ${time} ${year}`;
      for (const form of [imf, rfc850, asctime]) expect(retryAfterMs(form, now), form).toBe(at - now);
    }
  });

  it('reads an RFC 850 two-digit year as RFC 9110 says: never more than 50 years ahead', () => {
    // 2076 is 50 years ahead of 2026 (kept); 2077 is more, so it is 1977 (long past: at once).
    expect(retryAfterMs('Wednesday, 02-Dec-76 08:00:00 GMT', now)).toBe(Date.UTC(2076, 11, 2, 8) - now);
    expect(retryAfterMs('Friday, 02-Dec-77 08:00:00 GMT', now)).toBe(0);
    expect(retryAfterMs('Tuesday, 02-Dec-25 08:00:00 GMT', now)).toBe(0);
  });

  // Only delay-seconds or one of RFC 9110's three HTTP-date forms, exactly: anything else is no Retry-After
  // (the caller backs off), never "at once", however leniently Date.parse would read it (an ISO 8601
  // time, a word and a number, a date that does not exist, a weekday that does not fit).
  it.each([
    [null],
    [undefined],
    [''],
    ['  '],
    ['soon'],
    ['-1'],
    ['1.5'],
    ['1e3'],
    ['+5'],
    ['0x10'],
    ['\uff11\uff12'],
    ['1 minute'],
    ['in 30s'],
    ['abc 12'],
    ['Mon 5'],
    ['2026-12-02T08:00:05Z'],
    ['Dec 2 2026 08:00:05'],
    ['Wed, 02 Dec 2026 08:00:05'],
    ['Wed, 02 Dec 2026 08:00:05 UTC'],
    ['Wed, 02 Dec 2026 08:00:05 GMT+0100'],
    ['wed, 02 dec 2026 08:00:05 gmt'],
    ['Wed,  2 Dec 2026 08:00:05 GMT'],
    ['Wed, 2 Dec 2026 08:00:05 GMT'],
    ['Thu, 02 Dec 2026 08:00:05 GMT'],
    ['Tue, 31 Feb 2026 08:00:05 GMT'],
    ['Wed, 02 Dec 2026 24:00:00 GMT'],
    ['Sat, 02 Dec 0000 08:00:05 GMT'],
    ['Wed, 02 Dec 2026 08:00:05 GMT x'],
    ['x Wed, 02 Dec 2026 08:00:05 GMT'],
    ['Wed, 02-Dec-26 08:00:05 GMT'],
    ['Wednesday, 02-Dec-2026 08:00:05 GMT'],
    ['Wednesday, 02-Dec-26 08:00:05'],
    ['Wednesday, 02 Dec 26 08:00:05 GMT'],
    ['Wed Dec  2 08:00:03 2026 GMT'],
    ['Wed Dec 2 08:00:03 2026'],
    ['x Wednesday, 02-Dec-26 08:00:05 GMT'],
    ['Wednesday, 02-Dec-26 08:00:05 GMT x'],
    ['x Wed Dec  2 08:00:03 2026'],
    ['Wed Dec  2 08:00:03 2026 x'],
    ['Wed Dec  2 08:00:03 26'],
  ])('%j -> undefined', (value) => {
    expect(retryAfterMs(value, now)).toBeUndefined();
  });
});

describe('AdaptiveRateLimiter', () => {
  it('hands out slots at the configured rate: 60 at 40/s take about 1.5 s', async () => {
    const limiter = new AdaptiveRateLimiter({ requestsPerSecond: 40 });
    const started = Date.now();
    await Promise.all(Array.from({ length: 60 }, () => limiter.acquire(soon())));
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(1_300);
    expect(elapsed).toBeLessThan(2_500);
    expect(limiter.stats).toMatchObject({ requests: 60, rateLimited: 0, rate: 40, refused: 0 });
    limiter.close();
  });

  it('grows while answers come back (one request/s per answer), up to twice what is answered', async () => {
    const limiter = new AdaptiveRateLimiter({ requestsPerSecond: 10 });
    for (let i = 0; i < 5; i++) {
      await limiter.acquire(soon());
      limiter.answered();
    }
    // Five answers in the last second: the rate may grow to at most 10 (the configured rate) or 2 × 5.
    expect(limiter.stats.rate).toBe(10);
    for (let i = 0; i < 15; i++) {
      await limiter.acquire(soon());
      limiter.answered();
    }
    expect(limiter.stats.rate).toBeGreaterThan(10);
    expect(limiter.stats.rate).toBeLessThanOrEqual(40);
    limiter.close();
  });

  it('a 429 lowers the rate to 90 % of what was answered, and later ones creep back by about 2 %/s', () => {
    let now = 1_000_000;
    const limiter = new AdaptiveRateLimiter({ requestsPerSecond: 100, now: () => now, random: () => 0.5 });
    for (let i = 0; i < 50; i++) {
      now += 10;
      limiter.answered();
    }
    // 50 answers in the last 0.5 s.
    const wait = limiter.rateLimited(250);
    expect(wait).toBe(250);
    expect(limiter.stats.rate).toBeCloseTo(45, 5);
    // A second 429 within the same second does not lower it again.
    now += 100;
    limiter.rateLimited(100);
    expect(limiter.stats.rate).toBeCloseTo(45, 5);
    // After the first 429: +max(1, 2 % of the rate) per second of answers, not +1 per answer.
    for (let i = 0; i < 45; i++) {
      now += 1_000 / 45;
      limiter.answered();
    }
    expect(limiter.stats.rate).toBeGreaterThan(45.9);
    expect(limiter.stats.rate).toBeLessThan(46.1);
    expect(limiter.stats.lowestRate).toBeCloseTo(45, 5);
    limiter.close();
  });

  it('never drops below its floor nor grows above its ceiling', () => {
    let now = 0;
    const limiter = new AdaptiveRateLimiter({
      requestsPerSecond: 10,
      minRequestsPerSecond: 4,
      maxRequestsPerSecond: 12,
      now: () => now,
    });
    for (let i = 0; i < 5; i++) {
      now += 2_000;
      limiter.rateLimited(0);
    }
    expect(limiter.stats.rate).toBe(4);
    for (let i = 0; i < 500; i++) {
      now += 10;
      limiter.answered();
    }
    expect(limiter.stats.rate).toBe(12);
    limiter.close();
  });

  it('a storm (two 429s, no answer between) pauses every waiting request until Retry-After, then they go on in order', async () => {
    const limiter = new AdaptiveRateLimiter({ requestsPerSecond: 1_000 });
    await limiter.acquire(soon());
    storm(limiter, 400);
    const started = Date.now();
    const order: number[] = [];
    await Promise.all([0, 1, 2, 3].map((i) => limiter.acquire(soon()).then(() => order.push(i))));
    expect(Date.now() - started).toBeGreaterThanOrEqual(380);
    expect(order).toEqual([0, 1, 2, 3]);
    limiter.close();
  });

  it('after a 429, the requests waiting keep their order and the one asking again goes behind them', async () => {
    // Slow enough that B, C and D are still waiting when A's attempt is answered 429.
    const limiter = new AdaptiveRateLimiter({ requestsPerSecond: 10 });
    await limiter.acquire(soon()); // A
    const order: string[] = [];
    const waiting = ['B', 'C', 'D'].map((name) => limiter.acquire(soon()).then(() => order.push(name)));
    // A's attempt is answered 429 (the rate drops, the queue is rebuilt) and A asks again, after its wait.
    const again = limiter.acquire(soon(), 0, limiter.rateLimited(200)).then(() => order.push('A'));
    await Promise.all([...waiting, again]);
    expect(order).toEqual(['B', 'C', 'D', 'A']);
    limiter.close();
  });

  it('a slot that a 429 overtook on its way keeps its place: it goes first when the pause ends', async () => {
    const limiter = new AdaptiveRateLimiter({ requestsPerSecond: 1_000 });
    const order: string[] = [];
    // B's slot is handed out in the same tick as the 429 that pauses the run; C and D wait behind it.
    const b = limiter.acquire(soon()).then(() => order.push('B'));
    const c = limiter.acquire(soon()).then(() => order.push('C'));
    limiter.rateLimited(150);
    const d = limiter.acquire(soon()).then(() => order.push('D'));
    await Promise.all([b, c, d]);
    expect(order).toEqual(['B', 'C', 'D']);
    expect(limiter.stats.answered).toBe(0);
    limiter.answered();
    expect(limiter.stats.answered).toBe(1);
    limiter.close();
  });

  it('without Retry-After, backs off 1 s and doubles per 429 in a row (jittered), capped at 30 s', () => {
    let now = 0;
    const limiter = new AdaptiveRateLimiter({ requestsPerSecond: 10, now: () => now, random: () => 0.5 });
    const waits: number[] = [];
    for (let i = 0; i < 7; i++) {
      waits.push(limiter.rateLimited(undefined));
      now += 60_000;
    }
    expect(waits).toEqual([1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000]);
    // An answer ends the streak.
    limiter.answered();
    expect(limiter.rateLimited(undefined)).toBe(1_000);
    limiter.close();
  });

  it('refuses at once a slot that a pause puts past the deadline, and one when no time is left', async () => {
    const limiter = new AdaptiveRateLimiter({ requestsPerSecond: 1_000 });
    storm(limiter, 5_000);
    const started = Date.now();
    await expect(limiter.acquire(soon(1_000))).rejects.toBeInstanceOf(RateLimitTimeout);
    expect(Date.now() - started).toBeLessThan(100);
    await expect(limiter.acquire(deadlineAt(Date.now() - 1))).rejects.toBeInstanceOf(RateLimitTimeout);
    expect(limiter.stats.refused).toBe(2);
    limiter.close();
  });

  it('a waiting request whose deadline a new pause overtakes is refused then, not at its deadline', async () => {
    const limiter = new AdaptiveRateLimiter({ requestsPerSecond: 1 });
    await limiter.acquire(soon());
    const waiting = limiter.acquire(soon(3_000)); // its slot would come in about 1 s
    const started = Date.now();
    setTimeout(() => storm(limiter, 10_000), 50);
    await expect(waiting).rejects.toBeInstanceOf(RateLimitTimeout);
    expect(Date.now() - started).toBeLessThan(500);
    limiter.close();
  });

  it('a waiting request gives up at its deadline when the rate is too slow for it', async () => {
    const limiter = new AdaptiveRateLimiter({ requestsPerSecond: 1 });
    await limiter.acquire(soon());
    const started = Date.now();
    await expect(limiter.acquire(soon(300))).rejects.toBeInstanceOf(RateLimitTimeout);
    expect(Date.now() - started).toBeLessThan(700);
    limiter.close();
  });

  it('refuses a starting rate of 0', () => {
    expect(() => new AdaptiveRateLimiter({ requestsPerSecond: 0 })).toThrow(
      'requestsPerSecond must be above 0',
    );
  });
});

describe('AdaptiveRateLimiter, to the millisecond (fake timers)', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });
  const within = (ms: number) => deadlineAt(Date.now() + ms);
  /** A request's fate so far: pending, granted (ok) or refused (with its error). */
  const track = (promise: Promise<void>) => {
    const fate: { state: 'pending' | 'ok' | 'refused'; error?: unknown } = { state: 'pending' };
    promise.then(
      () => {
        fate.state = 'ok';
      },
      (error: unknown) => {
        fate.state = 'refused';
        fate.error = error;
      },
    );
    return fate;
  };
  /** Lets promises settle without running any timer. */
  const settle = async () => {
    for (let i = 0; i < 20; i++) await Promise.resolve();
  };
  /** Granted requests among `count` asked at once, after `ms` of fake time. */
  const grantedAfter = async (limiter: AdaptiveRateLimiter, count: number, ms: number) => {
    const fates = Array.from({ length: count }, () => track(limiter.acquire(within(60_000))));
    await vi.advanceTimersByTimeAsync(ms);
    return fates.filter((f) => f.state === 'ok').length;
  };

  it('RateLimitTimeout names itself and how long was waited', () => {
    const error = new RateLimitTimeout(1_234);
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('RateLimitTimeout');
    expect(error.message).toBe('no Z-API request slot before the deadline (rate limit)');
    expect(error.waitedMs).toBe(1_234);
  });

  it('refuses at once when the reserve takes the whole budget, to the millisecond, having waited 0 ms', async () => {
    const limiter = new AdaptiveRateLimiter({ requestsPerSecond: 10 });
    const exact = track(limiter.acquire(within(1_000), 1_000));
    const over = track(limiter.acquire(within(1_000), 2_000));
    const room = track(limiter.acquire(within(1_000), 999));
    await settle();
    expect([exact.state, over.state, room.state]).toEqual(['refused', 'refused', 'ok']);
    expect((exact.error as RateLimitTimeout).waitedMs).toBe(0);
    expect(limiter.stats).toMatchObject({ refused: 2, requests: 1 });
    limiter.close();
  });

  it('a wait cut at its deadline is refused then, saying how long it waited', async () => {
    const limiter = new AdaptiveRateLimiter({ requestsPerSecond: 1 });
    await limiter.acquire(within(10_000)); // this second's slot
    const late = track(limiter.acquire(within(300)));
    await vi.advanceTimersByTimeAsync(299);
    expect(late.state).toBe('pending');
    await vi.advanceTimersByTimeAsync(1);
    expect(late.state).toBe('refused');
    expect((late.error as RateLimitTimeout).waitedMs).toBe(300);
    expect(limiter.stats).toMatchObject({ requests: 1, refused: 1 });
    limiter.close();
  });

  it('a lone 429 (Z-API answered since the last one) pauses nobody: the others go on, the rate drops, the refused request waits its own Retry-After', async () => {
    const limiter = new AdaptiveRateLimiter({ requestsPerSecond: 100 });
    for (let i = 0; i < 50; i++) limiter.answered();
    expect(limiter.rateLimited(30_000)).toBe(30_000);
    expect(limiter.stats.rate).toBeCloseTo(45, 5); // 90 % of the 50 answered in the last second
    const others = [track(limiter.acquire(within(60_000))), track(limiter.acquire(within(60_000)))];
    const refused = track(limiter.acquire(within(60_000), 0, 30_000));
    await vi.advanceTimersByTimeAsync(100);
    expect(others.map((o) => o.state)).toEqual(['ok', 'ok']);
    await vi.advanceTimersByTimeAsync(29_899);
    expect(refused.state).toBe('pending');
    await vi.advanceTimersByTimeAsync(1);
    expect(refused.state).toBe('ok');
    expect(limiter.stats).toMatchObject({ requests: 3, refused: 0 });
    limiter.close();
  });

  it('a second 429 before any answer pauses the whole run for its Retry-After', async () => {
    const limiter = new AdaptiveRateLimiter({ requestsPerSecond: 1_000 });
    limiter.answered();
    expect(limiter.rateLimited(300)).toBe(300); // alone: nobody else waits
    expect(limiter.rateLimited(500)).toBe(500); // Z-API refused another before answering anyone
    const waiting = track(limiter.acquire(within(10_000)));
    await vi.advanceTimersByTimeAsync(499);
    expect(waiting.state).toBe('pending');
    await vi.advanceTimersByTimeAsync(1);
    expect(waiting.state).toBe('ok');
    // An answer ends it: the next 429 is alone again.
    limiter.answered();
    expect(limiter.rateLimited(1_000)).toBe(1_000);
    const next = track(limiter.acquire(within(10_000)));
    await vi.advanceTimersByTimeAsync(20); // the next slot at 50 a second (the floor), not a second later
    expect(next.state).toBe('ok');
    limiter.close();
  });

  it('a request’s own wait that ends at its deadline or later is refused at once; one that ends a millisecond before is waited for', async () => {
    const limiter = new AdaptiveRateLimiter({ requestsPerSecond: 1_000 });
    const exact = track(limiter.acquire(within(1_000), 0, 1_000));
    const reserved = track(limiter.acquire(within(1_000), 1, 999));
    const room = track(limiter.acquire(within(1_000), 0, 999));
    await settle();
    expect([exact.state, reserved.state, room.state]).toEqual(['refused', 'refused', 'pending']);
    expect((exact.error as RateLimitTimeout).waitedMs).toBe(0);
    await vi.advanceTimersByTimeAsync(998);
    expect(room.state).toBe('pending');
    await vi.advanceTimersByTimeAsync(1);
    expect(room.state).toBe('ok');
    limiter.close();
  });

  it('a pause that ends at the deadline is waited for; one that ends a millisecond after it is refused at once', async () => {
    const limiter = new AdaptiveRateLimiter({ requestsPerSecond: 1_000 });
    storm(limiter, 1_000);
    const exact = track(limiter.acquire(within(1_000)));
    const over = track(limiter.acquire(within(999)));
    await settle();
    expect([exact.state, over.state]).toEqual(['pending', 'refused']);
    expect(limiter.stats.refused).toBe(1);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(exact.state).toBe('ok');
    limiter.close();
  });

  it('a pause is waited for to the millisecond, and a slot handed out in the tick a 429 pauses the run waits for it too', async () => {
    const limiter = new AdaptiveRateLimiter({ requestsPerSecond: 1_000 });
    const inTheTick = track(limiter.acquire(within(10_000)));
    storm(limiter, 500);
    const after = track(limiter.acquire(within(10_000)));
    await vi.advanceTimersByTimeAsync(499);
    expect([inTheTick.state, after.state]).toEqual(['pending', 'pending']);
    await vi.advanceTimersByTimeAsync(1);
    expect([inTheTick.state, after.state]).toEqual(['ok', 'ok']);
    limiter.close();
  });

  it('the queue built for a lower rate during a pause waits for the pause too', async () => {
    const limiter = new AdaptiveRateLimiter({ requestsPerSecond: 1 });
    await limiter.acquire(within(10_000)); // this second's slot, at the old rate
    storm(limiter, 500); // the rate drops (a new queue) and the run pauses
    const next = track(limiter.acquire(within(10_000)));
    await vi.advanceTimersByTimeAsync(499);
    expect(next.state).toBe('pending');
    await vi.advanceTimersByTimeAsync(1);
    expect(next.state).toBe('ok');
    limiter.close();
  });

  it('a Retry-After of 0 pauses nothing: the next slot is handed out at once', async () => {
    const limiter = new AdaptiveRateLimiter({ requestsPerSecond: 1_000 });
    expect(storm(limiter, 0)).toBe(0);
    const next = track(limiter.acquire(within(10_000)));
    await settle();
    expect(next.state).toBe('ok');
    limiter.close();
  });

  it('a shorter pause never cuts a longer one short', () => {
    const limiter = new AdaptiveRateLimiter({ requestsPerSecond: 10 });
    expect(storm(limiter, 5_000)).toBe(5_000);
    expect(limiter.rateLimited(100)).toBe(5_000);
    vi.advanceTimersByTime(1_000);
    expect(limiter.rateLimited(1_000)).toBe(4_000);
    limiter.close();
  });

  it('a pause that reaches past a waiting request’s deadline refuses it then, also when the rate stays', async () => {
    const limiter = new AdaptiveRateLimiter({ requestsPerSecond: 1 });
    limiter.rateLimited(100); // the rate drops now; it will not again within a second
    await vi.advanceTimersByTimeAsync(100);
    await limiter.acquire(within(10_000)); // this rate's first slot
    const waiting = track(limiter.acquire(within(3_000))); // its slot would come after 2 s
    await vi.advanceTimersByTimeAsync(50);
    limiter.rateLimited(10_000); // within the second: no new rate, no new queue
    await settle();
    expect(waiting.state).toBe('refused');
    limiter.close();
  });

  it('close() stops the pause timer', () => {
    const limiter = new AdaptiveRateLimiter({ requestsPerSecond: 10 });
    storm(limiter, 10_000);
    expect(vi.getTimerCount()).toBeGreaterThan(0);
    limiter.close();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('without Retry-After the backoff is jittered from 0.75 to 1.25 times', () => {
    const low = new AdaptiveRateLimiter({ requestsPerSecond: 10, random: () => 0 });
    expect(low.rateLimited(undefined)).toBe(750);
    const high = new AdaptiveRateLimiter({ requestsPerSecond: 10, random: () => 0.999 });
    expect(high.rateLimited(undefined)).toBeCloseTo(1_249.5, 5);
    low.close();
    high.close();
  });

  it('its floor is a twentieth of the starting rate (at least 0.2 a second)', () => {
    let now = 0;
    const limiter = new AdaptiveRateLimiter({ requestsPerSecond: 10, now: () => now });
    for (let i = 0; i < 10; i++) {
      limiter.rateLimited(1);
      now += 1_000;
    }
    expect(limiter.stats.lowestRate).toBe(0.5);
    limiter.close();
  });

  it('grows from the last second’s answers only: an answer a second old no longer counts', () => {
    let now = 0;
    const limiter = new AdaptiveRateLimiter({ requestsPerSecond: 10, now: () => now });
    for (let i = 0; i < 20; i++) limiter.answered();
    expect(limiter.stats.rate).toBe(25); // 10, then +1 an answer once twice what was answered allows it
    now = 1_000;
    limiter.answered(); // one answer in the last second: no room to grow
    expect(limiter.stats.rate).toBe(25);
    limiter.close();
  });

  it('a 429 lowers the rate from the last second’s answers, at most once a second, to the millisecond', () => {
    let now = 500;
    const limiter = new AdaptiveRateLimiter({ requestsPerSecond: 100, now: () => now });
    for (let i = 0; i < 30; i++) limiter.answered(); // 30 answers at 500 ms
    limiter.rateLimited(10); // 90 % of the 30 answered, not of the rate
    expect(limiter.stats.rate).toBeCloseTo(27, 5);
    now = 1_000;
    for (let i = 0; i < 10; i++) limiter.answered();
    const before = limiter.stats.rate;
    now = 1_499;
    limiter.rateLimited(10); // under a second since the last decrease: none
    expect(limiter.stats.rate).toBe(before);
    now = 1_500; // a second after it: the 30 of 500 ms are out of the window, the 10 of 1 s in
    limiter.rateLimited(10);
    expect(limiter.stats.rate).toBeCloseTo(9, 5);
    limiter.close();
  });

  it('paces in a sliding window of 20 ms: at 200 a second, 4 in any 20 ms', async () => {
    const limiter = new AdaptiveRateLimiter({ requestsPerSecond: 200 });
    expect(await grantedAfter(limiter, 1, 0)).toBe(1);
    await vi.advanceTimersByTimeAsync(19);
    expect(await grantedAfter(limiter, 7, 1)).toBe(4); // 3 at 19 ms, 1 at 20 ms when the first leaves
    limiter.close();
  });

  it('a rate that moved by less than 10 % keeps its queue; one that moved by 10 % or more gets a new one', async () => {
    // Up to 10.5 a second: not 10 % above 10, so the queue keeps pacing at 10.
    const small = new AdaptiveRateLimiter({ requestsPerSecond: 10, maxRequestsPerSecond: 10.5 });
    for (let i = 0; i < 10; i++) small.answered();
    expect(small.stats.rate).toBe(10.5);
    expect(await grantedAfter(small, 40, 2_000)).toBe(21);
    small.close();
    // Up to 11: 10 % above, a new queue at 11 a second.
    const large = new AdaptiveRateLimiter({ requestsPerSecond: 10, maxRequestsPerSecond: 11 });
    for (let i = 0; i < 10; i++) large.answered();
    expect(large.stats.rate).toBe(11);
    expect(await grantedAfter(large, 40, 2_000)).toBe(22);
    large.close();
    // Down by exactly 10 % (a 429 with as many answers as the rate): a new queue at 9 a second.
    const down = new AdaptiveRateLimiter({ requestsPerSecond: 10, maxRequestsPerSecond: 10 });
    for (let i = 0; i < 10; i++) down.answered();
    down.rateLimited(0);
    expect(down.stats.rate).toBe(9);
    expect(await grantedAfter(down, 40, 2_000)).toBe(18);
    down.close();
  });
});
