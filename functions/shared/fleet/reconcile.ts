/**
 * The fleet reconciler's core: makes Z-API call the right URL for every instance that has a token in
 * SSM, and reports what it found. Shared by the deploy-time custom resource (functions/register-webhook)
 * and the reconciler Lambda (functions/reconcile-webhooks), so a deploy and a sweep run the same code.
 *
 * Per instance (each remote call cut off at the run's deadline):
 *   1. GET me: the URL Z-API calls now, and the instance's health (connected, due, paymentStatus).
 *   2. Compare with the expected URL (functions/shared/secrets/webhook-secret.ts):
 *        right    the expected URL                          sweep: nothing to do
 *        missing  no URL                                    PUT
 *        stale    this endpoint with another secret         PUT (a rotated master, or the old scheme)
 *        foreign  another URL (another tool took it over)   repair: PUT; alert: report only
 *      `register` mode (a deploy) PUTs every instance except a foreign one under the alert policy.
 *   3. After a PUT, GET me again: only a confirmed URL counts as registered.
 * Only the chat-presence webhook is ever written; the instance's other webhooks are never touched.
 * Instances run with bounded concurrency; one failing instance never stops the others; an instance not
 * started before the deadline is reported as skipped.
 */
import pMap from 'p-map';
import type { Deadline } from '../aws/deadline.ts';
import { errorName } from '../aws/error-name.ts';
import { ParameterError, putParameterCommand } from '../aws/ssm.ts';
import { instanceWebhookPath, instanceWebhookUrl } from '../secrets/webhook-secret.ts';
import type { DriftPolicy } from './settings.ts';
import {
  hostOf,
  type InstanceState,
  redact,
  ZAPI_TOKEN_PATTERN,
  type ZapiCredentials,
  ZapiError,
} from './zapi.ts';

export { DRIFT_POLICIES, type DriftPolicy } from './settings.ts';

/** What started a run (a metric dimension). */
export type Trigger = 'deploy' | 'sweep' | 'change' | 'manual';

/**
 * `reconcile`: PUT only where the URL is wrong (sweeps, SSM changes, manual runs).
 * `register`: PUT every instance (a deploy re-asserts registration).
 * `release`: clear the URL where it is still this endpoint's (stack deletion, removing an instance).
 */
export type Mode = 'reconcile' | 'register' | 'release';

export interface FleetSettings {
  /** `https://{api-id}.execute-api.{region}.amazonaws.com` */
  readonly webhookBaseUrl: string;
  readonly driftPolicy: DriftPolicy;
  /** Instances worked on at once. */
  readonly concurrency: number;
  /** An instance whose `due` falls within this is reported as expiring. */
  readonly dueWarningMs: number;
  /** `paymentStatus` values that count as paid up (compared case-insensitively). */
  readonly currentPaymentStatuses: readonly string[];
}

export interface FleetMember {
  readonly instanceId: string;
  readonly token: string;
}

/** What the reconciler needs from Z-API for one instance. */
export interface ZapiPort {
  me(deadline: Deadline): Promise<InstanceState>;
  updateChatPresenceWebhook(url: string, deadline: Deadline): Promise<void>;
}

export interface FleetDeps {
  /** Every instance with a token under the token path. Throws {@link ParameterError}. */
  listFleet(deadline: Deadline): Promise<FleetMember[]>;
  /** One instance's token; undefined when it has no token parameter. */
  readToken(instanceId: string, deadline: Deadline): Promise<string | undefined>;
  /** The account's Client-Token, when one is configured. */
  readClientToken(deadline: Deadline): Promise<string | undefined>;
  /**
   * The master to derive URLs from (validated). Throws {@link ParameterError}. Right after a rotation
   * this may be the previous master, or the call may wait, until every receiver knows the new one
   * (see fleet/runtime.ts).
   */
  readMaster(deadline: Deadline, options?: { readonly waitForNewMaster?: boolean }): Promise<string>;
  zapi(credentials: ZapiCredentials): ZapiPort;
  /** The token parameter's name for an instance (for messages). */
  tokenParameterName(instanceId: string): string;
  /** @default Date.now */
  readonly now?: () => number;
}

export interface RunRequest {
  readonly mode: Mode;
  readonly trigger: Trigger;
  /** Only these instances (their tokens are read one by one); undefined = the whole fleet from SSM. */
  readonly instanceIds?: readonly string[];
  /** Instances that must be in the fleet: one missing from SSM is reported as failed (`no-token`). */
  readonly required?: readonly string[];
  /**
   * The master just changed: wait (within the deadline) until every receiver knows it, then register
   * URLs derived from it, rather than keep the previous master's URLs for now.
   */
  readonly waitForNewMaster?: boolean;
}

export type Found = 'right' | 'missing' | 'stale' | 'foreign';

export type Action =
  | 'unchanged'
  | 'registered'
  | 'corrected'
  | 'drift-reported'
  | 'released'
  | 'left-alone'
  | 'failed'
  | 'skipped';

