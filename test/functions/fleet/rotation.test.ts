/**
 * Rotating the master without losing a callback: two receiver containers (their own master caches), the
 * reconciler, a Z-API stand-in that calls whatever URL each instance holds (as Z-API does), and SSM with
 * versions. Callbacks are sent continuously through the rotation; every one must be accepted.
 */
import { SSMClient } from '@aws-sdk/client-ssm';
import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { runFleet } from '../../../functions/fleet/reconcile.ts';
import { fleetDeps, readFleetConfig } from '../../../functions/fleet/runtime.ts';
import { FLEET_ENV } from '../../../functions/fleet/settings.ts';
import { RECEIVER_ENV } from '../../../functions/presence-webhook/env.ts';
import { deadlineAt } from '../../../functions/shared/aws/deadline.ts';
import { deriveInstanceSecret } from '../../../functions/shared/secrets/webhook-secret.ts';
import { type AwsStandIn, standInEnvironment, startAwsStandIn } from '../../support/aws-standin.ts';
import { startZapiStandIn, type ZapiStandIn } from '../../support/zapi-standin.ts';

const BASE = 'https://rot123.execute-api.sa-east-1.amazonaws.com';
const M1 = 'rotation-master-one-0123456789abcdefghij';
const M2 = 'rotation-master-two-0123456789abcdefghij';
const IDS = ['R1', 'R2', 'R3', 'R4'];
const CACHE_SECONDS = 1;

type Receiver = (event: unknown, context?: unknown) => Promise<APIGatewayProxyStructuredResultV2>;

let aws: AwsStandIn;
let zapi: ZapiStandIn;

async function receiverContainer(): Promise<Receiver> {
  vi.resetModules();
  return (await import('../../../functions/presence-webhook/handler.ts')).handler as Receiver;
}

/** What Z-API does: POST a callback to the URL the instance holds now. */
async function zapiCalls(receiver: Receiver, instanceId: string): Promise<number> {
  const url = new URL(zapi.get(instanceId).presenceUrl);
  const result = await receiver({
    pathParameters: { instanceId: url.pathname.split('/')[2] },
    queryStringParameters: { secret: url.searchParams.get('secret') ?? '' },
    headers: { 'content-type': 'application/json' },
    requestContext: { requestId: 'r' },
    body: JSON.stringify({
      type: 'PresenceChatCallback',
      phone: '5511999999999',
      status: 'COMPOSING',
      lastSeen: null,
      instanceId,
    }),
    isBase64Encoded: false,
  });
  return result.statusCode ?? 0;
}

function reconciler(settleMarginMs: number) {
  const config = readFleetConfig({
    [FLEET_ENV.webhookBaseUrl]: BASE,
    [FLEET_ENV.masterSecretParameter]: '/zapi/webhook-secret',
    [FLEET_ENV.zapiBaseUrl]: zapi.url,
    [FLEET_ENV.receiverCacheSeconds]: String(CACHE_SECONDS),
    [FLEET_ENV.settleMarginMs]: String(settleMarginMs),
  });
  const ssm = new SSMClient({
    region: 'sa-east-1',
    endpoint: aws.url,
    credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
  });
  const deps = fleetDeps(config, ssm);
  return (waitForNewMaster: boolean) =>
    runFleet(
      { mode: 'reconcile', trigger: waitForNewMaster ? 'change' : 'sweep', waitForNewMaster },
      config,
      deps,
      deadlineAt(Date.now() + 300_000),
    );
}

/** Sends callbacks for every instance through both containers until `stop` resolves; returns the statuses. */
async function sendThroughout(receivers: Receiver[], stop: Promise<unknown>): Promise<number[]> {
  const statuses: number[] = [];
  let done = false;
  void stop.then(() => (done = true));
  while (!done) {
    for (const receiver of receivers) {
      for (const id of IDS) statuses.push(await zapiCalls(receiver, id));
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return statuses;
}

describe('master rotation', () => {
  beforeAll(async () => {
    aws = await startAwsStandIn();
    zapi = await startZapiStandIn();
  });
  afterAll(async () => {
    await aws.close();
    await zapi.close();
  });
  beforeEach(() => {
    aws.delete('/zapi/webhook-secret');
    aws.put('/zapi/webhook-secret', M1, Date.now() - 86_400_000);
    zapi.instances.clear();
    for (const id of IDS) {
      zapi.add(id, `TOKEN${id}`);
      aws.put(`/zapi/${id}/token`, `TOKEN${id}`);
    }
    for (const [key, value] of Object.entries({
      ...standInEnvironment(aws.url),
      [RECEIVER_ENV.eventBusName]: 'bus',
      [RECEIVER_ENV.secretParameterName]: '/zapi/webhook-secret',
      [RECEIVER_ENV.secretCacheSeconds]: String(CACHE_SECONDS),
      [RECEIVER_ENV.secretGraceSeconds]: '3600',
    }))
      vi.stubEnv(key, value);
    vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    for (const level of ['info', 'warn', 'error'] as const)
      vi.spyOn(console, level).mockImplementation(() => {});
  });
  afterEach(() => vi.unstubAllEnvs());

  it('accepts every callback sent throughout a rotation, and ends with every instance on the new master', async () => {
    const run = reconciler(300);
    await run(false);
    for (const id of IDS) expect(zapi.get(id).presenceUrl).toContain(deriveInstanceSecret(M1, id));
    const first = await receiverContainer();
    await zapiCalls(first, 'R1'); // this container caches M1 now
    const second = await receiverContainer();

    const rotation = (async () => {
      await new Promise((resolve) => setTimeout(resolve, 200));
      aws.put('/zapi/webhook-secret', M2);
      // The SSM change event's run (waits until every receiver knows M2) and a sweep that happens to
      // run meanwhile (keeps M1's URLs for now).
      const [changed, swept] = await Promise.all([run(true), run(false)]);
      await new Promise((resolve) => setTimeout(resolve, 300));
      return { changed, swept };
    })();
    const statuses = await sendThroughout([first, second], rotation);
    const { changed, swept } = await rotation;

    expect(statuses.length).toBeGreaterThan(40);
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    expect(swept.outcomes.every((o) => o.action === 'unchanged')).toBe(true);
    expect(changed.outcomes.map((o) => o.action)).toEqual(IDS.map(() => 'registered'));
    for (const id of IDS) expect(zapi.get(id).presenceUrl).toContain(deriveInstanceSecret(M2, id));
  }, 30_000);

  it('(control) registering the new URLs at once would lose callbacks at a container still caching the old master', async () => {
    const run = reconciler(0);
    await run(false);
    const container = await receiverContainer();
    await zapiCalls(container, 'R1'); // caches M1
    aws.put('/zapi/webhook-secret', M2, Date.now() - CACHE_SECONDS * 1_000); // looks settled to the reconciler
    await run(false);
    expect(zapi.get('R1').presenceUrl).toContain(deriveInstanceSecret(M2, 'R1'));
    expect(await zapiCalls(container, 'R1')).toBe(401);
  });
});
