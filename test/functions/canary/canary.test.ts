/**
 * The canary's core, its HTTP call against real servers on 127.0.0.1 (hung, trickling, resetting,
 * redirecting), the arrival timer, and the receiver's and local server's handling of the canary's id.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import * as v from 'valibot';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { arrivalRecord } from '../../../functions/canary/arrival.ts';
import { webhookBaseUrl } from '../../../functions/canary/env.ts';
import { createPost } from '../../../functions/canary/http.ts';
import { CANARY_PHONE, canaryCallback, classify, NoAnswer, probe } from '../../../functions/canary/probe.ts';
import { CanaryRunFailed, outcomeRecord } from '../../../functions/canary/report.ts';
import { arrivalAlarmMinutes, CANARY_FAILURES } from '../../../functions/canary/settings.ts';
import { type LocalServer, startLocalServer } from '../../../functions/local/server.ts';
import { createMetricsLogger } from '../../../functions/presence-webhook/metrics.ts';
import { receiveWebhook } from '../../../functions/presence-webhook/receive.ts';
import { deadlineAt } from '../../../functions/shared/aws/deadline.ts';
import {
  CANARY_EVENT_SOURCE,
  CANARY_INSTANCE_ID,
  EVENT_SOURCE,
  PresenceCallbackSchema,
} from '../../../functions/shared/contract/presence-contract.ts';
import { deriveInstanceSecret } from '../../../functions/shared/secrets/webhook-secret.ts';

const MASTER = 'canary-test-master-0123456789abcdefghijkl';
const SECRET = deriveInstanceSecret(MASTER, CANARY_INSTANCE_ID);
const soon = (ms = 5_000) => deadlineAt(Date.now() + ms);

describe('the canary callback', () => {
  it('is a valid PresenceChatCallback for the canary instance, keeping its send time on the bus', () => {
    const callback = canaryCallback(1_764_000_000_000, 'run-1', 'api1');
    const parsed = v.parse(PresenceCallbackSchema, callback);
    expect(parsed).toMatchObject({
      instanceId: CANARY_INSTANCE_ID,
      phone: CANARY_PHONE,
      status: 'AVAILABLE',
    });
    expect((parsed as Record<string, unknown>).canary).toEqual({
      sentAt: 1_764_000_000_000,
      runId: 'run-1',
      apiId: 'api1',
    });
  });
});

describe('classify: what a status says failed', () => {
  it.each([
    [401, '', 'secret-mismatch'],
    [403, '{"message":"Forbidden"}', 'route'],
    [404, '{"message":"Not Found"}', 'route'],
    [429, '{"message":"Too Many Requests"}', 'throttled'],
    [400, '{"ok":false,"error":"invalid-body"}', 'rejected'],
    [413, '{"ok":false,"error":"payload-too-large"}', 'rejected'],
    [503, '{"ok":false,"error":"bus-unavailable"}', 'bus-unavailable'],
    [503, '{"ok":false,"error":"secret-unavailable"}', 'secret-unavailable'],
    [503, '{"message":"Service Unavailable"}', 'receiver-error'],
    [500, '{"message":"Internal Server Error"}', 'receiver-error'],
    [502, 'Bad Gateway', 'receiver-error'],
    [504, '', 'receiver-error'],
    [301, '', 'redirect'],
    [302, '', 'redirect'],
    [101, '', 'unexpected'],
  ] as const)('%s %s -> %s', (status, body, failure) => {
    expect(classify(status, body)?.failure).toBe(failure);
  });

  it('is undefined for every 2xx', () => {
    for (const status of [200, 201, 202, 204]) expect(classify(status, '')).toBeUndefined();
  });

  it('never takes a word from an answer other than a short lower-case error name', () => {
    fc.assert(
      fc.property(fc.integer({ min: 400, max: 599 }), fc.string(), (status, error) => {
        const verdict = classify(status, JSON.stringify({ error }));
        if (verdict?.error !== undefined) expect(verdict.error).toMatch(/^[a-z-]{1,40}$/);
        expect(Object.keys(CANARY_FAILURES)).toContain(verdict?.failure);
      }),
    );
  });
});

describe('probe', () => {
  it('posts to {base}/instances/{canary}/presence?secret=..., with or without a trailing slash', async () => {
    for (const base of [
      'https://abc.execute-api.sa-east-1.amazonaws.com',
      'https://abc.execute-api.sa-east-1.amazonaws.com/',
    ]) {
      const seen: string[] = [];
      const outcome = await probe(
        { baseUrl: webhookBaseUrl(base), master: MASTER, runId: 'r', apiId: 'api1' },
        {
          post: async (url, body) => {
            seen.push(url);
            expect(JSON.parse(body)).toMatchObject({
              instanceId: CANARY_INSTANCE_ID,
              canary: { runId: 'r' },
            });
            return { status: 200, body: '{"ok":true,"eventId":"11111111-2222-3333-4444-555555555555"}' };
          },
        },
        soon(),
      );
      expect(seen).toEqual([
        `https://abc.execute-api.sa-east-1.amazonaws.com/instances/${CANARY_INSTANCE_ID}/presence?secret=${SECRET}`,
      ]);
      expect(outcome).toMatchObject({
        ok: true,
        status: 200,
        eventId: '11111111-2222-3333-4444-555555555555',
      });
    }
  });

  it('does not take a 2xx without an event id as proof', async () => {
    const outcome = await probe(
      { baseUrl: 'http://127.0.0.1:1', master: MASTER, runId: 'r', apiId: 'api1' },
      { post: async () => ({ status: 200, body: '<html>a proxy page</html>' }) },
      soon(),
    );
    expect(outcome).toMatchObject({ ok: false, status: 200, failure: 'unexpected' });
  });

  it.each(['timeout', 'network'] as const)('reports %s when no answer came', async (kind) => {
    const outcome = await probe(
      { baseUrl: 'http://127.0.0.1:1', master: MASTER, runId: 'r', apiId: 'api1' },
      {
        post: async () => {
          throw new NoAnswer(kind);
        },
      },
      soon(),
    );
    expect(outcome).toMatchObject({ ok: false, status: kind, failure: kind, message: CANARY_FAILURES[kind] });
  });

  it('keeps the secret out of every outcome, log record and error', async () => {
    for (const status of [200, 401, 404, 429, 500, 503]) {
      const outcome = await probe(
        { baseUrl: 'http://127.0.0.1:1', master: MASTER, runId: 'r', apiId: 'api1' },
        {
          post: async (url) => ({ status, body: JSON.stringify({ error: 'x', echo: url, eventId: 'e-1' }) }),
        },
        soon(),
      );
      const record = JSON.stringify(
        outcomeRecord(outcome, { namespace: 'N', apiId: 'a', timestamp: 1, requestId: 'q' }),
      );
      const error = outcome.ok ? '' : new CanaryRunFailed(outcome).message;
      for (const text of [JSON.stringify(outcome), record, error]) {
        expect(text).not.toContain(SECRET);
        expect(text).not.toContain(MASTER);
      }
    }
  });

  it('writes a failure as one EMF line with the status as a dimension, a success with no metric', async () => {
    const failed = await probe(
      { baseUrl: 'http://127.0.0.1:1', master: MASTER, runId: 'r', apiId: 'api1' },
      { post: async () => ({ status: 429, body: '' }) },
      soon(),
    );
    const record = outcomeRecord(failed, { namespace: 'N', apiId: 'api1', timestamp: 5, requestId: 'q' });
    expect(record).toMatchObject({
      _aws: {
        Timestamp: 5,
        CloudWatchMetrics: [
          {
            Namespace: 'N',
            Dimensions: [['ApiId', 'Status']],
            Metrics: [{ Name: 'CanaryFailures', Unit: 'Count' }],
          },
        ],
      },
      ApiId: 'api1',
      Status: '429',
      CanaryFailures: 1,
      failure: 'throttled',
      level: 'ERROR',
    });
    const ok = await probe(
      { baseUrl: 'http://127.0.0.1:1', master: MASTER, runId: 'r', apiId: 'api1' },
      { post: async () => ({ status: 200, body: '{"eventId":"e-1"}' }) },
      soon(),
    );
    expect(
      outcomeRecord(ok, { namespace: 'N', apiId: 'a', timestamp: 1, requestId: 'q' }),
    ).not.toHaveProperty('_aws');
  });
});

describe('webhookBaseUrl', () => {
  it('takes any http(s) base, a trailing slash and a path', () => {
    expect(webhookBaseUrl('http://127.0.0.1:3000/')).toBe('http://127.0.0.1:3000');
    expect(webhookBaseUrl('https://x.example.com/zapi-staging//')).toBe('https://x.example.com/zapi-staging');
  });
  it.each(['not a url', 'ftp://x', 'https://x/?secret=abc', 'https://x/#f'])(
    'refuses %s, naming the variable',
    (raw) => {
      expect(() => webhookBaseUrl(raw)).toThrow(/WEBHOOK_BASE_URL/);
      try {
        webhookBaseUrl(raw);
      } catch (error) {
        expect(String(error)).not.toContain('S3cr3tValue');
      }
    },
  );
});

describe('the POST against servers that misbehave (127.0.0.1)', () => {
  let server: Server;
  let base: string;
  let behaviour: 'hang' | 'trickle' | 'reset' | 'redirect' | 'ok' = 'ok';
  const sockets = new Set<import('node:net').Socket>();

  beforeAll(async () => {
    server = createServer((request, response) => {
      request.resume();
      request.on('end', () => {
        if (behaviour === 'hang') return;
        if (behaviour === 'reset') return request.socket.destroy();
        if (behaviour === 'redirect') {
          response.writeHead(302, { location: `${base}/elsewhere` });
          return response.end();
        }
        if (behaviour === 'trickle') {
          response.writeHead(200, { 'content-type': 'application/json' });
          const timer = setInterval(() => response.write(' '), 50);
          response.on('close', () => clearInterval(timer));
          return;
        }
        response.writeHead(200, { 'content-type': 'application/json' });
        response.end('{"ok":true,"eventId":"e-1"}');
      });
    });
    server.on('connection', (socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterEach(() => {
    for (const socket of sockets) socket.destroy();
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  it('answers with the status and body', async () => {
    behaviour = 'ok';
    expect(await createPost(2_000)(`${base}/x`, '{}', soon())).toEqual({
      status: 200,
      body: '{"ok":true,"eventId":"e-1"}',
    });
  });

  it.each(['hang', 'trickle'] as const)('cuts a %s endpoint at the request cap', async (how) => {
    behaviour = how;
    const started = Date.now();
    const error = await createPost(400)(`${base}/x?secret=${SECRET}`, '{}', soon()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NoAnswer);
    expect((error as NoAnswer).kind).toBe('timeout');
    expect(Date.now() - started).toBeLessThan(1_500);
    expect(String(error)).not.toContain(SECRET);
  });

  it('cuts at the invocation deadline when that comes first', async () => {
    behaviour = 'hang';
    const started = Date.now();
    const error = await createPost(10_000)(`${base}/x`, '{}', soon(300)).catch((e: unknown) => e);
    expect((error as NoAnswer).kind).toBe('timeout');
    expect(Date.now() - started).toBeLessThan(1_300);
  });

  it('reports a reset connection as network, never the URL', async () => {
    behaviour = 'reset';
    const error = await createPost(2_000)(`${base}/x?secret=${SECRET}`, '{}', soon()).catch(
      (e: unknown) => e,
    );
    expect((error as NoAnswer).kind).toBe('network');
    expect(String(error)).not.toContain(SECRET);
  });

  it('follows no redirect: a 3xx is the answer (and classified as one)', async () => {
    behaviour = 'redirect';
    const answer = await createPost(2_000)(`${base}/x`, '{}', soon());
    expect(answer.status).toBe(302);
    expect(classify(answer.status, answer.body)?.failure).toBe('redirect');
  });

  it('reports a refused connection as network', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const error = await createPost(2_000)(`http://127.0.0.1:${port}/x`, '{}', soon()).catch(
      (e: unknown) => e,
    );
    expect((error as NoAnswer).kind).toBe('network');
  });
});

describe('arrivalRecord', () => {
  const event = (patch: Record<string, unknown> = {}, sentAt: unknown = 1_000_000) => ({
    id: 'e',
    source: CANARY_EVENT_SOURCE,
    time: new Date(1_001_000).toISOString(),
    detail: { canary: { sentAt, runId: 'run', apiId: 'api1' } },
    ...patch,
  });

  it('times an arrival in its log line, CanaryLatency and the send-to-bus part, and extracts no metric by default', () => {
    expect(arrivalRecord(event(), 1_001_500, { namespace: 'N', apiId: 'api1' })).toEqual({
      msg: 'canary arrived on the bus',
      ApiId: 'api1',
      CanaryLatency: 1_500,
      busMs: 1_000,
      runId: 'run',
    });
  });

  it('with detailed metrics, extracts CanaryLatency by ApiId', () => {
    expect(arrivalRecord(event(), 1_001_500, { namespace: 'N', apiId: 'api1', detailed: true })).toEqual({
      _aws: {
        Timestamp: 1_001_500,
        CloudWatchMetrics: [
          {
            Namespace: 'N',
            Dimensions: [['ApiId']],
            Metrics: [{ Name: 'CanaryLatency', Unit: 'Milliseconds' }],
          },
        ],
      },
      msg: 'canary arrived on the bus',
      ApiId: 'api1',
      CanaryLatency: 1_500,
      busMs: 1_000,
      runId: 'run',
    });
  });

  it.each([
    ['another source', event({ source: EVENT_SOURCE })],
    ['no send time', event({ detail: {} })],
    ['a send time that is not a number', event({}, '1000000')],
    ['a send time from the future', event({}, 1_001_500 + 61_000)],
    ['a send time over 15 minutes old', event({}, 1_001_500 - 15 * 60_000 - 1)],
    [
      'another API’s canary (a shared bus)',
      event({ detail: { canary: { sentAt: 1_000_000, runId: 'run', apiId: 'other' } } }),
    ],
    ['a canary without its API', event({ detail: { canary: { sentAt: 1_000_000, runId: 'run' } } })],
    ['an archive replay', event({ 'replay-name': 'replay-1' })],
    ['NaN', event({}, Number.NaN)],
  ])('does not time %s', (_name, e) => {
    const record = arrivalRecord(e as never, 1_001_500, { namespace: 'N', apiId: 'api1', detailed: true });
    expect(record).not.toHaveProperty('_aws');
    expect(record).not.toHaveProperty('CanaryLatency');
    expect(record.level).toBe('WARN');
  });
});

describe('arrivalAlarmMinutes', () => {
  /**
   * The alarm as CloudWatch sees it: one-minute buckets; it fires at the end of the `window`-th
   * consecutive bucket without an arrival. Runs every `interval` minutes from `offset`, each arriving
   * `latency` ms after its tick; `missing` runs fail. Returns when it fired (ms), or undefined.
   */
  function firesAt(
    interval: number,
    offset: number,
    latency: number,
    missing: ReadonlySet<number>,
    runs: number,
  ) {
    const window = arrivalAlarmMinutes(interval);
    const arrivals = new Set<number>();
    for (let run = 0; run < runs; run++)
      if (!missing.has(run)) arrivals.add(Math.floor((offset + run * interval * 60_000 + latency) / 60_000));
    let empty = 0;
    const last = Math.floor((offset + runs * interval * 60_000) / 60_000) + window + 1;
    for (let minute = Math.floor(offset / 60_000) + 1; minute <= last; minute++) {
      empty = arrivals.has(minute) ? 0 : empty + 1;
      if (empty >= window) return (minute + 1) * 60_000;
    }
    return undefined;
  }

  it('never fires between healthy runs nor for one failed run, and fires within 14 minutes of the last arrival (every valid interval, any phase and latency)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 0, max: 59_999 }),
        fc.integer({ min: 0, max: 15_000 }),
        fc.integer({ min: 1, max: 8 }),
        (interval, offset, latency, failed) => {
          const runs = 10;
          // Healthy, and with one failed run: silent until the runs stop.
          for (const missing of [new Set<number>(), new Set([failed])]) {
            const fired = firesAt(interval, offset, latency, missing, runs);
            const lastArrival = offset + (runs - 1) * interval * 60_000 + latency;
            expect(fired).toBeGreaterThan(lastArrival);
            // Then it fires, at most 14 minutes after the last arrival (CloudWatch's own evaluation on top).
            expect((fired as number) - lastArrival).toBeLessThanOrEqual(14 * 60_000);
          }
        },
      ),
    );
    expect(arrivalAlarmMinutes(5)).toBe(11);
    expect(arrivalAlarmMinutes(6)).toBe(13);
  });
});

