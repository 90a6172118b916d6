import fc from 'fast-check';
import * as v from 'valibot';
import { describe, expect, it, vi } from 'vitest';
import {
  authenticate,
  DependencyError,
  describeIssues,
  isJsonContentType,
  type Outcome,
  REJECT_REASONS,
  type ReceiveDeps,
  receiveWebhook,
  responseBody,
  type WebhookRequest,
} from '../../../functions/presence-webhook/receive.ts';
import { type Deadline, deadlineAt } from '../../../functions/shared/aws/deadline.ts';
import {
  CALLBACK_TYPE,
  canonicalDetail,
  EVENT_SOURCE,
  MAX_DETAIL_BYTES,
  PRESENCE_STATUSES,
  type PresenceCallback,
  PresenceCallbackSchema,
  PresenceDetailSchema,
  type PresenceStatus,
  stampedDetail,
} from '../../../functions/shared/contract/presence-contract.ts';

const SECRET = 'correct-horse-battery-staple';
const INSTANCE = '3C01A5B2E0F4D8E1A2B3C4D5E6F7A8B9';
const OTHER_INSTANCE = 'INSTANCE2';
const MAX_BODY = 1024;
/** When API Gateway received the test requests (the receiver stamps it on every event). */
const RECEIVED_AT = 1_764_072_000_123;
const STAMP = `,"receivedAt":${RECEIVED_AT}`;

const deadline = deadlineAt(Date.now() + 600_000);

function deps(overrides: Partial<ReceiveDeps> = {}) {
  const published: Array<{ status: PresenceStatus; detail: string }> = [];
  const verifySecret = vi.fn((_instanceId: string, candidate: string) => candidate === SECRET);
  const publish = vi.fn(async (status: PresenceStatus, detail: string, _deadline: Deadline) => {
    published.push({ status, detail });
    return { eventId: `event-${published.length}` };
  });
  const base: ReceiveDeps = { maxBodyBytes: MAX_BODY, verifySecret, publish };
  return { deps: { ...base, ...overrides }, published, verifySecret, publish };
}

const fields = (patch: Record<string, unknown> = {}) => ({
  type: CALLBACK_TYPE,
  phone: '5544999999999',
  status: 'COMPOSING',
  lastSeen: null,
  instanceId: INSTANCE,
  ...patch,
});
const body = (patch: Record<string, unknown> = {}) => JSON.stringify(fields(patch));

const request = (patch: Partial<WebhookRequest> = {}): WebhookRequest => ({
  instanceId: INSTANCE,
  secret: SECRET,
  contentType: 'application/json',
  body: body(),
  isBase64Encoded: false,
  receivedAt: RECEIVED_AT,
  ...patch,
});

const base64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');

/** What the contract makes of a raw body (JSON.parse, then the schema). */
const validated = (text: string): PresenceCallback => v.parse(PresenceCallbackSchema, JSON.parse(text));
/** The detail published for it: the canonical JSON of the validated value, stamped. */
const publishedOf = (value: PresenceCallback) => canonicalDetail(stampedDetail(value, RECEIVED_AT));

/** The messages the receiver answers with. */
const MESSAGES = {
  unknownInstance: 'the URL does not name a Z-API instance',
  missingSecret: 'missing secret: the webhook URL must carry ?secret=...',
  wrongSecret: 'wrong secret for this instance',
  secretUnavailable: 'cannot verify the webhook secret right now; retry later',
  unsupportedMediaType: 'content-type must be application/json',
  busUnavailable: 'the event bus did not accept the event; retry later',
} as const;

/**
 * A strict JSON reader that keeps the FIRST value of a duplicated key (the opposite of JSON.parse) and
 * lists the duplicates it met. Keys are defined as own data properties, so `__proto__` stays data.
 */
function readFirstWins(text: string): { value: unknown; duplicates: string[] } {
  let i = 0;
  const duplicates: string[] = [];
  const fail = (what: string): never => {
    throw new SyntaxError(`${what} at ${i}`);
  };
  const skipSpace = () => {
    while (i < text.length && ' \t\n\r'.includes(text.charAt(i))) i++;
  };
  const readString = (): string => {
    const start = i;
    i++;
    while (i < text.length && text.charAt(i) !== '"') i += text.charAt(i) === '\\' ? 2 : 1;
    if (i >= text.length) fail('unterminated string');
    i++;
    return JSON.parse(text.slice(start, i)) as string;
  };
  const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
  const readValue = (path: string): unknown => {
    skipSpace();
    const c = text.charAt(i);
    if (c === '{') {
      i++;
      const object: Record<string, unknown> = {};
      skipSpace();
      if (text.charAt(i) === '}') {
        i++;
        return object;
      }
      for (;;) {
        skipSpace();
        if (text.charAt(i) !== '"') fail('key expected');
        const key = readString();
        skipSpace();
        if (text.charAt(i) !== ':') fail("':' expected");
        i++;
        const item = readValue(path === '' ? key : `${path}.${key}`);
        if (Object.hasOwn(object, key)) duplicates.push(path === '' ? key : `${path}.${key}`);
        else
          Object.defineProperty(object, key, {
            value: item,
            enumerable: true,
            writable: true,
            configurable: true,
          });
        skipSpace();
        const next = text.charAt(i++);
        if (next === '}') return object;
        if (next !== ',') fail("',' or '}' expected");
      }
    }
    if (c === '[') {
      i++;
      const array: unknown[] = [];
      skipSpace();
      if (text.charAt(i) === ']') {
        i++;
        return array;
      }
      for (;;) {
        array.push(readValue(`${path}.${array.length}`));
        skipSpace();
        const next = text.charAt(i++);
        if (next === ']') return array;
        if (next !== ',') fail("',' or ']' expected");
      }
    }
    if (c === '"') return readString();
    for (const [word, value] of [
      ['true', true],
      ['false', false],
      ['null', null],
    ] as const) {
      if (text.startsWith(word, i)) {
        i += word.length;
        return value;
      }
    }
    NUMBER.lastIndex = i;
    const match = NUMBER.exec(text);
    if (match === null) return fail('value expected');
    i += match[0].length;
    return Number(match[0]);
  };
  const value = readValue('');
  skipSpace();
  if (i !== text.length) fail('trailing text');
  return { value, duplicates };
}

