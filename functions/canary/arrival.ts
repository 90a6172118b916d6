/**
 * The canary's arrival, timed: a rule on the canary source (and nothing else) invokes this with each
 * canary event on the bus. One EMF line per arrival: CanaryLatency, milliseconds from the canary's send
 * (`detail.canary.sentAt`) to now; its SampleCount is the arrivals the alarm counts. The event's own
 * `time` (EventBridge's, whole seconds) gives the send-to-bus part, logged as `busMs`.
 *
 * An event it cannot time (no or an implausible send time) is logged and not counted: only the canary's
 * own callbacks prove the path.
 */
import { CANARY_EVENT_SOURCE } from '../shared/contract/presence-contract.ts';
import { CANARY_DEFAULTS, CANARY_DIMENSION, CANARY_ENV, CANARY_METRICS } from './settings.ts';

const namespace = process.env[CANARY_ENV.metricsNamespace]?.trim() || CANARY_DEFAULTS.metricsNamespace;
const apiId = process.env[CANARY_ENV.apiId]?.trim() || 'local';

/** Arrivals later than this after their send are not timed (a replay, a clock gone wrong). */
const MAX_AGE_MS = 24 * 3_600_000;
/** Clocks of two AWS services may differ a little; a send from the future beyond this is refused. */
const MAX_SKEW_MS = 60_000;

export interface CanaryBusEvent {
  readonly id?: string;
  readonly source?: string;
  readonly time?: string;
  readonly detail?: { readonly canary?: { readonly sentAt?: unknown; readonly runId?: unknown } };
}

export function arrivalRecord(
  event: CanaryBusEvent,
  now: number,
  settings: { namespace: string; apiId: string } = { namespace, apiId },
): Record<string, unknown> {
  const sentAt = event.detail?.canary?.sentAt;
  const runId =
    typeof event.detail?.canary?.runId === 'string' ? event.detail.canary.runId.slice(0, 64) : undefined;
  if (
    event.source !== CANARY_EVENT_SOURCE ||
    typeof sentAt !== 'number' ||
    !Number.isFinite(sentAt) ||
    sentAt > now + MAX_SKEW_MS ||
    sentAt < now - MAX_AGE_MS
  ) {
    return {
      level: 'WARN',
      msg: 'not a canary arrival that can be timed: not counted',
      source: typeof event.source === 'string' ? event.source.slice(0, 64) : undefined,
      ...(runId !== undefined && { runId }),
    };
  }
  const latency = Math.max(0, now - sentAt);
  const busTime = typeof event.time === 'string' ? Date.parse(event.time) : Number.NaN;
  return {
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
  process.stdout.write(`${JSON.stringify(arrivalRecord(event, Date.now()))}\n`);
}
