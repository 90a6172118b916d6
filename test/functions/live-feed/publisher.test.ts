/**
 * From the bus to the live feed: the message each event becomes (byte-exact, whatever its strings hold),
 * what is refused and why, and the publisher against an AppSync stand-in that checks every request's
 * SigV4 signature: 5 events a request, failed entries retried alone, 429/5xx retried, 4xx not, a hang cut
 * at the deadline, and the handler that dead-letters what it refuses and fails what it could not publish.
 */
import { SignatureV4 } from '@smithy/signature-v4';
import fc from 'fast-check';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { encodeFeedEvent, type FeedEvent } from '../../../functions/live-feed/message.ts';
import {
  createFeedHandler,
  FeedNotPublished,
  NodeSha256,
  publishUrl,
  signedSend,
} from '../../../functions/live-feed/publish-handler.ts';
import { createFeedPublisher, failedEntries } from '../../../functions/live-feed/publisher.ts';
import { FEED_LIMITS, FEED_METRICS } from '../../../functions/live-feed/settings.ts';
import { deadlineAt } from '../../../functions/shared/aws/deadline.ts';
import type { FeedMessage } from '../../../functions/shared/contract/live-feed-contract.ts';
import {
  CANARY_INSTANCE_ID,
  DERIVED_DETAIL_TYPES,
  DERIVED_EVENT_SOURCE,
  DETAIL_TYPES,
  EVENT_SOURCE,
} from '../../../functions/shared/contract/presence-contract.ts';
import {
  type AppSyncStandIn,
  STANDIN_CREDENTIALS,
  startAppSyncStandIn,
} from '../../support/appsync-standin.ts';

const A = '3C01A2B3C4D5E6F7A8B9C0D1E2F3A4B5';
const B = '9F8E7D6C5B4A39281706F5E4D3C2B1A0';
const HOSTILE = `"quoted" \\back\\slash\nnew line\ttab </script><script>alert(1)</script> 😀 ção \u2028 \u0000`;

function derived(instanceId: string, phone: string, sequence: number, extra: Record<string, unknown> = {}) {
  return {
    id: `evt-${instanceId}-${phone}-${sequence}`,
    source: DERIVED_EVENT_SOURCE,
    'detail-type': DERIVED_DETAIL_TYPES.activityStarted,
    detail: {
      instanceId,
      phone,
      activity: 'typing',
      at: '2026-12-07T12:00:00.000Z',
      sequence,
      current: { online: true, activity: 'typing' },
      ...extra,
    },
  };
}

