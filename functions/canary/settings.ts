/**
 * What lib/ and the canary agree on: environment variable names, defaults, metric names and the failure
 * kinds. A leaf: it imports only shared leaves, so lib/ loads nothing of the function's runtime.
 */
import { DEFAULT_METRICS_NAMESPACE } from '../shared/metrics.ts';

export const CANARY_ENV = {
  /** The API's endpoint (`https://{api}.execute-api.{region}.amazonaws.com`); a trailing `/` is fine. */
  webhookBaseUrl: 'WEBHOOK_BASE_URL',
  /** The webhook master secret's SSM parameter (the receiver's). */
  secretParameterName: 'WEBHOOK_SECRET_PARAMETER',
  metricsNamespace: 'METRICS_NAMESPACE',
  /** `true`: each arrival's latency is a metric (CanaryLatency), not only a log line. */
  detailedMetrics: 'DETAILED_METRICS',
  /**
   * The API's id: the `ApiId` dimension of the canary's metrics, and `detail.canary.apiId` of its
   * callbacks, which the arrival rule and timer match, so deployments sharing a bus never count each
   * other's canary.
   */
  apiId: 'CANARY_API_ID',
  /** Longest wait for the webhook's answer. */
  requestTimeoutMs: 'CANARY_REQUEST_TIMEOUT_MS',
  sdkAttemptTimeoutMs: 'SDK_ATTEMPT_TIMEOUT_MS',
  sdkMaxAttempts: 'SDK_MAX_ATTEMPTS',
} as const;

export const CANARY_DEFAULTS = {
  /** Minutes between two runs. */
  intervalMinutes: 5,
  /**
   * Runs may be 1 to 6 minutes apart: the arrival alarm's window (2 × interval + 1 one-minute periods)
   * then tolerates one failed run and fires within 15 minutes of the last arrival.
   */
  minIntervalMinutes: 1,
  maxIntervalMinutes: 6,
  /** The canary function's timeout: the receiver's 10 s, the master's read and room to report. */
  timeoutSeconds: 30,
  memoryMb: 256,
  /** The webhook answers within the receiver's timeout (10 s) and API Gateway's (30 s). */
  requestTimeoutMs: 15_000,
  sdkAttemptTimeoutMs: 2_000,
  sdkMaxAttempts: 2,
  metricsNamespace: DEFAULT_METRICS_NAMESPACE,
} as const;

export const CANARY_METRICS = {
  /**
   * Milliseconds from the canary's send to its arrival on the bus, one per arrival: extracted as a metric
   * only with detailed metrics, always in the arrival's log line. (The arrival alarm counts the arrival
   * function's invocations, a free Lambda metric.)
   */
  latency: 'CanaryLatency',
  /** One per failed run, by `Status` (the HTTP status, or timeout, network, redirect, secret-read). */
  failures: 'CanaryFailures',
} as const;

/** The dimension both canary metrics carry (the API id). */
export const CANARY_DIMENSION = 'ApiId';

/**
 * One-minute periods without an arrival after which the arrival alarm fires: two intervals and one
 * minute, so one failed run alone never alarms (the next run's arrival lands within the window). With
 * intervals up to 6 minutes that is at most 13 periods: the alarm fires at most 14 minutes after the
 * last arrival (the rest of its minute, then 13 empty ones), within 15 with CloudWatch's evaluation.
 */
export function arrivalAlarmMinutes(intervalMinutes: number): number {
  return 2 * intervalMinutes + 1;
}

/**
 * The oldest send an arrival is counted for: a canary event delivered later than this (a redelivery long
 * after, a replay) proves nothing about the path now.
 */
export const MAX_ARRIVAL_AGE_MS = 15 * 60_000;

/** What a failed run blames: each names where to look first. */
export const CANARY_FAILURES = {
  'secret-mismatch':
    "the receiver refused the canary instance's secret (a master rotated in SSM that the receiver has not read yet, or two different master parameters)",
  route: 'the route POST /instances/{instanceId}/presence or the $default stage is gone or changed',
  rejected: 'the receiver refused the canary callback (a contract change)',
  throttled:
    'API Gateway refused the request before the receiver (the stage throttle is exhausted: a flood, or traffic above throttleRateLimit)',
  'bus-unavailable':
    'EventBridge did not accept the event (bus deleted, policy or grant changed, EventBridge down)',
  'secret-unavailable': 'the receiver could not read the master secret from SSM',
  'receiver-error':
    'the receiver crashed, timed out or could not be invoked (a broken invoke permission or integration)',
  redirect: 'something between the canary and the API redirects (a custom domain or proxy)',
  unexpected:
    "an answer no part of the path gives (a 2xx without the receiver's event id: a proxy or another service at that URL)",
  timeout: 'no complete answer before the deadline (the API or the receiver hangs)',
  network: 'the endpoint could not be reached (DNS, TLS, connection refused or reset)',
  'secret-read':
    'the canary could not read the master secret from SSM (its grant, the parameter, SSM itself)',
} as const;
export type CanaryFailure = keyof typeof CANARY_FAILURES;
