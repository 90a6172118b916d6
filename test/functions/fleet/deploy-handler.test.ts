/**
 * The deploy-time registration (custom resource onEvent handler), through the real handler module and
 * SDK, against a Z-API stand-in holding a fleet and an SSM stand-in (path listing, versions).
 */
import type { CloudFormationCustomResourceEvent } from 'aws-lambda';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { OnEventResponse } from '../../../functions/fleet/deploy-handler.ts';
import {
  FLEET_ENV,
  FLEET_METRICS,
  REGISTRATION_PHYSICAL_ID,
  REGISTRATION_PROPERTIES,
  REGISTRATION_RESOURCE_TYPE,
} from '../../../functions/fleet/settings.ts';
import {
  deriveInstanceSecret,
  instanceWebhookUrl,
} from '../../../functions/shared/secrets/webhook-secret.ts';
import { type AwsStandIn, standInEnvironment, startAwsStandIn } from '../../support/aws-standin.ts';
import { startZapiStandIn, type ZapiStandIn } from '../../support/zapi-standin.ts';

const BASE = 'https://abc123.execute-api.sa-east-1.amazonaws.com';
const MASTER = 'registration-master-0123456789abcdefghij';
const CLIENT_TOKEN = 'CLIENTTOKEN0987654321xyz';
const FLEET = { A1: 'TOKENA1F00DCAFE', B2: 'TOKENB2F00DCAFE', C3: 'TOKENC3F00DCAFE' } as const;
const expected = (id: string) => instanceWebhookUrl(BASE, id, MASTER);

let zapi: ZapiStandIn;
let aws: AwsStandIn;
let logs: string[];

type Handler = (
  event: CloudFormationCustomResourceEvent,
  context?: { getRemainingTimeInMillis(): number },
) => Promise<OnEventResponse>;

async function loadHandler(env: Record<string, string> = {}): Promise<Handler> {
  for (const [key, value] of Object.entries({
    ...standInEnvironment(aws.url),
    [FLEET_ENV.webhookBaseUrl]: BASE,
    [FLEET_ENV.masterSecretParameter]: '/zapi/webhook-secret',
    [FLEET_ENV.zapiBaseUrl]: zapi.url,
    [FLEET_ENV.zapiAttemptTimeoutMs]: '500',
    [FLEET_ENV.zapiMaxAttempts]: '2',
    ...env,
  }))
    vi.stubEnv(key, value);
  vi.resetModules();
  return (await import('../../../functions/fleet/deploy-handler.ts')).handler as Handler;
}

const lambdaContext = (timeoutMs: number) => {
  const deadline = Date.now() + timeoutMs;
  return { getRemainingTimeInMillis: () => deadline - Date.now() };
};

function cfnEvent(
  type: 'Create' | 'Update' | 'Delete',
  properties: Record<string, string> = {},
  oldProperties: Record<string, string> = {},
): CloudFormationCustomResourceEvent {
  const P = REGISTRATION_PROPERTIES;
  const ResourceProperties = {
    ServiceToken: 'arn:aws:lambda:sa-east-1:123456789012:function:provider',
    [P.requiredInstanceIds]: '',
    [P.deployNonce]: '2026-11-25T12:00:00.000Z',
    [P.fleet]: 'true',
    ...properties,
  };
  const common = {
    ServiceToken: ResourceProperties.ServiceToken,
    ResponseURL: 'https://cloudformation-custom-resource-response.invalid/presigned?X-Amz-Signature=abc',
    StackId: 'arn:aws:cloudformation:sa-east-1:123456789012:stack/ZapiPresence/1',
    RequestId: 'req',
    LogicalResourceId: 'FleetRegistration',
    ResourceType: REGISTRATION_RESOURCE_TYPE,
    ResourceProperties,
  };
  if (type === 'Create') return { ...common, RequestType: 'Create' };
  if (type === 'Update') {
    return {
      ...common,
      RequestType: 'Update',
      PhysicalResourceId: REGISTRATION_PHYSICAL_ID,
      OldResourceProperties: { ...ResourceProperties, ...oldProperties },
    };
  }
  return { ...common, RequestType: 'Delete', PhysicalResourceId: REGISTRATION_PHYSICAL_ID };
}

