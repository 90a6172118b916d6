/**
 * `ZapiPresence` as a library user sees it (imported by the package's name): a plain App and Stack, the
 * construct under an id of the user's choosing, its public members, onStatus and onDerived, webhookUrl,
 * every prop group, log encryption, subscribers from other accounts, an imported bus, two in one stack,
 * error messages in its own prop names, and a consumer stack kept cdk-nag clean.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App, Duration, Fn, Stack, Validations } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { HttpApi } from 'aws-cdk-lib/aws-apigatewayv2';
import { Dashboard } from 'aws-cdk-lib/aws-cloudwatch';
import { Archive, EventBus } from 'aws-cdk-lib/aws-events';
import { SqsQueue } from 'aws-cdk-lib/aws-events-targets';
import { Key } from 'aws-cdk-lib/aws-kms';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { Queue } from 'aws-cdk-lib/aws-sqs';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  DERIVED_DETAIL_TYPES,
  DERIVED_EVENT_SOURCE,
  DETAIL_TYPE_PREFIX,
  DETAIL_TYPES,
  derivedEventPattern,
  EVENT_SOURCE,
  PresenceSubscription,
  presenceEventPattern,
  ZapiPresence,
  type ZapiPresenceProps,
} from 'zapi-presence-eventbridge';
import {
  FLEET_ENV,
  REGISTRATION_PROPERTIES,
  REGISTRATION_RESOURCE_TYPE,
} from '../../functions/fleet/settings.ts';
import { STATE_ENV } from '../../functions/presence-store/settings.ts';
import { RECEIVER_ENV } from '../../functions/presence-webhook/settings.ts';
import { addNagPacks } from '../../lib/nag.ts';
import type { ValidationReport } from '../support/synth.ts';

const ENV = { account: '123456789012', region: 'sa-east-1' } as const;
const BUS_ARN = 'arn:aws:events:sa-east-1:123456789012:event-bus/shared';
const SUBSCRIBER = '210987654321';
const OTHER_SUBSCRIBER = '111122223333';

type Resource = { Type: string; Properties: Record<string, unknown>; DependsOn?: string[] };
type Statement = Record<string, unknown>;

/** What a user writes: a plain App (bundling skipped, as in any unit test) and a stack with an env. */
function userStack(props: ZapiPresenceProps = {}, env: typeof ENV | 'agnostic' = ENV) {
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  const stack = new Stack(app, 'S', env === 'agnostic' ? {} : { env });
  const presence = new ZapiPresence(stack, 'Presence', props);
  return { app, stack, presence, template: () => Template.fromStack(stack) };
}

function resourcesOf(template: Template, type: string): Array<[string, Resource]> {
  return Object.entries(template.findResources(type)) as Array<[string, Resource]>;
}

/** The one resource of a type whose logical id is `prefix` plus CDK's 8-hex suffix. */
function one(template: Template, type: string, prefix: string): [string, Resource] {
  const found = resourcesOf(template, type).filter(([id]) => new RegExp(`^${prefix}[0-9A-F]{8}$`).test(id));
  expect(found.map(([id]) => id)).toEqual([expect.stringMatching(new RegExp(`^${prefix}`))]);
  return found[0] as [string, Resource];
}
const idOf = (template: Template, type: string, prefix: string) => one(template, type, prefix)[0];
const propertiesOf = (template: Template, type: string, prefix: string) =>
  one(template, type, prefix)[1].Properties;
const variablesOf = (template: Template, prefix: string) =>
  (
    propertiesOf(template, 'AWS::Lambda::Function', prefix).Environment as {
      Variables: Record<string, unknown>;
    }
  ).Variables;
const getAtt = (logicalId: string, attribute = 'Arn') => ({ 'Fn::GetAtt': [logicalId, attribute] });

/** Every property value of a resource type (for "no resource of this type has X"). */
const allProperties = (template: Template, type: string) =>
  resourcesOf(template, type).map(([, r]) => r.Properties);

/** The actions another account needs to manage its own rules on the bus, and nothing more. */
const RULE_MANAGEMENT_ACTIONS = [
  'events:PutRule',
  'events:PutTargets',
  'events:DeleteRule',
  'events:RemoveTargets',
  'events:DisableRule',
  'events:EnableRule',
  'events:TagResource',
  'events:UntagResource',
  'events:DescribeRule',
  'events:ListTargetsByRule',
  'events:ListTagsForResource',
];

describe('ZapiPresence: public members', () => {
  it('exposes the bus, archive, endpoint, functions, topic, dashboard and log key as resources of the template', () => {
    const { stack, presence, template } = userStack({ dashboard: true, encryptLogs: true });
    const t = template();
    const resolve = (value: unknown) => stack.resolve(value);

    expect(presence.eventBus).toBeInstanceOf(EventBus);
    expect(resolve(presence.eventBus.eventBusName)).toEqual({
      Ref: idOf(t, 'AWS::Events::EventBus', 'PresenceBus'),
    });
    expect(presence.archive).toBeInstanceOf(Archive);
    expect(resolve(presence.archive.archiveArn)).toEqual(
      getAtt(idOf(t, 'AWS::Events::Archive', 'PresenceArchive')),
    );

    const api = idOf(t, 'AWS::ApiGatewayV2::Api', 'PresenceApi');
    expect(presence.httpApi).toBeInstanceOf(HttpApi);
    expect(resolve(presence.httpApi.apiId)).toEqual({ Ref: api });
    expect(resolve(presence.webhookBaseUrl)).toEqual(getAtt(api, 'ApiEndpoint'));

    expect(resolve(presence.receiver.functionName)).toEqual({
      Ref: idOf(t, 'AWS::Lambda::Function', 'PresenceReceiver'),
    });
    expect(resolve(presence.reconciler?.functionName)).toEqual({
      Ref: idOf(t, 'AWS::Lambda::Function', 'PresenceFleetReconciler'),
    });
    expect(resolve(presence.registrationHandler?.functionName)).toEqual({
      Ref: idOf(t, 'AWS::Lambda::Function', 'PresenceFleetRegistrar'),
    });

    expect(presence.alarmTopic).toBeInstanceOf(Topic);
    expect(resolve(presence.alarmTopic.topicArn)).toEqual({
      Ref: idOf(t, 'AWS::SNS::Topic', 'PresenceMonitoringAlarmTopic'),
    });
    expect(presence.dashboard).toBeInstanceOf(Dashboard);
    expect(resolve(presence.dashboard?.dashboardName)).toEqual({
      Ref: idOf(t, 'AWS::CloudWatch::Dashboard', 'PresenceMonitoringDashboard'),
    });
    expect(resolve(presence.logEncryptionKey?.keyArn)).toEqual(
      getAtt(idOf(t, 'AWS::KMS::Key', 'PresenceLogsKey')),
    );

    // The building blocks are the same objects.
    expect(presence.eventBus).toBe(presence.webhook.eventBus);
    expect(presence.receiver).toBe(presence.webhook.receiver);
    expect(presence.reconciler).toBe(presence.fleet?.reconciler);
    expect(presence.registrationHandler).toBe(presence.fleet?.registrationHandler);
    expect(presence.alarmTopic).toBe(presence.monitoring.alarmTopic);
    expect(presence.schemaRegistry).toBeDefined();
    expect(presence.debugEventLog).toBeUndefined();
  });

  it('has no reconciler, registration or fleet with registerWebhook false', () => {
    const { presence, template } = userStack({
      registerWebhook: false,
      instanceIds: ['INST1'],
      canary: false, // so that the receiver is the only function left
    });
    expect(presence.reconciler).toBeUndefined();
    expect(presence.registrationHandler).toBeUndefined();
    expect(presence.fleet).toBeUndefined();
    const t = template();
    expect(resourcesOf(t, 'AWS::Lambda::Function').map(([id]) => id)).toEqual([
      expect.stringMatching(/^PresenceReceiver[0-9A-F]{8}$/),
    ]);
    t.resourceCountIs(REGISTRATION_RESOURCE_TYPE, 0);
    // The one rule left is the alarms' recoveries (CloudWatch's events on the default bus).
    expect(Object.keys(t.findResources('AWS::Events::Rule'))).toEqual([
      expect.stringMatching(/^PresenceMonitoringAlarmRecoveries[0-9A-F]{8}$/),
    ]);
    expect(Object.keys(t.toJSON().Resources).filter((id) => id.startsWith('PresenceFleet'))).toEqual([]);
    // Everything else is still there.
    expect(presence.receiver).toBeDefined();
    expect(presence.alarmTopic).toBeDefined();
  });
});

