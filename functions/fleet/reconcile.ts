/**
 * The fleet reconciler's core: makes Z-API call the right URL for every instance that has a token in
 * SSM, and reports what it found. Shared by the deploy-time custom resource (functions/fleet/deploy-handler.ts)
 * and the reconciler Lambda (functions/fleet/sweep-handler.ts), so a deploy and a sweep run the same code.
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
 * URLs compare by RFC 3986 equivalence (./url.ts): Z-API may echo ours with an upper-case host, `:443`
 * or percent-encoded unreserved characters, and that is still ours.
 * Only the chat-presence webhook is ever written; the instance's other webhooks are never touched.
 *
 * The whole fleet streams: SSM lists the token parameters' names (no values) ahead, tokens are read 10 at
 * a time only as instances are taken up, and Z-API checks start with the first page. Every Z-API request
 * of the run shares one adaptive rate limit (./rate-limit.ts). Instances run with bounded concurrency; one
 * failing instance never stops the others; an instance the run could not ask Z-API about before its
 * deadline (never reached, or a rate-limit wait reaching past it) is reported `notChecked`.
 */
import pMap from 'p-map';
import { type Deadline, DeadlineExceeded } from '../shared/aws/deadline.ts';
import { errorName } from '../shared/aws/error-name.ts';
import { GET_PARAMETERS_BATCH, ParameterError, putParameterCommand } from '../shared/aws/ssm.ts';
import { CANARY_INSTANCE_ID } from '../shared/contract/presence-contract.ts';
import { instanceWebhookPath, instanceWebhookUrl } from '../shared/secrets/webhook-secret.ts';
import { AdaptiveRateLimiter, type RateLimiterStats } from './rate-limit.ts';
import { type DriftPolicy, FLEET_DEFAULTS } from './settings.ts';
import { isOurs, normalizedResource } from './url.ts';
import {
  hostOf,
  type InstanceState,
  redact,
  ZAPI_TOKEN_PATTERN,
  type ZapiCredentials,
  ZapiError,
  type ZapiRateLimiter,
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
  /** Z-API requests per second the run starts at (it adapts; see ./rate-limit.ts). @default 20 */
  readonly requestsPerSecond?: number;
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
  /**
   * The ids of every instance with a token parameter, page by page, from the parameters' names only (no
   * value is read). Throws {@link ParameterError}.
   */
  listInstanceIds(deadline: Deadline): AsyncIterable<readonly string[]>;
  /**
   * The tokens of up to 10 listed instances at once, by instance id; an instance whose parameter is gone
   * (or empty) is absent. Throws {@link ParameterError}.
   */
  readTokens(instanceIds: readonly string[], deadline: Deadline): Promise<ReadonlyMap<string, string>>;
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
  /** A Z-API client for one instance, pacing its requests with the run's `limiter`. */
  zapi(credentials: ZapiCredentials, limiter: ZapiRateLimiter): ZapiPort;
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
  /** Z-API could not be asked before the run's deadline (never reached, or rate-limited past it). */
  | 'notChecked';

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
  /**
   * The listing of the token parameters failed part-way (not for lack of time): the outcomes cover the
   * instances listed before it failed. Safe to show.
   */
  readonly listingFailed?: { readonly code: string; readonly message: string };
  /** The listing did not finish before the deadline: instances it never named were not checked either. */
  readonly listingCut?: boolean;
  /** The run's Z-API rate limit at the end. */
  readonly rate?: RateLimiterStats;
}

/** Where the URL Z-API calls stands against the expected one. */
export function classify(current: string | undefined, expected: string, ownPath: string): Found {
  if (current === undefined || current === '') return 'missing';
  if (isOurs(current, expected)) return 'right';
  return isOwnEndpoint(current, ownPath) ? 'stale' : 'foreign';
}

/**
 * True when `url` is this endpoint's URL for the instance, whatever its query string (compared as
 * equivalent URLs: see ./url.ts).
 */
export function isOwnEndpoint(url: string, ownPath: string): boolean {
  const resource = normalizedResource(url);
  return resource !== undefined && resource === normalizedResource(ownPath);
}

const NO_TOKEN = 'no-token';
const REPAIR_CUT_MESSAGE =
  "Z-API calls another URL or none, and the run's deadline (its rate limit or the fleet's size) cut the repair short; the next run repairs it";
const NOT_CHECKED_MESSAGE =
  "not checked: Z-API could not be asked before the run's deadline (its rate limit or the fleet's size); the next run checks it";