describe('encodeFeedEvent', () => {
  it('carries a derived event as validated, byte-exact, on its instance channel', () => {
    const event = derived(A, HOSTILE, 7, { participant: HOSTILE });
    const encoded = encodeFeedEvent(event);
    if (!encoded.ok) throw new Error(encoded.detail);
    expect(encoded.event.channel).toBe(`/presence/${A}`);
    const message = JSON.parse(encoded.event.body) as FeedMessage;
    expect(message).toEqual({
      kind: 'derived',
      id: event.id,
      type: event['detail-type'],
      detail: event.detail,
    });
    if (message.kind !== 'derived') throw new Error('derived');
    expect(message.detail.phone).toBe(HOSTILE);
  });

  it('any string arrives as the same string (property)', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'binary', maxLength: 200 }),
        fc.string({ unit: 'grapheme', maxLength: 50 }),
        (phone, participant) => {
          const encoded = encodeFeedEvent(derived(A, phone || 'x', 1, { participant }));
          if (!encoded.ok) return false;
          const message = JSON.parse(encoded.event.body) as FeedMessage & { kind: 'derived' };
          return message.detail.phone === (phone || 'x') && message.detail.participant === participant;
        },
      ),
    );
  });

  it('drops fields the schema does not know: what is on the feed is exactly what was validated', () => {
    const encoded = encodeFeedEvent(derived(A, '5511999999999', 1, { token: 'SECRET', extra: { a: 1 } }));
    if (!encoded.ok) throw new Error(encoded.detail);
    expect(encoded.event.body).not.toContain('SECRET');
    expect(encoded.event.body).not.toContain('extra');
  });

  it('turns a COMPOSING or RECORDING callback into news, with the receiver’s time', () => {
    const receivedAt = Date.UTC(2026, 11, 7, 12, 0, 1, 234);
    for (const [status, activity] of [
      ['COMPOSING', 'typing'],
      ['RECORDING', 'recording'],
    ] as const) {
      const encoded = encodeFeedEvent({
        id: 'raw-1',
        source: EVENT_SOURCE,
        'detail-type': DETAIL_TYPES[status],
        detail: {
          type: 'PresenceChatCallback',
          instanceId: B,
          phone: '120363019502650977-group',
          participantPhone: '5511988887777',
          status,
          receivedAt,
          momment: 1,
        },
      });
      if (!encoded.ok) throw new Error(encoded.detail);
      expect(encoded.event.channel).toBe(`/presence/${B}`);
      expect(JSON.parse(encoded.event.body)).toEqual({
        kind: 'news',
        id: 'raw-1',
        instanceId: B,
        phone: '120363019502650977-group',
        participant: '5511988887777',
        activity,
        at: new Date(receivedAt).toISOString(),
      });
    }
  });

  it.each([
    [
      'another raw status',
      { source: EVENT_SOURCE, 'detail-type': DETAIL_TYPES.AVAILABLE, detail: {} },
      'not-for-the-feed',
    ],
    [
      'another source',
      { source: 'zapi.chat-presence.canary', 'detail-type': DETAIL_TYPES.COMPOSING, detail: {} },
      'not-for-the-feed',
    ],
    [
      'an unknown detail-type',
      { source: DERIVED_EVENT_SOURCE, 'detail-type': 'Z-API Chat Exploded', detail: {} },
      'not-for-the-feed',
    ],
    [
      'a derived event without its sequence',
      { ...derived(A, '1', 1), detail: { ...derived(A, '1', 1).detail, sequence: undefined } },
      'invalid-detail',
    ],
    [
      'a derived event with a bad time',
      { ...derived(A, '1', 1), detail: { ...derived(A, '1', 1).detail, at: 'yesterday' } },
      'invalid-detail',
    ],
    [
      'news without receivedAt',
      { source: EVENT_SOURCE, 'detail-type': DETAIL_TYPES.COMPOSING, detail: { instanceId: A, phone: '1' } },
      'invalid-detail',
    ],
    ['an instance id Z-API never has', derived('a.b', '1', 1), 'invalid-detail'],
    ['the canary', derived(CANARY_INSTANCE_ID, '1', 1), 'reserved-instance'],
    ['an event over 240 KB', derived(A, 'x'.repeat(FEED_LIMITS.eventBytes), 1), 'too-large'],
  ])('refuses %s', (_what, event, reason) => {
    const encoded = encodeFeedEvent(event);
    expect(encoded.ok).toBe(false);
    if (!encoded.ok) expect(encoded.reason).toBe(reason);
  });

  it('says which field failed, never echoing its value', () => {
    const encoded = encodeFeedEvent({
      ...derived(A, '1', 1),
      detail: { ...derived(A, '1', 1).detail, sequence: 'SECRET' },
    });
    expect(encoded).toMatchObject({
      ok: false,
      reason: 'invalid-detail',
      detail: expect.stringContaining('sequence'),
    });
    if (!encoded.ok) expect(encoded.detail).not.toContain('SECRET');
  });
});

