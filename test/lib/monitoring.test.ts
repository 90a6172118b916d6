import { Match } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { METRIC_NAMES } from '../../functions/presence-webhook/metrics.ts';
import { PRESENCE_STATUSES } from '../../functions/shared/presence-contract.ts';
import { synth } from '../support/synth.ts';

describe('PresenceMonitoring', () => {
  const { template, report } = synth({
    instanceId: 'TEST',
    alarmEmail: 'oncall@example.com.br',
    metricsNamespace: 'Team/Presence',
  });

  it('alarms on receiver errors and throttles, API 5xx, publish and secret failures, internal errors', () => {
    const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm')) as Array<{
      Properties: Record<string, unknown>;
    }>;
    const watched = alarms.map((a) => `${a.Properties.Namespace}/${a.Properties.MetricName}`).sort();
    expect(watched).toEqual(
      [
        'AWS/ApiGateway/5xx',
        'AWS/Lambda/Errors',
        'AWS/Lambda/Throttles',
        `Team/Presence/${METRIC_NAMES.publishFailures}`,
        `Team/Presence/${METRIC_NAMES.secretFailures}`,
        `Team/Presence/${METRIC_NAMES.internalErrors}`,
      ].sort(),
    );
    for (const alarm of alarms) {
      expect(alarm.Properties).toMatchObject({
        Threshold: 1,
        TreatMissingData: 'notBreaching',
        EvaluationPeriods: 1,
      });
      expect(alarm.Properties.AlarmActions).toEqual([
        { Ref: expect.stringMatching(/^MonitoringAlarmTopic/) },
      ]);
      expect(alarm.Properties.OKActions).toEqual([{ Ref: expect.stringMatching(/^MonitoringAlarmTopic/) }]);
    }
  });

  it('notifies the e-mail address over an SSL-only topic, keeping undeliverable notifications', () => {
    template.hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'email',
      Endpoint: 'oncall@example.com.br',
      RedrivePolicy: {
        deadLetterTargetArn: {
          'Fn::GetAtt': [Match.stringLikeRegexp('^MonitoringUndeliveredNotifications'), 'Arn'],
        },
      },
    });
    template.hasResourceProperties('AWS::SNS::TopicPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
  });

  it('has no topic without an e-mail address', () => {
    const { template: t } = synth({ instanceId: 'TEST' });
    t.resourceCountIs('AWS::SNS::Topic', 0);
    t.resourceCountIs('AWS::CloudWatch::Alarm', 6);
  });

  it('draws traffic per status and every alarm on one dashboard', () => {
    const dashboards = Object.values(template.findResources('AWS::CloudWatch::Dashboard')) as Array<{
      Properties: { DashboardBody: unknown };
    }>;
    expect(dashboards).toHaveLength(1);
    const body = JSON.stringify(dashboards[0]?.Properties.DashboardBody);
    for (const status of PRESENCE_STATUSES) expect(body).toContain(`\\"Status\\",\\"${status}\\"`);
    expect(body).toContain('\\"alarm\\"');
    const alarmRefs = Object.keys(template.findResources('AWS::CloudWatch::Alarm'));
    for (const id of alarmRefs) expect(body).toContain(id);
  });

  it('reserves receiver concurrency, configurable', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      Handler: 'index.handler',
      ReservedConcurrentExecutions: 10,
      Environment: { Variables: Match.objectLike({ METRICS_NAMESPACE: 'Team/Presence' }) },
    });
    const { template: off } = synth({ instanceId: 'TEST', receiverReservedConcurrency: 'off' });
    const receivers = Object.entries(off.findResources('AWS::Lambda::Function')).filter(([id]) =>
      id.startsWith('PresenceReceiver'),
    );
    expect(receivers).toHaveLength(1);
    const [, receiver] = receivers[0] as [string, { Properties: Record<string, unknown> }];
    expect(receiver.Properties.ReservedConcurrentExecutions).toBeUndefined();
  });

  it('stays cdk-nag clean', () => {
    for (const plugin of report.pluginReports) expect(plugin.violations).toEqual([]);
  });
});
