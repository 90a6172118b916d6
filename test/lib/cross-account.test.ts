/**
 * A subscription from another AWS account, as EventBridge documents it: the account that deploys
 * ZapiPresence forwards with `presence.forwardTo` (a rule on its bus, a bus target named by ARN, a role),
 * the subscriber receives on a `PresenceSubscriberBus` (a bus whose policy lets the sender's rules put
 * events) and delivers to its own targets with rules on its own bus. Both accounts' templates are checked
 * against EventBridge's documented cross-account rules (test/support/eventbridge-rules.ts), and the
 * checker is shown to catch the subscriptions EventBridge refuses or never delivers.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App, Stack, Validations } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { type CfnRule, EventBus, Rule } from 'aws-cdk-lib/aws-events';
import { SqsQueue } from 'aws-cdk-lib/aws-events-targets';
import { Queue } from 'aws-cdk-lib/aws-sqs';
import { describe, expect, it } from 'vitest';
import {
  DETAIL_TYPES,
  EVENT_SOURCE,
  PresenceSubscriberBus,
  presenceEventPattern,
  ZapiPresence,
} from 'zapi-presence-eventbridge';
import { addNagPacks } from '../../lib/nag.ts';
import { type AccountTemplate, crossAccountProblems } from '../support/eventbridge-rules.ts';
import type { ValidationReport } from '../support/synth.ts';

const CRM = { account: '123456789012', region: 'sa-east-1' } as const;
const HELPDESK = { account: '210987654321', region: 'sa-east-1' } as const;
const SOURCE_BUS = `arn:aws:events:sa-east-1:${CRM.account}:event-bus/zapi-presence`;
const HELPDESK_BUS = `arn:aws:events:sa-east-1:${HELPDESK.account}:event-bus/zapi-presence-from-crm`;

function app() {
  return new App({ context: { 'aws:cdk:bundling-stacks': [] } });
}

/** The two accounts' stacks, as docs/library.md shows them. */
function documented(options: { withPolicy?: boolean } = {}) {
  const a = app();
  const crm = new Stack(a, 'Crm', { env: CRM });
  const presence = new ZapiPresence(crm, 'Presence', { eventBusName: 'zapi-presence', deployNonce: 'test' });
  const forward = presence.forwardTo('Helpdesk', HELPDESK_BUS, ['RECORDING']);
  const helpdesk = new Stack(a, 'Helpdesk', { env: HELPDESK });
  const bus = new PresenceSubscriberBus(helpdesk, 'Presence', {
    sourceEventBusArn: SOURCE_BUS,
    eventBusName: 'zapi-presence-from-crm',
  });
  if (options.withPolicy === false)
    for (const child of bus.eventBus.node.children)
      if (child.node.id.startsWith('cdk-zapi-presence-from-'))
        bus.eventBus.node.tryRemoveChild(child.node.id);
  const recordingDlq = new Queue(helpdesk, 'RecordingDeadLetters', { enforceSSL: true });
  Validations.of(recordingDlq).acknowledge({
    id: 'Serverless::Serverless-SQSRedrivePolicy',
    reason: 'It is itself the dead-letter queue of Recording.',
  });
  const recording = new Queue(helpdesk, 'Recording', {
    enforceSSL: true,
    deadLetterQueue: { queue: recordingDlq, maxReceiveCount: 5 },
  });
  bus.onStatus('Recording', ['RECORDING'], { targets: [new SqsQueue(recording)] });
  return { app: a, crm, helpdesk, presence, forward, bus };
}

const templateOf = (stack: Stack, env: { account: string; region: string }): AccountTemplate => ({
  name: stack.stackName,
  ...env,
  template: Template.fromStack(stack).toJSON() as AccountTemplate['template'],
});

