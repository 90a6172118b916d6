/**
 * Operations: alarms on everything that can lose or delay an event or stop callbacks silently, a
 * notification topic every alarm goes to (its ARN is a stack output: subscribe e-mail, chat or paging to
 * it), and one dashboard with traffic per status, the fleet's health and every alarm.
 */
import { Duration, Validations } from 'aws-cdk-lib';
import {
  Alarm,
  AlarmStatusWidget,
  ComparisonOperator,
  Dashboard,
  GraphWidget,
  type IMetric,
  Metric,
  TextWidget,
  TreatMissingData,
} from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';
import { METRIC_NAMES, REJECT_REASONS } from '../functions/presence-webhook/settings.ts';
import { PRESENCE_STATUSES } from '../functions/shared/contract/presence-contract.ts';
import { FLEET_METRICS } from '../functions/shared/fleet/settings.ts';
import { deadLetterQueue } from './dead-letter-queue.ts';
import type { PresenceStore } from './presence-store.ts';
import type { PresenceSubscription } from './presence-subscription.ts';
import type { PresenceWebhook } from './presence-webhook.ts';
import type { WebhookFleet } from './webhook-fleet.ts';

/** Every alarm this construct may create (subscription dead-letter alarms come on top). */
export const ALARM_NAMES = [
  'ReceiverErrors',
  'ReceiverThrottles',
  'Api5xx',
  'PublishFailures',
  'SecretFailures',
  'InternalErrors',
  'ReconcilerErrors',
  'ReconcilerDeadLetters',
  'SweepMissing',
  'Unregistered',
  'DeployRegistrationFailures',
  'DriftReported',
  'NotChecked',
  'Disconnected',
  'ExpiringSoon',
  'PaymentIssues',
  'PresenceStateErrors',
  'PresenceStateDeadLetters',
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
  DeployRegistrationFailures: WITH_FLEET,
  Disconnected: WITH_FLEET,
  ExpiringSoon: WITH_FLEET,
  PaymentIssues: WITH_FLEET,
  DriftReported: "with driftPolicy 'alert'",
  PresenceStateErrors: 'with the presence store (presenceStore)',
  PresenceStateDeadLetters: 'with the presence store (presenceStore)',
};

export interface PresenceMonitoringProps {
  readonly webhook: PresenceWebhook;
  /** The fleet reconciler, when Z-API registration is on. */
  readonly fleet?: WebhookFleet;
  /** The presence store, when on. */
  readonly store?: PresenceStore;
  /**
   * E-mail address subscribed to the alarm topic (confirm the subscription e-mail).
   * @default - none; subscribe anything to `alarmTopic`
   */
  readonly alarmEmail?: string;
  /** Thresholds replacing the defaults (1 for every alarm), by alarm name. */
  readonly alarmThresholds?: Readonly<Partial<Record<AlarmName, number>>>;
  /** @default - generated */
  readonly dashboardName?: string;
}

const PERIOD = Duration.minutes(1);
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

export class PresenceMonitoring extends Construct {
  readonly dashboard: Dashboard;
  /** Every alarm notifies this topic, when it fires and when it clears. */
  readonly alarmTopic: Topic;
  private readonly alarmList: Alarm[] = [];
  private readonly thresholds: Readonly<Partial<Record<AlarmName, number>>>;

