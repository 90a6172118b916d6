import { App, Duration, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  FLEET_ENV,
  REGISTRATION_PROPERTIES,
  REGISTRATION_RESOURCE_TYPE,
} from '../../functions/fleet/settings.ts';
import { PresenceWebhook, type PresenceWebhookProps } from '../../lib/presence-webhook.ts';
import { WebhookFleet, type WebhookFleetProps } from '../../lib/webhook-fleet.ts';
import { synth } from '../support/synth.ts';

/** A test name for props: `key=value`, durations in words. */
const label = (props: object) =>
  Object.entries(props)
    .map(
      ([key, value]) => `${key}=${value instanceof Duration ? value.toHumanString() : JSON.stringify(value)}`,
    )
    .join(', ');

type Resource = { Type: string; Properties: Record<string, unknown>; DependsOn?: string[] };
type Statement = { Action: string | string[]; Effect: string; Resource: unknown; Condition?: unknown };

const E = FLEET_ENV;

/** The one resource of a type whose logical id is `prefix` plus CDK's 8-hex suffix. */
function one(template: Template, type: string, prefix: string): [string, Resource] {
  const found = Object.entries(template.findResources(type)).filter(([id]) =>
    new RegExp(`^${prefix}[0-9A-F]{8}$`).test(id),
  ) as Array<[string, Resource]>;
  expect(found.map(([id]) => id)).toEqual([expect.stringMatching(new RegExp(`^${prefix}`))]);
  return found[0] as [string, Resource];
}

const idOf = (template: Template, type: string, prefix: string) => one(template, type, prefix)[0];
const propertiesOf = (template: Template, type: string, prefix: string) =>
  one(template, type, prefix)[1].Properties;

function environmentOf(template: Template, prefix: string): Record<string, unknown> {
  return (
    propertiesOf(template, 'AWS::Lambda::Function', prefix).Environment as {
      Variables: Record<string, unknown>;
    }
  ).Variables;
}

/** Every statement of every policy attached to the function's role. */
function statementsOf(template: Template, rolePrefix: string): Statement[] {
  const role = idOf(template, 'AWS::IAM::Role', `${rolePrefix}Role`);
  return Object.values(template.findResources('AWS::IAM::Policy'))
    .map((policy) => policy.Properties as { Roles: unknown[]; PolicyDocument: { Statement: Statement[] } })
    .filter((policy) => policy.Roles.some((r) => JSON.stringify(r) === JSON.stringify({ Ref: role })))
    .flatMap((policy) => policy.PolicyDocument.Statement);
}

const parameterArn = (resourceName: string) => ({
  'Fn::Join': [
    '',
    ['arn:', { Ref: 'AWS::Partition' }, `:ssm:sa-east-1:123456789012:parameter/${resourceName}`],
  ],
});

const getAtt = (logicalId: string, attribute = 'Arn') => ({ 'Fn::GetAtt': [logicalId, attribute] });

/** A stack holding only the receiver and the fleet construct, for the construct's own props. */
function fleetStack(props: Partial<WebhookFleetProps> = {}, webhookProps: PresenceWebhookProps = {}) {
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  const stack = new Stack(app, 'FleetTest', { env: { account: '123456789012', region: 'sa-east-1' } });
  const webhook = new PresenceWebhook(stack, 'Presence', webhookProps);
  const fleet = new WebhookFleet(stack, 'Fleet', { webhook, ...props });
  return { stack, webhook, fleet, template: () => Template.fromStack(stack) };
}

