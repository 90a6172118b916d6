/**
 * ZapiClient (GET me, PUT update-webhook-chat-presence) against the Z-API stand-in on 127.0.0.1 (real
 * fetch), plus a few fake `fetch` implementations for what a server cannot produce on demand (a given
 * network error cause, an endless body). Also `secretForms`, `redact` and `hostOf`.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { AdaptiveRateLimiter, MAX_RETRY_AFTER_MS } from '../../../functions/fleet/rate-limit.ts';
import {
  DEFAULT_ZAPI_BASE_URL,
  hostOf,
  MAX_429_IN_A_ROW,
  redact,
  secretForms,
  ZapiClient,
  type ZapiClientOptions,
  ZapiError,
  type ZapiErrorCode,
} from '../../../functions/fleet/zapi.ts';
import { type Deadline, deadlineAt } from '../../../functions/shared/aws/deadline.ts';
import { instanceWebhookUrl } from '../../../functions/shared/secrets/webhook-secret.ts';
import { useZapiStandIn } from '../../support/use-zapi-standin.ts';

const ID = '3C01A2B3C4D5E6F7';
const TOKEN = 'F00DCAFE1234567890ABCDEF';
const CLIENT_TOKEN = 'Fa1b2c3d4e5f6Client7Token8';
const MASTER = 'Master_secret-0123456789abcdefghijklmnop';
const BASE = 'https://abc123.execute-api.sa-east-1.amazonaws.com';
const URL_TO_REGISTER = instanceWebhookUrl(BASE, ID, MASTER);
const SECRET = new URL(URL_TO_REGISTER).searchParams.get('secret') as string;
const MARKER = 'ANSWER-MARKER-7b1e';

const ALL_CODES: readonly ZapiErrorCode[] = [
  'client-token-required',
  'unauthorized',
  'not-found',
  'rejected',
  'rate-limited',
  'server-error',
  'timeout',
  'network',
  'not-json',
  'not-accepted',
  'out-of-time',
];

const ADVICE_REJECTED = 'check the instance in the Z-API panel and the Z-API base URL';

const soon = (ms = 5_000): Deadline => deadlineAt(Date.now() + ms);

/** A clock that stands still unless told (the deadline's remaining time is then exact). */
function frozenDeadline(remainingMs: number): Deadline {
  return deadlineAt(remainingMs, () => 0);
}

async function failure(promise: Promise<unknown>): Promise<ZapiError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(ZapiError);
    return error as ZapiError;
  }
  throw new Error('expected the call to fail');
}

const zapi = useZapiStandIn();
let sleeps: number[];

beforeEach(() => {
  sleeps = [];
});
afterEach(() => {
  vi.useRealTimers();
});

function client(options: ZapiClientOptions = {}, credentials: { token?: string; clientToken?: string } = {}) {
  return new ZapiClient(
    {
      instanceId: ID,
      token: credentials.token ?? TOKEN,
      ...(credentials.clientToken && { clientToken: credentials.clientToken }),
    },
    {
      baseUrl: zapi.url,
      attemptTimeoutMs: 1_000,
      maxAttempts: 4,
      backoffBaseMs: 100,
      sleep: async (ms) => {
        sleeps.push(ms);
      },
      random: () => 0.5,
      limiter: new AdaptiveRateLimiter({ requestsPerSecond: 1_000, backoffBaseMs: 20 }),
      ...options,
    },
  );
}

const requestsFor = (id = ID) => zapi.requests.filter((r) => r.instanceId === id);