describe('ZapiPresence: onStatus', () => {
  it('creates a rule on the bus whose pattern comes from the contract, with a dead-letter queue and its alarm', () => {
    const { stack, presence, template } = userStack();
    const queue = new Queue(stack, 'Typing');
    const subscription = presence.onStatus('Typing', ['COMPOSING', 'RECORDING'], {
      targets: [new SqsQueue(queue)],
    });
    expect(subscription).toBeInstanceOf(PresenceSubscription);
    expect(presence.webhook.subscriptions).toEqual([subscription]);
    const t = template();
    const pattern = presenceEventPattern(['COMPOSING', 'RECORDING']);
    expect(pattern).toEqual({
      source: [EVENT_SOURCE],
      'detail-type': [DETAIL_TYPES.COMPOSING, DETAIL_TYPES.RECORDING],
    });
    const dlq = idOf(t, 'AWS::SQS::Queue', 'PresenceTypingDeadLetters');
    expect(propertiesOf(t, 'AWS::Events::Rule', 'PresenceTypingRule')).toEqual({
      Description: 'Z-API chat presence: COMPOSING, RECORDING',
      EventBusName: { Ref: idOf(t, 'AWS::Events::EventBus', 'PresenceBus') },
      EventPattern: pattern,
      State: 'ENABLED',
      Targets: [
        {
          Arn: getAtt(idOf(t, 'AWS::SQS::Queue', 'Typing')),
          Id: 'Target0',
          DeadLetterConfig: { Arn: getAtt(dlq) },
          RetryPolicy: { MaximumRetryAttempts: 8, MaximumEventAgeInSeconds: 7200 },
        },
      ],
    });
    expect(propertiesOf(t, 'AWS::SQS::Queue', 'PresenceTypingDeadLetters')).toMatchObject({
      SqsManagedSseEnabled: true,
      MessageRetentionPeriod: 1_209_600,
    });
    expect(
      propertiesOf(t, 'AWS::CloudWatch::Alarm', 'PresenceMonitoringSubscriptionTypingDeadLetters'),
    ).toMatchObject({
      Namespace: 'AWS/SQS',
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Dimensions: [{ Name: 'QueueName', Value: getAtt(dlq, 'QueueName') }],
      Threshold: 1,
      AlarmActions: [{ Ref: idOf(t, 'AWS::SNS::Topic', 'PresenceMonitoringAlarmTopic') }],
    });
  });

  it('takes every status with an empty list, and filters by instance', () => {
    const { presence, template } = userStack({ registerWebhook: false });
    presence.onStatus('Everything', [], { instanceIds: ['INST1', 'INST1', 'INST2'] });
    expect(propertiesOf(template(), 'AWS::Events::Rule', 'PresenceEverythingRule').EventPattern).toEqual({
      source: [EVENT_SOURCE],
      'detail-type': [{ prefix: DETAIL_TYPE_PREFIX }],
      detail: { instanceId: ['INST1', 'INST2'] },
    });
  });

  it('refuses a status the contract does not know', () => {
    const { presence } = userStack({ registerWebhook: false });
    expect(() => presence.onStatus('Typo', ['TYPING' as never])).toThrow(/Unknown presence status "TYPING"/);
  });
});

