/**
 * The fleet reconciler's Lambda: a thin adapter from its triggers (the drift sweep's schedule, SSM
 * Parameter Store changes, manual invocations) to the shared fleet core. See ./trigger.ts for its inputs.
 *
 * It fails (so Lambda's Errors metric and its dead-letter queue see it) only when the run as a whole
 * cannot proceed: the token path cannot be listed or the master cannot be read. One instance's failure is
 * reported (log line, metric, alarm) and never stops the others.
 */
import type { Context } from 'aws-lambda';
import { invocationDeadline } from '../shared/aws/deadline.ts';
import { runFleet } from './reconcile.ts';
import { type FleetCounts, failureList, reportRun } from './report.ts';
import { fleetDeps, fleetSsmClient, readFleetConfig, tokenPattern } from './runtime.ts';
import { triggerFor } from './sweep-trigger.ts';

/** Kept back from the Lambda timeout to write the run's report. */
const REPORT_RESERVE_MS = 5_000;

const config = readFleetConfig(process.env);
const ssm = fleetSsmClient();
const deps = fleetDeps(config, ssm, { log: (record) => console.info(record) });
const tokens = tokenPattern(config.tokenParameterTemplate);

export interface ReconcileResponse extends Partial<FleetCounts> {
  readonly outcome: 'reconciled' | 'removed' | 'ignored';
  readonly failures?: readonly string[];
  readonly note?: string;
}

export async function handler(event: unknown, context?: Pick<Context, 'getRemainingTimeInMillis'>) {
  const trigger = triggerFor(event, {
    tokenInstance: tokens.match,
    masterSecretParameter: config.masterSecretParameter,
    clientTokenParameter: config.clientTokenParameter,
  });
  if (trigger.kind === 'ignored') {
    console.info({ msg: 'nothing to reconcile', reason: trigger.reason });
    return { outcome: 'ignored', note: trigger.reason } satisfies ReconcileResponse;
  }
  if (trigger.kind === 'removed') {
    const note =
      'token deleted: Z-API cannot be called for this instance any more, so its chat-presence URL stays registered and keeps authenticating until the next master rotation; to stop it first, invoke the reconciler with {"release": ["ID"]} before deleting the token';
    console.warn({ msg: 'instance removed from the fleet', instanceId: trigger.instanceId, note });
    return { outcome: 'removed', note } satisfies ReconcileResponse;
  }

  const started = Date.now();
  const deadline = invocationDeadline(context, REPORT_RESERVE_MS, 15 * 60_000);
  const report = await runFleet(trigger.request, config, deps, deadline);
  const counts = reportRun(report, {
    namespace: config.metricsNamespace,
    durationMs: Date.now() - started,
    detailed: config.detailedMetrics,
  });
  // The run reported what it did; a listing that failed part-way still fails the invocation (Errors
  // metric, retries, dead-letter queue), as a listing that failed at once always has.
  if (report.listingFailed !== undefined) throw new Error(report.listingFailed.message);
  const failures = failureList(report);
  return {
    outcome: 'reconciled',
    ...counts,
    ...(failures.length > 0 && { failures }),
  } satisfies ReconcileResponse;
}