describe('ZapiClient.me', () => {
  it('keeps only the webhook URL, connected, due and paymentStatus (never the token of the answer)', async () => {
    const due = Date.now() + 30 * 86_400_000;
    zapi.add(ID, TOKEN, { presenceUrl: URL_TO_REGISTER, due, paymentStatus: 'PAID' });
    const state = await client().me(soon());
    expect(state).toEqual({
      presenceChatCallbackUrl: URL_TO_REGISTER,
      connected: true,
      dueAt: due,
      paymentStatus: 'PAID',
    });
    expect(Object.keys(state).sort()).toEqual([
      'connected',
      'dueAt',
      'paymentStatus',
      'presenceChatCallbackUrl',
    ]);
    expect(JSON.stringify(state)).not.toContain(TOKEN);
    expect(JSON.stringify(state)).not.toContain('crm.example.com');
    const [request] = requestsFor();
    expect(request).toMatchObject({ method: 'GET', operation: 'me', body: '' });
    expect(request?.headers.accept).toBe('application/json');
    expect(request?.headers['content-type']).toBeUndefined();
    expect(request?.headers['client-token']).toBeUndefined();
  });

  it('reports no URL, a disconnected session and a missing payment status as such', async () => {
    zapi.add(ID, TOKEN, { presenceUrl: '', connected: false, paymentStatus: '' });
    expect(await client().me(soon())).toMatchObject({
      presenceChatCallbackUrl: undefined,
      connected: false,
      paymentStatus: undefined,
    });
  });

  it.each([
    ['seconds', 1_800_000_000, 1_800_000_000_000],
    ['milliseconds', 1_800_000_000_000, 1_800_000_000_000],
    ['the largest seconds value', 999_999_999_999, 999_999_999_999_000],
    ['the smallest milliseconds value', 1_000_000_000_000, 1_000_000_000_000],
    ['one second after the epoch', 1, 1_000],
  ])('turns due in %s into epoch ms', async (_, due, expected) => {
    zapi.add(ID, TOKEN, { behaviour: { status: 200, body: JSON.stringify({ due }) } });
    expect((await client().me(soon())).dueAt).toBe(expected);
  });

  it.each([
    ['zero', '0'],
    ['negative', '-5'],
    ['a string', '"1800000000"'],
    ['null', 'null'],
    ['infinite', '1e400'],
  ])('ignores a due that is %s', async (_, due) => {
    zapi.add(ID, TOKEN, { behaviour: { status: 200, body: `{"due": ${due}}` } });
    expect((await client().me(soon())).dueAt).toBeUndefined();
  });

  it('keeps the URL as Z-API holds it (untrimmed), treats a blank or non-string URL as none, and ignores non-boolean connected', async () => {
    const answer = (body: unknown) => ({ status: 200, body: JSON.stringify(body) });
    zapi.add(ID, TOKEN, {
      script: [
        answer({ presenceChatCallbackUrl: `  ${URL_TO_REGISTER}\u00a0\n`, connected: 'true' }),
        answer({ presenceChatCallbackUrl: ' \u00a0\u3000\ufeff ', connected: 1 }),
        answer({ presenceChatCallbackUrl: 42, connected: null }),
        answer({}),
      ],
    });
    const c = client();
    expect(await c.me(soon())).toEqual({
      // A no-break space after the secret is part of what Z-API's client requests: never trimmed away.
      presenceChatCallbackUrl: `  ${URL_TO_REGISTER}\u00a0\n`,
      connected: undefined,
      dueAt: undefined,
      paymentStatus: undefined,
    });
    for (let i = 0; i < 3; i++) {
      expect(await c.me(soon())).toEqual({
        presenceChatCallbackUrl: undefined,
        connected: undefined,
        dueAt: undefined,
        paymentStatus: undefined,
      });
    }
  });

  it('keeps a paymentStatus only when it is a word of at most 24 characters, ignores a non-string one', async () => {
    zapi.add(ID, TOKEN, {
      script: [
        { status: 200, body: JSON.stringify({ paymentStatus: 'X'.repeat(25) }) },
        { status: 200, body: JSON.stringify({ paymentStatus: 'Y'.repeat(24) }) },
        { status: 200, body: JSON.stringify({ paymentStatus: 'OVER_DUE 2' }) },
        { status: 200, body: JSON.stringify({ paymentStatus: 'past due' }) },
        { status: 200, body: JSON.stringify({ paymentStatus: 7 }) },
      ],
    });
    const c = client();
    expect((await c.me(soon())).paymentStatus).toBe('(unrecognized)');
    expect((await c.me(soon())).paymentStatus).toBe('Y'.repeat(24));
    expect((await c.me(soon())).paymentStatus).toBe('(unrecognized)');
    expect((await c.me(soon())).paymentStatus).toBe('past due');
    expect((await c.me(soon())).paymentStatus).toBeUndefined();
  });

  it('sends the Client-Token header when one is configured, and not when it is empty', async () => {
    zapi.add(ID, TOKEN, { requireClientToken: CLIENT_TOKEN, presenceUrl: URL_TO_REGISTER });
    expect((await client({}, { clientToken: CLIENT_TOKEN }).me(soon())).presenceChatCallbackUrl).toBe(
      URL_TO_REGISTER,
    );
    expect(requestsFor()[0]?.headers['client-token']).toBe(CLIENT_TOKEN);

    zapi.reset();
    const empty = new ZapiClient({ instanceId: ID, token: TOKEN, clientToken: '' }, { baseUrl: zapi.url });
    const error = await failure(empty.me(soon()));
    expect(error.code).toBe('client-token-required');
    expect(requestsFor()[0]?.headers['client-token']).toBeUndefined();
  });

  it('percent-encodes the instance id and token in the path and drops trailing slashes of the base URL', async () => {
    const token = 'tok/en?with=odd&chars#';
    zapi.add(ID, token, { presenceUrl: URL_TO_REGISTER });
    const c = client({ baseUrl: `${zapi.url}///` }, { token });
    expect((await c.me(soon())).presenceChatCallbackUrl).toBe(URL_TO_REGISTER);
    expect(requestsFor()).toHaveLength(1);
  });
});

describe('ZapiClient.updateChatPresenceWebhook', () => {
  it('PUTs {"value": url} as JSON and resolves when Z-API answers {"value": true}', async () => {
    const instance = zapi.add(ID, TOKEN, { requireClientToken: CLIENT_TOKEN });
    await client({}, { clientToken: CLIENT_TOKEN }).updateChatPresenceWebhook(URL_TO_REGISTER, soon());
    expect(instance.presenceUrl).toBe(URL_TO_REGISTER);
    const [request] = requestsFor();
    expect(request).toMatchObject({ method: 'PUT', operation: 'update-webhook-chat-presence' });
    expect(JSON.parse(request?.body ?? '')).toEqual({ value: URL_TO_REGISTER });
    expect(request?.headers['content-type']).toBe('application/json');
    expect(request?.headers.accept).toBe('application/json');
    expect(request?.headers['client-token']).toBe(CLIENT_TOKEN);
    expect(instance.otherUrls).toEqual({
      receivedCallbackUrl: 'https://crm.example.com/received',
      deliveryCallbackUrl: 'https://crm.example.com/delivery',
    });
  });

  it('accepts any 2xx with {"value": true}', async () => {
    zapi.add(ID, TOKEN, {
      script: [
        { status: 201, body: '{"value":true,"extra":1}' },
        { status: 299, body: '{"value":true}' },
      ],
    });
    await expect(client().updateChatPresenceWebhook(URL_TO_REGISTER, soon())).resolves.toBeUndefined();
    await expect(client().updateChatPresenceWebhook(URL_TO_REGISTER, soon())).resolves.toBeUndefined();
  });

  it.each([
    ['value false', 200, '{"value": false}'],
    ['value "true" (a string)', 200, '{"value": "true"}'],
    ['value 1', 200, '{"value": 1}'],
    ['no value', 202, '{}'],
  ])('refuses a 2xx with %s (not-accepted), without retrying', async (_, status, body) => {
    zapi.add(ID, TOKEN, { behaviour: { status, body } });
    const error = await failure(client().updateChatPresenceWebhook(URL_TO_REGISTER, soon()));
    expect(error.code).toBe('not-accepted');
    expect(error.status).toBe(status);
    expect(error.message).toBe(
      `Z-API answered ${status} to PUT update-webhook-chat-presence without accepting the URL (not-accepted); check that the instance id and token belong together and that the instance is active`,
    );
    expect(requestsFor()).toHaveLength(1);
  });

  it.each([
    ['text', 'OK'],
    ['an array', '[{"value": true}]'],
    ['null', 'null'],
    ['a JSON string', '"value"'],
    ['an empty body', ''],
  ])('refuses a 2xx whose body is %s (not-json)', async (_, body) => {
    zapi.add(ID, TOKEN, { behaviour: { status: 200, body } });
    const error = await failure(client().updateChatPresenceWebhook(URL_TO_REGISTER, soon()));
    expect(error.code).toBe('not-json');
    expect(error.status).toBe(200);
    expect(error.message).toBe(
      'Z-API answered 200 to PUT update-webhook-chat-presence with a body that is not a JSON object (not-json); check the Z-API base URL',
    );
  });

  it('GET me answering something that is not a JSON object is not-json too', async () => {
    zapi.add(ID, TOKEN, { behaviour: { status: 200, body: '<html>maintenance</html>' } });
    const error = await failure(client().me(soon()));
    expect(error.code).toBe('not-json');
    expect(error.message).toBe(
      'Z-API answered 200 to GET me with a body that is not a JSON object (not-json); check the Z-API base URL',
    );
  });
});

