/**
 * The receiver's environment: names only, never secret values. Shared with lib/ so the construct sets
 * exactly the variables the function reads.
 */
export const RECEIVER_ENV = {
  eventBusName: 'EVENT_BUS_NAME',
  instanceIds: 'ZAPI_INSTANCE_IDS',
  secretParameterName: 'WEBHOOK_SECRET_PARAMETER',
  maxBodyBytes: 'MAX_BODY_BYTES',
  secretCacheSeconds: 'SECRET_CACHE_SECONDS',
  metricsNamespace: 'METRICS_NAMESPACE',
} as const;

/** Defaults of the receiver's settings (the construct and the local server use the same). */
export const RECEIVER_DEFAULTS = {
  maxBodyBytes: 16_384,
  secretCacheSeconds: 300,
  metricsNamespace: 'ZapiPresence',
} as const;

export interface ReceiverEnv {
  readonly eventBusName: string;
  readonly instanceIds: ReadonlySet<string>;
  readonly secretParameterName: string;
  readonly maxBodyBytes: number;
  readonly secretCacheSeconds: number;
  readonly metricsNamespace: string;
}

export function parseInstanceIds(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((id) => id.trim())
    .filter((id) => id !== '');
}

function required(env: NodeJS.ProcessEnv, name: string): string {
  const value = env[name]?.trim();
  if (!value) throw new Error(`environment variable ${name} is required`);
  return value;
}

function positiveInt(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name]?.trim();
  if (!raw) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value <= 0)
    throw new Error(`environment variable ${name} must be a positive integer, got "${raw}"`);
  return value;
}

export function readReceiverEnv(env: NodeJS.ProcessEnv): ReceiverEnv {
  const instanceIds = parseInstanceIds(required(env, RECEIVER_ENV.instanceIds));
  if (instanceIds.length === 0)
    throw new Error(`environment variable ${RECEIVER_ENV.instanceIds} lists no instance`);
  return {
    eventBusName: required(env, RECEIVER_ENV.eventBusName),
    instanceIds: new Set(instanceIds),
    secretParameterName: required(env, RECEIVER_ENV.secretParameterName),
    maxBodyBytes: positiveInt(env, RECEIVER_ENV.maxBodyBytes, RECEIVER_DEFAULTS.maxBodyBytes),
    secretCacheSeconds: positiveInt(
      env,
      RECEIVER_ENV.secretCacheSeconds,
      RECEIVER_DEFAULTS.secretCacheSeconds,
    ),
    metricsNamespace: env[RECEIVER_ENV.metricsNamespace]?.trim() || RECEIVER_DEFAULTS.metricsNamespace,
  };
}