/** One instance to work on: with its token when the listing read it, or its token to read in its task. */
type Work =
  | { readonly instanceId: string; readonly token?: string }
  | { readonly instanceId: string; readonly error: { readonly code: string; readonly message: string } };

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
  const limiter = new AdaptiveRateLimiter({
    requestsPerSecond: settings.requestsPerSecond ?? FLEET_DEFAULTS.zapiRequestsPerSecond,
  });

  const noToken = (instanceId: string) =>
    failure(
      instanceId,
      NO_TOKEN,
      `instance ${instanceId} has no token parameter; create it: ${putParameterCommand(deps.tokenParameterName(instanceId), 'INSTANCE_TOKEN')}`,
    );
  // Named instances (the request's, or those a deploy requires) go first, each token read in its own
  // task (a read that hangs holds that instance only): a large or slow fleet never leaves them unreached.
  const named = [...new Set(request.instanceIds ?? request.required ?? [])];
  // A deploy (`register`) PUTs the instances it names; the rest of the fleet is reconciled (PUT only
  // where the URL is wrong) in the time left, and what the deadline leaves is the next sweep's.
  const putAll = new Set(request.mode === 'register' && request.instanceIds === undefined ? named : []);
  const modeOf = (instanceId: string): Mode =>
    request.mode === 'register' && request.instanceIds === undefined && !putAll.has(instanceId)
      ? 'reconcile'
      : request.mode;
  const source =
    request.instanceIds === undefined ? new FleetListing(deps, deadline, new Set(named)) : undefined;

  async function* work(): AsyncGenerator<Work> {
    for (const instanceId of named) yield { instanceId };
    if (source !== undefined) yield* source.members();
  }

  const outcomes = await pMap(
    work(),
    async (item): Promise<InstanceOutcome> => {
      if ('error' in item) return failure(item.instanceId, item.error.code, item.error.message);
      if (item.instanceId === CANARY_INSTANCE_ID) {
        return failure(
          item.instanceId,
          'canary',
          `${CANARY_INSTANCE_ID} is the canary's instance id: it is never registered at Z-API`,
        );
      }
      if (deadline.remainingMs() <= 0) return notChecked(item.instanceId);
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
      const zapi = deps.zapi(
        {
          instanceId: member.instanceId,
          token: member.token,
          ...(clientToken !== undefined && { clientToken }),
        },
        limiter,
      );
      const held = [...secrets, member.token];
      try {
        const outcome =
          request.mode === 'release'
            ? await release(member.instanceId, zapi, settings, deadline)
            : await reconcileOne(
                member.instanceId,
                master as string,
                modeOf(member.instanceId) as 'reconcile' | 'register',
                zapi,
                settings,
                deadline,
                now,
              );
        return scrubbed(outcome, held);
      } catch (error) {
        // Nothing was learnt from Z-API (its first GET me did not answer).
        if (outOfTime(error, deadline)) return notChecked(member.instanceId);
        return failure(member.instanceId, errorCode(error), safeMessage(error, held));
      }
    },
    { concurrency: settings.concurrency },
  );
  limiter.close();
  const listing = source === undefined ? undefined : await source.finish();
  return {
    mode: request.mode,
    trigger: request.trigger,
    wholeFleet: request.instanceIds === undefined,
    outcomes: [...outcomes, ...(listing?.unreached ?? []).map(notChecked)],
    ...(listing?.failed !== undefined && { listingFailed: listing.failed }),
    ...(listing?.cut === true && { listingCut: true }),
    rate: { ...limiter.stats },
  };
}

/** True when an error means the run ran out of time (its deadline, or a rate-limit wait reaching past it). */
function outOfTime(error: unknown, deadline: Deadline): boolean {
  if (error instanceof ZapiError && error.code === 'out-of-time') return true;
  return deadline.remainingMs() <= 0 && (error instanceof DeadlineExceeded || error instanceof ZapiError);
}

function notChecked(instanceId: string): InstanceOutcome {
  return {
    instanceId,
    action: 'notChecked',
    registered: false,
    error: { code: 'out-of-time', message: NOT_CHECKED_MESSAGE },
  };
}

/**
 * The whole fleet, streamed: the names are listed ahead (cheap, no values), each new instance id once;
 * tokens are read 10 at a time (one batch ahead) only as the run takes instances up, so memory stays
 * bounded whatever the fleet's size. Never throws: a listing failure is kept for the report.
 */