describe('ZapiClient errors and retries', () => {
  const ADVICE = {
    'client-token-required':
      'the account requires its security token: store it as an SSM SecureString and set clientTokenParameter',
    unauthorized:
      'check the instance token in SSM and, if the account uses one, the Client-Token (security token)',
    'not-found': 'check the instance id and its token (they must belong to the same instance)',
    'rate-limited': 'Z-API limits the request rate; the run slows down and retries',
    'server-error': 'Z-API is failing or busy; the next sweep tries again',
    rejected: 'check the instance in the Z-API panel and the Z-API base URL',
  } as const;

  it.each([
    [400, '{"error":"null not allowed"}', 'client-token-required'],
    [401, '{"error":"null not allowed"}', 'client-token-required'],
    [403, '{"error":"null not allowed"}', 'client-token-required'],
    [401, '{"error":"Unauthorized"}', 'unauthorized'],
    [403, 'Forbidden', 'unauthorized'],
    [404, '{"error":"Not Found"}', 'not-found'],
    [400, '{"error":"Instance not found"}', 'rejected'],
    [400, '{"error":{"nested":"null not allowed"}}', 'rejected'],
    [400, 'null', 'rejected'],
    [402, '{}', 'rejected'],
    [405, '{"error":"Method not allowed"}', 'rejected'],
    [409, 'conflict', 'rejected'],
    [499, '', 'rejected'],
    [300, '{}', 'rejected'],
  ] as const)('%i %s -> %s, not retried', async (status, body, code) => {
    zapi.add(ID, TOKEN, { behaviour: { status, body } });
    const error = await failure(client().me(soon()));
    expect(error.code).toBe(code);
    expect(error.status).toBe(status);
    expect(error.name).toBe('ZapiError');
    expect(error.message).toBe(`Z-API answered ${status} to GET me (${code}); ${ADVICE[code]}`);
    expect(requestsFor()).toHaveLength(1);
    expect(sleeps).toEqual([]);
  });

  it('names the PUT in its errors', async () => {
    zapi.add(ID, TOKEN, { behaviour: { status: 404, body: '{}' } });
    const error = await failure(client().updateChatPresenceWebhook(URL_TO_REGISTER, soon()));
    expect(error.message).toBe(
      `Z-API answered 404 to PUT update-webhook-chat-presence (not-found); ${ADVICE['not-found']}`,
    );
  });

  it.each([
    [500, 'server-error'],
    [502, 'server-error'],
    [503, 'server-error'],
    [599, 'server-error'],
  ] as const)(
    'retries %i (%s) up to maxAttempts with exponential, jittered backoff',
    async (status, code) => {
      zapi.add(ID, TOKEN, { behaviour: { status, body: '{"error":"busy"}' } });
      const randoms = [0, 0.25, 0.99];
      const error = await failure(client({ random: () => randoms.shift() as number }).me(soon()));
      expect(error.code).toBe(code);
      expect(error.status).toBe(status);
      expect(error.message).toBe(`Z-API answered ${status} to GET me (${code}); ${ADVICE[code]}`);
      expect(requestsFor()).toHaveLength(4);
      // base * 2^(attempt-2) * (0.5 + random): 100*1*0.5, 100*2*0.75, 100*4*1.49
      expect(sleeps).toEqual([50, 150, 596]);
    },
  );

  it('rounds each pause to whole milliseconds', async () => {
    zapi.add(ID, TOKEN, { behaviour: { status: 500, body: '' } });
    const randoms = [0.123, 0.1271];
    await failure(client({ maxAttempts: 3, random: () => randoms.shift() as number }).me(soon()));
    expect(sleeps).toEqual([62, 125]);
  });

  it('succeeds when a retry does, after 5xx and 429 answers', async () => {
    zapi.add(ID, TOKEN, {
      presenceUrl: URL_TO_REGISTER,
      script: [
        { status: 503, body: '' },
        { status: 429, body: '' },
      ],
    });
    expect((await client().me(soon())).presenceChatCallbackUrl).toBe(URL_TO_REGISTER);
    expect(requestsFor()).toHaveLength(3);
    // The 5xx pauses this call; the 429 pauses the run (the limiter), and is no attempt of its own.
    expect(sleeps).toEqual([100]);
  });

  it('retries a PUT after a 5xx and stops at a 4xx', async () => {
    const instance = zapi.add(ID, TOKEN, {
      script: [
        { status: 500, body: '' },
        { status: 400, body: '{"error":"value is required"}' },
      ],
    });
    const error = await failure(client().updateChatPresenceWebhook(URL_TO_REGISTER, soon()));
    expect(error.code).toBe('rejected');
    expect(requestsFor()).toHaveLength(2);
    expect(instance.presenceUrl).toBe('');
  });

  it('retries after a reset connection (network) and after an attempt timeout', async () => {
    zapi.add(ID, TOKEN, { presenceUrl: URL_TO_REGISTER, script: ['reset', 'hang'] });
    const state = await client({ attemptTimeoutMs: 400 }).me(soon());
    expect(state.presenceChatCallbackUrl).toBe(URL_TO_REGISTER);
    expect(requestsFor()).toHaveLength(3);
    expect(sleeps).toEqual([100, 200]);
  });

  it('reports a connection reset on every attempt as network', async () => {
    zapi.add(ID, TOKEN, { behaviour: 'reset' });
    const error = await failure(client({ maxAttempts: 2 }).me(soon()));
    expect(error.code).toBe('network');
    expect(error.status).toBeUndefined();
    expect(error.message).toMatch(/^Z-API could not be reached for GET me \(network( [A-Z_]{2,40})?\)$/);
    expect(requestsFor()).toHaveLength(2);
  });

  it('reports attempts that time out on every try as timeout', async () => {
    zapi.add(ID, TOKEN, { behaviour: 'hang' });
    const error = await failure(client({ maxAttempts: 2, attemptTimeoutMs: 150 }).me(soon()));
    expect(error.code).toBe('timeout');
    expect(error.status).toBeUndefined();
    expect(error.message).toBe('Z-API did not answer GET me in time (timeout)');
    expect(requestsFor()).toHaveLength(2);
  });

  it('makes a single attempt when maxAttempts is 1 or less', async () => {
    zapi.add(ID, TOKEN, { behaviour: { status: 500, body: '' } });
    await failure(client({ maxAttempts: 1 }).me(soon()));
    expect(requestsFor()).toHaveLength(1);
    zapi.reset();
    await failure(client({ maxAttempts: 0 }).me(soon()));
    expect(requestsFor()).toHaveLength(1);
    zapi.reset();
    await failure(client({ maxAttempts: -3 }).me(soon()));
    expect(requestsFor()).toHaveLength(1);
    expect(sleeps).toEqual([]);
  });

  it('does not start a retry that cannot finish before the deadline (pause + attempt timeout, at most 1 s)', async () => {
    zapi.add(ID, TOKEN, { behaviour: { status: 500, body: '' } });
    // random 0.5 -> pause = base = 100; attempt timeout 300 -> a retry needs 400 ms left.
    await failure(client({ maxAttempts: 2, attemptTimeoutMs: 300 }).me(frozenDeadline(400)));
    expect(requestsFor()).toHaveLength(2);
    zapi.reset();
    const error = await failure(client({ maxAttempts: 2, attemptTimeoutMs: 300 }).me(frozenDeadline(399)));
    expect(requestsFor()).toHaveLength(1);
    expect(error.code).toBe('server-error');
    // An attempt timeout over 1 s only asks for 1 s: a retry needs 1,100 ms left.
    zapi.reset();
    await failure(client({ maxAttempts: 2, attemptTimeoutMs: 5_000 }).me(frozenDeadline(1_100)));
    expect(requestsFor()).toHaveLength(2);
    zapi.reset();
    await failure(client({ maxAttempts: 2, attemptTimeoutMs: 5_000 }).me(frozenDeadline(1_099)));
    expect(requestsFor()).toHaveLength(1);
  });

  it('makes no request at all when the deadline has passed', async () => {
    zapi.add(ID, TOKEN, { presenceUrl: URL_TO_REGISTER });
    const error = await failure(client().me(deadlineAt(Date.now() - 1)));
    expect(error.code).toBe('out-of-time');
    expect(requestsFor()).toHaveLength(0);
  });
});

