/**
 * Reads the receiver's environment (names and numbers only, never secret values); the names and defaults
 * live in ./settings.ts, which lib/ shares.
 */
import { RECEIVER_DEFAULTS, RECEIVER_ENV } from './settings.ts';

export { RECEIVER_DEFAULTS, RECEIVER_ENV } from './settings.ts';

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
