/**
 * Operations: alarms on everything that can lose or delay an event or stop callbacks silently, a
 * notification topic every alarm goes to (its ARN is a stack output: subscribe e-mail, chat or paging to
 * it), and, when asked for, one dashboard with the traffic, the fleet's health and every alarm.
 *
 * Fixed cost: $0.10 a month per alarm (per metric it reads). The alarms read AWS's own metrics where
 * they say the same thing (API Gateway 5xx, Lambda errors and invocations, the sweep rule's invocations,
 * SQS queue metrics), and custom metrics that only report while something is wrong: a healthy month
 * adds no custom series ($0.30 each). The dashboard ($3 a month beyond an account's first three) and the
 * traffic metrics (detailedMetrics) are opt-in.
 */
import { ArnFormat, Duration, Names, Stack, Validations } from 'aws-cdk-lib';
import {
  Alarm,
  AlarmStatusWidget,
  ComparisonOperator,
  Dashboard,
  GraphWidget,
  type IMetric,
  type IWidget,
  MathExpression,
  Metric,
  TextWidget,
  TreatMissingData,
} from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import { EventField, Match, Rule, RuleTargetInput } from 'aws-cdk-lib/aws-events';
import { SnsTopic } from 'aws-cdk-lib/aws-events-targets';
import { PolicyStatement, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { FilterPattern, type ILogGroup, MetricFilter } from 'aws-cdk-lib/aws-logs';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { FLEET_METRICS } from '../functions/fleet/settings.ts';
import {
  BACKLOG_ALARM_SECONDS,
  SNAPSHOT_ROUTE_KEY,
  STATE_FAILURES_METRIC,
} from '../functions/presence-store/settings.ts';
import { METRIC_NAMES, REJECT_REASONS } from '../functions/presence-webhook/settings.ts';
import { PRESENCE_STATUSES } from '../functions/shared/contract/presence-contract.ts';
import type { PresenceCanary } from './canary.ts';
import { deadLetterQueue } from './dead-letter-queue.ts';
import type { DebugEventLog } from './debug-event-log.ts';
import type { LiveFeed } from './live-feed.ts';
import type { PresenceStore } from './presence-store.ts';
import type { PresenceSubscription } from './presence-subscription.ts';
import { type PresenceWebhook, WEBHOOK_ROUTE_PATH } from './presence-webhook.ts';
import type { WebhookFleet } from './webhook-fleet.ts';

/** Every alarm this construct may create (subscription dead-letter alarms come on top). */
export const ALARM_NAMES = [
  'ReceiverErrors',
  'ReceiverThrottles',
  'Api5xx',
  'PublishFailures',
  'SecretFailures',
  'InternalErrors',
  'RefusedCallbacks',
  'Throttled',
  'WrongSecrets',
  'CanaryArrivals',
  'ReconcilerErrors',
  'ReconcilerDeadLetters',
  'SweepMissing',
  'Unregistered',
  'DeployRegistrationFailures',
  'DriftReported',
  'NotChecked',
  'CheckFailures',
  'Disconnected',
  'ExpiringSoon',
  'PaymentIssues',
  'PresenceStateErrors',
  'PresenceStateDeadLetters',
  'PresenceStateBacklog',
  'PresenceStateFailures',
  'PresenceStateDeliveryDeadLetters',
  'DebugEventLogDeadLetters',
  'LiveFeedDeadLetters',
] as const;
export type AlarmName = (typeof ALARM_NAMES)[number];

const WITH_FLEET = 'with Z-API registration on (registerWebhook)';
/** When the alarms that not every deployment has exist. */
const ALARM_CONDITIONS: Partial<Record<AlarmName, string>> = {
  ReconcilerErrors: WITH_FLEET,
  ReconcilerDeadLetters: WITH_FLEET,
  SweepMissing: WITH_FLEET,
  Unregistered: WITH_FLEET,
  NotChecked: WITH_FLEET,
  CheckFailures: WITH_FLEET,
  DeployRegistrationFailures: WITH_FLEET,
  Disconnected: WITH_FLEET,
  ExpiringSoon: WITH_FLEET,
  PaymentIssues: WITH_FLEET,
  DriftReported: "with driftPolicy 'alert'",
  CanaryArrivals: 'with the canary (canary)',
  PresenceStateErrors: 'with the presence store (presenceStore)',
  PresenceStateDeadLetters: 'with the presence store (presenceStore)',
  PresenceStateBacklog: 'with the presence store (presenceStore)',
  PresenceStateFailures: 'with the presence store (presenceStore)',
  PresenceStateDeliveryDeadLetters: 'with the presence store (presenceStore)',
  DebugEventLogDeadLetters: 'with the debug event log (debugEventLog)',
  LiveFeedDeadLetters: 'with the live feed (liveFeed)',
};

export interface PresenceMonitoringProps {
  readonly webhook: PresenceWebhook;
  /** The fleet reconciler, when Z-API registration is on. */
  readonly fleet?: WebhookFleet;
  /** The presence store, when on. */
  readonly store?: PresenceStore;
  /** The canary, when on. */
  readonly canary?: PresenceCanary;
  /** The debug event log, when on (its subscription's dead-letter alarm is named as the log's). */
  readonly debugEventLog?: DebugEventLog;
  /** The live feed, when on. */
  readonly feed?: LiveFeed;
  /**
   * E-mail address subscribed to the alarm topic (confirm the subscription e-mail).
   * @default - none; subscribe anything to `alarmTopic`
   */
  readonly alarmEmail?: string;
  /**
   * Thresholds replacing the defaults, by alarm name: 1 for every alarm but WrongSecrets (60 in 5
   * minutes); CanaryArrivals has none (it fires on silence).
   */
  readonly alarmThresholds?: Readonly<Partial<Record<AlarmName, number>>>;
  /**
   * A CloudWatch dashboard with the traffic, the fleet and every alarm: $3 a month beyond the account's
   * first three dashboards. Its traffic graphs per status and reason need `detailedMetrics` on the webhook.
   * @default false
   */
  readonly dashboard?: boolean;
  /** @default - generated */
  readonly dashboardName?: string;
}

const PERIOD = Duration.minutes(1);

// What an alarm's e-mail says: what happened, where to look (the log group or queue by its name, which
// CloudFormation fills in, and the app's stack output when there is one), and the first command or Logs
// Insights query to run; for the fleet's per-instance alarms, the query that lists the instances.
/** `aws logs tail` of a log group over the last half hour, filtered. */
const tail = (group: ILogGroup, pattern?: string) =>
  `aws logs tail ${group.logGroupName} --since 30m${pattern === undefined ? '' : ` --filter-pattern '${pattern}'`}`;
/** A CloudWatch Logs Insights query on a log group. */
const insights = (group: ILogGroup, query: string) => `Logs Insights on ${group.logGroupName}: ${query}`;
/**
 * The instances of the fleet's per-instance lines (Lambda's JSON log format puts each under `message`),
 * one row each with its latest fields, however many sweeps the query's time range holds.
 */
const instances = (group: ILogGroup, filter: string, fields = ['code', 'error']) =>
  insights(
    group,
    `filter ${filter} | stats max(@timestamp) as last, ${fields.map((f) => `latest(message.${f}) as ${f}`).join(', ')} by message.instanceId | sort last desc | limit 1000`,
  );
/** Reads up to 10 messages of a queue without taking them (they stay visible). */
const peek = (queue: IQueue) =>
  `aws sqs receive-message --queue-url ${queue.queueUrl} --max-number-of-messages 10 --visibility-timeout 0 --message-attribute-names All`;

/** The metric counting requests API Gateway refused with 429 (a metric filter on the access log). */
export const THROTTLED_METRIC = 'ThrottledRequests';
/**
 * The metric counting webhook requests refused before a secret was proven, by API (a metric filter on the
 * access log): a wrong or missing secret (401), and an instance id Z-API never sends (404
 * `unknown-instance`: `a.b`, 65 characters, `a~b`), which the receiver refuses before it looks at the
 * secret. Either way a stranger's request, and each costs a Lambda invocation.
 */
export const UNAUTHENTICATED_METRIC = 'UnauthenticatedRequests';
/**
 * Requests refused before a secret was proven (401, 404 unknown-instance) in 5 minutes that raise
 * WrongSecrets. Z-API itself never sends a wrong secret while the fleet is registered (a rotation keeps
 * the previous master valid for its grace window) nor an id that is not an instance's, and a stray
 * scanner sends a few: 60 is a sustained 0.2 a second, someone trying.
 */
export const WRONG_SECRETS_THRESHOLD = 60;
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

export class PresenceMonitoring extends Construct {
  /** The dashboard, when `dashboard` is true. */
  readonly dashboard?: Dashboard;
  /** Every alarm notifies this topic when it fires, and again when it clears after firing. */
  readonly alarmTopic: Topic;
  /**
   * What every alarm's name starts with (then `-` and the alarm's id: `…-CanaryArrivals`), unique to this
   * construct: the recoveries rule and the topic's policy match the alarms by it.
   */
  readonly alarmNamePrefix: string;
  private readonly alarmList: Alarm[] = [];
  private readonly thresholds: Readonly<Partial<Record<AlarmName, number>>>;

  constructor(scope: Construct, id: string, props: PresenceMonitoringProps) {
    super(scope, id);
    const { webhook, fleet } = props;
    if (props.alarmEmail !== undefined && !EMAIL.test(props.alarmEmail)) {
      throw new Error(`PresenceMonitoring: alarmEmail "${props.alarmEmail}" is not an e-mail address`);
    }
    for (const [name, value] of Object.entries(props.alarmThresholds ?? {})) {
      if (name === 'CanaryArrivals')
        throw new Error(
          'PresenceMonitoring: alarmThresholds: CanaryArrivals has no threshold (it fires when no canary callback arrives); change canaryInterval (canaryIntervalMinutes in the app) instead',
        );
      if (!(ALARM_NAMES as readonly string[]).includes(name))
        throw new Error(
          `PresenceMonitoring: alarmThresholds: "${name}" is not one of ${ALARM_NAMES.join(', ')}`,
        );
      if (!Number.isInteger(value) || (value as number) < 1)
        throw new Error(`PresenceMonitoring: alarmThresholds: ${name} must be a whole number of at least 1`);
    }
    this.thresholds = props.alarmThresholds ?? {};

    this.alarmTopic = new Topic(this, 'AlarmTopic', {
      displayName: 'Z-API chat presence alarms',
      enforceSSL: true,
    });
    this.alarmNamePrefix = Names.uniqueResourceName(this, { maxLength: 120, separator: '-' });
    const stack = Stack.of(this);
    // A topic with a policy of its own (enforceSSL writes one) has no default policy: CloudWatch may
    // publish only what a statement allows, and these alarms only.
    this.alarmTopic.addToResourcePolicy(
      new PolicyStatement({
        sid: 'ThisDeploymentsAlarmsPublish',
        principals: [new ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['sns:Publish'],
        resources: [this.alarmTopic.topicArn],
        conditions: {
          StringEquals: { 'aws:SourceAccount': stack.account },
          ArnLike: {
            'aws:SourceArn': stack.formatArn({
              service: 'cloudwatch',
              resource: 'alarm',
              resourceName: `${this.alarmNamePrefix}-*`,
              arnFormat: ArnFormat.COLON_RESOURCE_NAME,
            }),
          },
        },
      }),
    );
    // An alarm's OK action would also run when it leaves INSUFFICIENT_DATA, which every new alarm does
    // within minutes of a deploy: 20 to 28 "OK" e-mails after a first deploy, more when an option is turned
    // on later. A recovery is an OK that follows an ALARM, so it is told from CloudWatch's state-change
    // event instead (the default bus, free), one e-mail per recovery.
    const field = (path: string) => EventField.fromPath(path);
    const recoveries = new Rule(this, 'AlarmRecoveries', {
      description: 'An alarm of this deployment back to OK after ALARM, to the alarm topic',
      eventPattern: {
        source: ['aws.cloudwatch'],
        detailType: ['CloudWatch Alarm State Change'],
        detail: {
          alarmName: Match.prefix(`${this.alarmNamePrefix}-`),
          state: { value: ['OK'] },
          previousState: { value: ['ALARM'] },
        },
      },
      targets: [
        new SnsTopic(this.alarmTopic, {
          // A role of this rule's publishes, not the topic open to every rule of every account.
          authorizeUsingRole: true,
          message: RuleTargetInput.fromText(
            `OK: ${field('$.detail.alarmName')} is back to OK in ${field('$.region')} at ${field('$.detail.state.timestamp')} (in ALARM since ${field('$.detail.previousState.timestamp')}). ${field('$.detail.state.reason')}`,
          ),
        }),
      ],
    });
    Validations.of(recoveries).acknowledge({
      id: 'Serverless::Serverless-EventBusDLQ',
      reason:
        "A recovery notice is no callback: EventBridge retries its delivery to the topic for 24 hours, and the alarm's state and history in CloudWatch stay the record; a dead-letter queue for it would need an alarm that tells the same topic.",
    });
    Validations.of(this.alarmTopic).acknowledge({
      id: 'AwsSolutions::AwsSolutions-SNS2',
      reason:
        'Alarm notifications carry alarm names and states only; CloudWatch cannot publish to a topic encrypted with the AWS-managed SNS key, and a customer-managed key would cost more than the data is worth.',
    });
    if (props.alarmEmail !== undefined) {
      // Notifications that cannot be delivered are kept, not dropped.
      const undelivered = deadLetterQueue(this, 'UndeliveredNotifications', 'the alarm e-mail subscription');
      this.alarmTopic.addSubscription(
        new EmailSubscription(props.alarmEmail, { deadLetterQueue: undelivered }),
      );
    }

    const ns = webhook.metricsNamespace;
    const custom = (name: string, dimensions: Record<string, string> = {}, statistic = 'Sum') =>
      new Metric({ namespace: ns, metricName: name, dimensionsMap: dimensions, statistic, period: PERIOD });

    // Receiver alarms: any of these means a callback was refused by us or an event did not reach the bus.
    const receiverLog = webhook.receiver.functionLogGroup;
    const accessLog = webhook.accessLogGroup;
    const inReceiverLog = `The receiver's log ${receiverLog.logGroupName} (output ReceiverLogGroup)`;
    const inAccessLog = `the access log ${accessLog.logGroupName} (output AccessLogGroup)`;
    const receiverAlarms = [
      this.alarm(
        'ReceiverErrors',
        webhook.receiver.metricErrors({ period: PERIOD }),
        `The receiver Lambda ${webhook.receiver.functionName} crashed or timed out: those callbacks got a 5xx (Z-API retries). ${inReceiverLog} has the error; first: ${tail(receiverLog, '?ERROR ?timeout')}. A timeout means a dependency held it past its deadline (report it: it should answer 503 first).`,
      ),
      this.alarm(
        'ReceiverThrottles',
        webhook.receiver.metricThrottles({ period: PERIOD }),
        `Lambda throttled the receiver ${webhook.receiver.functionName} (the account's concurrency, or its reservation, is exhausted): Z-API's callbacks got 429 or 5xx meanwhile. First: aws lambda get-account-settings (ConcurrentExecutions) and aws lambda get-function-concurrency --function-name ${webhook.receiver.functionName}; raise the account's quota or receiverReservedConcurrency. Refused requests are in ${inAccessLog}.`,
      ),
      this.alarm(
        'Api5xx',
        webhook.httpApi.metricServerError({ period: PERIOD, statistic: 'Sum' }),
        `The webhook API answered 5xx (Z-API retries). Which requests, in ${inAccessLog}: ${tail(accessLog, '{ $.status = "5*" }')} (lambdaErr: the integration failed). Why, in the receiver's log ${receiverLog.logGroupName} (output ReceiverLogGroup): ${tail(receiverLog, 'ERROR')} (Reason, cause); the alarms PublishFailures, SecretFailures and InternalErrors say which.`,
      ),
      this.alarm(
        'PublishFailures',
        custom(METRIC_NAMES.publishFailures),
        `EventBridge did not accept presence events: 503 answered (Z-API retries). ${inReceiverLog} says why in cause (throttling, access denied, a deleted bus); first: ${tail(receiverLog, '{ $.Reason = "bus-unavailable" }')}`,
      ),
      this.alarm(
        'SecretFailures',
        custom(METRIC_NAMES.secretFailures),
        `The webhook master secret could not be read from SSM, or is not valid: 503 answered (Z-API retries). ${inReceiverLog} names the parameter and, for a bad value, the command that stores a good one; first: ${tail(receiverLog, '{ $.Reason = "secret-unavailable" }')}`,
      ),
      this.alarm(
        'InternalErrors',
        custom(METRIC_NAMES.internalErrors),
        `The receiver hit a bug and answered 500. ${inReceiverLog} names the error; first: ${tail(receiverLog, '{ $.InternalErrors = 1 }')}. Report it with the requestId.`,
      ),
      this.alarm(
        'RefusedCallbacks',
        custom(METRIC_NAMES.refusedCallbacks),
        `Callbacks that carried a valid secret were refused (400 malformed or invalid body, 413 too large, 415 not JSON): they are lost. Z-API may have changed its payload (docs/events.md), or whoever holds a webhook URL sends something else. ${inReceiverLog} says what (Reason, fields, instanceId); first: ${tail(receiverLog, '{ $.RefusedCallbacks = 1 }')}`,
      ),
      ...this.floodAlarms(webhook, ns),
      ...(props.canary ? [this.canaryAlarm(props.canary, webhook)] : []),
    ];

    if (props.dashboard !== true && props.dashboardName !== undefined) {
      throw new Error('PresenceMonitoring: dashboardName is given but dashboard is not true');
    }
    // Dashboard.
    if (props.dashboard === true) {
      this.dashboard = new Dashboard(this, 'Dashboard', {
        ...(props.dashboardName !== undefined && { dashboardName: props.dashboardName }),
        defaultInterval: Duration.hours(3),
      });
    }
    const detailed = webhook.detailedMetrics;
    this.addWidgets(
      new TextWidget({
        markdown: `# Z-API chat presence\nMetrics namespace \`${ns}\`${fleet ? ` · fleet: every token under \`${fleet.tokenParameterTemplate}\`, swept every ${fleet.sweepInterval.toHumanString()}, drift policy ${fleet.driftPolicy}` : ' · Z-API registration off'}`,
        width: 24,
        height: 2,
      }),
    );
    const fleetAlarms = [
      ...(fleet ? this.fleetAlarms(fleet, ns) : []),
      ...(props.store
        ? [
            this.alarm(
              'PresenceStateErrors',
              props.store.stateFunction.metricErrors({ period: Duration.minutes(5) }),
              `The presence store's state function ${props.store.stateFunction.functionName} crashed or timed out (its records are retried, then dead-lettered): derived events are late. Its log ${props.store.stateFunction.functionLogGroup.logGroupName}; first: ${tail(props.store.stateFunction.functionLogGroup, '?ERROR ?timeout')}`,
            ),
            // Its records failing (DynamoDB, EventBridge or SQS unavailable): handed back for a retry, so
            // Lambda's Errors stays at zero. Two periods in a row: a blip retried at once is no outage.
            this.alarm(
              'PresenceStateFailures',
              new Metric({
                namespace: ns,
                metricName: STATE_FAILURES_METRIC,
                statistic: 'Sum',
                period: Duration.minutes(5),
              }),
              `Presence events or expiry checks kept failing for 10 minutes (DynamoDB, EventBridge or SQS unavailable, or denied): derived events are late; they are retried for about an hour, then dead-lettered. The presence store's state function's log ${props.store.stateFunction.functionLogGroup.logGroupName} names the error; first: ${tail(props.store.stateFunction.functionLogGroup, 'ERROR')}`,
              { evaluationPeriods: 2 },
            ),
            this.alarm(
              'PresenceStateDeadLetters',
              props.store.deadLetters.metricApproximateNumberOfMessagesVisible({
                period: Duration.minutes(5),
                statistic: 'Maximum',
              }),
              `Presence events or expiry checks the presence store's state function gave up on after 20 receives (about an hour): the chat state missed them. They are in the queue ${props.store.deadLetters.queueName}; read them: ${peek(props.store.deadLetters)}. Why: the state function's log ${props.store.stateFunction.functionLogGroup.logGroupName}. Once fixed, move them back: aws sqs start-message-move-task --source-arn ${props.store.deadLetters.queueArn}`,
            ),
            this.alarm(
              'PresenceStateBacklog',
              new MathExpression({
                expression: 'MAX([events, expiry])',
                usingMetrics: {
                  events: props.store.eventsQueue.metricApproximateAgeOfOldestMessage({
                    period: Duration.minutes(5),
                    statistic: 'Maximum',
                  }),
                  expiry: props.store.expiryQueue.metricApproximateAgeOfOldestMessage({
                    period: Duration.minutes(5),
                    statistic: 'Maximum',
                  }),
                },
                period: Duration.minutes(5),
              }),
              `A presence event or expiry check waited over ${BACKLOG_ALARM_SECONDS / 60} minutes without being received: the presence store's state function falls behind, derived events are late. First, for each of its queues (${props.store.eventsQueue.queueUrl} and ${props.store.expiryQueue.queueUrl}): aws sqs get-queue-attributes --attribute-names All --queue-url <the queue's URL>; then the state function's concurrency and its log ${props.store.stateFunction.functionLogGroup.logGroupName} (failing records are PresenceStateFailures)`,
              { defaultThreshold: BACKLOG_ALARM_SECONDS },
            ),
          ]
        : []),
      ...(props.feed
        ? [
            this.alarm(
              'LiveFeedDeadLetters',
              props.feed.deadLetters.metricApproximateNumberOfMessagesVisible({
                period: Duration.minutes(5),
                statistic: 'Maximum',
              }),
              `Live feed: events agents' views did not get (AppSync refused them through Lambda's retries, or the publisher refused one: FeedRefused). Views correct themselves from the snapshot. Queue ${props.feed.deadLetters.queueName} (output LiveFeedDeadLetterQueueUrl): ${peek(props.feed.deadLetters)}. Why: ${tail(props.feed.publisher.functionLogGroup, 'WARN')} (output LiveFeedPublisherLogGroup).`,
            ),
          ]
        : []),
    ];
    this.addWidgets(
      new AlarmStatusWidget({
        title: 'Alarms',
        alarms: [...receiverAlarms, ...fleetAlarms],
        width: 24,
        height: fleetAlarms.length > 0 ? 5 : 3,
      }),
    );
    // Traffic per status and reason: metrics only with detailedMetrics (Logs Insights reads the same
    // fields from the receiver's log otherwise).
    if (detailed) {
      this.addWidgets(
        graph(
          'Accepted events per status',
          PRESENCE_STATUSES.map((status) =>
            custom(METRIC_NAMES.accepted, { Status: status }).with({ label: status }),
          ),
        ),
        graph(
          'Rejected webhooks per reason',
          REJECT_REASONS.map((reason) =>
            custom(METRIC_NAMES.rejected, { Reason: reason }).with({ label: reason }),
          ),
        ),
      );
    }
    this.addWidgets(
      ...(detailed
        ? [
            graph(
              'Publish latency p99 (ms)',
              PRESENCE_STATUSES.map((status) =>
                custom(METRIC_NAMES.publishLatency, { Status: status }, 'p99').with({ label: status }),
              ),
            ),
          ]
        : []),
      graph('Failures', [
        custom(METRIC_NAMES.publishFailures).with({ label: 'publish failures' }),
        custom(METRIC_NAMES.secretFailures).with({ label: 'secret failures' }),
        custom(METRIC_NAMES.internalErrors).with({ label: 'internal errors (500)' }),
        webhook.receiver.metricErrors({ period: PERIOD, label: 'Lambda errors' }),
        webhook.receiver.metricThrottles({ period: PERIOD, label: 'Lambda throttles' }),
      ]),
    );
    this.addWidgets(
      graph('API requests', [
        webhook.httpApi.metricCount({ period: PERIOD, statistic: 'Sum', label: 'requests' }),
        webhook.httpApi.metricClientError({ period: PERIOD, statistic: 'Sum', label: '4xx' }),
        webhook.httpApi.metricServerError({ period: PERIOD, statistic: 'Sum', label: '5xx' }),
      ]),
      graph('Receiver duration and concurrency', [
        webhook.receiver.metricDuration({ period: PERIOD, statistic: 'p99', label: 'duration p99 (ms)' }),
        webhook.receiver.metric('ConcurrentExecutions', {
          period: PERIOD,
          statistic: 'Maximum',
          label: 'concurrency max',
        }),
      ]),
    );
    if (props.canary) {
      const canary = props.canary;
      this.addWidgets(
        graph('Canary: arrivals on the bus and failed runs', [
          canary.metricArrivals().with({ label: 'arrivals' }),
          canary.metricFailures(),
        ]),
        ...(detailed
          ? [
              graph('Canary: send to bus (ms)', [
                canary.metricLatency('p50'),
                canary.metricLatency('Maximum'),
              ]),
            ]
          : []),
      );
    }
    this.addWidgets(
      graph('Refused before the receiver (429), and before a secret was proven (401, 404)', [
        this.throttledMetric(webhook, ns).with({ label: '429 (stage throttle)' }),
        this.accessLogMetric(webhook, ns, UNAUTHENTICATED_METRIC, PERIOD).with({
          label: '401 wrong secret, 404 unknown instance',
        }),
      ]),
    );
    if (fleet) this.fleetWidgets(fleet, ns, detailed);

    // Dead-letter queues of every subscription, now (the presence store's among them) and later.
    webhook.forEachSubscription((subscription) => this.watchSubscription(subscription, props));

    // A threshold for an alarm this deployment does not have would otherwise be ignored without a word.
    const created = new Set(this.alarmList.map((alarm) => alarm.node.id));
    const absent = Object.keys(this.thresholds).filter((name) => !created.has(name));
    if (absent.length > 0) {
      throw new Error(
        `PresenceMonitoring: alarmThresholds: ${absent
          .map((name) => `${name} is an alarm only ${ALARM_CONDITIONS[name as AlarmName] ?? 'elsewhere'}`)
          .join('; ')}`,
      );
    }
  }

  /** Every alarm created so far. */
  get alarms(): readonly Alarm[] {
    return [...this.alarmList];
  }

  /** Adds widgets to the dashboard, when there is one. */
  private addWidgets(...widgets: IWidget[]): void {
    this.dashboard?.addWidgets(...widgets);
  }

  /** 429s API Gateway answered before the receiver ran, counted from this API's access log. */
  private throttledMetric(webhook: PresenceWebhook, ns: string): Metric {
    return this.accessLogMetric(webhook, ns, THROTTLED_METRIC, PERIOD);
  }

  /** A count of this API's access-log lines (metric filters below), so no two deployments share it. */
  private accessLogMetric(webhook: PresenceWebhook, ns: string, name: string, period: Duration): Metric {
    return new Metric({
      namespace: ns,
      metricName: name,
      dimensionsMap: { ApiId: webhook.httpApi.apiId },
      statistic: 'Sum',
      period,
    });
  }

  /**
   * Someone who knows the hostname: requests the stage throttle refused (429: callbacks of Z-API may be
   * among them), and a spike of requests refused before a secret was proven (401 wrong or no secret, 404
   * an instance id Z-API never sends).
   */
  private floodAlarms(webhook: PresenceWebhook, ns: string): Alarm[] {
    // Only this API's lines: a datapoint only when one happens (no series in a quiet month). Not the live
    // feed's snapshot route: an agent's expired token (401) or the route's own throttle (429) loses no
    // callback. Every other 429 and 401 counts, a line API Gateway wrote before it knew the route included.
    const status = (code: string) => FilterPattern.stringValue('$.status', '=', code);
    const notSnapshot = FilterPattern.stringValue('$.route', '!=', SNAPSHOT_ROUTE_KEY);
    new MetricFilter(this, 'ThrottledFilter', {
      logGroup: webhook.accessLogGroup,
      filterPattern: FilterPattern.all(status('429'), notSnapshot),
      metricNamespace: ns,
      metricName: THROTTLED_METRIC,
      metricValue: '1',
      dimensions: { ApiId: '$.api' },
    });
    // The receiver's 404 on the webhook route is an id that is no Z-API instance's, refused before the
    // secret is looked at; the read route's 404 (an unknown chat) and API Gateway's own (no route) are not.
    new MetricFilter(this, 'UnauthenticatedFilter', {
      logGroup: webhook.accessLogGroup,
      filterPattern: FilterPattern.any(
        FilterPattern.all(status('401'), notSnapshot),
        FilterPattern.all(
          status('404'),
          FilterPattern.stringValue('$.route', '=', `POST ${WEBHOOK_ROUTE_PATH}`),
        ),
      ),
      metricNamespace: ns,
      metricName: UNAUTHENTICATED_METRIC,
      metricValue: '1',
      dimensions: { ApiId: '$.api' },
    });
    return [
      this.alarm(
        'Throttled',
        this.throttledMetric(webhook, ns),
        `API Gateway refused webhook requests with 429 before the receiver ran (the stage throttle, throttleRateLimit/throttleBurstLimit, is exhausted): callbacks from Z-API may be among them and are lost unless Z-API retries. Who sent them, in the access log ${webhook.accessLogGroup.logGroupName} (output AccessLogGroup): ${insights(webhook.accessLogGroup, `filter status = "429" and route != "${SNAPSHOT_ROUTE_KEY}" | stats count(*) by ip | sort count(*) desc`)}. One source address is a flood (docs/security.md, "Someone who knows the hostname"); Z-API's addresses mean real traffic above the throttle (raise throttleRateLimit).`,
      ),
      this.alarm(
        'WrongSecrets',
        this.accessLogMetric(webhook, ns, UNAUTHENTICATED_METRIC, Duration.minutes(5)),
        `At least ${this.thresholds.WrongSecrets ?? WRONG_SECRETS_THRESHOLD} webhook requests in 5 minutes were refused before a secret was proven: a wrong or no secret (401), or an instance id Z-API never sends (404 unknown-instance). Who, in the access log ${webhook.accessLogGroup.logGroupName} (output AccessLogGroup): ${insights(webhook.accessLogGroup, `filter (status = "401" and route != "${SNAPSHOT_ROUTE_KEY}") or (status = "404" and route = "POST ${WEBHOOK_ROUTE_PATH}") | stats count(*) by ip, status`)}; the receiver's log (output ReceiverLogGroup) has each refusal's Reason. One source is someone trying URLs (docs/security.md); Z-API's addresses with 401s mean instances registered with an old master (a rotation past its grace window: run the reconciler).`,
        { defaultThreshold: WRONG_SECRETS_THRESHOLD },
      ),
    ];
  }

  /**
   * No canary callback arrived on the bus: the path Z-API's callbacks take is broken somewhere.
   *
   * Quiet after a first deploy, true from then on. Missing data is not breaching (an alarm that treats it
   * so goes to ALARM before the first run): the alarm reads an expression that is missing, so the alarm
   * keeps its state (INSUFFICIENT_DATA at first), only while neither the canary nor an arrival left a
   * datapoint in its evaluation range, which CloudWatch makes longer than its periods. Once one did, the
   * expression has a value every minute: the arrivals (zero where none), or zero where the canary ran and
   * nothing arrived after two runs (a first arrival may land in the minute after its run). So a path
   * broken from the first deploy alarms once the canary has run twice, and one that
   * breaks later, or a schedule that stops, alarms while the last datapoint is still in range; the alarm
   * then stays in ALARM (missing data keeps it) until arrivals come back. FILL only ever fills a series
   * that has a datapoint in range. Replayed minute by minute in test/lib/first-hour.test.ts.
   */
  private canaryAlarm(canary: PresenceCanary, webhook: PresenceWebhook): Alarm {
    const minutes = canary.alarmMinutes;
    return this.alarm(
      'CanaryArrivals',
      new MathExpression({
        expression: armedSilence('arrivals', 'runs', { armedBy: 2 }),
        usingMetrics: {
          arrivals: canary.metricArrivals(),
          runs: canary.canaryFunction.metricInvocations({ period: PERIOD, statistic: 'Sum' }),
        },
        period: PERIOD,
      }),
      `Canary: no canary callback arrived on the bus for ${minutes} minutes (it runs every ${canary.interval.toHumanString()}): Z-API's callbacks are probably not becoming events either. Check, in order: 1. the canary function's log (output CanaryLogGroup): ${tail(canary.canaryFunction.functionLogGroup)}; its last line names the status it got (401 secret, 403/404 route or stage, 429 throttle, 503 bus or SSM, 5xx receiver, timeout); 2. the receiver's log ${webhook.receiver.functionLogGroup.logGroupName} (output ReceiverLogGroup) and alarms; 3. the API: the route POST /instances/{instanceId}/presence, the $default stage; 4. the bus and the canary arrival rule; 5. the canary schedule rule ${canary.scheduleRule.ruleName} (enabled?).`,
      {
        comparison: ComparisonOperator.LESS_THAN_THRESHOLD,
        evaluationPeriods: minutes,
        treatMissingData: TreatMissingData.IGNORE,
        fixedThreshold: 1,
      },
    );
  }

  /** The fleet's alarms: a reconciler that stopped, instances left unregistered, sessions that dropped. */
  private fleetAlarms(fleet: WebhookFleet, ns: string): Alarm[] {
    const F = FLEET_METRICS;
    const interval = fleet.sweepInterval;
    const sweep = (name: string, statistic = 'Maximum') =>
      new Metric({
        namespace: ns,
        metricName: name,
        dimensionsMap: { Trigger: 'sweep', Scope: 'fleet' },
        statistic,
        period: interval,
      });
    const log = fleet.reconciler.functionLogGroup;
    const inLog = `the reconciler's log ${log.logGroupName} (output ReconcilerLogGroup)`;
    const alarms = [
      this.alarm(
        'ReconcilerErrors',
        fleet.reconciler.metricErrors({ period: Duration.minutes(5) }),
        `The fleet reconciler ${fleet.reconciler.functionName} failed as a whole (the token path or the master could not be read): no instance was checked. ${capitalize(inLog)} names the parameter; first: ${tail(log, 'ERROR')}`,
      ),
      this.alarm(
        'ReconcilerDeadLetters',
        fleet.reconcilerDeadLetters.metricApproximateNumberOfMessagesVisible({
          period: Duration.minutes(5),
          statistic: 'Maximum',
        }),
        `Reconciler invocations failed after every retry (a sweep, or a run for an SSM change, did not happen). Their events are in the queue ${fleet.reconcilerDeadLetters.queueName}, each with its error: ${peek(fleet.reconcilerDeadLetters)}. Then run a sweep by hand: aws lambda invoke --function-name ${fleet.reconciler.functionName} --payload '{}' --cli-binary-format raw-in-base64-out out.json`,
      ),
      // No sweep started for two intervals: the schedule stopped (a disabled or deleted rule, a target
      // gone). Read from the rule's own invocations (AWS/Events, free); a sweep that starts and fails is
      // ReconcilerErrors. A deploy's registration works through the fleet as a sweep does, so it counts as
      // one: the alarm is quiet until the first scheduled sweep (up to an interval after a first deploy),
      // and a schedule that never starts alarms two intervals after the deploy (see armedSilence).
      this.alarm(
        'SweepMissing',
        new MathExpression({
          expression: armedSilence('sweeps', 'deploys', { counts: true }),
          usingMetrics: {
            sweeps: new Metric({
              namespace: 'AWS/Events',
              metricName: 'Invocations',
              dimensionsMap: { RuleName: fleet.sweepRule.ruleName },
              statistic: 'Sum',
              period: interval,
            }),
            deploys: fleet.registrationHandler.metricInvocations({ period: interval, statistic: 'Sum' }),
          },
          period: interval,
        }),
        `The drift sweep's schedule did not invoke the reconciler in two intervals (${interval.toHumanString()} each): the fleet is not being watched. First: aws events describe-rule --name ${fleet.sweepRule.ruleName} (State ENABLED?) and aws events list-targets-by-rule --rule ${fleet.sweepRule.ruleName}; when it ran: ReconcilerErrors and ${inLog}`,
        {
          comparison: ComparisonOperator.LESS_THAN_THRESHOLD,
          evaluationPeriods: 2,
          treatMissingData: TreatMissingData.IGNORE,
        },
      ),
      this.alarm(
        'Unregistered',
        sweep(F.unregistered),
        `Z-API confirmed instances call another URL or none at the end of two consecutive sweeps: their callbacks do not come here. List them, with what failed, from ${inLog}: ${instances(log, 'message.action = "failed" and ispresent(message.found) and message.found != "right"', ['found', 'foundHost', 'code'])}`,
        { evaluationPeriods: 2 },
      ),
      // One sweep that runs out of time (Z-API slowed it down) is no fact about the instances: the next
      // sweep asks again. Three in a row is a fleet the sweep cannot cover.
      this.alarm(
        'NotChecked',
        sweep(F.notChecked),
        `Instances were not checked in three consecutive sweeps (Z-API's rate limit or the fleet's size ran the sweep out of time). List them from ${inLog}: ${instances(log, 'message.action = "notChecked"', ['trigger'])}; a line "the run's deadline came before the token parameters were listed to the end" means instances after it were not even listed, and "Z-API limited the request rate (429)" whether Z-API answered 429. Raise zapiRequestsPerSecond if Z-API allows it, or reconcilerTimeoutSeconds.`,
        { evaluationPeriods: 3 },
      ),
      // An instance Z-API would not answer for (a token it refuses, none in SSM, errors) is not known to be
      // registered: after two sweeps, that is a fact worth a page (Unregistered counts only what Z-API said).
      this.alarm(
        'CheckFailures',
        sweep(F.failed),
        `Instances could not be checked at the end of two consecutive sweeps: Z-API refused their token (401/404), SSM has none, or Z-API kept failing; whether Z-API calls this endpoint for them is unknown (one Z-API said calls elsewhere is Unregistered's). List them with their code (docs/operations.md, Troubleshooting) from ${inLog}: ${instances(log, 'message.action = "failed" and (not ispresent(message.found) or message.found = "right")')}`,
        { evaluationPeriods: 2 },
      ),
      // At a deploy, either is a fact: an instance Z-API says calls elsewhere, or one it would not answer for
      // (a refused token, none in SSM, Z-API failing): this deploy did not register it. Not one the run
      // had no time to ask (a rate-limit storm ends notChecked): the next sweep does.
      this.alarm(
        'DeployRegistrationFailures',
        new MathExpression({
          expression: 'MAX([unregistered, failed])',
          usingMetrics: Object.fromEntries(
            (['unregistered', 'failed'] as const).map((key) => [
              key,
              new Metric({
                namespace: ns,
                metricName: F[key],
                dimensionsMap: { Trigger: 'deploy', Scope: 'fleet' },
                statistic: 'Maximum',
                period: Duration.minutes(5),
              }),
            ]),
          ),
          period: Duration.minutes(5),
        }),
        `A deploy could not register instances found only in SSM: Z-API said they call another URL or none, refused their token (401/404), SSM has none, or Z-API kept failing (the deploy went on; the next sweep retries). List them with their code from the registration's log ${fleet.registrationHandler.functionLogGroup.logGroupName} (output RegistrationLogGroup): ${instances(fleet.registrationHandler.functionLogGroup, 'message.action = "failed"', ['code', 'found', 'error'])}`,
      ),
      this.alarm(
        'Disconnected',
        sweep(F.disconnected),
        `Instances are not connected to WhatsApp: no presence callback arrives until their QR code is scanned again (Z-API panel). List them from ${inLog}: ${instances(log, 'message.msg like /not connected/', ['trigger'])}`,
      ),
      this.alarm(
        'ExpiringSoon',
        sweep(F.expiringSoon),
        `Instances expire (their Z-API due date) within the warning window: renew them. List them from ${inLog}: ${instances(log, 'message.msg = "instance expires soon"', ['due'])}`,
      ),
      this.alarm(
        'PaymentIssues',
        sweep(F.paymentIssues),
        `Instances' Z-API payment status is not current: check billing in the Z-API panel (or add a status that is fine to currentPaymentStatuses). List them from ${inLog}: ${instances(log, 'message.msg like /payment status/', ['paymentStatus'])}`,
      ),
    ];
    if (fleet.driftPolicy === 'alert') {
      alarms.push(
        this.alarm(
          'DriftReported',
          sweep(F.driftReported),
          `Another URL replaced this endpoint on instances (driftPolicy alert: not repaired): decide who owns their chat-presence webhook. List them, with the other URL's host, from ${inLog}: ${instances(log, 'message.action = "drift-reported"', ['foundHost'])}`,
        ),
      );
    }
    return alarms;
  }

  private fleetWidgets(fleet: WebhookFleet, ns: string, detailed: boolean): void {
    const F = FLEET_METRICS;
    const m = (name: string, label: string, trigger = 'sweep', statistic = 'Maximum') =>
      new Metric({
        namespace: ns,
        metricName: name,
        dimensionsMap: { Trigger: trigger, Scope: 'fleet' },
        statistic,
        period: fleet.sweepInterval,
        label,
      });
    if (!detailed) {
      // Only the alarmed counts are metrics, reported when not zero: an empty graph is a healthy fleet.
      this.addWidgets(
        graph('Fleet: instances needing attention (each sweep; empty when none)', [
          m(F.unregistered, 'unregistered'),
          m(F.failed, 'could not be checked'),
          m(F.notChecked, 'not checked (out of time)'),
          m(F.driftReported, 'drift reported (alert policy)'),
          m(F.disconnected, 'not connected'),
          m(F.expiringSoon, 'expiring soon'),
          m(F.paymentIssues, 'payment not current'),
        ]),
        graph('Reconciler', [
          fleet.reconciler.metricErrors({ period: Duration.minutes(5), label: 'Lambda errors' }),
          fleet.reconciler.metricDuration({
            period: Duration.minutes(5),
            statistic: 'Maximum',
            label: 'duration max (ms)',
          }),
        ]),
      );
      return;
    }
    this.addWidgets(
      graph('Fleet (each sweep)', [
        m(F.fleetSize, 'instances'),
        m(F.registered, 'registered'),
        m(F.healthy, 'healthy (registered and connected)'),
        m(F.unregistered, 'unregistered'),
        m(F.notChecked, 'not checked (out of time)'),
      ]),
      graph('Fleet: drift and failures (each sweep)', [
        m(F.corrected, 'drift corrected'),
        m(F.newlyRegistered, 'registered (new or rotated)'),
        m(F.driftReported, 'drift reported (alert policy)'),
        m(F.failed, 'failed'),
      ]),
    );
    this.addWidgets(
      graph('Fleet: instance health (each sweep)', [
        m(F.disconnected, 'not connected'),
        m(F.expiringSoon, 'expiring soon'),
        m(F.paymentIssues, 'payment not current'),
      ]),
      graph('Reconciler', [
        m(F.durationMs, 'sweep duration (ms)'),
        fleet.reconciler.metricErrors({ period: Duration.minutes(5), label: 'Lambda errors' }),
        new Metric({
          namespace: ns,
          metricName: F.corrected,
          dimensionsMap: { Trigger: 'change', Scope: 'instances' },
          statistic: 'Sum',
          period: Duration.minutes(5),
          label: 'registered on SSM changes',
        }),
      ]),
    );
  }

  private watchSubscription(
    subscription: PresenceSubscription,
    { store, debugEventLog }: Pick<PresenceMonitoringProps, 'store' | 'debugEventLog'>,
  ): void {
    const id = subscription.node.id;
    const queue = subscription.deadLetterQueue;
    const depth = queue.metricApproximateNumberOfMessagesVisible({ period: PERIOD, statistic: 'Maximum' });
    const read = `They are in the queue ${queue.queueName}; read them (ERROR_CODE, ERROR_MESSAGE say why): ${peek(queue)}.`;
    // The presence store's and the debug log's own subscriptions are theirs, not the user's: named so.
    let alarm: Alarm;
    if (store !== undefined && subscription === store.subscription) {
      alarm = this.alarm(
        'PresenceStateDeliveryDeadLetters',
        depth,
        `EventBridge could not deliver presence events to the presence store's events queue after its retries: the chat state missed them. ${read} Once the cause is fixed (that queue's policy or encryption), move them into it: aws sqs start-message-move-task --source-arn ${queue.queueArn} --destination-arn ${store.eventsQueue.queueArn}`,
      );
    } else if (debugEventLog !== undefined && subscription === debugEventLog.subscription) {
      alarm = this.alarm(
        'DebugEventLogDeadLetters',
        depth,
        `EventBridge could not deliver presence events to the debug event log ${debugEventLog.logGroup.logGroupName} after its retries: the log misses them (nothing else does). ${read} Check the log group's resource policy for EventBridge; the events are in the bus's archive.`,
      );
    } else {
      alarm = this.alarm(
        `Subscription${id}DeadLetters`,
        depth,
        `Events for the subscription ${id} (rule ${subscription.rule.ruleName}) could not be delivered to its target after the retries: that subscriber missed them. ${read} Fix the target, then send them again: replay them from the bus's archive (aws events start-replay), or, for a queue target, move them into it (aws sqs start-message-move-task).`,
      );
    }
    this.addWidgets(
      new AlarmStatusWidget({ title: `Subscription ${id}`, alarms: [alarm], width: 6, height: 3 }),
      graph(`Subscription ${id}: dead letters`, [depth.with({ label: 'messages in DLQ' })], 18, 3),
    );
  }

  private alarm(
    id: string,
    metric: IMetric,
    description: string,
    options: {
      comparison?: ComparisonOperator;
      evaluationPeriods?: number;
      treatMissingData?: TreatMissingData;
      /** Used unless alarmThresholds names this alarm. @default 1 */
      defaultThreshold?: number;
      /** The threshold, whatever alarmThresholds says. */
      fixedThreshold?: number;
    } = {},
  ): Alarm {
    const evaluationPeriods = options.evaluationPeriods ?? 1;
    const alarm = new Alarm(this, id, {
      alarmName: `${this.alarmNamePrefix}-${id}`,
      metric,
      alarmDescription: description,
      threshold: options.fixedThreshold ?? this.thresholds[id as AlarmName] ?? options.defaultThreshold ?? 1,
      evaluationPeriods,
      datapointsToAlarm: evaluationPeriods,
      comparisonOperator: options.comparison ?? ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: options.treatMissingData ?? TreatMissingData.NOT_BREACHING,
    });
    // No OK action: recoveries come from the AlarmRecoveries rule (an OK after an ALARM only).
    alarm.addAlarmAction(new SnsAction(this.alarmTopic));
    this.alarmList.push(alarm);
    return alarm;
  }
}

