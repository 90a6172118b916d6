/**
 * The feed publisher's retries, with a scripted AppSync answer per request, a recorded sleep and a fixed
 * jitter (publisher.test.ts runs it against the AppSync stand-in; publisher-bundle.test.ts ships it): the
 * backoff schedule, Retry-After, the attempt bound, the deadline before a retry, which statuses are
 * retried and which refused for good, a 2xx that lists failed entries or cannot be read, network errors
 * and timeouts, chunks of five per channel, and the order and codes of what was not published.
 */
import { describe, expect, it } from 'vitest';
import type { FeedEvent } from '../../../functions/live-feed/message.ts';
import {
  createFeedPublisher,
  failedEntries,
  type PublishAnswer,
  type PublishRequest,
} from '../../../functions/live-feed/publisher.ts';
import { deadlineAt } from '../../../functions/shared/aws/deadline.ts';

const events = (n: number, channel = '/presence/A'): FeedEvent[] =>
  Array.from({ length: n }, (_, i) => ({ channel, body: `{"n":${i}}` }));

/** A publisher whose answers are scripted in order (the last one repeats), its sleeps recorded. */
function scripted(answers: Array<PublishAnswer | Error>, options: { maxAttempts?: number } = {}) {
  const sent: PublishRequest[] = [];
  const slept: number[] = [];
  const publish = createFeedPublisher({
    send: async (request) => {
      sent.push(request);
      const answer = answers[Math.min(sent.length - 1, answers.length - 1)] as PublishAnswer | Error;
      if (answer instanceof Error) throw answer;
      return answer;
    },
    sleep: async (ms) => {
      slept.push(ms);
    },
    random: () => 0.5,
    ...options,
  });
  return { publish, sent, slept };
}
const ok: PublishAnswer = { status: 200, body: '{"failed":[]}' };
const later = () => deadlineAt(Date.now() + 60_000);

