import { Match } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { DETAIL_TYPE_PREFIX, EVENT_SOURCE } from '../../functions/shared/contract/presence-contract.ts';
import { synth } from '../support/synth.ts';

describe('debugEventLog', () => {
  it('is off by default', () => {
    const { template } = synth({});
    // The only rules are the fleet's (schedule and SSM changes), the canary's (schedule, arrival) and the
    // alarms' recoveries (CloudWatch's events); none reads presence events.
    const rules = Object.values(template.findResources('AWS::Events::Rule')) as Array<{
      Properties: { EventPattern?: { source?: string[] } };
    }>;
    expect(rules).toHaveLength(5);
    for (const rule of rules) expect(rule.Properties.EventPattern?.source ?? []).not.toContain(EVENT_SOURCE);
    template.resourceCountIs('AWS::Logs::ResourcePolicy', 0);
    expect(template.findOutputs('DebugEventLogGroup')).toEqual({});
  });

  it('sends every presence event to a log group, through a grant and without a custom resource', () => {
    const { template, report } = synth({ debugEventLog: 'true', encryptLogs: 'true' });
    template.hasResourceProperties('AWS::Logs::LogGroup', {
      LogGroupName: '/aws/events/ZapiPresence/presence',
      // Personal data (phone numbers): a week, whatever the other log groups keep.
      RetentionInDays: 7,
      KmsKeyId: { 'Fn::GetAtt': [Match.stringLikeRegexp('^LogsKey[0-9A-F]{8}$'), 'Arn'] },
    });
    template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: { source: [EVENT_SOURCE], 'detail-type': [{ prefix: DETAIL_TYPE_PREFIX }] },
      Targets: [
        Match.objectLike({
          Arn: {
            'Fn::Join': [
              '',
              [
                'arn:',
                { Ref: 'AWS::Partition' },
                ':logs:sa-east-1:123456789012:log-group:',
                { Ref: Match.stringLikeRegexp('^DebugEvents') },
              ],
            ],
          },
          DeadLetterConfig: Match.anyValue(),
          RetryPolicy: Match.anyValue(),
        }),
      ],
    });
    // Delivery keeps failed events and alarms on them like any subscription.
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Dimensions: [
        {
          Name: 'QueueName',
          Value: { 'Fn::GetAtt': [Match.stringLikeRegexp('^PresenceDebugLogDeadLetters'), 'QueueName'] },
        },
      ],
    });
    template.resourceCountIs('AWS::Logs::ResourcePolicy', 1);
    template.resourceCountIs('Custom::CloudwatchLogResourcePolicy', 0);
    expect(JSON.stringify(template.findResources('AWS::Logs::ResourcePolicy'))).toContain(
      'events.amazonaws.com',
    );
    expect(Object.keys(template.findOutputs('DebugEventLogGroup'))).toEqual(['DebugEventLogGroup']);
    for (const plugin of report.pluginReports) expect(plugin.violations).toEqual([]);
  });
});