describe('encodeFeedEvent, at its edges', () => {
  const news = (phone: string, participantPhone?: string) => ({
    id: 'raw-2',
    source: EVENT_SOURCE,
    'detail-type': DETAIL_TYPES.COMPOSING,
    detail: {
      instanceId: A,
      phone,
      ...(participantPhone !== undefined && { participantPhone }),
      receivedAt: 0,
    },
  });

  it('news of a chat the store keeps: ids up to 128 characters, a member if any, no # in the chat', () => {
    for (const [phone, participant] of [
      ['x'.repeat(128), undefined],
      ['120363019502650977-group', 'y'.repeat(128)],
    ] as const) {
      const encoded = encodeFeedEvent(news(phone, participant));
      if (!encoded.ok) throw new Error(encoded.detail);
      expect(JSON.parse(encoded.event.body)).toStrictEqual({
        kind: 'news',
        id: 'raw-2',
        instanceId: A,
        phone,
        ...(participant !== undefined && { participant }),
        activity: 'typing',
        at: '1970-01-01T00:00:00.000Z',
      });
    }
    for (const [phone, participant] of [
      ['x'.repeat(129), undefined],
      ['', undefined],
      ['a#b', undefined],
      ['120363019502650977-group', 'y'.repeat(129)],
    ] as const) {
      expect(
        encodeFeedEvent(news(phone, participant)),
        `${phone.length} ${participant?.length}`,
      ).toStrictEqual({
        ok: false,
        reason: 'unstorable-chat',
        detail: 'the presence store keeps no state for this chat',
      });
    }
  });

  it('carries the event id, or none, and says what it is not for', () => {
    const { id: _, ...noId } = derived(A, '1', 1);
    const encoded = encodeFeedEvent({ ...noId, id: 7 });
    if (!encoded.ok) throw new Error(encoded.detail);
    expect(JSON.parse(encoded.event.body).id).toBe('');
    expect(encodeFeedEvent({ source: 'x', 'detail-type': 7, detail: {} })).toStrictEqual({
      ok: false,
      reason: 'not-for-the-feed',
      detail: 'source x, detail-type (none)',
    });
    expect(encodeFeedEvent({ source: EVENT_SOURCE, 'detail-type': DETAIL_TYPES.AVAILABLE })).toStrictEqual({
      ok: false,
      reason: 'not-for-the-feed',
      detail: `source ${EVENT_SOURCE}, detail-type ${DETAIL_TYPES.AVAILABLE}`,
    });
    // A derived type under the raw source, or a raw one under the derived source, is neither.
    expect(encodeFeedEvent({ ...derived(A, '1', 1), source: EVENT_SOURCE })).toMatchObject({
      ok: false,
      reason: 'not-for-the-feed',
    });
    expect(encodeFeedEvent({ ...news('1'), source: DERIVED_EVENT_SOURCE })).toMatchObject({
      ok: false,
      reason: 'not-for-the-feed',
    });
  });

  it('names the failing field and what it expected, and the canary and bad ids in words', () => {
    expect(
      encodeFeedEvent({ ...news('1'), detail: { instanceId: A, phone: '1', receivedAt: 'soon' } }),
    ).toStrictEqual({
      ok: false,
      reason: 'invalid-detail',
      detail: `${DETAIL_TYPES.COMPOSING}: receivedAt: expected number`,
    });
    expect(encodeFeedEvent({ ...news('1'), detail: 'not an object' })).toStrictEqual({
      ok: false,
      reason: 'invalid-detail',
      detail: `${DETAIL_TYPES.COMPOSING}: detail: expected Object`,
    });
    expect(encodeFeedEvent(derived(CANARY_INSTANCE_ID, '1', 1))).toStrictEqual({
      ok: false,
      reason: 'reserved-instance',
      detail: 'the canary never reaches the feed',
    });
    expect(encodeFeedEvent(derived('a.b', '1', 1))).toStrictEqual({
      ok: false,
      reason: 'invalid-detail',
      detail: 'instanceId is not a Z-API instance id',
    });
  });

  it('takes an event of exactly the AppSync limit, and refuses one byte more, saying its size', () => {
    // The phone fills most of it (it appears more than once); the event id, which appears once, the rest.
    const event = (n: number, idPad: number) => ({
      ...derived(A, 'x'.repeat(n), 1),
      id: `e${'i'.repeat(idPad)}`,
    });
    const size = (n: number, idPad = 0) => {
      const probe = encodeFeedEvent(event(n, idPad));
      if (!probe.ok) throw new Error(probe.detail);
      return Buffer.byteLength(probe.event.body);
    };
    const perChar = size(2) - size(1);
    const sized = (bytes: number) => {
      const n = Math.floor((bytes - size(0)) / perChar);
      // Linear in n (ASCII): the size with n characters, without encoding an event that large first.
      return encodeFeedEvent(event(n, bytes - (size(0) + perChar * n)));
    };
    const exact = sized(FEED_LIMITS.eventBytes);
    if (!exact.ok) throw new Error(exact.detail);
    expect(Buffer.byteLength(exact.event.body)).toBe(FEED_LIMITS.eventBytes);
    expect(sized(FEED_LIMITS.eventBytes + 1)).toStrictEqual({
      ok: false,
      reason: 'too-large',
      detail: `${FEED_LIMITS.eventBytes + 1} bytes; AppSync Events takes at most ${FEED_LIMITS.eventBytes}`,
    });
  });
});

