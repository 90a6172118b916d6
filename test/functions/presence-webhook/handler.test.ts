/**
 * The receiver's Lambda entry point end to end: API Gateway v2 events through the real handler module
 * and the real SDK, against SSM and EventBridge stand-ins on 127.0.0.1 that can hang, stall, trickle or
 * reset. Whatever a dependency does, the answer (a counted 503) comes before the function's timeout.
 */
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { RECEIVER_ENV } from '../../../functions/presence-webhook/env.ts';
import { METRIC_NAMES } from '../../../functions/presence-webhook/metrics.ts';
import {
  canonicalDetail,
  DETAIL_TYPES,
  EVENT_SOURCE,
  PRESENCE_STATUSES,
  stampedDetail,
} from '../../../functions/shared/contract/presence-contract.ts';
import { deriveInstanceSecret } from '../../../functions/shared/secrets/webhook-secret.ts';
import docsExamples from '../../fixtures/zapi-docs-examples.json' with { type: 'json' };
import {
  type AwsStandIn,
  type Misbehaviour,
  standInEnvironment,
  startAwsStandIn,
} from '../../support/aws-standin.ts';

const MASTER = 'handler-test-master-0123456789abcdefghij';
const PARAMETER = '/zapi/webhook-secret';
const INSTANCE = 'INSTANCEA';
const SECRET = deriveInstanceSecret(MASTER, INSTANCE);

type Handler = (
  event: Partial<APIGatewayProxyEventV2>,
  context?: { getRemainingTimeInMillis(): number },
) => Promise<APIGatewayProxyStructuredResultV2>;

let standIn: AwsStandIn;

async function loadHandler(env: Record<string, string> = {}): Promise<Handler> {
  for (const [key, value] of Object.entries({
    ...standInEnvironment(standIn.url),
    [RECEIVER_ENV.eventBusName]: 'presence-bus',
    [RECEIVER_ENV.secretParameterName]: PARAMETER,
    [RECEIVER_ENV.maxBodyBytes]: '2048',
    ...env,
  }))
    vi.stubEnv(key, value);
  vi.resetModules();
  return (await import('../../../functions/presence-webhook/handler.ts')).handler as Handler;
}

/** A Lambda-like context whose deadline is `timeoutMs` away. */
const lambdaContext = (timeoutMs: number) => {
  const deadline = Date.now() + timeoutMs;
  return { getRemainingTimeInMillis: () => deadline - Date.now() };
};

/** API Gateway's request time of the test events (epoch ms). */
const RECEIVED_AT = 1_764_072_000_456;

function event(
  patch: Partial<APIGatewayProxyEventV2> = {},
  bodyPatch: Record<string, unknown> = {},
): Partial<APIGatewayProxyEventV2> {
  return {
    version: '2.0',
    routeKey: 'POST /instances/{instanceId}/presence',
    pathParameters: { instanceId: INSTANCE },
    queryStringParameters: { secret: SECRET },
    headers: { 'content-type': 'application/json' },
    requestContext: {
      requestId: 'req-1',
      timeEpoch: RECEIVED_AT,
    } as APIGatewayProxyEventV2['requestContext'],
    body: JSON.stringify({ ...docsExamples.COMPOSING, instanceId: INSTANCE, ...bodyPatch }),
    isBase64Encoded: false,
    ...patch,
  };
}

const parse = (result: APIGatewayProxyStructuredResultV2) =>
  JSON.parse(String(result.body)) as Record<string, unknown>;

