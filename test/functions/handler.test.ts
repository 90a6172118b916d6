/**
 * The Lambda entry point end to end: API Gateway v2 events through the real handler module, with
 * EventBridge and SSM mocked at the SDK client.
 */
import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { RECEIVER_ENV } from '../../functions/presence-webhook/env.ts';
import { DETAIL_TYPES, EVENT_SOURCE, PRESENCE_STATUSES } from '../../functions/shared/presence-contract.ts';
import docsExamples from '../fixtures/zapi-docs-examples.json' with { type: 'json' };

const SECRET = 'handler-test-secret-0123456789';
const INSTANCE = 'INSTANCEA';
const eventBridge = mockClient(EventBridgeClient);
const ssm = mockClient(SSMClient);

type Handler = (
  event: Partial<APIGatewayProxyEventV2>,
  context?: { getRemainingTimeInMillis(): number },
) => Promise<APIGatewayProxyStructuredResultV2>;

async function loadHandler(): Promise<Handler> {
  vi.resetModules();
  const module = await import('../../functions/presence-webhook/handler.ts');
  return module.handler as Handler;
}

function event(
  patch: Partial<APIGatewayProxyEventV2> = {},
  bodyPatch: Record<string, unknown> = {},
): Partial<APIGatewayProxyEventV2> {
  return {
    version: '2.0',
    routeKey: 'POST /instances/{instanceId}/presence',
    rawPath: `/instances/${INSTANCE}/presence`,
    rawQueryString: `secret=${SECRET}`,
    pathParameters: { instanceId: INSTANCE },
    queryStringParameters: { secret: SECRET },
    headers: { 'content-type': 'application/json' },
    requestContext: { requestId: 'req-1' } as APIGatewayProxyEventV2['requestContext'],
    body: JSON.stringify({ ...docsExamples.COMPOSING, instanceId: INSTANCE, ...bodyPatch }),
    isBase64Encoded: false,
    ...patch,
  };
}

const parse = (result: APIGatewayProxyStructuredResultV2) =>
  JSON.parse(String(result.body)) as Record<string, unknown>;