describe('ZapiPresence: onDerived', () => {
  it('subscribes to derived events of the presence store, with a dead-letter queue and its alarm', () => {
    const { stack, presence, template } = userStack({ presenceStore: true });
    const queue = new Queue(stack, 'Stops');
    const subscription = presence.onDerived('Stops', [DERIVED_DETAIL_TYPES.activityStopped], {
      targets: [new SqsQueue(queue)],
      instanceIds: ['INST1'],
    });
    expect(subscription.derivedEvents).toEqual([DERIVED_DETAIL_TYPES.activityStopped]);
    expect(subscription.statuses).toEqual([]);
    // After the store's own subscription to raw presence; by identity (a deep comparison would walk
    // into imported constructs CDK will not let it read).
    expect(presence.webhook.subscriptions).toHaveLength(2);
    expect(presence.webhook.subscriptions[1]).toBe(subscription);
    const t = template();
    const dlq = idOf(t, 'AWS::SQS::Queue', 'PresenceStopsDeadLetters');
    expect(propertiesOf(t, 'AWS::Events::Rule', 'PresenceStopsRule')).toEqual({
      Description: 'Z-API chat state: Z-API Chat Activity Stopped',
      EventBusName: { Ref: idOf(t, 'AWS::Events::EventBus', 'PresenceBus') },
      EventPattern: {
        source: [DERIVED_EVENT_SOURCE],
        'detail-type': ['Z-API Chat Activity Stopped'],
        detail: { instanceId: ['INST1'] },
      },
      State: 'ENABLED',
      Targets: [
        {
          Arn: getAtt(idOf(t, 'AWS::SQS::Queue', 'Stops')),
          Id: 'Target0',
          DeadLetterConfig: { Arn: getAtt(dlq) },
          RetryPolicy: { MaximumRetryAttempts: 8, MaximumEventAgeInSeconds: 7200 },
        },
      ],
    });
    expect(
      propertiesOf(t, 'AWS::CloudWatch::Alarm', 'PresenceMonitoringSubscriptionStopsDeadLetters'),
    ).toMatchObject({ MetricName: 'ApproximateNumberOfMessagesVisible', Threshold: 1 });
  });

  it('takes every derived event with an empty list, and never raw presence', () => {
    const { presence, template } = userStack({ presenceStore: true, registerWebhook: false });
    presence.onDerived('AllState', []);
    const pattern = propertiesOf(template(), 'AWS::Events::Rule', 'PresenceAllStateRule').EventPattern;
    expect(pattern).toEqual(derivedEventPattern());
    expect(pattern).toEqual({
      source: [DERIVED_EVENT_SOURCE],
      'detail-type': [
        'Z-API Chat Activity Started',
        'Z-API Chat Activity Stopped',
        'Z-API Chat Came Online',
        'Z-API Chat Went Offline',
      ],
    });
    expect(JSON.stringify(pattern)).not.toContain(DETAIL_TYPE_PREFIX);
  });

  it('needs the presence store, and names it', () => {
    const { presence } = userStack({ registerWebhook: false });
    expect(() => presence.onDerived('Stops', [DERIVED_DETAIL_TYPES.activityStopped])).toThrow(
      'ZapiPresence Presence: onDerived("Stops") needs presenceStore: true; derived events come from the presence store',
    );
  });

  it('refuses a derived event the contract does not know', () => {
    const { presence } = userStack({ presenceStore: true, registerWebhook: false });
    expect(() => presence.onDerived('Typo', ['Z-API Chat Typing' as never])).toThrow(
      /Unknown derived event "Z-API Chat Typing"; use one of Z-API Chat Activity Started, /,
    );
  });

  it('will not mix statuses and derived events in one rule', () => {
    const { presence, stack } = userStack({ presenceStore: true, registerWebhook: false });
    expect(
      () =>
        new PresenceSubscription(stack, 'Mixed', {
          eventBus: presence.eventBus,
          statuses: ['COMPOSING'],
          derivedEvents: [],
        }),
    ).toThrow('PresenceSubscription Mixed: give statuses or derivedEvents, not both');
  });
});

describe('ZapiPresence: webhookUrl', () => {
  it('is the base URL plus the instance path, with no secret', () => {
    const { stack, presence, template } = userStack();
    const api = idOf(template(), 'AWS::ApiGatewayV2::Api', 'PresenceApi');
    expect(stack.resolve(presence.webhookUrl('INST1'))).toEqual({
      'Fn::Join': ['', [getAtt(api, 'ApiEndpoint'), '/instances/INST1/presence']],
    });
    expect(JSON.stringify(stack.resolve(presence.webhookUrl('INST1')))).not.toMatch(/secret/i);
  });
});

