/**
 * One small structured line per webhook: request id, instance, status, outcome. Never the body, the
 * path or the query string (the query string holds the secret).
 */
import type { OutcomeLogger } from './adapter.ts';

export const logOutcome: OutcomeLogger = (outcome, { requestId, durationMs }) => {
  const ms = Math.round(durationMs * 10) / 10;
  if (outcome.kind === 'accepted') {
    console.info({
      requestId,
      outcome: 'accepted',
      instanceId: outcome.instanceId,
      status: outcome.status,
      eventId: outcome.eventId,
      ms,
    });
  } else if (outcome.kind === 'rejected') {
    const fields = outcome.issues?.map((issue) => issue.field);
    console.warn({
      requestId,
      outcome: 'rejected',
      reason: outcome.reason,
      code: outcome.statusCode,
      instanceId: outcome.instanceId,
      fields,
      ms,
    });
  } else {
    console.error({
      requestId,
      outcome: 'failed',
      reason: outcome.reason,
      cause: outcome.cause,
      instanceId: outcome.instanceId,
      ms,
    });
  }
};
