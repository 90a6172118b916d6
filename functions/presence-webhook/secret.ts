/**
 * Checks the secret in a webhook URL against the one derived for the instance in its path
 * (functions/shared/secrets/webhook-secret.ts), with the master read from SSM once and cached across invocations.
 *
 * - No instance list and no SSM call per request: one master serves every instance, so the SSM calls of a
 *   container do not grow with the fleet.
 * - Compared in constant time (both sides hashed to SHA-256, then `timingSafeEqual`).
 * - Re-read after `ttlMs`, so a rotated master takes effect without a redeploy; on a mismatch, re-read
 *   early, at most once per `refreshOnMismatchAfterMs` whatever the outcome, so wrong secrets cannot
 *   drive SSM calls.
 * - Rotation without lost callbacks: for the grace window the previous master's derived secrets are
 *   accepted too, while the reconciler re-registers every instance with its new one.
 * - If SSM cannot be reached but a value is cached, the cached value keeps serving; with nothing cached,
 *   requests are answered 503 for `failedReadBackoffMs` without asking SSM again.
 */
import { createHmac, hash, timingSafeEqual } from 'node:crypto';
import type { Deadline } from '../shared/aws/deadline.ts';
import type { MasterSecret } from '../shared/secrets/master-secret.ts';
import { DependencyError } from './receive.ts';

export interface SecretVerifierOptions {
  /** Reads the master (current, and previous within the grace window); throws when it cannot. */
  readonly load: (deadline: Deadline) => Promise<MasterSecret>;
  /** @default 300_000 (5 minutes) */
  readonly ttlMs?: number;
  /** @default 30_000 */
  readonly refreshOnMismatchAfterMs?: number;
  /** With nothing cached, how long after a failed read requests are answered 503 without asking SSM. @default 2_000 */
  readonly failedReadBackoffMs?: number;
  /** How long an incomplete answer (previous version unreadable) is kept. @default 30_000 */
  readonly incompleteTtlMs?: number;
  /**
   * How long a cached master keeps serving while SSM cannot be read (or now holds an invalid value):
   * after a rotation the old master must not stay valid for ever. @default 3_600_000 (the grace window)
   */
  readonly maxStaleMs?: number;
  /** @default Date.now */
  readonly now?: () => number;
}

export type VerifySecret = (
  instanceId: string,
  candidate: string,
  deadline: Deadline,
) => boolean | Promise<boolean>;

interface Cached {
  readonly current: Buffer;
  /** When it was read from SSM. */
  readonly loadedAt: number;
  /** An earlier version could not be read: a mismatch is "cannot verify", not "wrong". */
  readonly incomplete: boolean;
  readonly previous: Buffer | undefined;
  readonly previousUntil: number;
  /** When the cached value stops being fresh. */
  readonly expiresAt: number;
  /**
   * Digests of the current master's derived secrets, per instance that presented it: the hot path then
   * costs one SHA-256 of the candidate, no HMAC. Only matches are kept (a wrong secret adds nothing), at
   * most {@link MAX_CACHED_INSTANCES}; a new master starts an empty map.
   */
  readonly verified: Map<string, Buffer>;
}

/** Instances whose derived-secret digest one cached master keeps (a fleet is far smaller). */
export const MAX_CACHED_INSTANCES = 10_000;

const digestOf = (value: string): Buffer => hash('sha256', value, 'buffer');

/** SHA-256 of the secret derived from `key` for `instanceId` (see deriveInstanceSecret). */
const expectedDigest = (key: Buffer, instanceId: string): Buffer =>
  // Stryker disable next-line StringLiteral: equivalent, Node reads an empty encoding as UTF-8 too.
  digestOf(createHmac('sha256', key).update(instanceId, 'utf8').digest('base64url'));