  constructor(scope: Construct, id: string, props: PresenceMonitoringProps) {
    super(scope, id);
    const { webhook, fleet } = props;
    if (props.alarmEmail !== undefined && !EMAIL.test(props.alarmEmail)) {
      throw new Error(`PresenceMonitoring: alarmEmail "${props.alarmEmail}" is not an e-mail address`);
    }
    for (const [name, value] of Object.entries(props.alarmThresholds ?? {})) {
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
    const receiverAlarms = [
      this.alarm(
        'ReceiverErrors',
        webhook.receiver.metricErrors({ period: PERIOD }),
        'Receiver Lambda errors (crashes and timeouts)',
      ),
      this.alarm(
        'ReceiverThrottles',
        webhook.receiver.metricThrottles({ period: PERIOD }),
        'Receiver Lambda throttled (concurrency exhausted)',
      ),
      this.alarm(
        'Api5xx',
        webhook.httpApi.metricServerError({ period: PERIOD, statistic: 'Sum' }),
        'Webhook API answered 5xx to Z-API',
      ),
      this.alarm(
        'PublishFailures',
        custom(METRIC_NAMES.publishFailures),
        'EventBridge did not accept presence events (503 answered)',
      ),
      this.alarm(
        'SecretFailures',
        custom(METRIC_NAMES.secretFailures),
        'The webhook master secret could not be read from SSM, or is not valid (503 answered)',
      ),
      this.alarm(
        'InternalErrors',
        custom(METRIC_NAMES.internalErrors),
        'The receiver hit a bug and answered 500',
      ),
    ];

    // Dashboard.
    this.dashboard = new Dashboard(this, 'Dashboard', {
      ...(props.dashboardName !== undefined && { dashboardName: props.dashboardName }),
      defaultInterval: Duration.hours(3),
    });
    this.dashboard.addWidgets(
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
              'The presence-state function failed (records are retried, then dead-lettered)',
            ),
            this.alarm(
              'PresenceStateDeadLetters',
              props.store.deadLetters.metricApproximateNumberOfMessagesVisible({
                period: Duration.minutes(5),
                statistic: 'Maximum',
              }),
              'Presence events or expiry checks the state function gave up on (the chat state missed them)',
            ),
          ]
        : []),
    ];
    this.dashboard.addWidgets(
      new AlarmStatusWidget({
        title: 'Alarms',
        alarms: [...receiverAlarms, ...fleetAlarms],
        width: 24,
        height: fleetAlarms.length > 0 ? 5 : 3,
      }),
    );
    this.dashboard.addWidgets(
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
    this.dashboard.addWidgets(
      graph(
        'Publish latency p99 (ms)',
        PRESENCE_STATUSES.map((status) =>
          custom(METRIC_NAMES.publishLatency, { Status: status }, 'p99').with({ label: status }),
        ),
      ),
      graph('Failures', [
        custom(METRIC_NAMES.publishFailures).with({ label: 'publish failures' }),
        custom(METRIC_NAMES.secretFailures).with({ label: 'secret failures' }),
        custom(METRIC_NAMES.internalErrors).with({ label: 'internal errors (500)' }),
        webhook.receiver.metricErrors({ period: PERIOD, label: 'Lambda errors' }),
        webhook.receiver.metricThrottles({ period: PERIOD, label: 'Lambda throttles' }),
      ]),
    );
    this.dashboard.addWidgets(
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
    if (fleet) this.fleetWidgets(fleet, ns);

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

    // Dead-letter queues of every subscription, now and later.
    webhook.forEachSubscription((subscription) => this.watchSubscription(subscription));
  }

  /** Every alarm created so far. */
  get alarms(): readonly Alarm[] {
    return [...this.alarmList];
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
    const alarms = [
      this.alarm(
        'ReconcilerErrors',
        fleet.reconciler.metricErrors({ period: Duration.minutes(5) }),
        'The fleet reconciler failed as a whole (the token path or the master could not be read); see its log',
      ),
      this.alarm(
        'ReconcilerDeadLetters',
        fleet.reconcilerDeadLetters.metricApproximateNumberOfMessagesVisible({
          period: Duration.minutes(5),
          statistic: 'Maximum',
        }),
        'Reconciler invocations failed after every retry (their events are in the dead-letter queue)',
      ),
      // No completed sweep for two intervals: the reconciler itself stopped (a disabled rule, a broken
      // role, a crash loop). Missing data is what this alarm is about.
      this.alarm(
        'SweepMissing',
        sweep(F.fleetSize, 'SampleCount'),
        `No drift sweep completed in two intervals (${interval.toHumanString()} each): the fleet is not being watched`,
        {
          comparison: ComparisonOperator.LESS_THAN_THRESHOLD,
          evaluationPeriods: 2,
          treatMissingData: TreatMissingData.BREACHING,
        },
      ),
      this.alarm(
        'Unregistered',
        sweep(F.unregistered),
        'Z-API confirmed instances call another URL or none at the end of two consecutive sweeps: it is not calling this endpoint for them; see the reconciler log for each instance and why',
        { evaluationPeriods: 2 },
      ),
      // One sweep that runs out of time (Z-API slowed it down) is no fact about the instances: the next
      // sweep asks again. Three in a row is a fleet the sweep cannot cover.
      this.alarm(
        'NotChecked',
        sweep(F.notChecked),
        "Instances were not checked in three consecutive sweeps (Z-API's rate limit or the fleet's size ran the sweep out of time): raise zapiRequestsPerSecond if Z-API allows it, or reconcilerTimeoutSeconds; see the reconciler log",
        { evaluationPeriods: 3 },
      ),
      this.alarm(
        'DeployRegistrationFailures',
        new Metric({
          namespace: ns,
          metricName: F.unregistered,
          dimensionsMap: { Trigger: 'deploy', Scope: 'fleet' },
          statistic: 'Maximum',
          period: Duration.minutes(5),
        }),
        'A deploy could not register instances found only in SSM (the deploy went on); see the registration log',
      ),
      this.alarm(
        'Disconnected',
        sweep(F.disconnected),
        'Instances are not connected to WhatsApp: no presence callback arrives until their QR code is scanned again',
      ),
      this.alarm(
        'ExpiringSoon',
        sweep(F.expiringSoon),
        'Instances expire (Z-API due date) within the warning window',
      ),
      this.alarm(
        'PaymentIssues',
        sweep(F.paymentIssues),
        'Instances whose Z-API payment status is not current',
      ),
    ];
    if (fleet.driftPolicy === 'alert') {
      alarms.push(
        this.alarm(
          'DriftReported',
          sweep(F.driftReported),
          'Another URL replaced this endpoint on instances (driftPolicy alert: not repaired)',
        ),
      );
    }
    return alarms;
  }

  private fleetWidgets(fleet: WebhookFleet, ns: string): void {
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
    this.dashboard.addWidgets(
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
    this.dashboard.addWidgets(
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

  private watchSubscription(subscription: PresenceSubscription): void {
    const id = subscription.node.id;
    const depth = subscription.deadLetterQueue.metricApproximateNumberOfMessagesVisible({
      period: PERIOD,
      statistic: 'Maximum',
    });
    const alarm = this.alarm(
      `Subscription${id}DeadLetters`,
      depth,
      `Events for subscription ${id} landed in its dead-letter queue`,
    );
    this.dashboard.addWidgets(
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
    } = {},
  ): Alarm {
    const evaluationPeriods = options.evaluationPeriods ?? 1;
    const alarm = new Alarm(this, id, {
      metric,
      alarmDescription: description,
      threshold: this.thresholds[id as AlarmName] ?? 1,
      evaluationPeriods,
      datapointsToAlarm: evaluationPeriods,
      comparisonOperator: options.comparison ?? ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: options.treatMissingData ?? TreatMissingData.NOT_BREACHING,
    });
    alarm.addAlarmAction(new SnsAction(this.alarmTopic));
    alarm.addOkAction(new SnsAction(this.alarmTopic));
    this.alarmList.push(alarm);
    return alarm;
  }
}

function graph(title: string, metrics: IMetric[], width = 12, height = 6): GraphWidget {
  return new GraphWidget({ title, left: metrics, width, height, stacked: false });
}
