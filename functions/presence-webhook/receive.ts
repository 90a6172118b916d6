/**
 * The receiver's core: one webhook request in, one outcome out.
 *
 * Pure apart from its injected dependencies (the secret check and the publisher), so the Lambda adapter,
 * the local server and the tests all run exactly this code. Order of checks:
 *   1. the instance in the URL is a Z-API instance id                         -> 404
 *   2. the secret is the one derived for that instance (constant time)        -> 401
 *      (nothing about the body is looked at before this)
 *   3. content type is JSON (or absent)                                       -> 415
 *   4. body size                                                              -> 413
 *   5. JSON syntax, every number finite, nesting at most 32 levels            -> 400
 *   6. the contract schema, and body.instanceId === the URL's instance        -> 400
 *   7. publish the canonical JSON of what was validated, stamped with `receivedAt`; 2xx only once
 *      EventBridge accepted it                                                -> 200 / 503
 *      (the canary's instance, CANARY_INSTANCE_ID, under CANARY_EVENT_SOURCE; every other under EVENT_SOURCE)
 * Every remote call (the master secret's read, PutEvents) carries the invocation's deadline, so a sick
 * dependency is answered with a 503 before the function times out.
 */
import * as v from 'valibot';
import type { Deadline } from '../shared/aws/deadline.ts';
import {
  CANARY_EVENT_SOURCE,
  CANARY_INSTANCE_ID,
  canonicalDetail,
  EVENT_SOURCE,
  INSTANCE_ID_PATTERN,
  jsonProblem,
  MAX_DETAIL_BYTES,
  MAX_JSON_DEPTH,
  PresenceCallbackSchema,
  type PresenceStatus,
  stampedDetail,
} from '../shared/contract/presence-contract.ts';
import type { RejectReason } from './settings.ts';

export interface WebhookRequest {
  /** `{instanceId}` from the route. */
  readonly instanceId: string | undefined;
  /** The `secret` query-string value, if any. */
  readonly secret: string | undefined;
  /** The `Content-Type` header, if any. */
  readonly contentType: string | undefined;
  readonly body: string | undefined;
  /** API Gateway base64-encodes bodies of some content types. */
  readonly isBase64Encoded: boolean;
  /** When the request was received (epoch ms: API Gateway's request time); default: the clock now. */
  readonly receivedAt?: number;
}

export interface ReceiveDeps {
  /** Largest body accepted, in bytes (after base64 decoding). */
  readonly maxBodyBytes: number;
  /**
   * Constant-time check of a candidate secret against the one derived for the instance; throws
   * {@link DependencyError} when the master cannot be read.
   */
  verifySecret(instanceId: string, candidate: string, deadline: Deadline): boolean | Promise<boolean>;
  /**
   * Puts one event on the bus under `source`; resolves only once EventBridge accepted it, else throws
   * {@link DependencyError}.
   */
  publish(
    status: PresenceStatus,
    detail: string,
    deadline: Deadline,
    source: EventSource,
  ): Promise<{ readonly eventId: string }>;
  /** Monotonic clock in ms, to time the publish. @default performance.now */
  readonly now?: () => number;
  /** Wall clock in epoch ms, for `receivedAt` when the request does not carry it. @default Date.now */
  readonly clock?: () => number;
}

/** Where a callback is published: the canary's own instance has a source of its own, which no rule on
 * {@link EVENT_SOURCE} (subscriptions, the presence store, the archive, users' rules) matches. */
export type EventSource = typeof EVENT_SOURCE | typeof CANARY_EVENT_SOURCE;

/** The source a callback of `instanceId` is published under. */
export function eventSourceFor(instanceId: string): EventSource {
  return instanceId === CANARY_INSTANCE_ID ? CANARY_EVENT_SOURCE : EVENT_SOURCE;
}

/** A dependency (SSM, EventBridge) could not do its part; the caller should retry later. */
export class DependencyError extends Error {
  constructor(
    readonly dependency: 'secret' | 'bus',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'DependencyError';
  }
}

export { REJECT_REASONS, type RejectReason } from './settings.ts';

export type FailReason = 'secret-unavailable' | 'bus-unavailable';

export interface FieldIssue {
  readonly field: string;
  readonly message: string;
}