describe('ZapiClient and 429 (the run-wide rate limit)', () => {
  const busy = (headers?: Record<string, string>) => ({
    status: 429,
    body: `{"error":"Too many requests ${TOKEN}"}`,
    ...(headers !== undefined && { headers }),
  });

  it('waits Retry-After (seconds) before asking again, and a 429 is never an attempt that fails the call', async () => {
    zapi.add(ID, TOKEN, { presenceUrl: URL_TO_REGISTER, script: [busy({ 'retry-after': '1' })] });
    const started = Date.now();
    const state = await client({ maxAttempts: 1 }).me(soon());
    expect(state.presenceChatCallbackUrl).toBe(URL_TO_REGISTER);
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
    expect(requestsFor()).toHaveLength(2);
    expect(sleeps).toEqual([]);
  });

  it('waits until a Retry-After HTTP date', async () => {
    const at = new Date(Math.ceil((Date.now() + 1_500) / 1_000) * 1_000);
    zapi.add(ID, TOKEN, {
      presenceUrl: URL_TO_REGISTER,
      script: [busy({ 'retry-after': at.toUTCString() })],
    });
    await client().me(soon());
    const [, second] = zapi.requests;
    expect(second).toBeDefined();
    expect(Date.now()).toBeGreaterThanOrEqual(at.getTime() - 20);
    expect(requestsFor()).toHaveLength(2);
  });

  it('a 429 storm without Retry-After backs off (doubling); Z-API answering nobody, the call keeps asking until the deadline and is out-of-time, never rate-limited', async () => {
    zapi.add(ID, TOKEN, { behaviour: busy() });
    const limiter = new AdaptiveRateLimiter({
      requestsPerSecond: 1_000,
      backoffBaseMs: 50,
      random: () => 0.5,
    });
    const deadline = soon(1_000);
    const started = Date.now();
    const error = await failure(client({ limiter }).me(deadline));
    // 50, 100, 200, 400 ms of backoff fit in the second, the next 800 ms would not: refused at once.
    expect(Date.now() - started).toBeGreaterThanOrEqual(700);
    expect(Date.now()).toBeLessThan(deadline.at);
    expect(error.code).toBe('out-of-time');
    expect(error.status).toBe(429);
    expect(error.message).toBe(
      "Z-API GET me: not answered before the run's deadline (Z-API kept answering 429) (out-of-time); the next run asks again",
    );
    expect(requestsFor()).toHaveLength(MAX_429_IN_A_ROW);
    expect(limiter.stats.rateLimited).toBe(MAX_429_IN_A_ROW);
  });

  it("a call Z-API answers 429 five times while it answers the run's other requests in between fails rate-limited, without answer text", async () => {
    zapi.add(ID, TOKEN, { behaviour: busy() });
    zapi.add('OTHER', 'OTHERTOKEN', { presenceUrl: URL_TO_REGISTER });
    const limiter = new AdaptiveRateLimiter({
      requestsPerSecond: 1_000,
      backoffBaseMs: 50,
      random: () => 0.5,
    });
    const other = new ZapiClient(
      { instanceId: 'OTHER', token: 'OTHERTOKEN' },
      { baseUrl: zapi.url, limiter },
    );
    let done = false;
    const others = (async () => {
      while (!done) await other.me(soon());
    })();
    const error = await failure(client({ limiter }).me(soon(10_000)));
    done = true;
    await others;
    expect(error.code).toBe('rate-limited');
    expect(error.status).toBe(429);
    expect(error.message).toBe(
      'Z-API answered 429 to GET me (rate-limited); Z-API limits the request rate; the run slows down and retries',
    );
    expect(requestsFor()).toHaveLength(MAX_429_IN_A_ROW);
  });

  it('429s with nothing answered between them count once: five 429s in a row fail only when Z-API answered others between each', async () => {
    // A fake limiter: each 429 comes with (or without) answers to other requests since the previous one.
    let answered = 0;
    const between = [true, false, true, true, false, true, true];
    const limiter = {
      acquire: async () => {},
      answered: () => {},
      rateLimited: () => {
        if (between.shift()) answered++;
        return 0;
      },
      get stats() {
        return { requests: 0, answered, rateLimited: 0, rate: 1, lowestRate: 1, refused: 0 };
      },
    };
    zapi.add(ID, TOKEN, { behaviour: busy() });
    const error = await failure(client({ limiter }).me(soon()));
    expect(error.code).toBe('rate-limited');
    // The first 429 counts; then only those after an answer: 1, -, 2, 3, -, 4, 5.
    expect(requestsFor()).toHaveLength(7);
  });

  it('a Retry-After of a day pauses the run at most a minute (one answer cannot end every sweep)', async () => {
    const limiter = new AdaptiveRateLimiter({ requestsPerSecond: 10 });
    const waits = limiter.rateLimited(86_400_000);
    expect(waits).toBe(MAX_RETRY_AFTER_MS);
    limiter.close();
  });

  it('a Retry-After past the deadline fails out-of-time at once instead of waiting', async () => {
    zapi.add(ID, TOKEN, { behaviour: busy({ 'retry-after': '120' }) });
    const started = Date.now();
    const error = await failure(client().me(soon(5_000)));
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(error.code).toBe('out-of-time');
    expect(requestsFor()).toHaveLength(1);
  });

  it("a lone 429 delays its own call only: the run's other clients go on at once, the call asks again after its Retry-After", async () => {
    const limiter = new AdaptiveRateLimiter({ requestsPerSecond: 1_000 });
    zapi.add(ID, TOKEN, { presenceUrl: URL_TO_REGISTER });
    zapi.add('OTHER', 'OTHERTOKEN', { presenceUrl: URL_TO_REGISTER });
    const other = new ZapiClient(
      { instanceId: 'OTHER', token: 'OTHERTOKEN' },
      { baseUrl: zapi.url, limiter },
    );
    await other.me(soon()); // Z-API answers the run
    const started = Date.now();
    zapi.get(ID).script.push(busy({ 'retry-after': '1' }));
    const first = client({ limiter }).me(soon());
    await new Promise((resolve) => setTimeout(resolve, 100));
    await other.me(soon());
    expect(Date.now() - started).toBeLessThan(500);
    await first;
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
    expect(requestsFor()).toHaveLength(2);
    expect(limiter.stats.rateLimited).toBe(1);
  });

  it('a second 429 before any answer looks like Z-API refusing everyone: every client of the run waits for its Retry-After', async () => {
    const limiter = new AdaptiveRateLimiter({ requestsPerSecond: 1_000 });
    const clientOf = (id: string) =>
      new ZapiClient({ instanceId: id, token: `${id}TOKEN` }, { baseUrl: zapi.url, limiter });
    zapi.add(ID, TOKEN, { presenceUrl: URL_TO_REGISTER, script: [busy({ 'retry-after': '1' })] });
    zapi.add('OTHER', 'OTHERTOKEN', { presenceUrl: URL_TO_REGISTER, script: [busy({ 'retry-after': '1' })] });
    zapi.add('THIRD', 'THIRDTOKEN', { presenceUrl: URL_TO_REGISTER });
    const started = Date.now();
    const first = client({ limiter }).me(soon());
    await new Promise((resolve) => setTimeout(resolve, 100));
    const second = clientOf('OTHER').me(soon());
    await new Promise((resolve) => setTimeout(resolve, 100));
    // OTHER's 429 came second, with nothing answered since the first: the run waits a second from then.
    await clientOf('THIRD').me(soon());
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_050);
    await Promise.all([first, second]);
    expect(limiter.stats.rateLimited).toBe(2);
  });
});

