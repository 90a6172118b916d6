/**
 * What lib/ and the two fleet functions (the reconciler and the deploy-time registration) agree on:
 * environment variable names, metric names and defaults. A leaf: no runtime imports.
 */
export const FLEET_ENV = {
  webhookBaseUrl: 'WEBHOOK_BASE_URL',
  tokenParameterTemplate: 'TOKEN_PARAMETER_TEMPLATE',
  masterSecretParameter: 'WEBHOOK_SECRET_PARAMETER',
  clientTokenParameter: 'CLIENT_TOKEN_PARAMETER',
  zapiBaseUrl: 'ZAPI_BASE_URL',
  zapiAttemptTimeoutMs: 'ZAPI_ATTEMPT_TIMEOUT_MS',
  zapiMaxAttempts: 'ZAPI_MAX_ATTEMPTS',
  driftPolicy: 'DRIFT_POLICY',
  concurrency: 'RECONCILE_CONCURRENCY',
  dueWarningDays: 'DUE_WARNING_DAYS',
  currentPaymentStatuses: 'CURRENT_PAYMENT_STATUSES',
  metricsNamespace: 'METRICS_NAMESPACE',
} as const;

export const FLEET_DEFAULTS = {
  tokenParameterTemplate: '/zapi/{instanceId}/token',
  zapiBaseUrl: 'https://api.z-api.io',
  zapiAttemptTimeoutMs: 5_000,
  zapiMaxAttempts: 4,
  driftPolicy: 'repair',
  concurrency: 16,
  dueWarningDays: 7,
  /** Z-API does not document its `paymentStatus` values: anything else is reported (configurable). */
  currentPaymentStatuses: ['PAID', 'TRIAL', 'ACTIVE', 'CURRENT'],
  /** Drift sweep interval. */
  sweepIntervalMinutes: 60,
  /** The reconciler's Lambda timeout. */
  reconcilerTimeoutSeconds: 300,
  /** The deploy-time registration's Lambda timeout. */
  registrationTimeoutSeconds: 300,
} as const;

/**
 * Metrics of every run (CloudWatch EMF), with the dimension `Trigger` (deploy, sweep, change, manual).
 * Whole-fleet runs also carry `Scope=fleet`; runs for listed instances `Scope=instances`.
 */
export const FLEET_METRICS = {
  fleetSize: 'FleetSize',
  healthy: 'Healthy',
  registered: 'Registered',
  newlyRegistered: 'NewlyRegistered',
  corrected: 'Corrected',
  failed: 'Failed',
  unregistered: 'Unregistered',
  driftReported: 'DriftReported',
  disconnected: 'Disconnected',
  expiringSoon: 'ExpiringSoon',
  paymentIssues: 'PaymentIssues',
  released: 'Released',
  durationMs: 'RunDuration',
} as const;

/** The placeholder the token parameter template must contain. */
export const INSTANCE_PLACEHOLDER = '{instanceId}';