describe('readFirstWins (the test reader)', () => {
  it('keeps the first of duplicated keys, lists them, and otherwise agrees with JSON.parse', () => {
    const text = '{"a":1,"b":{"c":[true,false,null,"x\\"y",-1.5e3]},"a":2,"b":{"c":0}}';
    expect(readFirstWins(text)).toEqual({
      value: { a: 1, b: { c: [true, false, null, 'x"y', -1500] } },
      duplicates: ['a', 'b'],
    });
    expect(JSON.parse(text)).toEqual({ a: 2, b: { c: 0 } });
    expect(readFirstWins(' { "__proto__" : { "p" : 1 } , "e":{},"l":[] } ')).toEqual({
      value: JSON.parse('{"__proto__":{"p":1},"e":{},"l":[]}'),
      duplicates: [],
    });
    expect(() => readFirstWins('{"a":1,}')).toThrow(SyntaxError);
    expect(() => readFirstWins('{"a":1} x')).toThrow(SyntaxError);
  });
});

describe('constants and helpers', () => {
  it('lists every reject reason', () => {
    expect(REJECT_REASONS).toEqual([
      'unauthorized',
      'unknown-instance',
      'unsupported-media-type',
      'payload-too-large',
      'malformed-json',
      'invalid-body',
    ]);
  });

  it('DependencyError names the dependency and keeps the cause', () => {
    const cause = new Error('ssm down');
    const error = new DependencyError('secret', 'cannot read', { cause });
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('DependencyError');
    expect(error.dependency).toBe('secret');
    expect(error.message).toBe('cannot read');
    expect(error.cause).toBe(cause);
    expect(new DependencyError('bus', 'x').cause).toBeUndefined();
  });

  describe('isJsonContentType', () => {
    it.each([
      [undefined],
      [''],
      ['   '],
      ['application/json'],
      ['Application/JSON'],
      ['APPLICATION/JSON; CHARSET=UTF-8'],
      ['application/json; charset=utf-8'],
      ['application/json;charset=utf-8'],
      ['  application/json  ; charset=utf-8'],
      ['application/json;'],
      ['application/vnd.api+json'],
      ['application/problem+json'],
      ['application/x-amz-json+json'],
      ['application/x_y+json'],
      ['application/a+b+json'],
      ['application/a+json'],
    ])('accepts %j', (contentType) => {
      expect(isJsonContentType(contentType)).toBe(true);
    });

    it.each([
      ['text/json'],
      ['text/plain'],
      ['application/jsonp'],
      ['application/json5'],
      ['text/application/json'],
      ['xapplication/json'],
      ['application/json/x'],
      ['application/json, text/plain'],
      ['application/xjson'],
      ['application/+json'],
      ['application/vnd api+json'],
      ['application/vnd/api+json'],
      ['application/x-www-form-urlencoded'],
      ['multipart/form-data; boundary=x'],
      ['; application/json'],
      ['json'],
      ['application/'],
    ])('refuses %j', (contentType) => {
      expect(isJsonContentType(contentType)).toBe(false);
    });
  });

  describe('describeIssues', () => {
    it('names each failing field by its dotted path, with its message', () => {
      const result = v.safeParse(PresenceCallbackSchema, fields({ status: 'TYPING', phone: '' }));
      expect(describeIssues(result.issues ?? [])).toEqual([
        { field: 'phone', message: 'must not be empty' },
        { field: 'status', message: 'must be one of UNAVAILABLE, AVAILABLE, COMPOSING, RECORDING, PAUSED' },
      ]);
    });

    it('names an issue without a path (body)', () => {
      const result = v.safeParse(PresenceCallbackSchema, 'not an object');
      expect(result.issues?.length).toBe(1);
      expect(describeIssues(result.issues ?? [])).toEqual([
        { field: '(body)', message: result.issues?.[0]?.message },
      ]);
    });

    it('joins nested paths with dots', () => {
      const schema = v.object({ a: v.object({ b: v.array(v.number('num')) }) });
      const result = v.safeParse(schema, { a: { b: [1, 'x'] } });
      expect(describeIssues(result.issues ?? [])).toEqual([{ field: 'a.b.1', message: 'num' }]);
    });

    it('is empty for no issues', () => {
      expect(describeIssues([])).toEqual([]);
    });
  });

  describe('responseBody', () => {
    it('answers the event id for an accepted webhook', () => {
      const outcome: Outcome = {
        kind: 'accepted',
        statusCode: 200,
        instanceId: INSTANCE,
        status: 'PAUSED',
        eventId: 'e-1',
        publishMs: 12,
      };
      expect(responseBody(outcome)).toStrictEqual({ ok: true, eventId: 'e-1' });
    });

    it('answers the reason, the message and the issues of a rejection', () => {
      const issues = [{ field: 'phone', message: 'must not be empty' }];
      const outcome: Outcome = {
        kind: 'rejected',
        statusCode: 400,
        reason: 'invalid-body',
        message: 'invalid field(s): phone',
        issues,
        instanceId: INSTANCE,
      };
      expect(responseBody(outcome)).toStrictEqual({
        ok: false,
        error: 'invalid-body',
        message: 'invalid field(s): phone',
        issues,
      });
    });

    it('leaves issues out of a rejection that has none', () => {
      const outcome: Outcome = {
        kind: 'rejected',
        statusCode: 401,
        reason: 'unauthorized',
        message: MESSAGES.wrongSecret,
      };
      expect(responseBody(outcome)).toStrictEqual({
        ok: false,
        error: 'unauthorized',
        message: MESSAGES.wrongSecret,
      });
    });

    it('never answers the cause of a failure', () => {
      const outcome: Outcome = {
        kind: 'failed',
        statusCode: 503,
        reason: 'bus-unavailable',
        message: MESSAGES.busUnavailable,
        cause: 'PutEvents entry failed: ThrottlingException',
        instanceId: INSTANCE,
        publishMs: 3,
      };
      expect(responseBody(outcome)).toStrictEqual({
        ok: false,
        error: 'bus-unavailable',
        message: MESSAGES.busUnavailable,
      });
    });
  });
});

