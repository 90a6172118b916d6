/**
 * Every alarm any variant creates (found in the synthesized templates, whatever construct made it: see
 * test/support/alarm-variants.ts) is documented in docs/operations.md, and its e-mail is actionable: the
 * description names the log group or queue to look at, gives the first command or Logs Insights query,
 * lists the affected instances for the fleet's alarms on instances, and fits CloudWatch's 1,024
 * characters with the longest names CloudFormation could fill in.
 */
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { type AlarmVariant, alarmVariants, descriptionText } from './support/alarm-variants.ts';

const OPERATIONS = readFileSync(new URL('../docs/operations.md', import.meta.url), 'utf8');

/** The alarm names (or patterns such as `Subscription<Id>DeadLetters`) in the first cell of a table row. */
const ALARMS_SECTION = OPERATIONS.slice(
  OPERATIONS.indexOf('\n## Alarms\n'),
  OPERATIONS.indexOf('\n## Dashboard\n'),
);
const documented = ALARMS_SECTION.split('\n')
  .filter((line) => line.startsWith('| `'))
  .flatMap((line) => [...(line.split('|')[1] ?? '').matchAll(/`([^`]+)`/g)].map((m) => m[1] as string));
const rowFor = (name: string) =>
  documented.some((entry) => new RegExp(`^${entry.replace(/<[A-Za-z]+>/g, '[A-Za-z0-9]+')}$`).test(name));

let variants: AlarmVariant[];
beforeAll(() => {
  variants = alarmVariants();
}, 120_000);

const every = () => variants.flatMap((v) => v.alarms.map((alarm) => ({ variant: v, alarm })));

describe('docs/operations.md', () => {
  it('has a row for every alarm any variant creates', () => {
    const names = [...new Set(every().map(({ alarm }) => alarm.name))].sort();
    expect(names.length).toBeGreaterThan(25);
    expect(names.filter((name) => !rowFor(name))).toEqual([]);
  });

  it('has no row for an alarm that no variant creates', () => {
    const names = new Set(every().map(({ alarm }) => alarm.name));
    const stale = documented.filter(
      (entry) =>
        /^[A-Z][A-Za-z0-9<>]+$/.test(entry) &&
        ![...names].some((name) =>
          new RegExp(`^${entry.replace(/<[A-Za-z]+>/g, '[A-Za-z0-9]+')}$`).test(name),
        ),
    );
    expect(stale).toEqual([]);
  });
});

describe('alarm e-mails', () => {
  it('the store names its own queue’s alarm as the store’s, never as one of the user’s subscriptions', () => {
    const store = variants.find((v) => v.variant === 'presenceStore=true') as AlarmVariant;
    const names = store.alarms.map((a) => a.name);
    expect(names).toContain('PresenceStateDeliveryDeadLetters');
    expect(names.filter((name) => name.startsWith('Subscription'))).toEqual([]);
    const library = variants.find((v) => v.variant === 'library with subscriptions') as AlarmVariant;
    expect(library.alarms.map((a) => a.name)).toEqual(
      expect.arrayContaining([
        'PresenceStateDeliveryDeadLetters',
        'SubscriptionTypingDeadLetters',
        'SubscriptionStoppedDeadLetters',
      ]),
    );
  });

  it('every description names the log group or queue to look at (its name, or the stack output that gives it), and the first command or query', () => {
    // The app's outputs whose value is a log group or a queue (ReceiverLogGroup, ...).
    const places = new Set<string>();
    for (const v of variants) {
      const json = v.template.toJSON() as {
        Resources: Record<string, { Type: string }>;
        Outputs?: Record<string, { Value: unknown }>;
      };
      for (const [name, output] of Object.entries(json.Outputs ?? {})) {
        const ids = JSON.stringify(output.Value).match(/"(?:Ref|Fn::GetAtt)":\[?"([A-Za-z0-9]+)"/g) ?? [];
        for (const id of ids) {
          const type = json.Resources[id.replace(/^.*"([A-Za-z0-9]+)"$/, '$1')]?.Type;
          if (type === 'AWS::Logs::LogGroup' || type === 'AWS::SQS::Queue') places.add(name);
        }
      }
    }
    expect(places).toContain('ReceiverLogGroup');
    const problems: string[] = [];
    for (const { variant, alarm } of every()) {
      const resources = variant.template.toJSON().Resources as Record<string, { Type: string }>;
      const referenced = new Set<string>();
      descriptionText(alarm.properties.AlarmDescription, (reference) => {
        const logicalId = reference.replace(/^(Ref|GetAtt) /, '').split('.')[0] as string;
        referenced.add(resources[logicalId]?.Type ?? 'unknown');
        return reference;
      });
      const text = descriptionText(alarm.properties.AlarmDescription);
      const where =
        referenced.has('AWS::Logs::LogGroup') ||
        referenced.has('AWS::SQS::Queue') ||
        [...places].some((output) => text.includes(output));
      const command = /\baws [a-z0-9-]+ [a-z-]+|Logs Insights on |\bfilter /.test(text);
      if (!where) problems.push(`${variant.variant} ${alarm.name}: names no log group or queue`);
      if (!command) problems.push(`${variant.variant} ${alarm.name}: gives no command or query`);
    }
    expect(problems).toEqual([]);
  });

  it('the fleet’s alarms on instances say how to list the instances', () => {
    const perInstance = every().filter(({ alarm }) =>
      JSON.stringify(alarm.properties.Dimensions ?? alarm.properties.Metrics ?? []).includes('"Trigger"'),
    );
    expect(new Set(perInstance.map(({ alarm }) => alarm.name))).toEqual(
      new Set([
        'Unregistered',
        'NotChecked',
        'CheckFailures',
        'DeployRegistrationFailures',
        'Disconnected',
        'ExpiringSoon',
        'PaymentIssues',
        'DriftReported',
      ]),
    );
    for (const { alarm } of perInstance) {
      const text = descriptionText(alarm.properties.AlarmDescription);
      // One row per instance, however many runs the query's time range holds.
      expect(text, alarm.name).toMatch(
        /Logs Insights on <Ref [A-Za-z0-9]+>: filter message\.[^|]+\| stats max\(@timestamp\) as last, (latest\(message\.\w+\) as \w+(, )?)+ by message\.instanceId \| sort last desc \| limit 1000/,
      );
    }
  });

  it('fits CloudWatch’s 1,024 characters with 128-character names filled in', () => {
    for (const { variant, alarm } of every()) {
      const text = descriptionText(alarm.properties.AlarmDescription, () => 'x'.repeat(128));
      expect(text.length, `${variant.variant} ${alarm.name}`).toBeLessThanOrEqual(1024);
    }
  });
});