describe('cross-account: forwardTo and PresenceSubscriberBus', () => {
  it('follow EventBridge’s documented cross-account rules in both accounts', () => {
    const { crm, helpdesk } = documented();
    expect(crossAccountProblems([templateOf(crm, CRM), templateOf(helpdesk, HELPDESK)])).toEqual([]);
  });

  it('sender: a rule on its own bus targets the other account’s bus by full ARN, through a role that may PutEvents to exactly that bus', () => {
    const { crm } = documented();
    const t = Template.fromStack(crm);
    const rules = Object.values(t.findResources('AWS::Events::Rule')).filter(
      (r) =>
        (r as { Properties: { Targets?: Array<{ Arn: unknown }> } }).Properties.Targets?.[0]?.Arn ===
        HELPDESK_BUS,
    ) as Array<{
      Properties: { EventBusName: unknown; EventPattern: unknown; Targets: Array<Record<string, unknown>> };
    }>;
    expect(rules).toHaveLength(1);
    const [rule] = rules as [(typeof rules)[0]];
    expect(rule.Properties.EventBusName).toEqual({ Ref: expect.stringMatching(/^PresenceBus/) });
    expect(rule.Properties.EventPattern).toEqual({
      source: [EVENT_SOURCE],
      'detail-type': [DETAIL_TYPES.RECORDING],
    });
    const [target] = rule.Properties.Targets as [Record<string, unknown>];
    // A dead-letter queue and retries, as every subscription; a role for the bus-to-bus delivery.
    expect(target).toMatchObject({
      Arn: HELPDESK_BUS,
      RoleArn: { 'Fn::GetAtt': [expect.any(String), 'Arn'] },
      DeadLetterConfig: { Arn: expect.anything() },
      RetryPolicy: { MaximumRetryAttempts: 8 },
    });
    t.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: [{ Effect: 'Allow', Action: 'events:PutEvents', Resource: HELPDESK_BUS }],
      },
    });
    // The sender's bus needs no policy for it: the rule is its own.
    t.resourceCountIs('AWS::Events::EventBusPolicy', 0);
    // And the dead letters are alarmed, as for onStatus.
    expect(
      Object.keys(t.findResources('AWS::CloudWatch::Alarm')).some((id) =>
        id.includes('SubscriptionHelpdeskDeadLetters'),
      ),
    ).toBe(true);
  });

  it('receiver: its bus lets exactly the sender account’s rules on the presence bus PutEvents to it', () => {
    const { helpdesk } = documented();
    const t = Template.fromStack(helpdesk);
    const bus = Object.keys(t.findResources('AWS::Events::EventBus'))[0] as string;
    t.hasResourceProperties('AWS::Events::EventBus', { Name: 'zapi-presence-from-crm' });
    expect(Object.values(t.findResources('AWS::Events::EventBusPolicy'))).toEqual([
      {
        Type: 'AWS::Events::EventBusPolicy',
        Properties: {
          EventBusName: { Ref: bus },
          StatementId: `cdk-zapi-presence-from-${CRM.account}`,
          Statement: {
            Sid: `cdk-zapi-presence-from-${CRM.account}`,
            Effect: 'Allow',
            Principal: {
              AWS: { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, `:iam::${CRM.account}:root`]] },
            },
            Action: 'events:PutEvents',
            Resource: { 'Fn::GetAtt': [bus, 'Arn'] },
            Condition: {
              ArnLike: { 'aws:SourceArn': `arn:aws:events:sa-east-1:${CRM.account}:rule/zapi-presence/*` },
            },
          },
        },
      },
    ]);
    // Its own rule, on its own bus, to its own queue.
    t.hasResourceProperties('AWS::Events::Rule', {
      EventBusName: { Ref: bus },
      EventPattern: presenceEventPattern(['RECORDING']),
      Targets: [
        Match.objectLike({
          Arn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^Recording[0-9A-F]{8}$'), 'Arn'] },
        }),
      ],
    });
  });

  it('synthesizes both accounts clean under cdk-nag', () => {
    const { app: a } = documented();
    addNagPacks(a);
    const assembly = a.synth();
    const report = JSON.parse(
      readFileSync(join(assembly.directory, 'validation-report.json'), 'utf8'),
    ) as ValidationReport;
    for (const plugin of report.pluginReports) expect(plugin.violations, plugin.pluginName).toEqual([]);
  }, 60_000);

  it('refuses a source bus that is not a full ARN, or in its own account, and a forward to a bare name', () => {
    const stack = new Stack(app(), 'S', { env: HELPDESK });
    expect(() => new PresenceSubscriberBus(stack, 'A', { sourceEventBusArn: 'zapi-presence' })).toThrow(
      /^PresenceSubscriberBus A: sourceEventBusArn must be the presence bus's full ARN, e\.g\. arn:aws:events:/,
    );
    expect(
      () =>
        new PresenceSubscriberBus(stack, 'B', {
          sourceEventBusArn: `arn:aws:events:sa-east-1:${HELPDESK.account}:event-bus/zapi-presence`,
        }),
    ).toThrow(/^PresenceSubscriberBus B: the presence bus is in this stack's account \(210987654321\)/);
    const crm = new Stack(app(), 'C', { env: CRM });
    const presence = new ZapiPresence(crm, 'Presence');
    expect(() => presence.forwardTo('Helpdesk', 'zapi-presence-from-crm', [])).toThrow(
      /forwardTo\("Helpdesk"\): "zapi-presence-from-crm" is not an event bus ARN; name the other account's bus by its full ARN/,
    );
  });
});

