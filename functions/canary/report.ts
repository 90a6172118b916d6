/**
 * The canary's log lines, in CloudWatch embedded metric format where they carry a metric:
 *
 *   CanaryFailures  Count         by ApiId, Status   one per failed run (Status: 401, 429, 503, timeout...)
 *   CanaryLatency   Milliseconds  by ApiId           one per arrival on the bus (written by arrival.ts)
 *
 * A healthy run writes one plain line and no metric: a healthy month has one series (CanaryLatency).
 * Never a URL, a secret or an answer's body: the status, the failure's name and the receiver's error word.
 */
import type { ProbeOutcome } from './probe.ts';
import { CANARY_DIMENSION, CANARY_METRICS } from './settings.ts';

export function outcomeRecord(
  outcome: ProbeOutcome,
  context: { namespace: string; apiId: string; timestamp: number; requestId: string },
): Record<string, unknown> {
  if (outcome.ok) {
    return {
      msg: 'canary run: the webhook accepted the canary callback',
      status: outcome.status,
      eventId: outcome.eventId,
      runId: outcome.runId,
      ms: Math.round(outcome.ms),
      requestId: context.requestId,
    };
  }
  return {
    _aws: {
      Timestamp: context.timestamp,
      CloudWatchMetrics: [
        {
          Namespace: context.namespace,
          Dimensions: [[CANARY_DIMENSION, 'Status']],
          Metrics: [{ Name: CANARY_METRICS.failures, Unit: 'Count' }],
        },
      ],
    },
    level: 'ERROR',
    msg: `canary run failed: ${outcome.status}: ${outcome.message}`,
    [CANARY_DIMENSION]: context.apiId,
    Status: String(outcome.status),
    [CANARY_METRICS.failures]: 1,
    failure: outcome.failure,
    ...(outcome.error !== undefined && { error: outcome.error }),
    runId: outcome.runId,
    ...(outcome.ms !== undefined && { ms: Math.round(outcome.ms) }),
    requestId: context.requestId,
  };
}

/** Thrown to fail the invocation (Lambda `Errors`): names the failure, never a secret. */
export class CanaryRunFailed extends Error {
  constructor(outcome: Extract<ProbeOutcome, { ok: false }>) {
    const what =
      String(outcome.status) === outcome.failure ? outcome.failure : `${outcome.status} ${outcome.failure}`;
    super(`canary: ${what}: ${outcome.message}`);
    this.name = 'CanaryRunFailed';
  }
}
