/**
 * Every alarm any variant of the stack creates, found in the synthesized templates: the app with its
 * defaults and with each switch that adds or removes alarms, and the construct in a user's stack with
 * subscriptions (`onStatus`, `onDerived`). Each alarm is named by its construct id (the middle part of
 * CloudFormation's alarm name, `ZapiPresence-MonitoringDisconnectedB81A2C3D-...`), whatever construct
 * created it, so alarms added later (a live feed's, say) are found without being listed here.
 */
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { Alarm, CfnAlarm } from 'aws-cdk-lib/aws-cloudwatch';
import { SqsQueue } from 'aws-cdk-lib/aws-events-targets';
import { Queue } from 'aws-cdk-lib/aws-sqs';
import type { IConstruct } from 'constructs';
import { CONTEXT_KEYS } from '../../lib/config.ts';
import { ZapiPresence } from '../../lib/zapi-presence.ts';
import { buildApp } from './synth.ts';

export interface FoundAlarm {
  /** The construct id: `Disconnected`, `SubscriptionTypingDeadLetters`. */
  readonly name: string;
  readonly path: string;
  readonly logicalId: string;
  // biome-ignore lint/suspicious/noExplicitAny: CloudFormation properties are plain JSON
  readonly properties: any;
}

export interface AlarmVariant {
  readonly variant: string;
  readonly template: Template;
  readonly alarms: readonly FoundAlarm[];
}

/**
 * An alarm's description as text: CloudFormation fills the names of the log groups and queues in
 * (`Fn::Join` of `Ref`s and `Fn::GetAtt`s); each is written `<Ref X>`, `<GetAtt X.QueueName>`, or, with
 * `name`, as that function of the reference (a 128-character name, to measure the longest e-mail).
 */
export function descriptionText(
  // biome-ignore lint/suspicious/noExplicitAny: CloudFormation JSON
  description: any,
  name: (reference: string) => string = (reference) => `<${reference}>`,
): string {
  if (typeof description === 'string') return description;
  if (description?.['Fn::Join'] !== undefined) {
    const [separator, parts] = description['Fn::Join'] as [string, unknown[]];
    return parts.map((part) => descriptionText(part, name)).join(separator);
  }
  if (description?.Ref !== undefined) return name(`Ref ${description.Ref}`);
  if (description?.['Fn::GetAtt'] !== undefined)
    return name(`GetAtt ${(description['Fn::GetAtt'] as string[]).join('.')}`);
  throw new Error(`description: cannot read ${JSON.stringify(description)}`);
}

/**
 * The app's variants: the defaults; each switch of the app's settings (lib/config.ts, a `true`/`false`
 * default) turned the other way, alone; `driftPolicy=alert`; and every switch that is off by default
 * turned on at once, with an alarm e-mail. Read from the settings, so a switch added later (and the alarms
 * it brings) is in the list without being named here.
 */
export const APP_VARIANTS: ReadonlyArray<{
  readonly variant: string;
  readonly context: Record<string, string>;
}> = (() => {
  const switches = Object.entries(CONTEXT_KEYS as Record<string, { default?: unknown }>).filter(
    ([, key]) => typeof key.default === 'boolean',
  );
  const optIns = switches.filter(([, key]) => key.default === false).map(([name]) => name);
  return [
    { variant: 'defaults', context: {} },
    ...switches.map(([name, key]) => ({
      variant: `${name}=${String(!key.default)}`,
      context: { [name]: String(!key.default) },
    })),
    { variant: 'driftPolicy=alert', context: { driftPolicy: 'alert' } },
    {
      variant: 'every opt-in',
      context: {
        ...Object.fromEntries(optIns.map((name) => [name, 'true'])),
        alarmEmail: 'oncall@example.com.br',
      },
    },
  ];
})();

/** Every alarm of a stack's template, by the construct that made it. */
export function alarmsOfStack(stack: Stack): FoundAlarm[] {
  const resources = Template.fromStack(stack).toJSON().Resources as Record<
    string,
    { Type: string; Properties: unknown }
  >;
  const found: FoundAlarm[] = [];
  for (const construct of stack.node.findAll() as IConstruct[]) {
    if (!(construct instanceof CfnAlarm)) continue;
    const owner = construct.node.scope instanceof Alarm ? construct.node.scope : construct;
    const logicalId = stack.getLogicalId(construct);
    found.push({
      name: owner.node.id,
      path: owner.node.path,
      logicalId,
      properties: resources[logicalId]?.Properties,
    });
  }
  const inTemplate = Object.entries(resources).filter(([, r]) => r.Type === 'AWS::CloudWatch::Alarm');
  if (inTemplate.length !== found.length)
    throw new Error(`alarm variants: the template has ${inTemplate.length} alarms, the tree ${found.length}`);
  return found;
}

/** The construct in a user's stack, with the presence store, a subscription and a derived one. */
export function libraryVariant(): AlarmVariant {
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  const stack = new Stack(app, 'User', { env: { account: '123456789012', region: 'sa-east-1' } });
  const presence = new ZapiPresence(stack, 'Presence', { presenceStore: true, deployNonce: 'fixed' });
  presence.onStatus('Typing', ['COMPOSING', 'RECORDING'], {
    targets: [new SqsQueue(new Queue(stack, 'Helpdesk', { enforceSSL: true }))],
  });
  presence.onDerived('Stopped', ['Z-API Chat Activity Stopped'], {
    targets: [new SqsQueue(new Queue(stack, 'Dashboards', { enforceSSL: true }))],
  });
  return {
    variant: 'library with subscriptions',
    template: Template.fromStack(stack),
    alarms: alarmsOfStack(stack),
  };
}

/** Every variant: the app's and the library's. */
export function alarmVariants(): AlarmVariant[] {
  return [
    ...APP_VARIANTS.map(({ variant, context }) => {
      const { stack } = buildApp(context, { nag: false });
      return { variant, template: Template.fromStack(stack), alarms: alarmsOfStack(stack) };
    }),
    libraryVariant(),
  ];
}
