/**
 * `ZapiPresence`: the whole product as one L3 construct. Z-API chat-presence webhooks in, EventBridge
 * events out, every instance of the fleet kept registered, and operations (alarms, dashboard) included.
 *
 *   const presence = new ZapiPresence(stack, 'Presence', { instanceIds: ['ID'] });
 *   presence.onStatus('Typing', ['COMPOSING'], { targets: [new SqsQueue(queue)] });
 *
 * Secrets stay in SSM (parameter names only in the template). See README.md and docs/.
 */
import { Arn, ArnFormat, Duration, RemovalPolicy, Stack, Token } from 'aws-cdk-lib';
import { CorsHttpMethod, type HttpApi } from 'aws-cdk-lib/aws-apigatewayv2';
import type { Dashboard } from 'aws-cdk-lib/aws-cloudwatch';
import type { ITableV2 } from 'aws-cdk-lib/aws-dynamodb';
import { type Archive, EventBus, type IEventBus } from 'aws-cdk-lib/aws-events';
import { EventBus as EventBusTarget } from 'aws-cdk-lib/aws-events-targets';
import {
  AccountPrincipal,
  AnyPrincipal,
  Effect,
  PolicyStatement,
  ServicePrincipal,
} from 'aws-cdk-lib/aws-iam';
import { type IKey, Key } from 'aws-cdk-lib/aws-kms';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Topic } from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import { type DriftPolicy, FLEET_DEFAULTS } from '../functions/fleet/settings.ts';
import { RECEIVER_DEFAULTS } from '../functions/presence-webhook/settings.ts';
import type { DerivedDetailType, PresenceStatus } from '../functions/shared/contract/presence-contract.ts';
import { PresenceCanary, presenceCanaryProblems } from './canary.ts';
import { DebugEventLog } from './debug-event-log.ts';
import { LiveFeed, type LiveFeedProps, liveFeedProblems } from './live-feed.ts';
import { type AlarmName, PresenceMonitoring } from './monitoring.ts';
import { PresenceSchemaRegistry } from './presence-schema.ts';
import { PresenceStore } from './presence-store.ts';
import { EVENT_BUS_ARN } from './presence-subscriber-bus.ts';
import type { PresenceSubscription, PresenceSubscriptionOptions } from './presence-subscription.ts';
import { PresenceWebhook, type PresenceWebhookProps, presenceWebhookProblems } from './presence-webhook.ts';
import {
  defaultGraceSeconds,
  minimumGraceSeconds,
  WebhookFleet,
  type WebhookFleetProps,
  webhookFleetProblems,
} from './webhook-fleet.ts';

export interface ZapiPresenceProps {
  // --- the fleet and Z-API -------------------------------------------------------------------
  /**
   * Instances that must register for a deploy to succeed (their token must exist in SSM). The fleet
   * itself is every instance with a token parameter; these only make a deploy fail loudly.
   * @default - none
   */
  readonly instanceIds?: readonly string[];
  /**
   * Keep Z-API pointed at this endpoint: register every instance on deploy, and run the reconciler
   * (drift sweep, SSM changes). `false`: register URLs by hand (`npm run webhook-url`).
   * @default true
   */
  readonly registerWebhook?: boolean;
  /**
   * SSM SecureString of each instance's token; every parameter matching it is an instance.
   * @default '/zapi/{instanceId}/token'
   */
  readonly instanceTokenParameterName?: string;
  /**
   * SSM SecureString of the webhook master secret (32 to 512 letters, digits, `-` or `_`).
   * @default '/zapi/webhook-secret'
   */
  readonly webhookSecretParameterName?: string;
  /**
   * SSM SecureString of the account security token, sent as `Client-Token`.
   * @default - no Client-Token
   */
  readonly clientTokenParameterName?: string;
  /** Z-API host (HTTPS). @default 'https://api.z-api.io' */
  readonly zapiBaseUrl?: string;
  /** Timeout of one Z-API attempt. @default Duration.seconds(5) */
  readonly zapiAttemptTimeout?: Duration;
  /** Attempts per Z-API call. @default 4 */
  readonly zapiMaxAttempts?: number;
  /**
   * Z-API requests per second a run starts at (one limit per run; it adapts: slower on a 429, honouring
   * `Retry-After`, faster while Z-API answers). Z-API documents no rate limit: see docs/fleet.md.
   * @default 20
   */
  readonly zapiRequestsPerSecond?: number;
  /** `repair` puts this endpoint back when another URL replaced it; `alert` only reports. @default 'repair' */
  readonly driftPolicy?: DriftPolicy;
  /** How often the drift sweep runs (5 minutes to 12 hours). @default Duration.hours(1) */
  readonly sweepInterval?: Duration;
  /** Instances worked on at once. @default 16 */
  readonly reconcileConcurrency?: number;
  /** An instance expiring within this many days is reported. @default 7 */
  readonly dueWarningDays?: number;
  /** Z-API `paymentStatus` values that count as paid up. @default ['PAID', 'TRIAL', 'ACTIVE', 'CURRENT'] */
  readonly currentPaymentStatuses?: readonly string[];
  /** The deploy-time registration's timeout (at most 14 minutes). @default Duration.minutes(5) */
  readonly registrationTimeout?: Duration;
  /** The reconciler's timeout (at least the secret cache TTL plus 2 minutes). @default Duration.minutes(15) */
  readonly reconcilerTimeout?: Duration;
  /**
   * A value that changes on every deploy, so the deploy-time registration runs each time (it is the
   * registration's `DeployNonce` property). Give a fixed value in unit tests that snapshot the template;
   * a deploy with an unchanged value skips the registration (the reconciler still sweeps).
   * @default - the synthesis time
   */
  readonly deployNonce?: string;