describe('the receiver and the canary instance', () => {
  const request = (instanceId: string, secret: string) => ({
    instanceId,
    secret,
    contentType: 'application/json',
    body: JSON.stringify({ ...canaryCallback(1, 'r', 'api1'), instanceId }),
    isBase64Encoded: false,
  });
  const deps = (sources: string[]) => ({
    maxBodyBytes: 16_384,
    verifySecret: (id: string, candidate: string) => candidate === deriveInstanceSecret(MASTER, id),
    publish: async (_status: string, _detail: string, _deadline: unknown, source: string) => {
      sources.push(source);
      return { eventId: 'e' };
    },
  });

  it('publishes the canary instance under the canary source, every other instance under the presence source', async () => {
    const sources: string[] = [];
    expect(
      (await receiveWebhook(request(CANARY_INSTANCE_ID, SECRET), deps(sources), soon())).statusCode,
    ).toBe(200);
    const other = 'ABCDEF0123456789ABCDEF0123456789';
    expect(
      (await receiveWebhook(request(other, deriveInstanceSecret(MASTER, other)), deps(sources), soon()))
        .statusCode,
    ).toBe(200);
    expect(sources).toEqual([CANARY_EVENT_SOURCE, EVENT_SOURCE]);
  });

  it('refuses a wrong secret for the canary id like any other (401), publishing nothing', async () => {
    const sources: string[] = [];
    const outcome = await receiveWebhook(
      request(CANARY_INSTANCE_ID, deriveInstanceSecret('x'.repeat(32), CANARY_INSTANCE_ID)),
      deps(sources),
      soon(),
    );
    expect(outcome.statusCode).toBe(401);
    expect(sources).toEqual([]);
  });

  it('logs an accepted canary callback without an Accepted datapoint', () => {
    const lines: string[] = [];
    const log = createMetricsLogger(
      'N',
      (line) => lines.push(line),
      () => 7,
      true,
    );
    log(
      {
        kind: 'accepted',
        statusCode: 200,
        instanceId: CANARY_INSTANCE_ID,
        status: 'AVAILABLE',
        eventId: 'e',
        publishMs: 3,
      },
      { requestId: 'q', durationMs: 4 },
    );
    log(
      {
        kind: 'accepted',
        statusCode: 200,
        instanceId: 'ABC',
        status: 'AVAILABLE',
        eventId: 'e',
        publishMs: 3,
      },
      { requestId: 'q', durationMs: 4 },
    );
    const [canary, traffic] = lines.map((line) => JSON.parse(line));
    expect(canary).toEqual({
      msg: 'canary callback accepted',
      instanceId: CANARY_INSTANCE_ID,
      Status: 'AVAILABLE',
      eventId: 'e',
      ms: 3,
      requestId: 'q',
    });
    expect(traffic).toHaveProperty('_aws');
    expect(traffic.Accepted).toBe(1);
  });
});

