/** The optional presence store, as the app and the construct build it. */
import { Duration } from 'aws-cdk-lib';
import { Match, type Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { STATE_ENV, TABLE_ATTRIBUTES } from '../../functions/presence-store/settings.ts';
import {
  DERIVED_DETAIL_TYPES,
  DERIVED_EVENT_SOURCE,
  EVENT_SOURCE,
} from '../../functions/shared/contract/presence-contract.ts';
import { descriptionText } from '../support/alarm-variants.ts';
import { buildApp, synth } from '../support/synth.ts';

type Resources = Record<string, { Type: string; Properties: Record<string, unknown>; DependsOn?: string[] }>;

const idOf = (template: Template, type: string, prefix: string): string => {
  const found = Object.keys(template.findResources(type)).filter((id) => id.startsWith(prefix));
  expect(found, `${type} ${prefix}*`).toHaveLength(1);
  return found[0] as string;
};

describe('presence store (presenceStore=true)', () => {
  let template: Template;
  let report: ReturnType<typeof synth>['report'];

  beforeAll(() => {
    const result = synth({ presenceStore: 'true', activityExpirySeconds: '20', presenceIdleDays: '14' });
    template = result.template;
    report = result.report;
  });

  it('is off by default: no table, no state functions, no read route', () => {
    const { template: plain } = synth({});
    plain.resourceCountIs('AWS::DynamoDB::GlobalTable', 0);
    expect(Object.keys(plain.findResources('AWS::ApiGatewayV2::Route'))).toHaveLength(1);
    expect(plain.findOutputs('PresenceTableName')).toEqual({});
  });

  it('keeps one item per chat (or group participant: sort key `chat`): on-demand, point-in-time recovery, TTL', () => {
    expect(TABLE_ATTRIBUTES).toEqual({ partitionKey: 'instanceId', sortKey: 'chat', ttl: 'expiresAt' });
    template.hasResourceProperties('AWS::DynamoDB::GlobalTable', {
      KeySchema: [
        { AttributeName: 'instanceId', KeyType: 'HASH' },
        { AttributeName: 'chat', KeyType: 'RANGE' },
      ],
      AttributeDefinitions: [
        { AttributeName: 'instanceId', AttributeType: 'S' },
        { AttributeName: 'chat', AttributeType: 'S' },
      ],
      BillingMode: 'PAY_PER_REQUEST',
      TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
      Replicas: [
        Match.objectLike({ PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true } }),
      ],
    });
  });

  it('subscribes to every raw presence event through a queue with a dead-letter queue', () => {
    const queue = idOf(template, 'AWS::SQS::Queue', 'StateEvents');
    template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: { source: [EVENT_SOURCE], 'detail-type': [{ prefix: 'Z-API Chat Presence ' }] },
      Targets: [Match.objectLike({ Arn: { 'Fn::GetAtt': [queue, 'Arn'] } })],
    });
    const queues = template.findResources('AWS::SQS::Queue') as Resources;
    for (const id of [queue, idOf(template, 'AWS::SQS::Queue', 'StateExpiry')]) {
      expect(queues[id]?.Properties).toMatchObject({
        RedrivePolicy: {
          // Retries that span an outage of over an hour (see MAX_RECEIVES).
          maxReceiveCount: 20,
          deadLetterTargetArn: {
            'Fn::GetAtt': [idOf(template, 'AWS::SQS::Queue', 'StateDeadLetters'), 'Arn'],
          },
        },
        SqsManagedSseEnabled: true,
        // Six times the state function's 30 s timeout.
        VisibilityTimeout: 180,
      });
    }
  });

  it('runs the state function on both queues in batches with partial failures', () => {
    const mappings = Object.values(template.findResources('AWS::Lambda::EventSourceMapping') as Resources);
    expect(mappings).toHaveLength(2);
    for (const mapping of mappings) {
      expect(mapping.Properties).toMatchObject({
        BatchSize: 10,
        FunctionResponseTypes: ['ReportBatchItemFailures'],
        ScalingConfig: { MaximumConcurrency: 20 },
      });
    }
    // The events wait at most a second to fill a batch; the expiry checks, delayed already, none.
    const windows = mappings.map((m) => m.Properties.MaximumBatchingWindowInSeconds).sort();
    expect(windows).toEqual([1, undefined]);
  });

  it('gives the state function its settings and exactly the access it uses', () => {
    const state = Object.keys(template.findResources('AWS::Lambda::Function')).find((id) =>
      /^State[0-9A-F]{8}$/.test(id),
    ) as string;
    const functions = template.findResources('AWS::Lambda::Function') as Resources;
    const variables =
      (functions[state]?.Properties.Environment as { Variables: Record<string, unknown> } | undefined)
        ?.Variables ?? {};
    expect(variables[STATE_ENV.expirySeconds]).toBe('20');
    expect(variables[STATE_ENV.idleDays]).toBe('14');
    // Every setting but the read function's own (the agents' groups claim, with the live feed).
    expect(Object.keys(variables).sort()).toEqual(
      Object.values(STATE_ENV)
        .filter((name) => name !== STATE_ENV.groupsClaim)
        .sort(),
    );
    const policies = Object.values(template.findResources('AWS::IAM::Policy') as Resources).filter((p) =>
      JSON.stringify(p.Properties.Roles).includes('StateStateRole'),
    );
    const statements = policies.flatMap(
      (p) => (p.Properties.PolicyDocument as { Statement: Array<{ Action: string | string[] }> }).Statement,
    );
    const actions = statements.flatMap((s) => (Array.isArray(s.Action) ? s.Action : [s.Action])).sort();
    expect(actions).toEqual(
      expect.arrayContaining([
        'dynamodb:BatchGetItem',
        'dynamodb:GetItem',
        'dynamodb:PutItem',
        'dynamodb:UpdateItem',
        'events:PutEvents',
      ]),
    );
    expect(actions.filter((a) => a.startsWith('dynamodb:'))).toEqual([
      'dynamodb:BatchGetItem',
      'dynamodb:GetItem',
      'dynamodb:PutItem',
      'dynamodb:UpdateItem',
    ]);
    expect(actions).not.toContain('dynamodb:Scan');
    expect(functions[state]?.Properties.Timeout).toBe(30);
    // It puts derived events only (never raw presence, which its own rule would feed back to it).
    const putEvents = statements.filter((s) => JSON.stringify(s.Action).includes('events:'));
    expect(putEvents).toEqual([
      {
        Action: 'events:PutEvents',
        Effect: 'Allow',
        Condition: { StringEquals: { 'events:source': DERIVED_EVENT_SOURCE } },
        Resource: { 'Fn::GetAtt': [idOf(template, 'AWS::Events::EventBus', 'PresenceBus'), 'Arn'] },
      },
    ]);
    expect(DERIVED_EVENT_SOURCE).toBe('zapi.chat-presence.state');
  });

  it('serves GET /instances/{instanceId}/chats/{phone}/presence with IAM authorization, read-only', () => {
    template.hasResourceProperties('AWS::ApiGatewayV2::Route', {
      RouteKey: 'GET /instances/{instanceId}/chats/{phone}/presence',
      AuthorizationType: 'AWS_IAM',
    });
    const policies = Object.values(template.findResources('AWS::IAM::Policy') as Resources).filter((p) =>
      JSON.stringify(p.Properties.Roles).includes('StateReadRole'),
    );
    const actions = policies
      .flatMap(
        (p) => (p.Properties.PolicyDocument as { Statement: Array<{ Action: string | string[] }> }).Statement,
      )
      .flatMap((s) => (Array.isArray(s.Action) ? s.Action : [s.Action]))
      .filter((a) => !a.startsWith('logs:'));
    // One chat (GetItem) or a group's participants (Query); nothing that writes.
    expect(actions).toEqual(['dynamodb:GetItem', 'dynamodb:Query']);
    const read = Object.keys(template.findResources('AWS::Lambda::Function')).find((id) =>
      /^StateRead[0-9A-F]{8}$/.test(id),
    ) as string;
    const functions = template.findResources('AWS::Lambda::Function') as Resources;
    expect(functions[read]?.Properties.Environment).toEqual({
      Variables: {
        [STATE_ENV.tableName]: { Ref: idOf(template, 'AWS::DynamoDB::GlobalTable', 'StateTable') },
        [STATE_ENV.expirySeconds]: '20',
      },
    });
    const url = JSON.stringify(template.findOutputs('PresenceReadUrl'));
    expect(url).toContain('/instances/{instanceId}/chats/{phone}/presence');
  });

  it('alarms on state failures and dead letters, and registers the derived events’ schemas', () => {
    const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm') as Resources).map((a) =>
      descriptionText(a.Properties.AlarmDescription),
    );
    expect(alarms.some((d) => d.startsWith("The presence store's state function <Ref State"))).toBe(true);
    expect(
      alarms.some((d) =>
        d.startsWith("Presence events or expiry checks the presence store's state function gave up on"),
      ),
    ).toBe(true);
    // Records failing (handed back, so Lambda's Errors stays at zero): two 5-minute periods in a row.
    const failing = Object.values(template.findResources('AWS::CloudWatch::Alarm') as Resources).find((a) =>
      descriptionText(a.Properties.AlarmDescription).startsWith(
        'Presence events or expiry checks kept failing',
      ),
    );
    expect(failing?.Properties).toMatchObject({
      MetricName: 'StateRecordFailures',
      Statistic: 'Sum',
      Period: 300,
      EvaluationPeriods: 2,
      DatapointsToAlarm: 2,
      Threshold: 1,
      AlarmActions: [{ Ref: expect.stringMatching(/^MonitoringAlarmTopic/) }],
    });
    // A backlog: the oldest message of either queue over 10 minutes, not yet received.
    const backlog = Object.values(template.findResources('AWS::CloudWatch::Alarm') as Resources).find((a) =>
      descriptionText(a.Properties.AlarmDescription).startsWith(
        'A presence event or expiry check waited over 10 minutes',
      ),
    );
    expect(backlog?.Properties).toMatchObject({
      Threshold: 600,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      TreatMissingData: 'notBreaching',
      AlarmActions: [{ Ref: expect.stringMatching(/^MonitoringAlarmTopic/) }],
    });
    const metrics = backlog?.Properties.Metrics as Array<{
      Id: string;
      Expression?: string;
      MetricStat?: unknown;
    }>;
    expect(metrics.map((m) => m.Id).filter((id) => id !== 'expr_1')).toEqual(['events', 'expiry']);
    expect(metrics.find((m) => m.Expression)?.Expression).toBe('MAX([events, expiry])');
    for (const id of ['events', 'expiry']) {
      expect(metrics.find((m) => m.Id === id)?.MetricStat).toMatchObject({
        Metric: { MetricName: 'ApproximateAgeOfOldestMessage', Namespace: 'AWS/SQS' },
        Period: 300,
        Stat: 'Maximum',
      });
    }
    const schemas = Object.values(template.findResources('AWS::EventSchemas::Schema') as Resources).map(
      (s) => s.Properties.SchemaName,
    );
    expect(schemas).toHaveLength(1 + Object.keys(DERIVED_DETAIL_TYPES).length);
    expect(schemas).toContain(`${DERIVED_EVENT_SOURCE}@ZapiChatActivityStarted`);
  });

  it('is clean under cdk-nag', () => {
    for (const plugin of report.pluginReports) expect(plugin.violations, plugin.pluginName).toEqual([]);
  });

  it('refuses an expiry or idle horizon out of range', () => {
    expect(() => buildApp({ presenceStore: 'true', activityExpirySeconds: '4' })).toThrow(
      /activityExpirySeconds: expected a whole number from 5 to 120/,
    );
    const { stack } = buildApp({}, { nag: false });
    expect(stack.presence.presenceTable).toBeUndefined();
    expect(Duration.seconds(25).toSeconds()).toBe(25);
  });
});