  // --- the bus -----------------------------------------------------------------------------------
  /**
   * Publish to this existing bus (same account and region) instead of creating one.
   * @default - a new bus
   */
  readonly eventBusArn?: string;
  /** Name of the bus to create. @default - generated */
  readonly eventBusName?: string;
  /** How long the archive keeps events for replay; `Duration.days(0)` keeps them forever. @default Duration.days(30) */
  readonly archiveRetention?: Duration;
  /**
   * AWS accounts allowed to manage rules of their own on the bus: a bus policy for cross-account rule
   * management, each rule owned by its creator. EventBridge lets such a rule target only an event bus, so
   * this is for a subscriber that forwards to its own bus itself; to subscribe another account, use
   * {@link ZapiPresence.forwardTo} and `PresenceSubscriberBus` instead (docs/library.md), which need no
   * policy on this bus. Only for a bus this construct creates.
   * @default - none
   */
  readonly subscriberAccountIds?: readonly string[];

  // --- the receiver ------------------------------------------------------------------------------
  /** Largest accepted body, in bytes. @default 16384 */
  readonly maxBodyBytes?: number;
  /** Stage steady-state requests per second. @default 50 */
  readonly throttleRateLimit?: number;
  /** Stage burst. @default 100 */
  readonly throttleBurstLimit?: number;
  /** @default 256 */
  readonly receiverMemorySize?: number;
  /** The receiver's timeout; it answers 503 one second before. @default Duration.seconds(10) */
  readonly receiverTimeout?: Duration;
  /** Concurrency reserved for (and capping) the receiver. @default - none reserved */
  readonly receiverReservedConcurrency?: number;
  /** Per-attempt timeout of the receiver's SSM and EventBridge calls. @default Duration.seconds(2) */
  readonly sdkAttemptTimeout?: Duration;
  /** Attempts per SSM or EventBridge call. @default 2 */
  readonly sdkMaxAttempts?: number;
  /** How long the receiver caches the master. @default Duration.minutes(5) */
  readonly secretCacheTtl?: Duration;
  /** After a rotation, how long the previous master's URLs are accepted. @default Duration.hours(1) */
  readonly secretGracePeriod?: Duration;