export interface Health {
  readonly connected: boolean | undefined;
  readonly dueAt: number | undefined;
  readonly expiresSoon: boolean;
  readonly paymentStatus: string | undefined;
  readonly paymentIssue: boolean;
}

export interface InstanceOutcome {
  readonly instanceId: string;
  readonly action: Action;
  /** The URL Z-API called before this run, classified. */
  readonly found?: Found;
  /** For a foreign URL: its host only (never its path or query string). */
  readonly foundHost?: string;
  /** The URL is the expected one at the end of the run. */
  readonly registered: boolean;
  readonly health?: Health;
  /** Safe to show: never a token, a secret or text from a remote answer. */
  readonly error?: { readonly code: string; readonly message: string };
}

export interface FleetReport {
  readonly mode: Mode;
  readonly trigger: Trigger;
  /** The whole fleet (true) or the listed instances only. */
  readonly wholeFleet: boolean;
  readonly outcomes: readonly InstanceOutcome[];
}

/** Where the URL Z-API calls stands against the expected one. */
export function classify(current: string | undefined, expected: string, ownPath: string): Found {
  if (current === undefined || current === '') return 'missing';
  if (current === expected) return 'right';
  return isOwnEndpoint(current, ownPath) ? 'stale' : 'foreign';
}

/** True when `url` is this endpoint's URL for the instance, whatever its query string. */
export function isOwnEndpoint(url: string, ownPath: string): boolean {
  const withoutQuery = url.split(/[?#]/, 1)[0] ?? '';
  return withoutQuery === ownPath;
}

const NO_TOKEN = 'no-token';

export async function runFleet(
  request: RunRequest,
  settings: FleetSettings,
  deps: FleetDeps,
  deadline: Deadline,
): Promise<FleetReport> {
  const now = deps.now ?? Date.now;
  const master =
    request.mode === 'release'
      ? undefined
      : await deps.readMaster(deadline, { waitForNewMaster: request.waitForNewMaster === true });
  const clientToken = await deps.readClientToken(deadline);
  const secrets = [master, clientToken];

  const noToken = (instanceId: string) =>
    failure(
      instanceId,
      NO_TOKEN,
      `instance ${instanceId} has no token parameter; create it: ${putParameterCommand(deps.tokenParameterName(instanceId), 'INSTANCE_TOKEN')}`,
    );
  // An instance named in the request has its token read in its own task (a read that hangs holds
  // that instance only); the whole fleet comes with its tokens from the listing.
  type Work = { readonly instanceId: string; readonly token?: string };
  const listed: Work[] =
    request.instanceIds === undefined
      ? await deps.listFleet(deadline)
      : [...new Set(request.instanceIds)].map((instanceId) => ({ instanceId }));
  const present = new Set(listed.map((m) => m.instanceId));
  const required = new Set(request.required ?? []);
  const absent = [...required].filter((instanceId) => !present.has(instanceId));
  // The instances a deploy must register go first: a large or slow fleet never leaves them unreached.
  const work = [
    ...listed.filter((m) => required.has(m.instanceId)),
    ...listed.filter((m) => !required.has(m.instanceId)),
  ];

  const outcomes = await pMap(
    work,
    async (item): Promise<InstanceOutcome> => {
      if (deadline.remainingMs() <= 0) {
        return {
          instanceId: item.instanceId,
          action: 'skipped',
          registered: false,
          error: { code: 'out-of-time', message: 'not reached before the deadline; the next run covers it' },
        };
      }
      let token = item.token;
      if (token === undefined) {
        try {
          token = await deps.readToken(item.instanceId, deadline);
        } catch (error) {
          return failure(item.instanceId, errorCode(error), safeMessage(error, secrets));
        }
        if (token === undefined) return noToken(item.instanceId);
      }
      const member: FleetMember = { instanceId: item.instanceId, token };
      if (!ZAPI_TOKEN_PATTERN.test(member.token)) {
        return failure(
          member.instanceId,
          'invalid-token',
          `the token of instance ${member.instanceId} (SSM parameter ${deps.tokenParameterName(member.instanceId)}) holds characters other than letters, digits, - and _: not sent to Z-API`,
        );
      }
      const zapi = deps.zapi({
        instanceId: member.instanceId,
        token: member.token,
        ...(clientToken !== undefined && { clientToken }),
      });
      try {
        const outcome =
          request.mode === 'release'
            ? await release(member.instanceId, zapi, settings, deadline)
            : await reconcileOne(
                member.instanceId,
                master as string,
                request.mode,
                zapi,
                settings,
                deadline,
                now,
              );
        return scrubbed(outcome, [...secrets, member.token]);
      } catch (error) {
        return failure(member.instanceId, errorCode(error), safeMessage(error, [...secrets, member.token]));
      }
    },
    { concurrency: settings.concurrency },
  );
  return {
    mode: request.mode,
    trigger: request.trigger,
    wholeFleet: request.instanceIds === undefined,
    outcomes: [...outcomes, ...absent.map(noToken)],
  };
}

async function reconcileOne(
  instanceId: string,
  master: string,
  mode: 'reconcile' | 'register',
  zapi: ZapiPort,
  settings: FleetSettings,
  deadline: Deadline,
  now: () => number,
): Promise<InstanceOutcome> {
  const expected = instanceWebhookUrl(settings.webhookBaseUrl, instanceId, master);
  const ownPath = instanceWebhookPath(settings.webhookBaseUrl, instanceId);
  const before = await zapi.me(deadline);
  const found = classify(before.presenceChatCallbackUrl, expected, ownPath);
  const foundHost = found === 'foreign' ? hostOf(before.presenceChatCallbackUrl as string) : undefined;
  const seen = { found, ...(foundHost !== undefined && { foundHost }) };

  if (found === 'foreign' && settings.driftPolicy === 'alert') {
    return {
      instanceId,
      action: 'drift-reported',
      registered: false,
      ...seen,
      health: health(before, settings, now),
    };
  }
  if (found === 'right' && mode === 'reconcile') {
    return {
      instanceId,
      action: 'unchanged',
      registered: true,
      ...seen,
      health: health(before, settings, now),
    };
  }

  await zapi.updateChatPresenceWebhook(expected, deadline);
  const after = await zapi.me(deadline);
  const confirmed = after.presenceChatCallbackUrl === expected;
  const state = { ...seen, health: health(after, settings, now) };
  if (!confirmed) {
    const shown =
      after.presenceChatCallbackUrl === undefined
        ? 'none'
        : `a URL on ${hostOf(after.presenceChatCallbackUrl)}`;
    return {
      instanceId,
      action: 'failed',
      registered: false,
      ...state,
      error: {
        code: 'not-confirmed',
        message: `Z-API accepted the update but GET me shows ${shown} instead of this endpoint; check the instance in the Z-API panel`,
      },
    };
  }
  return {
    instanceId,
    action: found === 'foreign' ? 'corrected' : found === 'right' ? 'unchanged' : 'registered',
    registered: true,
    ...state,
  };
}

async function release(
  instanceId: string,
  zapi: ZapiPort,
  settings: FleetSettings,
  deadline: Deadline,
): Promise<InstanceOutcome> {
  const ownPath = instanceWebhookPath(settings.webhookBaseUrl, instanceId);
  const before = await zapi.me(deadline);
  const current = before.presenceChatCallbackUrl;
  if (current === undefined || !isOwnEndpoint(current, ownPath)) {
    return {
      instanceId,
      action: 'left-alone',
      registered: false,
      found: current === undefined ? 'missing' : 'foreign',
    };
  }
  // Z-API documents no way to clear a webhook; an empty value is what its panel sends. Confirm it took.
  await zapi.updateChatPresenceWebhook('', deadline);
  const after = await zapi.me(deadline);
  if (after.presenceChatCallbackUrl !== undefined && isOwnEndpoint(after.presenceChatCallbackUrl, ownPath)) {
    return {
      instanceId,
      action: 'failed',
      registered: false,
      found: 'stale',
      error: {
        code: 'not-confirmed',
        message:
          'Z-API accepted the empty URL but GET me still shows this endpoint; clear the chat-presence webhook in the Z-API panel',
      },
    };
  }
  return { instanceId, action: 'released', registered: false, found: 'stale' };
}

function health(state: InstanceState, settings: FleetSettings, now: () => number): Health {
  const paid = new Set(settings.currentPaymentStatuses.map((s) => s.toUpperCase()));
  return {
    connected: state.connected,
    dueAt: state.dueAt,
    expiresSoon: state.dueAt !== undefined && state.dueAt - now() < settings.dueWarningMs,
    paymentStatus: state.paymentStatus,
    paymentIssue: state.paymentStatus !== undefined && !paid.has(state.paymentStatus.toUpperCase()),
  };
}

/**
 * What Z-API said (another URL's host, a payment status) is shown, so it is scrubbed of every secret
 * this run holds, in any form, before it reaches a log, an answer or CloudFormation.
 */
function scrubbed(outcome: InstanceOutcome, secrets: readonly (string | undefined)[]): InstanceOutcome {
  const clean = (text: string) => redact(text, secrets);
  return {
    ...outcome,
    ...(outcome.foundHost !== undefined && { foundHost: clean(outcome.foundHost) }),
    ...(outcome.error !== undefined && {
      error: { ...outcome.error, message: clean(outcome.error.message) },
    }),
    ...(outcome.health?.paymentStatus !== undefined && {
      health: { ...outcome.health, paymentStatus: clean(outcome.health.paymentStatus) },
    }),
  };
}

function failure(instanceId: string, code: string, message: string): InstanceOutcome {
  return { instanceId, action: 'failed', registered: false, error: { code, message } };
}

function errorCode(error: unknown): string {
  if (error instanceof ZapiError) return error.code;
  if (error instanceof ParameterError) return `ssm-${error.code}`;
  return 'internal';
}

/** An error's message when it is one of ours (built without remote text), else only its name. */
function safeMessage(error: unknown, secrets: readonly (string | undefined)[]): string {
  if (error instanceof ZapiError || error instanceof ParameterError) return redact(error.message, secrets);
  return `unexpected ${error instanceof Error ? errorName(error) : 'error'}`;
}
