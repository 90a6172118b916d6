/**
 * One request rate for a whole run against Z-API (the reconciler's sweep, the deploy-time registration:
 * both use this), adapting to what Z-API answers. Z-API documents no rate limit, so the configured rate
 * is where a run starts, not a promise:
 *
 * - Until the first 429 the rate grows by one request/s per answered request (it doubles every second
 *   the answers keep coming back fine), up to twice what was actually answered in the last second.
 * - A 429 slows the whole run: the rate drops to 90 % of what Z-API answered in the last second (at most
 *   once a second); from then on it creeps back up by 2 % (at least one request/s) per second of good
 *   answers. The refused request waits `Retry-After` (seconds or an HTTP date), or a backoff that doubles
 *   with each 429 in a row when Z-API gives none; alone when Z-API answered something since the last
 *   429 (Z-API refused that request, not the run); the whole run waits when it is the second 429 with
 *   no answer between them (Z-API refusing everyone: a storm).
 * - A slot that would come after the caller's deadline is refused at once ({@link RateLimitTimeout}):
 *   the caller reports the instance as not checked instead of waiting past its deadline.
 *
 * The pacing itself is p-queue's: a queue of empty tasks with a sliding-window interval cap (`strict`),
 * paused for `Retry-After`. p-queue cannot change its cap while running, so a new rate gets a new queue
 * (when it moved by 10 % or more) and the requests still waiting move to it. Order is by ticket (p-queue's
 * priority): the requests waiting keep their order through pauses and new queues, and a request asking
 * again after its 429 goes behind them, so a global 429 storm is shared out in turn, never spent on one.
 */
import PQueue from 'p-queue';
import type { Deadline } from '../shared/aws/deadline.ts';

/** No request slot could be had before the caller's deadline. */
export class RateLimitTimeout extends Error {
  constructor(readonly waitedMs: number) {
    super('no Z-API request slot before the deadline (rate limit)');
    this.name = 'RateLimitTimeout';
  }
}

export interface RateLimiterOptions {
  /** Where the run starts (requests per second). */
  readonly requestsPerSecond: number;
  /** The rate never drops below this. @default requestsPerSecond / 20, at least 0.2 */
  readonly minRequestsPerSecond?: number;
  /** The rate never grows above this. @default 1000 */
  readonly maxRequestsPerSecond?: number;
  /** Backoff after a 429 without Retry-After, doubled per 429 in a row (capped at 30 s). @default 1000 */
  readonly backoffBaseMs?: number;
  readonly now?: () => number;
  readonly random?: () => number;
}

export interface RateLimiterStats {
  /** Slots handed out. */
  readonly requests: number;
  /** Answers reported (not a 429, not a 5xx). */
  readonly answered: number;
  /** 429 answers reported. */
  readonly rateLimited: number;
  /** The rate now (requests per second). */
  readonly rate: number;
  /** The lowest rate the run came down to. */
  readonly lowestRate: number;
  /** Slots refused because they would have come after the deadline. */
  readonly refused: number;
}

/** The most a run waits after 429s without Retry-After. */
/** The longest pause one Retry-After imposes on a run. */
export const MAX_RETRY_AFTER_MS = 60_000;
const MAX_BACKOFF_MS = 30_000;
/** Smallest p-queue interval (ms): a finer one only adds timer work. */
const QUANTUM_MS = 20;

interface Waiter {
  readonly controller: AbortController;
  /** Epoch ms by which the slot must come. */
  readonly latest: number;
}

export class AdaptiveRateLimiter {
  readonly #min: number;
  readonly #max: number;
  readonly #configured: number;
  readonly #backoffBaseMs: number;
  readonly #now: () => number;
  readonly #random: () => number;
  #rate: number;
  #queue: PQueue;
  #queueRate: number;
  readonly #waiting = new Set<Waiter>();
  #resumeAt = 0;
  #resumeTimer: ReturnType<typeof setTimeout> | undefined;
  /** Slow start: until the first 429. */
  #probing = true;
  #inARow = 0;
  #lastDecreaseAt = Number.NEGATIVE_INFINITY;
  /** When each of the last second's good answers came. */
  #answered: number[] = [];
  #requests = 0;
  #answeredCount = 0;
  #rateLimited = 0;
  /** Handed to each acquire in turn: a lower ticket is served first, whatever queue it waits in. */
  #tickets = 0;
  #refused = 0;
  #lowest: number;

