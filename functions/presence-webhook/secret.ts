/**
 * The webhook secret, read from SSM once and cached across invocations.
 *
 * - Compared in constant time (both sides hashed to SHA-256, then `timingSafeEqual`).
 * - Re-read after `ttlMs` so a rotated secret takes effect without a redeploy.
 * - On a mismatch, re-read early (at most once per `refreshOnMismatchAfterMs`): right after a rotation
 *   Z-API already sends the new value while this container still holds the old one.
 * - If SSM cannot be reached but a value is cached, the cached value keeps serving.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { DependencyError } from './receive.ts';

/** Shortest secret accepted: anything shorter could be guessed. */
export const MIN_SECRET_LENGTH = 16;

export interface SecretVerifierOptions {
  /** Reads the current secret value (SSM GetParameter WithDecryption). */
  readonly load: () => Promise<string | undefined>;
  /** @default 300_000 (5 minutes) */
  readonly ttlMs?: number;
  /** @default 30_000 */
  readonly refreshOnMismatchAfterMs?: number;
  /** @default Date.now */
  readonly now?: () => number;
}

interface Cached {
  readonly digest: Buffer;
  readonly fetchedAt: number;
}

const digestOf = (value: string): Buffer => createHash('sha256').update(value, 'utf8').digest();

export function createSecretVerifier(
  options: SecretVerifierOptions,
): (candidate: string) => Promise<boolean> {
  const ttlMs = options.ttlMs ?? 300_000;
  const refreshAfter = options.refreshOnMismatchAfterMs ?? 30_000;
  const now = options.now ?? Date.now;
  let cached: Cached | undefined;
  let inFlight: Promise<Cached> | undefined;

  async function fetchSecret(): Promise<Cached> {
    let value: string | undefined;
    try {
      value = await options.load();
    } catch (error) {
      throw new DependencyError('secret', 'the webhook secret parameter could not be read', { cause: error });
    }
    if (value === undefined || value.length < MIN_SECRET_LENGTH) {
      throw new DependencyError(
        'secret',
        `the webhook secret parameter is empty or shorter than ${MIN_SECRET_LENGTH} characters`,
      );
    }
    return { digest: digestOf(value), fetchedAt: now() };
  }

  async function refresh(): Promise<Cached> {
    inFlight ??= fetchSecret().finally(() => {
      inFlight = undefined;
    });
    try {
      cached = await inFlight;
    } catch (error) {
      if (cached === undefined) throw error;
      // Keep serving the last good value; try again after another refresh window.
      cached = { digest: cached.digest, fetchedAt: now() - ttlMs + refreshAfter };
    }
    return cached;
  }

  return async function verifySecret(candidate: string): Promise<boolean> {
    let current = cached !== undefined && now() - cached.fetchedAt < ttlMs ? cached : await refresh();
    const candidateDigest = digestOf(candidate);
    if (timingSafeEqual(candidateDigest, current.digest)) return true;
    if (now() - current.fetchedAt < refreshAfter) return false;
    current = await refresh();
    return timingSafeEqual(candidateDigest, current.digest);
  };
}