describe('receiver Lambda handler', () => {
  let logs: string[];

  beforeEach(() => {
    eventBridge.reset();
    ssm.reset();
    ssm
      .on(GetParameterCommand, { Name: '/zapi/webhook-secret', WithDecryption: true })
      .resolves({ Parameter: { Value: SECRET } });
    eventBridge.on(PutEventsCommand).resolves({ FailedEntryCount: 0, Entries: [{ EventId: 'evt-1' }] });
    vi.stubEnv(RECEIVER_ENV.eventBusName, 'presence-bus');
    vi.stubEnv(RECEIVER_ENV.instanceIds, `${INSTANCE},INSTANCEB`);
    vi.stubEnv(RECEIVER_ENV.secretParameterName, '/zapi/webhook-secret');
    vi.stubEnv(RECEIVER_ENV.maxBodyBytes, '2048');
    vi.stubEnv('AWS_REGION', 'sa-east-1');
    logs = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      logs.push(String(chunk));
      return true;
    });
    for (const level of ['log', 'info', 'warn', 'error', 'debug'] as const) {
      vi.spyOn(console, level).mockImplementation((...args: unknown[]) => {
        logs.push(JSON.stringify(args));
      });
    }
  });

  afterEach(() => {
    vi.unstubAllEnvs();
    expect(logs.join('\n')).not.toContain(SECRET);
  });

  it.each(PRESENCE_STATUSES)(
    'publishes a %s callback to the bus with its detail-type and answers 200',
    async (status) => {
      const handler = await loadHandler();
      const body = JSON.stringify({ ...docsExamples[status], instanceId: INSTANCE, isGroup: false });
      const result = await handler(event({ body }));
      expect(result.statusCode).toBe(200);
      expect(parse(result)).toEqual({ ok: true, eventId: 'evt-1' });
      const calls = eventBridge.commandCalls(PutEventsCommand);
      expect(calls).toHaveLength(1);
      expect(calls[0]?.args[0].input.Entries).toEqual([
        {
          EventBusName: 'presence-bus',
          Source: EVENT_SOURCE,
          DetailType: DETAIL_TYPES[status],
          Detail: body,
        },
      ]);
    },
  );

  it('reads the secret once across invocations', async () => {
    const handler = await loadHandler();
    for (let i = 0; i < 5; i++) expect((await handler(event())).statusCode).toBe(200);
    expect(ssm.commandCalls(GetParameterCommand)).toHaveLength(1);
  });

  it('logs one small EMF line per accepted webhook, without body, path or query', async () => {
    const handler = await loadHandler();
    await handler(event());
    expect(logs).toHaveLength(1);
    const line = JSON.parse(logs[0] ?? '') as Record<string, unknown>;
    expect(line).toMatchObject({ Status: 'COMPOSING', Accepted: 1, requestId: 'req-1' });
    expect(logs[0]).not.toContain('5544999999999');
    expect(logs[0]).not.toContain('/instances/');
    expect(Buffer.byteLength(logs[0] ?? '')).toBeLessThan(300);
  });

  it('emits metrics under the configured namespace', async () => {
    vi.stubEnv(RECEIVER_ENV.metricsNamespace, 'Team/Presence');
    const handler = await loadHandler();
    await handler(event({ queryStringParameters: { secret: 'wrong' } }));
    const line = JSON.parse(logs[0] ?? '') as {
      _aws: { CloudWatchMetrics: Array<{ Namespace: string }> };
      Reason: string;
    };
    expect(line._aws.CloudWatchMetrics[0]?.Namespace).toBe('Team/Presence');
    expect(line.Reason).toBe('unauthorized');
  });

  it.each([
    ['a missing secret', event({ queryStringParameters: {} }), 401, 'unauthorized'],
    ['a wrong secret', event({ queryStringParameters: { secret: 'nope' } }), 401, 'unauthorized'],
    [
      'an unknown instance',
      event({ pathParameters: { instanceId: 'OTHER' } }, { instanceId: 'OTHER' }),
      404,
      'unknown-instance',
    ],
    [
      'a non-JSON content type',
      event({ headers: { 'content-type': 'text/plain' } }),
      415,
      'unsupported-media-type',
    ],
    ['a body over the limit', event({}, { pad: 'x'.repeat(3000) }), 413, 'payload-too-large'],
    ['malformed JSON', event({ body: '{"type": "PresenceChatCallback",' }), 400, 'malformed-json'],
    ['a schema failure', event({}, { status: 'TYPING' }), 400, 'invalid-body'],
  ])('answers %s with %i and publishes nothing', async (_case, ev, code, error) => {
    const handler = await loadHandler();
    const result = await handler(ev);
    expect(result.statusCode).toBe(code);
    expect(parse(result)).toMatchObject({ ok: false, error });
    expect(result.headers).toEqual({ 'content-type': 'application/json' });
    expect(eventBridge.commandCalls(PutEventsCommand)).toHaveLength(0);
  });

  it('names the failing fields in a 400', async () => {
    const handler = await loadHandler();
    const result = await handler(event({}, { status: 'TYPING', phone: '' }));
    expect(parse(result)).toEqual({
      ok: false,
      error: 'invalid-body',
      message: 'invalid field(s): phone, status',
      issues: [
        { field: 'phone', message: 'must not be empty' },
        { field: 'status', message: 'must be one of UNAVAILABLE, AVAILABLE, COMPOSING, RECORDING, PAUSED' },
      ],
    });
  });

  it('decodes a base64-encoded body', async () => {
    const handler = await loadHandler();
    const body = JSON.stringify({ ...docsExamples.PAUSED, instanceId: INSTANCE });
    const result = await handler(
      event({ body: Buffer.from(body).toString('base64'), isBase64Encoded: true }),
    );
    expect(result.statusCode).toBe(200);
    expect(eventBridge.commandCalls(PutEventsCommand)[0]?.args[0].input.Entries?.[0]?.Detail).toBe(body);
  });

  it('answers 503 when EventBridge keeps failing the entry', async () => {
    eventBridge
      .on(PutEventsCommand)
      .resolves({ FailedEntryCount: 1, Entries: [{ ErrorCode: 'ThrottlingException' }] });
    const handler = await loadHandler();
    const result = await handler(event());
    expect(result.statusCode).toBe(503);
    expect(parse(result)).toEqual({
      ok: false,
      error: 'bus-unavailable',
      message: 'the event bus did not accept the event; retry later',
    });
    expect(eventBridge.commandCalls(PutEventsCommand)).toHaveLength(3);
  });

  it('answers 503 when EventBridge cannot be reached', async () => {
    eventBridge
      .on(PutEventsCommand)
      .rejects(Object.assign(new Error('connect ECONNREFUSED'), { name: 'Error' }));
    const handler = await loadHandler();
    expect((await handler(event())).statusCode).toBe(503);
  });

  it('answers 503 (not 401) when the secret parameter cannot be read', async () => {
    ssm.reset();
    ssm.on(GetParameterCommand).rejects(Object.assign(new Error('not found'), { name: 'ParameterNotFound' }));
    const handler = await loadHandler();
    const result = await handler(event());
    expect(result.statusCode).toBe(503);
    expect(parse(result)).toMatchObject({ error: 'secret-unavailable' });
  });

  it('tolerates null maps from API Gateway', async () => {
    const handler = await loadHandler();
    const result = await handler(
      event({
        pathParameters: null as never,
        queryStringParameters: { secret: SECRET },
        body: undefined,
        headers: null as never,
      }),
    );
    expect(result.statusCode).toBe(404);
  });

  it('answers 500 without internals for an unexpected error, counting it as InternalErrors', async () => {
    const { createApiGatewayHandler } = await import('../../functions/presence-webhook/adapter.ts');
    const { createInternalErrorLogger } = await import('../../functions/presence-webhook/metrics.ts');
    const lines: string[] = [];
    const handle = createApiGatewayHandler(
      {
        instanceIds: new Set([INSTANCE]),
        maxBodyBytes: 2048,
        verifySecret: async () => true,
        publish: async () => {
          throw new TypeError('Cannot read properties of undefined (reading x) at /var/task/index.mjs:1:2');
        },
      },
      () => {},
      createInternalErrorLogger('ZapiPresence', (line) => lines.push(line)),
    );
    const result = await handle(event());
    expect(result.statusCode).toBe(500);
    expect(parse(result)).toEqual({ ok: false, error: 'internal', message: 'internal error' });
    expect(JSON.parse(lines[0] ?? '')).toMatchObject({
      InternalErrors: 1,
      error: 'TypeError',
      requestId: 'req-1',
    });
    expect(lines[0]).not.toContain('/var/task');
  });

  it('stops retrying and answers 503 before the Lambda timeout', async () => {
    eventBridge
      .on(PutEventsCommand)
      .resolves({ FailedEntryCount: 1, Entries: [{ ErrorCode: 'ThrottlingException' }] });
    const handler = await loadHandler();
    let left = 5_500;
    const result = await handler(event(), {
      getRemainingTimeInMillis: () => {
        left -= 400;
        return left;
      },
    });
    expect(result.statusCode).toBe(503);
    // First call made with 5.1 s left (so with an abort signal); no retry started with under 5.5 s left.
    expect(eventBridge.commandCalls(PutEventsCommand)).toHaveLength(1);
    const [call] = eventBridge.commandCalls(PutEventsCommand);
    expect(call && (call.args as unknown[])[1]).toEqual({ abortSignal: expect.any(AbortSignal) });
  });

  it('refuses to start without its configuration', async () => {
    vi.stubEnv(RECEIVER_ENV.instanceIds, '');
    await expect(loadHandler()).rejects.toThrow(
      `environment variable ${RECEIVER_ENV.instanceIds} is required`,
    );
  });
});
