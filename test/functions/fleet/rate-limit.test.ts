/**
 * The run's adaptive Z-API rate limit (functions/fleet/rate-limit.ts): pacing at the configured
 * rate, growth while answers are fine, a run-wide pause and a lower rate on 429, slots refused (not
 * waited for) past the deadline, and Retry-After in seconds or as an HTTP date.
 */
import { describe, expect, it } from 'vitest';
import { AdaptiveRateLimiter, RateLimitTimeout, retryAfterMs } from '../../../functions/fleet/rate-limit.ts';
import { deadlineAt } from '../../../functions/shared/aws/deadline.ts';

const soon = (ms = 10_000) => deadlineAt(Date.now() + ms);

describe('retryAfterMs', () => {
  const now = Date.parse('2026-12-02T08:00:00.000Z');
  it.each([
    ['0', 0],
    ['1', 1_000],
    [' 30 ', 30_000],
    ['Wed, 02 Dec 2026 08:00:05 GMT', 5_000],
    ['Wed, 02 Dec 2026 07:59:00 GMT', 0], // a date in the past: at once
    ['Wednesday, 02-Dec-26 08:00:02 GMT', 2_000], // the obsolete RFC 850 form Date.parse reads too
  ])('%j -> %i ms', (value, ms) => {
    expect(retryAfterMs(value, now)).toBe(ms);
  });

  it.each([[null], [undefined], [''], ['soon'], ['-1'], ['1.5']])('%j -> undefined', (value) => {
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

  it('a 429 pauses every waiting request until Retry-After, then they go on in order', async () => {
    const limiter = new AdaptiveRateLimiter({ requestsPerSecond: 1_000 });
    await limiter.acquire(soon());
    limiter.rateLimited(400);
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
    // A's attempt is answered 429 (the rate drops, the queue is rebuilt) and A asks again at once.
    limiter.rateLimited(200);
    const again = limiter.acquire(soon()).then(() => order.push('A'));
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
    limiter.rateLimited(5_000);
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
    setTimeout(() => limiter.rateLimited(10_000), 50);
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
