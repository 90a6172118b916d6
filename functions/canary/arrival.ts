/**
 * The canary's arrival, timed: a rule on the canary source and this API (and nothing else) invokes this
 * with each canary event on the bus; the arrival alarm counts those invocations (AWS/Lambda Invocations, a
 * free metric). One line per arrival: CanaryLatency, milliseconds from the canary's send
 * (`detail.canary.sentAt`) to now, extracted as a metric only with detailed metrics (a series that reports
 * every few minutes costs $0.30 a month). The event's own `time` (EventBridge's, whole seconds) gives the
 * send-to-bus part, logged as `busMs`.
 *
 * An event it cannot time is logged without a latency: another API's canary (a shared bus; the rule
 * already filters on this API), a replay, no send time, or one over 15 minutes old or a minute in the
 * future. Its invocation still counts as an arrival for the alarm: only the stack's own rule invokes
 * this, and the stack's archive never holds canary events.
 */
import { CANARY_EVENT_SOURCE } from '../shared/contract/presence-contract.ts';
import {
  CANARY_DEFAULTS,
  CANARY_DIMENSION,
  CANARY_ENV,
  CANARY_METRICS,
  MAX_ARRIVAL_AGE_MS,
} from './settings.ts';

const namespace = process.env[CANARY_ENV.metricsNamespace]?.trim() || CANARY_DEFAULTS.metricsNamespace;
const apiId = process.env[CANARY_ENV.apiId]?.trim() || 'local';
const detailed = process.env[CANARY_ENV.detailedMetrics] === 'true';

/** Clocks of two AWS services may differ a little; a send from the future beyond this is refused. */
const MAX_SKEW_MS = 60_000;

export interface CanaryBusEvent {
  readonly id?: string;
  readonly source?: string;
  readonly time?: string;
  /** Set by EventBridge on an archive replay. */
  readonly 'replay-name'?: unknown;
  readonly detail?: {
    readonly canary?: { readonly sentAt?: unknown; readonly runId?: unknown; readonly apiId?: unknown };
  };
}

export function arrivalRecord(
  event: CanaryBusEvent,
  now: number,
  settings: { namespace: string; apiId: string; detailed?: boolean } = { namespace, apiId, detailed },
): Record<string, unknown> {
  const sentAt = event.detail?.canary?.sentAt;
  const runId =
    typeof event.detail?.canary?.runId === 'string' ? event.detail.canary.runId.slice(0, 64) : undefined;
  if (
    event.source !== CANARY_EVENT_SOURCE ||
    // Another deployment's canary on a shared bus (the rule filters on it too), or a replay: neither
    // proves this API's path now.
    event.detail?.canary?.apiId !== settings.apiId ||
    event['replay-name'] !== undefined ||
    // Stryker disable next-line ConditionalExpression: equivalent, Number.isFinite refuses what is not a number (this only narrows the type).
    typeof sentAt !== 'number' ||
    !Number.isFinite(sentAt) ||
    sentAt > now + MAX_SKEW_MS ||
    sentAt < now - MAX_ARRIVAL_AGE_MS
  ) {
    return {
      level: 'WARN',
      msg: 'not a canary arrival that can be timed: no latency',
      source: typeof event.source === 'string' ? event.source.slice(0, 64) : undefined,
      ...(runId !== undefined && { runId }),
    };
  }
  const latency = Math.max(0, now - sentAt);
  const busTime = typeof event.time === 'string' ? Date.parse(event.time) : Number.NaN;
  return {
    ...(settings.detailed === true && {
      _aws: {
        Timestamp: now,
        CloudWatchMetrics: [
          {
            Namespace: settings.namespace,
            Dimensions: [[CANARY_DIMENSION]],
            Metrics: [{ Name: CANARY_METRICS.latency, Unit: 'Milliseconds' }],
          },
        ],
      },
    }),
    msg: 'canary arrived on the bus',
    [CANARY_DIMENSION]: settings.apiId,
    [CANARY_METRICS.latency]: latency,
    // EventBridge's time has whole seconds: the send-to-bus part within a second.
    ...(Number.isFinite(busTime) && { busMs: Math.max(0, busTime - sentAt) }),
    ...(runId !== undefined && { runId }),
  };
}

export async function handler(event: CanaryBusEvent): Promise<void> {
  // Straight to stdout: Lambda's JSON log format would wrap console output, which CloudWatch would not read as EMF.
  // The line is written whatever it says: the invocation itself is what the arrival alarm counts.
  process.stdout.write(`${JSON.stringify(arrivalRecord(event, Date.now()))}\n`);
}
