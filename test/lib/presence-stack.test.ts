import { Match } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { RECEIVER_ENV } from '../../functions/presence-webhook/env.ts';
import { EVENT_SOURCE } from '../../functions/shared/presence-contract.ts';
import { ACCESS_LOG_FIELDS } from '../../lib/presence-webhook.ts';
import { synth } from '../support/synth.ts';

const base = synth({ instanceId: 'TEST,OTHER' });
const { template } = base;

function receiverPolicyStatements(t = template) {
  const policies = t.findResources('AWS::IAM::Policy');
  const receiver = Object.entries(policies).find(([id]) => id.startsWith('PresenceReceiverRole'));
  if (!receiver) throw new Error('no receiver role policy');
  return (receiver[1] as { Properties: { PolicyDocument: { Statement: Array<Record<string, unknown>> } } })
    .Properties.PolicyDocument.Statement;
}

describe('PresenceStack', () => {
  it('routes POST /instances/{instanceId}/presence to the receiver (proxy, payload v2)', () => {
    template.hasResourceProperties('AWS::ApiGatewayV2::Route', {
      RouteKey: 'POST /instances/{instanceId}/presence',
    });
    template.resourceCountIs('AWS::ApiGatewayV2::Route', 1);
    template.hasResourceProperties('AWS::ApiGatewayV2::Integration', {
      IntegrationType: 'AWS_PROXY',
      PayloadFormatVersion: '2.0',
    });
  });

  it('runs the receiver on the newest Node.js runtime, arm64, with explicit memory, timeout and JSON logs', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      Runtime: 'nodejs24.x',
      Architectures: ['arm64'],
      MemorySize: 256,
      Timeout: 10,
      LoggingConfig: Match.objectLike({ LogFormat: 'JSON', LogGroup: Match.anyValue() }),
      Environment: {
        Variables: {
          [RECEIVER_ENV.eventBusName]: Match.anyValue(),
          [RECEIVER_ENV.instanceIds]: 'TEST,OTHER',
          [RECEIVER_ENV.secretParameterName]: '/zapi/webhook-secret',
          [RECEIVER_ENV.maxBodyBytes]: '16384',
        },
      },
    });
    template.hasResourceProperties('AWS::Logs::LogGroup', { RetentionInDays: 30 });
  });

  it('throttles the stage and writes JSON access logs that cannot hold the secret', () => {
    const stages = template.findResources('AWS::ApiGatewayV2::Stage');
    expect(Object.keys(stages)).toHaveLength(1);
    const stage = Object.values(stages)[0] as {
      Properties: {
        StageName: string;
        AutoDeploy: boolean;
        DefaultRouteSettings: unknown;
        AccessLogSettings: { Format: string };
      };
    };
    expect(stage.Properties.StageName).toBe('$default');
    expect(stage.Properties.AutoDeploy).toBe(true);
    expect(stage.Properties.DefaultRouteSettings).toEqual({
      ThrottlingRateLimit: 50,
      ThrottlingBurstLimit: 100,
    });
    const format = stage.Properties.AccessLogSettings.Format;
    expect(JSON.parse(format)).toEqual(ACCESS_LOG_FIELDS);
    expect(format).toContain('$context.routeKey');
    for (const leaky of [
      '$context.path',
      'querystring',
      'rawQueryString',
      '$request',
      '$context.domainPrefix',
    ]) {
      expect(format).not.toContain(leaky);
    }
  });

  it('creates a bus with an archive of every presence event', () => {
    template.resourceCountIs('AWS::Events::EventBus', 1);
    template.hasResourceProperties('AWS::Events::Archive', {
      EventPattern: { source: [EVENT_SOURCE] },
      RetentionDays: 30,
      SourceArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^PresenceBus'), 'Arn'] },
    });
  });

  it('grants exactly PutEvents on the bus and GetParameter on the secret parameter', () => {
    const statements = receiverPolicyStatements();
    expect(statements).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          Action: 'events:PutEvents',
          Effect: 'Allow',
          Resource: { 'Fn::GetAtt': [expect.stringMatching(/^PresenceBus/), 'Arn'] },
        }),
        expect.objectContaining({
          Action: 'ssm:GetParameter',
          Effect: 'Allow',
          Resource: {
            'Fn::Join': [
              '',
              [
                'arn:',
                { Ref: 'AWS::Partition' },
                ':ssm:sa-east-1:123456789012:parameter/zapi/webhook-secret',
              ],
            ],
          },
        }),
      ]),
    );
    const actions = statements.flatMap((s) => [s.Action].flat());
    expect(actions.sort()).toEqual([
      'events:PutEvents',
      'logs:CreateLogStream',
      'logs:PutLogEvents',
      'ssm:GetParameter',
    ]);
    for (const statement of statements) expect(statement.Resource).not.toBe('*');
    // Only CDK's provider-framework role (acknowledged) carries a managed policy.
    const managed = Object.keys(
      template.findResources('AWS::IAM::Role', { Properties: { ManagedPolicyArns: Match.anyValue() } }),
    );
    expect(managed).toEqual([
      expect.stringMatching(/^WebhookRegistrationProviderframeworkonEventServiceRole/),
    ]);
  });

  it('outputs the base URL and the bus, never the secret', () => {
    const outputs = template.findOutputs('*');
    expect(Object.keys(outputs).sort()).toEqual([
      'DashboardName',
      'EventBusArn',
      'EventBusName',
      'SchemaRegistryName',
      'WebhookBaseUrl',
    ]);
    const text = JSON.stringify(template.toJSON());
    expect(text).not.toMatch(/secret=/i);
    expect(text).not.toContain('resolve:ssm-secure');
    template.resourceCountIs('AWS::SSM::Parameter', 0);
  });

  it('publishes to an existing bus given by ARN, with the archive on it', () => {
    const arn = 'arn:aws:events:sa-east-1:123456789012:event-bus/shared';
    const { template: t } = synth({
      instanceId: 'TEST',
      eventBusArn: arn,
      throttleRateLimit: '7',
      archiveRetentionDays: '0',
    });
    t.resourceCountIs('AWS::Events::EventBus', 0);
    t.hasResourceProperties('AWS::Events::Archive', { SourceArn: arn, RetentionDays: 0 });
    expect(receiverPolicyStatements(t)).toEqual(
      expect.arrayContaining([expect.objectContaining({ Action: 'events:PutEvents', Resource: arn })]),
    );
    t.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      DefaultRouteSettings: Match.objectLike({ ThrottlingRateLimit: 7 }),
    });
    t.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ [RECEIVER_ENV.eventBusName]: arn }) },
    });
  });

  it('refuses a bus in another region or account, naming the context key', () => {
    expect(() =>
      synth({ instanceId: 'TEST', eventBusArn: 'arn:aws:events:us-east-1:123456789012:event-bus/x' }),
    ).toThrow(/eventBusArn: the bus is in region us-east-1 \(the stack deploys to sa-east-1\)/);
    expect(() =>
      synth({ instanceId: 'TEST', eventBusArn: 'arn:aws:events:sa-east-1:999999999999:event-bus/x' }),
    ).toThrow(/eventBusArn: the bus is in account 999999999999/);
  });

  it('passes cdk-nag (AwsSolutions, Serverless) with every acknowledgement scoped to one resource', () => {
    const names = base.report.pluginReports.map((r) => r.pluginName).sort();
    expect(names).toEqual(expect.arrayContaining(['AwsSolutions', 'Serverless']));
    for (const report of base.report.pluginReports) {
      expect(report.violations, report.pluginName).toEqual([]);
      for (const suppressed of report.suppressedViolations) {
        expect(suppressed.reason.length).toBeGreaterThan(40);
        expect(suppressed.acknowledgedAt).not.toBe('ZapiPresence');
        for (const construct of suppressed.violatingConstructs) {
          expect(construct.constructPath.startsWith(`${suppressed.acknowledgedAt}/`)).toBe(true);
        }
      }
    }
  });
});