describe('receiver Lambda handler', () => {
  let logs: string[];

  beforeAll(async () => {
    standIn = await startAwsStandIn({ [PARAMETER]: MASTER });
  });
  afterAll(async () => {
    await standIn.close();
  });

  beforeEach(() => {
    standIn.misbehave.clear();
    standIn.misbehaveParameters.clear();
    standIn.events.length = 0;
    standIn.calls.length = 0;
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
    const all = logs.join('\n');
    expect(all).not.toContain(MASTER);
    expect(all).not.toContain(SECRET);
  });

  it.each(PRESENCE_STATUSES)(
    'publishes a %s callback, exactly as validated, with its detail-type and answers 200',
    async (status) => {
      const handler = await loadHandler();
      const callback = { ...docsExamples[status], instanceId: INSTANCE, isGroup: false };
      const result = await handler(event({ body: JSON.stringify(callback) }), lambdaContext(10_000));
      expect(result.statusCode).toBe(200);
      expect(parse(result)).toEqual({ ok: true, eventId: expect.any(String) });
      expect(standIn.events).toEqual([
        {
          EventBusName: 'presence-bus',
          Source: EVENT_SOURCE,
          DetailType: DETAIL_TYPES[status],
          // Stamped with API Gateway's request time.
          Detail: canonicalDetail(stampedDetail(callback as never, RECEIVED_AT)),
        },
      ]);
    },
  );

  it("accepts every instance's own derived secret, with no instance list and one SSM read", async () => {
    const handler = await loadHandler();
    for (const id of ['A1', 'B2', 'C3', INSTANCE]) {
      const result = await handler(
        event(
          {
            pathParameters: { instanceId: id },
            queryStringParameters: { secret: deriveInstanceSecret(MASTER, id) },
          },
          { instanceId: id },
        ),
        lambdaContext(10_000),
      );
      expect(result.statusCode).toBe(200);
    }
    expect(standIn.calls.filter((c) => c.startsWith('AmazonSSM'))).toHaveLength(1);
  });

  it("refuses A's secret for B, and the master itself, with 401", async () => {
    const handler = await loadHandler();
    const forB = await handler(
      event({ pathParameters: { instanceId: 'INSTANCEB' } }, { instanceId: 'INSTANCEB' }),
      lambdaContext(10_000),
    );
    expect(forB.statusCode).toBe(401);
    const master = await handler(event({ queryStringParameters: { secret: MASTER } }), lambdaContext(10_000));
    expect(master.statusCode).toBe(401);
    expect(standIn.events).toHaveLength(0);
  });

  it('logs one small line per accepted webhook, a metric only with detailed metrics, without body, path or query', async () => {
    const plain = await loadHandler({ [RECEIVER_ENV.metricsNamespace]: 'Custom/NS' });
    await plain(event(), lambdaContext(10_000));
    expect(logs.filter((l) => l.includes('"_aws"'))).toEqual([]);
    const accepted = logs.filter((l) => l.includes(`"${METRIC_NAMES.accepted}":1`));
    expect(accepted).toHaveLength(1);
    expect(JSON.parse(accepted[0] ?? '')).toMatchObject({ Status: 'COMPOSING', requestId: 'req-1' });
    logs.length = 0;
    const handler = await loadHandler({
      [RECEIVER_ENV.metricsNamespace]: 'Custom/NS',
      [RECEIVER_ENV.detailedMetrics]: 'true',
    });
    await handler(event(), lambdaContext(10_000));
    const lines = logs.filter((l) => l.includes('"_aws"'));
    expect(lines).toHaveLength(1);
    const record = JSON.parse(lines[0] ?? '') as Record<string, unknown>;
    expect(record).toMatchObject({ Status: 'COMPOSING', [METRIC_NAMES.accepted]: 1, requestId: 'req-1' });
    expect(JSON.stringify(record)).toContain('Custom/NS');
    expect(Buffer.byteLength(lines[0] ?? '')).toBeLessThan(300);
    expect(lines[0]).not.toContain('5544999999999');
  });

  it('answers 503 and counts it when EventBridge keeps failing the entry', async () => {
    standIn.failNextEntries('ThrottlingException', 'ThrottlingException', 'ThrottlingException');
    const handler = await loadHandler();
    const result = await handler(event(), lambdaContext(10_000));
    expect(result.statusCode).toBe(503);
    expect(parse(result)).toEqual({
      ok: false,
      error: 'bus-unavailable',
      message: 'the event bus did not accept the event; retry later',
    });
    expect(standIn.calls.filter((c) => c === 'AWSEvents.PutEvents')).toHaveLength(3);
    expect(logs.join('\n')).toContain(`"${METRIC_NAMES.publishFailures}":1`);
  });

  it('answers 503 naming the parameter in the log (not 401) when the master is missing or invalid', async () => {
    const handler = await loadHandler({ [RECEIVER_ENV.secretParameterName]: '/zapi/missing' });
    const result = await handler(event(), lambdaContext(10_000));
    expect(result.statusCode).toBe(503);
    expect(parse(result)).toMatchObject({ error: 'secret-unavailable' });
    const log = logs.join('\n');
    expect(log).toContain(`"${METRIC_NAMES.secretFailures}":1`);
    expect(log).toContain('/zapi/missing');
  });

  // Every way a dependency can fail to answer: each must end in a counted 503 before the timeout.
  const FUNCTION_TIMEOUT_MS = 3_000;
  const modes: Misbehaviour[] = ['hang', 'stall', 'trickle', 'reset'];
  it.each(modes.flatMap((how) => [['PutEvents', how] as const, ['GetParameter', how] as const]))(
    '%s that does "%s": a counted 503 before the function times out',
    async (operation, how) => {
      standIn.trickleEveryMs = 100;
      const target = operation === 'PutEvents' ? 'AWSEvents.PutEvents' : 'AmazonSSM.GetParameter';
      standIn.misbehave.set(target, how);
      const handler = await loadHandler({ [RECEIVER_ENV.sdkAttemptTimeoutMs]: '30000' });
      const started = Date.now();
      const result = await handler(event(), lambdaContext(FUNCTION_TIMEOUT_MS));
      expect(Date.now() - started).toBeLessThan(FUNCTION_TIMEOUT_MS);
      expect(result.statusCode).toBe(503);
      const metric = operation === 'PutEvents' ? METRIC_NAMES.publishFailures : METRIC_NAMES.secretFailures;
      expect(logs.join('\n')).toContain(`"${metric}":1`);
      expect(standIn.events).toHaveLength(0);
    },
  );

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
    const { createApiGatewayHandler } = await import('../../../functions/presence-webhook/adapter.ts');
    const { createInternalErrorLogger } = await import('../../../functions/presence-webhook/metrics.ts');
    const lines: string[] = [];
    const handle = createApiGatewayHandler(
      {
        maxBodyBytes: 2048,
        verifySecret: () => true,
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
      [METRIC_NAMES.internalErrors]: 1,
      error: 'TypeError',
      requestId: 'req-1',
    });
    expect(lines[0]).not.toContain('/var/task');
  });

  it.each([RECEIVER_ENV.eventBusName, RECEIVER_ENV.secretParameterName])(
    'refuses to start without %s',
    async (name) => {
      await expect(loadHandler({ [name]: '' })).rejects.toThrow(`environment variable ${name} is required`);
    },
  );

  it('refuses to start with a setting that is not a whole number', async () => {
    await expect(loadHandler({ [RECEIVER_ENV.sdkMaxAttempts]: 'two' })).rejects.toThrow(
      RECEIVER_ENV.sdkMaxAttempts,
    );
  });
});