const secrets = [
  MASTER,
  CLIENT_TOKEN,
  ...Object.values(FLEET),
  ...Object.keys(FLEET).map((id) => deriveInstanceSecret(MASTER, id)),
];
function expectNoSecrets(text: string): void {
  for (const secret of secrets) expect(text).not.toContain(secret);
}
/** The run's summary lines (metrics only for the alarmed counts that are not zero). */
const emf = () =>
  logs.filter((l) => l.includes('"reconcile run"')).map((l) => JSON.parse(l) as Record<string, unknown>);
const puts = () => zapi.requests.filter((r) => r.method === 'PUT');

describe('deploy-time registration', () => {
  beforeAll(async () => {
    zapi = await startZapiStandIn();
    aws = await startAwsStandIn();
  });
  afterAll(async () => {
    await zapi.close();
    await aws.close();
  });

  beforeEach(() => {
    zapi.instances.clear();
    zapi.reset();
    for (const [id, token] of Object.entries(FLEET)) {
      zapi.add(id, token);
      aws.put(`/zapi/${id}/token`, token);
    }
    aws.put('/zapi/webhook-secret', MASTER);
    aws.delete('/zapi/client-token');
    aws.misbehave.clear();
    aws.misbehaveParameters.clear();
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
    expectNoSecrets(logs.join('\n'));
    for (const instance of zapi.instances.values()) {
      expect(instance.otherUrls.receivedCallbackUrl).toBe('https://crm.example.com/received');
    }
  });

  it.each(['Create', 'Update'] as const)(
    '%s: PUTs the named instances, reconciles the rest of the fleet found in SSM, each with its own derived URL, and counts it',
    async (type) => {
      zapi.get('A1').presenceUrl = expected('A1'); // named and already right: a deploy PUTs it anyway
      zapi.get('B2').presenceUrl = expected('B2'); // not named and right: left alone
      const handler = await loadHandler();
      const response = await handler(cfnEvent(type, { RequiredInstanceIds: 'A1' }), lambdaContext(60_000));
      expect(response).toEqual({
        PhysicalResourceId: REGISTRATION_PHYSICAL_ID,
        Data: { FleetSize: '3', Registered: '3', Unregistered: '0', NotChecked: '0' },
      });
      for (const id of Object.keys(FLEET)) expect(zapi.get(id).presenceUrl).toBe(expected(id));
      expect(
        puts()
          .map((r) => r.instanceId)
          .sort(),
      ).toEqual(['A1', 'C3']);
      expect(puts().every((r) => r.operation === 'update-webhook-chat-presence')).toBe(true);
      expect(emf()).toEqual([
        expect.objectContaining({
          Trigger: 'deploy',
          Scope: 'fleet',
          [FLEET_METRICS.fleetSize]: 3,
          [FLEET_METRICS.registered]: 3,
          [FLEET_METRICS.unregistered]: 0,
        }),
      ]);
    },
  );

  it('fails the deploy with the exact put-parameter command when a named instance has no token', async () => {
    const handler = await loadHandler();
    const error = (await handler(
      cfnEvent('Create', { RequiredInstanceIds: 'A1,NEW9' }),
      lambdaContext(60_000),
    ).catch((e: unknown) => e)) as Error;
    expect(error.name).toBe('RegistrationError');
    expect(error.message).toContain('NEW9');
    expect(error.message).toContain(
      'aws ssm put-parameter --type SecureString --name /zapi/NEW9/token --value INSTANCE_TOKEN',
    );
    // The others were registered anyway.
    expect(zapi.get('A1').presenceUrl).toBe(expected('A1'));
  });

  it('fails the deploy, saying why, when a named instance cannot be registered; SSM-only failures do not', async () => {
    zapi.get('C3').behaviour = { status: 500, body: '{"error":"boom"}' };
    const handler = await loadHandler();
    // C3 is found only in SSM: reported, the deploy goes on.
    const ok = await handler(cfnEvent('Update', { RequiredInstanceIds: 'A1' }), lambdaContext(60_000));
    // Z-API never said where C3 points (every answer a 500): failed, not a confirmed unregistered.
    expect(ok.Data).toEqual({ FleetSize: '3', Registered: '2', Unregistered: '0', NotChecked: '0' });
    expect(logs.join('\n')).toContain('instance could not be registered');
    expect(emf()[0]).toMatchObject({
      Trigger: 'deploy',
      [FLEET_METRICS.failed]: 1,
      [FLEET_METRICS.unregistered]: 0,
    });
    // Named: the deploy fails with Z-API's status and what to check.
    const error = (await handler(
      cfnEvent('Update', { RequiredInstanceIds: 'A1,C3' }),
      lambdaContext(60_000),
    ).catch((e: unknown) => e)) as Error;
    expect(error.message).toMatch(
      /C3: Z-API answered 500 to (GET me|PUT update-webhook-chat-presence) \(server-error\)/,
    );
    expect(error.message).not.toContain('boom');
  });

  it('sends the Client-Token when configured', async () => {
    aws.put('/zapi/client-token', CLIENT_TOKEN);
    zapi.get('A1').requireClientToken = CLIENT_TOKEN;
    const handler = await loadHandler({ [FLEET_ENV.clientTokenParameter]: '/zapi/client-token' });
    await handler(cfnEvent('Create', { RequiredInstanceIds: 'A1' }), lambdaContext(60_000));
    expect(zapi.get('A1').presenceUrl).toBe(expected('A1'));
    expect(zapi.requests.every((r) => r.headers['client-token'] === CLIENT_TOKEN)).toBe(true);
  });

  it('refuses a master outside the alphabet, naming the parameter and a command, never the value', async () => {
    const bad = `${'x'.repeat(30)}+/=abc`;
    aws.put('/zapi/webhook-secret', bad);
    const handler = await loadHandler();
    const error = (await handler(cfnEvent('Create'), lambdaContext(60_000)).catch(
      (e: unknown) => e,
    )) as Error;
    expect(error.message).toContain('/zapi/webhook-secret');
    expect(error.message).toContain('openssl rand -hex 32');
    expect(error.message).not.toContain(bad);
    expect(puts()).toHaveLength(0);
  });

  it('never lets Z-API echo a secret into the CloudFormation reason', async () => {
    const echo = (id: string) => {
      const url = expected(id);
      return JSON.stringify({
        error: `invalid value ${url} ${encodeURIComponent(url)} ${decodeURIComponent(url)}`,
        message: JSON.stringify(url),
        token: FLEET.A1,
      });
    };
    zapi.get('A1').script.push('normal', { status: 400, body: echo('A1') });
    const handler = await loadHandler();
    const error = (await handler(
      cfnEvent('Create', { RequiredInstanceIds: 'A1' }),
      lambdaContext(60_000),
    ).catch((e: unknown) => e)) as Error;
    expect(error.message).toContain('Z-API answered 400 to PUT update-webhook-chat-presence (rejected)');
    expectNoSecrets(error.message);
    expect(error.message).not.toContain('invalid value');
  });

  it('a rollback re-registers and never fails', async () => {
    zapi.get('A1').behaviour = 'reset';
    const handler = await loadHandler();
    const response = await handler(
      cfnEvent(
        'Update',
        { RequiredInstanceIds: 'A1', DeployNonce: '2026-11-25T11:00:00.000Z' },
        { DeployNonce: '2026-11-25T12:00:00.000Z' },
      ),
      lambdaContext(60_000),
    );
    expect(response.PhysicalResourceId).toBe(REGISTRATION_PHYSICAL_ID);
    expect(zapi.get('B2').presenceUrl).toBe(expected('B2'));
  });

  it('Delete releases URLs that are still this endpoint, leaves others alone, never fails', async () => {
    zapi.get('A1').presenceUrl = expected('A1');
    zapi.get('B2').presenceUrl = `${BASE}/instances/B2/presence?secret=older`;
    zapi.get('C3').presenceUrl = 'https://helpdesk.example.com/hook?token=theirs';
    const handler = await loadHandler();
    const response = await handler(cfnEvent('Delete'), lambdaContext(60_000));
    expect(response).toEqual({ PhysicalResourceId: REGISTRATION_PHYSICAL_ID, Data: expect.any(Object) });
    expect(zapi.get('A1').presenceUrl).toBe('');
    expect(zapi.get('B2').presenceUrl).toBe('');
    expect(zapi.get('C3').presenceUrl).toBe('https://helpdesk.example.com/hook?token=theirs');
    expect(logs.join('\n')).not.toContain('theirs');
  });

  it('Delete of a per-instance resource from an earlier version does nothing (the fleet resource owns it now)', async () => {
    zapi.get('A1').presenceUrl = expected('A1');
    const handler = await loadHandler();
    const legacy = {
      ...cfnEvent('Delete'),
      PhysicalResourceId: 'zapi-chat-presence:A1',
      ResourceProperties: {
        ServiceToken: 'arn:aws:lambda:sa-east-1:123456789012:function:provider',
        InstanceId: 'A1',
        WebhookUrl: `${BASE}/instances/A1/presence`,
      },
    } as CloudFormationCustomResourceEvent;
    const response = await handler(legacy, lambdaContext(60_000));
    expect(response).toEqual({ PhysicalResourceId: 'zapi-chat-presence:A1' });
    expect(zapi.requests).toHaveLength(0);
    expect(zapi.get('A1').presenceUrl).toBe(expected('A1'));
  });

  // Time bounds: whatever a dependency does, the handler answers before its own timeout.
  const TIMEOUT_MS = 13_000; // the handler keeps 10 s back: 3 s of work
  it.each([
    ['Delete', 'SSM listing trickles'],
    ['Delete', 'Z-API hangs'],
    ['Create', 'SSM listing trickles'],
    ['Create', 'Z-API trickles'],
  ] as const)(
    '%s returns or fails in time when %s',
    async (type, what) => {
      aws.trickleEveryMs = 200;
      if (what === 'SSM listing trickles') aws.misbehave.set('AmazonSSM.DescribeParameters', 'trickle');
      for (const instance of zapi.instances.values())
        instance.behaviour =
          what === 'Z-API hangs' ? 'hang' : what === 'Z-API trickles' ? 'trickle' : 'normal';
      const handler = await loadHandler({ [FLEET_ENV.zapiAttemptTimeoutMs]: '60000' });
      const started = Date.now();
      const outcome = await handler(
        cfnEvent(type, { RequiredInstanceIds: 'A1' }),
        lambdaContext(TIMEOUT_MS),
      ).then(
        (r) => ({ ok: true as const, r }),
        (e: unknown) => ({ ok: false as const, e }),
      );
      expect(Date.now() - started).toBeLessThan(TIMEOUT_MS);
      if (type === 'Delete') expect(outcome.ok).toBe(true);
      else if (what === 'SSM listing trickles') {
        // The named instance is read on its own and registered; the listing the deadline cut leaves the
        // rest of the fleet to the next sweep.
        expect(outcome.ok).toBe(true);
        expect(zapi.get('A1').presenceUrl).toBe(expected('A1'));
      } else {
        expect(outcome.ok).toBe(false);
        if (!outcome.ok) expect((outcome.e as Error).message).toMatch(/A1: not checked: .*deadline/);
      }
    },
    20_000,
  );
});
