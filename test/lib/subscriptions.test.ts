import { App, Duration, Stack, Validations } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { EventBus } from 'aws-cdk-lib/aws-events';
import { LambdaFunction, SqsQueue } from 'aws-cdk-lib/aws-events-targets';
import { Code, Function as LambdaFn, Runtime } from 'aws-cdk-lib/aws-lambda';
import { Queue } from 'aws-cdk-lib/aws-sqs';
import { describe, expect, it } from 'vitest';
import {
  DETAIL_TYPE_PREFIX,
  DETAIL_TYPES,
  EVENT_SOURCE,
} from '../../functions/shared/contract/presence-contract.ts';
import { PresenceSubscription } from '../../lib/presence-subscription.ts';
import { buildApp } from '../support/synth.ts';

function appWithTypingQueue(nag = false) {
  const { app, stack } = buildApp({ instanceId: 'TEST' }, { nag });
  // A consumer queue as cdk-nag wants it: SSL only, with its own dead-letter queue.
  const consumerDlq = new Queue(stack, 'TypingQueueDlq', { enforceSSL: true });
  Validations.of(consumerDlq).acknowledge({
    id: 'AwsSolutions::AwsSolutions-SQS3',
    reason: 'Test consumer: this is the dead-letter queue.',
  });
  Validations.of(consumerDlq).acknowledge({
    id: 'Serverless::Serverless-SQSRedrivePolicy',
    reason: 'Test consumer: this is the dead-letter queue.',
  });
  const queue = new Queue(stack, 'TypingQueue', {
    enforceSSL: true,
    deadLetterQueue: { queue: consumerDlq, maxReceiveCount: 5 },
  });
  const subscription = stack.webhook.onStatus('Typing', ['COMPOSING'], { targets: [new SqsQueue(queue)] });
  return { app, stack, queue, subscription };
}

describe('onStatus', () => {
  it('subscribes an SQS queue to COMPOSING with a pattern built from the contract', () => {
    const { stack, subscription } = appWithTypingQueue();
    const template = Template.fromStack(stack);
    template.hasResourceProperties('AWS::Events::Rule', {
      EventBusName: { Ref: Match.stringLikeRegexp('^PresenceBus') },
      EventPattern: { source: [EVENT_SOURCE], 'detail-type': [DETAIL_TYPES.COMPOSING] },
      State: 'ENABLED',
      Targets: [
        {
          Arn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^TypingQueue'), 'Arn'] },
          Id: 'Target0',
          DeadLetterConfig: {
            Arn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^PresenceTypingDeadLetters'), 'Arn'] },
          },
          RetryPolicy: { MaximumRetryAttempts: 8, MaximumEventAgeInSeconds: 7200 },
        },
      ],
    });
    expect(subscription.statuses).toEqual(['COMPOSING']);
    expect(stack.webhook.subscriptions).toEqual([subscription]);
  });

  it('gives the dead-letter queue SSE, SSL-only access and a policy for this rule only', () => {
    const { stack } = appWithTypingQueue();
    const template = Template.fromStack(stack);
    template.hasResourceProperties('AWS::SQS::Queue', {
      SqsManagedSseEnabled: true,
      MessageRetentionPeriod: 1_209_600,
    });
    const policies = Object.entries(template.findResources('AWS::SQS::QueuePolicy')).filter(([id]) =>
      id.startsWith('PresenceTypingDeadLetters'),
    );
    expect(policies).toHaveLength(1);
    const [, policy] = policies[0] as [
      string,
      { Properties: { PolicyDocument: { Statement: Array<Record<string, unknown>> } } },
    ];
    const statements = policy.Properties.PolicyDocument.Statement;
    expect(statements).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        expect.objectContaining({
          Effect: 'Allow',
          Action: 'sqs:SendMessage',
          Principal: { Service: 'events.amazonaws.com' },
          Condition: {
            ArnEquals: {
              'aws:SourceArn': { 'Fn::GetAtt': [expect.stringMatching(/^PresenceTypingRule/), 'Arn'] },
            },
          },
        }),
      ]),
    );
  });

  it('keeps a target’s own dead-letter queue and retry policy', () => {
    const { stack } = buildApp({ instanceId: 'TEST' }, { nag: false });
    const own = new Queue(stack, 'OwnDlq');
    const fn = new LambdaFn(stack, 'Fn', {
      runtime: Runtime.NODEJS_24_X,
      handler: 'index.handler',
      code: Code.fromInline('exports.handler=()=>{}'),
    });
    stack.webhook.onStatus('Everything', [], {
      targets: [
        new LambdaFunction(fn, { deadLetterQueue: own, retryAttempts: 2, maxEventAge: Duration.minutes(5) }),
      ],
      instanceIds: ['TEST'],
    });
    Template.fromStack(stack).hasResourceProperties('AWS::Events::Rule', {
      EventPattern: {
        source: [EVENT_SOURCE],
        'detail-type': [{ prefix: DETAIL_TYPE_PREFIX }],
        detail: { instanceId: ['TEST'] },
      },
      Targets: [
        Match.objectLike({
          DeadLetterConfig: { Arn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^OwnDlq'), 'Arn'] } },
          RetryPolicy: { MaximumRetryAttempts: 2, MaximumEventAgeInSeconds: 300 },
        }),
      ],
    });
  });

  it('works from another stack against an imported bus', () => {
    const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
    const consumer = new Stack(app, 'Consumer', { env: { account: '123456789012', region: 'sa-east-1' } });
    const bus = EventBus.fromEventBusArn(
      consumer,
      'Bus',
      'arn:aws:events:sa-east-1:123456789012:event-bus/presence',
    );
    new PresenceSubscription(consumer, 'Recording', {
      eventBus: bus,
      statuses: ['RECORDING'],
      targets: [new SqsQueue(new Queue(consumer, 'Q'))],
      retryAttempts: 3,
      maxEventAge: Duration.minutes(30),
    });
    Template.fromStack(consumer).hasResourceProperties('AWS::Events::Rule', {
      EventBusName: 'presence',
      EventPattern: { source: [EVENT_SOURCE], 'detail-type': [DETAIL_TYPES.RECORDING] },
      Targets: [
        Match.objectLike({ RetryPolicy: { MaximumRetryAttempts: 3, MaximumEventAgeInSeconds: 1800 } }),
      ],
    });
  });

  it('refuses settings EventBridge would refuse, saying what to change', () => {
    const { stack } = buildApp({ instanceId: 'TEST' }, { nag: false });
    expect(() => stack.webhook.onStatus('Bad', ['COMPOSING'], { retryAttempts: 500 })).toThrow(
      /retryAttempts must be a whole number from 0 to 185, got 500/,
    );
    expect(() => stack.webhook.onStatus('Old', ['COMPOSING'], { maxEventAge: Duration.days(2) })).toThrow(
      /maxEventAge must be between 1 minute and 24 hours/,
    );
    expect(() => stack.webhook.onStatus('Typo', ['TYPING' as never])).toThrow(
      /Unknown presence status "TYPING"/,
    );
  });

  it('adds a dead-letter alarm per subscription and stays cdk-nag clean', () => {
    const { app, stack } = appWithTypingQueue(true);
    const template = Template.fromStack(stack);
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Namespace: 'AWS/SQS',
      Dimensions: [
        {
          Name: 'QueueName',
          Value: { 'Fn::GetAtt': [Match.stringLikeRegexp('^PresenceTypingDeadLetters'), 'QueueName'] },
        },
      ],
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
    });
    const assembly = app.synth();
    expect(assembly.stacks).toHaveLength(1);
  });
});
