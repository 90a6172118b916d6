/**
 * The webhook secret, read from SSM once and cached across invocations.
 *
 * - Compared in constant time (both sides hashed to SHA-256, then `timingSafeEqual`).
 * - Re-read after `ttlMs` so a rotated secret takes effect without a redeploy.
 * - On a mismatch, re-read early (at most once per `refreshOnMismatchAfterMs`).
 * - Rotation without lost callbacks: the loader may also return the previous value with a deadline.
 *   Until then both are accepted, because Z-API keeps sending the old value until the next deploy
 *   registers the new one.
 * - If SSM cannot be reached but a value is cached, the cached value keeps serving.
 */
import { hash, timingSafeEqual } from 'node:crypto';
import { DependencyError } from './receive.ts';

/** Shortest secret accepted: anything shorter could be guessed. */
export const MIN_SECRET_LENGTH = 16;

export interface SecretValues {
  readonly current: string | undefined;
  /** The value before the last rotation, accepted until `previousUntil` (epoch ms). */
  readonly previous?: string;
  readonly previousUntil?: number;
  /** Cache this answer for less than the usual TTL (the loader could not read everything). */
  readonly ttlMs?: number;
}

export interface SecretVerifierOptions {
  /** Reads the secret (SSM GetParameter WithDecryption); a plain string means no previous value. */
  readonly load: () => Promise<SecretValues | string | undefined>;
  /** @default 300_000 (5 minutes) */
  readonly ttlMs?: number;
  /** @default 30_000 */
  readonly refreshOnMismatchAfterMs?: number;
  /** With nothing cached, how long after a failed read requests are answered 503 without asking SSM. @default 2_000 */
  readonly failedReadBackoffMs?: number;
  /** @default Date.now */
  readonly now?: () => number;
}

interface Cached {
  readonly digest: Buffer;
  readonly previousDigest: Buffer | undefined;
  readonly previousUntil: number;
  /** When the cached value stops being fresh. */
  readonly expiresAt: number;
}

const digestOf = (value: string): Buffer => hash('sha256', value, 'buffer');
const NEVER = Buffer.alloc(32);

export function createSecretVerifier(
  options: SecretVerifierOptions,
): (candidate: string) => boolean | Promise<boolean> {
  const ttlMs = options.ttlMs ?? 300_000;
  const refreshAfter = options.refreshOnMismatchAfterMs ?? 30_000;
  const now = options.now ?? Date.now;
  let cached: Cached | undefined;
  let inFlight: Promise<Cached> | undefined;
  /** Last time SSM was asked, successful or not: bounds re-reads caused by wrong secrets. */
  let lastAttemptAt = Number.NEGATIVE_INFINITY;
  let lastFailureAt = Number.NEGATIVE_INFINITY;
  const failedReadBackoffMs = options.failedReadBackoffMs ?? 2_000;

  async function fetchSecret(): Promise<Cached> {
    let loaded: SecretValues | string | undefined;
    try {
      loaded = await options.load();
    } catch (error) {
      throw new DependencyError('secret', 'the webhook secret parameter could not be read', { cause: error });
    }
    const values: SecretValues = typeof loaded === 'object' ? loaded : { current: loaded };
    if (values.current === undefined || values.current.length < MIN_SECRET_LENGTH) {
      throw new DependencyError(
        'secret',
        `the webhook secret parameter is empty or shorter than ${MIN_SECRET_LENGTH} characters`,
      );
    }
    const previousOk = values.previous !== undefined && values.previous.length >= MIN_SECRET_LENGTH;
    return {
      digest: digestOf(values.current),
      previousDigest: previousOk ? digestOf(values.previous as string) : undefined,
      previousUntil: previousOk ? (values.previousUntil ?? 0) : 0,
      expiresAt: now() + Math.min(ttlMs, values.ttlMs ?? ttlMs),
    };
  }

  async function refresh(): Promise<Cached> {
    if (!inFlight && cached === undefined && now() - lastFailureAt < failedReadBackoffMs) {
      // Nothing to serve and SSM just failed: do not let every request (authentic or not) ask again.
      throw new DependencyError('secret', 'the webhook secret parameter could not be read a moment ago');
    }
    if (!inFlight) {
      lastAttemptAt = now();
      inFlight = fetchSecret().finally(() => {
        inFlight = undefined;
      });
    }
    try {
      cached = await inFlight;
    } catch (error) {
      lastFailureAt = now();
      if (cached === undefined) throw error;
      // Keep serving the last good value; try again after another refresh window.
      cached = { ...cached, expiresAt: now() + refreshAfter };
    }
    return cached;
  }

  function matches(candidateDigest: Buffer, secret: Cached): boolean {
    // Both comparisons always run, so the time taken does not say which value matched.
    const current = timingSafeEqual(candidateDigest, secret.digest);
    const previousLive = secret.previousDigest !== undefined && now() < secret.previousUntil;
    const previous = timingSafeEqual(candidateDigest, secret.previousDigest ?? NEVER) && previousLive;
    return current || previous;
  }

  /** No fresh value, or the fresh one did not match. */
  async function slowPath(candidateDigest: Buffer, fresh: Cached | undefined): Promise<boolean> {
    if (fresh === undefined && matches(candidateDigest, await refresh())) return true;
    // A wrong secret may be a new one this container has not seen yet: re-read, but at most once per
    // window, whatever the outcome of the last read, so wrong secrets cannot drive SSM calls.
    if (now() - lastAttemptAt < refreshAfter) return false;
    return matches(candidateDigest, await refresh());
  }

  /** Answers synchronously on the hot path (a fresh cached secret that matches). */
  return function verifySecret(candidate: string): boolean | Promise<boolean> {
    const candidateDigest = digestOf(candidate);
    const fresh = cached !== undefined && now() < cached.expiresAt ? cached : undefined;
    if (fresh !== undefined && matches(candidateDigest, fresh)) return true;
    return slowPath(candidateDigest, fresh);
  };
}
