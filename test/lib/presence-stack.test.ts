import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { App, Duration, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { REGISTRATION_RESOURCE_TYPE } from '../../functions/fleet/settings.ts';
import { RECEIVER_ENV } from '../../functions/presence-webhook/env.ts';
import { EVENT_SOURCE } from '../../functions/shared/contract/presence-contract.ts';
import { loadConfig, stackName } from '../../lib/config.ts';
import { PresenceStack } from '../../lib/presence-stack.ts';
import { ACCESS_LOG_FIELDS, PresenceWebhook, type PresenceWebhookProps } from '../../lib/presence-webhook.ts';
import { synth } from '../support/synth.ts';

/** A test name for props: `key=value`, durations in words. */
const label = (props: object) =>
  Object.entries(props)
    .map(
      ([key, value]) => `${key}=${value instanceof Duration ? value.toHumanString() : JSON.stringify(value)}`,
    )
    .join(', ');

type Resource = { Type: string; Properties: Record<string, unknown>; DependsOn?: string[] };
type Statement = { Action: string | string[]; Effect: string; Resource: unknown };

const RECEIVER = /^PresenceReceiver[0-9A-F]{8}$/;

function resourcesOf(template: Template, type: string): Array<[string, Resource]> {
  return Object.entries(template.findResources(type)) as Array<[string, Resource]>;
}

function receiverOf(template: Template): Resource {
  const receivers = resourcesOf(template, 'AWS::Lambda::Function').filter(([id]) => RECEIVER.test(id));
  expect(receivers).toHaveLength(1);
  return (receivers[0] as [string, Resource])[1];
}

function receiverEnvironment(template: Template): Record<string, unknown> {
  return (receiverOf(template).Properties.Environment as { Variables: Record<string, unknown> }).Variables;
}

function receiverPolicyStatements(template: Template): Statement[] {
  const policies = resourcesOf(template, 'AWS::IAM::Policy').filter(([id]) =>
    id.startsWith('PresenceReceiverRoleDefaultPolicy'),
  );
  expect(policies).toHaveLength(1);
  return ((policies[0] as [string, Resource])[1].Properties.PolicyDocument as { Statement: Statement[] })
    .Statement;
}

/** Every string in the template except logical ids (Ref, GetAtt, DependsOn), metadata and Lambda code. */
function strings(value: unknown, key = '', out: string[] = []): string[] {
  if (['Ref', 'Fn::GetAtt', 'DependsOn', 'Metadata', 'Code', 'PolicyName', 'Sid'].includes(key)) return out;
  if (typeof value === 'string') out.push(value);
  else if (Array.isArray(value)) for (const item of value) strings(item, key, out);
  else if (typeof value === 'object' && value !== null)
    for (const [k, v] of Object.entries(value)) strings(v, k, out);
  return out;
}

function filesUnder(directory: string): string[] {
  return readdirSync(directory).flatMap((name) => {
    const path = join(directory, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}

const ids = (count: number) =>
  Array.from({ length: count }, (_, i) => `3C01A2B3C4D5E6F7A8B9C0D1E2F3${String(i).padStart(4, '0')}`);

describe('PresenceStack', () => {
  let base: ReturnType<typeof synth>;
  let none: ReturnType<typeof synth>;
  let template: Template;

  beforeAll(() => {
    base = synth({ instanceId: 'TEST,OTHER' });
    none = synth({});
    template = base.template;
  });

  it('routes POST /instances/{instanceId}/presence to the receiver (proxy, payload v2)', () => {
    template.hasResourceProperties('AWS::ApiGatewayV2::Route', {
      RouteKey: 'POST /instances/{instanceId}/presence',
    });
    template.resourceCountIs('AWS::ApiGatewayV2::Route', 1);
    template.hasResourceProperties('AWS::ApiGatewayV2::Integration', {
      IntegrationType: 'AWS_PROXY',
      PayloadFormatVersion: '2.0',
    });
  });

  it('runs the receiver on the newest Node.js runtime, arm64, 256 MB, 10 s, JSON logs, nothing reserved', () => {
    const receiver = receiverOf(template);
    expect(receiver.Properties).toMatchObject({
      Runtime: 'nodejs24.x',
      Architectures: ['arm64'],
      MemorySize: 256,
      Timeout: 10,
      LoggingConfig: { LogFormat: 'JSON', LogGroup: { Ref: expect.stringMatching(/^PresenceReceiverLogs/) } },
    });
    expect(receiver.Properties).not.toHaveProperty('ReservedConcurrentExecutions');
  });

  it('keeps every log group a year, encrypted by CloudWatch Logs (no customer-managed key unless encryptLogs)', () => {
    const groups = resourcesOf(template, 'AWS::Logs::LogGroup');
    // Receiver, access logs, reconciler, registrar, provider framework, canary and its arrival timer.
    expect(groups.map(([id]) => id.replace(/[0-9A-F]{8}$/, '')).sort()).toEqual([
      'CanaryArrivalLogs',
      'CanaryFunctionLogs',
      'FleetProviderLogs',
      'FleetReconcilerLogs',
      'FleetRegistrarLogs',
      'PresenceAccessLogs',
      'PresenceReceiverLogs',
    ]);
    expect(resourcesOf(template, 'AWS::KMS::Key')).toEqual([]);
    for (const [id, group] of groups) expect(group.Properties, id).toEqual({ RetentionInDays: 365 });
    // With encryptLogs: one key, with the shortest deletion wait, on every log group.
    const encrypted = synth({ instanceId: 'TEST', encryptLogs: 'true' }).template;
    const keys = resourcesOf(encrypted, 'AWS::KMS::Key');
    expect(keys.map(([id]) => id)).toEqual([expect.stringMatching(/^LogsKey[0-9A-F]{8}$/)]);
    expect((keys[0] as [string, Resource])[1].Properties).toMatchObject({ PendingWindowInDays: 7 });
    const encryptedGroups = resourcesOf(encrypted, 'AWS::Logs::LogGroup');
    expect(encryptedGroups).toHaveLength(groups.length);
    for (const [id, group] of encryptedGroups) {
      expect(group.Properties, id).toEqual({
        RetentionInDays: 365,
        KmsKeyId: { 'Fn::GetAtt': [(keys[0] as [string, Resource])[0], 'Arn'] },
      });
    }
  });

  it('gives the receiver names and numbers only: no instance list, no secret', () => {
    const environment = receiverEnvironment(template);
    expect(environment).toEqual({
      [RECEIVER_ENV.eventBusName]: { Ref: expect.stringMatching(/^PresenceBus/) },
      [RECEIVER_ENV.secretParameterName]: '/zapi/webhook-secret',
      [RECEIVER_ENV.maxBodyBytes]: '16384',
      [RECEIVER_ENV.secretCacheSeconds]: '300',
      [RECEIVER_ENV.secretGraceSeconds]: '5400',
      [RECEIVER_ENV.sdkAttemptTimeoutMs]: '2000',
      [RECEIVER_ENV.sdkMaxAttempts]: '2',
      [RECEIVER_ENV.metricsNamespace]: 'ZapiPresence',
    });
    // Every setting but detailedMetrics, which is set only when on.
    expect(Object.keys(environment).sort()).toEqual(
      Object.values(RECEIVER_ENV)
        .filter((name) => name !== RECEIVER_ENV.detailedMetrics)
        .sort(),
    );
    expect(receiverEnvironment(synth({ detailedMetrics: 'true' }).template)).toMatchObject({
      [RECEIVER_ENV.detailedMetrics]: 'true',
    });
    const text = JSON.stringify(environment);
    expect(text).not.toContain('TEST');
    expect(text).not.toContain('OTHER');
    expect(text.length).toBeLessThan(1_024);
    // The same with and without instance ids.
    expect(JSON.stringify(receiverEnvironment(none.template))).toBe(text);
  });

  it('takes the receiver settings from context', () => {
    const { template: t } = synth({
      receiverTimeoutSeconds: '20',
      receiverMemoryMb: '512',
      receiverReservedConcurrency: '25',
      maxBodyBytes: '4096',
      secretCacheSeconds: '60',
      secretGraceMinutes: '120',
      sdkAttemptTimeoutMs: '1500',
      sdkMaxAttempts: '3',
      metricsNamespace: 'Team/Presence',
      webhookSecretParameter: '/team/zapi/master',
      registerWebhook: 'false',
      schemaRegistry: 'false',
    });
    const receiver = receiverOf(t);
    expect(receiver.Properties).toMatchObject({
      Timeout: 20,
      MemorySize: 512,
      ReservedConcurrentExecutions: 25,
    });
    expect(receiverEnvironment(t)).toMatchObject({
      [RECEIVER_ENV.secretParameterName]: '/team/zapi/master',
      [RECEIVER_ENV.maxBodyBytes]: '4096',
      [RECEIVER_ENV.secretCacheSeconds]: '60',
      [RECEIVER_ENV.secretGraceSeconds]: '7200',
      [RECEIVER_ENV.sdkAttemptTimeoutMs]: '1500',
      [RECEIVER_ENV.sdkMaxAttempts]: '3',
      [RECEIVER_ENV.metricsNamespace]: 'Team/Presence',
    });
    const off = synth({
      receiverReservedConcurrency: 'off',
      registerWebhook: 'false',
      schemaRegistry: 'false',
    });
    expect(receiverOf(off.template).Properties).not.toHaveProperty('ReservedConcurrentExecutions');
  });

  it('throttles the stage and writes JSON access logs that cannot hold the secret', () => {
    const stages = resourcesOf(template, 'AWS::ApiGatewayV2::Stage');
    expect(stages).toHaveLength(1);
    const stage = (stages[0] as [string, Resource])[1].Properties as {
      StageName: string;
      AutoDeploy: boolean;
      DefaultRouteSettings: unknown;
      AccessLogSettings: { Format: string };
    };
    expect(stage.StageName).toBe('$default');
    expect(stage.AutoDeploy).toBe(true);
    expect(stage.DefaultRouteSettings).toEqual({ ThrottlingRateLimit: 50, ThrottlingBurstLimit: 100 });
    const format = stage.AccessLogSettings.Format;
    expect(JSON.parse(format)).toEqual(ACCESS_LOG_FIELDS);
    expect(format).toContain('$context.routeKey');
    for (const leaky of [
      '$context.path',
      'querystring',
      'rawQueryString',
      '$request',
      '$context.domainPrefix',
    ]) {
      expect(format).not.toContain(leaky);
    }
  });

  it('creates a bus with an archive of every presence event', () => {
    template.resourceCountIs('AWS::Events::EventBus', 1);
    template.hasResourceProperties('AWS::Events::Archive', {
      EventPattern: { source: [EVENT_SOURCE] },
      RetentionDays: 30,
      SourceArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^PresenceBus'), 'Arn'] },
    });
  });

  it('grants the receiver exactly PutEvents on the bus and GetParameter on the master parameter', () => {
    const statements = receiverPolicyStatements(template);
    expect(statements).toEqual([
      {
        Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        Effect: 'Allow',
        Resource: { 'Fn::GetAtt': [expect.stringMatching(/^PresenceReceiverLogs/), 'Arn'] },
      },
      {
        Action: 'events:PutEvents',
        Effect: 'Allow',
        Resource: { 'Fn::GetAtt': [expect.stringMatching(/^PresenceBus/), 'Arn'] },
      },
      {
        Action: 'ssm:GetParameter',
        Effect: 'Allow',
        Resource: {
          'Fn::Join': [
            '',
            ['arn:', { Ref: 'AWS::Partition' }, ':ssm:sa-east-1:123456789012:parameter/zapi/webhook-secret'],
          ],
        },
      },
    ]);
    // Only CDK's provider-framework role (acknowledged) carries a managed policy.
    const managed = Object.keys(
      template.findResources('AWS::IAM::Role', { Properties: { ManagedPolicyArns: Match.anyValue() } }),
    );
    expect(managed).toEqual([expect.stringMatching(/^FleetProviderframeworkonEventServiceRole/)]);
  });

  it('registers the fleet with one custom resource, with and without -c instanceId', () => {
    const required = (t: Template) => {
      const resources = resourcesOf(t, REGISTRATION_RESOURCE_TYPE);
      expect(resources).toHaveLength(1);
      return (resources[0] as [string, Resource])[1].Properties.RequiredInstanceIds;
    };
    expect(required(template)).toBe('TEST,OTHER');
    expect(required(none.template)).toBe('');
    // Nothing else depends on the instance ids.
    // Receiver, reconciler, registrar, provider framework, canary, arrival timer.
    template.resourceCountIs('AWS::Lambda::Function', 6);
    none.template.resourceCountIs('AWS::Lambda::Function', 6);
    expect(Object.keys(template.toJSON().Resources).length).toBe(
      Object.keys(none.template.toJSON().Resources).length,
    );
  });

  it('outputs the base URL, the alarm topic and the reconciler, never the secret', () => {
    const outputs = template.findOutputs('*') as Record<string, { Value: unknown }>;
    expect(Object.keys(outputs).sort()).toEqual([
      'AccessLogGroup',
      'AlarmTopicArn',
      'CanaryFunctionName',
      'CanaryLogGroup',
      'EventBusArn',
      'EventBusName',
      'ReceiverLogGroup',
      'ReconcileFunctionName',
      'ReconcilerLogGroup',
      'RegistrationLogGroup',
      'SchemaRegistryName',
      'WebhookBaseUrl',
    ]);
    expect(outputs.WebhookBaseUrl?.Value).toEqual({
      'Fn::GetAtt': [expect.stringMatching(/^PresenceApi/), 'ApiEndpoint'],
    });
    expect(outputs.AlarmTopicArn?.Value).toEqual({ Ref: expect.stringMatching(/^MonitoringAlarmTopic/) });
    // The reconciler's name is CloudFormation's, made from its logical id: it says "Reconcile".
    const reconciler = (outputs.ReconcileFunctionName?.Value as { Ref?: string } | undefined)?.Ref ?? '';
    expect(reconciler).toMatch(/Reconcile/);
    expect(template.toJSON().Resources[reconciler]).toMatchObject({ Type: 'AWS::Lambda::Function' });
    expect(template.toJSON().Resources[reconciler].Properties).not.toHaveProperty('FunctionName');
  });

  it('keeps every value of the form of a secret out of the template and the cloud assembly', () => {
    const sentinel = 'S3ntinel-0123456789abcdef0123456789ABCDEF_sentinel';
    // Everything a careless change could read a secret from: context keys and the environment.
    const variables = [
      'WEBHOOK_SECRET',
      'ZAPI_TOKEN',
      'ZAPI_INSTANCE_TOKEN',
      'ZAPI_CLIENT_TOKEN',
      'CLIENT_TOKEN',
    ];
    for (const name of variables) process.env[name] = sentinel;
    let result: ReturnType<typeof synth>;
    try {
      result = synth({
        instanceId: 'TEST',
        clientTokenParameter: '/zapi/client-token',
        debugEventLog: 'true',
        alarmEmail: 'oncall@example.com.br',
        driftPolicy: 'alert',
        webhookSecret: sentinel,
        masterSecret: sentinel,
        secret: sentinel,
        token: sentinel,
        instanceToken: sentinel,
        clientToken: sentinel,
      });
    } finally {
      for (const name of variables) delete process.env[name];
    }
    const { template: t, assembly } = result;
    for (const file of filesUnder(assembly.directory)) {
      expect(readFileSync(file, 'utf8'), file).not.toContain(sentinel);
    }
    const json = t.toJSON();
    const text = JSON.stringify(json);
    // The only `secret=` is the output's description of the URL form, never a value.
    expect(text.match(/secret=(?!base64url\(HMAC-SHA256\(master, I\)\))/gi)).toBeNull();
    expect(text.match(/resolve:ssm|NoEcho/g)).toBeNull();
    // Master secrets, derived secrets (base64url HMAC) and Z-API tokens are long runs of letters, digits,
    // - and _: no string of the template holds one. The alarms' names (their construct's path and its hash,
    // then the alarm's id) are the one such run the template writes itself.
    const alarmName = /^ZapiPresence-Monitoring-[0-9A-F]{8}-[A-Za-z0-9]*$/;
    const suspicious = strings(json).flatMap((s) =>
      [...s.matchAll(/[A-Za-z0-9_-]{24,}/g)]
        .map((m) => m[0])
        .filter((run) => /\d/.test(run) && !alarmName.test(run)),
    );
    expect(suspicious).toEqual([]);
    // SSM parameters are referenced by name only: none is created or resolved by CloudFormation.
    t.resourceCountIs('AWS::SSM::Parameter', 0);
    const parameters = Object.entries((json.Parameters ?? {}) as Record<string, { Type: string }>);
    expect(parameters.filter(([, p]) => p.Type.startsWith('AWS::SSM'))).toEqual([
      ['BootstrapVersion', expect.objectContaining({ Default: '/cdk-bootstrap/hnb659fds/version' })],
    ]);
    // The master's name appears where it is read: environments, grants and the change rule, never a value.
    expect(text).toContain('/zapi/webhook-secret');
  });

  it('scales to 1,000 instance ids without growing the receiver or the resource count', () => {
    const many = ids(1_000);
    const { template: t, report } = synth({ instanceId: many.join(',') });
    for (const plugin of report.pluginReports) expect(plugin.violations, plugin.pluginName).toEqual([]);
    const fleet = resourcesOf(t, REGISTRATION_RESOURCE_TYPE);
    expect(fleet).toHaveLength(1);
    expect(((fleet[0] as [string, Resource])[1].Properties.RequiredInstanceIds as string).split(',')).toEqual(
      many,
    );
    const resourceCount = Object.keys(t.toJSON().Resources).length;
    expect(resourceCount).toBeLessThan(500);
    expect(resourceCount).toBe(Object.keys(none.template.toJSON().Resources).length);
    const environment = JSON.stringify(receiverEnvironment(t));
    expect(environment).toBe(JSON.stringify(receiverEnvironment(none.template)));
    expect(environment.length).toBeLessThan(1_024);
  });

  it('removes the fleet with registerWebhook=false', () => {
    const { template: t } = synth({ instanceId: 'TEST', registerWebhook: 'false', canary: 'false' });
    t.resourceCountIs(REGISTRATION_RESOURCE_TYPE, 0);
    // The one rule left is the alarms' recoveries (CloudWatch's events on the default bus).
    expect(Object.keys(t.findResources('AWS::Events::Rule'))).toEqual([
      expect.stringMatching(/^MonitoringAlarmRecoveries[0-9A-F]{8}$/),
    ]);
    t.resourceCountIs('AWS::Lambda::EventInvokeConfig', 0);
    const functions = resourcesOf(t, 'AWS::Lambda::Function').map(([id]) => id);
    expect(functions).toEqual([expect.stringMatching(RECEIVER)]);
    expect(Object.keys(t.toJSON().Resources).filter((id) => id.startsWith('Fleet'))).toEqual([]);
    const outputs = Object.keys(t.findOutputs('*'));
    expect(outputs).not.toContain('ReconcileFunctionName');
    expect(outputs).toEqual(expect.arrayContaining(['WebhookBaseUrl', 'AlarmTopicArn']));
  });

  it('publishes to an existing bus given by ARN, with the archive on it', () => {
    const arn = 'arn:aws:events:sa-east-1:123456789012:event-bus/shared';
    const { template: t } = synth({ eventBusArn: arn, throttleRateLimit: '7', archiveRetentionDays: '0' });
    t.resourceCountIs('AWS::Events::EventBus', 0);
    t.hasResourceProperties('AWS::Events::Archive', { SourceArn: arn, RetentionDays: 0 });
    expect(receiverPolicyStatements(t)).toEqual(
      expect.arrayContaining([expect.objectContaining({ Action: 'events:PutEvents', Resource: arn })]),
    );
    t.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      DefaultRouteSettings: Match.objectLike({ ThrottlingRateLimit: 7 }),
    });
    expect(receiverEnvironment(t)[RECEIVER_ENV.eventBusName]).toBe(arn);
    expect(t.findOutputs('EventBusArn')).toEqual({ EventBusArn: { Value: arn } });
  });

  it('refuses a bus in another region or account, naming the context key', () => {
    expect(() => synth({ eventBusArn: 'arn:aws:events:us-east-1:123456789012:event-bus/x' })).toThrow(
      /^ZapiPresence: eventBusArn: the bus is in region us-east-1 \(the stack deploys to sa-east-1\); use a bus in the same account and region, e\.g\. arn:aws:events:sa-east-1:123456789012:event-bus\/NAME$/,
    );
    expect(() => synth({ eventBusArn: 'arn:aws:events:sa-east-1:999999999999:event-bus/x' })).toThrow(
      /eventBusArn: the bus is in account 999999999999 \(the stack deploys to 123456789012\)/,
    );
    expect(() => synth({ eventBusArn: 'arn:aws:events:us-east-1:999999999999:event-bus/x' })).toThrow(
      /region us-east-1 .* and account 999999999999/,
    );
  });

  it('leaves the bus check to deploy time when the stack has no account or region', () => {
    const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
    const context: Record<string, unknown> = {
      eventBusArn: 'arn:aws:events:us-east-1:999999999999:event-bus/x',
    };
    const config = loadConfig((key) => context[key]);
    expect(() => new PresenceStack(app, 'Agnostic', { config })).not.toThrow();
    // ...and the stack publishes to that bus, as given, instead of creating one.
    const t = Template.fromStack(app.node.findChild('Agnostic') as PresenceStack);
    t.resourceCountIs('AWS::Events::EventBus', 0);
    expect(receiverPolicyStatements(t)).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ Action: 'events:PutEvents', Resource: context.eventBusArn }),
      ]),
    );
    expect(receiverEnvironment(t)[RECEIVER_ENV.eventBusName]).toBe(context.eventBusArn);
  });
});