  // --- operations ------------------------------------------------------------------------------
  /** Retention of every log group. @default RetentionDays.ONE_YEAR */
  readonly logRetention?: RetentionDays;
  /**
   * Encrypt every log group with a customer-managed KMS key (created, with yearly rotation, unless
   * `logEncryptionKey` is given): $1 a month per key, and a deleted key is billed for its 7-day waiting
   * period. Without it CloudWatch Logs still encrypts every log group at rest, with keys AWS manages.
   * @default false (true when `logEncryptionKey` is given)
   */
  readonly encryptLogs?: boolean;
  /**
   * The KMS key for the log groups; its key policy must let `logs.<region>.amazonaws.com` use it (a key
   * this construct creates gets that statement).
   * @default - a new key, when `encryptLogs`
   */
  readonly logEncryptionKey?: IKey;
  /** CloudWatch namespace of the metrics. @default 'ZapiPresence' */
  readonly metricsNamespace?: string;
  /**
   * Extract the traffic metrics too: Accepted and PublishLatency per status, Rejected per reason, the
   * canary's latency, and every count of every fleet run (zeros included). About $0.30 a month per series
   * that reports (BENCHMARKS.md, fixed cost, prices the lot). Off, the same fields are in the log
   * lines (Logs Insights), and the alarms work the same: they need none of these.
   * @default false
   */
  readonly detailedMetrics?: boolean;
  /**
   * A CloudWatch dashboard (traffic, fleet, every alarm): $3 a month beyond the account's first three.
   * @default false
   */
  readonly dashboard?: boolean;
  /** E-mail subscribed to the alarm topic. @default - none; subscribe anything to `alarmTopic` */
  readonly alarmEmail?: string;
  /** Thresholds replacing the alarms' defaults (1), by alarm name. @default - every alarm at 1 */
  readonly alarmThresholds?: Readonly<Partial<Record<AlarmName, number>>>;
  /** Publish the event schema in an EventBridge Schema Registry. @default true */
  readonly schemaRegistry?: boolean;
  /** Send every presence event to a log group too (debugging). @default false */
  readonly debugEventLog?: boolean;
  /**
   * Prove the path every few minutes: a canary POSTs a callback for the reserved instance
   * `zapi-presence-canary` through the public webhook URL; its events (source
   * `zapi.chat-presence.canary`) reach no subscriber; an alarm fires when none arrives on the bus.
   * @default true
   */
  readonly canary?: boolean;
  /** Time between two canary runs, whole minutes from 1 to 6. @default Duration.minutes(5) */
  readonly canaryInterval?: Duration;

  // --- presence state --------------------------------------------------------------------------
  /**
   * Keep each chat's current presence in a DynamoDB table, publish derived events (activity started and
   * stopped, came online, went offline) and serve `GET /instances/{instanceId}/chats/{phone}/presence`
   * (IAM-authorized). See docs/presence-state.md.
   * @default false
   */
  readonly presenceStore?: boolean;
  /** A typing or recording activity with no news for this long ends by itself. @default Duration.seconds(25) */
  readonly activityExpiry?: Duration;
  /** Chats idle this long leave the presence table. @default Duration.days(30) */
  readonly presenceIdleTtl?: Duration;

  // --- the live feed -----------------------------------------------------------------------------
  /**
   * Presence on the agent's screen: an AppSync Events API (`/presence/{instanceId}`, one channel per
   * instance), a snapshot route (`GET /instances/{instanceId}/presence`, JWT) and agents who sign in with
   * a Cognito user pool (created, or yours) or your OIDC issuer; an agent sees an instance when its
   * token's groups name it or `zapi-presence-all`. Needs `presenceStore: true`. `true`, or the options.
   * See docs/live-feed.md.
   * @default false
   */
  readonly liveFeed?: boolean | LiveFeedOptions;
}

/** The live feed's options (`liveFeed`). */
export interface LiveFeedOptions
  extends Pick<LiveFeedProps, 'userPool' | 'userPoolClient' | 'oidc' | 'tokenValidity'> {
  /**
   * Origins of the agent pages that call the snapshot route from a browser (CORS). Agents send their
   * token in a header, never a cookie, so `*` lets no other page read anything.
   * @default ['*']
   */
  readonly allowedOrigins?: readonly string[];
}

/** Actions another account needs to manage its own rules on the bus. */
const RULE_MANAGEMENT_ACTIONS = [
  'events:PutRule',
  'events:PutTargets',
  'events:DeleteRule',
  'events:RemoveTargets',
  'events:DisableRule',
  'events:EnableRule',
  'events:TagResource',
  'events:UntagResource',
  'events:DescribeRule',
  'events:ListTargetsByRule',
  'events:ListTagsForResource',
];

