/**
 * The canary, on an EventBridge schedule: proves the public path (API Gateway, route, stage throttle,
 * invoke permission, receiver, master secret, bus) by POSTing one Z-API-shaped callback for the canary's
 * instance through the stack's own URL, as Z-API would. The receiver publishes it under the canary
 * source; arrival.ts times its arrival on the bus, and the arrival alarm watches that.
 *
 * Time bounds: one deadline per invocation (Lambda's remaining time minus 1 s to report); the master's
 * read is capped at what its SDK attempts could take, the POST at CANARY_REQUEST_TIMEOUT_MS.
 * Any non-2xx fails the invocation, after one log line (and a CanaryFailures datapoint) naming it.
 */
import { randomUUID } from 'node:crypto';
import { SSMClient } from '@aws-sdk/client-ssm';
import { invocationDeadline, type RemainingTime } from '../shared/aws/deadline.ts';
import { requestHandlerSettings } from '../shared/aws/sdk-settings.ts';
import { ParameterError } from '../shared/aws/ssm.ts';
import { masterSecretReader } from '../shared/secrets/master-secret.ts';
import { readCanaryEnv } from './env.ts';
import { createPost } from './http.ts';
import { type ProbeOutcome, probe } from './probe.ts';
import { CanaryRunFailed, outcomeRecord } from './report.ts';
import { CANARY_FAILURES } from './settings.ts';

const config = readCanaryEnv(process.env);
const requestHandler = requestHandlerSettings(config.sdkAttemptTimeoutMs);
const ssm = new SSMClient({ maxAttempts: config.sdkMaxAttempts, requestHandler });
// The receiver's reader: the same validation, error mapping and deadline handling (no previous version:
// the canary always sends with the current master, which every receiver accepts within its cache TTL).
const readMaster = masterSecretReader({
  ssm,
  parameterName: config.secretParameterName,
  graceMs: 0,
  readCapMs: config.sdkAttemptTimeoutMs * config.sdkMaxAttempts + 500,
});
const post = createPost(config.requestTimeoutMs);

export async function handler(
  _event: unknown,
  context?: RemainingTime & { awsRequestId?: string },
): Promise<{ ok: true; status: number; eventId: string; ms: number }> {
  const deadline = invocationDeadline(context, 1_000, 30_000);
  const runId = randomUUID();
  const report = (outcome: ProbeOutcome) =>
    process.stdout.write(
      `${JSON.stringify(
        outcomeRecord(outcome, {
          namespace: config.metricsNamespace,
          apiId: config.apiId,
          timestamp: Date.now(),
          requestId: context?.awsRequestId ?? '-',
        }),
      )}\n`,
    );
  let master: string;
  try {
    master = (await readMaster(deadline)).current;
  } catch (error) {
    const outcome = {
      ok: false as const,
      status: 'secret-read' as const,
      failure: 'secret-read' as const,
      // The reader's message names the parameter and what to check, never its value.
      message: `${CANARY_FAILURES['secret-read']}: ${error instanceof ParameterError ? error.message : 'unknown error'}`,
      runId,
    };
    report(outcome);
    throw new CanaryRunFailed(outcome);
  }
  const outcome = await probe(
    { baseUrl: config.webhookBaseUrl, master, runId, apiId: config.apiId },
    { post },
    deadline,
  );
  report(outcome);
  if (!outcome.ok) throw new CanaryRunFailed(outcome);
  return { ok: true, status: outcome.status, eventId: outcome.eventId, ms: Math.round(outcome.ms) };
}
