import { App, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { CANARY_METRICS } from '../../functions/canary/settings.ts';
import { FLEET_METRICS } from '../../functions/fleet/settings.ts';
import { METRIC_NAMES } from '../../functions/presence-webhook/metrics.ts';
import { PRESENCE_STATUSES } from '../../functions/shared/contract/presence-contract.ts';
import {
  ALARM_NAMES,
  type AlarmName,
  armedSilence,
  PresenceMonitoring,
  THROTTLED_METRIC,
  UNAUTHENTICATED_METRIC,
  WRONG_SECRETS_THRESHOLD,
} from '../../lib/monitoring.ts';
import { PRESENCE_READ_ROUTE } from '../../lib/presence-store.ts';
import { ACCESS_LOG_FIELDS, PresenceWebhook, WEBHOOK_ROUTE_PATH } from '../../lib/presence-webhook.ts';
import { descriptionText } from '../support/alarm-variants.ts';
import { matchesPattern } from '../support/event-pattern.ts';
import { matchesFilterPattern } from '../support/filter-pattern.ts';
import { buildApp, synth } from '../support/synth.ts';

type Alarm = { Properties: Record<string, unknown> };

const RECEIVER_ALARMS = [
  'ReceiverErrors',
  'ReceiverThrottles',
  'Api5xx',
  'PublishFailures',
  'SecretFailures',
  'InternalErrors',
  'RefusedCallbacks',
  'Throttled',
  'WrongSecrets',
] as const;
const CANARY_ALARMS = ['CanaryArrivals'] as const;
const FLEET_ALARMS = [
  'ReconcilerErrors',
  'ReconcilerDeadLetters',
  'SweepMissing',
  'Unregistered',
  'NotChecked',
  'CheckFailures',
  'DeployRegistrationFailures',
  'Disconnected',
  'ExpiringSoon',
  'PaymentIssues',
] as const;

/** Alarms by the id given in PresenceMonitoring (logical id `Monitoring{id}` + 8 hex). */
function alarmsOf(template: Template): Record<string, Alarm> {
  return Object.fromEntries(
    Object.entries(template.findResources('AWS::CloudWatch::Alarm')).map(([logicalId, alarm]) => {
      const match = /^Monitoring(.+)[0-9A-F]{8}$/.exec(logicalId);
      if (!match) throw new Error(`unexpected alarm ${logicalId}`);
      return [match[1] as string, alarm as Alarm];
    }),
  );
}

type Query = {
  Id: string;
  ReturnData?: boolean;
  Expression?: string;
  MetricStat?: { Metric: Record<string, unknown>; Period: number; Stat: string };
};
/** The metric-math queries of an alarm. */
function queries(props: Record<string, unknown>): Query[] {
  return props.Metrics as Query[];
}

function alarm(template: Template, name: string): Record<string, unknown> {
  const found = alarmsOf(template)[name];
  if (!found) throw new Error(`no alarm ${name}`);
  return found.Properties;
}

/** The template of the app for this context, without cdk-nag (fast). */
function templateOf(context: Record<string, unknown>): Template {
  const { stack } = buildApp(context, { nag: false });
  return Template.fromStack(stack);
}

/** What every alarm on a fleet count (the largest a sweep or a deploy reported) reads. */
function fleetCountAlarm(
  metric: string,
  { trigger = 'sweep', periods = 1, period = 3600, namespace = 'ZapiPresence' } = {},
): Record<string, unknown> {
  return {
    Namespace: namespace,
    MetricName: metric,
    Dimensions: [
      { Name: 'Scope', Value: 'fleet' },
      { Name: 'Trigger', Value: trigger },
    ],
    Statistic: 'Maximum',
    EvaluationPeriods: periods,
    DatapointsToAlarm: periods,
    Period: period,
    ComparisonOperator: 'GreaterThanOrEqualToThreshold',
    TreatMissingData: 'notBreaching',
  };
}

const topicRef = { Ref: expect.stringMatching(/^MonitoringAlarmTopic[0-9A-F]{8}$/) };

describe('PresenceMonitoring', () => {
  let configured: Template;
  let defaults: Template;
  let alert: Template;
  let noFleet: Template;
  let noCanary: Template;

  beforeAll(() => {
    configured = synth({
      alarmEmail: 'oncall@example.com.br',
      metricsNamespace: 'Team/Presence',
      sweepIntervalMinutes: '15',
      alarmThresholds: '{"PublishFailures":5,"Disconnected":2,"Unregistered":3,"SweepMissing":2}',
      dashboard: 'true',
      detailedMetrics: 'true',
    }).template;
    defaults = synth({}).template;
    alert = synth({ driftPolicy: 'alert' }).template;
    noFleet = synth({ registerWebhook: 'false' }).template;
    noCanary = synth({ canary: 'false' }).template;
  });

  describe('alarm topic', () => {
    it('always exists, SSL only, and is a stack output', () => {
      for (const t of [configured, defaults, noFleet]) {
        t.resourceCountIs('AWS::SNS::Topic', 1);
        t.hasResourceProperties('AWS::SNS::TopicPolicy', {
          PolicyDocument: {
            Statement: Match.arrayWith([
              Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
            ]),
          },
        });
        expect(t.findOutputs('AlarmTopicArn')).toEqual({
          AlarmTopicArn: expect.objectContaining({ Value: topicRef }),
        });
      }
    });

    it('subscribes the e-mail address only when given, keeping undeliverable notifications', () => {
      configured.resourceCountIs('AWS::SNS::Subscription', 1);
      configured.hasResourceProperties('AWS::SNS::Subscription', {
        Protocol: 'email',
        Endpoint: 'oncall@example.com.br',
        TopicArn: { Ref: Match.stringLikeRegexp('^MonitoringAlarmTopic') },
        RedrivePolicy: {
          deadLetterTargetArn: {
            'Fn::GetAtt': [Match.stringLikeRegexp('^MonitoringUndeliveredNotifications'), 'Arn'],
          },
        },
      });
      for (const t of [defaults, noFleet]) {
        t.resourceCountIs('AWS::SNS::Subscription', 0);
        expect(Object.keys(t.findResources('AWS::SQS::Queue')).some((id) => id.includes('Undelivered'))).toBe(
          false,
        );
      }
    });

    it('is notified by every alarm when it fires, and has no OK action (it would run when a new alarm leaves INSUFFICIENT_DATA)', () => {
      for (const t of [configured, defaults, alert, noFleet]) {
        const alarms = Object.values(alarmsOf(t));
        expect(alarms.length).toBeGreaterThan(0);
        for (const { Properties } of alarms) {
          expect(Properties.AlarmActions).toEqual([topicRef]);
          expect(Properties.OKActions).toBeUndefined();
          expect(Properties.InsufficientDataActions).toBeUndefined();
        }
      }
    });

    it('is told of a recovery (an OK after an ALARM) of each of its alarms, and of nothing else', () => {
      for (const t of [configured, defaults, alert, noFleet]) {
        const rules = Object.values(t.findResources('AWS::Events::Rule')).filter(
          (r) => r.Properties.EventPattern?.source?.[0] === 'aws.cloudwatch',
        );
        expect(rules).toHaveLength(1);
        const rule = rules[0]?.Properties;
        expect(rule.EventBusName).toBeUndefined(); // the default bus, where CloudWatch's events go
        const names = Object.values(alarmsOf(t)).map(({ Properties }) => Properties.AlarmName as string);
        const prefix = (rule.EventPattern.detail.alarmName[0] as { prefix: string }).prefix;
        expect(prefix).toMatch(/^ZapiPresence-Monitoring-[0-9A-F]{8}-$/);
        expect(new Set(names).size).toBe(names.length);
        const change = (alarmName: string, from: string, to: string) => ({
          source: 'aws.cloudwatch',
          'detail-type': 'CloudWatch Alarm State Change',
          region: 'sa-east-1',
          resources: [`arn:aws:cloudwatch:sa-east-1:123456789012:alarm:${alarmName}`],
          detail: {
            alarmName,
            state: { value: to, reason: 'Threshold Crossed', timestamp: '2026-12-08T01:00:00.000+0000' },
            previousState: { value: from, timestamp: '2026-12-08T00:55:00.000+0000' },
          },
        });
        for (const name of names) {
          expect(name.startsWith(prefix), name).toBe(true);
          expect(matchesPattern(rule.EventPattern, change(name, 'ALARM', 'OK')), name).toBe(true);
          // A new alarm's first evaluation, a deploy's: no e-mail.
          expect(matchesPattern(rule.EventPattern, change(name, 'INSUFFICIENT_DATA', 'OK'))).toBe(false);
          // The alarm itself is the alarm action's; going to INSUFFICIENT_DATA is no news.
          expect(matchesPattern(rule.EventPattern, change(name, 'OK', 'ALARM'))).toBe(false);
          expect(matchesPattern(rule.EventPattern, change(name, 'ALARM', 'INSUFFICIENT_DATA'))).toBe(false);
        }
        // Another deployment's alarm, or one of the user's own.
        expect(
          matchesPattern(
            rule.EventPattern,
            change('ZapiPresence-Monitoring-00000000-ReceiverErrors', 'ALARM', 'OK'),
          ),
        ).toBe(false);
        expect(matchesPattern(rule.EventPattern, change('my-own-alarm', 'ALARM', 'OK'))).toBe(false);
        const [target] = rule.Targets;
        expect(target.Arn).toEqual(topicRef);
        expect(target.RoleArn).toBeDefined();
        const message = JSON.parse(target.InputTransformer.InputTemplate) as string;
        expect(message).toBe(
          'OK: <detail-alarmName> is back to OK in <region> at <detail-state-timestamp> (in ALARM since <detail-previousState-timestamp>). <detail-state-reason>',
        );
        expect(target.InputTransformer.InputPathsMap).toEqual({
          'detail-alarmName': '$.detail.alarmName',
          region: '$.region',
          'detail-state-timestamp': '$.detail.state.timestamp',
          'detail-previousState-timestamp': '$.detail.previousState.timestamp',
          'detail-state-reason': '$.detail.state.reason',
        });
      }
    });

    it('lets CloudWatch publish to the topic for these alarms only (a topic with a policy of its own has no default one)', () => {
      for (const t of [configured, defaults, noFleet]) {
        const [policy] = Object.values(t.findResources('AWS::SNS::TopicPolicy'));
        // biome-ignore lint/suspicious/noExplicitAny: CloudFormation JSON
        const statements = policy?.Properties.PolicyDocument.Statement as Array<Record<string, any>>;
        const allow = statements.filter((st) => st.Effect === 'Allow');
        expect(allow).toHaveLength(1);
        expect(allow[0]).toMatchObject({
          Action: 'sns:Publish',
          Principal: { Service: 'cloudwatch.amazonaws.com' },
          Resource: topicRef,
        });
        const account = allow[0]?.Condition.StringEquals['aws:SourceAccount'];
        expect([JSON.stringify({ Ref: 'AWS::AccountId' }), '"123456789012"']).toContain(
          JSON.stringify(account),
        );
        // The ARN condition as a regular expression: a Ref is any account or region, `*` anything.
        const arn = allow[0]?.Condition.ArnLike['aws:SourceArn'];
        const parts = (arn['Fn::Join']?.[1] ?? [arn]) as unknown[];
        const pattern = new RegExp(
          `^${parts
            .map((part) =>
              typeof part === 'string'
                ? part.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace('*', '.*')
                : '[a-z0-9-]+',
            )
            .join('')}$`,
        );
        // The test stacks are in either region.
        const alarmArn = (name: string) =>
          ['us-east-1', 'sa-east-1'].map(
            (region) => `arn:aws:cloudwatch:${region}:123456789012:alarm:${name}`,
          );
        for (const { Properties } of Object.values(alarmsOf(t))) {
          expect(alarmArn(String(Properties.AlarmName)).some((a) => pattern.test(a))).toBe(true);
        }
        expect(alarmArn('my-own-alarm').some((a) => pattern.test(a))).toBe(false);
        expect(alarmArn('ZapiPresence-Monitoring-00000000-ReceiverErrors').some((a) => pattern.test(a))).toBe(
          false,
        );
        // Only the alarms' statement allows; nothing is granted to every rule of every account.
        expect(JSON.stringify(statements)).not.toContain('events.amazonaws.com');
      }
    });
  });

  describe('alarms', () => {
    it('has the receiver alarms and, with the fleet, the fleet alarms', () => {
      expect(Object.keys(alarmsOf(defaults)).sort()).toEqual(
        [...RECEIVER_ALARMS, ...CANARY_ALARMS, ...FLEET_ALARMS].sort(),
      );
      expect(Object.keys(alarmsOf(alert)).sort()).toEqual(
        [...RECEIVER_ALARMS, ...CANARY_ALARMS, ...FLEET_ALARMS, 'DriftReported'].sort(),
      );
      expect(Object.keys(alarmsOf(noFleet)).sort()).toEqual([...RECEIVER_ALARMS, ...CANARY_ALARMS].sort());
      expect(Object.keys(alarmsOf(noCanary)).sort()).toEqual([...RECEIVER_ALARMS, ...FLEET_ALARMS].sort());
      // Every alarm this construct can create is a known, configurable name.
      expect(
        [
          ...RECEIVER_ALARMS,
          ...CANARY_ALARMS,
          ...FLEET_ALARMS,
          'DriftReported',
          'PresenceStateErrors',
          'PresenceStateDeadLetters',
          'PresenceStateBacklog',
          'PresenceStateFailures',
          'PresenceStateDeliveryDeadLetters',
          'DebugEventLogDeadLetters',
          'LiveFeedDeadLetters',
        ].sort(),
      ).toEqual([...ALARM_NAMES].sort());
    });

    it('watches the receiver, the API and the receiver metrics', () => {
      const receiver = { Ref: expect.stringMatching(/^PresenceReceiver[0-9A-F]{8}$/) };
      expect(alarm(configured, 'ReceiverErrors')).toMatchObject({
        Namespace: 'AWS/Lambda',
        MetricName: 'Errors',
        Dimensions: [{ Name: 'FunctionName', Value: receiver }],
        Period: 60,
        Statistic: 'Sum',
      });
      expect(alarm(configured, 'ReceiverThrottles')).toMatchObject({
        Namespace: 'AWS/Lambda',
        MetricName: 'Throttles',
        Dimensions: [{ Name: 'FunctionName', Value: receiver }],
      });
      expect(alarm(configured, 'Api5xx')).toMatchObject({ Namespace: 'AWS/ApiGateway', MetricName: '5xx' });
      for (const [name, metric] of [
        ['PublishFailures', METRIC_NAMES.publishFailures],
        ['SecretFailures', METRIC_NAMES.secretFailures],
        ['InternalErrors', METRIC_NAMES.internalErrors],
        ['RefusedCallbacks', METRIC_NAMES.refusedCallbacks],
      ] as const) {
        expect(alarm(configured, name)).toMatchObject({
          Namespace: 'Team/Presence',
          MetricName: metric,
          Statistic: 'Sum',
          Period: 60,
        });
      }
    });

    it('alarms when the reconciler fails or its invocations land in the dead-letter queue', () => {
      expect(alarm(configured, 'ReconcilerErrors')).toMatchObject({
        Namespace: 'AWS/Lambda',
        MetricName: 'Errors',
        Dimensions: [
          { Name: 'FunctionName', Value: { Ref: expect.stringMatching(/^FleetReconciler[0-9A-F]{8}$/) } },
        ],
        Statistic: 'Sum',
        Period: 300,
        Threshold: 1,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      });
      expect(alarm(configured, 'ReconcilerDeadLetters')).toMatchObject({
        Namespace: 'AWS/SQS',
        MetricName: 'ApproximateNumberOfMessagesVisible',
        Dimensions: [
          {
            Name: 'QueueName',
            Value: { 'Fn::GetAtt': [expect.stringMatching(/^FleetReconcilerDeadLetters/), 'QueueName'] },
          },
        ],
        Statistic: 'Maximum',
        Period: 300,
      });
    });

    it("alarms when the sweep's schedule invoked nothing in two intervals (its free rule metric, a deploy counting as a sweep; quiet until the first)", () => {
      for (const [t, period] of [
        [configured, 900],
        [defaults, 3600],
      ] as const) {
        const props = alarm(t, 'SweepMissing');
        expect(props).toMatchObject({
          ComparisonOperator: 'LessThanThreshold',
          EvaluationPeriods: 2,
          DatapointsToAlarm: 2,
          // Missing data keeps the state: no ALARM before the first sweep, and a stopped schedule stays in ALARM.
          TreatMissingData: 'ignore',
        });
        expect(queries(props)).toEqual([
          { Id: 'expr_1', ReturnData: true, Expression: armedSilence('sweeps', 'deploys', { counts: true }) },
          {
            Id: 'sweeps',
            ReturnData: false,
            MetricStat: {
              Metric: {
                Namespace: 'AWS/Events',
                MetricName: 'Invocations',
                Dimensions: [
                  { Name: 'RuleName', Value: { Ref: expect.stringMatching(/^FleetSweep[0-9A-F]{8}$/) } },
                ],
              },
              Period: period,
              Stat: 'Sum',
            },
          },
          {
            Id: 'deploys',
            ReturnData: false,
            MetricStat: {
              Metric: {
                Namespace: 'AWS/Lambda',
                MetricName: 'Invocations',
                Dimensions: [
                  {
                    Name: 'FunctionName',
                    Value: { Ref: expect.stringMatching(/^FleetRegistrar[0-9A-F]{8}$/) },
                  },
                ],
              },
              Period: period,
              Stat: 'Sum',
            },
          },
        ]);
      }
      expect(alarm(defaults, 'SweepMissing').Threshold).toBe(1);
    });

    it('alarms on instances left unregistered by two consecutive sweeps', () => {
      expect(alarm(defaults, 'Unregistered')).toMatchObject({
        ...fleetCountAlarm(FLEET_METRICS.unregistered, { periods: 2 }),
        Threshold: 1,
      });
    });

    it('alarms on instances left not checked by three consecutive sweeps (one slow sweep is no fact), with actions', () => {
      expect(alarm(defaults, 'NotChecked')).toMatchObject({
        ...fleetCountAlarm(FLEET_METRICS.notChecked, { periods: 3 }),
        Threshold: 1,
      });
      expect(alarm(defaults, 'NotChecked').AlarmActions).toHaveLength(1);
      expect(alarm(defaults, 'NotChecked').OKActions).toBeUndefined();
    });

    it('alarms on instances that could not be checked (a refused token, none, Z-API failing) for two sweeps', () => {
      expect(alarm(defaults, 'CheckFailures')).toMatchObject({
        ...fleetCountAlarm(FLEET_METRICS.failed, { periods: 2 }),
        AlarmActions: [topicRef],
      });
    });

    it('alarms on instances a deploy could not register: Z-API said elsewhere, or would not answer for them', () => {
      const deploy = (metric: string) => ({
        Metric: {
          Namespace: 'ZapiPresence',
          MetricName: metric,
          Dimensions: [
            { Name: 'Scope', Value: 'fleet' },
            { Name: 'Trigger', Value: 'deploy' },
          ],
        },
        Period: 300,
        Stat: 'Maximum',
      });
      const props = alarm(defaults, 'DeployRegistrationFailures');
      expect(props).toMatchObject({
        EvaluationPeriods: 1,
        DatapointsToAlarm: 1,
        Threshold: 1,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        TreatMissingData: 'notBreaching',
        AlarmActions: [topicRef],
      });
      expect(queries(props)).toEqual([
        { Id: 'expr_1', ReturnData: true, Expression: 'MAX([unregistered, failed])' },
        { Id: 'unregistered', ReturnData: false, MetricStat: deploy(FLEET_METRICS.unregistered) },
        { Id: 'failed', ReturnData: false, MetricStat: deploy(FLEET_METRICS.failed) },
      ]);
    });

    it.each([
      ['Disconnected', FLEET_METRICS.disconnected],
      ['ExpiringSoon', FLEET_METRICS.expiringSoon],
      ['PaymentIssues', FLEET_METRICS.paymentIssues],
    ])('alarms on %s reported by a sweep', (name, metric) => {
      for (const [t, period] of [
        [configured, 900],
        [defaults, 3600],
      ] as const) {
        const namespace = t === configured ? 'Team/Presence' : 'ZapiPresence';
        expect(alarm(t, name)).toMatchObject(fleetCountAlarm(metric, { period, namespace }));
      }
    });

    it('alarms on reported drift only with driftPolicy alert', () => {
      expect(alarmsOf(defaults)).not.toHaveProperty('DriftReported');
      expect(alarm(alert, 'DriftReported')).toMatchObject({
        ...fleetCountAlarm(FLEET_METRICS.driftReported),
        Threshold: 1,
      });
    });

    it('uses threshold 1 (60 for WrongSecrets) unless alarmThresholds says otherwise', () => {
      for (const [name, { Properties }] of Object.entries(alarmsOf(defaults))) {
        expect(Properties.Threshold, name).toBe(name === 'WrongSecrets' ? WRONG_SECRETS_THRESHOLD : 1);
      }
      const overridden: Partial<Record<AlarmName, number>> = {
        PublishFailures: 5,
        Disconnected: 2,
        Unregistered: 3,
        SweepMissing: 2,
      };
      for (const [name, { Properties }] of Object.entries(alarmsOf(configured))) {
        expect(Properties.Threshold, name).toBe(
          overridden[name as AlarmName] ?? (name === 'WrongSecrets' ? WRONG_SECRETS_THRESHOLD : 1),
        );
      }
      const wrong = templateOf({ alarmThresholds: '{"WrongSecrets":500,"Throttled":10}' });
      expect(alarm(wrong, 'WrongSecrets').Threshold).toBe(500);
      expect(alarm(wrong, 'Throttled').Threshold).toBe(10);
    });

    it('refuses a threshold for CanaryArrivals, which fires on silence', () => {
      expect(() => templateOf({ alarmThresholds: '{"CanaryArrivals":2}' })).toThrow(
        /CanaryArrivals has no threshold \(it fires when no canary callback arrives\); set canaryIntervalMinutes instead/,
      );
    });

    it('alarms when no canary callback arrived for two intervals and a minute, at most 14 minutes', () => {
      const canary = alarm(defaults, 'CanaryArrivals');
      // The arrival function's invocations (only the arrival rule, this API's canary events, invokes it),
      // armed by the canary's own runs: quiet until the first run, then zero where nothing arrived.
      expect(canary).toMatchObject({
        EvaluationPeriods: 11,
        DatapointsToAlarm: 11,
        Threshold: 1,
        ComparisonOperator: 'LessThanThreshold',
        TreatMissingData: 'ignore',
        AlarmActions: [topicRef],
      });
      const invocations = (prefix: string) => ({
        Metric: {
          Namespace: 'AWS/Lambda',
          MetricName: 'Invocations',
          Dimensions: [
            {
              Name: 'FunctionName',
              Value: { Ref: expect.stringMatching(new RegExp(`^${prefix}[0-9A-F]{8}$`)) },
            },
          ],
        },
        Period: 60,
        Stat: 'Sum',
      });
      expect(queries(canary)).toEqual([
        { Id: 'expr_1', ReturnData: true, Expression: armedSilence('arrivals', 'runs', { armedBy: 2 }) },
        { Id: 'arrivals', ReturnData: false, MetricStat: invocations('CanaryArrival') },
        { Id: 'runs', ReturnData: false, MetricStat: invocations('CanaryFunction') },
      ]);
      // Armed by two runs, not one: a first arrival may land in the minute after its run.
      expect(queries(canary)[0]?.Expression).toContain('IF(DATAPOINT_COUNT(runs) > 1, 0 * FILL(runs, 0))');
      const description = descriptionText(canary.AlarmDescription);
      expect(description).toMatch(/^Canary: no canary callback arrived on the bus for 11 minutes/);
      expect(description.length).toBeLessThanOrEqual(1024);
      // In order: the canary's own log first, the schedule last.
      expect(description).toContain('(output CanaryLogGroup)');
      expect(description).toMatch(
        /1\. the canary function's log.*2\. the receiver's log.*3\. the API.*4\. the bus.*5\. the canary schedule/,
      );
      for (const [minutes, window] of [
        [1, 3],
        [5, 11],
        [6, 13],
      ] as const) {
        const t = templateOf({ canaryIntervalMinutes: String(minutes) });
        const props = alarm(t, 'CanaryArrivals');
        const seconds =
          (queries(props)[1]?.MetricStat?.Period as number) * (props.DatapointsToAlarm as number);
        expect(props.DatapointsToAlarm, `${minutes} min`).toBe(window);
        // No alarm between two healthy runs; within 15 minutes of the last arrival.
        expect(seconds).toBeGreaterThan(minutes * 60);
        expect(seconds).toBeLessThanOrEqual(900);
      }
    });

    it('alarms on 429s API Gateway answered before the receiver, counted from the access log of this API', () => {
      defaults.hasResourceProperties('AWS::Logs::MetricFilter', {
        LogGroupName: { Ref: Match.stringLikeRegexp('^PresenceAccessLogs[0-9A-F]{8}$') },
        FilterPattern: '{ ($.status = "429") && ($.route != "GET /instances/{instanceId}/presence") }',
        MetricTransformations: [
          {
            MetricNamespace: 'ZapiPresence',
            MetricName: THROTTLED_METRIC,
            MetricValue: '1',
            Dimensions: [{ Key: 'ApiId', Value: '$.api' }],
          },
        ],
      });
      expect(alarm(defaults, 'Throttled')).toMatchObject({
        Namespace: 'ZapiPresence',
        MetricName: THROTTLED_METRIC,
        Dimensions: [{ Name: 'ApiId', Value: { Ref: expect.stringMatching(/^PresenceApi[0-9A-F]{8}$/) } }],
        Statistic: 'Sum',
        Period: 60,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        AlarmActions: [topicRef],
      });
      // The access log carries the API id the filter reads.
      expect(ACCESS_LOG_FIELDS.api).toBe('$context.apiId');
      expect(ACCESS_LOG_FIELDS.status).toBe('$context.status');
      expect(ACCESS_LOG_FIELDS.route).toBe('$context.routeKey');
    });

    it('alarms on a flood of requests refused before a secret was proven (401, and 404 for an id Z-API never sends), counted from the access log of this API', () => {
      const filters = Object.values(defaults.findResources('AWS::Logs::MetricFilter')) as Array<{
        Properties: {
          LogGroupName: unknown;
          FilterPattern: string;
          MetricTransformations: Array<Record<string, unknown>>;
        };
      }>;
      expect(filters).toHaveLength(2);
      const refused = filters.find(
        (f) => f.Properties.MetricTransformations[0]?.MetricName === UNAUTHENTICATED_METRIC,
      );
      expect(refused?.Properties).toMatchObject({
        LogGroupName: { Ref: expect.stringMatching(/^PresenceAccessLogs[0-9A-F]{8}$/) },
        MetricTransformations: [
          {
            MetricNamespace: 'ZapiPresence',
            MetricName: UNAUTHENTICATED_METRIC,
            MetricValue: '1',
            Dimensions: [{ Key: 'ApiId', Value: '$.api' }],
          },
        ],
      });
      // Access-log lines as the stage writes them (ACCESS_LOG_FIELDS), for what the receiver answered.
      const line = (route: string, status: number) =>
        JSON.stringify({
          id: 'JxLb4gN3IAMEbDw=',
          api: 'a1b2c3d4e5',
          ip: '203.0.113.9',
          route,
          status: String(status),
          ms: '12',
          lambdaMs: '10',
          err: '-',
          lambdaErr: '-',
        });
      const webhook = `POST ${WEBHOOK_ROUTE_PATH}`;
      const pattern = refused?.Properties.FilterPattern as string;
      const counted = (route: string, status: number) => matchesFilterPattern(pattern, line(route, status));
      // A wrong or missing secret; an id Z-API never sends (a.b, 65 characters, a~b: 404 unknown-instance).
      expect(counted(webhook, 401)).toBe(true);
      expect(counted(webhook, 404)).toBe(true);
      // Not: callbacks that proved their secret, the throttle's 429s (their own alarm), the read route's
      // unknown chats, a path no route matches (API Gateway answers it without the receiver).
      for (const status of [200, 400, 413, 415, 429, 500, 503]) expect(counted(webhook, status)).toBe(false);
      expect(counted(`GET ${PRESENCE_READ_ROUTE}`, 404)).toBe(false);
      expect(counted('-', 404)).toBe(false);
      // The live feed's snapshot route: an agent's missing or expired token is no flood of the webhook.
      expect(counted('GET /instances/{instanceId}/presence', 401)).toBe(false);
      // A 401 API Gateway wrote before it knew the route still counts.
      expect(counted('-', 401)).toBe(true);
      expect(alarm(defaults, 'WrongSecrets')).toMatchObject({
        Namespace: 'ZapiPresence',
        MetricName: UNAUTHENTICATED_METRIC,
        Dimensions: [{ Name: 'ApiId', Value: { Ref: expect.stringMatching(/^PresenceApi[0-9A-F]{8}$/) } }],
        Statistic: 'Sum',
        Period: 300,
        Threshold: WRONG_SECRETS_THRESHOLD,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        AlarmActions: [topicRef],
      });
      const description = descriptionText(alarm(defaults, 'WrongSecrets').AlarmDescription);
      expect(description).toMatch(
        /^At least 60 webhook requests in 5 minutes were refused before a secret was proven/,
      );
      expect(description).toContain('404 unknown-instance');
    });

    it('treats missing data as fine everywhere; the two alarms on silence keep their state (no ALARM before a first run); none breaches on missing data', () => {
      for (const t of [alert, defaults, configured, noFleet, noCanary]) {
        for (const [name, { Properties }] of Object.entries(alarmsOf(t))) {
          expect(Properties.TreatMissingData, name).toBe(
            name === 'SweepMissing' || name === 'CanaryArrivals' ? 'ignore' : 'notBreaching',
          );
        }
      }
    });
  });

  describe('dashboard', () => {
    const body = (t: Template) => {
      const dashboards = Object.values(t.findResources('AWS::CloudWatch::Dashboard')) as Alarm[];
      expect(dashboards).toHaveLength(1);
      return JSON.stringify(dashboards[0]?.Properties.DashboardBody);
    };

    it('draws traffic per status, the fleet and every alarm', () => {
      const text = body(configured);
      for (const status of PRESENCE_STATUSES) expect(text).toContain(`\\"Status\\",\\"${status}\\"`);
      for (const id of Object.keys(configured.findResources('AWS::CloudWatch::Alarm')))
        expect(text).toContain(id);
      for (const title of [
        'Fleet (each sweep)',
        'Fleet: drift and failures',
        'Fleet: instance health',
        'Reconciler',
      ])
        expect(text).toContain(title);
      expect(text).toContain('swept every 15 minutes, drift policy repair');
    });

    it('says when Z-API registration is off', () => {
      const text = body(synth({ registerWebhook: 'false', dashboard: 'true' }).template);
      expect(text).toContain('Z-API registration off');
      expect(text).not.toContain('Fleet (each sweep)');
    });

    it('is opt-in ($3 a month beyond the first three): none by default', () => {
      for (const t of [defaults, alert, noFleet, noCanary])
        t.resourceCountIs('AWS::CloudWatch::Dashboard', 0);
      expect(defaults.findOutputs('DashboardName')).toEqual({});
      expect(Object.keys(configured.findOutputs('DashboardName'))).toEqual(['DashboardName']);
    });

    it('without detailed metrics, draws only what is reported: no traffic per status, the fleet needing attention', () => {
      const text = body(synth({ dashboard: 'true' }).template);
      expect(text).not.toContain('\\"Status\\"');
      expect(text).not.toContain('Fleet (each sweep)');
      expect(text).not.toContain(CANARY_METRICS.latency);
      expect(text).toContain('Fleet: instances needing attention');
      expect(text).toContain('Canary: arrivals on the bus and failed runs');
    });
  });

  it('adds a dead-letter alarm for every subscription, made before or after it', () => {
    const { stack } = buildApp({ registerWebhook: 'false' }, { nag: false });
    stack.webhook.onStatus('Typing', ['COMPOSING']);
    expect(stack.monitoring.alarms.map((a) => a.node.id).sort()).toEqual(
      [...RECEIVER_ALARMS, ...CANARY_ALARMS, 'SubscriptionTypingDeadLetters'].sort(),
    );
    const early = new Stack(new App({ context: { 'aws:cdk:bundling-stacks': [] } }), 'Early');
    const webhook = new PresenceWebhook(early, 'Presence', {});
    webhook.onStatus('Recording', ['RECORDING']);
    const monitoring = new PresenceMonitoring(early, 'Monitoring', { webhook });
    expect(monitoring.alarms.map((a) => a.node.id)).toContain('SubscriptionRecordingDeadLetters');
  });

  // A subscription's dead-letter alarm has its own name, so no subscription id collides with a fleet alarm.
  it('lets a subscription be called Reconciler', () => {
    const { stack } = buildApp({}, { nag: false });
    stack.webhook.onStatus('Reconciler', ['COMPOSING']);
    const ids = stack.monitoring.alarms.map((a) => a.node.id);
    expect(ids).toEqual(
      expect.arrayContaining([
        'SubscriptionReconcilerDeadLetters',
        'ReconcilerErrors',
        'ReconcilerDeadLetters',
      ]),
    );
    expect(new Set(ids).size).toBe(ids.length);
  });
});

describe('PresenceMonitoring props', () => {
  const webhook = () => {
    const stack = new Stack(new App({ context: { 'aws:cdk:bundling-stacks': [] } }), 'S');
    return { stack, webhook: new PresenceWebhook(stack, 'Presence', {}) };
  };

  it.each([
    [{ Nope: 1 }, /PresenceMonitoring: alarmThresholds: "Nope" is not one of ReceiverErrors, /],
    [
      { Disconnected: 0 },
      /PresenceMonitoring: alarmThresholds: Disconnected must be a whole number of at least 1/,
    ],
    [{ Disconnected: 1.5 }, /Disconnected must be a whole number of at least 1/],
    [{ SweepMissing: -1 }, /SweepMissing must be a whole number of at least 1/],
  ])('refuses alarmThresholds %o', (thresholds, message) => {
    const { stack, webhook: w } = webhook();
    expect(
      () => new PresenceMonitoring(stack, 'Monitoring', { webhook: w, alarmThresholds: thresholds as never }),
    ).toThrow(message);
  });

  it('refuses a threshold for an alarm the deployment does not have, saying when it exists', () => {
    const { stack, webhook: w } = webhook();
    expect(
      () =>
        new PresenceMonitoring(stack, 'Monitoring', {
          webhook: w,
          alarmThresholds: { PublishFailures: 2, Disconnected: 2, PresenceStateErrors: 3 },
        }),
    ).toThrow(
      'PresenceMonitoring: alarmThresholds: Disconnected is an alarm only with Z-API registration on (registerWebhook); PresenceStateErrors is an alarm only with the presence store (presenceStore)',
    );
    // With the fleet (repair policy), DriftReported does not exist either.
    expect(() => synth({ alarmThresholds: '{"DriftReported":2}' })).toThrow(
      /DriftReported is an alarm only with driftPolicy 'alert'/,
    );
    const { template } = synth({ driftPolicy: 'alert', alarmThresholds: '{"DriftReported":2}' });
    expect(alarm(template, 'DriftReported').Threshold).toBe(2);
  });

  it('refuses an alarm e-mail that is not an address', () => {
    const { stack, webhook: w } = webhook();
    expect(() => new PresenceMonitoring(stack, 'Monitoring', { webhook: w, alarmEmail: 'oncall' })).toThrow(
      /alarmEmail "oncall" is not an e-mail address/,
    );
  });
});
