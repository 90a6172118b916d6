/**
 * The canary's core: one Z-API-shaped `PresenceChatCallback` for the canary's instance, POSTed through
 * the stack's own public URL exactly as Z-API calls it, and what its answer says about the path.
 *
 * Pure apart from its injected dependencies (the HTTP call and the clock), so the Lambda handler and the
 * tests run exactly this code. The URL carries the instance's secret: it is never part of an outcome, a
 * log line or an error.
 */
import type { Deadline } from '../shared/aws/deadline.ts';
import { CALLBACK_TYPE, CANARY_INSTANCE_ID } from '../shared/contract/presence-contract.ts';
import { deriveInstanceSecret, instanceWebhookPath } from '../shared/secrets/webhook-secret.ts';
import { CANARY_FAILURES, type CanaryFailure } from './settings.ts';

/** The chat the canary reports on: Brazil's country code with area code 00, which no phone has. */
export const CANARY_PHONE = '550000000000';

/**
 * The callback the canary sends. `canary` is kept on the bus (the contract keeps unknown fields): its
 * `apiId` says which API it went through, so deployments sharing a bus never count each other's canary.
 */
export function canaryCallback(sentAt: number, runId: string, apiId: string) {
  return {
    type: CALLBACK_TYPE,
    phone: CANARY_PHONE,
    status: 'AVAILABLE',
    lastSeen: null,
    instanceId: CANARY_INSTANCE_ID,
    canary: { sentAt, runId, apiId },
  } as const;
}

export interface HttpAnswer {
  readonly status: number;
  readonly body: string;
}

/** Why an HTTP call produced no answer. */
export class NoAnswer extends Error {
  constructor(readonly kind: 'timeout' | 'network') {
    super(
      kind === 'timeout' ? 'no complete answer before the deadline' : 'the endpoint could not be reached',
    );
    this.name = 'NoAnswer';
  }
}

export interface ProbeDeps {
  /** POSTs JSON to `url` (no redirects followed); throws {@link NoAnswer}. */
  post(url: string, body: string, deadline: Deadline): Promise<HttpAnswer>;
  /** Epoch ms. @default Date.now */
  readonly now?: () => number;
}

export type ProbeOutcome =
  | {
      readonly ok: true;
      readonly status: number;
      readonly eventId: string;
      readonly runId: string;
      readonly sentAt: number;
      readonly ms: number;
    }
  | {
      readonly ok: false;
      /** The HTTP status, or what stood in for one. */
      readonly status: number | 'timeout' | 'network' | 'secret-read';
      readonly failure: CanaryFailure;
      /** What that failure points at, to check first. */
      readonly message: string;
      /** The receiver's own error word (`bus-unavailable`, ...), when it answered with one. */
      readonly error?: string;
      readonly runId: string;
      readonly ms?: number;
    };

/** The receiver's error words a 503 may carry (nothing else from an answer is ever shown). */
const RECEIVER_503: ReadonlySet<string> = new Set(['bus-unavailable', 'secret-unavailable']);

/** A top-level field of a JSON answer; undefined when the answer is not JSON or has no such field. */
function field(body: string, name: string): unknown {
  try {
    return (JSON.parse(body) as Record<string, unknown> | null)?.[name];
    // Stryker disable next-line BlockStatement: equivalent, a function that returns nothing returns undefined too.
  } catch {
    return undefined;
  }
}

function errorWord(body: string): string | undefined {
  const error = field(body, 'error');
  return typeof error === 'string' && /^[a-z-]{1,40}$/.test(error) ? error : undefined;
}

/** What an answer's status says failed (undefined for a 2xx). */
export function classify(
  status: number,
  body: string,
): { failure: CanaryFailure; error?: string } | undefined {
  if (status >= 200 && status < 300) return undefined;
  if (status === 401) return { failure: 'secret-mismatch' };
  if (status === 403 || status === 404) return { failure: 'route' };
  if (status === 429) return { failure: 'throttled' };
  if (status >= 300 && status < 400) return { failure: 'redirect' };
  if (status >= 400 && status < 500) {
    const error = errorWord(body);
    return error === undefined ? { failure: 'rejected' } : { failure: 'rejected', error };
  }
  if (status === 503) {
    const error = errorWord(body);
    if (error !== undefined && RECEIVER_503.has(error)) return { failure: error as CanaryFailure, error };
    return { failure: 'receiver-error' };
  }
  if (status >= 500 && status < 600) return { failure: 'receiver-error' };
  return { failure: 'unexpected' };
}

/** One run: derive the canary instance's URL from the master, POST, read the answer. */
export async function probe(
  options: {
    readonly baseUrl: string;
    readonly master: string;
    readonly runId: string;
    /** The API the base URL belongs to (CANARY_API_ID). */
    readonly apiId: string;
  },
  deps: ProbeDeps,
  deadline: Deadline,
): Promise<ProbeOutcome> {
  const now = deps.now ?? Date.now;
  const { runId } = options;
  const url = `${instanceWebhookPath(options.baseUrl, CANARY_INSTANCE_ID)}?secret=${deriveInstanceSecret(options.master, CANARY_INSTANCE_ID)}`;
  const sentAt = now();
  let answer: HttpAnswer;
  try {
    answer = await deps.post(url, JSON.stringify(canaryCallback(sentAt, runId, options.apiId)), deadline);
  } catch (error) {
    const kind = error instanceof NoAnswer ? error.kind : 'network';
    return {
      ok: false,
      status: kind,
      failure: kind,
      message: CANARY_FAILURES[kind],
      runId,
      ms: now() - sentAt,
    };
  }
  const ms = now() - sentAt;
  const verdict = classify(answer.status, answer.body);
  if (verdict === undefined) {
    const eventId = field(answer.body, 'eventId');
    // A 2xx that is not the receiver's (no event id) proves nothing about the bus.
    if (typeof eventId === 'string' && /^[A-Za-z0-9-]{1,100}$/.test(eventId)) {
      return { ok: true, status: answer.status, eventId, runId, sentAt, ms };
    }
    return {
      ok: false,
      status: answer.status,
      failure: 'unexpected',
      message: CANARY_FAILURES.unexpected,
      runId,
      ms,
    };
  }
  return {
    ok: false,
    status: answer.status,
    failure: verdict.failure,
    message: CANARY_FAILURES[verdict.failure],
    ...(verdict.error !== undefined && { error: verdict.error }),
    runId,
    ms,
  };
}