describe('ZapiPresence: every prop reaches the template', () => {
  const FULL: ZapiPresenceProps = {
    instanceIds: ['INST1', 'INST2'],
    instanceTokenParameterName: '/team/zapi/{instanceId}/token',
    webhookSecretParameterName: '/team/zapi/master',
    clientTokenParameterName: '/team/zapi/client-token',
    zapiBaseUrl: 'https://zapi.example.com/',
    zapiAttemptTimeout: Duration.seconds(3),
    zapiMaxAttempts: 3,
    driftPolicy: 'alert',
    sweepInterval: Duration.minutes(15),
    reconcileConcurrency: 8,
    dueWarningDays: 10,
    currentPaymentStatuses: ['PAID', 'TRIAL'],
    registrationTimeout: Duration.minutes(2),
    reconcilerTimeout: Duration.minutes(10),
    eventBusName: 'presence-bus',
    archiveRetention: Duration.days(90),
    subscriberAccountIds: [SUBSCRIBER],
    maxBodyBytes: 4_096,
    throttleRateLimit: 7,
    throttleBurstLimit: 14,
    receiverMemorySize: 512,
    receiverTimeout: Duration.seconds(20),
    receiverReservedConcurrency: 5,
    sdkAttemptTimeout: Duration.millis(1_500),
    sdkMaxAttempts: 3,
    secretCacheTtl: Duration.minutes(2),
    secretGracePeriod: Duration.hours(2),
    logRetention: RetentionDays.THREE_MONTHS,
    metricsNamespace: 'Team/Presence',
    alarmEmail: 'oncall@example.com.br',
    alarmThresholds: { PublishFailures: 5, Disconnected: 2 },
    schemaRegistry: false,
    debugEventLog: true,
  };
  let full: Template;
  let defaults: Template;

  beforeAll(() => {
    full = userStack(FULL).template();
    defaults = userStack().template();
  });

  it('fleet and Z-API props: the reconciler’s and the registrar’s environment', () => {
    const expected = {
      [FLEET_ENV.webhookBaseUrl]: getAtt(idOf(full, 'AWS::ApiGatewayV2::Api', 'PresenceApi'), 'ApiEndpoint'),
      [FLEET_ENV.tokenParameterTemplate]: '/team/zapi/{instanceId}/token',
      [FLEET_ENV.masterSecretParameter]: '/team/zapi/master',
      [FLEET_ENV.clientTokenParameter]: '/team/zapi/client-token',
      [FLEET_ENV.zapiBaseUrl]: 'https://zapi.example.com',
      [FLEET_ENV.zapiAttemptTimeoutMs]: '3000',
      [FLEET_ENV.zapiMaxAttempts]: '3',
      [FLEET_ENV.driftPolicy]: 'alert',
      [FLEET_ENV.concurrency]: '8',
      [FLEET_ENV.dueWarningDays]: '10',
      [FLEET_ENV.currentPaymentStatuses]: 'PAID,TRIAL',
      [FLEET_ENV.metricsNamespace]: 'Team/Presence',
      [FLEET_ENV.receiverCacheSeconds]: '120',
    };
    expect(variablesOf(full, 'PresenceFleetReconciler')).toEqual(expected);
    expect(variablesOf(full, 'PresenceFleetRegistrar')).toEqual(expected);
    // Unset props are left to the functions' own defaults.
    expect(variablesOf(defaults, 'PresenceFleetReconciler')).toEqual({
      [FLEET_ENV.webhookBaseUrl]: getAtt(
        idOf(defaults, 'AWS::ApiGatewayV2::Api', 'PresenceApi'),
        'ApiEndpoint',
      ),
      [FLEET_ENV.tokenParameterTemplate]: '/zapi/{instanceId}/token',
      [FLEET_ENV.masterSecretParameter]: '/zapi/webhook-secret',
      [FLEET_ENV.driftPolicy]: 'repair',
      [FLEET_ENV.metricsNamespace]: 'ZapiPresence',
      [FLEET_ENV.receiverCacheSeconds]: '300',
    });
  });

  it('fleet and Z-API props: schedule, timeouts, required instances, watched parameters', () => {
    expect(propertiesOf(full, 'AWS::Events::Rule', 'PresenceFleetSweep').ScheduleExpression).toBe(
      'rate(15 minutes)',
    );
    expect(propertiesOf(defaults, 'AWS::Events::Rule', 'PresenceFleetSweep').ScheduleExpression).toBe(
      'rate(1 hour)',
    );
    expect(propertiesOf(full, 'AWS::Lambda::Function', 'PresenceFleetReconciler').Timeout).toBe(600);
    expect(propertiesOf(full, 'AWS::Lambda::Function', 'PresenceFleetRegistrar').Timeout).toBe(120);
    expect(propertiesOf(full, REGISTRATION_RESOURCE_TYPE, 'PresenceFleetRegistration')).toMatchObject({
      ServiceTimeout: '180',
      [REGISTRATION_PROPERTIES.requiredInstanceIds]: 'INST1,INST2',
    });
    expect(
      (
        propertiesOf(full, 'AWS::Events::Rule', 'PresenceFleetParameterChanges').EventPattern as {
          detail: { name: unknown[] };
        }
      ).detail.name,
    ).toEqual(['/team/zapi/master', '/team/zapi/client-token', { wildcard: '/team/zapi/*/token' }]);
  });

  it('deployNonce: the registration runs on every deploy unless a fixed value pins it (template snapshots)', () => {
    const nonce = (props: ZapiPresenceProps) =>
      propertiesOf(userStack(props).template(), REGISTRATION_RESOURCE_TYPE, 'PresenceFleetRegistration')[
        REGISTRATION_PROPERTIES.deployNonce
      ];
    expect(nonce({ deployNonce: 'fixed' })).toBe('fixed');
    expect(Date.parse(String(nonce({})))).toBeGreaterThan(Date.now() - 60_000);
  });

  it('refuses a grace window that the next sweep would not fit in (a rotation must never refuse a callback)', () => {
    expect(() => userStack({ secretGracePeriod: Duration.minutes(60) })).toThrow(
      'ZapiPresence: secretGracePeriod: 3600 s is too short for a sweepInterval of 60 minutes: an instance Z-API fails for during a rotation is retried by the next sweep, which must come within the window; use at least 4830 s (or a shorter sweepInterval)',
    );
    // A shorter sweep makes the same window fit: the receiver gets it as given.
    const graceOf = (props: ZapiPresenceProps) =>
      variablesOf(userStack(props).template(), 'PresenceReceiver')[RECEIVER_ENV.secretGraceSeconds];
    expect(graceOf({ secretGracePeriod: Duration.minutes(60), sweepInterval: Duration.minutes(30) })).toBe(
      '3600',
    );
    // Without the fleet, the receiver's own bound (cache TTL + 15 min) is all.
    expect(graceOf({ secretGracePeriod: Duration.minutes(20), registerWebhook: false })).toBe('1200');
    // Left out, it is 90 minutes (5400 s), or more when the sweep interval needs it: a 2 h sweep needs
    // 300 + 30 + 7200 + 900 = 8430 s (cache TTL, settle margin, sweep interval, a sweep's own run).
    const receiverEnv = (props: ZapiPresenceProps) =>
      (
        propertiesOf(userStack(props).template(), 'AWS::Lambda::Function', 'PresenceReceiver')
          .Environment as {
          Variables: Record<string, string>;
        }
      ).Variables;
    expect(receiverEnv({ sweepInterval: Duration.hours(2) }).SECRET_GRACE_SECONDS).toBe('8430');
    expect(receiverEnv({}).SECRET_GRACE_SECONDS).toBe('5400');
  });

  it('refuses the presence store’s props while the store is off', () => {
    expect(() =>
      userStack({ activityExpiry: Duration.seconds(60), presenceIdleTtl: Duration.days(7) }),
    ).toThrow(
      'ZapiPresence: activityExpiry: a prop of the presence store; add presenceStore: true; presenceIdleTtl: a prop of the presence store; add presenceStore: true',
    );
    // With the store on, they are accepted and reach its function.
    const store = userStack({ presenceStore: true, activityExpiry: Duration.seconds(60) }).template();
    expect(variablesOf(store, 'PresenceState')[STATE_ENV.expirySeconds]).toBe('60');
  });

  it('bus props: the bus name, the archive retention, the subscriber policy', () => {
    expect(propertiesOf(full, 'AWS::Events::EventBus', 'PresenceBus').Name).toBe('presence-bus');
    expect(propertiesOf(full, 'AWS::Events::Archive', 'PresenceArchive').RetentionDays).toBe(90);
    expect(propertiesOf(defaults, 'AWS::Events::Archive', 'PresenceArchive').RetentionDays).toBe(30);
    expect(resourcesOf(full, 'AWS::Events::EventBusPolicy')).toHaveLength(1);
    defaults.resourceCountIs('AWS::Events::EventBusPolicy', 0);
  });

  it('receiver props: the function’s configuration and environment, the stage’s throttling', () => {
    expect(propertiesOf(full, 'AWS::Lambda::Function', 'PresenceReceiver')).toMatchObject({
      MemorySize: 512,
      Timeout: 20,
      ReservedConcurrentExecutions: 5,
    });
    expect(variablesOf(full, 'PresenceReceiver')).toEqual({
      [RECEIVER_ENV.eventBusName]: { Ref: idOf(full, 'AWS::Events::EventBus', 'PresenceBus') },
      [RECEIVER_ENV.secretParameterName]: '/team/zapi/master',
      [RECEIVER_ENV.maxBodyBytes]: '4096',
      [RECEIVER_ENV.metricsNamespace]: 'Team/Presence',
      [RECEIVER_ENV.secretCacheSeconds]: '120',
      [RECEIVER_ENV.secretGraceSeconds]: '7200',
      [RECEIVER_ENV.sdkAttemptTimeoutMs]: '1500',
      [RECEIVER_ENV.sdkMaxAttempts]: '3',
    });
    expect(
      propertiesOf(full, 'AWS::ApiGatewayV2::Stage', 'PresenceDefaultStage').DefaultRouteSettings,
    ).toEqual({
      ThrottlingRateLimit: 7,
      ThrottlingBurstLimit: 14,
    });
    expect(propertiesOf(defaults, 'AWS::Lambda::Function', 'PresenceReceiver')).toMatchObject({
      MemorySize: 256,
      Timeout: 10,
    });
    expect(propertiesOf(defaults, 'AWS::Lambda::Function', 'PresenceReceiver')).not.toHaveProperty(
      'ReservedConcurrentExecutions',
    );
  });

  it('operations props: log retention, namespace, thresholds, e-mail, schema registry, debug log', () => {
    const groups = allProperties(full, 'AWS::Logs::LogGroup');
    // Receiver, access logs, reconciler, registrar, provider framework, canary, arrival timer: the
    // setting. Debug events (personal data): a week.
    expect(groups).toHaveLength(8);
    expect(groups.map((g) => g.RetentionInDays).sort((a, b) => Number(a) - Number(b))).toEqual([
      7, 90, 90, 90, 90, 90, 90, 90,
    ]);
    for (const group of allProperties(defaults, 'AWS::Logs::LogGroup'))
      expect(group.RetentionInDays).toBe(365);

    expect(propertiesOf(full, 'AWS::CloudWatch::Alarm', 'PresenceMonitoringPublishFailures')).toMatchObject({
      Namespace: 'Team/Presence',
      Threshold: 5,
    });
    expect(propertiesOf(full, 'AWS::CloudWatch::Alarm', 'PresenceMonitoringDisconnected')).toMatchObject({
      Namespace: 'Team/Presence',
      Threshold: 2,
    });
    expect(propertiesOf(full, 'AWS::CloudWatch::Alarm', 'PresenceMonitoringSecretFailures').Threshold).toBe(
      1,
    );
    // driftPolicy alert adds its alarm.
    one(full, 'AWS::CloudWatch::Alarm', 'PresenceMonitoringDriftReported');
    expect(resourcesOf(defaults, 'AWS::CloudWatch::Alarm').some(([id]) => id.includes('DriftReported'))).toBe(
      false,
    );

    expect(allProperties(full, 'AWS::SNS::Subscription')).toEqual([
      expect.objectContaining({ Protocol: 'email', Endpoint: 'oncall@example.com.br' }),
    ]);
    defaults.resourceCountIs('AWS::SNS::Subscription', 0);

    full.resourceCountIs('AWS::EventSchemas::Registry', 0);
    defaults.resourceCountIs('AWS::EventSchemas::Registry', 1);

    expect(propertiesOf(full, 'AWS::Logs::LogGroup', 'PresenceDebugEvents')).toMatchObject({
      LogGroupName: '/aws/events/S/Presence/presence',
    });
    expect(resourcesOf(defaults, 'AWS::Logs::LogGroup').some(([id]) => id.includes('DebugEvents'))).toBe(
      false,
    );
  });
});