describe('authenticate', () => {
  it('is undefined for the right secret (sync or async verifier)', async () => {
    const sync = vi.fn(() => true);
    await expect(authenticate(INSTANCE, SECRET, { verifySecret: sync }, deadline)).resolves.toBeUndefined();
    expect(sync).toHaveBeenCalledWith(INSTANCE, SECRET, deadline);
    const async = vi.fn(async () => true);
    await expect(authenticate(INSTANCE, SECRET, { verifySecret: async }, deadline)).resolves.toBeUndefined();
  });

  it.each([
    ['sync', () => false],
    ['async', async () => false],
  ])('refuses a wrong secret from a %s verifier', async (_case, verifySecret) => {
    await expect(authenticate(INSTANCE, 'wrong', { verifySecret }, deadline)).resolves.toStrictEqual({
      kind: 'rejected',
      statusCode: 401,
      reason: 'unauthorized',
      message: MESSAGES.wrongSecret,
    });
  });

  it('answers 404 for a missing instance without asking the verifier', async () => {
    const verifySecret = vi.fn(() => true);
    await expect(authenticate(undefined, SECRET, { verifySecret }, deadline)).resolves.toStrictEqual({
      kind: 'rejected',
      statusCode: 404,
      reason: 'unknown-instance',
      message: MESSAGES.unknownInstance,
    });
    expect(verifySecret).not.toHaveBeenCalled();
  });
});

