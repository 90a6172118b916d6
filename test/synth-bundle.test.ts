/**
 * The one test that synthesizes for real (esbuild bundling, CloudFormation validation, cdk-nag) and runs
 * the shipped receiver bundle from the cloud assembly, in a fresh Node process, against stand-ins for
 * SSM and EventBridge on 127.0.0.1 (reached through AWS_ENDPOINT_URL_*, so the real SDK path runs).
 */
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  CANARY_EVENT_SOURCE,
  CANARY_INSTANCE_ID,
  canonicalDetail,
  DETAIL_TYPES,
  EVENT_SOURCE,
  stampedDetail,
} from '../functions/shared/contract/presence-contract.ts';
import { deriveInstanceSecret, instanceWebhookUrl } from '../functions/shared/secrets/webhook-secret.ts';
import docsExamples from './fixtures/zapi-docs-examples.json' with { type: 'json' };
import { type ApiStandIn, startApiStandIn } from './support/api-standin.ts';
import { type AwsStandIn, standInEnvironment, startAwsStandIn } from './support/aws-standin.ts';
import { bundleDirectory } from './support/bundle.ts';
import { invokeBundle } from './support/invoke.ts';
import { synth } from './support/synth.ts';
import { startZapiStandIn } from './support/zapi-standin.ts';

const MASTER = 'bundle-test-master-0123456789abcdefghij';
const INSTANCE = 'TEST';
const SECRET = deriveInstanceSecret(MASTER, INSTANCE);
const BASE = 'https://abc.execute-api.sa-east-1.amazonaws.com';
const RECEIVED_AT = 1_764_072_000_789;