describe('npm start and the canary instance', () => {
  let server: LocalServer;
  const out: string[] = [];

  beforeAll(async () => {
    server = await startLocalServer({ port: 0, secret: MASTER, out: (l) => out.push(l), err: () => {} });
  });
  afterAll(async () => {
    await server.close();
  });

  it('publishes the canary under its own source and leaves it out of the local store and the live view', async () => {
    out.length = 0;
    const response = await fetch(
      `${server.baseUrl}/instances/${CANARY_INSTANCE_ID}/presence?secret=${SECRET}`,
      {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(canaryCallback(Date.now(), 'local', 'local')),
      },
    );
    expect(response.status).toBe(200);
    expect(out.map((line) => JSON.parse(line).Source)).toEqual([CANARY_EVENT_SOURCE]);
    // The live view watches every instance the local store holds: never the canary's.
    expect(await (await fetch(`${server.baseUrl}/`)).text()).not.toContain(CANARY_INSTANCE_ID);
    // A real instance does reach it.
    const other = 'LOCALREAL';
    await fetch(
      `${server.baseUrl}/instances/${other}/presence?secret=${deriveInstanceSecret(MASTER, other)}`,
      {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          ...canaryCallback(1, 'x', 'local'),
          instanceId: other,
          phone: '5511999999999',
        }),
      },
    );
    expect(await (await fetch(`${server.baseUrl}/`)).text()).toContain(other);
    const snapshot = await fetch(server.snapshotUrl.replace('{instanceId}', other), {
      headers: { authorization: server.issueToken([other]) },
    });
    expect(JSON.stringify(await snapshot.json())).toContain('5511999999999');
  });
});