describe('ZapiClient and the deadline', () => {
  it.each([
    ['hangs', 'hang' as const],
    ['trickles its body', 'trickle' as const],
  ])('GET me that %s rejects with timeout before the deadline + 500 ms', async (_, behaviour) => {
    zapi.add(ID, TOKEN, { behaviour });
    zapi.trickleEveryMs = 20;
    const deadline = soon(700);
    const error = await failure(client({ attemptTimeoutMs: 60_000, sleep: undefined }).me(deadline));
    expect(error.code).toBe('timeout');
    expect(Date.now()).toBeLessThan(deadline.at + 500);
  });

  it.each([
    ['hangs', 'hang' as const],
    ['trickles its body', 'trickle' as const],
  ])('a PUT that %s rejects with timeout before the deadline + 500 ms', async (_, behaviour) => {
    zapi.add(ID, TOKEN, { behaviour });
    zapi.trickleEveryMs = 20;
    const deadline = soon(700);
    const error = await failure(
      new ZapiClient({ instanceId: ID, token: TOKEN }, { baseUrl: zapi.url }).updateChatPresenceWebhook(
        URL_TO_REGISTER,
        deadline,
      ),
    );
    expect(error.code).toBe('timeout');
    expect(Date.now()).toBeLessThan(deadline.at + 500);
  });
});

