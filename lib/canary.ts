/**
 * L3 construct: the canary that proves the stack's own path every few minutes.
 *
 *   schedule (every `interval`) -> canary Lambda -> HTTPS POST {api}/instances/zapi-presence-canary/presence
 *     -> API Gateway (route, stage throttle) -> receiver (secret, contract) -> bus, source zapi.chat-presence.canary
 *     -> arrival rule (that source and this API only) -> arrival Lambda (its invocations are the arrivals;
 *        it logs the latency from send, CanaryLatency, a metric only with detailed metrics)
 *
 * The monitoring alarms when the arrival function is not invoked for `arrivalAlarmMinutes(interval)`
 * minutes (AWS/Lambda Invocations: a free metric, so the canary adds no metric series in a healthy month). No rule on
 * the presence source (subscriptions, the presence store, the archive) matches the canary's events.
 */
import { Duration, Validations } from 'aws-cdk-lib';
import { Metric } from 'aws-cdk-lib/aws-cloudwatch';
import { Rule, Schedule } from 'aws-cdk-lib/aws-events';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import { Grant } from 'aws-cdk-lib/aws-iam';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import type { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import {
  arrivalAlarmMinutes,
  CANARY_DEFAULTS,
  CANARY_DIMENSION,
  CANARY_ENV,
  CANARY_METRICS,
} from '../functions/canary/settings.ts';
import { RECEIVER_DEFAULTS } from '../functions/presence-webhook/settings.ts';
import { CANARY_EVENT_SOURCE } from '../functions/shared/contract/presence-contract.ts';
import { PresenceFunction } from './presence-function.ts';
import type { PresenceWebhook } from './presence-webhook.ts';

export interface PresenceCanaryProps {
  readonly webhook: PresenceWebhook;
  /**
   * Time between two runs, whole minutes from 1 to 6 (the arrival alarm tolerates one failed run and
   * fires within 15 minutes of the last arrival).
   * @default Duration.minutes(5)
   */
  readonly interval?: Duration;
  /** @default RetentionDays.ONE_YEAR */
  readonly logRetention?: RetentionDays;
  /** @default - CloudWatch Logs' own encryption */
  readonly logEncryptionKey?: IKey;
}

export class PresenceCanary extends Construct {
  /** POSTs the canary callback through the public URL; fails (Lambda `Errors`) on any non-2xx. */
  readonly canaryFunction: PresenceFunction;
  /** Times each canary event's arrival on the bus. */
  readonly arrivalFunction: PresenceFunction;
  /** Runs the canary every `interval`. */
  readonly scheduleRule: Rule;
  /** On the presence bus: the canary source only. */
  readonly arrivalRule: Rule;
  readonly interval: Duration;
  /** Minutes without an arrival before the arrival alarm fires. */
  readonly alarmMinutes: number;
  private readonly namespace: string;
  private readonly apiId: string;

  constructor(scope: Construct, id: string, props: PresenceCanaryProps) {
    super(scope, id);
    const problems = presenceCanaryProblems(props);
    if (problems.length > 0) throw new Error(`PresenceCanary: ${problems.join('; ')}`);
    const { webhook } = props;
    this.interval = props.interval ?? Duration.minutes(CANARY_DEFAULTS.intervalMinutes);
    this.alarmMinutes = arrivalAlarmMinutes(this.interval.toMinutes());
    this.namespace = webhook.metricsNamespace;
    this.apiId = webhook.httpApi.apiId;
    const logs = {
      ...(props.logRetention !== undefined && { logRetentionDays: props.logRetention }),
      ...(props.logEncryptionKey !== undefined && { logEncryptionKey: props.logEncryptionKey }),
    };
    const E = CANARY_ENV;

    this.canaryFunction = new PresenceFunction(this, 'Function', {
      function: 'canary',
      description: 'Z-API chat presence canary: one callback through the public webhook URL',
      memorySize: CANARY_DEFAULTS.memoryMb,
      timeout: Duration.seconds(CANARY_DEFAULTS.timeoutSeconds),
      // The next scheduled run is the retry: a failed run is reported, not repeated.
      retryAttempts: 0,
      environment: {
        [E.webhookBaseUrl]: webhook.baseUrl,
        [E.secretParameterName]: webhook.webhookSecretParameter.parameterName,
        [E.metricsNamespace]: this.namespace,
        [E.apiId]: this.apiId,
        [E.requestTimeoutMs]: String(CANARY_DEFAULTS.requestTimeoutMs),
        [E.sdkAttemptTimeoutMs]: String(RECEIVER_DEFAULTS.sdkAttemptTimeoutMs),
        [E.sdkMaxAttempts]: String(RECEIVER_DEFAULTS.sdkMaxAttempts),
      },
      ...logs,
    });
    // The master only, one action: the canary derives its instance's secret as any instance's.
    Grant.addToPrincipal({
      grantee: this.canaryFunction,
      actions: ['ssm:GetParameter'],
      resourceArns: [webhook.webhookSecretParameter.parameterArn],
    });
    Validations.of(this.canaryFunction).acknowledge({
      id: 'Serverless::Serverless-LambdaDLQ',
      reason:
        'A failed run is the finding itself: it is logged with its status, counted (CanaryFailures) and seen by the arrival alarm; the next scheduled run is the retry.',
    });
    Validations.of(this.canaryFunction).acknowledge({
      id: 'Serverless::Serverless-LambdaAsyncFailureDestination',
      reason:
        'Its only asynchronous caller is the schedule, and a failed run is reported by the run itself (log line, CanaryFailures) and by the arrival alarm; a failure destination would hold nothing to act on.',
    });
    Validations.of(this.canaryFunction).acknowledge({
      id: 'Serverless::Serverless-LambdaTracing',
      reason:
        'One HTTPS call per run, logged with its status and duration; X-Ray would add cost and a wildcard xray:Put* grant.',
    });

    this.scheduleRule = new Rule(this, 'Schedule', {
      description: `Z-API chat presence: canary every ${this.interval.toHumanString()}`,
      schedule: Schedule.rate(this.interval),
      targets: [
        new LambdaFunction(this.canaryFunction, { retryAttempts: 0, maxEventAge: Duration.minutes(1) }),
      ],
    });
    Validations.of(this.scheduleRule).acknowledge({
      id: 'Serverless::Serverless-EventBusDLQ',
      reason:
        'A schedule tick that cannot invoke the canary is a run that did not happen: the arrival alarm reports the silence; a queue of missed ticks would hold nothing to replay.',
    });

    this.arrivalFunction = new PresenceFunction(this, 'Arrival', {
      function: 'canaryArrival',
      description: 'Z-API chat presence canary: times each canary event on the bus',
      memorySize: 128,
      timeout: Duration.seconds(10),
      environment: {
        [E.metricsNamespace]: this.namespace,
        [E.apiId]: this.apiId,
        ...(webhook.detailedMetrics && { [E.detailedMetrics]: 'true' }),
      },
      ...logs,
    });
    Validations.of(this.arrivalFunction).acknowledge({
      id: 'Serverless::Serverless-LambdaDLQ',
      reason:
        'An arrival whose invocation fails was still invoked (the alarm counts invocations); one that cannot be delivered is a missing datapoint, which the arrival alarm reports; a dead-letter queue would keep a stale measurement.',
    });
    Validations.of(this.arrivalFunction).acknowledge({
      id: 'Serverless::Serverless-LambdaTracing',
      reason: 'Writes one log line per canary event and calls nothing.',
    });
    this.arrivalRule = new Rule(this, 'ArrivalRule', {
      description: 'Z-API chat presence: canary events (their own source) to the arrival timer',
      eventBus: webhook.eventBus,
      // This API's canary only: deployments may share a bus.
      eventPattern: { source: [CANARY_EVENT_SOURCE], detail: { canary: { apiId: [this.apiId] } } },
      targets: [
        new LambdaFunction(this.arrivalFunction, {
          // A late arrival is still an arrival, but not one older than the alarm's window.
          retryAttempts: 3,
          maxEventAge: Duration.minutes(this.alarmMinutes),
        }),
      ],
    });
    Validations.of(this.arrivalRule).acknowledge({
      id: 'Serverless::Serverless-EventBusDLQ',
      reason:
        'An arrival that cannot be delivered to the timer is a missing datapoint, which the arrival alarm reports; a dead-letter queue would keep a stale measurement.',
    });
  }

  /**
   * Canary callbacks that arrived on the bus, per minute: the arrival function's invocations (only the
   * arrival rule invokes it, for this API's canary events).
   */
  metricArrivals(): Metric {
    // No label: an alarm on a labelled metric is written as a metric query, not as the metric itself.
    return this.arrivalFunction.metricInvocations({ period: Duration.minutes(1), statistic: 'Sum' });
  }

  /** Milliseconds from the canary's send to its arrival on the bus (reported with detailed metrics only). */
  metricLatency(statistic = 'p50'): Metric {
    return this.latencyMetric(statistic).with({ label: `latency ${statistic} (ms)` });
  }

  /** Failed runs per minute, all statuses (each status is its own series: `Status` dimension). */
  metricFailures(): Metric {
    return this.canaryFunction.metricErrors({ period: Duration.minutes(1), label: 'failed runs' });
  }

  private latencyMetric(statistic: string): Metric {
    return new Metric({
      namespace: this.namespace,
      metricName: CANARY_METRICS.latency,
      dimensionsMap: { [CANARY_DIMENSION]: this.apiId },
      statistic,
      period: Duration.minutes(1),
    });
  }
}

/** What is wrong with the props (empty when nothing is). */
export function presenceCanaryProblems(props: Pick<PresenceCanaryProps, 'interval'>): string[] {
  if (props.interval === undefined) return [];
  const minutes = props.interval.toSeconds() / 60;
  const { minIntervalMinutes: min, maxIntervalMinutes: max } = CANARY_DEFAULTS;
  return Number.isInteger(minutes) && minutes >= min && minutes <= max
    ? []
    : [
        `canaryInterval: must be whole minutes from ${min} to ${max} (the arrival alarm tolerates one failed run and fires within 15 minutes of the last arrival), got ${minutes} minutes; e.g. Duration.minutes(5)`,
      ];
}