describe('classify and probe, branch by branch', () => {
  it('NoAnswer says which kind of no answer', () => {
    expect(new NoAnswer('timeout')).toMatchObject({
      name: 'NoAnswer',
      kind: 'timeout',
      message: 'no complete answer before the deadline',
    });
    expect(new NoAnswer('network')).toMatchObject({
      name: 'NoAnswer',
      kind: 'network',
      message: 'the endpoint could not be reached',
    });
  });

  it('draws the lines of each class of status exactly', () => {
    expect(classify(299, '')).toBeUndefined();
    expect(classify(300, '')).toStrictEqual({ failure: 'redirect' });
    expect(classify(399, '')).toStrictEqual({ failure: 'redirect' });
    expect(classify(599, '')).toStrictEqual({ failure: 'receiver-error' });
    expect(classify(600, '')).toStrictEqual({ failure: 'unexpected' });
    expect(classify(199, '')).toStrictEqual({ failure: 'unexpected' });
  });

  it('carries the receiver’s error word only when there is one, and a 503’s only when it is the receiver’s', () => {
    expect(classify(400, '{"error":"invalid-body"}')).toStrictEqual({
      failure: 'rejected',
      error: 'invalid-body',
    });
    expect(classify(400, '{}')).toStrictEqual({ failure: 'rejected' });
    expect(classify(400, 'not json')).toStrictEqual({ failure: 'rejected' });
    expect(classify(400, 'null')).toStrictEqual({ failure: 'rejected' });
    expect(classify(400, '{"error":"Has Capitals"}')).toStrictEqual({ failure: 'rejected' });
    expect(classify(400, '{"error":42}')).toStrictEqual({ failure: 'rejected' });
    expect(classify(503, '{"error":"bus-unavailable"}')).toStrictEqual({
      failure: 'bus-unavailable',
      error: 'bus-unavailable',
    });
    expect(classify(503, '{}')).toStrictEqual({ failure: 'receiver-error' });
    expect(classify(503, '{"error":"over-capacity"}')).toStrictEqual({ failure: 'receiver-error' });
  });

  const run = (answer: () => Promise<{ status: number; body: string }>, clock: number[] = [1_000, 1_250]) => {
    const times = [...clock];
    return probe(
      { baseUrl: 'https://api.example', master: MASTER, runId: 'run-1', apiId: 'api1' },
      { post: answer, now: () => times.shift() ?? 9_999 },
      soon(),
    );
  };

  it('times the run from its send to its answer, or to its failure', async () => {
    expect(await run(async () => ({ status: 200, body: '{"eventId":"e-1"}' }))).toMatchObject({
      ok: true,
      sentAt: 1_000,
      ms: 250,
    });
    expect(
      await run(async () => {
        throw new NoAnswer('timeout');
      }),
    ).toMatchObject({ ok: false, status: 'timeout', ms: 250 });
  });

  it('any other error of the call is a network failure', async () => {
    const outcome = await run(async () => {
      throw new TypeError('fetch failed');
    });
    expect(outcome).toMatchObject({ ok: false, status: 'network', failure: 'network' });
  });

  it('takes only a whole event id of the receiver’s shape as proof', async () => {
    for (const eventId of ['abc def', '!abc', 'abc!', 'x'.repeat(101), 42]) {
      const outcome = await run(async () => ({ status: 200, body: JSON.stringify({ eventId }) }));
      expect(outcome, String(eventId)).toMatchObject({ ok: false, failure: 'unexpected' });
    }
    expect(await run(async () => ({ status: 200, body: '{"eventId":"6f1c8a2e-1b2c"}' }))).toMatchObject({
      ok: true,
      eventId: '6f1c8a2e-1b2c',
    });
  });

  it('a failed run carries the receiver’s error word when it gave one, and no error field otherwise', async () => {
    const busy = await run(async () => ({ status: 503, body: '{"error":"bus-unavailable"}' }));
    expect(busy).toMatchObject({ ok: false, failure: 'bus-unavailable', error: 'bus-unavailable' });
    const refused = await run(async () => ({ status: 401, body: '{"error":"unauthorized"}' }));
    expect(refused).toMatchObject({ ok: false, failure: 'secret-mismatch' });
    expect(refused).not.toHaveProperty('error');
  });
});