export class ZapiPresence extends Construct {
  /** The bus every presence event is published to. */
  readonly eventBus: IEventBus;
  /** The archive of every presence event (for replay). */
  readonly archive: Archive;
  /** `https://{api-id}.execute-api.{region}.amazonaws.com`: instance I's URL is `{base}/instances/I/presence?secret=...`. */
  readonly webhookBaseUrl: string;
  readonly httpApi: HttpApi;
  /** The webhook receiver. */
  readonly receiver: IFunction;
  /** The fleet reconciler (invoke with `{}`, `{"instanceIds": [...]}`, `{"release": [...]}`), unless `registerWebhook` is false. */
  readonly reconciler?: IFunction;
  /** The deploy-time registration, unless `registerWebhook` is false. */
  readonly registrationHandler?: IFunction;
  /** Every alarm notifies this topic. */
  readonly alarmTopic: Topic;
  /** The dashboard, when `dashboard` is true. */
  readonly dashboard?: Dashboard;
  /** The KMS key of the log groups, when `encryptLogs`. */
  readonly logEncryptionKey?: IKey;
  /** The canary function (`aws lambda invoke --function-name <its name> out.json` proves the path), unless `canary` is false. */
  readonly canaryFunction?: IFunction;

  /** The building blocks, for what the facade does not cover. */
  readonly webhook: PresenceWebhook;
  readonly fleet?: WebhookFleet;
  readonly monitoring: PresenceMonitoring;
  readonly schemaRegistry?: PresenceSchemaRegistry;
  readonly debugEventLog?: DebugEventLog;
  /** The canary: its functions, schedule and arrival rule, unless `canary` is false. */
  readonly canary?: PresenceCanary;
  /** With `presenceStore`: the table, the state and read functions, the queues. */
  readonly presenceStore?: PresenceStore;
  /** With `liveFeed`: the Event API, its publisher, the agents' sign-in and the snapshot route. */
  readonly liveFeed?: LiveFeed;
  /** With `presenceStore`: one item per chat (partition key `instanceId`, sort key `chat`: the phone, or `group#member`), for direct reads. */
  readonly presenceTable?: ITableV2;

