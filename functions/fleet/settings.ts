/**
 * What lib/ and the two fleet functions (the reconciler and the deploy-time registration) agree on:
 * environment variable names, metric names and defaults. A leaf: no runtime imports.
 */
/** `repair` puts this endpoint back when another URL replaced it; `alert` only reports it. */
export type DriftPolicy = 'repair' | 'alert';
export const DRIFT_POLICIES: readonly DriftPolicy[] = ['repair', 'alert'];

export const FLEET_ENV = {
  webhookBaseUrl: 'WEBHOOK_BASE_URL',
  tokenParameterTemplate: 'TOKEN_PARAMETER_TEMPLATE',
  masterSecretParameter: 'WEBHOOK_SECRET_PARAMETER',
  clientTokenParameter: 'CLIENT_TOKEN_PARAMETER',
  zapiBaseUrl: 'ZAPI_BASE_URL',
  zapiAttemptTimeoutMs: 'ZAPI_ATTEMPT_TIMEOUT_MS',
  zapiMaxAttempts: 'ZAPI_MAX_ATTEMPTS',
  zapiRequestsPerSecond: 'ZAPI_REQUESTS_PER_SECOND',
  /** The registrar only: the reconciler it starts for the rest of the fleet after a deploy. */
  reconcilerFunctionName: 'RECONCILER_FUNCTION_NAME',
  driftPolicy: 'DRIFT_POLICY',
  concurrency: 'RECONCILE_CONCURRENCY',
  dueWarningDays: 'DUE_WARNING_DAYS',
  currentPaymentStatuses: 'CURRENT_PAYMENT_STATUSES',
  metricsNamespace: 'METRICS_NAMESPACE',
  /** `true`: every count of every run is a metric, zeros included (the dashboard's fleet graphs). */
  detailedMetrics: 'DETAILED_METRICS',
  /** The receivers' master cache TTL: how long after a rotation some receiver may not know the new master. */
  receiverCacheSeconds: 'RECEIVER_CACHE_SECONDS',
  /** Added to that TTL before URLs derived from a new master are registered. */
  settleMarginMs: 'SETTLE_MARGIN_MS',
} as const;

export const FLEET_DEFAULTS = {
  tokenParameterTemplate: '/zapi/{instanceId}/token',
  zapiBaseUrl: 'https://api.z-api.io',
  zapiAttemptTimeoutMs: 5_000,
  zapiMaxAttempts: 4,
  /**
   * The request rate a run starts at (it adapts: up while Z-API answers, down on a 429). Z-API documents
   * no rate limit (docs/fleet.md, "Rate limit"), so the start is conservative: below the 50 requests/s
   * per account that reviews of Z-API integrations assume, and still enough for a sweep of 10,000
   * instances (one GET me each) within the reconciler's 15 minutes even if the rate never grew.
   */
  zapiRequestsPerSecond: 20,
  driftPolicy: 'repair',
  concurrency: 16,
  receiverCacheSeconds: 300,
  settleMarginMs: 30_000,
  dueWarningDays: 7,
  /** Z-API does not document its `paymentStatus` values: anything else is reported (configurable). */
  currentPaymentStatuses: ['PAID', 'TRIAL', 'ACTIVE', 'CURRENT'],
  /** Drift sweep interval. */
  sweepIntervalMinutes: 60,
  /**
   * The reconciler's Lambda timeout: after a master rotation it waits out the receivers' cache TTL
   * (up to 10 minutes) before registering the new URLs.
   */
  reconcilerTimeoutSeconds: 900,
  /** The deploy-time registration's Lambda timeout. */
  registrationTimeoutSeconds: 300,
} as const;

/**
 * Metrics of every run (CloudWatch EMF), with the dimension `Trigger` (deploy, sweep, change, manual).
 * Whole-fleet runs also carry `Scope=fleet`; runs for listed instances `Scope=instances`.
 *
 * Without detailed metrics only the counts an alarm watches are extracted, and only when not zero
 * (ALARMED_FLEET_METRICS): a healthy fleet reports no series ($0.30 a month each), and an alarm that
 * treats missing data as not breaching sees exactly what a zero would have told it. Every count is in the
 * run's log line either way.
 */
export const FLEET_METRICS = {
  fleetSize: 'FleetSize',
  healthy: 'Healthy',
  registered: 'Registered',
  newlyRegistered: 'NewlyRegistered',
  corrected: 'Corrected',
  failed: 'Failed',
  unregistered: 'Unregistered',
  notChecked: 'NotChecked',
  driftReported: 'DriftReported',
  disconnected: 'Disconnected',
  expiringSoon: 'ExpiringSoon',
  paymentIssues: 'PaymentIssues',
  released: 'Released',
  durationMs: 'RunDuration',
} as const;

/** The counts an alarm watches: extracted (when not zero) even without detailed metrics. */
export const ALARMED_FLEET_METRICS: ReadonlyArray<keyof typeof FLEET_METRICS> = [
  'failed',
  'unregistered',
  'notChecked',
  'driftReported',
  'disconnected',
  'expiringSoon',
  'paymentIssues',
];

/** The placeholder the token parameter template must contain. */
export const INSTANCE_PLACEHOLDER = '{instanceId}';

// --- The deploy-time registration custom resource's properties (names only, never values) ---------------
export const REGISTRATION_PROPERTIES = {
  /** Comma-separated instance ids that must register for the deploy to succeed (`-c instanceId=...`). */
  requiredInstanceIds: 'RequiredInstanceIds',
  /** Differs on every deploy, so CloudFormation sends an Update (and registration runs) each time. */
  deployNonce: 'DeployNonce',
  /** Marks the fleet resource; resources without it come from versions with one resource per instance. */
  fleet: 'Fleet',
} as const;

/** The custom resource's type and physical id. */
export const REGISTRATION_RESOURCE_TYPE = 'Custom::ZapiPresenceFleet';
export const REGISTRATION_PHYSICAL_ID = 'zapi-chat-presence-fleet';
