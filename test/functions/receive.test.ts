import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import {
  DependencyError,
  isJsonContentType,
  type ReceiveDeps,
  receiveWebhook,
  responseBody,
  type WebhookRequest,
} from '../../functions/presence-webhook/receive.ts';
import { CALLBACK_TYPE, PRESENCE_STATUSES } from '../../functions/shared/presence-contract.ts';

const SECRET = 'correct-horse-battery-staple';
const INSTANCE = 'INSTANCE1';

function deps(overrides: Partial<ReceiveDeps> = {}) {
  const published: Array<{ status: string; detail: string }> = [];
  const base: ReceiveDeps = {
    instanceIds: new Set([INSTANCE, 'INSTANCE2']),
    maxBodyBytes: 1024,
    verifySecret: async (candidate) => candidate === SECRET,
    publish: async (status, detail) => {
      published.push({ status, detail });
      return { eventId: `event-${published.length}` };
    },
  };
  return { deps: { ...base, ...overrides }, published };
}

const body = (patch: Record<string, unknown> = {}) =>
  JSON.stringify({
    type: CALLBACK_TYPE,
    phone: '5544999999999',
    status: 'COMPOSING',
    lastSeen: null,
    instanceId: INSTANCE,
    ...patch,
  });

const request = (patch: Partial<WebhookRequest> = {}): WebhookRequest => ({
  instanceId: INSTANCE,
  secret: SECRET,
  contentType: 'application/json',
  body: body(),
  isBase64Encoded: false,
  ...patch,
});