  constructor(scope: Construct, id: string, props: ZapiPresenceProps = {}) {
    super(scope, id);
    const webhookProps = this.webhookProps(props);
    const fleetProps = this.fleetProps(props);
    // Every problem at once, each named as a ZapiPresence prop.
    const problems = [
      ...validate(props),
      ...(props.eventBusArn !== undefined ? this.checkSameEnvironment(props.eventBusArn) : []),
      ...renamed(presenceWebhookProblems(webhookProps)),
      ...(props.registerWebhook !== false ? renamed(webhookFleetProblems(fleetProps)) : []),
    ];
    if (problems.length > 0) throw new Error(`ZapiPresence: ${problems.join('; ')}`);

    const logRetention = props.logRetention ?? RetentionDays.ONE_YEAR;
    if (props.encryptLogs === true || props.logEncryptionKey !== undefined) {
      this.logEncryptionKey = props.logEncryptionKey ?? this.createLogsKey();
    }
    const logKey = this.logEncryptionKey === undefined ? {} : { logEncryptionKey: this.logEncryptionKey };

    const feedOptions: LiveFeedOptions | undefined =
      props.liveFeed === true ? {} : props.liveFeed === false ? undefined : props.liveFeed;
    this.webhook = new PresenceWebhook(this, 'Presence', {
      ...webhookProps,
      ...(feedOptions !== undefined && {
        corsPreflight: {
          allowOrigins: [...(feedOptions.allowedOrigins ?? ['*'])],
          allowMethods: [CorsHttpMethod.GET],
          allowHeaders: ['authorization'],
          maxAge: Duration.hours(1),
        },
      }),
      ...(props.eventBusArn !== undefined && {
        eventBus: EventBus.fromEventBusArn(this, 'ImportedBus', props.eventBusArn),
      }),
      logRetention,
      ...logKey,
      ...(props.detailedMetrics === true && { detailedMetrics: true }),
    });
    this.eventBus = this.webhook.eventBus;
    this.archive = this.webhook.archive;
    this.httpApi = this.webhook.httpApi;
    this.receiver = this.webhook.receiver;
    this.webhookBaseUrl = this.webhook.baseUrl;

    if (props.subscriberAccountIds !== undefined && props.subscriberAccountIds.length > 0) {
      this.allowSubscribers(props.subscriberAccountIds);
    }

    if (props.registerWebhook !== false) {
      this.fleet = new WebhookFleet(this, 'Fleet', {
        ...fleetProps,
        webhook: this.webhook,
        logRetention,
        ...logKey,
      });
      this.reconciler = this.fleet.reconciler;
      this.registrationHandler = this.fleet.registrationHandler;
    }

    if (props.presenceStore === true) {
      this.presenceStore = new PresenceStore(this, 'State', {
        webhook: this.webhook,
        ...(props.activityExpiry !== undefined && { activityExpiry: props.activityExpiry }),
        ...(props.presenceIdleTtl !== undefined && { idleTtl: props.presenceIdleTtl }),
        logRetention,
        ...logKey,
      });
      this.presenceTable = this.presenceStore.table;
    }

    if (feedOptions !== undefined && this.presenceStore !== undefined) {
      const { allowedOrigins: _origins, ...agents } = feedOptions;
      this.liveFeed = new LiveFeed(this, 'LiveFeed', {
        webhook: this.webhook,
        store: this.presenceStore,
        ...agents,
        // Groups for the instances the deploy names, in a user pool created here.
        ...(agents.userPool === undefined &&
          agents.oidc === undefined &&
          props.instanceIds !== undefined && { instanceIds: props.instanceIds }),
        logRetention,
        ...logKey,
      });
    }

    if (props.canary !== false) {
      this.canary = new PresenceCanary(this, 'Canary', {
        webhook: this.webhook,
        ...(props.canaryInterval !== undefined && { interval: props.canaryInterval }),
        logRetention,
        ...logKey,
      });
      this.canaryFunction = this.canary.canaryFunction;
    }

    // Before the monitoring, which names its subscription's dead-letter alarm as the debug log's.
    if (props.debugEventLog === true) {
      this.debugEventLog = new DebugEventLog(this, 'DebugEvents', {
        webhook: this.webhook,
        // Every event holds phone numbers (personal data): a debugging aid keeps them a week, not a year.
        retentionOverride: RetentionDays.ONE_WEEK,
        // One per construct; this repository's app (id 'Default') keeps the documented name.
        logGroupName: `/aws/events/${Stack.of(this).stackName}${id === 'Default' ? '' : `/${id}`}/presence`,
        retention: logRetention,
        ...(this.logEncryptionKey !== undefined && { encryptionKey: this.logEncryptionKey }),
      });
    }
    this.monitoring = new PresenceMonitoring(this, 'Monitoring', {
      webhook: this.webhook,
      ...(this.canary && { canary: this.canary }),
      ...(this.fleet && { fleet: this.fleet }),
      ...(this.presenceStore && { store: this.presenceStore }),
      ...(this.debugEventLog && { debugEventLog: this.debugEventLog }),
      ...(this.liveFeed && { feed: this.liveFeed }),
      ...pick(props, ['alarmEmail', 'alarmThresholds', 'dashboard']),
    });
    this.alarmTopic = this.monitoring.alarmTopic;
    if (this.monitoring.dashboard !== undefined) this.dashboard = this.monitoring.dashboard;

    if (props.schemaRegistry !== false) {
      this.schemaRegistry = new PresenceSchemaRegistry(this, 'Schemas', {
        derivedEvents: props.presenceStore === true,
      });
    }
  }

  /**
   * Subscribes targets to the given statuses (every status when the list is empty), with a rule built
   * from the contract. Each target gets a dead-letter queue, a retry policy and a maximum event age
   * unless it brings its own; the monitoring adds an alarm on the dead-letter queue.
   *
   *   presence.onStatus('Typing', ['COMPOSING', 'RECORDING'], { targets: [new SqsQueue(queue)] });
   */
  onStatus(
    id: string,
    statuses: readonly PresenceStatus[],
    options: PresenceSubscriptionOptions = {},
  ): PresenceSubscription {
    return this.webhook.onStatus(id, statuses, options);
  }

  /**
   * Subscribes targets to the presence store's derived events (every one when the list is empty): activity
   * started and stopped, came online, went offline. Needs `presenceStore: true`. Same dead-letter queue,
   * retry policy and alarm as {@link onStatus}.
   *
   *   presence.onDerived('Stopped', ['Z-API Chat Activity Stopped'], { targets: [new SqsQueue(queue)] });
   */
  onDerived(
    id: string,
    detailTypes: readonly DerivedDetailType[],
    options: PresenceSubscriptionOptions = {},
  ): PresenceSubscription {
    if (this.presenceStore === undefined) {
      throw new Error(
        `ZapiPresence ${this.node.id}: onDerived("${id}") needs presenceStore: true; derived events come from the presence store`,
      );
    }
    return this.webhook.onDerived(id, detailTypes, options);
  }