describe('createFeedPublisher: retries', () => {
  it('backs off 100, 200, 400 ms (base × 2^(attempt-1) × (0.5 + jitter)) and stops after the fourth request', async () => {
    const { publish, sent, slept } = scripted([{ status: 503, body: '' }]);
    const outcome = await publish(events(2), later());
    expect(slept).toEqual([100, 200, 400]);
    expect(sent).toHaveLength(4);
    expect(outcome).toStrictEqual({
      published: 0,
      unpublished: [
        { channel: '/presence/A', index: 0, code: 'http-503' },
        { channel: '/presence/A', index: 1, code: 'http-503' },
      ],
      requests: 4,
    });
  });

  it('takes the jitter as given: 0 halves the wait, just under 1 makes it one and a half', async () => {
    for (const [random, first] of [
      [0, 50],
      [0.999, 149.9],
    ] as const) {
      const slept: number[] = [];
      let calls = 0;
      const publish = createFeedPublisher({
        send: async () => (++calls === 1 ? { status: 500, body: '' } : ok),
        sleep: async (ms) => void slept.push(ms),
        random: () => random,
      });
      expect((await publish(events(1), later())).published).toBe(1);
      expect(slept).toHaveLength(1);
      expect(slept[0]).toBeCloseTo(first, 6);
    }
  });

  it('waits a Retry-After longer than the backoff, and the backoff when it is shorter', async () => {
    const { publish, slept } = scripted([
      { status: 429, body: '', retryAfterMs: 1_000 },
      { status: 429, body: '', retryAfterMs: 10 },
      ok,
    ]);
    expect(await publish(events(1), later())).toStrictEqual({ published: 1, unpublished: [], requests: 3 });
    expect(slept).toEqual([1_000, 200]);
  });

  it('retries 429 and 5xx, and refuses any other status for good at once', async () => {
    for (const status of [429, 500, 502, 599]) {
      const { publish, sent } = scripted([{ status, body: '' }, ok]);
      expect((await publish(events(1), later())).published, String(status)).toBe(1);
      expect(sent).toHaveLength(2);
    }
    for (const status of [300, 400, 401, 403, 404, 428, 499]) {
      const { publish, sent, slept } = scripted([{ status, body: '' }, ok]);
      expect(await publish(events(2), later()), String(status)).toStrictEqual({
        published: 0,
        unpublished: [
          { channel: '/presence/A', index: 0, code: `http-${status}` },
          { channel: '/presence/A', index: 1, code: `http-${status}` },
        ],
        requests: 1,
      });
      expect(sent).toHaveLength(1);
      expect(slept).toEqual([]);
    }
    // Any 2xx is an answer to read.
    for (const status of [200, 201, 299]) {
      const { publish } = scripted([{ ...ok, status }]);
      expect((await publish(events(1), later())).published, String(status)).toBe(1);
    }
  });

  it('resends only the entries a 2xx lists as failed, and names their code when they stay failed', async () => {
    const { publish, sent } = scripted([
      {
        status: 200,
        body: '{"successful":[{"index":0},{"index":2}],"failed":[{"index":1,"code":"Throttled"}]}',
      },
      { status: 200, body: '{"failed":[{"index":0,"errorType":"Busy"}]}' },
    ]);
    const outcome = await publish(events(3), later());
    expect(sent.map((r) => r.events)).toEqual([
      ['{"n":0}', '{"n":1}', '{"n":2}'],
      ['{"n":1}'],
      ['{"n":1}'],
      ['{"n":1}'],
    ]);
    expect(outcome).toStrictEqual({
      published: 2,
      unpublished: [{ channel: '/presence/A', index: 1, code: 'failed-entry:Busy' }],
      requests: 4,
    });
  });

  it('sends everything again after a 2xx it cannot read (a repeat is dropped by the views, a loss is not)', async () => {
    const { publish, sent } = scripted([{ status: 200, body: 'not json' }]);
    const outcome = await publish(events(2), later());
    expect(sent.map((r) => r.events.length)).toEqual([2, 2, 2, 2]);
    expect(outcome.unpublished.map((u) => u.code)).toEqual(['unreadable-answer', 'unreadable-answer']);
    // Read after a retry: published.
    const { publish: p2 } = scripted([{ status: 200, body: '[]' }, ok]);
    expect((await p2(events(2), later())).published).toBe(2);
  });

  it('names a network error, and a timeout, and retries both', async () => {
    // A name outside the allow-list of known error names is reported as UnexpectedError (no free text).
    const reset = new TypeError('fetch failed');
    const { publish } = scripted([reset]);
    expect((await publish(events(1), later())).unpublished).toEqual([
      { channel: '/presence/A', index: 0, code: 'network:TypeError' },
    ]);
    const { publish: p2, sent } = scripted([reset, ok]);
    expect((await p2(events(1), later())).published).toBe(1);
    expect(sent).toHaveLength(2);
    // A request that outlives the deadline is a timeout, and the deadline leaves no time to retry.
    const hung = createFeedPublisher({
      send: (_request, signal) =>
        new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason))),
      sleep: async () => {},
      random: () => 0.5,
    });
    expect((await hung(events(1), deadlineAt(Date.now() + 50))).unpublished).toEqual([
      { channel: '/presence/A', index: 0, code: 'timeout' },
    ]);
  });

  it('does not retry when the wait and the minimum retry time would pass the deadline', async () => {
    // 100 ms of backoff + 300 ms minimum: 350 ms left is not enough, 450 ms is.
    const short = scripted([{ status: 500, body: '' }, ok]);
    const outcome = await short.publish(events(1), deadlineAt(Date.now() + 350));
    expect(outcome.requests).toBe(1);
    expect(short.slept).toEqual([]);
    const enough = scripted([{ status: 500, body: '' }, ok]);
    expect((await enough.publish(events(1), deadlineAt(Date.now() + 2_000))).requests).toBe(2);
  });

  it('honours maxAttempts', async () => {
    const { publish, sent, slept } = scripted([{ status: 500, body: '' }], { maxAttempts: 2 });
    await publish(events(1), later());
    expect(sent).toHaveLength(2);
    expect(slept).toEqual([100]);
  });

  it('sends five events a request per channel, and lists what was not published in the given order', async () => {
    const sent: PublishRequest[] = [];
    const publish = createFeedPublisher({
      send: async (request) => {
        sent.push(request);
        return request.channel === '/presence/B' ? { status: 403, body: '' } : ok;
      },
      sleep: async () => {},
      random: () => 0.5,
    });
    const mixed = [...events(7, '/presence/A'), ...events(2, '/presence/B'), ...events(1, '/presence/A')];
    const outcome = await publish(mixed, later());
    expect(sent.map((r) => `${r.channel}:${r.events.length}`).sort()).toEqual([
      '/presence/A:3',
      '/presence/A:5',
      '/presence/B:2',
    ]);
    expect(outcome).toStrictEqual({
      published: 8,
      unpublished: [
        { channel: '/presence/B', index: 7, code: 'http-403' },
        { channel: '/presence/B', index: 8, code: 'http-403' },
      ],
      requests: 3,
    });
    // Requests are counted per call of the publisher.
    expect((await publish(events(1), later())).requests).toBe(1);
  });
});

describe('failedEntries, at its edges', () => {
  it('refuses an index that is not a whole number inside what was sent', () => {
    for (const entry of ['{"index":-1}', '{"index":2}', '{"index":1.5}', 'null', '{}', '{"index":"0"}']) {
      expect(failedEntries(`{"failed":[${entry}]}`, 2), entry).toBeUndefined();
    }
    expect(failedEntries('{"failed":[{"index":1}]}', 2)).toEqual(new Map([[1, 'unknown']]));
    expect(failedEntries('{"failed":[{"index":0}]}', 1)).toEqual(new Map([[0, 'unknown']]));
  });

  it('keeps a code to letters, digits and _ . - (64 at most), else unknown', () => {
    expect(failedEntries(`{"failed":[{"index":0,"code":"Thr ottled<script>"}]}`)).toEqual(
      new Map([[0, 'Throttledscript']]),
    );
    expect(failedEntries(`{"failed":[{"index":0,"code":"${'a'.repeat(70)}"}]}`)).toEqual(
      new Map([[0, 'a'.repeat(64)]]),
    );
    expect(failedEntries('{"failed":[{"index":0,"code":"<>"}]}')).toEqual(new Map([[0, 'unknown']]));
    expect(failedEntries('{"failed":[{"index":0,"code":7,"errorType":"X.y-z_1"}]}')).toEqual(
      new Map([[0, 'X.y-z_1']]),
    );
  });
});