describe('receiveWebhook', () => {
  it.each(PRESENCE_STATUSES)('publishes %s exactly as received and answers 200', async (status) => {
    const { deps: d, published } = deps();
    const raw = body({ status, extra: { nested: [1, 2] } });
    const outcome = await receiveWebhook(request({ body: raw }), d);
    expect(outcome).toMatchObject({
      kind: 'accepted',
      statusCode: 200,
      status,
      instanceId: INSTANCE,
      eventId: 'event-1',
    });
    expect(published).toEqual([{ status, detail: raw }]);
    expect(responseBody(outcome)).toEqual({ ok: true, eventId: 'event-1' });
  });

  it('decodes base64 bodies', async () => {
    const { deps: d, published } = deps();
    const raw = body({ chatName: 'Ação ✓' });
    const outcome = await receiveWebhook(
      request({ body: Buffer.from(raw).toString('base64'), isBase64Encoded: true }),
      d,
    );
    expect(outcome.statusCode).toBe(200);
    expect(published[0]?.detail).toBe(raw);
  });

  it.each([
    ['missing', undefined],
    ['empty', ''],
    ['wrong', 'not-the-secret'],
  ])('answers 401 for a %s secret and publishes nothing', async (_case, secret) => {
    const { deps: d, published } = deps();
    const outcome = await receiveWebhook(request({ secret }), d);
    expect(outcome).toMatchObject({ statusCode: 401, reason: 'unauthorized' });
    expect(published).toEqual([]);
  });

  it('checks the secret before looking at the instance or the body', async () => {
    const { deps: d } = deps();
    const outcome = await receiveWebhook(request({ secret: 'wrong', instanceId: 'NOPE', body: '{' }), d);
    expect(outcome.statusCode).toBe(401);
  });

  it('answers 404 for an instance that is not configured', async () => {
    const { deps: d, published } = deps();
    const outcome = await receiveWebhook(
      request({ instanceId: 'OTHER', body: body({ instanceId: 'OTHER' }) }),
      d,
    );
    expect(outcome).toMatchObject({ statusCode: 404, reason: 'unknown-instance' });
    expect(published).toEqual([]);
  });

  it.each(['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x'])(
    'answers 415 for content-type %s',
    async (contentType) => {
      const { deps: d, published } = deps();
      const outcome = await receiveWebhook(request({ contentType }), d);
      expect(outcome).toMatchObject({ statusCode: 415, reason: 'unsupported-media-type' });
      expect(published).toEqual([]);
    },
  );

  it.each([
    ['application/json', true],
    ['Application/JSON; charset=utf-8', true],
    ['application/vnd.api+json', true],
    [undefined, true],
    ['text/json', false],
    ['application/jsonp', false],
  ])('treats content-type %s as JSON: %s', (contentType, expected) => {
    expect(isJsonContentType(contentType)).toBe(expected);
  });

  it('answers 413 above the body limit, counting decoded bytes', async () => {
    const { deps: d, published } = deps({ maxBodyBytes: 200 });
    const raw = body({ pad: 'x'.repeat(200) });
    expect((await receiveWebhook(request({ body: raw }), d)).statusCode).toBe(413);
    const encoded = Buffer.from(raw).toString('base64');
    expect((await receiveWebhook(request({ body: encoded, isBase64Encoded: true }), d)).statusCode).toBe(413);
    expect(published).toEqual([]);
  });

  it.each([
    ['malformed JSON', '{"type":', 'malformed-json', 'body is not valid JSON'],
    ['an empty body', '', 'malformed-json', 'body is empty'],
    ['a JSON array', '[1,2]', 'invalid-body', 'body must be a JSON object'],
    ['a JSON string', '"hi"', 'invalid-body', 'body must be a JSON object'],
  ])('answers 400 for %s', async (_case, raw, reason, message) => {
    const { deps: d, published } = deps();
    const outcome = await receiveWebhook(request({ body: raw }), d);
    expect(outcome).toMatchObject({ statusCode: 400, reason, message });
    expect(published).toEqual([]);
  });

  it('answers 400 naming every failing field', async () => {
    const { deps: d, published } = deps();
    const outcome = await receiveWebhook(
      request({ body: body({ status: 'TYPING', phone: '', lastSeen: 'x' }) }),
      d,
    );
    expect(outcome).toMatchObject({ statusCode: 400, reason: 'invalid-body' });
    const response = responseBody(outcome);
    expect(response).toMatchObject({ ok: false, error: 'invalid-body' });
    const fields = 'issues' in response ? response.issues?.map((issue) => issue.field) : [];
    expect(fields).toEqual(expect.arrayContaining(['status', 'phone', 'lastSeen']));
    expect(outcome.kind === 'rejected' && outcome.message).toBe('invalid field(s): phone, status, lastSeen');
    expect(published).toEqual([]);
  });

  it('answers 400 when the body names another instance than the URL', async () => {
    const { deps: d, published } = deps();
    const outcome = await receiveWebhook(request({ body: body({ instanceId: 'INSTANCE2' }) }), d);
    expect(outcome).toMatchObject({
      statusCode: 400,
      issues: [{ field: 'instanceId', message: 'must equal the instance in the URL' }],
    });
    expect(published).toEqual([]);
  });

  it('answers 503 when the secret cannot be read', async () => {
    const { deps: d, published } = deps({
      verifySecret: async () => {
        throw new DependencyError('secret', 'ssm down');
      },
    });
    const outcome = await receiveWebhook(request(), d);
    expect(outcome).toMatchObject({ statusCode: 503, reason: 'secret-unavailable' });
    expect(published).toEqual([]);
  });

  it('answers 503 when the bus does not take the event', async () => {
    const { deps: d } = deps({
      publish: async () => {
        throw new DependencyError('bus', 'PutEvents entry failed: ThrottlingException');
      },
    });
    const outcome = await receiveWebhook(request(), d);
    expect(outcome).toMatchObject({ statusCode: 503, reason: 'bus-unavailable' });
    expect(JSON.stringify(responseBody(outcome))).not.toContain('Throttling');
  });

  it('lets a bug (not a dependency failure) propagate to the adapter', async () => {
    const { deps: d } = deps({
      publish: async () => {
        throw new TypeError('bug');
      },
    });
    await expect(receiveWebhook(request(), d)).rejects.toThrow('bug');
  });

  it('never answers 5xx and never publishes for random or mutated bodies (property)', async () => {
    const publish = vi.fn(async () => ({ eventId: 'e' }));
    const d = deps({ publish }).deps;
    const valid = JSON.parse(body()) as Record<string, unknown>;
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
        const outcome = await receiveWebhook(request({ body: raw }), d);
        expect(outcome.statusCode).toBeGreaterThanOrEqual(400);
        expect(outcome.statusCode).toBeLessThan(500);
      }),
      { numRuns: 300 },
    );
    expect(publish).not.toHaveBeenCalled();
  });
});