describe('ZapiPresence: log encryption', () => {
  it('creates a rotating key that only CloudWatch Logs of this account may use, and encrypts every log group', () => {
    const { presence, template } = userStack({ encryptLogs: true, debugEventLog: true });
    const t = template();
    const [keyId, key] = one(t, 'AWS::KMS::Key', 'PresenceLogsKey');
    expect(presence.logEncryptionKey).toBeInstanceOf(Key);
    expect(key.Properties.EnableKeyRotation).toBe(true);
    const statements = (key.Properties.KeyPolicy as { Statement: Statement[] }).Statement;
    expect(statements).toEqual([
      // CDK's default: the account administers the key through IAM.
      {
        Action: 'kms:*',
        Effect: 'Allow',
        Principal: {
          AWS: { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':iam::123456789012:root']] },
        },
        Resource: '*',
      },
      {
        Sid: 'CloudWatchLogsOfThisAccount',
        Action: ['kms:Encrypt*', 'kms:Decrypt*', 'kms:ReEncrypt*', 'kms:GenerateDataKey*', 'kms:Describe*'],
        Effect: 'Allow',
        Principal: { Service: 'logs.sa-east-1.amazonaws.com' },
        Resource: '*',
        Condition: {
          ArnLike: {
            'kms:EncryptionContext:aws:logs:arn': {
              'Fn::Join': [
                '',
                ['arn:', { Ref: 'AWS::Partition' }, ':logs:sa-east-1:123456789012:log-group:*'],
              ],
            },
          },
        },
      },
      {
        Sid: 'GrantsForAwsServicesOnly',
        Action: 'kms:CreateGrant',
        Effect: 'Deny',
        Principal: { AWS: '*' },
        Resource: '*',
        Condition: {
          BoolIfExists: { 'kms:GrantIsForAWSResource': 'false', 'aws:PrincipalIsAWSService': 'false' },
        },
      },
    ]);
    const groups = resourcesOf(t, 'AWS::Logs::LogGroup');
    expect(groups).toHaveLength(8);
    for (const [id, group] of groups) expect(group.Properties.KmsKeyId, id).toEqual(getAtt(keyId));
  });

  it('names the region’s CloudWatch Logs principal in a region-agnostic stack too', () => {
    const t = userStack({ encryptLogs: true }, 'agnostic').template();
    const statements = (
      propertiesOf(t, 'AWS::KMS::Key', 'PresenceLogsKey').KeyPolicy as { Statement: Statement[] }
    ).Statement;
    expect(statements.find((s) => s.Sid === 'CloudWatchLogsOfThisAccount')).toMatchObject({
      Principal: { Service: { 'Fn::Join': ['', ['logs.', { Ref: 'AWS::Region' }, '.amazonaws.com']] } },
      Condition: {
        ArnLike: {
          'kms:EncryptionContext:aws:logs:arn': {
            'Fn::Join': [
              '',
              [
                'arn:',
                { Ref: 'AWS::Partition' },
                ':logs:',
                { Ref: 'AWS::Region' },
                ':',
                { Ref: 'AWS::AccountId' },
                ':log-group:*',
              ],
            ],
          },
        },
      },
    });
  });

  it.each([
    ['by default', {}],
    ['with encryptLogs false', { encryptLogs: false }],
  ])(
    'creates no key and sets no KmsKeyId %s (CloudWatch Logs encrypts with its own keys)',
    (_name, props) => {
      const { presence, template } = userStack({ ...props, debugEventLog: true });
      const t = template();
      expect(presence.logEncryptionKey).toBeUndefined();
      t.resourceCountIs('AWS::KMS::Key', 0);
      const groups = allProperties(t, 'AWS::Logs::LogGroup');
      expect(groups).toHaveLength(8);
      for (const group of groups) expect(group).not.toHaveProperty('KmsKeyId');
      expect(JSON.stringify(t.toJSON())).not.toContain('kms:');
    },
  );

  it('uses the key it is given and creates none', () => {
    const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
    const stack = new Stack(app, 'S', { env: ENV });
    const own = new Key(stack, 'OwnKey', { enableKeyRotation: true });
    const presence = new ZapiPresence(stack, 'Presence', { logEncryptionKey: own, debugEventLog: true });
    expect(presence.logEncryptionKey).toBe(own);
    const t = Template.fromStack(stack);
    expect(resourcesOf(t, 'AWS::KMS::Key').map(([id]) => id)).toEqual([
      expect.stringMatching(/^OwnKey[0-9A-F]{8}$/),
    ]);
    const groups = resourcesOf(t, 'AWS::Logs::LogGroup');
    expect(groups).toHaveLength(8);
    for (const [id, group] of groups) {
      expect(group.Properties.KmsKeyId, id).toEqual(getAtt(idOf(t, 'AWS::KMS::Key', 'OwnKey')));
    }
  });

  it('uses an imported key as its ARN', () => {
    const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
    const stack = new Stack(app, 'S', { env: ENV });
    const arn = 'arn:aws:kms:sa-east-1:123456789012:key/11111111-2222-3333-4444-555555555555';
    new ZapiPresence(stack, 'Presence', { logEncryptionKey: Key.fromKeyArn(stack, 'Key', arn) });
    const t = Template.fromStack(stack);
    t.resourceCountIs('AWS::KMS::Key', 0);
    const groups = allProperties(t, 'AWS::Logs::LogGroup');
    expect(groups).toHaveLength(7);
    for (const group of groups) expect(group.KmsKeyId).toBe(arn);
  });

  it('refuses a key together with encryptLogs false', () => {
    const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
    const stack = new Stack(app, 'S', { env: ENV });
    expect(
      () =>
        new ZapiPresence(stack, 'Presence', { encryptLogs: false, logEncryptionKey: new Key(stack, 'K') }),
    ).toThrow(/^ZapiPresence: logEncryptionKey is given but encryptLogs is false$/);
  });
});

