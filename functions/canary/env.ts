/** Reads the canary's environment (names and numbers only, never a secret value). */
import { requiredEnv as required, wholeNumber } from '../shared/env.ts';
import { CANARY_DEFAULTS, CANARY_ENV } from './settings.ts';

export interface CanaryEnv {
  readonly webhookBaseUrl: string;
  readonly secretParameterName: string;
  readonly metricsNamespace: string;
  readonly apiId: string;
  readonly requestTimeoutMs: number;
  readonly sdkAttemptTimeoutMs: number;
  readonly sdkMaxAttempts: number;
}

/** Any http(s) base URL (a test's `http://127.0.0.1:PORT` too), with or without a trailing `/`. */
export function webhookBaseUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new Error(`environment variable ${CANARY_ENV.webhookBaseUrl} is not a URL`);
  }
  if ((url.protocol !== 'https:' && url.protocol !== 'http:') || url.search !== '' || url.hash !== '')
    throw new Error(
      `environment variable ${CANARY_ENV.webhookBaseUrl} must be an http(s) URL without query or fragment, like https://abc123.execute-api.sa-east-1.amazonaws.com`,
    );
  return raw.replace(/\/+$/, '');
}

export function readCanaryEnv(env: NodeJS.ProcessEnv): CanaryEnv {
  const E = CANARY_ENV;
  const D = CANARY_DEFAULTS;
  return {
    webhookBaseUrl: webhookBaseUrl(required(env, E.webhookBaseUrl)),
    secretParameterName: required(env, E.secretParameterName),
    metricsNamespace: env[E.metricsNamespace]?.trim() || D.metricsNamespace,
    apiId: env[E.apiId]?.trim() || 'local',
    requestTimeoutMs: wholeNumber(env, E.requestTimeoutMs, D.requestTimeoutMs, 100),
    sdkAttemptTimeoutMs: wholeNumber(env, E.sdkAttemptTimeoutMs, D.sdkAttemptTimeoutMs, 100),
    sdkMaxAttempts: wholeNumber(env, E.sdkMaxAttempts, D.sdkMaxAttempts),
  };
}