describe('WebhookFleet in the stack', () => {
  let defaults: Template;
  let configured: Template;

  beforeAll(() => {
    defaults = synth({}).template;
    configured = synth({
      instanceId: 'INST1,INST2',
      clientTokenParameter: '/zapi/client-token',
      sweepIntervalMinutes: '15',
      currentPaymentStatuses: 'PAID,TRIAL',
      reconcileConcurrency: '8',
      zapiAttemptTimeoutMs: '3000',
      zapiMaxAttempts: '3',
      zapiRequestsPerSecond: '35',
      zapiBaseUrl: 'https://zapi.example.com/',
      reconcilerTimeoutSeconds: '600',
      registrationTimeoutSeconds: '120',
      secretCacheSeconds: '120',
      driftPolicy: 'alert',
      metricsNamespace: 'Team/Presence',
      logRetentionDays: '90',
      encryptLogs: 'true',
    }).template;
  });

  describe('functions', () => {
    it('gives the reconciler and the registrar the same settings, names and numbers only', () => {
      const expected = {
        [E.webhookBaseUrl]: getAtt(idOf(configured, 'AWS::ApiGatewayV2::Api', 'PresenceApi'), 'ApiEndpoint'),
        [E.tokenParameterTemplate]: '/zapi/{instanceId}/token',
        [E.masterSecretParameter]: '/zapi/webhook-secret',
        [E.clientTokenParameter]: '/zapi/client-token',
        [E.zapiBaseUrl]: 'https://zapi.example.com',
        [E.zapiAttemptTimeoutMs]: '3000',
        [E.zapiMaxAttempts]: '3',
        [E.zapiRequestsPerSecond]: '35',
        [E.driftPolicy]: 'alert',
        [E.concurrency]: '8',
        [E.currentPaymentStatuses]: 'PAID,TRIAL',
        [E.metricsNamespace]: 'Team/Presence',
        [E.receiverCacheSeconds]: '120',
        [E.dueWarningDays]: '7',
      };
      expect(environmentOf(configured, 'FleetReconciler')).toEqual(expected);
      expect(environmentOf(configured, 'FleetRegistrar')).toEqual(expected);
      // Required instances travel in the custom resource only.
      expect(JSON.stringify(expected)).not.toContain('INST1');
    });

    it('passes every default the app configures', () => {
      expect(environmentOf(defaults, 'FleetReconciler')).toEqual({
        [E.webhookBaseUrl]: getAtt(idOf(defaults, 'AWS::ApiGatewayV2::Api', 'PresenceApi'), 'ApiEndpoint'),
        [E.tokenParameterTemplate]: '/zapi/{instanceId}/token',
        [E.masterSecretParameter]: '/zapi/webhook-secret',
        [E.zapiBaseUrl]: 'https://api.z-api.io',
        [E.zapiAttemptTimeoutMs]: '5000',
        [E.zapiMaxAttempts]: '4',
        [E.zapiRequestsPerSecond]: '20',
        [E.driftPolicy]: 'repair',
        [E.concurrency]: '16',
        [E.metricsNamespace]: 'ZapiPresence',
        [E.receiverCacheSeconds]: '300',
        [E.dueWarningDays]: '7',
      });
    });

    it('runs both on the shared Lambda defaults with their own timeouts and log groups', () => {
      for (const [prefix, timeout] of [
        ['FleetReconciler', 600],
        ['FleetRegistrar', 120],
      ] as const) {
        expect(propertiesOf(configured, 'AWS::Lambda::Function', prefix)).toMatchObject({
          Runtime: 'nodejs24.x',
          Architectures: ['arm64'],
          MemorySize: 256,
          Timeout: timeout,
          LoggingConfig: {
            LogFormat: 'JSON',
            LogGroup: { Ref: idOf(configured, 'AWS::Logs::LogGroup', `${prefix}Logs`) },
          },
        });
        expect(propertiesOf(configured, 'AWS::Logs::LogGroup', `${prefix}Logs`)).toEqual({
          RetentionInDays: 90,
          KmsKeyId: getAtt(idOf(configured, 'AWS::KMS::Key', 'LogsKey')),
        });
      }
      // Defaults: the reconciler may wait out a rotation (15 minutes); the registration has 5.
      expect(propertiesOf(defaults, 'AWS::Lambda::Function', 'FleetReconciler').Timeout).toBe(900);
      expect(propertiesOf(defaults, 'AWS::Lambda::Function', 'FleetRegistrar').Timeout).toBe(300);
    });
  });

  describe('least privilege', () => {
    const ssmStatements = (statements: Statement[]) =>
      statements.filter((s) => [s.Action].flat().some((action) => action.startsWith('ssm:')));

    const reads = (...names: string[]) => ({
      Action: ['ssm:GetParameter', 'ssm:GetParameters'],
      Effect: 'Allow',
      Resource: names.map(parameterArn),
    });
    // DescribeParameters takes no resource-level permission (IAM requires "*"); it answers names, no value.
    const listNames = { Action: 'ssm:DescribeParameters', Effect: 'Allow', Resource: '*' };

    it.each(['FleetReconciler', 'FleetRegistrar'])(
      '%s may list parameter names and read exactly the tokens, the master and the Client-Token; nothing else in SSM',
      (prefix) => {
        expect(ssmStatements(statementsOf(configured, prefix))).toEqual([
          reads('zapi/*/token', 'zapi/webhook-secret', 'zapi/client-token'),
          listNames,
        ]);
        expect(ssmStatements(statementsOf(defaults, prefix))).toEqual([
          reads('zapi/*/token', 'zapi/webhook-secret'),
          listNames,
        ]);
      },
    );

    it('makes each fleet function wait for its listing policy (the first deploy lists the fleet at once)', () => {
      for (const prefix of ['FleetReconciler', 'FleetRegistrar']) {
        const [, fn] = one(defaults, 'AWS::Lambda::Function', prefix);
        const policy = idOf(defaults, 'AWS::IAM::Policy', `${prefix}ListTokens`);
        expect((fn as { DependsOn?: string[] }).DependsOn).toContain(policy);
      }
    });

    it('grants GetParametersByPath nowhere, nor any SSM action by wildcard', () => {
      for (const template of [defaults, configured]) {
        const actions = Object.values(template.findResources('AWS::IAM::Policy')).flatMap((policy) =>
          (
            policy.Properties as { PolicyDocument: { Statement: Statement[] } }
          ).PolicyDocument.Statement.flatMap((statement) => [statement.Action].flat()),
        );
        expect(actions.filter((action) => action.startsWith('ssm:')).length).toBeGreaterThan(0);
        for (const action of actions) {
          expect(action.toLowerCase()).not.toBe('ssm:getparametersbypath');
          if (action.toLowerCase().startsWith('ssm:') || action === '*') expect(action).not.toMatch(/\*/);
        }
      }
    });

    it('grants the reconciler only its logs, its dead-letter queue and those reads', () => {
      const statements = statementsOf(configured, 'FleetReconciler');
      const queue = idOf(configured, 'AWS::SQS::Queue', 'FleetReconcilerDeadLetters');
      expect(statements.flatMap((s) => [s.Action].flat()).sort()).toEqual([
        'logs:CreateLogStream',
        'logs:PutLogEvents',
        'sqs:GetQueueAttributes',
        'sqs:GetQueueUrl',
        'sqs:SendMessage',
        'ssm:DescribeParameters',
        'ssm:GetParameter',
        'ssm:GetParameters',
      ]);
      expect(statements.find((s) => [s.Action].flat().includes('sqs:SendMessage'))?.Resource).toEqual(
        getAtt(queue),
      );
      expect(statements.find((s) => [s.Action].flat().includes('logs:PutLogEvents'))?.Resource).toEqual(
        getAtt(idOf(configured, 'AWS::Logs::LogGroup', 'FleetReconcilerLogs')),
      );
      for (const statement of statements) {
        expect(statement.Effect).toBe('Allow');
        // The one "*": DescribeParameters, which IAM cannot scope.
        if (statement.Action !== 'ssm:DescribeParameters') expect(statement.Resource).not.toBe('*');
        expect(statement).not.toHaveProperty('Condition');
      }
    });

    it('grants the registrar only its logs and those reads', () => {
      expect(
        statementsOf(configured, 'FleetRegistrar')
          .flatMap((s) => [s.Action].flat())
          .sort(),
      ).toEqual([
        'logs:CreateLogStream',
        'logs:PutLogEvents',
        'ssm:DescribeParameters',
        'ssm:GetParameter',
        'ssm:GetParameters',
      ]);
    });

    it('follows the token template: its wildcard to read', () => {
      const { template } = fleetStack({ instanceTokenParameterName: '/org/zapi/{instanceId}/token' });
      const t = template();
      for (const prefix of ['FleetReconciler', 'FleetRegistrar']) {
        expect(ssmStatements(statementsOf(t, prefix))).toEqual([
          reads('org/zapi/*/token', 'zapi/webhook-secret'),
          listNames,
        ]);
      }
      const prefixed = fleetStack({ instanceTokenParameterName: '/zapi/i-{instanceId}/token' }).template();
      expect(ssmStatements(statementsOf(prefixed, 'FleetReconciler'))).toEqual([
        reads('zapi/i-*/token', 'zapi/webhook-secret'),
        listNames,
      ]);
    });
  });

  describe('triggers', () => {
    it('sweeps the fleet at the configured interval', () => {
      expect(propertiesOf(defaults, 'AWS::Events::Rule', 'FleetSweep').ScheduleExpression).toBe(
        'rate(1 hour)',
      );
      const sweep = propertiesOf(configured, 'AWS::Events::Rule', 'FleetSweep');
      expect(sweep.ScheduleExpression).toBe('rate(15 minutes)');
      expect(sweep).not.toHaveProperty('EventBusName'); // schedules run on the default bus
      expect(sweep.State).toBe('ENABLED');
    });

    it.each([
      [Duration.minutes(5), 'rate(5 minutes)'],
      [Duration.minutes(90), 'rate(90 minutes)'],
      [Duration.hours(12), 'rate(12 hours)'],
    ])('turns a sweep interval of %s into %s', (interval, expression) => {
      const t = fleetStack({ sweepInterval: interval }).template();
      expect(propertiesOf(t, 'AWS::Events::Rule', 'FleetSweep').ScheduleExpression).toBe(expression);
    });

    it("reconciles on SSM Parameter Store changes of tokens, the master and the Client-Token (account's default bus)", () => {
      expect(propertiesOf(configured, 'AWS::Events::Rule', 'FleetParameterChanges')).toMatchObject({
        EventBusName: 'default',
        State: 'ENABLED',
        EventPattern: {
          source: ['aws.ssm'],
          'detail-type': ['Parameter Store Change'],
          detail: {
            name: ['/zapi/webhook-secret', '/zapi/client-token', { wildcard: '/zapi/*/token' }],
            operation: ['Create', 'Update', 'Delete'],
          },
        },
      });
      expect(propertiesOf(defaults, 'AWS::Events::Rule', 'FleetParameterChanges').EventPattern).toEqual({
        source: ['aws.ssm'],
        'detail-type': ['Parameter Store Change'],
        detail: {
          name: ['/zapi/webhook-secret', { wildcard: '/zapi/*/token' }],
          operation: ['Create', 'Update', 'Delete'],
        },
      });
      const custom = fleetStack({ instanceTokenParameterName: '/org/zapi/{instanceId}/token' }).template();
      expect(
        (
          propertiesOf(custom, 'AWS::Events::Rule', 'FleetParameterChanges').EventPattern as {
            detail: unknown;
          }
        ).detail,
      ).toEqual({
        name: ['/zapi/webhook-secret', { wildcard: '/org/zapi/*/token' }],
        operation: ['Create', 'Update', 'Delete'],
      });
    });

    it.each(['FleetSweep', 'FleetParameterChanges'])(
      '%s targets the reconciler with a dead-letter queue and a retry policy, and may invoke it',
      (rule) => {
        for (const t of [defaults, configured]) {
          const reconciler = idOf(t, 'AWS::Lambda::Function', 'FleetReconciler');
          const queue = idOf(t, 'AWS::SQS::Queue', 'FleetReconcilerDeadLetters');
          const [ruleId, { Properties }] = one(t, 'AWS::Events::Rule', rule);
          expect(Properties.Targets).toEqual([
            {
              Arn: getAtt(reconciler),
              Id: 'Target0',
              DeadLetterConfig: { Arn: getAtt(queue) },
              RetryPolicy: { MaximumRetryAttempts: 4, MaximumEventAgeInSeconds: 3600 },
            },
          ]);
          t.hasResourceProperties('AWS::Lambda::Permission', {
            Action: 'lambda:InvokeFunction',
            FunctionName: getAtt(reconciler),
            Principal: 'events.amazonaws.com',
            SourceArn: getAtt(ruleId),
          });
          // EventBridge may write to the dead-letter queue for this rule only.
          const policy = propertiesOf(t, 'AWS::SQS::QueuePolicy', 'FleetReconcilerDeadLettersPolicy');
          expect((policy.PolicyDocument as { Statement: Statement[] }).Statement).toContainEqual(
            expect.objectContaining({
              Action: 'sqs:SendMessage',
              Effect: 'Allow',
              Principal: { Service: 'events.amazonaws.com' },
              Condition: { ArnEquals: { 'aws:SourceArn': getAtt(ruleId) } },
            }),
          );
        }
      },
    );

    it('has only these two rules (and the canary its two, the alarms their recoveries)', () => {
      const rules = Object.keys(defaults.findResources('AWS::Events::Rule'));
      expect(rules.filter((id) => id.startsWith('Fleet'))).toHaveLength(2);
      expect(rules.filter((id) => id.startsWith('MonitoringAlarmRecoveries'))).toHaveLength(1);
      expect(rules).toHaveLength(5);
      expect(rules.filter((id) => id.startsWith('Canary'))).toHaveLength(2);
    });

    it('sends failed asynchronous invocations of the reconciler to its queue (on-failure destination)', () => {
      const reconciler = idOf(configured, 'AWS::Lambda::Function', 'FleetReconciler');
      const queue = idOf(configured, 'AWS::SQS::Queue', 'FleetReconcilerDeadLetters');
      const configs = Object.entries(configured.findResources('AWS::Lambda::EventInvokeConfig'))
        .filter(([id]) => !id.startsWith('Canary'))
        .map(([, resource]) => resource) as Resource[];
      expect(configs.map((c) => c.Properties)).toEqual([
        {
          FunctionName: { Ref: reconciler },
          Qualifier: '$LATEST',
          MaximumRetryAttempts: 2,
          // A sweep Lambda cannot start expires into the queue (ReconcilerDeadLetters) within an hour.
          MaximumEventAgeInSeconds: 3600,
          DestinationConfig: { OnFailure: { Destination: getAtt(queue) } },
        },
      ]);
      // A longer interval: as long as the interval, at most Lambda's 6 hours.
      for (const [minutes, seconds] of [
        [180, 10_800],
        [720, 21_600],
      ] as const) {
        const t = synth({ sweepIntervalMinutes: String(minutes) }).template;
        expect(
          Object.entries(t.findResources('AWS::Lambda::EventInvokeConfig'))
            .filter(([id]) => id.startsWith('Fleet'))
            .map(([, r]) => (r as Resource).Properties.MaximumEventAgeInSeconds),
        ).toEqual([seconds]);
      }
      expect(propertiesOf(configured, 'AWS::SQS::Queue', 'FleetReconcilerDeadLetters')).toEqual({
        MessageRetentionPeriod: 1_209_600,
        SqsManagedSseEnabled: true,
        // A dead-letter queue: any source queue may use it, and its messages can be redriven.
        RedriveAllowPolicy: { redrivePermission: 'allowAll' },
      });
    });
  });

  describe('deploy-time registration', () => {
    it('registers the whole fleet with one custom resource: required ids, a fresh nonce, a service timeout', () => {
      const resources = Object.entries(configured.findResources(REGISTRATION_RESOURCE_TYPE)) as Array<
        [string, Resource]
      >;
      expect(resources).toHaveLength(1);
      const [, registration] = resources[0] as [string, Resource];
      const P = REGISTRATION_PROPERTIES;
      expect(registration.Properties).toEqual({
        ServiceToken: getAtt(idOf(configured, 'AWS::Lambda::Function', 'FleetProviderframeworkonEvent')),
        ServiceTimeout: '180', // registrationTimeoutSeconds + 1 minute
        [P.requiredInstanceIds]: 'INST1,INST2',
        [P.deployNonce]: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
        [P.fleet]: 'true',
      });
      const nonce = Date.parse(registration.Properties[P.deployNonce] as string);
      expect(Date.now() - nonce).toBeLessThan(5 * 60_000);
      const defaultRegistration = Object.values(
        defaults.findResources(REGISTRATION_RESOURCE_TYPE),
      )[0] as Resource;
      expect(defaultRegistration.Properties).toMatchObject({
        ServiceTimeout: '360',
        [P.requiredInstanceIds]: '',
      });
    });

    it('registers only once the stage and the receiver exist', () => {
      const [, registration] = one(configured, REGISTRATION_RESOURCE_TYPE, 'FleetRegistration');
      expect(registration.DependsOn).toEqual(
        expect.arrayContaining([
          idOf(configured, 'AWS::ApiGatewayV2::Stage', 'PresenceDefaultStage'),
          idOf(configured, 'AWS::Lambda::Function', 'PresenceReceiver'),
        ]),
      );
    });

    it('registers only once the route, its integration and the invoke permission exist', () => {
      const [, registration] = one(configured, REGISTRATION_RESOURCE_TYPE, 'FleetRegistration');
      const route = Object.keys(configured.findResources('AWS::ApiGatewayV2::Route'));
      const integration = Object.keys(configured.findResources('AWS::ApiGatewayV2::Integration'));
      const permission = Object.keys(configured.findResources('AWS::Lambda::Permission')).filter((id) =>
        id.startsWith('PresenceApi'),
      );
      expect(route).toHaveLength(1);
      expect(permission).toHaveLength(1);
      expect(registration.DependsOn).toEqual(
        expect.arrayContaining([...route, ...integration, ...permission]),
      );
    });

    it('runs the registrar through the provider framework', () => {
      const framework = propertiesOf(configured, 'AWS::Lambda::Function', 'FleetProviderframeworkonEvent');
      expect(framework.Environment).toEqual({
        Variables: {
          USER_ON_EVENT_FUNCTION_ARN: getAtt(idOf(configured, 'AWS::Lambda::Function', 'FleetRegistrar')),
        },
      });
      expect(propertiesOf(configured, 'AWS::Logs::LogGroup', 'FleetProviderLogs')).toEqual({
        RetentionInDays: 90,
        KmsKeyId: getAtt(idOf(configured, 'AWS::KMS::Key', 'LogsKey')),
      });
    });

    it('takes a fixed nonce and de-duplicates the required ids', () => {
      const t = fleetStack({ deployNonce: 'release-42', requiredInstanceIds: ['B', 'A', 'B'] }).template();
      expect(one(t, REGISTRATION_RESOURCE_TYPE, 'FleetRegistration')[1].Properties).toMatchObject({
        [REGISTRATION_PROPERTIES.requiredInstanceIds]: 'B,A',
        [REGISTRATION_PROPERTIES.deployNonce]: 'release-42',
      });
    });
  });

  describe('without optional props', () => {
    it('sets only what the functions cannot default', () => {
      const t = fleetStack().template();
      expect(environmentOf(t, 'FleetReconciler')).toEqual({
        [E.webhookBaseUrl]: getAtt(idOf(t, 'AWS::ApiGatewayV2::Api', 'PresenceApi'), 'ApiEndpoint'),
        [E.tokenParameterTemplate]: '/zapi/{instanceId}/token',
        [E.masterSecretParameter]: '/zapi/webhook-secret',
        [E.driftPolicy]: 'repair',
        [E.metricsNamespace]: 'ZapiPresence',
        [E.receiverCacheSeconds]: '300',
      });
      expect(propertiesOf(t, 'AWS::Lambda::Function', 'FleetReconciler').Timeout).toBe(900);
      expect(propertiesOf(t, 'AWS::Events::Rule', 'FleetSweep').ScheduleExpression).toBe('rate(1 hour)');
      expect(one(t, REGISTRATION_RESOURCE_TYPE, 'FleetRegistration')[1].Properties).toMatchObject({
        ServiceTimeout: '360',
        [REGISTRATION_PROPERTIES.requiredInstanceIds]: '',
      });
    });

    it('exposes what monitoring needs', () => {
      const { fleet } = fleetStack({ sweepInterval: Duration.minutes(30), driftPolicy: 'alert' });
      expect(fleet.sweepInterval.toMinutes()).toBe(30);
      expect(fleet.driftPolicy).toBe('alert');
      expect(fleet.tokenParameterTemplate).toBe('/zapi/{instanceId}/token');
      expect(fleet.metricsNamespace).toBe('ZapiPresence');
    });
  });
});