describe('ZapiPresence: subscriberAccountIds', () => {
  it('adds one bus policy per account: rule management only, on rules of this bus, each account its own rules', () => {
    const { template } = userStack({ subscriberAccountIds: [SUBSCRIBER, OTHER_SUBSCRIBER] });
    const t = template();
    const bus = idOf(t, 'AWS::Events::EventBus', 'PresenceBus');
    const policies = allProperties(t, 'AWS::Events::EventBusPolicy');
    expect(policies).toHaveLength(2);
    for (const account of [SUBSCRIBER, OTHER_SUBSCRIBER]) {
      const sid = `cdk-zapi-presence-subscriber-${account}`;
      expect(policies.filter((p) => p.StatementId === sid)).toEqual([
        {
          EventBusName: { Ref: bus },
          StatementId: sid,
          Statement: {
            Sid: sid,
            Effect: 'Allow',
            Principal: {
              AWS: { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, `:iam::${account}:root`]] },
            },
            Action: RULE_MANAGEMENT_ACTIONS,
            Resource: {
              'Fn::Join': [
                '',
                [
                  'arn:',
                  { Ref: 'AWS::Partition' },
                  ':events:sa-east-1:123456789012:rule/',
                  { Ref: bus },
                  '/*',
                ],
              ],
            },
            Condition: { StringEqualsIfExists: { 'events:creatorAccount': account } },
          },
        },
      ]);
    }
  });

  it('adds none for an empty list', () => {
    userStack({ subscriberAccountIds: [] }).template().resourceCountIs('AWS::Events::EventBusPolicy', 0);
  });

  it('is refused with eventBusArn', () => {
    expect(() => userStack({ eventBusArn: BUS_ARN, subscriberAccountIds: [SUBSCRIBER] })).toThrow(
      /^ZapiPresence: subscriberAccountIds: only for a bus this construct creates \(set the policy on your own bus\)$/,
    );
    // An empty list with an imported bus is fine: it publishes to that bus and adds no policy.
    const { presence, template } = userStack({ eventBusArn: BUS_ARN, subscriberAccountIds: [] });
    expect(presence.eventBus.eventBusArn).toBe(BUS_ARN);
    const t = template();
    t.resourceCountIs('AWS::Events::EventBusPolicy', 0);
    expect(variablesOf(t, 'PresenceReceiver')[RECEIVER_ENV.eventBusName]).toBe(BUS_ARN);
  });

  it('refuses malformed account ids, naming each', () => {
    expect(() =>
      userStack({ subscriberAccountIds: ['12345', SUBSCRIBER, 'abcdefghijkl', '1234567890123'] }),
    ).toThrow(
      /^ZapiPresence: subscriberAccountIds: "12345" is not a 12-digit AWS account id; subscriberAccountIds: "abcdefghijkl" is not a 12-digit AWS account id; subscriberAccountIds: "1234567890123" is not a 12-digit AWS account id$/,
    );
  });

  // One policy per account, named after it: a repeated account would collide in CDK ("There is already a
  // Construct with name 'cdk-zapi-presence-subscriber-…'"), so each is taken once (lib/config.ts
  // de-duplicates for the app; a library user may pass a list with repeats).
  it('takes a repeated account once', () => {
    const t = userStack({ subscriberAccountIds: [SUBSCRIBER, SUBSCRIBER] }).template();
    t.resourceCountIs('AWS::Events::EventBusPolicy', 1);
  });
});

