/**
 * Provider-framework onEvent handler: on every deploy, registers the fleet with Z-API through the shared
 * fleet core, in `register` mode: the instances the deploy names (`-c instanceId=...`) first, each PUT
 * and confirmed; then the rest of the fleet is reconciled (PUT only where the URL is wrong) in the time
 * left before the deadline; what the deadline leaves is `notChecked` and the reconciler's next sweep
 * does it (docs/fleet.md, "Deploys and large fleets").
 *
 * - Create/Update fail the deploy, with a message naming each instance and what to do, only when an
 *   instance the deploy named (`-c instanceId=...`) has no token or cannot be registered. Instances found
 *   only in SSM are reported (log line, metric, alarm) and never fail the deploy.
 * - Delete releases the fleet's URLs (where they are still this endpoint's) and never fails.
 * - A rollback re-registers and never fails (a failure there would most likely repeat the one that caused
 *   the rollback and leave the stack in UPDATE_ROLLBACK_FAILED).
 * Returns `{ PhysicalResourceId, Data }` or throws; the framework answers CloudFormation. The event is
 * never logged (its ResponseURL is a presigned URL). Every remote call carries the invocation's deadline.
 */
import type { CloudFormationCustomResourceEvent, Context } from 'aws-lambda';
import { invocationDeadline } from '../shared/aws/deadline.ts';
import { errorName } from '../shared/aws/error-name.ts';
import { type Mode, runFleet } from './reconcile.ts';
import { failureList, reportRun } from './report.ts';
import { fleetDeps, fleetSsmClient, readFleetConfig } from './runtime.ts';
import { REGISTRATION_PHYSICAL_ID, REGISTRATION_PROPERTIES } from './settings.ts';

/** Kept back from the Lambda timeout so a failure is still reported to CloudFormation. */
const SAFETY_MARGIN_MS = 10_000;

const config = readFleetConfig(process.env);
const ssm = fleetSsmClient();
const deps = fleetDeps(config, ssm, { log: (record) => console.info(record) });

export interface OnEventResponse {
  readonly PhysicalResourceId: string;
  readonly Data?: Record<string, string>;
}

/** A failure whose message is safe to show in CloudFormation. */
export class RegistrationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RegistrationError';
  }
}

function property(event: CloudFormationCustomResourceEvent, key: string, old = false): unknown {
  const source =
    old && 'OldResourceProperties' in event ? event.OldResourceProperties : event.ResourceProperties;
  return (source as Record<string, unknown>)[key];
}

/**
 * An Update whose new properties carry an older deploy nonce than the old ones is CloudFormation rolling
 * back (the nonce is the synthesis time in ISO 8601, so strings compare in time order).
 */
export function isRollback(event: CloudFormationCustomResourceEvent): boolean {
  if (event.RequestType !== 'Update') return false;
  const next = property(event, REGISTRATION_PROPERTIES.deployNonce);
  const previous = property(event, REGISTRATION_PROPERTIES.deployNonce, true);
  return typeof next === 'string' && typeof previous === 'string' && next < previous;
}

function requiredIds(event: CloudFormationCustomResourceEvent): string[] {
  const raw = property(event, REGISTRATION_PROPERTIES.requiredInstanceIds);
  return typeof raw === 'string'
    ? raw
        .split(',')
        .map((id) => id.trim())
        .filter(Boolean)
    : [];
}

export async function handler(
  event: CloudFormationCustomResourceEvent,
  context?: Pick<Context, 'getRemainingTimeInMillis'>,
): Promise<OnEventResponse> {
  if (event.RequestType === 'Delete' && property(event, REGISTRATION_PROPERTIES.fleet) !== 'true') {
    // A resource from a version with one custom resource per instance, deleted while upgrading: the fleet
    // resource now owns those instances and has just registered them, so there is nothing to undo.
    console.info({ msg: 'delete of a per-instance registration from an earlier version: nothing to do' });
    return { PhysicalResourceId: event.PhysicalResourceId };
  }

  const started = Date.now();
  const deadline = invocationDeadline(context, SAFETY_MARGIN_MS, 5 * 60_000);
  const mode: Mode = event.RequestType === 'Delete' ? 'release' : 'register';
  const required = mode === 'register' ? requiredIds(event) : [];
  const lenient = event.RequestType === 'Delete' || isRollback(event);

  try {
    const report = await runFleet({ mode, trigger: 'deploy', required }, config, deps, deadline);
    const counts = reportRun(report, {
      namespace: config.metricsNamespace,
      durationMs: Date.now() - started,
      detailed: config.detailedMetrics,
    });
    if (report.listingFailed !== undefined && !lenient)
      throw new RegistrationError(report.listingFailed.message);
    const mustRegister = new Set(required);
    const blocking = report.outcomes.filter((o) => mustRegister.has(o.instanceId) && !o.registered);
    if (blocking.length > 0 && !lenient) {
      throw new RegistrationError(
        `${blocking.length} of the instance(s) named with -c instanceId could not be registered: ${failureList({ ...report, outcomes: blocking }).join('; ')}`,
      );
    }
    if (counts.fleetSize === 0 && mode === 'register') {
      console.warn({
        msg: `no instance has a token under ${config.tokenParameterTemplate} yet; add one with aws ssm put-parameter and it is registered within a minute`,
      });
    }
    return {
      PhysicalResourceId: REGISTRATION_PHYSICAL_ID,
      Data: {
        FleetSize: String(counts.fleetSize),
        Registered: String(counts.registered),
        Unregistered: String(counts.unregistered),
        NotChecked: String(counts.notChecked),
      },
    };
  } catch (error) {
    if (!lenient) {
      if (error instanceof RegistrationError) throw error;
      // Our own errors carry safe messages (no value, no remote text); anything else shows its name only.
      const safe = error instanceof Error && error.name === 'ParameterError' ? error.message : undefined;
      throw new RegistrationError(safe ?? `registration failed unexpectedly (${errorName(error)})`);
    }
    console.warn({
      msg: `${event.RequestType === 'Delete' ? 'delete' : 'rollback'}: could not finish; check the chat-presence webhook in the Z-API panel`,
      error: error instanceof Error && error.name === 'ParameterError' ? error.message : 'unexpected error',
    });
    return {
      PhysicalResourceId:
        event.RequestType === 'Create' ? REGISTRATION_PHYSICAL_ID : event.PhysicalResourceId,
    };
  }
}
