import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../lib/config.ts';
import { instanceTokenParameterName } from '../../lib/webhook-registration.ts';

const from = (context: Record<string, unknown>) => loadConfig((key) => context[key]);

function problemsOf(context: Record<string, unknown>): string[] {
  try {
    from(context);
  } catch (error) {
    if (error instanceof ConfigError) return [...error.problems];
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  it('needs only instanceId and documents every default', () => {
    expect(from({ instanceId: 'TEST' })).toEqual({
      instanceIds: ['TEST'],
      webhookSecretParameter: '/zapi/webhook-secret',
      instanceTokenParameter: '/zapi/{instanceId}/token',
      zapiBaseUrl: 'https://api.z-api.io',
      registerWebhook: true,
      throttleRateLimit: 50,
      throttleBurstLimit: 100,
      maxBodyBytes: 16_384,
      archiveRetentionDays: 30,
      logRetentionDays: RetentionDays.ONE_MONTH,
      receiverReservedConcurrency: 10,
      metricsNamespace: 'ZapiPresence',
      schemaRegistry: true,
      debugEventLog: false,
    });
  });

  it('takes several instances, comma-separated, trimmed and de-duplicated', () => {
    expect(from({ instanceId: ' ID1, ID2 ,ID1' }).instanceIds).toEqual(['ID1', 'ID2']);
  });

  it('reads strings from -c and numbers from cdk.json alike', () => {
    const config = from({
      instanceId: 'A',
      throttleRateLimit: '120',
      throttleBurstLimit: 240,
      logRetentionDays: '90',
    });
    expect(config).toMatchObject({ throttleRateLimit: 120, throttleBurstLimit: 240, logRetentionDays: 90 });
  });

  it('takes an existing bus by ARN and an optional Client-Token parameter', () => {
    const arn = 'arn:aws:events:sa-east-1:123456789012:event-bus/shared';
    expect(
      from({ instanceId: 'A', eventBusArn: arn, clientTokenParameter: '/zapi/client-token' }),
    ).toMatchObject({
      eventBusArn: arn,
      clientTokenParameter: '/zapi/client-token',
    });
  });

  it('names the key and shows an example for a missing instanceId', () => {
    expect(problemsOf({})).toEqual([
      'instanceId: is required (the Z-API instance id whose chat presence is received). Example: -c instanceId=3C01A2B3C4D5E6F7A8B9C0D1E2F3A4B5 (several: ID1,ID2)',
    ]);
  });

  it.each([
    [
      'instanceId',
      { instanceId: 'bad id!' },
      /instanceId: "bad id!" is not a Z-API instance id.*Example: -c instanceId=/,
    ],
    ['instanceId', { instanceId: ',' }, /instanceId: .* is not a Z-API instance id/],
    [
      'throttleRateLimit',
      { throttleRateLimit: 'fast' },
      /throttleRateLimit: expected a whole number from 1 to 10000, got "fast". Example: -c throttleRateLimit=50/,
    ],
    ['throttleBurstLimit', { throttleBurstLimit: '0' }, /throttleBurstLimit: expected a whole number/],
    [
      'maxBodyBytes',
      { maxBodyBytes: '10000000' },
      /maxBodyBytes: expected a whole number from 256 to 200000/,
    ],
    [
      'archiveRetentionDays',
      { archiveRetentionDays: '-1' },
      /archiveRetentionDays: .*Example: -c archiveRetentionDays=30/,
    ],
    [
      'logRetentionDays',
      { logRetentionDays: '42' },
      /logRetentionDays: 42 is not a CloudWatch Logs retention; use one of 1, 3, 5, 7, 14, 30/,
    ],
    [
      'eventBusArn',
      { eventBusArn: 'my-bus' },
      /eventBusArn: "my-bus" is not an event bus ARN. Example: -c eventBusArn=arn:aws:events:/,
    ],
    [
      'zapiBaseUrl',
      { zapiBaseUrl: 'http://api.z-api.io' },
      /zapiBaseUrl: "http:\/\/api.z-api.io" is not an https:\/\/ URL/,
    ],
    [
      'receiverReservedConcurrency',
      { receiverReservedConcurrency: '0' },
      /receiverReservedConcurrency: expected a whole number from 1 to 1000, got "0". Example: -c receiverReservedConcurrency=10 \(or off\)/,
    ],
    [
      'metricsNamespace',
      { metricsNamespace: 'AWS/Lambda' },
      /metricsNamespace: "AWS\/Lambda" is not a CloudWatch namespace of your own/,
    ],
    ['alarmEmail', { alarmEmail: 'oncall' }, /alarmEmail: "oncall" is not an e-mail address/],
    ['schemaRegistry', { schemaRegistry: 'nope' }, /schemaRegistry: expected true or false/],
    ['registerWebhook', { registerWebhook: 'yes' }, /registerWebhook: expected true or false, got "yes"/],
    ['eventBusName', { eventBusName: 'default' }, /eventBusName: "default" is not a valid name/],
    [
      'webhookSecretParameter',
      { webhookSecretParameter: 'has space' },
      /webhookSecretParameter: "has space" is not a valid SSM parameter name/,
    ],
    [
      'instanceTokenParameter',
      { instanceId: 'A,B', instanceTokenParameter: '/zapi/token' },
      /instanceTokenParameter: must contain \{instanceId\}/,
    ],
  ])('rejects a bad %s with a message naming it', (_key, context, message) => {
    const problems = problemsOf({ instanceId: 'A', ...context });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(message);
  });

  it('reports every problem at once', () => {
    const problems = problemsOf({ throttleRateLimit: 'x', logRetentionDays: '2' });
    expect(problems.map((p) => p.split(':')[0])).toEqual([
      'instanceId',
      'throttleRateLimit',
      'logRetentionDays',
    ]);
  });

  it('refuses an eventBusName together with an eventBusArn', () => {
    expect(
      problemsOf({
        instanceId: 'A',
        eventBusName: 'x',
        eventBusArn: 'arn:aws:events:us-east-1:123456789012:event-bus/y',
      })[0],
    ).toMatch(/cannot be combined with eventBusArn/);
  });

  it('derives the token parameter of each instance', () => {
    const config = from({ instanceId: 'A,B' });
    expect(
      config.instanceIds.map((id) => instanceTokenParameterName(config.instanceTokenParameter, id)),
    ).toEqual(['/zapi/A/token', '/zapi/B/token']);
  });
});