class FleetListing {
  private readonly pending: string[] = [];
  private readonly seen = new Set<string>();
  private ended = false;
  private failed: { code: string; message: string } | undefined;
  private cut = false;
  private wake: (() => void) | undefined;
  private readonly listing: Promise<void>;

  constructor(
    private readonly deps: FleetDeps,
    private readonly deadline: Deadline,
    skip: ReadonlySet<string>,
  ) {
    for (const id of skip) this.seen.add(id);
    this.listing = this.list();
  }

  private async list(): Promise<void> {
    try {
      for await (const page of this.deps.listInstanceIds(this.deadline)) {
        for (const instanceId of page) {
          if (this.seen.has(instanceId)) continue;
          this.seen.add(instanceId);
          this.pending.push(instanceId);
        }
        this.notify();
      }
    } catch (error) {
      if (this.deadline.remainingMs() <= 0) this.cut = true;
      else this.failed = { code: errorCode(error), message: safeMessage(error, []) };
    } finally {
      this.ended = true;
      this.notify();
    }
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  /** The next batch of up to 10 listed ids; empty when the listing is over (or the deadline passed). */
  private async take(): Promise<string[]> {
    for (;;) {
      if (this.deadline.remainingMs() <= 0) return [];
      if (this.pending.length > 0) return this.pending.splice(0, GET_PARAMETERS_BATCH);
      if (this.ended) return [];
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
    }
  }

  private async batch(): Promise<Work[] | undefined> {
    const ids = await this.take();
    if (ids.length === 0) return undefined;
    try {
      const tokens = await this.deps.readTokens(ids, this.deadline);
      // A parameter deleted since it was listed is no instance any more.
      return ids.flatMap((instanceId) => {
        const token = tokens.get(instanceId);
        return token === undefined ? [] : [{ instanceId, token }];
      });
    } catch (error) {
      if (this.deadline.remainingMs() <= 0) {
        this.pending.unshift(...ids);
        return undefined;
      }
      const problem = { code: errorCode(error), message: safeMessage(error, []) };
      return ids.map((instanceId) => ({ instanceId, error: problem }));
    }
  }

  /** Listed instances with their tokens, one batch read ahead of the one being handed out. */
  async *members(): AsyncGenerator<Work> {
    let next = this.batch();
    for (;;) {
      const current = await next;
      if (current === undefined) return;
      next = this.batch();
      yield* current;
    }
  }

  /** Waits for the listing to end; what was listed but never handed out was not checked. */
  async finish(): Promise<{
    unreached: string[];
    failed: { code: string; message: string } | undefined;
    cut: boolean;
  }> {
    await this.listing;
    return { unreached: this.pending.splice(0), failed: this.failed, cut: this.cut };
  }
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
  // Ours already: the sweep leaves it, and a deploy whose re-registration fails still has it.
  const unchanged = (): InstanceOutcome => ({
    instanceId,
    action: 'unchanged',
    registered: true,
    ...seen,
    health: health(before, settings, now),
  });
  if (found === 'right' && mode === 'reconcile') return unchanged();

  let after: InstanceState;
  try {
    await zapi.updateChatPresenceWebhook(expected, deadline);
    after = await zapi.me(deadline);
  } catch (error) {
    // Z-API answered GET me, so what it calls is known: the URL it had (ours, or not).
    if (found === 'right') return unchanged();
    // The run's deadline (or a rate-limit wait past it) cut the repair short. Z-API did answer GET me: it
    // confirmed it calls another URL or none, a fact (Unregistered counts it), whatever the next run does.
    const failure: InstanceOutcome['error'] = outOfTime(error, deadline)
      ? { code: 'out-of-time', message: REPAIR_CUT_MESSAGE }
      : { code: errorCode(error), message: safeMessage(error, [master]) };
    return {
      instanceId,
      action: 'failed',
      registered: false,
      ...seen,
      health: health(before, settings, now),
      error: failure,
    };
  }
  const confirmed = isOurs(after.presenceChatCallbackUrl, expected);
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
  let after: InstanceState;
  try {
    await zapi.updateChatPresenceWebhook('', deadline);
    after = await zapi.me(deadline);
  } catch (error) {
    if (outOfTime(error, deadline)) return { ...notChecked(instanceId), found: 'stale' };
    return {
      instanceId,
      action: 'failed',
      registered: false,
      found: 'stale',
      error: { code: errorCode(error), message: safeMessage(error, []) },
    };
  }
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