  /**
   * Forwards the given statuses (every status when the list is empty) to an event bus in another account,
   * named by its full ARN: a rule on the presence bus, created by its owner, whose target is that bus and a
   * role that may PutEvents to exactly that bus, as EventBridge documents cross-account delivery. The
   * other account's bus must let this account's rules PutEvents to it (`PresenceSubscriberBus` does);
   * its own rules deliver to its own targets. Same dead-letter queue, retry policy and alarm as
   * {@link onStatus}.
   *
   *   presence.forwardTo('Helpdesk', 'arn:aws:events:sa-east-1:210987654321:event-bus/zapi-presence-from-crm', ['RECORDING']);
   */
  forwardTo(
    id: string,
    eventBusArn: string,
    statuses: readonly PresenceStatus[],
    options: Omit<PresenceSubscriptionOptions, 'targets'> = {},
  ): PresenceSubscription {
    return this.onStatus(id, statuses, { ...options, targets: [this.busTarget(id, eventBusArn)] });
  }

  /** {@link forwardTo} for the presence store's derived events (every one when the list is empty). */
  forwardDerivedTo(
    id: string,
    eventBusArn: string,
    detailTypes: readonly DerivedDetailType[],
    options: Omit<PresenceSubscriptionOptions, 'targets'> = {},
  ): PresenceSubscription {
    return this.onDerived(id, detailTypes, { ...options, targets: [this.busTarget(id, eventBusArn)] });
  }

  private busTarget(id: string, eventBusArn: string): EventBusTarget {
    if (!Token.isUnresolved(eventBusArn) && !EVENT_BUS_ARN.test(eventBusArn)) {
      throw new Error(
        `ZapiPresence ${this.node.id}: forwardTo("${id}"): "${eventBusArn}" is not an event bus ARN; name the other account's bus by its full ARN, e.g. arn:aws:events:sa-east-1:210987654321:event-bus/zapi-presence-from-crm`,
      );
    }
    return new EventBusTarget(EventBus.fromEventBusArn(this, `${id}ForwardBus`, eventBusArn));
  }

  /** The webhook URL of one instance, without its secret (`npm run webhook-url` prints the full one). */
  webhookUrl(instanceId: string): string {
    return this.webhook.webhookUrl(instanceId);
  }

  private createLogsKey(): Key {
    const key = new Key(this, 'LogsKey', {
      description: 'Encrypts the Z-API chat-presence log groups',
      enableKeyRotation: true,
      removalPolicy: RemovalPolicy.DESTROY,
      // The shortest wait KMS allows: a destroyed stack's key is billed until it is gone.
      pendingWindow: Duration.days(7),
    });
    const stack = Stack.of(this);
    // CloudWatch Logs encrypts and decrypts with it, for this account's log groups only (as AWS documents).
    key.addToResourcePolicy(
      new PolicyStatement({
        sid: 'CloudWatchLogsOfThisAccount',
        principals: [new ServicePrincipal(`logs.${stack.region}.amazonaws.com`)],
        actions: ['kms:Encrypt*', 'kms:Decrypt*', 'kms:ReEncrypt*', 'kms:GenerateDataKey*', 'kms:Describe*'],
        resources: ['*'],
        conditions: {
          ArnLike: {
            'kms:EncryptionContext:aws:logs:arn': stack.formatArn({
              service: 'logs',
              resource: 'log-group',
              resourceName: '*',
              arnFormat: ArnFormat.COLON_RESOURCE_NAME,
            }),
          },
        },
      }),
    );
    // Grants only for AWS services acting on AWS resources (Control Tower CT.KMS.PR.3).
    key.addToResourcePolicy(
      new PolicyStatement({
        sid: 'GrantsForAwsServicesOnly',
        effect: Effect.DENY,
        principals: [new AnyPrincipal()],
        actions: ['kms:CreateGrant'],
        resources: ['*'],
        conditions: {
          BoolIfExists: { 'kms:GrantIsForAWSResource': 'false', 'aws:PrincipalIsAWSService': 'false' },
        },
      }),
    );
    return key;
  }

