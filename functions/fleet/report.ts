/**
 * What a run tells operators: one structured log line per instance that needs attention (a correction, a
 * failure, drift, a disconnected session, an expiry, a payment problem) naming the instance and what was
 * found (another URL's host only, never its query string), and one CloudWatch EMF line per run with the
 * fleet's counts. Healthy, unchanged instances write nothing, so a sweep of 1,000 healthy instances costs
 * one log line.
 */

import type { FleetReport, InstanceOutcome, Mode } from './reconcile.ts';
import { ALARMED_FLEET_METRICS, FLEET_METRICS } from './settings.ts';

export interface FleetCounts {
  readonly fleetSize: number;
  readonly healthy: number;
  readonly registered: number;
  readonly newlyRegistered: number;
  readonly corrected: number;
  /** Instances that could not be checked or registered, but not Z-API's confirmed `unregistered`. */
  readonly failed: number;
  /** Instances Z-API confirmed call another URL or none, which the run could not change. */
  readonly unregistered: number;
  /** Instances Z-API could not be asked about before the run's deadline (never `unregistered`). */
  readonly notChecked: number;
  readonly driftReported: number;
  readonly disconnected: number;
  readonly expiringSoon: number;
  readonly paymentIssues: number;
  readonly released: number;
}

export function countOutcomes(outcomes: readonly InstanceOutcome[], mode?: Mode): FleetCounts {
  const count = (test: (o: InstanceOutcome) => boolean) => outcomes.filter(test).length;
  // Facts only: instances Z-API confirmed (GET me) call another URL or none, and this run could not
  // change that. Not an instance Z-API was never asked about (notChecked), nor one whose call failed
  // before Z-API said anything (failed); drift under the alert policy is reported on its own; a release
  // leaves instances unregistered on purpose.
  const unregistered = (o: InstanceOutcome) =>
    mode !== 'release' &&
    o.action === 'failed' &&
    !o.registered &&
    o.found !== undefined &&
    o.found !== 'right';
  return {
    fleetSize: outcomes.length,
    healthy: count((o) => o.registered && o.health?.connected !== false),
    registered: count((o) => o.registered),
    newlyRegistered: count((o) => o.action === 'registered'),
    corrected: count((o) => o.action === 'corrected'),
    // Every failure but those: one instance is one alarm (Unregistered or CheckFailures), never both.
    failed: count((o) => o.action === 'failed' && !unregistered(o)),
    unregistered: count(unregistered),
    notChecked: count((o) => o.action === 'notChecked'),
    driftReported: count((o) => o.action === 'drift-reported'),
    disconnected: count((o) => o.health?.connected === false),
    expiringSoon: count((o) => o.health?.expiresSoon === true),
    paymentIssues: count((o) => o.health?.paymentIssue === true),
    released: count((o) => o.action === 'released'),
  };
}

export interface LogSink {
  info(record: Record<string, unknown>): void;
  warn(record: Record<string, unknown>): void;
  error(record: Record<string, unknown>): void;
}

const MESSAGES: Partial<Record<InstanceOutcome['action'], string>> = {
  registered: 'webhook registered',
  corrected: 'drift corrected: another URL had replaced this endpoint',
  'drift-reported': 'drift found: another URL has replaced this endpoint (driftPolicy alert: left as is)',
  failed: 'instance could not be registered',
  notChecked:
    "instance not checked: Z-API could not be asked before the run's deadline; the next run checks it",
  released: 'webhook released',
};

/** One line per instance that needs attention; nothing for a healthy, unchanged one. */
export function logOutcomes(report: FleetReport, log: LogSink): void {
  for (const o of report.outcomes) {
    const base = {
      instanceId: o.instanceId,
      trigger: report.trigger,
      action: o.action,
      ...(o.found !== undefined && { found: o.found }),
      ...(o.foundHost !== undefined && { foundHost: o.foundHost }),
    };
    const message = MESSAGES[o.action];
    if (message !== undefined) {
      const record = {
        msg: message,
        ...base,
        ...(o.error && { code: o.error.code, error: o.error.message }),
      };
      if (o.action === 'failed') log.error(record);
      else if (o.action === 'drift-reported' || o.action === 'notChecked') log.warn(record);
      else log.info(record);
    }
    const h = o.health;
    if (h?.connected === false) {
      log.error({
        msg: 'instance not connected to WhatsApp: no presence callback will arrive until its QR code is scanned again',
        ...base,
      });
    }
    if (h?.expiresSoon) {
      log.warn({
        msg: 'instance expires soon',
        ...base,
        due: h.dueAt === undefined ? undefined : new Date(h.dueAt).toISOString(),
      });
    }
    if (h?.paymentIssue) {
      log.warn({ msg: 'instance payment status is not current', ...base, paymentStatus: h.paymentStatus });
    }
  }
}

