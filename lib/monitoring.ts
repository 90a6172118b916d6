/**
 * Operations: alarms on everything that can lose or delay an event, optional e-mail notifications, and
 * one dashboard with traffic per status and every alarm.
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
import { METRIC_NAMES } from '../functions/presence-webhook/metrics.ts';
import { REJECT_REASONS } from '../functions/presence-webhook/receive.ts';
import { PRESENCE_STATUSES } from '../functions/shared/presence-contract.ts';
import { deadLetterQueue } from './dead-letter-queue.ts';
import type { PresenceSubscription } from './presence-subscription.ts';
import type { PresenceWebhook } from './presence-webhook.ts';

export interface PresenceMonitoringProps {
  readonly webhook: PresenceWebhook;
  /**
   * E-mail address notified when an alarm fires and when it clears (confirm the subscription e-mail).
   * @default - no notifications; alarms still show on the dashboard
   */
  readonly alarmEmail?: string;
  /** @default - generated */
  readonly dashboardName?: string;
}

const PERIOD = Duration.minutes(1);
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

export class PresenceMonitoring extends Construct {
  readonly dashboard: Dashboard;
  /** Notification topic, when an e-mail address was given. */
  readonly topic?: Topic;
  private readonly alarmList: Alarm[] = [];

  constructor(scope: Construct, id: string, props: PresenceMonitoringProps) {
    super(scope, id);
    const { webhook } = props;
    if (props.alarmEmail !== undefined && !EMAIL.test(props.alarmEmail)) {
      throw new Error(`PresenceMonitoring: alarmEmail "${props.alarmEmail}" is not an e-mail address`);
    }

    if (props.alarmEmail !== undefined) {
      this.topic = new Topic(this, 'AlarmTopic', {
        displayName: 'Z-API chat presence alarms',
        enforceSSL: true,
      });
      // Notifications that cannot be delivered are kept, not dropped.
      const undelivered = deadLetterQueue(this, 'UndeliveredNotifications', 'the alarm e-mail subscription');
      this.topic.addSubscription(new EmailSubscription(props.alarmEmail, { deadLetterQueue: undelivered }));
      Validations.of(this.topic).acknowledge({
        id: 'AwsSolutions::AwsSolutions-SNS2',
        reason:
          'Alarm notifications carry alarm names and states only; CloudWatch cannot publish to a topic encrypted with the AWS-managed SNS key, and a customer-managed key would cost more than the data is worth.',
      });
    }

    const ns = webhook.metricsNamespace;
    const custom = (name: string, dimensions: Record<string, string> = {}, statistic = 'Sum') =>
      new Metric({ namespace: ns, metricName: name, dimensionsMap: dimensions, statistic, period: PERIOD });

    // Alarms: any of these means a callback was refused by us or an event did not reach a subscriber.
    const receiverErrors = this.alarm(
      'ReceiverErrors',
      webhook.receiver.metricErrors({ period: PERIOD }),
      'Receiver Lambda errors (crashes and timeouts)',
    );
    const receiverThrottles = this.alarm(
      'ReceiverThrottles',
      webhook.receiver.metricThrottles({ period: PERIOD }),
      'Receiver Lambda throttled (reserved concurrency reached)',
    );
    const api5xx = this.alarm(
      'Api5xx',
      webhook.httpApi.metricServerError({ period: PERIOD, statistic: 'Sum' }),
      'Webhook API answered 5xx to Z-API',
    );
    const publishFailures = this.alarm(
      'PublishFailures',
      custom(METRIC_NAMES.publishFailures),
      'EventBridge did not accept presence events (503 answered)',
    );
    const secretFailures = this.alarm(
      'SecretFailures',
      custom(METRIC_NAMES.secretFailures),
      'The webhook secret could not be read from SSM (503 answered)',
    );
    const internalErrors = this.alarm(
      'InternalErrors',
      custom(METRIC_NAMES.internalErrors),
      'The receiver hit a bug and answered 500',
    );

    // Dashboard.
    this.dashboard = new Dashboard(this, 'Dashboard', {
      ...(props.dashboardName !== undefined && { dashboardName: props.dashboardName }),
      defaultInterval: Duration.hours(3),
    });
    this.dashboard.addWidgets(
      new TextWidget({
        markdown: `# Z-API chat presence\nInstances: ${webhook.instanceIds.join(', ')} · metrics namespace \`${ns}\``,
        width: 24,
        height: 2,
      }),
    );
    this.dashboard.addWidgets(
      new AlarmStatusWidget({
        title: 'Alarms',
        alarms: [receiverErrors, receiverThrottles, api5xx, publishFailures, secretFailures, internalErrors],
        width: 24,
        height: 3,
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

    // Dead-letter queues of every subscription, now and later.
    webhook.forEachSubscription((subscription) => this.watchSubscription(subscription));
  }

  /** Every alarm created so far. */
  get alarms(): readonly Alarm[] {
    return [...this.alarmList];
  }

  private watchSubscription(subscription: PresenceSubscription): void {
    const id = subscription.node.id;
    const depth = subscription.deadLetterQueue.metricApproximateNumberOfMessagesVisible({
      period: PERIOD,
      statistic: 'Maximum',
    });
    const alarm = this.alarm(
      `${id}DeadLetters`,
      depth,
      `Events for subscription ${id} landed in its dead-letter queue`,
    );
    this.dashboard.addWidgets(
      new AlarmStatusWidget({ title: `Subscription ${id}`, alarms: [alarm], width: 6, height: 3 }),
      graph(`Subscription ${id}: dead letters`, [depth.with({ label: 'messages in DLQ' })], 18, 3),
    );
  }

  private alarm(id: string, metric: IMetric, description: string): Alarm {
    const alarm = new Alarm(this, id, {
      metric,
      alarmDescription: description,
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: TreatMissingData.NOT_BREACHING,
    });
    if (this.topic) {
      alarm.addAlarmAction(new SnsAction(this.topic));
      alarm.addOkAction(new SnsAction(this.topic));
    }
    this.alarmList.push(alarm);
    return alarm;
  }
}

function graph(title: string, metrics: IMetric[], width = 12, height = 6): GraphWidget {
  return new GraphWidget({ title, left: metrics, width, height, stacked: false });
}
