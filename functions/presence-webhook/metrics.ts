/**
 * One line per webhook, in CloudWatch embedded metric format (EMF): the line is both the structured log
 * (request id, status or reason, instance on rejections and failures) and the metrics CloudWatch
 * extracts from it. An accepted webhook costs one line of under 300 bytes.
 *
 *   Accepted        Count        by Status   one per event on the bus                    detailed only
 *   PublishLatency  Milliseconds by Status   PutEvents time, retries included            detailed only
 *   Rejected        Count        by Reason   4xx answers (unauthorized, invalid-body, ...) detailed only
 *   PublishFailures Count                   503: the bus did not take the event
 *   SecretFailures  Count                   503: the secret could not be read
 *   InternalErrors  Count                   500: a bug (the handler caught it, so Lambda's Errors misses it)
 *   RefusedCallbacks Count                  4xx to a caller that proved its secret: a lost callback
 *
 * Metrics cost $0.30 a month per series that reports in any hour: the traffic metrics (10 series at
 * every webhook) are only extracted with `detailed` (the construct's `detailedMetrics`). Without it the
 * accepted and rejected lines carry the same fields without the `_aws` directive: Logs Insights reads
 * them, CloudWatch extracts nothing. The failure metrics report only while something fails, and their
 * alarms need them, so they are always extracted.
 *
 * The canary's accepted callbacks (CANARY_INSTANCE_ID) are logged without a metric: they are not traffic.
 *
 * Written straight to stdout: with Lambda's JSON log format, console.* output is wrapped in another
 * JSON object, which CloudWatch would not read as EMF. Never the body, the path or the query string.
 */
import { CANARY_INSTANCE_ID } from '../shared/contract/presence-contract.ts';
import type { InternalErrorLogger, OutcomeLogger } from './adapter.ts';
import type { Outcome } from './receive.ts';
import { METRIC_NAMES, REFUSED_CALLBACK_REASONS } from './settings.ts';

export { METRIC_NAMES } from './settings.ts';

const round = (ms: number) => Math.round(ms * 10) / 10;

/** The `_aws` metric directive of an EMF document. */
function directive(
  namespace: string,
  timestamp: number,
  dimensions: string[][],
  metrics: Array<{ Name: string; Unit?: string }>,
) {
  return {
    _aws: {
      Timestamp: timestamp,
      CloudWatchMetrics: [{ Namespace: namespace, Dimensions: dimensions, Metrics: metrics }],
    },
  };
}

/** The EMF document for one outcome. */
export function emfRecord(
  outcome: Outcome,
  context: { requestId: string; durationMs: number },
  namespace: string,
  timestamp: number,
  detailed = true,
): Record<string, unknown> {
  const M = METRIC_NAMES;
  const envelope = (dimensions: string[][], metrics: Array<{ Name: string; Unit?: string }>) =>
    directive(namespace, timestamp, dimensions, metrics);
  // Traffic (accepted, rejected) is extracted as metrics only when detailed; failures always are.
  const traffic = (dimensions: string[][], metrics: Array<{ Name: string; Unit?: string }>) =>
    detailed ? envelope(dimensions, metrics) : {};
  if (outcome.kind === 'accepted') {
    return {
      // Kept under 300 bytes: the instance, phone and event id are on the event itself (bus, archive).
      ...traffic([['Status']], [{ Name: M.accepted }, { Name: M.publishLatency, Unit: 'Milliseconds' }]),
      Status: outcome.status,
      [M.accepted]: 1,
      [M.publishLatency]: round(outcome.publishMs),
      requestId: context.requestId,
    };
  }
  if (outcome.kind === 'rejected') {
    // A caller that proved its secret and was refused lost a callback: always a metric (its alarm).
    const refused = REFUSED_CALLBACK_REASONS.includes(outcome.reason);
    const directives = [
      ...(detailed
        ? [{ Namespace: namespace, Dimensions: [['Reason']], Metrics: [{ Name: M.rejected, Unit: 'Count' }] }]
        : []),
      ...(refused
        ? [{ Namespace: namespace, Dimensions: [[]], Metrics: [{ Name: M.refusedCallbacks, Unit: 'Count' }] }]
        : []),
    ];
    return {
      ...(directives.length > 0 && { _aws: { Timestamp: timestamp, CloudWatchMetrics: directives } }),
      level: 'WARN',
      Reason: outcome.reason,
      [M.rejected]: 1,
      ...(refused && { [M.refusedCallbacks]: 1 }),
      code: outcome.statusCode,
      requestId: context.requestId,
      ...(outcome.instanceId !== undefined && { instanceId: outcome.instanceId }),
      ...(outcome.issues && { fields: [...new Set(outcome.issues.map((issue) => issue.field))] }),
    };
  }
  const metric = outcome.reason === 'bus-unavailable' ? M.publishFailures : M.secretFailures;
  return {
    ...envelope([[]], [{ Name: metric, Unit: 'Count' }]),
    level: 'ERROR',
    Reason: outcome.reason,
    [metric]: 1,
    cause: outcome.cause,
    requestId: context.requestId,
    ...(outcome.instanceId !== undefined && { instanceId: outcome.instanceId }),
    ...(outcome.publishMs !== undefined && { ms: round(outcome.publishMs) }),
  };
}

