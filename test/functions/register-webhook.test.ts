/**
 * The registration onEvent handler against a Z-API stand-in on 127.0.0.1 (real HTTP), with SSM mocked
 * at the SDK client.
 */
import { GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import type { CloudFormationCustomResourceEvent } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { OnEventResponse } from '../../functions/register-webhook/handler.ts';
import { startZapiStandIn, type ZapiStandIn } from '../support/zapi-standin.ts';

const INSTANCE = '3C01A2B3C4D5E6F7';
const TOKEN = 'TOKENF00DCAFE1234567890';
const SECRET = 'webhook-secret-abcdef0123456789';
const CLIENT_TOKEN = 'CLIENTTOKEN0987654321xyz';
const WEBHOOK_URL = `https://abc123.execute-api.sa-east-1.amazonaws.com/instances/${INSTANCE}/presence`;
const REGISTERED = `${WEBHOOK_URL}?secret=${SECRET}`;

const ssm = mockClient(SSMClient);
let zapi: ZapiStandIn;
let logs: string[];

type Handler = (
  event: CloudFormationCustomResourceEvent,
  context?: { getRemainingTimeInMillis(): number },
) => Promise<OnEventResponse>;

async function loadHandler(env: Record<string, string> = {}): Promise<Handler> {
  vi.stubEnv('ZAPI_BASE_URL', zapi.url);
  vi.stubEnv('ZAPI_ATTEMPT_TIMEOUT_MS', '300');
  vi.stubEnv('AWS_REGION', 'sa-east-1');
  for (const [key, value] of Object.entries(env)) vi.stubEnv(key, value);
  vi.resetModules();
  return (await import('../../functions/register-webhook/handler.ts')).handler as Handler;
}

function cfnEvent(
  type: 'Create' | 'Update' | 'Delete',
  properties: Record<string, string> = {},
): CloudFormationCustomResourceEvent {
  const ResourceProperties = {
    ServiceToken: 'arn:aws:lambda:sa-east-1:123456789012:function:provider',
    InstanceId: INSTANCE,
    WebhookUrl: WEBHOOK_URL,
    InstanceTokenParameter: `/zapi/${INSTANCE}/token`,
    WebhookSecretParameter: '/zapi/webhook-secret',
    DeployNonce: '2026-11-25T12:00:00.000Z',
    ...properties,
  };
  const common = {
    ServiceToken: ResourceProperties.ServiceToken,
    ResponseURL: 'https://cloudformation-custom-resource-response.invalid/presigned?X-Amz-Signature=abc',
    StackId: 'arn:aws:cloudformation:sa-east-1:123456789012:stack/ZapiPresence/1',
    RequestId: 'req',
    LogicalResourceId: 'Registration',
    ResourceType: 'Custom::ZapiPresenceWebhook',
    ResourceProperties,
  };
  if (type === 'Create') return { ...common, RequestType: 'Create' };
  if (type === 'Update') {
    return {
      ...common,
      RequestType: 'Update',
      PhysicalResourceId: `zapi-chat-presence:${INSTANCE}`,
      OldResourceProperties: ResourceProperties,
    };
  }
  return { ...common, RequestType: 'Delete', PhysicalResourceId: `zapi-chat-presence:${INSTANCE}` };
}

function allOutput(error?: unknown): string {
  return `${logs.join('\n')}\n${error instanceof Error ? error.message : ''}`;
}

function expectNoSecrets(text: string): void {
  for (const secret of [TOKEN, SECRET, CLIENT_TOKEN, encodeURIComponent(SECRET)])
    expect(text).not.toContain(secret);
}

describe('register-webhook handler', () => {
  beforeAll(async () => {
    zapi = await startZapiStandIn(INSTANCE, TOKEN);
  });
  afterAll(async () => {
    await zapi.close();
  });

  beforeEach(() => {
    ssm.reset();
    ssm
      .on(GetParameterCommand, { Name: `/zapi/${INSTANCE}/token`, WithDecryption: true })
      .resolves({ Parameter: { Value: TOKEN } });
    ssm
      .on(GetParameterCommand, { Name: '/zapi/webhook-secret', WithDecryption: true })
      .resolves({ Parameter: { Value: SECRET } });
    ssm
      .on(GetParameterCommand, { Name: '/zapi/client-token', WithDecryption: true })
      .resolves({ Parameter: { Value: CLIENT_TOKEN } });
    zapi.reset();
    zapi.presenceUrl = 'https://old.example.com/hook';
    zapi.requireClientToken = undefined;
    logs = [];
    for (const level of ['log', 'info', 'warn', 'error', 'debug'] as const) {
      vi.spyOn(console, level).mockImplementation((...args: unknown[]) => {
        logs.push(JSON.stringify(args));
      });
    }
  });

  afterEach(() => {
    vi.unstubAllEnvs();
    expectNoSecrets(allOutput());
  });

  it.each(['Create', 'Update'] as const)(
    '%s: PUTs the URL with the secret exactly as documented, then confirms with GET me',
    async (type) => {
      const handler = await loadHandler();
      const response = await handler(cfnEvent(type));
      expect(response).toEqual({
        PhysicalResourceId: `zapi-chat-presence:${INSTANCE}`,
        Data: { WebhookUrl: WEBHOOK_URL },
      });
      expect(zapi.presenceUrl).toBe(REGISTERED);
      expect(zapi.requests.map((r) => `${r.method} ${r.path}`)).toEqual([
        `PUT /instances/${INSTANCE}/token/${TOKEN}/update-webhook-chat-presence`,
        `GET /instances/${INSTANCE}/token/${TOKEN}/me`,
      ]);
      const put = zapi.requests[0];
      expect(JSON.parse(put?.body ?? '')).toEqual({ value: REGISTERED });
      expect(put?.headers['content-type']).toBe('application/json');
      expect(put?.headers['client-token']).toBeUndefined();
      expectNoSecrets(JSON.stringify(response));
    },
  );

  it('sends the Client-Token header when the account security token is configured', async () => {
    zapi.requireClientToken = CLIENT_TOKEN;
    const handler = await loadHandler();
    await handler(cfnEvent('Create', { ClientTokenParameter: '/zapi/client-token' }));
    expect(zapi.requests.map((r) => r.headers['client-token'])).toEqual([CLIENT_TOKEN, CLIENT_TOKEN]);
    expect(zapi.presenceUrl).toBe(REGISTERED);
  });

  it('explains "null not allowed": the account requires a Client-Token (and does not retry the 4xx)', async () => {
    zapi.requireClientToken = CLIENT_TOKEN;
    const handler = await loadHandler();
    const error = await handler(cfnEvent('Create')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toMatch(
      /Z-API answered 400 to PUT update-webhook-chat-presence: "null not allowed"; the account requires its security token.*clientTokenParameter/,
    );
    expect(zapi.requests).toHaveLength(1);
    expectNoSecrets(allOutput(error));
  });

  it('retries 5xx and network hiccups with backoff, then succeeds', async () => {
    zapi.script(
      { status: 502, body: '<html>Bad Gateway</html>' },
      { status: 503, body: `{"error":"down for ${TOKEN}"}` },
    );
    const handler = await loadHandler();
    await handler(cfnEvent('Create'));
    expect(zapi.requests.filter((r) => r.method === 'PUT')).toHaveLength(3);
    expect(zapi.presenceUrl).toBe(REGISTERED);
  });

  it('gives up after bounded attempts and says what happened, without the token', async () => {
    zapi.script(
      ...Array.from({ length: 4 }, () => ({
        status: 500,
        body: `{"error":"internal error at /instances/${INSTANCE}/token/${TOKEN}"}`,
      })),
    );
    const handler = await loadHandler();
    const error = (await handler(cfnEvent('Create')).catch((e: unknown) => e)) as Error;
    expect(error.message).toMatch(
      /Z-API did not answer PUT update-webhook-chat-presence successfully after 4 attempt\(s\): HTTP 500 "internal error at \/instances\/3C01A2B3C4D5E6F7\/token\/\*\*\*"/,
    );
    expect(zapi.requests).toHaveLength(4);
    expectNoSecrets(allOutput(error));
  });

  it('times out a hanging Z-API per attempt and retries', async () => {
    zapi.script('hang');
    const handler = await loadHandler();
    const started = Date.now();
    await handler(cfnEvent('Create'));
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(zapi.requests.filter((r) => r.method === 'PUT')).toHaveLength(2);
    expect(zapi.presenceUrl).toBe(REGISTERED);
  });

  it('fails when Z-API answers {"value": false}', async () => {
    zapi.script({ status: 200, body: '{"value":false}' });
    const handler = await loadHandler();
    await expect(handler(cfnEvent('Create'))).rejects.toThrow(
      /Z-API answered 200 to PUT update-webhook-chat-presence without accepting the URL \(\{"value":false\}\)/,
    );
  });

  it('fails when GET me shows another URL after the update, naming it without secrets', async () => {
    zapi.script({ status: 200, body: '{"value":true}' });
    zapi.presenceUrl = 'https://someone-else.example.com/hook?secret=OTHER-DEPLOYMENT-LIVE-SECRET-42&x=1';
    const handler = await loadHandler();
    const error = (await handler(cfnEvent('Create')).catch((e: unknown) => e)) as Error;
    expect(error.message).toBe(
      `Z-API accepted the update but its instance data (GET me) shows chat-presence webhook "https://someone-else.example.com/hook?***" instead of "${WEBHOOK_URL}?secret=***"; check the instance in the Z-API panel`,
    );
    expect(allOutput(error)).not.toContain('OTHER-DEPLOYMENT-LIVE-SECRET-42');
  });

  it('refuses a non-HTTPS webhook URL before any call', async () => {
    const handler = await loadHandler();
    await expect(
      handler(
        cfnEvent('Create', { WebhookUrl: `http://insecure.example.com/instances/${INSTANCE}/presence` }),
      ),
    ).rejects.toThrow(/only calls HTTPS webhooks/);
    expect(zapi.requests).toHaveLength(0);
    expect(ssm.commandCalls(GetParameterCommand)).toHaveLength(0);
  });

  it('names a missing SSM parameter and how to create it', async () => {
    ssm
      .on(GetParameterCommand, { Name: `/zapi/${INSTANCE}/token`, WithDecryption: true })
      .rejects(Object.assign(new Error('not found'), { name: 'ParameterNotFound' }));
    const handler = await loadHandler();
    await expect(handler(cfnEvent('Create'))).rejects.toThrow(
      `SSM parameter /zapi/${INSTANCE}/token does not exist; create it: aws ssm put-parameter --type SecureString --name /zapi/${INSTANCE}/token --value ...`,
    );
    expect(zapi.requests).toHaveLength(0);
  });

  it('says when a parameter cannot be decrypted', async () => {
    ssm
      .on(GetParameterCommand, { Name: '/zapi/webhook-secret', WithDecryption: true })
      .rejects(Object.assign(new Error('denied'), { name: 'AccessDeniedException' }));
    const handler = await loadHandler();
    await expect(handler(cfnEvent('Create'))).rejects.toThrow(
      /SSM parameter \/zapi\/webhook-secret cannot be read \(AccessDeniedException\); .*kms:Decrypt/,
    );
  });

  it('refuses a webhook secret the receiver would refuse', async () => {
    ssm
      .on(GetParameterCommand, { Name: '/zapi/webhook-secret', WithDecryption: true })
      .resolves({ Parameter: { Value: 'tiny-secret-x' } });
    const handler = await loadHandler();
    await expect(handler(cfnEvent('Create'))).rejects.toThrow(/shorter than 16 characters/);
    expect(zapi.requests).toHaveLength(0);
  });

  it('stops retrying when the Lambda is about to time out', async () => {
    zapi.script(...Array.from({ length: 10 }, () => 'hang' as const));
    const handler = await loadHandler();
    const error = (await handler(cfnEvent('Create'), { getRemainingTimeInMillis: () => 10_700 }).catch(
      (e: unknown) => e,
    )) as Error;
    expect(error.message).toMatch(/stopped retrying: out of time/);
    expect(zapi.requests.length).toBeLessThan(4);
  });

  it('never fails a rollback (an Update carrying an older deploy nonce), but still tries to put the old URL back', async () => {
    zapi.script(...Array.from({ length: 4 }, () => ({ status: 500, body: '{}' })));
    const handler = await loadHandler();
    const rollback = cfnEvent('Update', { DeployNonce: '2026-11-25T11:00:00.000Z' });
    if (rollback.RequestType !== 'Update') throw new Error('unreachable');
    const event = {
      ...rollback,
      OldResourceProperties: { ...rollback.OldResourceProperties, DeployNonce: '2026-11-25T12:00:00.000Z' },
    };
    await expect(handler(event)).resolves.toEqual({
      PhysicalResourceId: `zapi-chat-presence:${INSTANCE}`,
      Data: { WebhookUrl: WEBHOOK_URL },
    });
    expect(zapi.requests.filter((r) => r.method === 'PUT')).toHaveLength(4);
    expect(logs.join()).toContain('rollback: could not re-register');
    // The same failure on a forward Update fails the deploy.
    zapi.script(...Array.from({ length: 4 }, () => ({ status: 500, body: '{}' })));
    await expect(handler(cfnEvent('Update'))).rejects.toThrow(/did not answer/);
  });

  describe('Delete', () => {
    it('clears the webhook when Z-API still calls this deployment', async () => {
      zapi.presenceUrl = REGISTERED;
      const handler = await loadHandler();
      const response = await handler(cfnEvent('Delete'));
      expect(response).toEqual({ PhysicalResourceId: `zapi-chat-presence:${INSTANCE}` });
      expect(zapi.requests.map((r) => r.method)).toEqual(['GET', 'PUT']);
      expect(JSON.parse(zapi.requests[1]?.body ?? '')).toEqual({ value: '' });
      expect(zapi.presenceUrl).toBe('');
      expect(logs.join()).toContain('webhook cleared');
    });

    it('leaves a URL that is not ours alone', async () => {
      zapi.presenceUrl = 'https://another-deployment.example.com/instances/x/presence?secret=zzz';
      const handler = await loadHandler();
      await handler(cfnEvent('Delete'));
      expect(zapi.requests.map((r) => r.method)).toEqual(['GET']);
      expect(zapi.presenceUrl).toContain('another-deployment');
    });

    it('never fails: Z-API refusing to clear is a warning', async () => {
      zapi.presenceUrl = REGISTERED;
      zapi.script(
        { status: 200, body: JSON.stringify({ presenceChatCallbackUrl: REGISTERED }) },
        { status: 400, body: '{"error":"value must be https"}' },
      );
      const handler = await loadHandler();
      await expect(handler(cfnEvent('Delete'))).resolves.toEqual({
        PhysicalResourceId: `zapi-chat-presence:${INSTANCE}`,
      });
      expect(logs.join()).toContain('clear the chat-presence webhook in the Z-API panel');
    });

    it('never fails: Z-API down, SSM missing, properties broken', async () => {
      const deleted = { PhysicalResourceId: `zapi-chat-presence:${INSTANCE}` };
      zapi.script(...Array.from({ length: 4 }, () => ({ status: 500, body: '{}' })));
      let handler = await loadHandler();
      await expect(handler(cfnEvent('Delete'))).resolves.toEqual(deleted);
      ssm.reset();
      ssm.on(GetParameterCommand).rejects(Object.assign(new Error('x'), { name: 'ParameterNotFound' }));
      handler = await loadHandler();
      await expect(handler(cfnEvent('Delete'))).resolves.toEqual(deleted);
      await expect(handler(cfnEvent('Delete', { InstanceId: '' }))).resolves.toEqual(deleted);
      expect(logs.join()).toContain('the stack deletion goes on');
    });
  });
});