export function createSecretVerifier(options: SecretVerifierOptions): VerifySecret {
  const ttlMs = options.ttlMs ?? 300_000;
  const refreshAfter = options.refreshOnMismatchAfterMs ?? 30_000;
  const failedReadBackoffMs = options.failedReadBackoffMs ?? 2_000;
  const incompleteTtlMs = options.incompleteTtlMs ?? 30_000;
  const maxStaleMs = options.maxStaleMs ?? 3_600_000;
  const now = options.now ?? Date.now;
  let cached: Cached | undefined;
  let inFlight: Promise<Cached> | undefined;
  /** Last time SSM was asked, successful or not: bounds re-reads caused by wrong secrets. */
  let lastAttemptAt = Number.NEGATIVE_INFINITY;
  let lastFailureAt = Number.NEGATIVE_INFINITY;

  async function fetchMaster(deadline: Deadline): Promise<Cached> {
    let master: MasterSecret;
    try {
      master = await options.load(deadline);
    } catch (error) {
      const detail = error instanceof Error ? error.message : 'unknown error';
      throw new DependencyError('secret', `the webhook master secret could not be read: ${detail}`, {
        cause: error,
      });
    }
    const ttl = master.incomplete ? Math.min(ttlMs, incompleteTtlMs) : ttlMs;
    return {
      // Stryker disable next-line StringLiteral: equivalent, Node reads an empty encoding as UTF-8 too.
      current: Buffer.from(master.current, 'utf8'),
      // Stryker disable next-line StringLiteral: equivalent, as above.
      previous: master.previous === undefined ? undefined : Buffer.from(master.previous, 'utf8'),
      // Read only together with `previous` (see matches).
      previousUntil: master.previousUntil ?? 0,
      expiresAt: now() + ttl,
      loadedAt: now(),
      incomplete: master.incomplete === true,
      verified: new Map(),
    };
  }

  async function refresh(deadline: Deadline): Promise<Cached> {
    if (!inFlight && cached === undefined && now() - lastFailureAt < failedReadBackoffMs) {
      // Nothing to serve and SSM just failed: do not let every request (authentic or not) ask again.
      throw new DependencyError('secret', 'the webhook master secret could not be read a moment ago');
    }
    if (!inFlight) {
      lastAttemptAt = now();
      inFlight = fetchMaster(deadline).finally(() => {
        inFlight = undefined;
      });
    }
    try {
      cached = await inFlight;
    } catch (error) {
      lastFailureAt = now();
      // Keep serving the last good value for a while (try again after another refresh window), but not
      // past the staleness bound: a rotated-away master must stop working even if SSM stays down.
      if (cached === undefined || now() - cached.loadedAt >= maxStaleMs) {
        cached = undefined;
        throw error;
      }
      cached = { ...cached, expiresAt: Math.min(now() + refreshAfter, cached.loadedAt + maxStaleMs) };
    }
    return cached;
  }

  function matches(instanceId: string, candidateDigest: Buffer, secret: Cached): boolean {
    const known = secret.verified.get(instanceId);
    const expected = known ?? expectedDigest(secret.current, instanceId);
    const current = timingSafeEqual(candidateDigest, expected);
    if (current && known === undefined) {
      if (secret.verified.size >= MAX_CACHED_INSTANCES) secret.verified.clear();
      secret.verified.set(instanceId, expected);
    }
    if (secret.previous === undefined || now() >= secret.previousUntil) {
      if (!current && secret.incomplete) {
        // It may be the previous master's URL, which could not be read: a retryable 503, not a 401.
        throw new DependencyError(
          'secret',
          'an earlier version of the webhook master secret could not be read',
        );
      }
      return current;
    }
    const previous = timingSafeEqual(candidateDigest, expectedDigest(secret.previous, instanceId));
    return current || previous;
  }

  /** No fresh value, or the fresh one did not match. */
  async function slowPath(
    instanceId: string,
    candidateDigest: Buffer,
    fresh: Cached | undefined,
    deadline: Deadline,
  ): Promise<boolean> {
    if (fresh === undefined && matches(instanceId, candidateDigest, await refresh(deadline))) return true;
    // A wrong secret may come from a master this container has not seen yet: re-read, but at most once
    // per window, whatever the outcome of the last read.
    if (now() - lastAttemptAt < refreshAfter) return false;
    return matches(instanceId, candidateDigest, await refresh(deadline));
  }

  /** Answers synchronously on the hot path (a fresh cached master that matches). */
  return function verifySecret(instanceId, candidate, deadline) {
    const candidateDigest = digestOf(candidate);
    const fresh = cached !== undefined && now() < cached.expiresAt ? cached : undefined;
    if (fresh !== undefined && matches(instanceId, candidateDigest, fresh)) return true;
    return slowPath(instanceId, candidateDigest, fresh, deadline);
  };
}