  private allowSubscribers(accountIds: readonly string[]): void {
    const bus = this.eventBus as EventBus;
    const stack = Stack.of(this);
    for (const account of new Set(accountIds)) {
      bus.addToResourcePolicy(
        new PolicyStatement({
          sid: `zapi-presence-subscriber-${account}`,
          principals: [new AccountPrincipal(account)],
          actions: RULE_MANAGEMENT_ACTIONS,
          resources: [
            stack.formatArn({
              service: 'events',
              resource: 'rule',
              resourceName: `${bus.eventBusName}/*`,
              arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
            }),
          ],
          // Each account manages only the rules it created.
          conditions: { StringEqualsIfExists: { 'events:creatorAccount': account } },
        }),
      );
    }
  }

  /** The building block's props for ours (the bus and the log settings aside). */
  private webhookProps(props: ZapiPresenceProps): PresenceWebhookProps {
    return {
      ...(props.eventBusName !== undefined && { eventBusName: props.eventBusName }),
      ...(props.webhookSecretParameterName !== undefined && {
        webhookSecretParameterName: props.webhookSecretParameterName,
      }),
      ...pick(props, [
        'throttleRateLimit',
        'throttleBurstLimit',
        'maxBodyBytes',
        'archiveRetention',
        'metricsNamespace',
        'receiverReservedConcurrency',
        'receiverTimeout',
        'receiverMemorySize',
        'sdkMaxAttempts',
        'secretCacheTtl',
        'secretGracePeriod',
      ]),
      // Unless given: 90 minutes, or what the sweep interval needs.
      ...(props.secretGracePeriod === undefined &&
        props.registerWebhook !== false && {
          secretGracePeriod: Duration.seconds(defaultGraceSeconds(...rotationTiming(props))),
        }),
      ...(props.sdkAttemptTimeout !== undefined && {
        sdkAttemptTimeoutMs: props.sdkAttemptTimeout.toMilliseconds(),
      }),
    };
  }

  private fleetProps(props: ZapiPresenceProps): Omit<WebhookFleetProps, 'webhook'> {
    return {
      ...pick(props, [
        'clientTokenParameterName',
        'zapiBaseUrl',
        'zapiMaxAttempts',
        'zapiRequestsPerSecond',
        'driftPolicy',
        'sweepInterval',
        'dueWarningDays',
        'currentPaymentStatuses',
        'reconcilerTimeout',
        'registrationTimeout',
        'deployNonce',
      ]),
      ...(props.instanceTokenParameterName !== undefined && {
        instanceTokenParameterName: props.instanceTokenParameterName,
      }),
      ...(props.instanceIds !== undefined && { requiredInstanceIds: props.instanceIds }),
      ...(props.zapiAttemptTimeout !== undefined && {
        zapiAttemptTimeoutMs: props.zapiAttemptTimeout.toMilliseconds(),
      }),
      ...(props.reconcileConcurrency !== undefined && { concurrency: props.reconcileConcurrency }),
    };
  }

  /** The receiver publishes in its own region, and the archive must live in the bus's account. */
  private checkSameEnvironment(eventBusArn: string): string[] {
    // Known only at deploy time (another stack's bus, an import): nothing to check here.
    if (Token.isUnresolved(eventBusArn)) return [];
    if (!/^arn:aws[a-z-]*:events:[a-z0-9-]+:\d{12}:event-bus\/[A-Za-z0-9._\-/]{1,256}$/.test(eventBusArn)) {
      return [`eventBusArn: "${eventBusArn}" is not an event bus ARN`];
    }
    const stack = Stack.of(this);
    const { region, account } = Arn.split(eventBusArn, ArnFormat.SLASH_RESOURCE_NAME);
    const found: string[] = [];
    if (!Token.isUnresolved(stack.region) && region !== stack.region)
      found.push(`region ${region} (the stack deploys to ${stack.region})`);
    if (!Token.isUnresolved(stack.account) && account !== stack.account)
      found.push(`account ${account} (the stack deploys to ${stack.account})`);
    return found.length === 0
      ? []
      : [
          `eventBusArn: the bus is in ${found.join(' and ')}; use a bus in the same account and region, e.g. arn:aws:events:${stack.region}:${Token.isUnresolved(stack.account) ? 'ACCOUNT' : stack.account}:event-bus/NAME`,
        ];
  }
}