describe('synthesized app', () => {
  let standIn: AwsStandIn;
  let bundleFile: string;
  let registerBundleFile: string;
  let reconcileBundleFile: string;
  let canaryBundleFile: string;
  let arrivalBundleFile: string;
  let busName: string;
  let report: ReturnType<typeof synth>['report'];

  beforeAll(async () => {
    process.env.CDK_VALIDATION = 'true';
    const result = synth({ instanceId: INSTANCE }, { bundle: true });
    delete process.env.CDK_VALIDATION;
    report = result.report;
    const bundle = (prefix: string) =>
      join(bundleDirectory(result.template, result.assembly.directory, prefix), 'index.mjs');
    bundleFile = bundle('PresenceReceiver');
    registerBundleFile = bundle('FleetRegistrar');
    reconcileBundleFile = bundle('FleetReconciler');
    canaryBundleFile = bundle('CanaryFunction');
    arrivalBundleFile = bundle('CanaryArrival');
    busName = 'presence-bus-under-test';
    standIn = await startAwsStandIn({ '/zapi/webhook-secret': MASTER });
  }, 120_000);

  afterAll(async () => {
    await standIn?.close();
  });

  it('is clean under cdk-nag', () => {
    for (const plugin of report.pluginReports) expect(plugin.violations, plugin.pluginName).toEqual([]);
  });

  const receiverEnv = (url: string) => ({
    ...standInEnvironment(url),
    EVENT_BUS_NAME: busName,
    WEBHOOK_SECRET_PARAMETER: '/zapi/webhook-secret',
  });

  it('ships a receiver bundle that authenticates per instance, validates and publishes what it validated', async () => {
    const callback = { ...docsExamples.RECORDING, instanceId: INSTANCE };
    const event = (secret: string, raw: string, instanceId = INSTANCE) => ({
      version: '2.0',
      routeKey: 'POST /instances/{instanceId}/presence',
      pathParameters: { instanceId },
      queryStringParameters: { secret },
      headers: { 'content-type': 'application/json' },
      requestContext: { requestId: 'r', timeEpoch: RECEIVED_AT },
      body: raw,
      isBase64Encoded: false,
    });
    // Duplicate keys: the last one (the one validated) is the only one published.
    const duplicated = `{"instanceId":"OTHER",${JSON.stringify(callback).slice(1)}`;
    const { results, stdout, stderr } = await invokeBundle(
      bundleFile,
      [
        event(SECRET, JSON.stringify(callback)),
        event('wrong', JSON.stringify(callback)),
        event(MASTER, JSON.stringify(callback)),
        event(SECRET, JSON.stringify(callback), 'OTHER'),
        event(SECRET, '{"type":"PresenceChatCallback"}'),
        event(
          SECRET,
          JSON.stringify({ ...callback, lastSeen: 1 }).replace('"lastSeen":1', '"lastSeen":1e309'),
        ),
        event(SECRET, duplicated),
      ],
      receiverEnv(standIn.url),
    );
    expect(results.map((r) => (r as { statusCode: number }).statusCode)).toEqual([
      200, 401, 401, 401, 400, 400, 200,
    ]);
    const published = {
      EventBusName: busName,
      Source: EVENT_SOURCE,
      DetailType: DETAIL_TYPES.RECORDING,
      // Stamped with API Gateway's request time.
      Detail: canonicalDetail(stampedDetail(callback as never, RECEIVED_AT)),
    };
    expect(standIn.events).toEqual([published, published]);
    expect(standIn.calls.filter((c) => c.startsWith('AmazonSSM.GetParameter'))).toHaveLength(1);
    expect(`${stdout}${stderr}`).not.toContain(SECRET);
    expect(`${stdout}${stderr}`).not.toContain(MASTER);
  }, 60_000);

  describe('the shipped canary against the shipped receiver behind an HTTP API stand-in', () => {
    let api: ApiStandIn;
    let bus: AwsStandIn;
    const canaryEnv = (secretParameter = '/zapi/webhook-secret') => ({
      ...standInEnvironment(bus.url),
      // Any base URL works, with or without a trailing slash.
      WEBHOOK_BASE_URL: `${api.url}/`,
      WEBHOOK_SECRET_PARAMETER: secretParameter,
      METRICS_NAMESPACE: 'CanaryTest',
      CANARY_API_ID: 'api123',
      CANARY_REQUEST_TIMEOUT_MS: '1500',
    });

    beforeAll(async () => {
      bus = await startAwsStandIn({
        '/zapi/webhook-secret': MASTER,
        '/zapi/other-master': 'another-master-0123456789abcdefghijkl',
      });
      api = await startApiStandIn(bundleFile, { ...receiverEnv(bus.url) });
    }, 30_000);

    afterAll(async () => {
      await api?.close();
      await bus?.close();
    });

    beforeEach(async () => {
      bus.events.length = 0;
      bus.misbehave.clear();
      await api.setMode('normal');
    });

    it('publishes exactly one event, under the canary source, that the arrival bundle times', async () => {
      const { results, stdout, stderr } = await invokeBundle(canaryBundleFile, [{}], canaryEnv());
      expect(results).toEqual([
        { ok: true, status: 200, eventId: expect.any(String), ms: expect.any(Number) },
      ]);
      expect(bus.events).toHaveLength(1);
      const [entry] = bus.events;
      expect(entry).toMatchObject({
        EventBusName: busName,
        Source: CANARY_EVENT_SOURCE,
        DetailType: DETAIL_TYPES.AVAILABLE,
      });
      const detail = JSON.parse(entry?.Detail ?? '{}');
      expect(detail).toMatchObject({ instanceId: CANARY_INSTANCE_ID, type: 'PresenceChatCallback' });
      expect(detail.canary.sentAt).toBeGreaterThan(Date.now() - 60_000);
      expect(stdout).toContain('canary run: the webhook accepted the canary callback');
      // A healthy run writes no metric.
      expect(stdout).not.toContain('CanaryFailures');
      // The receiver counted it as the canary's, not as traffic.
      expect(api.output()).toContain('canary callback accepted');
      for (const secret of [MASTER, deriveInstanceSecret(MASTER, CANARY_INSTANCE_ID)])
        expect(`${stdout}${stderr}${api.output()}`).not.toContain(secret);

      // What EventBridge would deliver to the arrival rule's target.
      const delivered = [{ id: 'e1', source: entry?.Source, time: new Date().toISOString(), detail }];
      // By default a log line only: the alarm counts the function's invocations, not a custom metric.
      const plain = await invokeBundle(arrivalBundleFile, delivered, {
        METRICS_NAMESPACE: 'CanaryTest',
        CANARY_API_ID: 'api123',
      });
      const logged = JSON.parse(plain.stdout.trim().split('\n').at(-1) ?? '{}');
      expect(logged).not.toHaveProperty('_aws');
      expect(logged).toMatchObject({ msg: 'canary arrived on the bus', ApiId: 'api123' });
      // With detailed metrics, CanaryLatency is a metric too.
      const arrival = await invokeBundle(arrivalBundleFile, delivered, {
        METRICS_NAMESPACE: 'CanaryTest',
        CANARY_API_ID: 'api123',
        DETAILED_METRICS: 'true',
      });
      const line = JSON.parse(arrival.stdout.trim().split('\n').at(-1) ?? '{}');
      expect(line._aws.CloudWatchMetrics).toEqual([
        {
          Namespace: 'CanaryTest',
          Dimensions: [['ApiId']],
          Metrics: [{ Name: 'CanaryLatency', Unit: 'Milliseconds' }],
        },
      ]);
      expect(line.ApiId).toBe('api123');
      expect(line.CanaryLatency).toBeGreaterThanOrEqual(0);
      expect(line.CanaryLatency).toBeLessThan(60_000);
    }, 60_000);

    it.each([
      [
        'a failing bus',
        503,
        'bus-unavailable',
        async () => bus.misbehave.set('AWSEvents.PutEvents', 'reset'),
      ],
      ['a throttled stage', 429, 'throttled', async () => api.setMode('throttle')],
      ['a hung endpoint', 'timeout', 'timeout', async () => api.setMode('hang')],
    ] as const)(
      'reports %s with its status, in one line and a metric, and fails',
      async (_name, status, failure, breakIt) => {
        await breakIt();
        const { results, stdout, stderr } = await invokeBundle(canaryBundleFile, [{}], canaryEnv());
        expect((results[0] as { error: string }).error).toMatch(
          new RegExp(`^canary: ${status === failure ? failure : `${status} ${failure}`}: `),
        );
        const lines = stdout.split('\n').filter((l) => l.includes('CanaryFailures'));
        expect(lines).toHaveLength(1);
        expect(JSON.parse(lines[0] as string)).toMatchObject({
          ApiId: 'api123',
          Status: String(status),
          CanaryFailures: 1,
          failure,
          level: 'ERROR',
        });
        expect(bus.events).toEqual([]);
        for (const secret of [MASTER, deriveInstanceSecret(MASTER, CANARY_INSTANCE_ID)])
          expect(`${stdout}${stderr}`).not.toContain(secret);
      },
      60_000,
    );

    it('gets 401 with a secret derived from another master, and says so', async () => {
      const { results, stdout } = await invokeBundle(canaryBundleFile, [{}], canaryEnv('/zapi/other-master'));
      expect((results[0] as { error: string }).error).toMatch(
        /^canary: 401 secret-mismatch: the receiver refused/,
      );
      expect(stdout).toContain('"Status":"401"');
      expect(bus.events).toEqual([]);
    }, 60_000);
  });

  it('ships a reconciler bundle that sweeps the fleet: registers, repairs drift, reports health', async () => {
    const zapi = await startZapiStandIn();
    const fleet = { F1: 'TOKENF1xyz', F2: 'TOKENF2xyz', F3: 'TOKENF3xyz' };
    for (const [id, token] of Object.entries(fleet)) {
      standIn.put(`/zapi/${id}/token`, token);
      zapi.add(id, token);
    }
    zapi.get('F2').presenceUrl = 'https://helpdesk.example.com/hook?key=theirs';
    zapi.get('F3').connected = false;
    try {
      const { results, stdout, stderr } = await invokeBundle(
        reconcileBundleFile,
        [{ source: 'aws.events', 'detail-type': 'Scheduled Event', detail: {} }, { instanceIds: ['F1'] }],
        {
          ...standInEnvironment(standIn.url),
          WEBHOOK_BASE_URL: BASE,
          WEBHOOK_SECRET_PARAMETER: '/zapi/webhook-secret',
          ZAPI_BASE_URL: zapi.url,
        },
      );
      expect(results[0]).toMatchObject({
        outcome: 'reconciled',
        fleetSize: 3,
        registered: 3,
        corrected: 1,
        disconnected: 1,
      });
      expect(results[1]).toMatchObject({ outcome: 'reconciled', fleetSize: 1, registered: 1 });
      for (const id of Object.keys(fleet))
        expect(zapi.get(id).presenceUrl).toBe(instanceWebhookUrl(BASE, id, MASTER));
      const output = `${stdout}${stderr}`;
      expect(output).toContain('drift corrected');
      expect(output).toContain('helpdesk.example.com');
      expect(output).not.toContain('theirs');
      expect(output).toContain('not connected');
      expect(output).toContain('"Trigger":"sweep"');
      for (const secret of [MASTER, ...Object.values(fleet), deriveInstanceSecret(MASTER, 'F1')])
        expect(output).not.toContain(secret);
    } finally {
      await zapi.close();
    }
  }, 60_000);

  it('ships a reconciler bundle that is exact under Z-API limits: equivalent URLs, 429 + Retry-After, names-only listing, a listing that fails halfway', async () => {
    const zapi = await startZapiStandIn();
    // The previous test's fleet is not this one's.
    for (const id of ['F1', 'F2', 'F3']) standIn.delete(`/zapi/${id}/token`);
    const ids = Array.from({ length: 30 }, (_, i) => `RL${String(i).padStart(2, '0')}`);
    for (const id of ids) {
      standIn.put(`/zapi/${id}/token`, `TOKEN${id}`);
      zapi.add(id, `TOKEN${id}`, { presenceUrl: instanceWebhookUrl(BASE, id, MASTER) });
    }
    // Right, in shapes Z-API may echo: an upper-case host, an explicit :443.
    zapi.get('RL00').reportAs = (url) => url.replace('https://abc.execute-api', 'HTTPS://ABC.EXECUTE-API');
    zapi.get('RL01').reportAs = (url) => url.replace('.amazonaws.com/', '.amazonaws.com:443/');
    // Not right: a trailing slash.
    zapi.get('RL02').presenceUrl = instanceWebhookUrl(BASE, 'RL02', MASTER).replace(
      '/presence?',
      '/presence/?',
    );
    // The canary's token sits under the same path: never sent to Z-API.
    standIn.put(`/zapi/${CANARY_INSTANCE_ID}/token`, 'CANARYTOKEN123');
    zapi.rateLimit = { perSecond: 15, retryAfter: 'seconds' };
    const env = {
      ...standInEnvironment(standIn.url),
      WEBHOOK_BASE_URL: BASE,
      WEBHOOK_SECRET_PARAMETER: '/zapi/webhook-secret',
      ZAPI_BASE_URL: zapi.url,
      ZAPI_REQUESTS_PER_SECOND: '40',
    };
    const sweep = { source: 'aws.events', 'detail-type': 'Scheduled Event', detail: {} };
    standIn.calls.length = 0;
    try {
      const { results, stdout, stderr } = await invokeBundle(reconcileBundleFile, [sweep], env);
      expect(results[0], JSON.stringify(results[0])).toMatchObject({
        outcome: 'reconciled',
        fleetSize: 30,
        registered: 30,
        corrected: 1,
        failed: 0,
        unregistered: 0,
        notChecked: 0,
      });
      expect(zapi.rateLimited).toBeGreaterThan(0);
      expect(zapi.requests.filter((r) => r.method === 'PUT').map((r) => r.instanceId)).toEqual(['RL02']);
      expect(zapi.requests.some((r) => r.instanceId === CANARY_INSTANCE_ID)).toBe(false);
      expect(standIn.calls).toContain('AmazonSSM.DescribeParameters');
      expect(standIn.calls.some((c) => c.includes('GetParametersByPath'))).toBe(false);
      expect(standIn.calls.some((c) => c.includes(CANARY_INSTANCE_ID))).toBe(false);
      const output = `${stdout}${stderr}`;
      expect(output).toContain('Z-API limited the request rate (429)');
      expect(output).toContain('"NotChecked":0');
      for (const id of ids) expect(output).not.toContain(`TOKEN${id}`);

      // The listing fails on its second page: the first page's instances are reported, then the run fails.
      zapi.rateLimit = undefined;
      zapi.reset();
      standIn.describePageSize = 10;
      standIn.describeFailsFromPage = 1;
      const failed = await invokeBundle(reconcileBundleFile, [sweep], env);
      expect(failed.results[0]).toMatchObject({
        error: expect.stringContaining('SSM parameter /zapi cannot be read'),
      });
      expect(`${failed.stdout}${failed.stderr}`).toContain('could not be listed to the end');
      expect(failed.stdout).toMatch(/"FleetSize":\d/);
      expect(zapi.requests.length).toBeGreaterThan(0);
      expect(zapi.requests.length).toBeLessThan(30);
    } finally {
      standIn.describePageSize = 50;
      standIn.describeFailsFromPage = undefined;
      standIn.delete(`/zapi/${CANARY_INSTANCE_ID}/token`);
      for (const id of ids) standIn.delete(`/zapi/${id}/token`);
      await zapi.close();
    }
  }, 60_000);

  it('ships a registration bundle that registers the fleet on deploy', async () => {
    const zapi = await startZapiStandIn();
    const token = 'bundle-instance-token-123';
    zapi.add(INSTANCE, token);
    standIn.put(`/zapi/${INSTANCE}/token`, token);
    try {
      const event = {
        RequestType: 'Create',
        ResourceProperties: { RequiredInstanceIds: INSTANCE, DeployNonce: 'n', Fleet: 'true' },
      };
      const { results, stdout, stderr } = await invokeBundle(registerBundleFile, [event], {
        ...standInEnvironment(standIn.url),
        WEBHOOK_BASE_URL: BASE,
        WEBHOOK_SECRET_PARAMETER: '/zapi/webhook-secret',
        ZAPI_BASE_URL: zapi.url,
      });
      expect(results[0]).toMatchObject({ PhysicalResourceId: 'zapi-chat-presence-fleet' });
      expect(zapi.get(INSTANCE).presenceUrl).toBe(instanceWebhookUrl(BASE, INSTANCE, MASTER));
      expect(`${stdout}${stderr}`).not.toContain(SECRET);
      expect(`${stdout}${stderr}`).not.toContain(token);
    } finally {
      await zapi.close();
    }
  }, 60_000);

  it.each([
    ['SSM hangs', 'AmazonSSM.GetParameter', 'hang', 'secret-unavailable'],
    ['EventBridge hangs', 'AWSEvents.PutEvents', 'hang', 'bus-unavailable'],
    ['EventBridge trickles its answer', 'AWSEvents.PutEvents', 'trickle', 'bus-unavailable'],
    ['SSM trickles its answer', 'AmazonSSM.GetParameter', 'trickle', 'secret-unavailable'],
  ] as const)(
    'the shipped receiver answers 503 before its 10 s timeout when %s',
    async (_name, target, how, error) => {
      const broken = await startAwsStandIn({ '/zapi/webhook-secret': MASTER });
      broken.misbehave.set(target, how);
      try {
        const started = Date.now();
        const { results } = await invokeBundle(
          bundleFile,
          [
            {
              pathParameters: { instanceId: INSTANCE },
              queryStringParameters: { secret: SECRET },
              headers: { 'content-type': 'application/json' },
              requestContext: { requestId: 'r' },
              body: JSON.stringify({ ...docsExamples.COMPOSING, instanceId: INSTANCE }),
              isBase64Encoded: false,
            },
          ],
          receiverEnv(broken.url),
          10_000,
        );
        const result = results[0] as { statusCode: number; body: string };
        expect(result.statusCode).toBe(503);
        expect(JSON.parse(result.body)).toMatchObject({ error });
        expect(Date.now() - started).toBeLessThan(10_000 + 1_500); // the answer, plus process start-up
      } finally {
        await broken.close();
      }
    },
    30_000,
  );
});