/**
 * The run's line: its counts and duration, extracted as metrics by Trigger (and Scope). `detailed`: every
 * count and the duration; otherwise only the alarmed counts that are not zero (no directive at all when
 * none is).
 */
export function emfSummary(
  report: FleetReport,
  counts: FleetCounts,
  namespace: string,
  durationMs: number,
  timestamp: number,
  detailed = true,
): string {
  const M = FLEET_METRICS;
  const values: Record<string, number> = {
    [M.fleetSize]: counts.fleetSize,
    [M.healthy]: counts.healthy,
    [M.registered]: counts.registered,
    [M.newlyRegistered]: counts.newlyRegistered,
    [M.corrected]: counts.corrected,
    [M.failed]: counts.failed,
    [M.unregistered]: counts.unregistered,
    // A listing the deadline cut left instances no outcome names: at least one more was not checked.
    [M.notChecked]: counts.notChecked + (report.listingCut === true ? 1 : 0),
    [M.driftReported]: counts.driftReported,
    [M.disconnected]: counts.disconnected,
    [M.expiringSoon]: counts.expiringSoon,
    [M.paymentIssues]: counts.paymentIssues,
    [M.released]: counts.released,
  };
  const extracted = detailed
    ? [
        ...Object.keys(values).map((Name) => ({ Name, Unit: 'Count' })),
        { Name: M.durationMs, Unit: 'Milliseconds' },
      ]
    : ALARMED_FLEET_METRICS.map((key) => M[key])
        .filter((name) => (values[name] ?? 0) > 0)
        .map((Name) => ({ Name, Unit: 'Count' }));
  return `${JSON.stringify({
    ...(extracted.length > 0 && {
      _aws: {
        Timestamp: timestamp,
        CloudWatchMetrics: [{ Namespace: namespace, Dimensions: [['Trigger', 'Scope']], Metrics: extracted }],
      },
    }),
    msg: 'reconcile run',
    mode: report.mode,
    Trigger: report.trigger,
    Scope: report.wholeFleet ? 'fleet' : 'instances',
    ...values,
    [M.durationMs]: Math.round(durationMs),
  })}\n`;
}

/** Writes a run's lines (per-instance, then the EMF summary) and returns its counts. */
export function reportRun(
  report: FleetReport,
  options: {
    readonly namespace: string;
    readonly durationMs: number;
    readonly log?: LogSink;
    readonly write?: (line: string) => void;
    readonly now?: () => number;
    /** Every count as a metric, zeros included. @default false: the alarmed counts that are not zero */
    readonly detailed?: boolean;
  },
): FleetCounts {
  const counts = countOutcomes(report.outcomes, report.mode);
  const log = options.log ?? console;
  logOutcomes(report, log);
  if (report.listingFailed !== undefined) {
    log.error({
      msg: 'the token parameters could not be listed to the end: instances after that point were not checked',
      trigger: report.trigger,
      code: report.listingFailed.code,
      error: report.listingFailed.message,
    });
  }
  if (report.listingCut === true) {
    log.warn({
      msg: "the run's deadline came before the token parameters were listed to the end: instances after that point were not checked",
      trigger: report.trigger,
    });
  }
  if (report.rate !== undefined && report.rate.rateLimited > 0) {
    log.warn({
      msg: 'Z-API limited the request rate (429): the run slowed down',
      trigger: report.trigger,
      requests: report.rate.requests,
      rateLimited: report.rate.rateLimited,
      lowestRequestsPerSecond: Math.round(report.rate.lowestRate * 10) / 10,
    });
  }
  // Straight to stdout: Lambda's JSON log format would wrap a console line, and CloudWatch would not
  // read the wrapped line as EMF.
  (options.write ?? ((line) => process.stdout.write(line)))(
    emfSummary(
      report,
      counts,
      options.namespace,
      options.durationMs,
      (options.now ?? Date.now)(),
      options.detailed === true,
    ),
  );
  return counts;
}

/** The failed instances of a report, for an answer or an error (at most `limit`). */
export function failureList(report: FleetReport, limit = 10): string[] {
  const failed = report.outcomes.filter((o) => o.error !== undefined);
  const shown = failed.slice(0, limit).map((o) => `${o.instanceId}: ${o.error?.message}`);
  if (failed.length > limit) shown.push(`... and ${failed.length - limit} more (see the log)`);
  return shown;
}
