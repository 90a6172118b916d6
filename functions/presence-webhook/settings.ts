/**
 * What lib/ and the receiver agree on: environment variable names, defaults, metric names and reject
 * reasons. A leaf: it imports only shared leaves, so lib/ loads nothing of the function's runtime.
 */
import { DEFAULT_METRICS_NAMESPACE } from '../shared/metrics.ts';

export const RECEIVER_ENV = {
  eventBusName: 'EVENT_BUS_NAME',
  secretParameterName: 'WEBHOOK_SECRET_PARAMETER',
  maxBodyBytes: 'MAX_BODY_BYTES',
  secretCacheSeconds: 'SECRET_CACHE_SECONDS',
  secretGraceSeconds: 'SECRET_GRACE_SECONDS',
  sdkAttemptTimeoutMs: 'SDK_ATTEMPT_TIMEOUT_MS',
  sdkMaxAttempts: 'SDK_MAX_ATTEMPTS',
  metricsNamespace: 'METRICS_NAMESPACE',
  /** `true`: extract the traffic metrics (Accepted, PublishLatency, Rejected) too. */
  detailedMetrics: 'DETAILED_METRICS',
} as const;

/** Defaults of the receiver's settings (the construct and the local server use the same). */
export const RECEIVER_DEFAULTS = {
  maxBodyBytes: 16_384,
  secretCacheSeconds: 300,
  /**
   * The previous master's derived secrets stay valid this long after a rotation: receivers learn the
   * new master, the reconciler re-registers every instance, and one hourly sweep after that retries any
   * instance Z-API failed for (see minimumGraceSeconds in lib/webhook-fleet.ts).
   */
  secretGraceSeconds: 5_400,
  /** Per-attempt timeout of an SSM or EventBridge call (the invocation's deadline still bounds the whole). */
  sdkAttemptTimeoutMs: 2_000,
  sdkMaxAttempts: 2,
  metricsNamespace: DEFAULT_METRICS_NAMESPACE,
  timeoutSeconds: 10,
  memoryMb: 256,
} as const;

export const METRIC_NAMES = {
  accepted: 'Accepted',
  publishLatency: 'PublishLatency',
  rejected: 'Rejected',
  publishFailures: 'PublishFailures',
  secretFailures: 'SecretFailures',
  internalErrors: 'InternalErrors',
  refusedCallbacks: 'RefusedCallbacks',
} as const;

/** Why a webhook is refused (4xx); also the `Reason` metric dimension. */
export const REJECT_REASONS = [
  'unauthorized',
  'unknown-instance',
  'unsupported-media-type',
  'payload-too-large',
  'malformed-json',
  'invalid-body',
] as const;
export type RejectReason = (typeof REJECT_REASONS)[number];

/**
 * Refusals of a caller that proved its secret (the receiver authenticates before it reads a body): the
 * callback is lost, so each is counted (RefusedCallbacks) and alarmed on, detailed metrics or not.
 */
export const REFUSED_CALLBACK_REASONS: readonly RejectReason[] = [
  'unsupported-media-type',
  'payload-too-large',
  'malformed-json',
  'invalid-body',
];