describe('ZapiClient never puts answer text in an error', () => {
  const FORMS = [
    ...secretForms(URL_TO_REGISTER),
    ...secretForms(SECRET),
    URL_TO_REGISTER.replaceAll('/', '\\/').replaceAll('"', '\\"'),
    JSON.stringify(URL_TO_REGISTER),
    URL_TO_REGISTER.replace(/[^A-Za-z0-9]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`),
    decodeURIComponent(encodeURIComponent(URL_TO_REGISTER)),
  ];
  const echoes: string[] = [];
  for (const form of FORMS) {
    echoes.push(
      JSON.stringify({ error: `${form} ${MARKER}` }),
      JSON.stringify({ message: `${MARKER} ${form}`, value: false }),
      `{"error":"${form}","message":"${TOKEN} ${CLIENT_TOKEN} ${MARKER}"}`,
      `${MARKER} ${form} ${TOKEN}`,
    );
  }
  const forbidden = [
    ...FORMS,
    TOKEN,
    CLIENT_TOKEN,
    MARKER,
    encodeURIComponent(TOKEN),
    SECRET,
    'crm.example.com',
  ];

  function expectClean(error: ZapiError, body: string): void {
    for (const text of forbidden) expect(error.message).not.toContain(text);
    expect(error.message).not.toContain(body);
    expect(ALL_CODES).toContain(error.code);
  }

  it.each([400, 401, 403, 404, 409, 422, 500, 502, 503])(
    'answers %i that echo the URL, the secret and the tokens back (raw, percent-, JSON- and \\u-encoded)',
    async (status) => {
      const c = client({ maxAttempts: 1 }, { clientToken: CLIENT_TOKEN });
      zapi.add(ID, TOKEN, { behaviour: 'normal' });
      for (const body of echoes) {
        zapi.get(ID).script.push({ status, body }, { status, body });
        expectClean(await failure(c.updateChatPresenceWebhook(URL_TO_REGISTER, soon())), body);
        expectClean(await failure(c.me(soon())), body);
      }
    },
  );

  it('2xx answers that echo them (not-json and not-accepted)', async () => {
    const c = client({ maxAttempts: 1 }, { clientToken: CLIENT_TOKEN });
    zapi.add(ID, TOKEN);
    for (const body of echoes) {
      zapi.get(ID).script.push({ status: 200, body }, { status: 200, body: `${MARKER}${body}` });
      const put = await failure(c.updateChatPresenceWebhook(URL_TO_REGISTER, soon()));
      expect(['not-json', 'not-accepted']).toContain(put.code);
      expectClean(put, body);
      expectClean(await failure(c.me(soon())), body);
    }
  });

  it('an error string that is a property name of plain objects is not an error code', async () => {
    for (const name of ['constructor', 'toString', '__proto__', 'hasOwnProperty', 'valueOf']) {
      zapi.add(ID, TOKEN, { behaviour: { status: 400, body: JSON.stringify({ error: name }) } });
      const error = await failure(client().me(soon()));
      expect(error.code).toBe('rejected');
      expect(error.message).toBe(`Z-API answered 400 to GET me (rejected); ${ADVICE_REJECTED}`);
    }
  });
});

describe('ZapiClient with a fake fetch', () => {
  type Call = { url: string; init: RequestInit };
  function fakeFetch(answer: (call: Call, n: number) => Promise<Response> | Response) {
    const calls: Call[] = [];
    const impl = vi.fn(async (url: string | URL | Request, init?: RequestInit) => {
      const call = { url: String(url), init: init ?? {} };
      calls.push(call);
      return answer(call, calls.length);
    });
    return { calls, fetch: impl as unknown as typeof fetch };
  }
  const ok = () =>
    new Response(JSON.stringify({ presenceChatCallbackUrl: URL_TO_REGISTER }), { status: 200 });

  it('calls https://api.z-api.io by default', async () => {
    expect(DEFAULT_ZAPI_BASE_URL).toBe('https://api.z-api.io');
    const f = fakeFetch(ok);
    await new ZapiClient({ instanceId: ID, token: TOKEN }, { fetch: f.fetch }).me(soon());
    expect(f.calls.map((c) => c.url)).toEqual([`https://api.z-api.io/instances/${ID}/token/${TOKEN}/me`]);
    expect(f.calls[0]?.init.method).toBe('GET');
    expect(f.calls[0]?.init.headers).toEqual({ accept: 'application/json' });
    expect(f.calls[0]?.init.body).toBeUndefined();
    expect(f.calls[0]?.init.signal).toBeInstanceOf(AbortSignal);
  });

  it('builds the PUT with encoded path parts, JSON body and headers', async () => {
    const f = fakeFetch(() => new Response('{"value":true}', { status: 200 }));
    const c = new ZapiClient(
      { instanceId: 'I D', token: 'a/b?c', clientToken: CLIENT_TOKEN },
      { fetch: f.fetch, baseUrl: 'http://zapi.test//' },
    );
    await c.updateChatPresenceWebhook(URL_TO_REGISTER, soon());
    expect(f.calls[0]?.url).toBe(
      'http://zapi.test/instances/I%20D/token/a%2Fb%3Fc/update-webhook-chat-presence',
    );
    expect(f.calls[0]?.init.method).toBe('PUT');
    expect(f.calls[0]?.init.headers).toEqual({
      accept: 'application/json',
      'content-type': 'application/json',
      'client-token': CLIENT_TOKEN,
    });
    expect(f.calls[0]?.init.body).toBe(JSON.stringify({ value: URL_TO_REGISTER }));
  });

  it('defaults: 4 attempts, a 500 ms backoff base and Math.random jitter', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0.25);
    const f = fakeFetch(() => new Response('', { status: 500 }));
    const pauses: number[] = [];
    const c = new ZapiClient(
      { instanceId: ID, token: TOKEN },
      { fetch: f.fetch, sleep: async (ms) => void pauses.push(ms) },
    );
    const error = await failure(c.me(soon(60_000)));
    expect(error.code).toBe('server-error');
    expect(f.calls).toHaveLength(4);
    expect(pauses).toEqual([375, 750, 1_500]);
  });

  it('default sleep waits the pause before retrying', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const f = fakeFetch((_, n) => (n === 1 ? new Response('', { status: 503 }) : ok()));
    const c = new ZapiClient({ instanceId: ID, token: TOKEN }, { fetch: f.fetch, random: () => 0.5 });
    const done = c.me(soon(60_000));
    await vi.advanceTimersByTimeAsync(499);
    expect(f.calls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(f.calls).toHaveLength(2);
    expect((await done).presenceChatCallbackUrl).toBe(URL_TO_REGISTER);
  });

  it('default attempt timeout is 5 s', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const f = fakeFetch(
      ({ init }) =>
        new Promise<Response>((_, reject) => {
          init.signal?.addEventListener('abort', () => reject(init.signal?.reason));
        }),
    );
    const c = new ZapiClient({ instanceId: ID, token: TOKEN }, { fetch: f.fetch, maxAttempts: 1 });
    let settled: unknown;
    c.me(soon(60_000)).catch((error: unknown) => {
      settled = error;
    });
    await vi.advanceTimersByTimeAsync(4_999);
    expect(settled).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    expect(settled).toBeInstanceOf(ZapiError);
    expect((settled as ZapiError).code).toBe('timeout');
  });

  const netError = (cause: unknown) => new TypeError('fetch failed', { cause });
  const withCode = (code: unknown) => Object.assign(new Error('socket'), { code });

  it.each([
    ['ECONNREFUSED', netError(withCode('ECONNREFUSED')), ' ECONNREFUSED'],
    ['UND_ERR_SOCKET', netError(withCode('UND_ERR_SOCKET')), ' UND_ERR_SOCKET'],
    ['a 2-letter code', netError(withCode('EA')), ' EA'],
    ['a 40-letter code', netError(withCode('E'.repeat(40))), ` ${'E'.repeat(40)}`],
    ['a 1-letter code', netError(withCode('E')), ''],
    ['a 41-letter code', netError(withCode('E'.repeat(41))), ''],
    ['a lower-case code', netError(withCode('econnreset')), ''],
    ['a code with other characters', netError(withCode(`E ${TOKEN}`)), ''],
    ['a numeric code', netError(withCode(104)), ''],
    ['a cause that is not an Error', netError({ code: 'ECONNRESET' }), ''],
    ['no cause', new TypeError('fetch failed'), ''],
    ['a thrown string', `boom ${TOKEN}`, ''],
  ])('a network error with %s', async (_, thrown, shown) => {
    const f = fakeFetch(() => {
      throw thrown;
    });
    const c = new ZapiClient({ instanceId: ID, token: TOKEN }, { fetch: f.fetch, maxAttempts: 1 });
    const error = await failure(c.me(soon()));
    expect(error.code).toBe('network');
    expect(error.message).toBe(`Z-API could not be reached for GET me (network${shown})`);
  });

  it.each([
    ['a DOMException AbortError', new DOMException('aborted', 'AbortError')],
    ['an Error named AbortError', Object.assign(new Error('aborted'), { name: 'AbortError' })],
  ])('%s is a timeout, and is retried', async (_, thrown) => {
    const f = fakeFetch(() => {
      throw thrown;
    });
    const c = new ZapiClient(
      { instanceId: ID, token: TOKEN },
      { fetch: f.fetch, maxAttempts: 3, sleep: async () => {}, random: () => 0 },
    );
    const error = await failure(c.me(soon()));
    expect(error.code).toBe('timeout');
    expect(error.message).toBe('Z-API did not answer GET me in time (timeout)');
    expect(f.calls).toHaveLength(3);
  });

  it('a 2xx without a body is not-json', async () => {
    const f = fakeFetch(() => new Response(null, { status: 204 }));
    const error = await failure(
      new ZapiClient({ instanceId: ID, token: TOKEN }, { fetch: f.fetch }).me(soon()),
    );
    expect(error.code).toBe('not-json');
    expect(error.status).toBe(204);
  });

  it('reads at most 256 KB of an answer: an endless body ends as not-json, not a timeout', async () => {
    let pulled = 0;
    const f = fakeFetch(
      () =>
        new Response(
          new ReadableStream<Uint8Array>({
            start(controller) {
              controller.enqueue(new TextEncoder().encode('{"presenceChatCallbackUrl":"'));
            },
            pull(controller) {
              pulled += 1;
              controller.enqueue(new Uint8Array(64 * 1024).fill(0x61));
            },
          }),
          { status: 200 },
        ),
    );
    const error = await failure(
      new ZapiClient({ instanceId: ID, token: TOKEN }, { fetch: f.fetch }).me(soon(3_000)),
    );
    expect(error.code).toBe('not-json');
    expect(pulled).toBeLessThan(8);
  });

  it('a JSON answer of exactly 256 KB is read whole', async () => {
    const head = '{"paymentStatus":"PAID","pad":"';
    const tail = '"}';
    const text = head + 'p'.repeat(256 * 1024 - head.length - tail.length) + tail;
    expect(Buffer.byteLength(text)).toBe(256 * 1024);
    const f = fakeFetch(() => new Response(text, { status: 200 }));
    const c = new ZapiClient({ instanceId: ID, token: TOKEN }, { fetch: f.fetch });
    expect((await c.me(soon())).paymentStatus).toBe('PAID');
    const over = `${text.slice(0, -2)}p"}`;
    const f2 = fakeFetch(() => new Response(over, { status: 200 }));
    const error = await failure(
      new ZapiClient({ instanceId: ID, token: TOKEN }, { fetch: f2.fetch }).me(soon()),
    );
    expect(error.code).toBe('not-json');
  });
});