describe('ZapiPresence: eventBusArn', () => {
  it('publishes to the imported bus, creating none, with the archive on it', () => {
    const { presence, template } = userStack({ eventBusArn: BUS_ARN });
    // Subscriptions go on the imported bus.
    presence.onStatus('Typing', ['COMPOSING']);
    const t = template();
    t.resourceCountIs('AWS::Events::EventBus', 0);
    expect(presence.eventBus.eventBusArn).toBe(BUS_ARN);
    expect(propertiesOf(t, 'AWS::Events::Archive', 'PresenceArchive')).toMatchObject({
      SourceArn: BUS_ARN,
      EventPattern: { source: [EVENT_SOURCE] },
    });
    expect(variablesOf(t, 'PresenceReceiver')[RECEIVER_ENV.eventBusName]).toBe(BUS_ARN);
    const statements = (
      propertiesOf(t, 'AWS::IAM::Policy', 'PresenceReceiverRoleDefaultPolicy').PolicyDocument as {
        Statement: Statement[];
      }
    ).Statement;
    expect(statements).toContainEqual({ Action: 'events:PutEvents', Effect: 'Allow', Resource: BUS_ARN });
    expect(propertiesOf(t, 'AWS::Events::Rule', 'PresenceTypingRule').EventBusName).toBe('shared');
  });

  it.each([
    [
      'another region',
      'arn:aws:events:us-east-1:123456789012:event-bus/x',
      'the bus is in region us-east-1 (the stack deploys to sa-east-1)',
    ],
    [
      'another account',
      'arn:aws:events:sa-east-1:999999999999:event-bus/x',
      'the bus is in account 999999999999 (the stack deploys to 123456789012)',
    ],
    [
      'another region and account',
      'arn:aws:events:us-east-1:999999999999:event-bus/x',
      'the bus is in region us-east-1 (the stack deploys to sa-east-1) and account 999999999999 (the stack deploys to 123456789012)',
    ],
  ])('refuses a bus in %s', (_what, arn, where) => {
    expect(() => userStack({ eventBusArn: arn })).toThrow(
      `ZapiPresence: eventBusArn: ${where}; use a bus in the same account and region, e.g. arn:aws:events:sa-east-1:123456789012:event-bus/NAME`,
    );
  });

  it('leaves the environment check to deploy time in a region-agnostic stack', () => {
    const arn = 'arn:aws:events:us-east-1:999999999999:event-bus/x';
    const { presence, template } = userStack({ eventBusArn: arn }, 'agnostic');
    // Accepted as given: the receiver publishes to that bus, and the archive sits on it.
    expect(presence.eventBus.eventBusArn).toBe(arn);
    const t = template();
    t.resourceCountIs('AWS::Events::EventBus', 0);
    expect(variablesOf(t, 'PresenceReceiver')[RECEIVER_ENV.eventBusName]).toBe(arn);
    expect(propertiesOf(t, 'AWS::Events::Archive', 'PresenceArchive').SourceArn).toBe(arn);
  });

  it('refuses what is not an event bus ARN, and a bus name with it', () => {
    expect(() => userStack({ eventBusArn: 'my-bus' })).toThrow(
      /^ZapiPresence: eventBusArn: "my-bus" is not an event bus ARN$/,
    );
    expect(() => userStack({ eventBusArn: 'arn:aws:sqs:sa-east-1:123456789012:queue' })).toThrow(
      /is not an event bus ARN/,
    );
    expect(() => userStack({ eventBusArn: BUS_ARN, eventBusName: 'mine' })).toThrow(
      /^ZapiPresence: eventBusName names a bus to create; it cannot be combined with eventBusArn$/,
    );
  });

  // An ARN known only at deploy time (Fn.importValue, a CfnParameter, another stack's bus.eventBusArn) is a
  // token that no regular expression can check at synth: it is taken as is, as EventBus.fromEventBusArn
  // takes it (a wrong one fails at deploy).
  it('accepts an ARN known only at deploy time (a token)', () => {
    const { template } = userStack({ eventBusArn: Fn.importValue('SharedBusArn') });
    template().resourceCountIs('AWS::Events::EventBus', 0);
  });
});