describe('PresenceStack for a stage', () => {
  /** The app as bin/app.ts builds it: the stack named by stackName(config). */
  function stageApp(context: Record<string, unknown>) {
    const app = new App({ context: { 'aws:cdk:bundling-stacks': [], ...context } });
    const config = loadConfig((key) => app.node.tryGetContext(key));
    const stack = new PresenceStack(app, stackName(config), {
      config,
      env: { account: '123456789012', region: 'sa-east-1' },
    });
    return { stack, template: Template.fromStack(stack) };
  }

  /** The SSM grants of a role: `[action, parameter name or pattern]`. */
  function ssmGrants(template: Template, rolePrefix: string): Array<[string, string]> {
    const policies = resourcesOf(template, 'AWS::IAM::Policy').filter(([id]) =>
      id.startsWith(`${rolePrefix}RoleDefaultPolicy`),
    );
    expect(policies).toHaveLength(1);
    const statements = (
      (policies[0] as [string, Resource])[1].Properties.PolicyDocument as {
        Statement: Statement[];
      }
    ).Statement;
    return statements.flatMap((statement) =>
      [statement.Action]
        .flat()
        .filter((action) => action.startsWith('ssm:'))
        .flatMap((action) =>
          [statement.Resource].flat().map((resource) => {
            const arn = JSON.stringify(resource);
            const name = /:parameter(\/[^"]*)"/.exec(arn)?.[1];
            if (name === undefined) throw new Error(`not a parameter ARN: ${arn}`);
            return [action, name] as [string, string];
          }),
        ),
    );
  }

  /** Whether a grant lets its holder read a parameter (a recursive listing reads everything under its path). */
  const reads = ([action, pattern]: [string, string], name: string) =>
    action === 'ssm:GetParametersByPath'
      ? name.startsWith(`${pattern}/`)
      : new RegExp(
          `^${pattern
            .split('*')
            .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
            .join('.*')}$`,
        ).test(name);

  let unstaged: Template;
  let staged: ReturnType<typeof stageApp>;

  beforeAll(() => {
    unstaged = stageApp({ debugEventLog: 'true' }).template;
    staged = stageApp({ stage: 'staging', debugEventLog: 'true' });
  });

  it('deploys ZapiPresence-<stage> with its parameters, metrics and debug log of its own', () => {
    expect(staged.stack.stackName).toBe('ZapiPresence-staging');
    const t = staged.template;
    expect(receiverEnvironment(t)).toMatchObject({
      [RECEIVER_ENV.secretParameterName]: '/zapi-staging/webhook-secret',
      [RECEIVER_ENV.metricsNamespace]: 'ZapiPresence/staging',
    });
    const reconciler = resourcesOf(t, 'AWS::Lambda::Function').find(([id]) =>
      /^FleetReconciler[0-9A-F]{8}$/.test(id),
    );
    if (!reconciler) throw new Error('no reconciler');
    expect(
      (reconciler[1].Properties.Environment as { Variables: Record<string, unknown> }).Variables,
    ).toMatchObject({
      TOKEN_PARAMETER_TEMPLATE: '/zapi-staging/{instanceId}/token',
      WEBHOOK_SECRET_PARAMETER: '/zapi-staging/webhook-secret',
      METRICS_NAMESPACE: 'ZapiPresence/staging',
    });
    expect(ssmGrants(t, 'FleetReconciler').sort()).toEqual([
      ['ssm:GetParameter', '/zapi-staging/*/token'],
      ['ssm:GetParameter', '/zapi-staging/webhook-secret'],
      ['ssm:GetParameters', '/zapi-staging/*/token'],
      ['ssm:GetParameters', '/zapi-staging/webhook-secret'],
    ]);
    t.hasResourceProperties('AWS::Logs::LogGroup', {
      LogGroupName: '/aws/events/ZapiPresence-staging/presence',
    });
    t.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'PublishFailures',
      Namespace: 'ZapiPresence/staging',
    });
    // The same resources and logical ids as the unstaged stack: only names and values differ (CDK names
    // the rules' invoke permissions after the stack id).
    const ids = (template: Template) =>
      Object.keys(template.toJSON().Resources)
        .map((id) => id.replace(/AllowEventRule\w+$/, 'AllowEventRule'))
        .sort();
    expect(ids(t)).toEqual(ids(unstaged));
  });

  it('cannot read the unstaged deployment’s parameters', () => {
    const own = ssmGrants(unstaged, 'FleetReconciler');
    // The helper sees what a grant reads.
    expect(own.some((grant) => reads(grant, '/zapi/webhook-secret'))).toBe(true);
    expect(own.some((grant) => reads(grant, '/zapi/INST1/token'))).toBe(true);
    for (const role of ['FleetReconciler', 'FleetRegistrar', 'PresenceReceiver']) {
      const grants = ssmGrants(staged.template, role);
      for (const name of ['/zapi/webhook-secret', '/zapi/INST1/token'])
        expect(
          grants.filter((grant) => reads(grant, name)),
          `${role} ${name}`,
        ).toEqual([]);
    }
  });

  // A stage's parameters live on a path of its own: the unstaged deployment's listing of /zapi and its
  // grant on /zapi/*/token reach none of them.
  it('keeps a stage’s parameters out of reach of the unstaged deployment', () => {
    for (const role of ['FleetReconciler', 'FleetRegistrar']) {
      const grants = ssmGrants(unstaged, role);
      for (const name of ['/zapi-staging/webhook-secret', '/zapi-staging/INST1/token'])
        expect(
          grants.filter((grant) => reads(grant, name)),
          `${role} ${name}`,
        ).toEqual([]);
    }
  });
});

