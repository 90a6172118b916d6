/**
 * The canary's infrastructure: the schedule, the function's environment and grants, the arrival rule, the
 * output, the settings, and, with the patterns as synthesized, that no rule on the presence source (nor
 * the archive) ever matches a canary event.
 */
import { App, Duration, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { SqsQueue } from 'aws-cdk-lib/aws-events-targets';
import { Queue } from 'aws-cdk-lib/aws-sqs';
import { describe, expect, it } from 'vitest';
import { CANARY_DEFAULTS, CANARY_ENV } from '../../functions/canary/settings.ts';
import {
  CANARY_EVENT_SOURCE,
  CANARY_INSTANCE_ID,
  DETAIL_TYPES,
  EVENT_SOURCE,
  INSTANCE_ID_PATTERN,
  PRESENCE_STATUSES,
} from '../../functions/shared/contract/presence-contract.ts';
import { ZapiPresence, type ZapiPresenceProps } from '../../lib/index.ts';
import { matchesPattern } from '../support/event-pattern.ts';
import { buildApp } from '../support/synth.ts';

type Resource = { Properties: Record<string, unknown> };
const ENV = { account: '123456789012', region: 'sa-east-1' };

function appTemplate(context: Record<string, unknown> = {}): Template {
  return Template.fromStack(buildApp(context, { nag: false }).stack);
}

function libraryStack(props: ZapiPresenceProps = {}) {
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  const stack = new Stack(app, 'S', { env: ENV });
  const presence = new ZapiPresence(stack, 'Presence', { deployNonce: 'fixed', ...props });
  return { stack, presence, template: () => Template.fromStack(stack) };
}

function resources(template: Template, type: string, prefix = ''): Array<[string, Resource]> {
  return (Object.entries(template.findResources(type)) as Array<[string, Resource]>).filter(([id]) =>
    id.startsWith(prefix),
  );
}

function only(template: Template, type: string, prefix: string): [string, Resource] {
  const found = resources(template, type, prefix);
  expect(
    found.map(([id]) => id),
    `${type} ${prefix}*`,
  ).toHaveLength(1);
  return found[0] as [string, Resource];
}

describe('the canary in the app', () => {
  const template = appTemplate();
  const [canaryId, canary] = only(template, 'AWS::Lambda::Function', 'CanaryFunction');

  it('runs on a schedule every 5 minutes by default, without retries (the next run is the retry)', () => {
    const [, schedule] = only(template, 'AWS::Events::Rule', 'CanarySchedule');
    expect(schedule.Properties).toMatchObject({
      ScheduleExpression: 'rate(5 minutes)',
      State: 'ENABLED',
      Targets: [
        {
          Arn: { 'Fn::GetAtt': [canaryId, 'Arn'] },
          RetryPolicy: { MaximumRetryAttempts: 0, MaximumEventAgeInSeconds: 60 },
        },
      ],
    });
    const [, config] = only(template, 'AWS::Lambda::EventInvokeConfig', 'CanaryFunction');
    expect(config.Properties).toMatchObject({ FunctionName: { Ref: canaryId }, MaximumRetryAttempts: 0 });
    const [, everyMinute] = only(
      appTemplate({ canaryIntervalMinutes: '1' }),
      'AWS::Events::Rule',
      'CanarySchedule',
    );
    expect(everyMinute.Properties.ScheduleExpression).toBe('rate(1 minute)');
  });

  it('reads the API endpoint and the master parameter from its environment: names only, no secret', () => {
    expect(canary.Properties.Environment).toEqual({
      Variables: {
        [CANARY_ENV.webhookBaseUrl]: {
          'Fn::GetAtt': [expect.stringMatching(/^PresenceApi[0-9A-F]{8}$/), 'ApiEndpoint'],
        },
        [CANARY_ENV.secretParameterName]: '/zapi/webhook-secret',
        [CANARY_ENV.metricsNamespace]: 'ZapiPresence',
        [CANARY_ENV.apiId]: { Ref: expect.stringMatching(/^PresenceApi[0-9A-F]{8}$/) },
        [CANARY_ENV.requestTimeoutMs]: String(CANARY_DEFAULTS.requestTimeoutMs),
        [CANARY_ENV.sdkAttemptTimeoutMs]: '2000',
        [CANARY_ENV.sdkMaxAttempts]: '2',
      },
    });
    expect(canary.Properties).toMatchObject({ Runtime: 'nodejs24.x', Architectures: ['arm64'], Timeout: 30 });
  });

  it('may read the master and nothing else (besides its own log group)', () => {
    const role = (canary.Properties.Role as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
    const policies = resources(template, 'AWS::IAM::Policy').filter(([, p]) =>
      (p.Properties.Roles as Array<{ Ref: string }>).some((r) => r.Ref === role),
    );
    const statements = policies.flatMap(
      ([, p]) => (p.Properties.PolicyDocument as { Statement: Array<Record<string, unknown>> }).Statement,
    );
    expect(statements.map((s) => s.Action)).toEqual(
      expect.arrayContaining(['ssm:GetParameter', ['logs:CreateLogStream', 'logs:PutLogEvents']]),
    );
    expect(statements).toHaveLength(2);
    const ssm = statements.find((s) => s.Action === 'ssm:GetParameter');
    expect(JSON.stringify(ssm?.Resource)).toContain(':parameter/zapi/webhook-secret');
    expect(JSON.stringify(ssm?.Resource)).not.toContain('*');
  });

  it('times arrivals with a rule on the canary source only, on the presence bus', () => {
    const [arrivalId] = only(template, 'AWS::Lambda::Function', 'CanaryArrival');
    const [, rule] = only(template, 'AWS::Events::Rule', 'CanaryArrivalRule');
    expect(rule.Properties).toMatchObject({
      EventBusName: { Ref: expect.stringMatching(/^PresenceBus[0-9A-F]{8}$/) },
      // This API's canary only: deployments may share a bus.
      EventPattern: {
        source: [CANARY_EVENT_SOURCE],
        detail: { canary: { apiId: [{ Ref: expect.stringMatching(/^PresenceApi[0-9A-F]{8}$/) }] } },
      },
      Targets: [
        {
          Arn: { 'Fn::GetAtt': [arrivalId, 'Arn'] },
          RetryPolicy: { MaximumRetryAttempts: 3, MaximumEventAgeInSeconds: 11 * 60 },
        },
      ],
    });
  });

  it('outputs the canary function’s name (a Ref), so `aws lambda invoke` proves the path after a deploy', () => {
    const outputs = template.findOutputs('*') as Record<string, { Value: unknown; Description?: string }>;
    const key = Object.keys(outputs).find((k) => k.includes('Canary') && k.includes('Function'));
    expect(key).toBe('CanaryFunctionName');
    expect(outputs.CanaryFunctionName?.Value).toEqual({ Ref: canaryId });
    expect(outputs.CanaryFunctionName?.Description).toContain('aws lambda invoke');
  });

  it('is gone with -c canary=false: no function, rule, alarm or output', () => {
    const off = appTemplate({ canary: 'false' });
    expect(resources(off, 'AWS::Lambda::Function', 'Canary')).toEqual([]);
    expect(resources(off, 'AWS::Events::Rule', 'Canary')).toEqual([]);
    expect(Object.keys(off.findResources('AWS::CloudWatch::Alarm')).some((id) => id.includes('Canary'))).toBe(
      false,
    );
    expect(Object.keys(off.findOutputs('*')).some((k) => k.includes('Canary'))).toBe(false);
  });

  it('uses an instance id no Z-API instance can have, which the receiver accepts', () => {
    expect(INSTANCE_ID_PATTERN.test(CANARY_INSTANCE_ID)).toBe(true);
    // Z-API instance ids are 32 upper-case hexadecimal digits.
    expect(/^[0-9A-F]{32}$/.test(CANARY_INSTANCE_ID)).toBe(false);
    expect(/[a-z]/.test(CANARY_INSTANCE_ID)).toBe(true);
  });
});

describe('the canary in ZapiPresence', () => {
  it('has the same settings: on by default, canaryInterval, canary: false', () => {
    const { presence, template } = libraryStack({ canaryInterval: Duration.minutes(2) });
    expect(presence.canary?.interval.toMinutes()).toBe(2);
    expect(presence.canaryFunction).toBe(presence.canary?.canaryFunction);
    const [, schedule] = only(template(), 'AWS::Events::Rule', 'PresenceCanarySchedule');
    expect(schedule.Properties.ScheduleExpression).toBe('rate(2 minutes)');
    const off = libraryStack({ canary: false });
    expect(off.presence.canary).toBeUndefined();
    expect(off.presence.canaryFunction).toBeUndefined();
  });

  it.each([
    [
      Duration.minutes(0),
      /canaryInterval: must be whole minutes from 1 to 6 .* got 0 minutes; e\.g\. Duration\.minutes\(5\)/,
    ],
    [Duration.minutes(7), /from 1 to 6 .*got 7 minutes/],
    [Duration.seconds(90), /got 1\.5 minutes/],
  ])('refuses canaryInterval %s with the range and an example', (interval, message) => {
    expect(() => libraryStack({ canaryInterval: interval })).toThrow(message);
  });

  it('refuses a threshold for CanaryArrivals, naming what to change', () => {
    expect(() => libraryStack({ alarmThresholds: { CanaryArrivals: 2 } })).toThrow(
      /CanaryArrivals has no threshold \(it fires when no canary callback arrives\); change canaryInterval \(canaryIntervalMinutes in the app\) instead/,
    );
  });

  it('refuses canaryInterval with the canary off', () => {
    expect(() => libraryStack({ canary: false, canaryInterval: Duration.minutes(5) })).toThrow(
      /canaryInterval: a prop of the canary, which is off \(canary: false\)/,
    );
  });
});

describe('no rule on the presence source ever sees a canary event (the patterns as synthesized)', () => {
  const canaryEvent = (status: string) => ({
    version: '0',
    id: 'e',
    'detail-type': DETAIL_TYPES[status as keyof typeof DETAIL_TYPES],
    source: CANARY_EVENT_SOURCE,
    account: ENV.account,
    time: '2026-12-02T12:00:00Z',
    region: ENV.region,
    resources: [],
    detail: {
      type: 'PresenceChatCallback',
      phone: '550000000000',
      status,
      lastSeen: null,
      instanceId: CANARY_INSTANCE_ID,
      canary: { sentAt: 1, runId: 'r', apiId: 'ref:?' },
    },
  });
  /** The canary event of the template `name` (app or library): its API's id in `canary.apiId`. */
  const canaryEventOf = (name: string, status: string) => {
    const event = canaryEvent(status);
    const rule = all.find(([id]) => id.startsWith(`${name} `) && id.includes('CanaryArrivalRule'));
    const apiId = (rule?.[1] as { detail?: { canary?: { apiId?: string[] } } } | undefined)?.detail?.canary
      ?.apiId?.[0];
    return {
      ...event,
      detail: { ...event.detail, canary: { ...event.detail.canary, apiId: String(apiId) } },
    };
  };
  const presenceEvent = (status: string) => ({
    ...canaryEvent(status),
    source: EVENT_SOURCE,
    detail: { ...canaryEvent(status).detail, instanceId: 'ABC' },
  });

  /** Every rule and archive pattern of the app with everything on, and of the library with subscriptions. */
  function patterns(): Array<[string, Record<string, never>]> {
    const app = appTemplate({ presenceStore: 'true', debugEventLog: 'true', schemaRegistry: 'true' });
    const { stack, presence, template } = libraryStack({ presenceStore: true, debugEventLog: true });
    const queue = new Queue(stack, 'Q');
    presence.onStatus('All', [], { targets: [new SqsQueue(queue)] });
    presence.onStatus('Typing', ['COMPOSING', 'RECORDING'], { targets: [new SqsQueue(queue)] });
    presence.onDerived('Derived', [], { targets: [new SqsQueue(queue)] });
    const found: Array<[string, Record<string, never>]> = [];
    for (const [name, t] of [
      ['app', app],
      ['library', template()],
    ] as const) {
      for (const type of ['AWS::Events::Rule', 'AWS::Events::Archive']) {
        for (const [id, resource] of resources(t, type)) {
          const pattern = resource.Properties.EventPattern as Record<string, never> | undefined;
          // A token (the API id in the arrival rule) stands for its value: "ref:<logical id>".
          if (pattern !== undefined)
            found.push([
              `${name} ${id}`,
              JSON.parse(JSON.stringify(pattern), (_key, value) =>
                value !== null &&
                typeof value === 'object' &&
                typeof value.Ref === 'string' &&
                Object.keys(value).length === 1
                  ? `ref:${value.Ref}`
                  : value,
              ) as Record<string, never>,
            ]);
        }
      }
    }
    return found;
  }

  const all = patterns();

  it('finds the subscriptions, the store, the debug log, the archive and the arrival rule', () => {
    const ids = all.map(([id]) => id);
    for (const part of [
      'AllRule',
      'TypingRule',
      'DerivedRule',
      'Archive',
      'CanaryArrivalRule',
      'DebugLogRule',
      'StateRule',
    ])
      expect(
        ids.some((id) => id.includes(part)),
        part,
      ).toBe(true);
  });

  it.each(PRESENCE_STATUSES)('a canary %s event matches its own arrival rule and nothing else', (status) => {
    for (const name of ['app', 'library']) {
      const event = canaryEventOf(name, status);
      expect(event.detail.canary.apiId).toMatch(/^ref:\w*PresenceApi[0-9A-F]{8}$/);
      const matched = all.filter(([, pattern]) => matchesPattern(pattern, event)).map(([id]) => id);
      expect(matched).toEqual(
        all.filter(([id]) => id.startsWith(`${name} `) && id.includes('CanaryArrivalRule')).map(([id]) => id),
      );
      expect(matched).toHaveLength(1);
    }
    // Another deployment's canary on a shared bus: no arrival rule here counts it.
    const foreign = all
      .filter(([, pattern]) => matchesPattern(pattern, canaryEvent(status)))
      .map(([id]) => id);
    expect(foreign).toEqual([]);
  });

  it.each(PRESENCE_STATUSES)(
    'while the same %s from a real instance reaches the subscriptions (the matcher works)',
    (status) => {
      const matched = all
        .filter(([, pattern]) => matchesPattern(pattern, presenceEvent(status)))
        .map(([id]) => id);
      expect(matched.some((id) => id.includes('AllRule'))).toBe(true);
      expect(matched.some((id) => id.includes('StateRule'))).toBe(true);
      expect(matched.some((id) => id.includes('Archive'))).toBe(true);
      expect(matched.some((id) => id.includes('CanaryArrivalRule'))).toBe(false);
    },
  );

  it('holds for a rule a user writes from the documented pattern', () => {
    expect(matchesPattern({ source: [EVENT_SOURCE] } as never, canaryEvent('COMPOSING'))).toBe(false);
    // A prefix rule is the documented exception (docs/events.md).
    expect(matchesPattern({ source: [{ prefix: EVENT_SOURCE }] } as never, canaryEvent('COMPOSING'))).toBe(
      true,
    );
  });
});

describe('the matcher itself', () => {
  it('fails on an operator it does not know, instead of answering', () => {
    expect(() => matchesPattern({ source: [{ suffix: 'x' }] } as never, { source: 'ax' })).toThrow(
      /not supported/,
    );
  });

  it('matches exact values, prefix, anything-but, exists and nested fields', () => {
    const event = { source: 'a.b', detail: { status: 'X', n: 1 } };
    expect(matchesPattern({ source: ['a.b'] } as never, event)).toBe(true);
    expect(matchesPattern({ source: ['a'] } as never, event)).toBe(false);
    expect(matchesPattern({ source: [{ prefix: 'a.' }] } as never, event)).toBe(true);
    expect(matchesPattern({ detail: { status: [{ 'anything-but': ['X'] }] } } as never, event)).toBe(false);
    expect(matchesPattern({ detail: { status: [{ exists: true }] } } as never, event)).toBe(true);
    expect(matchesPattern({ detail: { missing: [{ exists: true }] } } as never, event)).toBe(false);
    expect(matchesPattern({ detail: { status: ['Y', 'X'] } } as never, event)).toBe(true);
  });
});
