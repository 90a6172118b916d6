/**
 * L3 construct: keeps every instance of the fleet registered with Z-API.
 *
 * The fleet is every instance with a token parameter under the token path (`/zapi/{instanceId}/token` by
 * default): adding an instance is a `put-parameter`, no deploy.
 *
 * - The reconciler Lambda: reconciles the whole fleet on a schedule (the drift sweep), one instance at
 *   once when SSM reports its token created or changed, and the whole fleet when the master secret or the
 *   Client-Token changes (SSM's Parameter Store Change events on the account's default bus); also
 *   invocable by hand (see functions/fleet/sweep-trigger.ts).
 * - The deploy-time registration: a custom resource that registers the whole fleet on every deploy with
 *   the same code, failing the deploy only for instances named with `requiredInstanceIds`.
 * Both read secrets from SSM at run time; nothing secret reaches the template or the environment.
 */
import { ArnFormat, CustomResource, Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import { EventBus, Match, Rule, Schedule } from 'aws-cdk-lib/aws-events';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import { Grant, Policy, PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import { SqsDestination } from 'aws-cdk-lib/aws-lambda-destinations';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Queue } from 'aws-cdk-lib/aws-sqs';
import { Provider } from 'aws-cdk-lib/custom-resources';
import { Construct } from 'constructs';
import {
  DRIFT_POLICIES,
  type DriftPolicy,
  FLEET_DEFAULTS,
  FLEET_ENV,
  INSTANCE_PLACEHOLDER,
  REGISTRATION_PROPERTIES,
  REGISTRATION_RESOURCE_TYPE,
} from '../functions/fleet/settings.ts';
import { RECEIVER_DEFAULTS } from '../functions/presence-webhook/settings.ts';
import { CANARY_INSTANCE_ID, INSTANCE_ID_PATTERN } from '../functions/shared/contract/presence-contract.ts';
import { acknowledgeFinding } from './acknowledge.ts';
import { deadLetterQueue } from './dead-letter-queue.ts';
import { LATEST_RUNTIME_RULES, PresenceFunction } from './presence-function.ts';
import type { PresenceWebhook } from './presence-webhook.ts';

export interface WebhookFleetProps {
  /** The receiver whose URL is registered. */
  readonly webhook: PresenceWebhook;
  /**
   * SSM SecureString holding each instance's token; must start with `/` and contain `{instanceId}` once.
   * Every parameter matching it is an instance of the fleet.
   * @default '/zapi/{instanceId}/token'
   */
  readonly instanceTokenParameterName?: string;
  /**
   * SSM SecureString holding the account security token, sent as `Client-Token`.
   * @default - no Client-Token header
   */
  readonly clientTokenParameterName?: string;
  /**
   * Instances that must register for a deploy to succeed (their token must exist). Others found in SSM
   * are registered too; their failures are reported without failing the deploy.
   * @default - none
   */
  readonly requiredInstanceIds?: readonly string[];
  /**
   * Z-API API base URL (Z-API-compatible hosts exist).
   * @default 'https://api.z-api.io'
   */
  readonly zapiBaseUrl?: string;
  /** @default 5_000 */
  readonly zapiAttemptTimeoutMs?: number;
  /** @default 4 */
  readonly zapiMaxAttempts?: number;
  /**
   * Z-API requests per second a run (a sweep, a deploy's registration) starts at; one limit for the whole
   * run, which adapts: it slows down on a 429 (honouring `Retry-After`) and creeps back up while Z-API
   * answers. Z-API documents no rate limit: see docs/fleet.md.
   * @default 20
   */
  readonly zapiRequestsPerSecond?: number;
  /**
   * `repair` puts this endpoint back when another URL replaced it; `alert` only reports it (for an
   * instance shared with another tool on purpose).
   * @default 'repair'
   */
  readonly driftPolicy?: DriftPolicy;
  /**
   * How often the drift sweep runs (5 minutes to 12 hours).
   * @default Duration.hours(1)
   */
  readonly sweepInterval?: Duration;
  /** Instances worked on at once. @default 16 */
  readonly concurrency?: number;
  /** `paymentStatus` values that count as paid up. @default PAID, TRIAL, ACTIVE, CURRENT */
  readonly currentPaymentStatuses?: readonly string[];
  /** An instance expiring within this many days is reported. @default 7 */
  readonly dueWarningDays?: number;
  /** The reconciler's timeout. @default Duration.minutes(5) */
  readonly reconcilerTimeout?: Duration;
  /** The deploy-time registration's timeout (CloudFormation waits one minute more). @default Duration.minutes(5) */
  readonly registrationTimeout?: Duration;
  /**
   * A value that differs on every deploy, so registration runs each time.
   * @default - the synthesis time
   */
  readonly deployNonce?: string;
  /** @default RetentionDays.ONE_YEAR */
  readonly logRetention?: RetentionDays;
  /** KMS key encrypting the fleet functions' log groups. @default - CloudWatch Logs' own encryption */
  readonly logEncryptionKey?: IKey;
  /** CloudWatch namespace of the fleet's metrics. @default the webhook's */
  readonly metricsNamespace?: string;
}

export class WebhookFleet extends Construct {
  /** The reconciler: invoke it with `{}`, `{"instanceIds": [...]}` or `{"release": [...]}`. */
  readonly reconciler: PresenceFunction;
  /** Invocations of the reconciler that failed after Lambda's retries. */
  readonly reconcilerDeadLetters: Queue;
  /** The drift sweep's schedule. */
  readonly sweepRule: Rule;
  readonly sweepInterval: Duration;
  /** SSM Parameter Store changes of tokens, the master and the Client-Token. */
  readonly parameterChangeRule: Rule;
  /** The deploy-time registration. */
  readonly registrationHandler: PresenceFunction;
  readonly provider: Provider;
  readonly registration: CustomResource;
  readonly driftPolicy: DriftPolicy;
  readonly tokenParameterTemplate: string;
  readonly metricsNamespace: string;

  constructor(scope: Construct, id: string, props: WebhookFleetProps) {
    super(scope, id);
    const { webhook } = props;
    const problems = webhookFleetProblems(props);
    if (problems.length > 0) throw new Error(`WebhookFleet: ${problems.join('; ')}`);
    const reconcilerTimeout =
      props.reconcilerTimeout ?? Duration.seconds(FLEET_DEFAULTS.reconcilerTimeoutSeconds);
    if (reconcilerTimeout.toSeconds() < webhook.secretCacheTtl.toSeconds() + 120) {
      throw new Error(
        `WebhookFleet: reconcilerTimeout must be at least the receiver's secret cache TTL plus 2 minutes (${webhook.secretCacheTtl.toSeconds() + 120} s): after a rotation the reconciler waits that TTL out`,
      );
    }
    const template = props.instanceTokenParameterName ?? FLEET_DEFAULTS.tokenParameterTemplate;
    this.tokenParameterTemplate = template;
    this.driftPolicy = props.driftPolicy ?? 'repair';
    this.sweepInterval = props.sweepInterval ?? Duration.minutes(FLEET_DEFAULTS.sweepIntervalMinutes);
    this.metricsNamespace = props.metricsNamespace ?? webhook.metricsNamespace;
    const logRetention = props.logRetention ?? RetentionDays.ONE_YEAR;
    const logEncryptionKey = props.logEncryptionKey;

    const E = FLEET_ENV;
    const environment: Record<string, string> = {
      [E.webhookBaseUrl]: webhook.baseUrl,
      [E.tokenParameterTemplate]: template,
      [E.masterSecretParameter]: webhook.webhookSecretParameter.parameterName,
      ...(props.clientTokenParameterName !== undefined && {
        [E.clientTokenParameter]: props.clientTokenParameterName,
      }),
      ...(props.zapiBaseUrl !== undefined && { [E.zapiBaseUrl]: props.zapiBaseUrl.replace(/\/+$/, '') }),
      ...(props.zapiAttemptTimeoutMs !== undefined && {
        [E.zapiAttemptTimeoutMs]: String(props.zapiAttemptTimeoutMs),
      }),
      ...(props.zapiMaxAttempts !== undefined && { [E.zapiMaxAttempts]: String(props.zapiMaxAttempts) }),
      ...(props.zapiRequestsPerSecond !== undefined && {
        [E.zapiRequestsPerSecond]: String(props.zapiRequestsPerSecond),
      }),
      [E.driftPolicy]: this.driftPolicy,
      ...(props.concurrency !== undefined && { [E.concurrency]: String(props.concurrency) }),
      ...(props.dueWarningDays !== undefined && { [E.dueWarningDays]: String(props.dueWarningDays) }),
      ...(props.currentPaymentStatuses !== undefined && {
        [E.currentPaymentStatuses]: props.currentPaymentStatuses.join(','),
      }),
      [E.metricsNamespace]: this.metricsNamespace,
      ...(webhook.detailedMetrics && { [E.detailedMetrics]: 'true' }),
      [E.receiverCacheSeconds]: String(webhook.secretCacheTtl.toSeconds()),
    };

    // The reconciler, invoked asynchronously (schedule, SSM changes): failures after Lambda's retries
    // land in a dead-letter queue (with an alarm), never silently.
    this.reconcilerDeadLetters = deadLetterQueue(this, 'ReconcilerDeadLetters', 'the fleet reconciler');
    this.reconciler = new PresenceFunction(this, 'Reconciler', {
      function: 'reconciler',
      description: 'Keeps every Z-API instance of the fleet registered (drift sweep, SSM changes)',
      memorySize: 256,
      timeout: reconcilerTimeout,
      logRetentionDays: logRetention,
      ...(logEncryptionKey !== undefined && { logEncryptionKey }),
      environment,
      // A failed asynchronous invocation (after Lambda's 2 retries) goes to the queue with its error.
      onFailure: new SqsDestination(this.reconcilerDeadLetters),
      retryAttempts: 2,
      // A sweep Lambda cannot start (throttled, concurrency exhausted) expires into that queue within
      // about an interval (at least the hour its retries need), so ReconcilerDeadLetters says so: the
      // sweep rule's own invocations, which SweepMissing reads, count it as invoked.
      maxEventAge: Duration.seconds(Math.min(6 * 3600, Math.max(3600, this.sweepInterval.toSeconds()))),
    });
    Validations.of(this.reconciler).acknowledge({
      id: 'Serverless::Serverless-LambdaDLQ',
      reason:
        'Failed asynchronous invocations go to an on-failure destination (an SQS queue with an alarm), which also records the error; a dead-letter queue would duplicate it.',
    });
    Validations.of(this.reconciler).acknowledge({
      id: 'Serverless::Serverless-LambdaTracing',
      reason:
        'A batch job: every run writes one structured line per instance that needs attention and one metrics line; X-Ray would add cost and a wildcard xray:Put* grant.',
    });

    // The deploy-time registration (same core, register mode).
    this.registrationHandler = new PresenceFunction(this, 'Registrar', {
      function: 'registrar',
      description: 'Registers the fleet with Z-API on every deploy',
      memorySize: 256,
      timeout: props.registrationTimeout ?? Duration.seconds(FLEET_DEFAULTS.registrationTimeoutSeconds),
      logRetentionDays: logRetention,
      ...(logEncryptionKey !== undefined && { logEncryptionKey }),
      environment,
    });
    Validations.of(this.registrationHandler).acknowledge({
      id: 'Serverless::Serverless-LambdaDLQ',
      reason:
        'Invoked synchronously by the custom-resource provider framework, which reports failures to CloudFormation.',
    });
    Validations.of(this.registrationHandler).acknowledge({
      id: 'Serverless::Serverless-LambdaTracing',
      reason: 'Runs once per deploy; its outcome is reported to CloudFormation, logged and counted.',
    });

    for (const fn of [this.reconciler, this.registrationHandler]) this.grantFleetReads(fn, props, template);

    // Triggers: the drift sweep, and SSM changes of tokens, the master and the Client-Token.
    const target = new LambdaFunction(this.reconciler, {
      deadLetterQueue: this.reconcilerDeadLetters,
      retryAttempts: 4,
      maxEventAge: Duration.hours(1),
    });
    this.sweepRule = new Rule(this, 'Sweep', {
      description: 'Z-API chat presence: drift sweep of the fleet',
      schedule: Schedule.rate(this.sweepInterval),
      targets: [target],
    });
    const watched = [
      webhook.webhookSecretParameter.parameterName,
      ...(props.clientTokenParameterName !== undefined ? [props.clientTokenParameterName] : []),
    ];
    this.parameterChangeRule = new Rule(this, 'ParameterChanges', {
      description:
        'Z-API chat presence: reconcile when a token, the master secret or the Client-Token changes',
      eventBus: EventBus.fromEventBusName(this, 'DefaultBus', 'default'),
      eventPattern: {
        source: ['aws.ssm'],
        detailType: ['Parameter Store Change'],
        detail: {
          name: [...watched, ...Match.wildcard(template.replace(INSTANCE_PLACEHOLDER, '*'))],
          operation: ['Create', 'Update', 'Delete'],
        },
      },
      targets: [target],
    });

    this.provider = new Provider(this, 'Provider', {
      onEventHandler: this.registrationHandler,
      logGroup: new LogGroup(this, 'ProviderLogs', {
        retention: logRetention,
        ...(logEncryptionKey !== undefined && { encryptionKey: logEncryptionKey }),
        removalPolicy: RemovalPolicy.DESTROY,
      }),
    });
    acknowledgeProviderFramework(this.provider, this.registrationHandler);

    const P = REGISTRATION_PROPERTIES;
    this.registration = new CustomResource(this, 'Registration', {
      serviceToken: this.provider.serviceToken,
      resourceType: REGISTRATION_RESOURCE_TYPE,
      serviceTimeout: (
        props.registrationTimeout ?? Duration.seconds(FLEET_DEFAULTS.registrationTimeoutSeconds)
      ).plus(Duration.minutes(1)),
      properties: {
        [P.requiredInstanceIds]: [...new Set(props.requiredInstanceIds ?? [])].join(','),
        [P.deployNonce]: props.deployNonce ?? new Date().toISOString(),
        [P.fleet]: 'true',
      },
    });
    // Register only once the endpoint serves: the stage, the route with its integration and invoke
    // permission, and the receiver.
    this.registration.node.addDependency(webhook.stage, webhook.route, webhook.receiver);
  }

  /**
   * Least privilege: read the token parameters (exactly the template's names), the master and the
   * Client-Token, and nothing else. The fleet is listed by name only (DescribeParameters, which reads no
   * value and which IAM cannot scope to resources); tokens are then read 10 at a time (GetParameters).
   * Never `ssm:GetParametersByPath`: it would authorize reading every parameter under the path.
   */
  private grantFleetReads(grantee: PresenceFunction, props: WebhookFleetProps, template: string): void {
    const stack = Stack.of(this);
    const parameterArn = (name: string) =>
      stack.formatArn({
        service: 'ssm',
        resource: 'parameter',
        resourceName: name.replace(/^\/+/, ''),
        arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
      });
    const tokens = parameterArn(template.replace(INSTANCE_PLACEHOLDER, '*'));
    Grant.addToPrincipal({
      grantee,
      actions: ['ssm:GetParameter', 'ssm:GetParameters'],
      resourceArns: [
        tokens,
        props.webhook.webhookSecretParameter.parameterArn,
        ...(props.clientTokenParameterName !== undefined
          ? [parameterArn(props.clientTokenParameterName)]
          : []),
      ],
    });
    const defaultPolicy = grantee.role?.node.tryFindChild('DefaultPolicy');
    if (defaultPolicy) {
      acknowledgeFinding(
        defaultPolicy,
        'AwsSolutions::AwsSolutions-IAM5',
        `Resource::${tokens}`,
        `The fleet is every instance with a token parameter matching ${template}: the wildcard stands for the instance id. An IAM wildcard also matches /, so deeper names ending the same way match too: keep only this app's token parameters under that path (the fleet reads only names of exactly the template's shape).`,
      );
    }
    // Its own policy, so the one wildcard resource IAM forces on DescribeParameters is acknowledged on
    // that statement alone.
    const listing = new Policy(this, `${grantee.node.id}ListTokens`, {
      statements: [new PolicyStatement({ actions: ['ssm:DescribeParameters'], resources: ['*'] })],
    });
    grantee.role?.attachInlinePolicy(listing);
    // The function (and so the deploy's registration, which invokes it) waits for this policy, as it
    // does for its default policy: the first deploy's listing must not meet AccessDenied.
    grantee.node.addDependency(listing);
    acknowledgeFinding(
      listing,
      'AwsSolutions::AwsSolutions-IAM5',
      'Resource::*',
      'ssm:DescribeParameters supports no resource-level permissions (IAM requires Resource "*"). It returns parameter names and metadata, never a value; the function reads values only of the token parameters, the master and the Client-Token (granted by ARN).',
    );
  }
}

/**
 * The shortest grace window (seconds) that carries every instance through a master rotation without a
 * refused callback: receivers learn the new master within their cache TTL; the rotation's own run waits
 * that out (plus the settle margin) and re-registers every instance; an instance Z-API failed for then is
 * retried by the next sweep, which may start up to a sweep interval later and run up to 15 minutes.
 * Without the fleet (URLs registered by hand): the cache TTL plus 15 minutes.
 */
export function minimumGraceSeconds(cacheSeconds: number, sweepIntervalMinutes: number | undefined): number {
  return sweepIntervalMinutes === undefined
    ? cacheSeconds + 900
    : cacheSeconds + FLEET_DEFAULTS.settleMarginMs / 1_000 + sweepIntervalMinutes * 60 + 900;
}

/** The grace window when none is given: 90 minutes, or what a longer sweep interval needs. */
export function defaultGraceSeconds(cacheSeconds: number, sweepIntervalMinutes: number | undefined): number {
  return Math.max(
    RECEIVER_DEFAULTS.secretGraceSeconds,
    minimumGraceSeconds(cacheSeconds, sweepIntervalMinutes),
  );
}

/** What is wrong with the props, the webhook aside (empty when nothing is). */
export function webhookFleetProblems(props: Omit<WebhookFleetProps, 'webhook'>): string[] {
  const problems: string[] = [];
  const template = props.instanceTokenParameterName ?? FLEET_DEFAULTS.tokenParameterTemplate;
  const at = template.indexOf(INSTANCE_PLACEHOLDER);
  if (
    !/^\/[^{}]*[^/{}][^{}]*\//.test(template.slice(0, at + 1)) ||
    at < 0 ||
    template.indexOf(INSTANCE_PLACEHOLDER, at + 1) >= 0
  ) {
    problems.push(
      `instanceTokenParameterName: "${template}" must start with a path (/name/) and contain ${INSTANCE_PLACEHOLDER} exactly once (e.g. /zapi/{instanceId}/token)`,
    );
  } else if (!/^\/[^{}/]+$/.test(template.slice(at + INSTANCE_PLACEHOLDER.length))) {
    // The grant puts `*` where the id goes, and an IAM `*` also matches `/`: without a name after it
    // (/zapi/{instanceId}), the grant would reach every parameter under the path.
    problems.push(
      `instanceTokenParameterName: "${template}" must end with /name after ${INSTANCE_PLACEHOLDER} (e.g. /zapi/{instanceId}/token): the read grant ends with that name`,
    );
  }
  for (const id of props.requiredInstanceIds ?? []) {
    if (!INSTANCE_ID_PATTERN.test(id))
      problems.push(`requiredInstanceIds: "${id}" is not a Z-API instance id`);
    else if (id === CANARY_INSTANCE_ID)
      problems.push(
        `requiredInstanceIds: "${id}" is the canary's instance id, which is never registered at Z-API; name a real instance (e.g. 3C01A2B3C4D5E6F7A8B9C0D1E2F3A4B5)`,
      );
  }
  if (props.zapiBaseUrl !== undefined && !/^https:\/\/[^/?#\s]+(\/[^?#\s]*)?$/.test(props.zapiBaseUrl)) {
    problems.push(`zapiBaseUrl: must be an https:// URL, got "${props.zapiBaseUrl}"`);
  }
  if (props.driftPolicy !== undefined && !DRIFT_POLICIES.includes(props.driftPolicy)) {
    problems.push(`driftPolicy: must be one of ${DRIFT_POLICIES.join(', ')}, got "${props.driftPolicy}"`);
  }
  const minutes = props.sweepInterval?.toMinutes({ integral: false });
  if (minutes !== undefined && (!Number.isInteger(minutes) || minutes < 5 || minutes > 720)) {
    problems.push(`sweepInterval: must be whole minutes from 5 to 720, got ${minutes}`);
  }
  const whole = (name: string, value: number | undefined, min: number, max: number) => {
    if (value !== undefined && (!Number.isInteger(value) || value < min || value > max))
      problems.push(`${name}: must be a whole number from ${min} to ${max}, got ${value}`);
  };
  whole('concurrency', props.concurrency, 1, 100);
  whole('zapiAttemptTimeoutMs', props.zapiAttemptTimeoutMs, 100, 60_000);
  whole('zapiMaxAttempts', props.zapiMaxAttempts, 1, 10);
  whole('zapiRequestsPerSecond', props.zapiRequestsPerSecond, 1, 1_000);
  whole('dueWarningDays', props.dueWarningDays, 0, 365);
  whole('reconcilerTimeout (seconds)', props.reconcilerTimeout?.toSeconds(), 30, 900);
  // The provider framework's own function times out at 15 minutes: leave it room to report.
  whole('registrationTimeout (seconds)', props.registrationTimeout?.toSeconds(), 30, 840);
  return problems;
}

/** The provider framework's own Lambda is CDK's: acknowledge what we cannot change, on that function only. */
function acknowledgeProviderFramework(provider: Provider, handler: PresenceFunction): void {
  const framework = provider.node.findChild('framework-onEvent');
  const handlerId = Stack.of(handler).getLogicalId(
    handler.node.defaultChild as import('aws-cdk-lib').CfnResource,
  );
  const acks: Array<[string, string]> = [
    [
      'AwsSolutions::AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
      'CDK provider framework function: aws-cdk-lib gives its role the basic execution policy for its own logs.',
    ],
    [
      `AwsSolutions::AwsSolutions-IAM5[Resource::<${handlerId}.Arn>:*]`,
      'CDK provider framework may invoke any version or alias of the one registration handler; the wildcard is the qualifier only.',
    ],
    ['Serverless::Serverless-LambdaDLQ', 'CDK provider framework, invoked synchronously by CloudFormation.'],
    [
      'Serverless::Serverless-LambdaTracing',
      'CDK provider framework: runs once per deploy and reports to CloudFormation.',
    ],
    [
      'Serverless::Serverless-LambdaDefaultMemorySize',
      'CDK provider framework: aws-cdk-lib sets its memory.',
    ],
    // aws-cdk-lib picks this function's runtime from its own region facts, which may lag the runtimes it knows.
    ...LATEST_RUNTIME_RULES.map((id): [string, string] => [
      id,
      "CDK provider framework: aws-cdk-lib chooses its runtime from its region facts, not this package's code.",
    ]),
  ];
  for (const [id, reason] of acks) Validations.of(framework).acknowledge({ id, reason });
}