describe('WebhookFleet props', () => {
  it.each(
    [
      [
        { instanceTokenParameterName: '/zapi/token' },
        /instanceTokenParameterName: "\/zapi\/token" must start with a path \(\/name\/\) and contain \{instanceId\} exactly once/,
      ],
      [
        { instanceTokenParameterName: 'zapi/{instanceId}/token' },
        /instanceTokenParameterName: "zapi\/\{instanceId\}\/token"/,
      ],
      [
        { instanceTokenParameterName: '/{instanceId}/token' },
        /instanceTokenParameterName: "\/\{instanceId\}\/token"/,
      ],
      [{ instanceTokenParameterName: '/zapi/{instanceId}/{instanceId}' }, /instanceTokenParameterName: /],
      [
        { requiredInstanceIds: ['OK', 'bad id!'] },
        /requiredInstanceIds: "bad id!" is not a Z-API instance id/,
      ],
      [
        { zapiBaseUrl: 'http://api.z-api.io' },
        /zapiBaseUrl: must be an https:\/\/ URL, got "http:\/\/api.z-api.io"/,
      ],
      [{ zapiBaseUrl: 'https://api.z-api.io?x=1' }, /zapiBaseUrl: must be an https:\/\/ URL/],
      [{ driftPolicy: 'ignore' as never }, /driftPolicy: must be one of repair, alert, got "ignore"/],
      [{ sweepInterval: Duration.minutes(4) }, /sweepInterval: must be whole minutes from 5 to 720, got 4/],
      [
        { sweepInterval: Duration.minutes(721) },
        /sweepInterval: must be whole minutes from 5 to 720, got 721/,
      ],
      [
        { sweepInterval: Duration.seconds(330) },
        /sweepInterval: must be whole minutes from 5 to 720, got 5.5/,
      ],
      [{ concurrency: 0 }, /concurrency: must be a whole number from 1 to 100, got 0/],
      [{ concurrency: 101 }, /concurrency: must be a whole number from 1 to 100, got 101/],
      [{ concurrency: 1.5 }, /concurrency: must be a whole number from 1 to 100, got 1.5/],
      [
        { zapiAttemptTimeoutMs: 99 },
        /zapiAttemptTimeoutMs: must be a whole number from 100 to 60000, got 99/,
      ],
      [{ zapiAttemptTimeoutMs: 60_001 }, /zapiAttemptTimeoutMs: must be a whole number from 100 to 60000/],
      [{ zapiMaxAttempts: 0 }, /zapiMaxAttempts: must be a whole number from 1 to 10, got 0/],
      [{ zapiMaxAttempts: 11 }, /zapiMaxAttempts: must be a whole number from 1 to 10, got 11/],
      [{ zapiRequestsPerSecond: 0 }, /zapiRequestsPerSecond: must be a whole number from 1 to 1000, got 0/],
      [
        { requiredInstanceIds: ['zapi-presence-canary'] },
        /requiredInstanceIds: "zapi-presence-canary" is the canary's instance id, which is never registered at Z-API/,
      ],
      [{ dueWarningDays: -1 }, /dueWarningDays: must be a whole number from 0 to 365, got -1/],
      [{ dueWarningDays: 366 }, /dueWarningDays: must be a whole number from 0 to 365, got 366/],
      [
        { reconcilerTimeout: Duration.seconds(29) },
        /reconcilerTimeout \(seconds\): must be a whole number from 30 to 900, got 29/,
      ],
      [
        { reconcilerTimeout: Duration.minutes(16) },
        /reconcilerTimeout \(seconds\): must be a whole number from 30 to 900, got 960/,
      ],
      [
        { registrationTimeout: Duration.seconds(29) },
        /registrationTimeout \(seconds\): must be a whole number from 30 to 840, got 29/,
      ],
      [
        { registrationTimeout: Duration.minutes(16) },
        /registrationTimeout \(seconds\): must be a whole number from 30 to 840, got 960/,
      ],
    ].map(([props, message]) => [label(props as object), props, message]) as Array<
      [string, Partial<WebhookFleetProps>, RegExp]
    >,
  )('refuses %s', (_label, props, message) => {
    expect(() => fleetStack(props)).toThrow(message);
    expect(() => fleetStack(props)).toThrow(/^WebhookFleet: /);
  });

  it('accepts the bounds', () => {
    const low = fleetStack({
      sweepInterval: Duration.minutes(5),
      concurrency: 100,
      zapiAttemptTimeoutMs: 100,
      zapiMaxAttempts: 10,
      dueWarningDays: 0,
      registrationTimeout: Duration.seconds(30),
      reconcilerTimeout: Duration.minutes(15),
    }).template();
    // ...and deploys them as given.
    expect(propertiesOf(low, 'AWS::Events::Rule', 'FleetSweep').ScheduleExpression).toBe('rate(5 minutes)');
    expect(environmentOf(low, 'FleetReconciler')).toMatchObject({
      [E.concurrency]: '100',
      [E.zapiAttemptTimeoutMs]: '100',
      [E.zapiMaxAttempts]: '10',
      [E.dueWarningDays]: '0',
    });
    expect(propertiesOf(low, 'AWS::Lambda::Function', 'FleetReconciler').Timeout).toBe(900);
    expect(propertiesOf(low, 'AWS::Lambda::Function', 'FleetRegistrar').Timeout).toBe(30);
    const high = fleetStack({ sweepInterval: Duration.hours(12), dueWarningDays: 365 }).template();
    expect(propertiesOf(high, 'AWS::Events::Rule', 'FleetSweep').ScheduleExpression).toBe('rate(12 hours)');
    expect(environmentOf(high, 'FleetReconciler')[E.dueWarningDays]).toBe('365');
  });

  it('reports every problem at once', () => {
    expect(() => fleetStack({ concurrency: 0, zapiMaxAttempts: 0, zapiBaseUrl: 'ftp://x' })).toThrow(
      /^WebhookFleet: zapiBaseUrl: .*; concurrency: .*; zapiMaxAttempts: /,
    );
  });

  it('gives the reconciler time to wait out the receivers’ secret cache after a rotation', () => {
    expect(() => fleetStack({ reconcilerTimeout: Duration.minutes(5) })).toThrow(
      /^WebhookFleet: reconcilerTimeout must be at least the receiver's secret cache TTL plus 2 minutes \(420 s\)/,
    );
    const reconcilerTimeout = (fleet: ReturnType<typeof fleetStack>) =>
      propertiesOf(fleet.template(), 'AWS::Lambda::Function', 'FleetReconciler').Timeout;
    expect(reconcilerTimeout(fleetStack({ reconcilerTimeout: Duration.seconds(420) }))).toBe(420);
    expect(
      reconcilerTimeout(
        fleetStack({ reconcilerTimeout: Duration.seconds(121) }, { secretCacheTtl: Duration.seconds(1) }),
      ),
    ).toBe(121);
    expect(() =>
      fleetStack({ reconcilerTimeout: Duration.seconds(719) }, { secretCacheTtl: Duration.minutes(10) }),
    ).toThrow(/\(720 s\)/);
  });

  it('refuses a registration timeout the provider framework cannot outlive (> 840 s)', () => {
    expect(() => fleetStack({ registrationTimeout: Duration.seconds(900) })).toThrow(/registrationTimeout/);
  });
});