  constructor(options: RateLimiterOptions) {
    if (!(options.requestsPerSecond > 0)) throw new Error('requestsPerSecond must be above 0');
    this.#configured = options.requestsPerSecond;
    this.#min = options.minRequestsPerSecond ?? Math.max(0.2, options.requestsPerSecond / 20);
    this.#max = Math.max(options.maxRequestsPerSecond ?? 1_000, options.requestsPerSecond);
    this.#backoffBaseMs = options.backoffBaseMs ?? 1_000;
    this.#now = options.now ?? Date.now;
    this.#random = options.random ?? Math.random;
    this.#rate = options.requestsPerSecond;
    this.#lowest = this.#rate;
    this.#queueRate = this.#rate;
    this.#queue = queueFor(this.#rate);
  }

  get stats(): RateLimiterStats {
    return {
      requests: this.#requests,
      answered: this.#answeredCount,
      rateLimited: this.#rateLimited,
      rate: this.#rate,
      lowestRate: this.#lowest,
      refused: this.#refused,
    };
  }

  /**
   * Resolves when one request may start, and not before `waitMs` from now (a 429's wait: what
   * {@link rateLimited} returned). Rejects with {@link RateLimitTimeout} when that would leave less than
   * `reserveMs` before the deadline (at once when a known wait already reaches past it).
   */
  async acquire(deadline: Deadline, reserveMs = 0, waitMs = 0): Promise<void> {
    const started = this.#now();
    const notBefore = started + waitMs;
    // First come, first served, across a 429's pause and a queue rebuilt for a new rate: a request keeps
    // its ticket (its place) until it has its slot, and one asking again after a 429 takes a new ticket,
    // behind everyone already waiting.
    const priority = -++this.#tickets;
    for (;;) {
      const budget = deadline.remainingMs() - reserveMs;
      const latest = this.#now() + budget;
      // A request's own wait must leave it some time; a run's pause may end at the deadline (the queue
      // starts before the waiter's timer fires).
      if (budget <= 0 || this.#resumeAt > latest || notBefore >= latest) {
        this.#refused++;
        throw new RateLimitTimeout(this.#now() - started);
      }
      const own = notBefore - this.#now();
      if (own > 0) {
        await new Promise((resolve) => setTimeout(resolve, own));
        continue;
      }
      const waiter: Waiter = { controller: new AbortController(), latest };
      const timer = setTimeout(() => waiter.controller.abort(), budget);
      this.#waiting.add(waiter);
      // True with the slot; false when the wait was cut short (moved to a queue for a new rate, or out of
      // time, at the deadline or when a pause reaches past it): the next turn asks again, or refuses.
      const granted = await this.#queue
        .add(() => true, { signal: waiter.controller.signal, priority })
        // Stryker disable next-line ArrowFunction: undefined is as falsy as false
        .catch(() => false);
      clearTimeout(timer);
      this.#waiting.delete(waiter);
      // A 429 seen while this slot was on its way: wait for the pause like everyone else.
      if (granted && this.#resumeAt <= this.#now()) {
        this.#requests++;
        return;
      }
    }
  }

  /** Z-API answered (not a 429, not a 5xx): the rate may grow. */
  answered(): void {
    const now = this.#now();
    this.#inARow = 0;
    this.#answeredCount++;
    this.#answered.push(now);
    while ((this.#answered[0] as number) <= now - 1_000) this.#answered.shift();
    const observed = this.#answered.length;
    const grown = this.#probing ? this.#rate + 1 : this.#rate + Math.max(1, this.#rate * 0.02) / this.#rate;
    // Never far above what is actually answered (a run held back by its concurrency would otherwise
    // grow a rate it never uses).
    this.#setRate(Math.min(grown, Math.max(this.#rate, this.#configured, observed * 2)));
  }

  /**
   * Z-API answered 429: the run slows down, and the refused request waits `retryAfterMs` (or a backoff);
   * the whole run waits with it when Z-API answered nothing since the previous 429 (a storm).
   * @returns how long the refused request waits (ms): pass it to {@link acquire}
   */
  rateLimited(retryAfterMs: number | undefined): number {
    const now = this.#now();
    this.#rateLimited++;
    this.#inARow++;
    this.#probing = false;
    if (now - this.#lastDecreaseAt >= 1_000) {
      this.#lastDecreaseAt = now;
      while ((this.#answered[0] as number) <= now - 1_000) this.#answered.shift();
      const observed = this.#answered.length;
      this.#setRate(0.9 * (observed > 0 ? Math.min(this.#rate, observed) : this.#rate / 2));
    }
    // A Retry-After is honoured up to MAX_RETRY_AFTER_MS: one answer (a day, or a date from a clock far
    // ahead) must not end every run at once; the run slows down all the same.
    const wait = Math.max(
      0,
      retryAfterMs !== undefined
        ? Math.min(retryAfterMs, MAX_RETRY_AFTER_MS)
        : Math.min(MAX_BACKOFF_MS, this.#backoffBaseMs * 2 ** (this.#inARow - 1)) *
            (0.75 + this.#random() / 2),
    );
    // One 429 between answers is that request's own (Z-API answers the others: they need not wait for
    // it); a second one before any answer looks like Z-API refusing everyone, and the whole run waits.
    if (this.#inARow > 1) this.#pauseUntil(now + wait);
    return Math.max(wait, this.#resumeAt - now);
  }

  /** Stops the resume timer (the run is over). */
  close(): void {
    clearTimeout(this.#resumeTimer);
    this.#queue.clear();
  }

  #pauseUntil(at: number): void {
    // Stryker disable next-line EqualityOperator: pausing again until the same time changes nothing
    if (at <= this.#resumeAt || at <= this.#now()) return;
    this.#resumeAt = at;
    this.#queue.pause();
    clearTimeout(this.#resumeTimer);
    this.#resumeTimer = setTimeout(() => this.#queue.start(), at - this.#now());
    this.#resumeTimer.unref();
    // Whoever cannot be served before their deadline hears it now, not at the deadline.
    // Stryker disable next-line ConditionalExpression,EqualityOperator: a waiter cut short without need asks again at once, keeping its place
    for (const waiter of this.#waiting) if (waiter.latest < at) waiter.controller.abort();
  }

  #setRate(rate: number): void {
    this.#rate = Math.min(this.#max, Math.max(this.#min, rate));
    this.#lowest = Math.min(this.#lowest, this.#rate);
    const change = this.#rate / this.#queueRate;
    if (change < 1.1 && change > 0.9) return;
    const paused = this.#queue.isPaused;
    const old = this.#queue;
    this.#queue = queueFor(this.#rate);
    this.#queueRate = this.#rate;
    // Stryker disable next-line ConditionalExpression: acquire refuses a slot handed out during a pause all the same; this only spares those slots
    if (paused) this.#queue.pause();
    // The requests waiting in the old queue move to the new one, each keeping its place (its ticket).
    for (const waiter of [...this.#waiting]) waiter.controller.abort();
    old.clear();
  }
}

/** A p-queue releasing `rate` empty tasks a second, evenly (sliding window, at most every 20 ms). */
function queueFor(rate: number): PQueue {
  const intervalCap = Math.max(1, Math.ceil((rate * QUANTUM_MS) / 1_000));
  return new PQueue({ intervalCap, interval: (intervalCap * 1_000) / rate, strict: true });
}

/**
 * `Retry-After` in milliseconds from `now`: delay-seconds or an HTTP date (RFC 9110 section 10.2.3), a date
 * in the past meaning at once; undefined when absent or anything else (the caller then backs off).
 */
export function retryAfterMs(value: string | null | undefined, now: number): number | undefined {
  // Stryker disable next-line StringLiteral: any text that is neither a number nor a date reads as none
  const text = value?.trim() ?? '';
  if (/^\d+$/.test(text)) return Number(text) * 1_000;
  // Strict, as Date.parse is not (it reads "Mon 5" or the 31st of February): the date must be exactly
  // the one JavaScript writes for the instant it names (IMF-fixdate, weekday included).
  const date = imfFixdate(text, now);
  const at = Date.parse(date);
  return new Date(at).toUTCString() === date ? Math.max(0, at - now) : undefined;
}

/**
 * RFC 9110's two obsolete HTTP-date forms (section 5.6.7) rewritten as the IMF-fixdate they stand for
 * (`Sun, 06 Nov 1994 08:49:37 GMT`); any other text as it is. No anchors: whatever text surrounds a
 * form stays, and the caller's round trip refuses it.
 */
function imfFixdate(text: string, now: number): string {
  const thisYear = new Date(now).getUTCFullYear();
  return (
    text
      .replace(
        /(Mon|Tues|Wednes|Thurs|Fri|Satur|Sun)day, (\d\d)-(\w{3})-(\d\d) (\S+) GMT/,
        (_, day: string, date, month, yy, time) => {
          // A two-digit year more than 50 years ahead is the most recent past year with those digits.
          const year = thisYear - (thisYear % 100) + Number(yy);
          return `${day.slice(0, 3)}, ${date} ${month} ${year > thisYear + 50 ? year - 100 : year} ${time} GMT`;
        },
      )
      // asctime: the weekday (before the match) stays as it is.
      .replace(
        / (\w{3}) ([ \d]\d) (\S+) (\d{4})/,
        (_, month, date: string, time, year) => `, ${date.replace(' ', '0')} ${month} ${year} ${time} GMT`,
      )
  );
}