export type Outcome =
  | {
      readonly kind: 'accepted';
      readonly statusCode: 200;
      readonly instanceId: string;
      readonly status: PresenceStatus;
      readonly eventId: string;
      /** Time spent putting the event on the bus, retries included. */
      readonly publishMs: number;
    }
  | {
      readonly kind: 'rejected';
      readonly statusCode: 400 | 401 | 404 | 413 | 415;
      readonly reason: RejectReason;
      readonly message: string;
      readonly issues?: readonly FieldIssue[];
      readonly instanceId?: string;
    }
  | {
      readonly kind: 'failed';
      readonly statusCode: 503;
      readonly reason: FailReason;
      readonly message: string;
      /** What the dependency said (for the log, never for the answer). */
      readonly cause: string;
      readonly instanceId?: string;
      readonly publishMs?: number;
    };

export type ResponseBody =
  | { readonly ok: true; readonly eventId: string }
  | {
      readonly ok: false;
      readonly error: RejectReason | FailReason;
      readonly message: string;
      readonly issues?: readonly FieldIssue[];
    };

const JSON_MEDIA_TYPE = /^application\/(?:[\w.+-]+\+)?json$/i;

function reject(
  statusCode: 400 | 401 | 404 | 413 | 415,
  reason: RejectReason,
  message: string,
  extra: { issues?: readonly FieldIssue[]; instanceId?: string } = {},
): Outcome {
  return { kind: 'rejected', statusCode, reason, message, ...extra };
}

/** True for `application/json`, `application/json; charset=utf-8`, `application/*+json`; absent counts as JSON. */
export function isJsonContentType(contentType: string | undefined): boolean {
  if (contentType === undefined || contentType.trim() === '') return true;
  // Stryker disable next-line OptionalChaining,LogicalOperator,StringLiteral: equivalent, split always yields a first element.
  const mediaType = contentType.split(';', 1)[0]?.trim() ?? '';
  return JSON_MEDIA_TYPE.test(mediaType);
}

/** Turns valibot issues into `{ field, message }` pairs naming the failing fields. */
export function describeIssues(issues: readonly v.BaseIssue<unknown>[]): FieldIssue[] {
  return issues.map((issue) => {
    const field = v.getDotPath(issue) ?? '(body)';
    return { field, message: issue.message };
  });
}

/**
 * Steps 1 and 2: is the caller who it says it is? Undefined when it is; otherwise the outcome to answer.
 * The local server runs this before it reads a body.
 */
export async function authenticate(
  instanceId: string | undefined,
  secret: string | undefined,
  deps: Pick<ReceiveDeps, 'verifySecret'>,
  deadline: Deadline,
): Promise<Outcome | undefined> {
  if (instanceId === undefined || !INSTANCE_ID_PATTERN.test(instanceId)) {
    return reject(404, 'unknown-instance', 'the URL does not name a Z-API instance');
  }
  if (secret === undefined || secret === '') {
    return reject(401, 'unauthorized', 'missing secret: the webhook URL must carry ?secret=...');
  }
  let authentic: boolean;
  try {
    const verdict = deps.verifySecret(instanceId, secret, deadline);
    // Stryker disable next-line ConditionalExpression: equivalent, awaiting a boolean gives the boolean (the check only saves a tick).
    authentic = typeof verdict === 'boolean' ? verdict : await verdict;
  } catch (error) {
    return failed(error, 'secret-unavailable', 'cannot verify the webhook secret right now; retry later');
  }
  return authentic ? undefined : reject(401, 'unauthorized', 'wrong secret for this instance');
}