describe('receiveWebhook', () => {
  describe('accepting', () => {
    it.each(PRESENCE_STATUSES)('publishes %s as validated and answers 200', async (status) => {
      const { deps: d, published, publish } = deps();
      const raw = body({ status, extra: { nested: [1, 2] } });
      const outcome = await receiveWebhook(request({ body: raw }), d, deadline);
      expect(outcome).toEqual({
        kind: 'accepted',
        statusCode: 200,
        instanceId: INSTANCE,
        status,
        eventId: 'event-1',
        publishMs: expect.any(Number),
      });
      expect(published).toEqual([{ status, detail: publishedOf(validated(raw)) }]);
      expect(publish).toHaveBeenCalledWith(status, publishedOf(validated(raw)), deadline, EVENT_SOURCE);
      expect(responseBody(outcome)).toEqual({ ok: true, eventId: 'event-1' });
    });

    it('asks the verifier about the instance and secret of the request, with the deadline', async () => {
      const { deps: d, verifySecret } = deps();
      await receiveWebhook(request(), d, deadline);
      expect(verifySecret).toHaveBeenCalledOnce();
      expect(verifySecret).toHaveBeenCalledWith(INSTANCE, SECRET, deadline);
    });

    it('accepts an async verifier', async () => {
      const { deps: d, published } = deps({ verifySecret: async (_id, candidate) => candidate === SECRET });
      expect((await receiveWebhook(request(), d, deadline)).statusCode).toBe(200);
      expect(published).toHaveLength(1);
    });

    it('times the publish with the clock it is given', async () => {
      const ticks = [1_000, 1_015];
      const { deps: d } = deps({ now: () => ticks.shift() ?? Number.NaN });
      const outcome = await receiveWebhook(request(), d, deadline);
      expect(outcome).toMatchObject({ kind: 'accepted', publishMs: 15 });
    });

    it('times the publish with performance.now by default', async () => {
      const now = vi.spyOn(performance, 'now').mockReturnValueOnce(500).mockReturnValueOnce(542.5);
      const { deps: d } = deps();
      const outcome = await receiveWebhook(request(), d, deadline);
      expect(outcome).toMatchObject({ kind: 'accepted', publishMs: 42.5 });
      expect(now).toHaveBeenCalledTimes(2);
    });

    it('accepts a body without lastSeen, and with a numeric lastSeen', async () => {
      const { deps: d, published } = deps();
      const { lastSeen: _, ...withoutLastSeen } = fields();
      const raw = JSON.stringify(withoutLastSeen);
      expect((await receiveWebhook(request({ body: raw }), d, deadline)).statusCode).toBe(200);
      expect(JSON.parse(published[0]?.detail ?? '')).toEqual({ ...withoutLastSeen, receivedAt: RECEIVED_AT });
      expect(
        (await receiveWebhook(request({ body: body({ lastSeen: 1732540000 }) }), d, deadline)).statusCode,
      ).toBe(200);
      expect(JSON.parse(published[1]?.detail ?? '').lastSeen).toBe(1732540000);
    });

    it('accepts a JSON body without a content-type', async () => {
      const { deps: d } = deps();
      expect((await receiveWebhook(request({ contentType: undefined }), d, deadline)).statusCode).toBe(200);
    });
  });

  describe('what is published is what was validated', () => {
    it('publishes the canonical JSON, not the raw text', async () => {
      const { deps: d, published } = deps();
      const raw = `{ "extra" : { "n" : 1.50E+3 },\n  "instanceId": "${INSTANCE}", "status": "PAUSED", "phone": "55", "type": "${CALLBACK_TYPE}" }`;
      expect((await receiveWebhook(request({ body: raw }), d, deadline)).statusCode).toBe(200);
      expect(published[0]?.detail).toBe(
        `{"type":"${CALLBACK_TYPE}","phone":"55","status":"PAUSED","instanceId":"${INSTANCE}"${STAMP},"extra":{"n":1500}}`,
      );
    });

    it('with a duplicated instanceId, validates and publishes the last one, once', async () => {
      const { deps: d, published } = deps();
      const raw = `{"instanceId":"OTHER","type":"${CALLBACK_TYPE}","phone":"55","status":"PAUSED","instanceId":"${INSTANCE}"}`;
      const outcome = await receiveWebhook(request({ body: raw }), d, deadline);
      expect(outcome.statusCode).toBe(200);
      const detail = published[0]?.detail ?? '';
      expect(detail.match(/"instanceId"/g)).toHaveLength(1);
      expect(readFirstWins(detail)).toEqual({ value: JSON.parse(detail), duplicates: [] });
      expect(JSON.parse(detail).instanceId).toBe(INSTANCE);
      expect(detail).not.toContain('OTHER');
    });

    it('refuses a body whose last instanceId is not the URL instance, whatever came first', async () => {
      const { deps: d, published } = deps();
      const raw = `{"instanceId":"${INSTANCE}","type":"${CALLBACK_TYPE}","phone":"55","status":"PAUSED","instanceId":"OTHER"}`;
      const outcome = await receiveWebhook(request({ body: raw }), d, deadline);
      expect(outcome).toMatchObject({ statusCode: 400, reason: 'invalid-body' });
      expect(published).toEqual([]);
    });

    it('with a duplicated status, publishes the last one under its own detail-type status', async () => {
      const { deps: d, published } = deps();
      const raw = `{"status":"COMPOSING","type":"${CALLBACK_TYPE}","phone":"55","instanceId":"${INSTANCE}","status":"PAUSED"}`;
      const outcome = await receiveWebhook(request({ body: raw }), d, deadline);
      expect(outcome).toMatchObject({ statusCode: 200, status: 'PAUSED' });
      expect(published[0]?.status).toBe('PAUSED');
      expect(JSON.parse(published[0]?.detail ?? '').status).toBe('PAUSED');
      expect(published[0]?.detail.match(/"status"/g)).toHaveLength(1);
    });

    it('accepts an overwritten out-of-range number, publishing only the value that was validated', async () => {
      const { deps: d, published } = deps();
      const raw = `{"lastSeen":1e400,"type":"${CALLBACK_TYPE}","phone":"55","status":"PAUSED","instanceId":"${INSTANCE}","lastSeen":7}`;
      expect((await receiveWebhook(request({ body: raw }), d, deadline)).statusCode).toBe(200);
      expect(published[0]?.detail).toBe(
        `{"type":"${CALLBACK_TYPE}","phone":"55","status":"PAUSED","lastSeen":7,"instanceId":"${INSTANCE}"${STAMP}}`,
      );
    });

    it('stamps receivedAt from the request (API Gateway), or its clock, and never takes it from the body', async () => {
      const { deps: d, published } = deps({ clock: () => 42 });
      const raw = body({ receivedAt: 1, extra: true });
      expect((await receiveWebhook(request({ body: raw }), d, deadline)).statusCode).toBe(200);
      expect(published[0]?.detail).toBe(
        `{"type":"${CALLBACK_TYPE}","phone":"5544999999999","status":"COMPOSING","lastSeen":null,"instanceId":"${INSTANCE}"${STAMP},"extra":true}`,
      );
      const { receivedAt: _, ...withoutStamp } = request({ body: raw });
      expect((await receiveWebhook(withoutStamp, d, deadline)).statusCode).toBe(200);
      expect(JSON.parse(published[1]?.detail ?? '{}').receivedAt).toBe(42);
      expect(v.parse(PresenceDetailSchema, JSON.parse(published[1]?.detail ?? '{}')).receivedAt).toBe(42);
    });

    it('drops the top-level keys __proto__, constructor and prototype', async () => {
      const { deps: d, published } = deps();
      const raw = `{"__proto__":{"admin":true},"constructor":{"prototype":1},"prototype":2,"type":"${CALLBACK_TYPE}","phone":"55","status":"PAUSED","instanceId":"${INSTANCE}"}`;
      expect((await receiveWebhook(request({ body: raw }), d, deadline)).statusCode).toBe(200);
      expect(published[0]?.detail).toBe(
        `{"type":"${CALLBACK_TYPE}","phone":"55","status":"PAUSED","instanceId":"${INSTANCE}"${STAMP}}`,
      );
    });

    it('publishes -0 as 0 (JSON.stringify), which re-validates to 0', async () => {
      const { deps: d, published } = deps();
      const raw = body({ lastSeen: 0 }).replace('"lastSeen":0', '"lastSeen":-0');
      expect(raw).toContain('"lastSeen":-0');
      expect((await receiveWebhook(request({ body: raw }), d, deadline)).statusCode).toBe(200);
      expect(published[0]?.detail).toContain('"lastSeen":0,');
    });

    it('decodes base64 bodies, multi-byte characters included', async () => {
      const { deps: d, published } = deps();
      const raw = body({ chatName: 'Ação ✓ 👋' });
      const outcome = await receiveWebhook(
        request({ body: base64(raw), isBase64Encoded: true }),
        d,
        deadline,
      );
      expect(outcome.statusCode).toBe(200);
      expect(published[0]?.detail).toBe(publishedOf(validated(raw)));
      expect(JSON.parse(published[0]?.detail ?? '').chatName).toBe('Ação ✓ 👋');
    });

    it('does not decode a body that is not flagged base64', async () => {
      const { deps: d } = deps();
      const outcome = await receiveWebhook(
        request({ body: base64(body()), isBase64Encoded: false }),
        d,
        deadline,
      );
      expect(outcome).toMatchObject({ statusCode: 400, reason: 'malformed-json' });
    });

    it('publishes one value per key that both a last-wins and a first-wins reader read alike (property)', async () => {
      const DOCUMENTED = Object.keys(PresenceCallbackSchema.entries);
      const RAW_OUT_OF_RANGE = Symbol('1e400');
      const extraKey = fc.string({ maxLength: 8 }).filter((key) => !DOCUMENTED.includes(key));
      const jsonish = fc.jsonValue({ maxDepth: 2 });
      const { deps: d, publish } = deps({ maxBodyBytes: 1_000_000 });
      await fc.assert(
        fc.asyncProperty(
          fc.record({
            status: fc.constantFrom(...PRESENCE_STATUSES),
            phone: fc.string({ minLength: 1, maxLength: 20 }),
            lastSeen: fc.option(
              fc.oneof(
                fc.constant(null),
                fc.integer({ min: 0 }),
                fc.double({ noNaN: true, noDefaultInfinity: true }),
              ),
              { nil: undefined },
            ),
            extras: fc.array(fc.tuple(extraKey, jsonish), { maxLength: 5 }),
            // Earlier occurrences of keys that come again later: JSON.parse keeps the last.
            decoys: fc.array(fc.tuple(fc.nat(), fc.oneof(jsonish, fc.constant(RAW_OUT_OF_RANGE))), {
              maxLength: 4,
            }),
            shuffle: fc.array(fc.nat(), { minLength: 10, maxLength: 10 }),
            space: fc.constantFrom('', ' ', '\n  ', '\t'),
            encoded: fc.boolean(),
          }),
          async ({ status, phone, lastSeen, extras, decoys, shuffle, space, encoded }) => {
            const documented: Array<[string, unknown]> = [
              ['type', CALLBACK_TYPE],
              ['phone', phone],
              ['status', status],
              ['instanceId', INSTANCE],
            ];
            if (lastSeen !== undefined) documented.push(['lastSeen', lastSeen]);
            const real: Array<[string, unknown]> = [...documented, ...extras];
            // Shuffle the real pairs (deterministically from the generated numbers).
            for (let k = real.length - 1; k > 0; k--) {
              const j = (shuffle[k % shuffle.length] ?? 0) % (k + 1);
              [real[k], real[j]] = [real[j] as [string, unknown], real[k] as [string, unknown]];
            }
            const keys = real.map(([key]) => key);
            const early = decoys.map(([n, value]): [string, unknown] => [
              keys[n % keys.length] as string,
              value,
            ]);
            const pair = ([key, value]: [string, unknown]) =>
              `${JSON.stringify(key)}${space}:${space}${value === RAW_OUT_OF_RANGE ? '1e400' : JSON.stringify(value)}`;
            const raw = `{${space}${[...early, ...real].map(pair).join(`,${space}`)}${space}}`;

            const expected = validated(raw);
            publish.mockClear();
            const outcome = await receiveWebhook(
              request({ body: encoded ? base64(raw) : raw, isBase64Encoded: encoded }),
              d,
              deadline,
            );
            expect(outcome.statusCode).toBe(200);
            expect(publish).toHaveBeenCalledOnce();
            const [publishedStatus, detail] = publish.mock.calls[0] ?? [];
            expect(publishedStatus).toBe(status);
            expect(detail).toBe(publishedOf(expected));
            const text = detail as string;
            // (a) It re-validates to the value that was validated.
            expect(v.parse(PresenceCallbackSchema, JSON.parse(text))).toEqual({
              ...expected,
              receivedAt: RECEIVED_AT,
            });
            expect(expected).toMatchObject({ type: CALLBACK_TYPE, phone, status, instanceId: INSTANCE });
            // (b) A first-wins reader reads the same: no duplicate keys anywhere.
            const strict = readFirstWins(text);
            expect(strict.duplicates).toEqual([]);
            expect(strict.value).toEqual(JSON.parse(text));
          },
        ),
        { numRuns: 250 },
      );
    });
  });

  describe('order of checks', () => {
    it.each([
      ['missing', undefined],
      ['empty', ''],
      ['a slash', 'a/b'],
      ['a dot', 'instance.id'],
      ['65 characters', 'x'.repeat(65)],
      ['a path traversal', '..'],
    ])(
      'answers 404 for an instance id that is %s, before looking at the secret',
      async (_case, instanceId) => {
        const { deps: d, verifySecret, publish } = deps();
        const outcome = await receiveWebhook(
          request({ instanceId, secret: 'wrong', body: '{' }),
          d,
          deadline,
        );
        expect(outcome).toStrictEqual({
          kind: 'rejected',
          statusCode: 404,
          reason: 'unknown-instance',
          message: MESSAGES.unknownInstance,
        });
        expect(verifySecret).not.toHaveBeenCalled();
        expect(publish).not.toHaveBeenCalled();
      },
    );

    it('accepts an instance id of 64 characters and of 1', async () => {
      for (const instanceId of ['x'.repeat(64), 'x']) {
        const { deps: d } = deps();
        const outcome = await receiveWebhook(
          request({ instanceId, body: body({ instanceId }) }),
          d,
          deadline,
        );
        expect(outcome.statusCode).toBe(200);
      }
    });

    it.each([
      ['missing', undefined],
      ['empty', ''],
    ])(
      'answers 401 for a %s secret without asking the verifier, and publishes nothing',
      async (_case, secret) => {
        const { deps: d, verifySecret, publish } = deps();
        const outcome = await receiveWebhook(
          request({ secret, contentType: 'text/plain', body: '{' }),
          d,
          deadline,
        );
        expect(outcome).toStrictEqual({
          kind: 'rejected',
          statusCode: 401,
          reason: 'unauthorized',
          message: MESSAGES.missingSecret,
        });
        expect(verifySecret).not.toHaveBeenCalled();
        expect(publish).not.toHaveBeenCalled();
      },
    );

    it('answers 401 for a wrong secret before looking at the content type, size or body', async () => {
      const { deps: d, verifySecret, publish } = deps({ maxBodyBytes: 1 });
      const outcome = await receiveWebhook(
        request({ secret: 'not-the-secret', contentType: 'text/plain', body: '{'.repeat(10) }),
        d,
        deadline,
      );
      expect(outcome).toStrictEqual({
        kind: 'rejected',
        statusCode: 401,
        reason: 'unauthorized',
        message: MESSAGES.wrongSecret,
      });
      expect(verifySecret).toHaveBeenCalledWith(INSTANCE, 'not-the-secret', deadline);
      expect(publish).not.toHaveBeenCalled();
    });

    it('answers 401 when an async verifier says no', async () => {
      const { deps: d, publish } = deps({ verifySecret: async () => false });
      const outcome = await receiveWebhook(request(), d, deadline);
      expect(outcome).toMatchObject({ statusCode: 401, message: MESSAGES.wrongSecret });
      expect(publish).not.toHaveBeenCalled();
    });

    it.each([
      [
        'rejects',
        async () => {
          throw new DependencyError('secret', 'ssm down', { cause: new Error('socket') });
        },
      ],
      [
        'throws',
        () => {
          throw new DependencyError('secret', 'ssm down');
        },
      ],
    ])(
      'answers 503 secret-unavailable, with the cause, when the verifier %s a DependencyError',
      async (_case, verifySecret) => {
        const { deps: d, publish } = deps({ verifySecret });
        const outcome = await receiveWebhook(request({ body: '{' }), d, deadline);
        expect(outcome).toStrictEqual({
          kind: 'failed',
          statusCode: 503,
          reason: 'secret-unavailable',
          message: MESSAGES.secretUnavailable,
          cause: 'ssm down',
        });
        expect(responseBody(outcome)).toStrictEqual({
          ok: false,
          error: 'secret-unavailable',
          message: MESSAGES.secretUnavailable,
        });
        expect(publish).not.toHaveBeenCalled();
      },
    );

    it.each([
      [
        'rejects',
        async () => {
          throw new TypeError('verifier bug');
        },
      ],
      [
        'throws',
        () => {
          throw new TypeError('verifier bug');
        },
      ],
    ])('lets a bug propagate when the verifier %s something else', async (_case, verifySecret) => {
      const { deps: d, publish } = deps({ verifySecret });
      await expect(receiveWebhook(request(), d, deadline)).rejects.toThrow(new TypeError('verifier bug'));
      expect(publish).not.toHaveBeenCalled();
    });

    it.each([
      'text/plain',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
      'text/application/json',
    ])('answers 415 for content-type %s, before the size', async (contentType) => {
      const { deps: d, publish } = deps({ maxBodyBytes: 1 });
      const outcome = await receiveWebhook(request({ contentType }), d, deadline);
      expect(outcome).toStrictEqual({
        kind: 'rejected',
        statusCode: 415,
        reason: 'unsupported-media-type',
        message: MESSAGES.unsupportedMediaType,
        instanceId: INSTANCE,
      });
      expect(publish).not.toHaveBeenCalled();
    });

    it('answers 413 above the body limit, before parsing', async () => {
      const { deps: d, publish } = deps({ maxBodyBytes: 5 });
      const outcome = await receiveWebhook(request({ body: '{"x":' }), d, deadline);
      expect(outcome.statusCode).toBe(400);
      const tooBig = await receiveWebhook(request({ body: '{"x":1' }), d, deadline);
      expect(tooBig).toStrictEqual({
        kind: 'rejected',
        statusCode: 413,
        reason: 'payload-too-large',
        message: 'body is 6 bytes; the limit is 5',
        instanceId: INSTANCE,
      });
      expect(publish).not.toHaveBeenCalled();
    });

    it('answers non-finite numbers before the schema, naming only that field', async () => {
      const { deps: d, publish } = deps();
      const raw = '{"type":"nope","status":"TYPING","lastSeen":1e309}';
      const outcome = await receiveWebhook(request({ body: raw }), d, deadline);
      expect(outcome).toStrictEqual({
        kind: 'rejected',
        statusCode: 400,
        reason: 'invalid-body',
        message: 'invalid field(s): lastSeen',
        instanceId: INSTANCE,
        issues: [{ field: 'lastSeen', message: 'must be a finite number' }],
      });
      expect(publish).not.toHaveBeenCalled();
    });

    it('answers schema failures before the instance check', async () => {
      const { deps: d } = deps();
      const outcome = await receiveWebhook(
        request({ body: body({ instanceId: OTHER_INSTANCE, status: 'TYPING' }) }),
        d,
        deadline,
      );
      expect(outcome).toMatchObject({ statusCode: 400, message: 'invalid field(s): status' });
    });
  });

  describe('body size', () => {
    const padded = (bytes: number) => {
      const empty = body({ pad: '' });
      const raw = body({ pad: 'x'.repeat(bytes - Buffer.byteLength(empty, 'utf8')) });
      expect(Buffer.byteLength(raw, 'utf8')).toBe(bytes);
      return raw;
    };

    it('accepts exactly maxBodyBytes and refuses maxBodyBytes + 1', async () => {
      const { deps: d, publish } = deps({ maxBodyBytes: 300 });
      expect((await receiveWebhook(request({ body: padded(300) }), d, deadline)).statusCode).toBe(200);
      const outcome = await receiveWebhook(request({ body: padded(301) }), d, deadline);
      expect(outcome).toStrictEqual({
        kind: 'rejected',
        statusCode: 413,
        reason: 'payload-too-large',
        message: 'body is 301 bytes; the limit is 300',
        instanceId: INSTANCE,
      });
      expect(publish).toHaveBeenCalledOnce();
    });

    it('counts UTF-8 bytes, not characters', async () => {
      const raw = body({ pad: 'ç'.repeat(100) });
      const bytes = Buffer.byteLength(raw, 'utf8');
      expect(raw.length).toBe(bytes - 100);
      const atLimit = deps({ maxBodyBytes: bytes }).deps;
      expect((await receiveWebhook(request({ body: raw }), atLimit, deadline)).statusCode).toBe(200);
      const below = deps({ maxBodyBytes: bytes - 1 }).deps;
      expect(await receiveWebhook(request({ body: raw }), below, deadline)).toMatchObject({
        statusCode: 413,
        message: `body is ${bytes} bytes; the limit is ${bytes - 1}`,
      });
    });

    it('counts decoded bytes of a base64 body: exactly max accepted, max + 1 refused', async () => {
      const { deps: d } = deps({ maxBodyBytes: 300 });
      const atLimit = base64(padded(300));
      expect(atLimit.length).toBeGreaterThan(300);
      expect(
        (await receiveWebhook(request({ body: atLimit, isBase64Encoded: true }), d, deadline)).statusCode,
      ).toBe(200);
      const over = await receiveWebhook(
        request({ body: base64(padded(301)), isBase64Encoded: true }),
        d,
        deadline,
      );
      expect(over).toMatchObject({ statusCode: 413, message: 'body is 301 bytes; the limit is 300' });
    });

    it('accepts a maxBodyBytes of 0 only for an empty body (which is then malformed)', async () => {
      const { deps: d } = deps({ maxBodyBytes: 0 });
      expect(await receiveWebhook(request({ body: '' }), d, deadline)).toMatchObject({
        statusCode: 400,
        reason: 'malformed-json',
      });
      expect(await receiveWebhook(request({ body: ' ' }), d, deadline)).toMatchObject({
        statusCode: 413,
        message: 'body is 1 bytes; the limit is 0',
      });
    });
  });

  describe('body syntax', () => {
    it.each([
      ['malformed JSON', '{"type":', 'malformed-json', 'body is not valid JSON'],
      ['trailing text', `${body()} x`, 'malformed-json', 'body is not valid JSON'],
      ['an empty body', '', 'malformed-json', 'body is empty'],
      ['a blank body', '  \n\t ', 'malformed-json', 'body is empty'],
    ])('answers 400 for %s', async (_case, raw, reason, message) => {
      const { deps: d, publish } = deps();
      const outcome = await receiveWebhook(request({ body: raw }), d, deadline);
      expect(outcome).toStrictEqual({
        kind: 'rejected',
        statusCode: 400,
        reason,
        message,
        instanceId: INSTANCE,
      });
      expect(publish).not.toHaveBeenCalled();
    });

    it('treats a missing body as empty, plain or base64', async () => {
      const { deps: d } = deps();
      for (const isBase64Encoded of [false, true]) {
        expect(
          await receiveWebhook(request({ body: undefined, isBase64Encoded }), d, deadline),
        ).toStrictEqual({
          kind: 'rejected',
          statusCode: 400,
          reason: 'malformed-json',
          message: 'body is empty',
          instanceId: INSTANCE,
        });
      }
    });

    it.each([
      ['an array', '[1,2]'],
      ['an empty array', '[]'],
      ['a string', '"hi"'],
      ['a number', '42'],
      ['true', 'true'],
      ['null', 'null'],
    ])('answers 400 for a body that is %s, not an object', async (_case, raw) => {
      const { deps: d, publish } = deps();
      const outcome = await receiveWebhook(request({ body: raw }), d, deadline);
      expect(outcome).toStrictEqual({
        kind: 'rejected',
        statusCode: 400,
        reason: 'invalid-body',
        message: 'body must be a JSON object',
        instanceId: INSTANCE,
        issues: [{ field: '(body)', message: 'must be a JSON object' }],
      });
      expect(publish).not.toHaveBeenCalled();
    });

    it.each([
      ['lastSeen beyond double range', body().replace('"lastSeen":null', '"lastSeen":1e309'), 'lastSeen'],
      ['lastSeen negative beyond range', body().replace('"lastSeen":null', '"lastSeen":-1e309'), 'lastSeen'],
      [
        'an unknown nested field',
        body({ extra: { deep: [1, 'x'] } }).replace('"x"', '1e400'),
        'extra.deep.1',
      ],
      ['an unknown top-level field', body({ big: 0 }).replace('"big":0', '"big":1E999'), 'big'],
    ])('answers 400 naming the path of %s', async (_case, raw, field) => {
      const { deps: d, publish } = deps();
      const outcome = await receiveWebhook(request({ body: raw }), d, deadline);
      expect(outcome).toStrictEqual({
        kind: 'rejected',
        statusCode: 400,
        reason: 'invalid-body',
        message: `invalid field(s): ${field}`,
        instanceId: INSTANCE,
        issues: [{ field, message: 'must be a finite number' }],
      });
      expect(publish).not.toHaveBeenCalled();
    });

    it.each([
      ['phone', body().replace(/"phone":"[^"]*"/, '"phone":"5544\\ud800"'), 'phone'],
      [
        'phone, a high surrogate before text',
        body().replace(/"phone":"[^"]*"/, '"phone":"\\ud800z"'),
        'phone',
      ],
      [
        'phone, a low surrogate after text',
        body().replace(/"phone":"[^"]*"/, '"phone":"a\\udc00b"'),
        'phone',
      ],
      ['instanceId', body().replace(/"instanceId":"[^"]*"/, '"instanceId":"\\udc00"'), 'instanceId'],
      ['type', body().replace(/"type":"[^"]*"/, '"type":"\\ud800"'), 'type'],
      ['status', body().replace(/"status":"[^"]*"/, '"status":"\\udc00"'), 'status'],
    ])(
      'answers 400 for a documented field that is not well-formed Unicode (%s), naming it',
      async (_case, raw, field) => {
        const { deps: d, publish } = deps();
        const outcome = await receiveWebhook(request({ body: raw }), d, deadline);
        expect(outcome).toStrictEqual({
          kind: 'rejected',
          statusCode: 400,
          reason: 'invalid-body',
          message: `invalid field(s): ${field}`,
          instanceId: INSTANCE,
          issues: [{ field, message: 'must be well-formed Unicode (it holds an unpaired surrogate)' }],
        });
        expect(publish).not.toHaveBeenCalled();
      },
    );

    it('keeps a callback whose other text is not well-formed (a chat name cut inside an emoji): U+FFFD on the bus, in values and keys', async () => {
      const { deps: d, published } = deps();
      const raw = body({ chatName: 'x', extra: { name: 'y' }, k: 1 })
        .replace('"x"', '"Vendas \\ud83d"')
        .replace('"y"', '"\\udc00z"')
        .replace('"k":1', '"\\ud800k":1');
      expect((await receiveWebhook(request({ body: raw }), d, deadline)).statusCode).toBe(200);
      const detail = published[0]?.detail ?? '';
      expect(detail).not.toMatch(/\\ud[89a-f]/i);
      expect(JSON.parse(detail)).toMatchObject({
        chatName: 'Vendas \ufffd',
        extra: { name: '\ufffdz' },
        '\ufffdk': 1,
      });
      // A backslash followed by the text "ud800" is text, not an escape: kept.
      const { deps: d2, published: p2 } = deps();
      const text = body({ chatName: 'x' }).replace('"x"', '"a\\\\ud800"');
      expect((await receiveWebhook(request({ body: text }), d2, deadline)).statusCode).toBe(200);
      expect(JSON.parse(p2[0]?.detail ?? '{}').chatName).toBe('a\\ud800');
    });

    it('accepts a well-formed pair of surrogates (an emoji written as escapes)', async () => {
      const { deps: d, published } = deps();
      const raw = body({ chatName: 'x' }).replace('"x"', '"Vendas \\ud83d\\ude00"');
      expect((await receiveWebhook(request({ body: raw }), d, deadline)).statusCode).toBe(200);
      expect(JSON.parse(published[0]?.detail ?? '{}').chatName).toBe('Vendas 😀');
    });

    it('answers 413 when the canonical event would be over EventBridge’s limit (numbers written out grow it), publishing nothing', async () => {
      // EventBridge's 256 KB entry, less 1 KiB for its other fields.
      expect(MAX_DETAIL_BYTES).toBe(261_120);
      const { deps: d, publish } = deps({ maxBodyBytes: 200_000 });
      const numbers = Array.from({ length: 39_000 }, () => '9e15').join(',');
      const raw = body({ big: 0 }).replace('"big":0', `"big":[${numbers}]`);
      expect(Buffer.byteLength(raw)).toBeLessThan(200_000);
      const outcome = await receiveWebhook(request({ body: raw }), d, deadline);
      expect(outcome).toMatchObject({
        kind: 'rejected',
        statusCode: 413,
        reason: 'payload-too-large',
        message: expect.stringMatching(
          new RegExp(
            `^the event would be \\d+ bytes on the bus; EventBridge takes at most ${MAX_DETAIL_BYTES}$`,
          ),
        ),
      });
      expect(publish).not.toHaveBeenCalled();
      // Just under the limit is published.
      const fits = body({ pad: 'x' }).replace(
        '"x"',
        `"${'a'.repeat(MAX_DETAIL_BYTES - body().length - STAMP.length - 20)}"`,
      );
      const { deps: d2, published } = deps({ maxBodyBytes: 300_000 });
      expect((await receiveWebhook(request({ body: fits }), d2, deadline)).statusCode).toBe(200);
      expect(Buffer.byteLength(published[0]?.detail ?? '')).toBeLessThanOrEqual(MAX_DETAIL_BYTES);
    });

    it('accepts the largest finite numbers', async () => {
      const { deps: d, published } = deps();
      const raw = body({ lastSeen: 0 }).replace('"lastSeen":0', '"lastSeen":1.7976931348623157e308');
      expect((await receiveWebhook(request({ body: raw }), d, deadline)).statusCode).toBe(200);
      expect(published[0]?.detail).toContain('"lastSeen":1.7976931348623157e+308');
    });
  });

  describe('contract', () => {
    it('answers 400 naming every failing field, each once, in the order of the contract', async () => {
      const { deps: d, publish } = deps();
      const outcome = await receiveWebhook(
        request({ body: body({ status: 'TYPING', phone: '', lastSeen: 'x' }) }),
        d,
        deadline,
      );
      expect(outcome).toStrictEqual({
        kind: 'rejected',
        statusCode: 400,
        reason: 'invalid-body',
        message: 'invalid field(s): phone, status, lastSeen',
        instanceId: INSTANCE,
        issues: [
          { field: 'phone', message: 'must not be empty' },
          { field: 'status', message: 'must be one of UNAVAILABLE, AVAILABLE, COMPOSING, RECORDING, PAUSED' },
          { field: 'lastSeen', message: 'must be a number or null' },
        ],
      });
      const response = responseBody(outcome);
      expect(response).toMatchObject({ ok: false, error: 'invalid-body' });
      expect('issues' in response && response.issues?.map((issue) => issue.field)).toEqual([
        'phone',
        'status',
        'lastSeen',
      ]);
      expect(publish).not.toHaveBeenCalled();
    });

    it('answers 400 naming missing fields', async () => {
      const { deps: d } = deps();
      const outcome = await receiveWebhook(request({ body: '{}' }), d, deadline);
      expect(outcome).toMatchObject({
        statusCode: 400,
        reason: 'invalid-body',
        message: 'invalid field(s): type, phone, status, instanceId',
      });
    });

    it('answers 400 when the body names another instance than the URL', async () => {
      const { deps: d, publish } = deps();
      const outcome = await receiveWebhook(
        request({ body: body({ instanceId: OTHER_INSTANCE }) }),
        d,
        deadline,
      );
      expect(outcome).toStrictEqual({
        kind: 'rejected',
        statusCode: 400,
        reason: 'invalid-body',
        message: 'invalid field(s): instanceId',
        instanceId: INSTANCE,
        issues: [{ field: 'instanceId', message: 'must equal the instance in the URL' }],
      });
      expect(publish).not.toHaveBeenCalled();
    });

    it('compares the instance exactly (case and padding count)', async () => {
      const { deps: d } = deps();
      for (const instanceId of [INSTANCE.toLowerCase(), ` ${INSTANCE}`, `${INSTANCE} `]) {
        const outcome = await receiveWebhook(request({ body: body({ instanceId }) }), d, deadline);
        expect(outcome).toMatchObject({ statusCode: 400, message: 'invalid field(s): instanceId' });
      }
    });
  });

  describe('publishing failures', () => {
    it('answers 503 bus-unavailable, with the cause and the time spent, when the bus does not take the event', async () => {
      const ticks = [100, 130];
      const { deps: d } = deps({
        now: () => ticks.shift() ?? Number.NaN,
        publish: async () => {
          throw new DependencyError('bus', 'PutEvents entry failed: ThrottlingException');
        },
      });
      const outcome = await receiveWebhook(request(), d, deadline);
      expect(outcome).toStrictEqual({
        kind: 'failed',
        statusCode: 503,
        reason: 'bus-unavailable',
        message: MESSAGES.busUnavailable,
        cause: 'PutEvents entry failed: ThrottlingException',
        instanceId: INSTANCE,
        publishMs: 30,
      });
      expect(JSON.stringify(responseBody(outcome))).not.toContain('Throttling');
    });

    it('lets a bug (not a dependency failure) in publish propagate to the adapter', async () => {
      const { deps: d } = deps({
        publish: async () => {
          throw new TypeError('bug');
        },
      });
      await expect(receiveWebhook(request(), d, deadline)).rejects.toThrow(new TypeError('bug'));
    });

    it('passes the deadline to publish', async () => {
      const { deps: d, publish } = deps();
      const own = deadlineAt(Date.now() + 1_234);
      await receiveWebhook(request(), d, own);
      expect(publish.mock.calls[0]?.[2]).toBe(own);
    });
  });

  it('never answers 5xx and never publishes for random or mutated bodies (property)', async () => {
    const { deps: d, publish } = deps({ maxBodyBytes: 1_000_000 });
    const valid = fields();
    const mutated = fc
      .record({
        key: fc.constantFrom('type', 'phone', 'status', 'instanceId', 'lastSeen'),
        value: fc.oneof(
          fc.string(),
          fc.integer(),
          fc.constant(null),
          fc.boolean(),
          fc.object(),
          fc.constant(undefined),
        ),
      })
      .filter(({ key, value }) => {
        if (key === 'lastSeen') return !(value === null || value === undefined || typeof value === 'number');
        return true;
      })
      .map(({ key, value }) => JSON.stringify({ ...valid, [key]: value }))
      .filter((text) => {
        // Keep only bodies that really are invalid (a mutation can happen to produce a valid one).
        const parsed = JSON.parse(text) as Record<string, unknown>;
        return !(
          parsed.type === CALLBACK_TYPE &&
          typeof parsed.phone === 'string' &&
          parsed.phone !== '' &&
          (PRESENCE_STATUSES as readonly unknown[]).includes(parsed.status) &&
          parsed.instanceId === INSTANCE
        );
      });
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.string(), fc.json(), mutated), async (raw) => {
        const outcome = await receiveWebhook(request({ body: raw }), d, deadline);
        expect(outcome.statusCode).toBeGreaterThanOrEqual(400);
        expect(outcome.statusCode).toBeLessThan(500);
        expect(outcome.kind).toBe('rejected');
      }),
      { numRuns: 300 },
    );
    expect(publish).not.toHaveBeenCalled();
  });
});