describe('PresenceWebhook props', () => {
  const stack = () => new Stack(new App({ context: { 'aws:cdk:bundling-stacks': [] } }), 'S');

  it.each(
    [
      [{ throttleRateLimit: 0 }, /throttleRateLimit: must be a whole number from 1 to 10000, got 0/],
      [{ throttleBurstLimit: 5_001 }, /throttleBurstLimit: must be a whole number from 1 to 5000/],
      [{ maxBodyBytes: 200_001 }, /maxBodyBytes: must be a whole number from 256 to 200000/],
      [{ receiverMemorySize: 10_241 }, /receiverMemorySize: must be a whole number from 1 to 10240/],
      [
        { receiverReservedConcurrency: 0 },
        /receiverReservedConcurrency: must be a whole number from 1 to 1000/,
      ],
      [{ sdkMaxAttempts: 11 }, /sdkMaxAttempts: must be a whole number from 1 to 10/],
      [
        { receiverTimeout: Duration.seconds(31) },
        /receiverTimeout: must be whole seconds from 3 to 30, got 31/,
      ],
      [
        { receiverTimeout: Duration.seconds(2) },
        /receiverTimeout: must be whole seconds from 3 to 30, got 2/,
      ],
      [
        { secretCacheTtl: Duration.minutes(11) },
        /secretCacheTtl: must be whole seconds from 1 to 600, got 660/,
      ],
      [
        { secretGracePeriod: Duration.minutes(19) },
        /secretGracePeriod: must be whole seconds from the secret cache TTL plus 15 minutes \(1200\) to 7 days, got 1140/,
      ],
      [
        { secretCacheTtl: Duration.minutes(10), secretGracePeriod: Duration.minutes(20) },
        /secretGracePeriod: .*\(1500\) to 7 days, got 1200/,
      ],
      [{ secretGracePeriod: Duration.days(8) }, /secretGracePeriod: .* to 7 days, got 691200/],
    ].map(([props, message]) => [label(props as object), props, message]) as Array<
      [string, PresenceWebhookProps, RegExp]
    >,
  )('refuses %s', (_label, props, message) => {
    expect(() => new PresenceWebhook(stack(), 'Presence', props)).toThrow(message);
  });

  it('reports every problem at once', () => {
    expect(
      () => new PresenceWebhook(stack(), 'Presence', { throttleRateLimit: 0, sdkMaxAttempts: 0 }),
    ).toThrow(/^PresenceWebhook: throttleRateLimit: .*; sdkMaxAttempts: /);
  });

  it('refuses an SDK attempt timeout the receiver would refuse at start (< 100 ms)', () => {
    expect(() => new PresenceWebhook(stack(), 'Presence', { sdkAttemptTimeoutMs: 50 })).toThrow(
      /sdkAttemptTimeoutMs/,
    );
  });
});