describe('ZapiClient and redirects', () => {
  let other: Server;
  let front: Server;
  const seen: Array<{ url: string | undefined; headers: IncomingHttpHeaders; body: string }> = [];

  beforeAll(async () => {
    other = createServer((request, response) => {
      let body = '';
      request.on('data', (chunk: Buffer) => {
        body += chunk.toString('utf8');
      });
      request.on('end', () => {
        seen.push({ url: request.url, headers: request.headers, body });
        response.writeHead(200, { 'content-type': 'application/json' });
        response.end('{"value":true,"presenceChatCallbackUrl":"https://elsewhere.example/x"}');
      });
    });
    await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
    const otherPort = (other.address() as AddressInfo).port;
    front = createServer((request, response) => {
      request.resume();
      // Another origin (another port): a hijacked or mistyped base URL.
      response.writeHead(307, { location: `http://127.0.0.1:${otherPort}/collect` });
      response.end();
    });
    await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve));
  });
  afterAll(async () => {
    other.closeAllConnections();
    front.closeAllConnections();
    await Promise.all([
      new Promise((resolve) => other.close(resolve)),
      new Promise((resolve) => front.close(resolve)),
    ]);
  });

  it('never sends the Client-Token or the webhook URL to the origin a redirect points at', async () => {
    const c = new ZapiClient(
      { instanceId: ID, token: TOKEN, clientToken: CLIENT_TOKEN },
      { baseUrl: `http://127.0.0.1:${(front.address() as AddressInfo).port}`, maxAttempts: 1 },
    );
    const me = await c.me(soon()).then(
      () => undefined,
      (error: unknown) => error,
    );
    const update = await c.updateChatPresenceWebhook(URL_TO_REGISTER, soon()).then(
      () => undefined,
      (error: unknown) => error,
    );
    // Both calls failed at the redirect (never followed), and the other origin saw no request at all.
    for (const error of [me, update]) {
      expect(error).toBeInstanceOf(ZapiError);
      expect((error as ZapiError).code).toBe('network');
      expect((error as ZapiError).message).not.toContain(TOKEN);
    }
    expect(seen).toEqual([]);
  });
});

