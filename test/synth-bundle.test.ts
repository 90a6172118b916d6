/**
 * The one test that synthesizes for real (esbuild bundling, CloudFormation validation, cdk-nag) and runs
 * the shipped receiver bundle from the cloud assembly, in a fresh Node process, against stand-ins for
 * SSM and EventBridge on 127.0.0.1 (reached through AWS_ENDPOINT_URL_*, so the real SDK path runs).
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DETAIL_TYPES, EVENT_SOURCE } from '../functions/shared/presence-contract.ts';
import docsExamples from './fixtures/zapi-docs-examples.json' with { type: 'json' };
import { type AwsStandIn, standInEnvironment, startAwsStandIn } from './support/aws-standin.ts';
import { bundleDirectory } from './support/bundle.ts';
import { invokeBundle } from './support/invoke.ts';
import { synth } from './support/synth.ts';
import { startZapiStandIn } from './support/zapi-standin.ts';

const SECRET = 'bundle-test-secret-0123456789abcdef';
const INSTANCE = 'TEST';

describe('synthesized app', () => {
  let standIn: AwsStandIn;
  let bundleFile: string;
  let registerBundleFile: string;
  let busName: string;
  let report: ReturnType<typeof synth>['report'];

  beforeAll(async () => {
    process.env.CDK_VALIDATION = 'true';
    const result = synth({ instanceId: INSTANCE }, { bundle: true });
    delete process.env.CDK_VALIDATION;
    report = result.report;
    bundleFile = join(
      bundleDirectory(result.template, result.assembly.directory, 'PresenceReceiver'),
      'index.mjs',
    );
    registerBundleFile = join(
      bundleDirectory(result.template, result.assembly.directory, 'WebhookRegistrationHandler'),
      'index.mjs',
    );
    busName = 'presence-bus-under-test';
    standIn = await startAwsStandIn({ '/zapi/webhook-secret': SECRET });
  }, 120_000);

  afterAll(async () => {
    await standIn?.close();
  });

  it('is clean under cdk-nag', () => {
    for (const plugin of report.pluginReports) expect(plugin.violations, plugin.pluginName).toEqual([]);
  });

  it('ships a receiver bundle that authenticates, validates and publishes through the real SDK', async () => {
    const body = JSON.stringify({ ...docsExamples.RECORDING, instanceId: INSTANCE });
    const event = (secret: string, raw: string) => ({
      version: '2.0',
      routeKey: 'POST /instances/{instanceId}/presence',
      pathParameters: { instanceId: INSTANCE },
      queryStringParameters: { secret },
      headers: { 'content-type': 'application/json' },
      requestContext: { requestId: 'r' },
      body: raw,
      isBase64Encoded: false,
    });
    const { results, stdout, stderr } = await invokeBundle(
      bundleFile,
      [
        event(SECRET, body),
        event('wrong', body),
        event(SECRET, '{"type":"PresenceChatCallback"}'),
        event(SECRET, body),
      ],
      {
        ...standInEnvironment(standIn.url),
        EVENT_BUS_NAME: busName,
        ZAPI_INSTANCE_IDS: INSTANCE,
        WEBHOOK_SECRET_PARAMETER: '/zapi/webhook-secret',
      },
    );
    expect(results.map((r) => (r as { statusCode: number }).statusCode)).toEqual([200, 401, 400, 200]);
    expect(standIn.events).toEqual([
      { EventBusName: busName, Source: EVENT_SOURCE, DetailType: DETAIL_TYPES.RECORDING, Detail: body },
      { EventBusName: busName, Source: EVENT_SOURCE, DetailType: DETAIL_TYPES.RECORDING, Detail: body },
    ]);
    expect(standIn.calls.filter((c) => c === 'AmazonSSM.GetParameter')).toHaveLength(1);
    expect(`${stdout}${stderr}`).not.toContain(SECRET);
  }, 60_000);

  it('ships a registration bundle that registers the URL with a Z-API stand-in', async () => {
    const token = 'bundle-instance-token-123';
    const zapi = await startZapiStandIn(INSTANCE, token);
    standIn.parameters.set(`/zapi/${INSTANCE}/token`, token);
    try {
      const webhookUrl = `https://abc.execute-api.sa-east-1.amazonaws.com/instances/${INSTANCE}/presence`;
      const event = {
        RequestType: 'Create',
        ResourceProperties: {
          InstanceId: INSTANCE,
          WebhookUrl: webhookUrl,
          InstanceTokenParameter: `/zapi/${INSTANCE}/token`,
          WebhookSecretParameter: '/zapi/webhook-secret',
          DeployNonce: 'n',
        },
      };
      const { results, stdout, stderr } = await invokeBundle(registerBundleFile, [event], {
        ...standInEnvironment(standIn.url),
        ZAPI_BASE_URL: zapi.url,
      });
      expect(results).toEqual([
        { PhysicalResourceId: `zapi-chat-presence:${INSTANCE}`, Data: { WebhookUrl: webhookUrl } },
      ]);
      expect(zapi.presenceUrl).toBe(`${webhookUrl}?secret=${SECRET}`);
      expect(`${stdout}${stderr}`).not.toContain(SECRET);
      expect(`${stdout}${stderr}`).not.toContain(token);
    } finally {
      await zapi.close();
    }
  }, 60_000);

  const callbackEvent = () => ({
    pathParameters: { instanceId: INSTANCE },
    queryStringParameters: { secret: SECRET },
    headers: { 'content-type': 'application/json' },
    requestContext: { requestId: 'r' },
    body: JSON.stringify({ ...docsExamples.COMPOSING, instanceId: INSTANCE }),
    isBase64Encoded: false,
  });

  async function invokeAgainst(standInUrl: string) {
    const started = Date.now();
    const { results } = await invokeBundle(
      bundleFile,
      [callbackEvent()],
      {
        ...standInEnvironment(standInUrl),
        EVENT_BUS_NAME: 'bus',
        ZAPI_INSTANCE_IDS: INSTANCE,
        WEBHOOK_SECRET_PARAMETER: '/zapi/webhook-secret',
      },
      10_000,
    );
    return { result: results[0] as { statusCode: number; body: string }, elapsed: Date.now() - started };
  }

  it.each([
    ['SSM hangs', (s: AwsStandIn) => s.hang.add('AmazonSSM.GetParameter'), 'secret-unavailable'],
    ['EventBridge hangs', (s: AwsStandIn) => s.hang.add('AWSEvents.PutEvents'), 'bus-unavailable'],
    [
      'EventBridge stalls after its headers',
      (s: AwsStandIn) => s.stallAfterHeaders.add('AWSEvents.PutEvents'),
      'bus-unavailable',
    ],
  ])(
    'answers 503 well before the 10 s timeout when %s',
    async (_name, breakIt, error) => {
      const broken = await startAwsStandIn({ '/zapi/webhook-secret': SECRET });
      breakIt(broken);
      try {
        const { result, elapsed } = await invokeAgainst(broken.url);
        expect(result.statusCode).toBe(503);
        expect(JSON.parse(result.body)).toMatchObject({ error });
        expect(elapsed).toBeLessThan(8_000);
      } finally {
        await broken.close();
      }
    },
    30_000,
  );

  it('right after a rotation, accepts the previous secret, and copes with its read hanging', async () => {
    const rotated = await startAwsStandIn({
      '/zapi/webhook-secret': 'the-new-secret-after-rotation-1',
      '/zapi/webhook-secret:1': SECRET,
    });
    rotated.rotated.add('/zapi/webhook-secret');
    try {
      // Z-API still sends the old value: accepted during the grace hour.
      expect((await invokeAgainst(rotated.url)).result.statusCode).toBe(200);
      // The previous version's read hangs: cut short, the current value alone decides (old one: 401), in time.
      rotated.hangParameters.add('/zapi/webhook-secret:1');
      const { result, elapsed } = await invokeAgainst(rotated.url);
      expect(result.statusCode).toBe(401);
      expect(elapsed).toBeLessThan(5_000);
    } finally {
      await rotated.close();
    }
  }, 30_000);
});