describe('arrivalRecord, branch by branch', () => {
  const NOW = 1_764_072_000_000;
  const SETTINGS = { namespace: 'ZapiPresence', apiId: 'api1' };
  const event = (canary: Record<string, unknown> | undefined, extra: Record<string, unknown> = {}) => ({
    source: CANARY_EVENT_SOURCE,
    time: new Date(NOW).toISOString(),
    ...(canary !== undefined && { detail: { canary } }),
    ...extra,
  });

  it('times a send up to a minute in the future and up to 15 minutes old, to the millisecond', () => {
    for (const sentAt of [NOW + 60_000, NOW - 15 * 60_000]) {
      const record = arrivalRecord(event({ sentAt, apiId: 'api1' }), NOW, SETTINGS);
      expect(record.msg, String(sentAt - NOW)).toBe('canary arrived on the bus');
    }
    for (const sentAt of [NOW + 60_001, NOW - 15 * 60_000 - 1]) {
      const record = arrivalRecord(event({ sentAt, apiId: 'api1' }), NOW, SETTINGS);
      expect(record.msg, String(sentAt - NOW)).toBe('not a canary arrival that can be timed: no latency');
    }
  });

  it('an event without a detail, or without a canary, is logged untimed, never thrown on', () => {
    for (const e of [{ source: CANARY_EVENT_SOURCE }, { source: CANARY_EVENT_SOURCE, detail: {} }]) {
      expect(arrivalRecord(e, NOW, SETTINGS)).toStrictEqual({
        level: 'WARN',
        msg: 'not a canary arrival that can be timed: no latency',
        source: CANARY_EVENT_SOURCE,
      });
    }
  });

  it('an untimed line names the source (cut to 64 characters) and the run id when there are', () => {
    const long = 'x'.repeat(100);
    const record = arrivalRecord(
      event({ sentAt: 'soon', runId: long, apiId: 'api1' }, { source: long }),
      NOW,
      SETTINGS,
    );
    expect(record).toStrictEqual({
      level: 'WARN',
      msg: 'not a canary arrival that can be timed: no latency',
      source: 'x'.repeat(64),
      runId: 'x'.repeat(64),
    });
    const bare = arrivalRecord(event({ sentAt: 'soon', apiId: 'api1' }, { source: 42 }), NOW, SETTINGS);
    expect(bare.source).toBeUndefined();
    expect(bare).not.toHaveProperty('runId');
  });

  it('a timed line has the run id only when there is one, and the send-to-bus part only from a time EventBridge wrote', () => {
    const timed = arrivalRecord(event({ sentAt: NOW - 500, apiId: 'api1' }, { time: 12_345 }), NOW, SETTINGS);
    expect(timed).not.toHaveProperty('runId');
    expect(timed).not.toHaveProperty('busMs');
    expect(timed.CanaryLatency).toBe(500);
  });
});