/** The building blocks' prop names, as ZapiPresence calls them. */
const RENAMES: ReadonlyArray<[RegExp, string]> = [
  [/^requiredInstanceIds:/, 'instanceIds:'],
  [/^concurrency:/, 'reconcileConcurrency:'],
  [/^zapiAttemptTimeoutMs:/, 'zapiAttemptTimeout (ms):'],
  [/^sdkAttemptTimeoutMs:/, 'sdkAttemptTimeout (ms):'],
];

function renamed(problems: readonly string[]): string[] {
  return problems.map((problem) => RENAMES.reduce((text, [from, to]) => text.replace(from, to), problem));
}

function pick<T extends object, K extends keyof T>(source: T, keys: readonly K[]): Partial<Pick<T, K>> {
  const out: Partial<Pick<T, K>> = {};
  for (const key of keys) if (source[key] !== undefined) out[key] = source[key];
  return out;
}

/** What the grace window is measured against: the secret cache TTL (s) and the sweep interval (min). */
function rotationTiming(props: ZapiPresenceProps): [cacheSeconds: number, sweepIntervalMinutes: number] {
  return [
    props.secretCacheTtl?.toSeconds() ?? RECEIVER_DEFAULTS.secretCacheSeconds,
    props.sweepInterval?.toMinutes({ integral: false }) ?? FLEET_DEFAULTS.sweepIntervalMinutes,
  ];
}

function validate(props: ZapiPresenceProps): string[] {
  const problems: string[] = [];
  if (props.eventBusArn !== undefined && props.eventBusName !== undefined) {
    problems.push('eventBusName names a bus to create; it cannot be combined with eventBusArn');
  }
  if (props.subscriberAccountIds !== undefined) {
    if (props.eventBusArn !== undefined && props.subscriberAccountIds.length > 0) {
      problems.push(
        'subscriberAccountIds: only for a bus this construct creates (set the policy on your own bus)',
      );
    }
    for (const account of props.subscriberAccountIds) {
      if (!/^\d{12}$/.test(account))
        problems.push(`subscriberAccountIds: "${account}" is not a 12-digit AWS account id`);
    }
  }
  if (props.alarmEmail !== undefined && !/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(props.alarmEmail)) {
    problems.push(`alarmEmail: "${props.alarmEmail}" is not an e-mail address`);
  }
  // A rotation needs the grace window to cover the next sweep too (see minimumGraceSeconds); the
  // default grows with the sweep interval, so only a given one can be too short.
  if (props.registerWebhook !== false && props.secretGracePeriod !== undefined) {
    const [cache, sweep] = rotationTiming(props);
    const minimum = minimumGraceSeconds(cache, sweep);
    if (props.secretGracePeriod.toSeconds() < minimum) {
      problems.push(
        `secretGracePeriod: ${props.secretGracePeriod.toSeconds()} s is too short for a sweepInterval of ${sweep} minutes: an instance Z-API fails for during a rotation is retried by the next sweep, which must come within the window; use at least ${minimum} s (or a shorter sweepInterval)`,
      );
    }
  }
  if (props.presenceStore !== true) {
    for (const key of ['activityExpiry', 'presenceIdleTtl'] as const) {
      if (props[key] !== undefined)
        problems.push(`${key}: a prop of the presence store; add presenceStore: true`);
    }
  }
  if (props.liveFeed !== undefined && props.liveFeed !== false) {
    if (props.presenceStore !== true) {
      problems.push(
        "liveFeed: needs presenceStore: true (the feed carries the store's derived events, and its snapshot reads the store's table); add presenceStore: true",
      );
    }
    const options = props.liveFeed === true ? {} : props.liveFeed;
    for (const problem of liveFeedProblems(options)) problems.push(`liveFeed.${problem}`);
    for (const origin of options.allowedOrigins ?? []) {
      if (origin !== '*' && !/^https?:\/\/[^\s/?#]+$/.test(origin)) {
        problems.push(
          `liveFeed.allowedOrigins: "${origin}" is not an origin, e.g. https://helpdesk.example.com.br`,
        );
      }
    }
  }
  if (props.canary === false) {
    if (props.canaryInterval !== undefined)
      problems.push('canaryInterval: a prop of the canary, which is off (canary: false)');
  } else {
    problems.push(
      ...presenceCanaryProblems({
        ...(props.canaryInterval !== undefined && { interval: props.canaryInterval }),
      }),
    );
  }
  if (props.logEncryptionKey !== undefined && props.encryptLogs === false) {
    problems.push('logEncryptionKey is given but encryptLogs is false');
  }
  return problems;
}