describe('ZapiPresence: two in one stack', () => {
  function twoInOneStack(debugEventLog: boolean) {
    const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
    const stack = new Stack(app, 'S', { env: ENV });
    const a = new ZapiPresence(stack, 'A', { debugEventLog });
    const b = new ZapiPresence(stack, 'B', {
      debugEventLog,
      webhookSecretParameterName: '/b/zapi/webhook-secret',
      instanceTokenParameterName: '/b/zapi/{instanceId}/token',
      metricsNamespace: 'ZapiPresence/b',
    });
    return { stack, a, b, template: Template.fromStack(stack) };
  }

  it('do not collide: each has its own resources, logical ids and physical names', () => {
    const { a, b, template, stack } = twoInOneStack(false);
    const ids = Object.keys(template.toJSON().Resources);
    const ofA = ids.filter((id) => id.startsWith('A'));
    const ofB = ids.filter((id) => id.startsWith('B'));
    expect(ofA.length + ofB.length).toBe(ids.length);
    // The same resources under each id.
    const types = (prefix: string) =>
      Object.entries(template.toJSON().Resources as Record<string, Resource>)
        .filter(([id]) => id.startsWith(prefix))
        .map(([, r]) => r.Type)
        .sort();
    expect(types('A')).toEqual(types('B'));
    expect(ofA.length).toBeGreaterThan(50);
    template.resourceCountIs('AWS::Events::EventBus', 2);
    template.resourceCountIs('AWS::ApiGatewayV2::Api', 2);
    template.resourceCountIs('AWS::KMS::Key', 0);
    expect(stack.resolve(a.eventBus.eventBusName)).not.toEqual(stack.resolve(b.eventBus.eventBusName));
    expect(stack.resolve(a.webhookBaseUrl)).not.toEqual(stack.resolve(b.webhookBaseUrl));
    // No physical name that must be unique in an account and region is shared (the two buses' names and
    // the alarms' are generated from their paths; nothing else is named).
    const UNIQUE_NAMES: Record<string, string> = {
      'AWS::Events::EventBus': 'Name',
      'AWS::Events::Rule': 'Name',
      'AWS::Logs::LogGroup': 'LogGroupName',
      'AWS::CloudWatch::Dashboard': 'DashboardName',
      'AWS::CloudWatch::Alarm': 'AlarmName',
      'AWS::SNS::Topic': 'TopicName',
      'AWS::SQS::Queue': 'QueueName',
      'AWS::Lambda::Function': 'FunctionName',
      'AWS::EventSchemas::Registry': 'RegistryName',
      'AWS::IAM::Role': 'RoleName',
    };
    const named = Object.values(template.toJSON().Resources as Record<string, Resource>).flatMap((r) => {
      const key = UNIQUE_NAMES[r.Type];
      const value = key === undefined ? undefined : r.Properties?.[key];
      return value === undefined ? [] : [`${r.Type} ${JSON.stringify(value)}`];
    });
    expect(new Set(named).size).toBe(named.length);
    expect(named.filter((n) => n.startsWith('AWS::Events::EventBus'))).toEqual([
      expect.stringMatching(/^AWS::Events::EventBus "SAPresenceBus[0-9A-F]{8}"$/),
      expect.stringMatching(/^AWS::Events::EventBus "SBPresenceBus[0-9A-F]{8}"$/),
    ]);
    const alarms = named.filter((n) => n.startsWith('AWS::CloudWatch::Alarm'));
    expect(named).toHaveLength(alarms.length + 2);
    expect(alarms.length).toBe(Object.keys(template.findResources('AWS::CloudWatch::Alarm')).length);
    // Each construct's alarms under a prefix of its own, the one its recoveries rule matches.
    const prefixes = new Set(alarms.map((n) => /"(S-[AB]-Monitoring-[0-9A-F]{8}-)/.exec(n)?.[1]));
    expect(prefixes.size).toBe(2);
    expect(a.alarmTopic).not.toBe(b.alarmTopic);
  });

  // The debug log group's name holds the construct's id (`/aws/events/{stackName}/{id}/presence`; the
  // app's, id Default, keeps `/aws/events/{stackName}/presence`): with one name per stack, two ZapiPresence
  // with debugEventLog would both create /aws/events/S/presence and the deploy would fail.
  it('do not collide with debugEventLog on both', () => {
    const { template } = twoInOneStack(true);
    const names = allProperties(template, 'AWS::Logs::LogGroup')
      .map((group) => group.LogGroupName)
      .filter((name) => name !== undefined);
    expect(names).toHaveLength(2);
    expect(new Set(names).size).toBe(2);
  });
});

describe('ZapiPresence: error messages name the ZapiPresence props', () => {
  // The building blocks validate with their own prop names (WebhookFleet's requiredInstanceIds,
  // concurrency); ZapiPresence reports them under the names its user wrote.
  it('names instanceIds and reconcileConcurrency, not the fleet’s own props', () => {
    expect(() => userStack({ instanceIds: ['bad id'], reconcileConcurrency: 0 })).toThrow(
      /\binstanceIds: "bad id".*\breconcileConcurrency: /,
    );
  });
});

describe('ZapiPresence: cdk-nag in a consumer stack', () => {
  function consumerApp(withQueue: (stack: Stack) => Queue, props: ZapiPresenceProps = {}) {
    const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
    const stack = new Stack(app, 'S', { env: ENV });
    const presence = new ZapiPresence(stack, 'Presence', props);
    presence.onStatus('Typing', ['COMPOSING'], { targets: [new SqsQueue(withQueue(stack))] });
    addNagPacks(app);
    let error: unknown;
    try {
      app.synth();
    } catch (caught) {
      error = caught;
    }
    const report = JSON.parse(
      readFileSync(join(app.outdir, 'validation-report.json'), 'utf8'),
    ) as ValidationReport;
    return { error, report };
  }

  /**
   * A consumer's queue as cdk-nag wants it: SSL only, with its own dead-letter queue, SSL only too. The
   * dead-letter queue needs one acknowledgement (Serverless wants a redrive policy on every queue);
   * AwsSolutions-SQS3 already sees that it is the Typing queue's dead-letter queue.
   */
  const wellKeptQueue = (stack: Stack) => {
    const dlq = new Queue(stack, 'TypingDlq', { enforceSSL: true });
    Validations.of(dlq).acknowledge({
      id: 'Serverless::Serverless-SQSRedrivePolicy',
      reason: 'A dead-letter queue needs no redrive policy of its own.',
    });
    return new Queue(stack, 'Typing', {
      enforceSSL: true,
      deadLetterQueue: { queue: dlq, maxReceiveCount: 5 },
    });
  };

  const violations = (report: ValidationReport) =>
    report.pluginReports.flatMap((p) =>
      p.violations.flatMap((v) => v.violatingConstructs.map((c) => `${v.ruleName} ${c.constructPath}`)),
    );

  it.each([
    ['the defaults', {}],
    ['subscribers and no log encryption', { subscriberAccountIds: [SUBSCRIBER], encryptLogs: false }],
    ['an imported bus and debug events', { eventBusArn: BUS_ARN, debugEventLog: true }],
    ['no fleet', { registerWebhook: false }],
  ] as Array<[string, ZapiPresenceProps]>)(
    'has no unacknowledged finding with %s and an SQS subscriber',
    (_what, props) => {
      const { error, report } = consumerApp(wellKeptQueue, props);
      expect(error).toBeUndefined();
      expect(report.pluginReports.map((p) => p.pluginName).sort()).toEqual(['AwsSolutions', 'Serverless']);
      expect(violations(report)).toEqual([]);
      // The consumer acknowledged only what concerns its own dead-letter queue.
      const own = report.pluginReports
        .flatMap((p) => p.suppressedViolations)
        .filter((s) => !s.acknowledgedAt.startsWith('S/Presence/'));
      expect(own.map((s) => `${s.acknowledgedAt} ${s.ruleName}`)).toEqual([
        'S/TypingDlq Serverless-SQSRedrivePolicy',
      ]);
    },
  );

  it('reports a bare queue as a target: the consumer owns its queue’s SSL and dead-letter queue', () => {
    const { error, report } = consumerApp((stack) => new Queue(stack, 'Typing'));
    expect(String(error)).toMatch(/^ValidationFailed: /);
    expect(violations(report).sort()).toEqual([
      'AwsSolutions-SQS3 S/Typing/Resource',
      'AwsSolutions-SQS4 S/Typing/Resource',
      'Serverless-SQSRedrivePolicy S/Typing/Resource',
    ]);
  });

  it('reports a consumer dead-letter queue without SSL or its acknowledgement', () => {
    const { error, report } = consumerApp((stack) => {
      const dlq = new Queue(stack, 'TypingDlq');
      return new Queue(stack, 'Typing', {
        enforceSSL: true,
        deadLetterQueue: { queue: dlq, maxReceiveCount: 5 },
      });
    });
    expect(String(error)).toMatch(/^ValidationFailed: /);
    expect(violations(report).sort()).toEqual([
      'AwsSolutions-SQS4 S/TypingDlq/Resource',
      'Serverless-SQSRedrivePolicy S/TypingDlq/Resource',
    ]);
  });
});

describe('ZapiPresence and the fleet rate limit, the canary', () => {
  it("refuses the canary's instance id in instanceIds (it is never registered at Z-API), naming the prop", () => {
    expect(() =>
      userStack({ instanceIds: ['3C01A2B3C4D5E6F7A8B9C0D1E2F3A4B5', 'zapi-presence-canary'] }),
    ).toThrow(
      /^ZapiPresence: instanceIds: "zapi-presence-canary" is the canary's instance id, which is never registered at Z-API; name a real instance/,
    );
  });

  it('passes zapiRequestsPerSecond to both fleet functions, and refuses 0', () => {
    const template = userStack({ zapiRequestsPerSecond: 35 }).template();
    for (const prefix of ['PresenceFleetReconciler', 'PresenceFleetRegistrar']) {
      expect(variablesOf(template, prefix)[FLEET_ENV.zapiRequestsPerSecond]).toBe('35');
    }
    expect(() => userStack({ zapiRequestsPerSecond: 0 })).toThrow(
      /zapiRequestsPerSecond: must be a whole number from 1 to 1000, got 0/,
    );
  });
});

describe('ZapiPresence: the token template', () => {
  it('refuses a template without a name after {instanceId}: its read grant would reach the whole path', () => {
    const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
    const stack = new Stack(app, 'T', { env: ENV });
    expect(
      () => new ZapiPresence(stack, 'Presence', { instanceTokenParameterName: '/zapi/{instanceId}' }),
    ).toThrow(
      /instanceTokenParameterName: "\/zapi\/\{instanceId\}" must end with \/name after \{instanceId\}/,
    );
  });
});