describe('the arrival handler, as Lambda loads it', () => {
  const KEYS = ['METRICS_NAMESPACE', 'CANARY_API_ID', 'DETAILED_METRICS'] as const;
  const saved = Object.fromEntries(KEYS.map((k) => [k, process.env[k]]));
  afterEach(() => {
    for (const k of KEYS) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
  });

  /** Imports a fresh copy of the handler with this environment and returns the line one arrival writes. */
  const lineFor = async (env: Partial<Record<(typeof KEYS)[number], string>>, apiId: string) => {
    for (const k of KEYS) delete process.env[k];
    Object.assign(process.env, env);
    vi.resetModules();
    const { handler } = await import('../../../functions/canary/arrival.ts');
    const lines: string[] = [];
    const write = process.stdout.write;
    process.stdout.write = ((chunk: string) => {
      lines.push(chunk);
      return true;
    }) as typeof process.stdout.write;
    try {
      await handler({
        source: CANARY_EVENT_SOURCE,
        time: new Date().toISOString(),
        detail: { canary: { sentAt: Date.now() - 100, runId: 'r', apiId } },
      });
    } finally {
      process.stdout.write = write;
    }
    expect(lines).toHaveLength(1);
    expect(lines[0]?.endsWith('\n')).toBe(true);
    return JSON.parse(lines[0] as string) as Record<string, unknown>;
  };

  it('reads its namespace, API id and detailed switch from the environment, trimmed', async () => {
    const line = await lineFor(
      { METRICS_NAMESPACE: ' Custom ', CANARY_API_ID: ' abc123 ', DETAILED_METRICS: 'true' },
      'abc123',
    );
    expect(line).toMatchObject({ msg: 'canary arrived on the bus', ApiId: 'abc123' });
    expect(JSON.stringify(line._aws)).toContain('"Namespace":"Custom"');
  });

  it('without them: the default namespace, API id "local", no metric', async () => {
    const line = await lineFor({ DETAILED_METRICS: 'yes' }, 'local');
    expect(line).toMatchObject({ msg: 'canary arrived on the bus', ApiId: 'local' });
    expect(line).not.toHaveProperty('_aws');
    const blank = await lineFor(
      { METRICS_NAMESPACE: '  ', CANARY_API_ID: '  ', DETAILED_METRICS: 'true' },
      'local',
    );
    expect(JSON.stringify(blank._aws)).toContain('"Namespace":"ZapiPresence"');
  });
});