/**
 * The metric math of an alarm on silence (`< 1` over its periods, missing data kept as the state), armed
 * by a first datapoint: `events` (what should keep coming, zero where none came) once it has a datapoint
 * in the evaluation range; otherwise, once `arming` has one (the canary ran, a deploy registered the
 * fleet), zero everywhere (breaching), or the arming datapoints themselves when they `count` as events
 * (a deploy's registration is a sweep); and no value at all while neither has a datapoint, which leaves the
 * alarm as it is (INSUFFICIENT_DATA after a first deploy). FILL is only applied to a series that has a
 * datapoint in range, so what it does with an empty one does not matter.
 *
 * `armedBy` arming datapoints (default 1) are needed before silence counts: the canary's first arrival may
 * land in the minute after its run (a run at :59), or its datapoint be published later than the run's, so
 * one run with no arrival yet is not yet a silence; two runs are (its alarm window holds at least two).
 */
export function armedSilence(
  events: string,
  arming: string,
  options: { counts?: boolean; armedBy?: number } = {},
): string {
  const has = (id: string, datapoints = 1) => `DATAPOINT_COUNT(${id}) > ${datapoints - 1}`;
  const fill = (id: string) => `FILL(${id}, 0)`;
  const armingOnly = options.counts === true ? fill(arming) : `0 * ${fill(arming)}`;
  const eventsToo =
    options.counts === true
      ? `IF(${has(arming)}, ${fill(events)} + ${fill(arming)}, ${fill(events)})`
      : fill(events);
  return `IF(${has(events)}, ${eventsToo}, IF(${has(arming, options.armedBy ?? 1)}, ${armingOnly}))`;
}

const capitalize = (text: string) => text.charAt(0).toUpperCase() + text.slice(1);

function graph(title: string, metrics: IMetric[], width = 12, height = 6): GraphWidget {
  return new GraphWidget({ title, left: metrics, width, height, stacked: false });
}