describe('failedEntries', () => {
  it('reads the failed indexes and codes of a 200 answer, and nothing from an unreadable one', () => {
    expect(failedEntries('{"failed":[],"successful":[{"identifier":"x","index":0}]}')).toEqual(new Map());
    expect(failedEntries('{"successful":[]}')).toEqual(new Map());
    expect(
      failedEntries(
        '{"failed":[{"identifier":"x","index":1,"code":"Throttled"},{"index":3,"errorType":"X"}]}',
      ),
    ).toEqual(
      new Map([
        [1, 'Throttled'],
        [3, 'X'],
      ]),
    );
    for (const bad of ['', 'nope', '[]', 'null', '{"failed":{}}', '{"failed":[{"index":"1"}]}']) {
      expect(failedEntries(bad), bad).toBeUndefined();
    }
    // An index outside what was sent, or counts that do not add up: unreadable (everything is sent again).
    expect(failedEntries('{"failed":[{"index":5}],"successful":[]}', 2)).toBeUndefined();
    expect(failedEntries('{"failed":[{"index":-1}]}', 2)).toBeUndefined();
    expect(failedEntries('{"failed":[],"successful":[{"index":0}]}', 2)).toBeUndefined();
    expect(failedEntries('{"failed":[{"index":1}],"successful":[{"index":0}]}', 2)).toEqual(
      new Map([[1, 'unknown']]),
    );
  });
});