export async function receiveWebhook(
  request: WebhookRequest,
  deps: ReceiveDeps,
  deadline: Deadline,
): Promise<Outcome> {
  // 1-2. Authenticate first: nothing else is looked at for an unauthenticated caller.
  const refused = await authenticate(request.instanceId, request.secret, deps, deadline);
  if (refused !== undefined) return refused;
  const instanceId = request.instanceId as string;

  // 3. JSON only.
  if (!isJsonContentType(request.contentType)) {
    return reject(415, 'unsupported-media-type', 'content-type must be application/json', { instanceId });
  }

  // 4. Size, counted on the decoded bytes.
  const raw = request.body ?? '';
  const bytes = request.isBase64Encoded ? Buffer.from(raw, 'base64') : undefined;
  // Stryker disable next-line StringLiteral: equivalent, Node reads an empty encoding as UTF-8 too.
  const size = bytes ? bytes.byteLength : Buffer.byteLength(raw, 'utf8');
  if (size > deps.maxBodyBytes) {
    return reject(413, 'payload-too-large', `body is ${size} bytes; the limit is ${deps.maxBodyBytes}`, {
      instanceId,
    });
  }
  const text = bytes ? bytes.toString('utf8') : raw;

  // 5. JSON syntax; numbers JSON cannot carry (1e309 parses to Infinity) are refused, not rewritten.
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return reject(400, 'malformed-json', text.trim() === '' ? 'body is empty' : 'body is not valid JSON', {
      instanceId,
    });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    return reject(400, 'invalid-body', 'body must be a JSON object', {
      instanceId,
      issues: [{ field: '(body)', message: 'must be a JSON object' }],
    });
  }
  const problem = jsonProblem(parsed);
  if (problem !== undefined) {
    const message =
      problem.kind === 'non-finite'
        ? 'must be a finite number'
        : problem.kind === 'ill-formed'
          ? 'must be well-formed Unicode (it holds an unpaired surrogate)'
          : `must not nest deeper than ${MAX_JSON_DEPTH} levels`;
    return reject(400, 'invalid-body', `invalid field(s): ${problem.path}`, {
      instanceId,
      issues: [{ field: problem.path, message }],
    });
  }

  // 6. The contract.
  const result = v.safeParse(PresenceCallbackSchema, parsed);
  if (!result.success) {
    const issues = describeIssues(result.issues);
    return reject(
      400,
      'invalid-body',
      `invalid field(s): ${[...new Set(issues.map((i) => i.field))].join(', ')}`,
      { instanceId, issues },
    );
  }
  const callback = result.output;
  if (callback.instanceId !== instanceId) {
    return reject(400, 'invalid-body', 'invalid field(s): instanceId', {
      instanceId,
      issues: [{ field: 'instanceId', message: 'must equal the instance in the URL' }],
    });
  }

  // 7. Publish exactly what was validated, if EventBridge can take it: its canonical form can be longer
  // than the body (`9e15` is written out in full), and an entry over the limit would fail every retry.
  const receivedAt = request.receivedAt ?? (deps.clock ?? Date.now)();
  const detail = canonicalDetail(stampedDetail(callback, receivedAt));
  const detailBytes = Buffer.byteLength(detail, 'utf8');
  if (detailBytes > MAX_DETAIL_BYTES) {
    return reject(
      413,
      'payload-too-large',
      `the event would be ${detailBytes} bytes on the bus; EventBridge takes at most ${MAX_DETAIL_BYTES}`,
      { instanceId },
    );
  }
  const now = deps.now ?? defaultNow;
  const started = now();
  try {
    const { eventId } = await deps.publish(callback.status, detail, deadline, eventSourceFor(instanceId));
    return {
      kind: 'accepted',
      statusCode: 200,
      instanceId,
      status: callback.status,
      eventId,
      publishMs: now() - started,
    };
  } catch (error) {
    const outcome = failed(
      error,
      'bus-unavailable',
      'the event bus did not accept the event; retry later',
      instanceId,
    );
    // Stryker disable next-line ConditionalExpression: equivalent, failed() returns a failed outcome or throws.
    return outcome.kind === 'failed' ? { ...outcome, publishMs: now() - started } : outcome;
  }
}

const defaultNow = () => performance.now();

function failed(error: unknown, reason: FailReason, message: string, instanceId?: string): Outcome {
  if (!(error instanceof DependencyError)) throw error;
  const cause = error.message;
  return instanceId === undefined
    ? { kind: 'failed', statusCode: 503, reason, message, cause }
    : { kind: 'failed', statusCode: 503, reason, message, cause, instanceId };
}

/** The small JSON body answered for an outcome: no stack traces, no internals. */
export function responseBody(outcome: Outcome): ResponseBody {
  if (outcome.kind === 'accepted') return { ok: true, eventId: outcome.eventId };
  if (outcome.kind === 'rejected' && outcome.issues) {
    return { ok: false, error: outcome.reason, message: outcome.message, issues: outcome.issues };
  }
  return { ok: false, error: outcome.reason, message: outcome.message };
}
