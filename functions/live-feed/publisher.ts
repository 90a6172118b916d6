/**
 * Publishes feed events to AppSync Events' HTTP API and resolves with what was published and what was
 * not. At most 5 events per request (AppSync's limit), one channel per request; the requests of one call
 * go out side by side.
 *
 * AppSync can refuse a whole request (a network error, 429, 5xx, a cut at the deadline: retried) or
 * answer 200 and list some events under `failed` (those are retried, the others are not sent again). A
 * 4xx other than 429 (auth, a bad request) is not retried: it would fail the same way. Retries back off
 * with jitter (or wait what `Retry-After` says) while the invocation's deadline leaves time; what is still
 * unpublished then is reported, and the handler fails the invocation so Lambda retries it and, after its
 * retries, dead-letters it (alarmed).
 */
import type { Deadline } from '../shared/aws/deadline.ts';
import { errorName } from '../shared/aws/error-name.ts';
import type { FeedEvent } from './message.ts';
import { FEED_LIMITS } from './settings.ts';

/** One publish request: a channel and up to 5 events (each a JSON string). */
export interface PublishRequest {
  readonly channel: string;
  readonly events: readonly string[];
}

/** What AppSync answered. */
export interface PublishAnswer {
  readonly status: number;
  readonly body: string;
  /** From a `Retry-After` header, when there was one. */
  readonly retryAfterMs?: number;
}

/** Sends one signed publish request; rejects on a network failure or when `signal` aborts. */
export type SendPublish = (request: PublishRequest, signal: AbortSignal) => Promise<PublishAnswer>;

export interface FeedPublisherOptions {
  readonly send: SendPublish;
  /** Requests per chunk, the first included. @default 4 */
  readonly maxAttempts?: number;
  /** @default 100 */
  readonly backoffBaseMs?: number;
  /** A retry starts only with at least this much time left before the deadline. @default 300 */
  readonly minRetryMs?: number;
  /** The longest one request may take (the deadline still applies). @default 3_000 */
  readonly callCapMs?: number;
  readonly sleep?: (ms: number) => Promise<void>;
  /** @default Math.random */
  readonly random?: () => number;
}

export interface UnpublishedEvent {
  readonly channel: string;
  /** Its place in the events given. */
  readonly index: number;
  /** `failed-entry:<code>`, `http-<status>`, `timeout` or `network:<name>`. */
  readonly code: string;
}

export interface PublishOutcome {
  readonly published: number;
  readonly unpublished: readonly UnpublishedEvent[];
  /** Requests sent, retries included. */
  readonly requests: number;
}

export type PublishFeed = (events: readonly FeedEvent[], deadline: Deadline) => Promise<PublishOutcome>;

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

interface Pending {
  readonly index: number;
  readonly body: string;
}

interface FailedEntry {
  readonly index?: unknown;
  readonly code?: unknown;
  readonly errorType?: unknown;
}

/**
 * The indexes AppSync listed under `failed` in a 200 answer, with their codes; undefined when unreadable:
 * not JSON, an index outside the `sent` events, or (when it lists `successful` too) counts that do not add
 * up to what was sent. Unreadable means "send them all again": a repeat is dropped by the views, a loss is
 * not.
 */
export function failedEntries(body: string, sent?: number): Map<number, string> | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return undefined;
  const failed = (parsed as { failed?: unknown }).failed;
  if (failed === undefined) return new Map();
  if (!Array.isArray(failed)) return undefined;
  const out = new Map<number, string>();
  const successful = (parsed as { successful?: unknown }).successful;
  if (sent !== undefined && Array.isArray(successful) && successful.length + failed.length !== sent)
    return undefined;
  for (const entry of failed as FailedEntry[]) {
    if (typeof entry?.index !== 'number' || !Number.isInteger(entry.index)) return undefined;
    if (sent !== undefined && (entry.index < 0 || entry.index >= sent)) return undefined;
    const code =
      typeof entry.code === 'string'
        ? entry.code
        : typeof entry.errorType === 'string'
          ? entry.errorType
          : 'unknown';
    // A code from the answer, shown in logs: letters, digits and a few marks only, at most 64.
    out.set(entry.index, code.replace(/[^A-Za-z0-9_.-]/g, '').slice(0, 64) || 'unknown');
  }
  return out;
}

export function createFeedPublisher(options: FeedPublisherOptions): PublishFeed {
  const maxAttempts = options.maxAttempts ?? 4;
  const base = options.backoffBaseMs ?? 100;
  const minRetryMs = options.minRetryMs ?? 300;
  const callCapMs = options.callCapMs ?? 3_000;
  const sleep = options.sleep ?? defaultSleep;
  const random = options.random ?? Math.random;
  let requests = 0;

  async function publishChunk(
    channel: string,
    chunk: readonly Pending[],
    deadline: Deadline,
  ): Promise<UnpublishedEvent[]> {
    let pending = [...chunk];
    let lastCode = 'timeout';
    let codes = new Map<number, string>();
    for (let attempt = 1; attempt <= maxAttempts && pending.length > 0; attempt += 1) {
      let waitMs = 0;
      try {
        requests += 1;
        const answer = await deadline.run(
          'AppSync Events publish',
          (signal) => options.send({ channel, events: pending.map((p) => p.body) }, signal),
          callCapMs,
        );
        if (answer.status >= 200 && answer.status < 300) {
          const failed = failedEntries(answer.body, pending.length);
          if (failed === undefined) {
            // A 2xx we cannot read: nothing says which events made it; sending them again is safe
            // (a view drops a repeat by its sequence), losing them is not.
            lastCode = 'unreadable-answer';
          } else {
            codes = new Map();
            const still: Pending[] = [];
            for (const [position, code] of failed) {
              const event = pending[position];
              if (event !== undefined) {
                still.push(event);
                codes.set(event.index, `failed-entry:${code}`);
              }
            }
            pending = still;
            lastCode = 'failed-entry';
          }
        } else if (answer.status === 429 || answer.status >= 500) {
          lastCode = `http-${answer.status}`;
          waitMs = answer.retryAfterMs ?? 0;
        } else {
          // Refused for good (auth, a bad request): the same request would fail the same way.
          return pending.map((p) => ({ channel, index: p.index, code: `http-${answer.status}` }));
        }
      } catch (error) {
        lastCode = errorName(error) === 'DeadlineExceeded' ? 'timeout' : `network:${errorName(error)}`;
      }
      if (pending.length === 0 || attempt === maxAttempts) break;
      const delay = Math.max(waitMs, base * 2 ** (attempt - 1) * (0.5 + random()));
      if (deadline.remainingMs() < delay + minRetryMs) break;
      await sleep(delay);
    }
    return pending.map((p) => ({ channel, index: p.index, code: codes.get(p.index) ?? lastCode }));
  }

  return async (events, deadline) => {
    const before = requests;
    const byChannel = new Map<string, Pending[]>();
    events.forEach((event, index) => {
      const list = byChannel.get(event.channel) ?? [];
      list.push({ index, body: event.body });
      byChannel.set(event.channel, list);
    });
    const chunks: Array<[string, Pending[]]> = [];
    for (const [channel, list] of byChannel) {
      for (let start = 0; start < list.length; start += FEED_LIMITS.eventsPerPublish) {
        chunks.push([channel, list.slice(start, start + FEED_LIMITS.eventsPerPublish)]);
      }
    }
    const results = await Promise.all(
      chunks.map(([channel, chunk]) => publishChunk(channel, chunk, deadline)),
    );
    const unpublished = results.flat().sort((a, b) => a.index - b.index);
    return { published: events.length - unpublished.length, unpublished, requests: requests - before };
  };
}