describe('the publisher, against AppSync (stand-in, signatures checked)', () => {
  let appsync: AppSyncStandIn;
  const signer = new SignatureV4({
    service: 'appsync',
    region: 'sa-east-1',
    credentials: STANDIN_CREDENTIALS,
    sha256: NodeSha256,
  });
  const publisher = (overrides: Partial<Parameters<typeof createFeedPublisher>[0]> = {}) =>
    createFeedPublisher({
      send: signedSend(publishUrl(appsync.url), signer),
      sleep: async () => {},
      ...overrides,
    });
  const events = (instanceId: string, n: number, from = 1): FeedEvent[] =>
    Array.from({ length: n }, (_, i) => {
      const encoded = encodeFeedEvent(derived(instanceId, `55119${i}`, from + i));
      if (!encoded.ok) throw new Error(encoded.detail);
      return encoded.event;
    });
  const soon = (ms = 5_000) => deadlineAt(Date.now() + ms);

  beforeAll(async () => {
    appsync = await startAppSyncStandIn();
  });
  afterAll(() => appsync.close());
  beforeEach(() => {
    appsync.accepted.length = 0;
    appsync.requests.length = 0;
    appsync.always = undefined;
  });

  it('signs every request (the stand-in refuses a bad signature)', async () => {
    const wrong = new SignatureV4({
      service: 'appsync',
      region: 'sa-east-1',
      credentials: { ...STANDIN_CREDENTIALS, secretAccessKey: 'not-the-key' },
      sha256: NodeSha256,
    });
    const outcome = await createFeedPublisher({ send: signedSend(publishUrl(appsync.url), wrong) })(
      events(A, 1),
      soon(),
    );
    expect(outcome.unpublished).toEqual([{ channel: `/presence/${A}`, index: 0, code: 'http-401' }]);
    expect(appsync.requests).toEqual([{ channel: `/presence/${A}`, events: 1, status: 401, signed: false }]);
    expect((await publisher()(events(A, 1), soon())).published).toBe(1);
    expect(appsync.requests.at(-1)).toMatchObject({ signed: true, status: 200 });
  });

  it('sends at most 5 events a request, one channel a request, each event once', async () => {
    const all = [...events(A, 12), ...events(B, 3)];
    const outcome = await publisher()(all, soon());
    expect(outcome).toEqual({ published: 15, unpublished: [], requests: 4 });
    expect(appsync.requests.map((r) => [r.channel, r.events])).toEqual(
      expect.arrayContaining([
        [`/presence/${A}`, 5],
        [`/presence/${A}`, 5],
        [`/presence/${A}`, 2],
        [`/presence/${B}`, 3],
      ]),
    );
    expect(appsync.accepted.map((e) => e.body).sort()).toEqual(all.map((e) => e.body).sort());
  });

  it('retries only the entries a 200 answer lists as failed', async () => {
    appsync.script({ kind: 'fail-entries', indexes: [1, 3] });
    const all = events(A, 4);
    const outcome = await publisher()(all, soon());
    expect(outcome).toEqual({ published: 4, unpublished: [], requests: 2 });
    expect(appsync.requests.map((r) => r.events)).toEqual([4, 2]);
    expect(appsync.accepted.map((e) => e.body)).toEqual([all[0], all[2], all[1], all[3]].map((e) => e?.body));
  });

  it('retries a 429 (waiting its Retry-After), a 5xx and a reset connection', async () => {
    const waits: number[] = [];
    appsync.script(
      { kind: 'status', status: 429, retryAfter: '2' },
      { kind: 'status', status: 503 },
      { kind: 'reset' },
    );
    const outcome = await publisher({ sleep: async (ms) => void waits.push(ms) })(events(A, 1), soon(60_000));
    expect(outcome.published).toBe(1);
    expect(appsync.requests.map((r) => r.status)).toEqual([429, 503, -1, 200]);
    expect(waits[0]).toBeGreaterThanOrEqual(2_000);
  });

  it('does not retry a 4xx that would fail again, and reports it', async () => {
    appsync.script({ kind: 'status', status: 403 });
    const outcome = await publisher()(events(A, 2), soon());
    expect(outcome.unpublished.map((u) => u.code)).toEqual(['http-403', 'http-403']);
    expect(appsync.requests).toHaveLength(1);
  });

  it('gives up after its attempts, naming the last failure', async () => {
    appsync.always = { kind: 'fail-entries', indexes: [0], code: 'ThrottlingException' };
    const outcome = await publisher({ maxAttempts: 3 })(events(A, 1), soon());
    expect(outcome).toMatchObject({
      published: 0,
      unpublished: [{ index: 0, code: 'failed-entry:ThrottlingException' }],
    });
    expect(appsync.requests).toHaveLength(3);
  });

  it('follows no redirect with the signed request, and reads no answer over 64 KiB', async () => {
    const { createServer } = await import('node:http');
    const seen: string[] = [];
    const server = createServer((request, response) => {
      seen.push(request.url ?? '');
      if (seen.length === 1) {
        response.writeHead(307, { location: '/elsewhere' });
        return response.end();
      }
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(`{"failed":[],"successful":[${'{"index":0},'.repeat(10_000)}{"index":0}]}`);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    const redirected = await createFeedPublisher({
      send: signedSend(publishUrl(`http://127.0.0.1:${port}`), signer),
      sleep: async () => {},
      maxAttempts: 1,
    })(events(A, 1), soon());
    expect(redirected.unpublished[0]?.code).toMatch(/^network:/);
    expect(seen).toEqual(['/event']);
    const huge = await signedSend(publishUrl(`http://127.0.0.1:${port}`), signer)(
      { channel: `/presence/${A}`, events: ['{}'] },
      AbortSignal.timeout(2_000),
    );
    expect(huge.body).toBe('');
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('a hanging AppSync never holds the call past its deadline', async () => {
    appsync.always = { kind: 'hang' };
    const started = Date.now();
    const outcome = await createFeedPublisher({
      send: signedSend(publishUrl(appsync.url), signer),
      callCapMs: 400,
    })(events(A, 1), soon(1_200));
    expect(Date.now() - started).toBeLessThan(1_700);
    expect(outcome.unpublished[0]?.code).toBe('timeout');
  });
});

describe('the publisher handler', () => {
  const lines: string[] = [];
  const dead: string[] = [];
  const handlerWith = (publish: Parameters<typeof createFeedHandler>[0]['publish']) =>
    createFeedHandler({
      publish,
      deadLetter: async (body) => void dead.push(body),
      metricsNamespace: 'Test/Presence',
      write: (line) => void lines.push(line),
    });
  beforeEach(() => {
    lines.length = 0;
    dead.length = 0;
  });

  it('publishes a feed event and reports the requests it took', async () => {
    const seen: FeedEvent[] = [];
    const handle = handlerWith(async (events) => {
      seen.push(...events);
      return { published: events.length, unpublished: [], requests: 1 };
    });
    expect(await handle(derived(A, '1', 3), deadlineAt(Date.now() + 1_000))).toEqual({
      outcome: 'published',
      requests: 1,
    });
    expect(seen.map((e) => e.channel)).toEqual([`/presence/${A}`]);
    expect(dead).toEqual([]);
  });

  it('refuses an event outright: a FeedRefused metric by reason, the event in the dead letters, no publish', async () => {
    const handle = handlerWith(async () => {
      throw new Error('must not publish');
    });
    const event = derived(A, 'x'.repeat(FEED_LIMITS.eventBytes), 1);
    expect(await handle(event, deadlineAt(Date.now() + 1_000))).toEqual({
      outcome: 'refused',
      reason: 'too-large',
    });
    const metric = JSON.parse(lines[0] as string);
    expect(metric).toMatchObject({
      _aws: {
        CloudWatchMetrics: [
          { Namespace: 'Test/Presence', Dimensions: [['Reason']], Metrics: [{ Name: FEED_METRICS.refused }] },
        ],
      },
      Reason: 'too-large',
      [FEED_METRICS.refused]: 1,
    });
    expect(JSON.parse(dead[0] as string)).toMatchObject({ refused: 'too-large', event: { id: event.id } });
  });

  it('skips the news of a chat the store never keeps (over 128 characters, holding #): no dead letter, no metric, no false alarm', async () => {
    const handle = handlerWith(async () => {
      throw new Error('must not publish');
    });
    for (const phone of ['x'.repeat(129), 'a#b', '']) {
      const outcome = await handle(
        {
          id: 'raw',
          source: EVENT_SOURCE,
          'detail-type': DETAIL_TYPES.COMPOSING,
          detail: { instanceId: A, phone, status: 'COMPOSING', receivedAt: 1 },
        },
        deadlineAt(Date.now() + 1_000),
      );
      expect(outcome, phone).toEqual({ outcome: 'skipped', reason: 'unstorable-chat' });
    }
    expect(dead).toEqual([]);
    expect(lines.join('\n')).not.toContain('_aws');
  });

  it('fails the invocation when the event was not published (Lambda retries it, then dead-letters it)', async () => {
    const handle = handlerWith(async () => ({
      published: 0,
      unpublished: [{ channel: `/presence/${A}`, index: 0, code: 'http-503' }],
      requests: 4,
    }));
    await expect(handle(derived(A, '1', 1), deadlineAt(Date.now() + 1_000))).rejects.toBeInstanceOf(
      FeedNotPublished,
    );
    expect(JSON.parse(lines[0] as string)).toMatchObject({
      level: 'WARN',
      instanceId: A,
      kind: 'derived',
      codes: ['http-503'],
    });
    expect(lines.join('\n')).not.toContain('"phone"');
    expect(dead).toEqual([]);
  });
});
