/**
 * Reads the receiver's environment (names and numbers only, never secret values); the names and defaults
 * live in ./settings.ts, which lib/ shares.
 */
import { requiredEnv as required, wholeNumber } from '../shared/env.ts';
import { RECEIVER_DEFAULTS, RECEIVER_ENV } from './settings.ts';

export { wholeNumber } from '../shared/env.ts';

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
  readonly detailedMetrics: boolean;
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
    detailedMetrics: env[E.detailedMetrics] === 'true',
  };
}