export function createMetricsLogger(
  namespace: string,
  write: (line: string) => void = (line) => process.stdout.write(line),
  clock: () => number = Date.now,
  /** Extract the traffic metrics (Accepted, PublishLatency by Status; Rejected by Reason). */
  detailed = false,
): OutcomeLogger {
  // The accepted line is the hot path (one per webhook): its constant parts are serialized once.
  const directive = JSON.stringify([
    {
      Namespace: namespace,
      Dimensions: [['Status']],
      Metrics: [{ Name: METRIC_NAMES.accepted }, { Name: METRIC_NAMES.publishLatency, Unit: 'Milliseconds' }],
    },
  ]);
  // Without detailed metrics: the same fields, no directive (a log line, not a metric).
  const acceptedHead = detailed ? `{"_aws":{"Timestamp":` : '';
  const acceptedMiddle = detailed ? `,"CloudWatchMetrics":${directive}},"Status":"` : '{"Status":"';
  return (outcome, context) => {
    if (outcome.kind === 'accepted' && outcome.instanceId === CANARY_INSTANCE_ID) {
      // The canary's callbacks are not traffic: a log line, no Accepted datapoint (the canary's own
      // metrics measure its arrival on the bus).
      write(
        `${JSON.stringify({ msg: 'canary callback accepted', instanceId: outcome.instanceId, Status: outcome.status, eventId: outcome.eventId, ms: round(outcome.publishMs), requestId: context.requestId })}\n`,
      );
      return;
    }
    // Stryker disable next-line ConditionalExpression,StringLiteral,BlockStatement: equivalent, emfRecord writes the same document; this is only its faster serialization.
    if (outcome.kind === 'accepted') {
      write(
        `${acceptedHead}${detailed ? clock() : ''}${acceptedMiddle}${outcome.status}","${METRIC_NAMES.accepted}":1,"${METRIC_NAMES.publishLatency}":${round(outcome.publishMs)},"requestId":${JSON.stringify(context.requestId)}}\n`,
      );
      return;
    }
    write(`${JSON.stringify(emfRecord(outcome, context, namespace, clock(), detailed))}\n`);
  };
}

export function createInternalErrorLogger(
  namespace: string,
  write: (line: string) => void = (line) => process.stdout.write(line),
  clock: () => number = Date.now,
): InternalErrorLogger {
  return ({ requestId, error }) => {
    const record = {
      ...directive(namespace, clock(), [[]], [{ Name: METRIC_NAMES.internalErrors, Unit: 'Count' }]),
      level: 'ERROR',
      [METRIC_NAMES.internalErrors]: 1,
      error,
      requestId,
    };
    write(`${JSON.stringify(record)}\n`);
  };
}