describe('the cross-account checker (test/support/eventbridge-rules.ts)', () => {
  /**
   * The subscriber's rule as docs/library.md showed it before: on the sender's bus, to its own queue.
   * CDK's Rule names even an imported bus's ARN by its bare name; `fullArn` overrides it with the ARN.
   */
  function subscriberRuleOnSenderBus(fullArn: boolean) {
    const a = app();
    const crm = new Stack(a, 'Crm', { env: CRM });
    new ZapiPresence(crm, 'Presence', {
      eventBusName: 'zapi-presence',
      subscriberAccountIds: [HELPDESK.account],
      deployNonce: 'test',
    });
    const helpdesk = new Stack(a, 'Helpdesk', { env: HELPDESK });
    const bus = EventBus.fromEventBusArn(helpdesk, 'Presence', SOURCE_BUS);
    const queue = new Queue(helpdesk, 'Recording', { enforceSSL: true });
    const pattern = presenceEventPattern(['RECORDING']);
    const rule = new Rule(helpdesk, 'RecordingRule', {
      eventBus: bus,
      eventPattern: { source: pattern.source, detailType: pattern['detail-type'] as string[] },
      targets: [new SqsQueue(queue)],
    });
    if (fullArn) (rule.node.defaultChild as CfnRule).addPropertyOverride('EventBusName', SOURCE_BUS);
    return crossAccountProblems([templateOf(crm, CRM), templateOf(helpdesk, HELPDESK)]);
  }

  it('catches a bus of another account named by its bare name (what CDK writes for an imported bus)', () => {
    expect(subscriberRuleOnSenderBus(false)).toEqual([
      expect.stringMatching(
        /RecordingRule.*: names the bus "zapi-presence" without its ARN, which in account 210987654321 means its own bus of that name/,
      ),
    ]);
  });

  it('catches a rule created on another account’s bus with a target that is not an event bus', () => {
    expect(subscriberRuleOnSenderBus(true)).toEqual([
      expect.stringMatching(
        /RecordingRule\w* target .*: the rule is on account 123456789012's bus, created by account 210987654321; EventBridge lets such a rule target only an event bus/,
      ),
    ]);
  });

  it('catches a receiving bus without a policy for the sender', () => {
    const { crm, helpdesk } = documented({ withPolicy: false });
    expect(crossAccountProblems([templateOf(crm, CRM), templateOf(helpdesk, HELPDESK)])).toEqual([
      expect.stringMatching(/does not let account 123456789012's rules on "zapi-presence" PutEvents to it$/),
    ]);
  });

  it('catches a bus-to-bus forward without a role, and a role that may not put to that bus', () => {
    const { crm, helpdesk } = documented();
    const sender = templateOf(crm, CRM);
    const rule = Object.values(sender.template.Resources).find(
      (r) => r.Type === 'AWS::Events::Rule' && r.Properties?.Targets?.[0]?.Arn === HELPDESK_BUS,
    );
    const target = rule?.Properties.Targets[0];
    const role = target.RoleArn;
    delete target.RoleArn;
    expect(crossAccountProblems([sender, templateOf(helpdesk, HELPDESK)])).toEqual([
      expect.stringMatching(/a bus in another account needs a role \(RoleArn\) of the rule's account$/),
    ]);
    target.RoleArn = role;
    for (const r of Object.values(sender.template.Resources))
      if (r.Type === 'AWS::IAM::Policy')
        for (const s of r.Properties.PolicyDocument.Statement)
          if (s.Resource === HELPDESK_BUS) s.Resource = `${HELPDESK_BUS}-other`;
    expect(crossAccountProblems([sender, templateOf(helpdesk, HELPDESK)])).toEqual([
      expect.stringMatching(
        /may not PutEvents to arn:aws:events:sa-east-1:210987654321:event-bus\/zapi-presence-from-crm$/,
      ),
    ]);
  });

  it('catches a sender rule that delivers straight to a queue of another account', () => {
    const { crm, helpdesk } = documented();
    const sender = templateOf(crm, CRM);
    const rule = Object.values(sender.template.Resources).find(
      (r) => r.Type === 'AWS::Events::Rule' && r.Properties?.Targets?.[0]?.Arn === HELPDESK_BUS,
    );
    rule?.Properties.Targets.push({
      Id: 'Queue',
      Arn: `arn:aws:sqs:sa-east-1:${HELPDESK.account}:recording`,
    });
    expect(crossAccountProblems([sender, templateOf(helpdesk, HELPDESK)])).toEqual([
      expect.stringMatching(
        /target Queue \(sqs .*\): is in account 210987654321, not in the rule's account 123456789012/,
      ),
    ]);
  });
});