describe('secretForms and redact', () => {
  it('lists the raw, percent-encoded (both cases), JSON-escaped, \\u-escaped and decoded forms', () => {
    const secret = 'k/e"y\\é\t%2F';
    expect(secretForms(secret)).toEqual(
      expect.arrayContaining([
        'k/e"y\\é\t%2F',
        'k%2Fe%22y%5C%C3%A9%09%252F',
        'k%2fe%22y%5c%c3%a9%09%252F',
        'k/e\\"y\\\\é\\t%2F',
        'k\\/e\\"y\\\\é\\t%2F',
        'k\\u002fe\\u0022y\\u005c\\u00e9\\u0009%2F',
        'k/e"y\\é\t/',
        'k/e"y\\é\t%2f',
        'K/E"Y\\É\t%2F',
      ]),
    );
  });

  it('lists its bytes as base64 (padded or not), base64url, hex (both cases) and percent-encoded byte by byte (both cases)', () => {
    const secret = 'Ab_c-9~';
    const bytes = Buffer.from(secret, 'utf8');
    expect(secretForms(secret)).toEqual(
      expect.arrayContaining([
        '%41%62%5f%63%2d%39%7e',
        '%41%62%5F%63%2D%39%7E',
        '41625f632d397e',
        '41625F632D397E',
        bytes.toString('base64'),
        bytes.toString('base64').replace(/=+$/, ''),
        bytes.toString('base64url'),
      ]),
    );
    for (const form of secretForms(secret)) expect(redact(`<${form}>`, [secret])).toBe('<***>');
  });

  it('drops duplicate forms and skips the decoded form of text that is not percent-encoding', () => {
    for (const secret of ['plain_token-123', 'plain', 'a%zz']) {
      const forms = secretForms(secret);
      expect(new Set(forms).size).toBe(forms.length);
      expect(forms.slice(0, 1)).toEqual([secret]);
    }
    expect(secretForms('plain_token-123')).toContain('PLAIN_TOKEN-123');
    expect(secretForms('a%zz')).toEqual(expect.arrayContaining(['a%25zz', 'A%ZZ']));
  });

  it('keeps a printable character other than " \\ / as is in the \\u form', () => {
    expect(secretForms('a b~')).toEqual(expect.arrayContaining(['a b~', 'a%20b~', 'A B~']));
    expect(secretForms('x\u007fy')).toContain('x\\u007fy');
    expect(secretForms('x y')).not.toContain('x\\u0020y');
  });

  it('redacts every form of each secret', () => {
    const secret = 'k/e"y\\é\t%2F';
    for (const form of secretForms(secret)) {
      expect(redact(`before ${form} after ${form}`, [secret])).toBe('before *** after ***');
    }
  });

  it('redacts a webhook URL echoed in each encoding', () => {
    for (const form of secretForms(URL_TO_REGISTER)) {
      const out = redact(`got ${form}.`, [URL_TO_REGISTER]);
      expect(out).toBe('got ***.');
    }
    const lower = encodeURIComponent(URL_TO_REGISTER).replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase());
    expect(lower).not.toBe(encodeURIComponent(URL_TO_REGISTER));
    expect(redact(lower, [URL_TO_REGISTER])).toBe('***');
    expect(redact(JSON.stringify({ u: URL_TO_REGISTER }).replaceAll('/', '\\/'), [URL_TO_REGISTER])).toBe(
      '{"u":"***"}',
    );
  });

  it('redacts several secrets, longest forms first', () => {
    expect(redact('abcdef and abcd', ['abcd', 'abcdef'])).toBe('*** and ***');
    expect(redact('abcdef', ['abcdef', 'abcd'])).toBe('***');
    expect(redact(`${TOKEN}:${CLIENT_TOKEN}`, [undefined, TOKEN, CLIENT_TOKEN])).toBe('***:***');
  });

  it('ignores secrets and forms shorter than 4 characters (they would blank ordinary text)', () => {
    expect(redact('abc abcd', ['abc'])).toBe('abc abcd');
    expect(redact('abcd', ['abcd'])).toBe('***');
    // '%41b' decodes to 'Ab' (2 characters): that form is not redacted, the raw one is.
    expect(redact('Ab %41b', ['%41b'])).toBe('Ab ***');
    expect(redact('text', [])).toBe('text');
    expect(redact('undefined', [undefined])).toBe('undefined');
  });
});

describe('hostOf', () => {
  it.each([
    ['https://helpdesk.example.com/hooks/presence?token=abc#frag', 'helpdesk.example.com'],
    ['https://helpdesk.example.com:8443/a/b?c=d', 'helpdesk.example.com:8443'],
    ['https://user:password@helpdesk.example.com/p?q', 'helpdesk.example.com'],
    ['http://127.0.0.1:3000/instances/X/presence?secret=s', '127.0.0.1:3000'],
    ['mailto:someone@example.com', '(no host)'],
    ['not a url/with?secret=1', '(not a URL)'],
    ['', '(not a URL)'],
  ])('%s -> %s', (url, host) => {
    expect(hostOf(url)).toBe(host);
  });

  it('never returns a path, query string, fragment or credentials', () => {
    fc.assert(
      fc.property(
        fc.webUrl({
          withQueryParameters: true,
          withFragments: true,
          authoritySettings: { withUserInfo: true },
        }),
        (url) => {
          const host = hostOf(url);
          expect(host).not.toMatch(/[/?#@]/);
          expect(host).toBe(new URL(url).host);
        },
      ),
      { numRuns: 100 },
    );
  });
});
