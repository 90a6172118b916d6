/**
 * The receiver's environment: names only, never secret values. Shared with lib/ so the construct sets
 * exactly the variables the function reads.
 */
export const RECEIVER_ENV = {
  eventBusName: 'EVENT_BUS_NAME',
  secretParameterName: 'WEBHOOK_SECRET_PARAMETER',
  maxBodyBytes: 'MAX_BODY_BYTES',
  secretCacheSeconds: 'SECRET_CACHE_SECONDS',
  secretGraceSeconds: 'SECRET_GRACE_SECONDS',
  sdkAttemptTimeoutMs: 'SDK_ATTEMPT_TIMEOUT_MS',
  sdkMaxAttempts: 'SDK_MAX_ATTEMPTS',
  metricsNamespace: 'METRICS_NAMESPACE',
} as const;

/** Defaults of the receiver's settings (the construct and the local server use the same). */
export const RECEIVER_DEFAULTS = {
  maxBodyBytes: 16_384,
  secretCacheSeconds: 300,
  /** The previous master's derived secrets stay valid this long after a rotation. */
  secretGraceSeconds: 3_600,
  /** Per-attempt timeout of an SSM or EventBridge call (the invocation's deadline still bounds the whole). */
  sdkAttemptTimeoutMs: 2_000,
  sdkMaxAttempts: 2,
  metricsNamespace: 'ZapiPresence',
  timeoutSeconds: 10,
  memoryMb: 256,
} as const;

export interface ReceiverEnv {
  readonly eventBusName: string;
  readonly secretParameterName: string;
  readonly maxBodyBytes: number;
  readonly secretCacheSeconds: number;
  readonly secretGraceSeconds: number;
  readonly sdkAttemptTimeoutMs: number;
  readonly sdkMaxAttempts: number;
  readonly metricsNamespace: string;
}

function required(env: NodeJS.ProcessEnv, name: string): string {
  const value = env[name]?.trim();
  if (!value) throw new Error(`environment variable ${name} is required`);
  return value;
}

/** A whole number from `min` up, or the fallback when unset. */
export function wholeNumber(env: NodeJS.ProcessEnv, name: string, fallback: number, min = 1): number {
  const raw = env[name]?.trim();
  if (!raw) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min)
    throw new Error(`environment variable ${name} must be a whole number of at least ${min}, got "${raw}"`);
  return value;
}

export function readReceiverEnv(env: NodeJS.ProcessEnv): ReceiverEnv {
  const E = RECEIVER_ENV;
  const D = RECEIVER_DEFAULTS;
  return {
    eventBusName: required(env, E.eventBusName),
    secretParameterName: required(env, E.secretParameterName),
    maxBodyBytes: wholeNumber(env, E.maxBodyBytes, D.maxBodyBytes),
    secretCacheSeconds: wholeNumber(env, E.secretCacheSeconds, D.secretCacheSeconds),
    secretGraceSeconds: wholeNumber(env, E.secretGraceSeconds, D.secretGraceSeconds, 0),
    sdkAttemptTimeoutMs: wholeNumber(env, E.sdkAttemptTimeoutMs, D.sdkAttemptTimeoutMs, 100),
    sdkMaxAttempts: wholeNumber(env, E.sdkMaxAttempts, D.sdkMaxAttempts),
    metricsNamespace: env[E.metricsNamespace]?.trim() || D.metricsNamespace,
  };
}
