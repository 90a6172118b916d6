/**
 * CDK context -> typed, validated configuration. Every setting is read here and nowhere else; every
 * problem is reported at once, each naming its context key with an example value.
 *
 *   npx cdk synth -c instanceId=ID1,ID2 -c throttleRateLimit=100
 *
 * Values given with `-c` arrive as strings; values in cdk.json may be numbers or booleans: both work.
 */
import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { CANARY_DEFAULTS } from '../functions/canary/settings.ts';
import { DRIFT_POLICIES, type DriftPolicy, FLEET_DEFAULTS } from '../functions/fleet/settings.ts';
import { RECEIVER_DEFAULTS } from '../functions/presence-webhook/settings.ts';
import { CANARY_INSTANCE_ID, INSTANCE_ID_PATTERN } from '../functions/shared/contract/presence-contract.ts';
import { STAGE_PATTERN, stageParameter } from '../functions/shared/stage.ts';
import { ALARM_NAMES, type AlarmName } from './monitoring.ts';
import { DEFAULT_SECRET_PARAMETER } from './presence-webhook.ts';
import { defaultGraceSeconds, minimumGraceSeconds } from './webhook-fleet.ts';

/** Settings that hold a list: comma-separated, or a JSON array in cdk.json. */
const LIST_KEYS: ReadonlySet<string> = new Set([
  'instanceId',
  'liveFeedAllowedOrigins',
  'subscriberAccountIds',
  'currentPaymentStatuses',
]);

/** Every context key this app reads, with its default (if any) and an example. */
export const CONTEXT_KEYS = {
  stage: {
    example: 'staging (deploys the stack ZapiPresence-staging, with its parameters under /zapi-staging/)',
  },
  instanceId: {
    example: '3C01A2B3C4D5E6F7A8B9C0D1E2F3A4B5 (several: ID1,ID2; in cdk.json also ["ID1", "ID2"]; optional)',
  },
  eventBusArn: { example: 'arn:aws:events:sa-east-1:123456789012:event-bus/my-bus' },
  eventBusName: { example: 'zapi-chat-presence' },
  webhookSecretParameter: { default: DEFAULT_SECRET_PARAMETER, example: '/zapi/webhook-secret' },
  instanceTokenParameter: {
    default: FLEET_DEFAULTS.tokenParameterTemplate,
    example: '/zapi/{instanceId}/token',
  },
  clientTokenParameter: { example: '/zapi/client-token' },
  zapiBaseUrl: { default: 'https://api.z-api.io', example: 'https://api.z-api.io' },
  registerWebhook: { default: true, example: 'false (register the URL in the Z-API panel yourself)' },
  throttleRateLimit: { default: 50, example: '50' },
  throttleBurstLimit: { default: 100, example: '100' },
  maxBodyBytes: { default: RECEIVER_DEFAULTS.maxBodyBytes, example: '16384' },
  archiveRetentionDays: { default: 30, example: '30 (0 keeps events forever)' },
  logRetentionDays: { default: 365, example: '365' },
  encryptLogs: {
    default: false,
    example: 'true (a customer-managed KMS key for the log groups: $1 a month)',
  },
  detailedMetrics: {
    default: false,
    example:
      'true (traffic per status and reason, canary latency, every fleet count: $0.30 a month a series)',
  },
  dashboard: { default: false, example: 'true (a CloudWatch dashboard: $3 a month beyond the first three)' },
  subscriberAccountIds: { example: '210987654321 (several: ID1,ID2)' },
  receiverReservedConcurrency: { example: '10 (default: none reserved)' },
  receiverTimeoutSeconds: { default: RECEIVER_DEFAULTS.timeoutSeconds, example: '10' },
  receiverMemoryMb: { default: RECEIVER_DEFAULTS.memoryMb, example: '256' },
  sdkAttemptTimeoutMs: { default: RECEIVER_DEFAULTS.sdkAttemptTimeoutMs, example: '2000' },
  sdkMaxAttempts: { default: RECEIVER_DEFAULTS.sdkMaxAttempts, example: '2' },
  secretCacheSeconds: { default: RECEIVER_DEFAULTS.secretCacheSeconds, example: '300' },
  secretGraceMinutes: { default: RECEIVER_DEFAULTS.secretGraceSeconds / 60, example: '120' },
  driftPolicy: { default: FLEET_DEFAULTS.driftPolicy, example: 'repair (or alert)' },
  sweepIntervalMinutes: { default: FLEET_DEFAULTS.sweepIntervalMinutes, example: '60' },
  reconcileConcurrency: { default: FLEET_DEFAULTS.concurrency, example: '16' },
  zapiAttemptTimeoutMs: { default: FLEET_DEFAULTS.zapiAttemptTimeoutMs, example: '5000' },
  zapiMaxAttempts: { default: FLEET_DEFAULTS.zapiMaxAttempts, example: '4' },
  zapiRequestsPerSecond: { default: FLEET_DEFAULTS.zapiRequestsPerSecond, example: '20' },
  registrationTimeoutSeconds: { default: FLEET_DEFAULTS.registrationTimeoutSeconds, example: '300' },
  reconcilerTimeoutSeconds: { default: FLEET_DEFAULTS.reconcilerTimeoutSeconds, example: '900' },
  dueWarningDays: { default: FLEET_DEFAULTS.dueWarningDays, example: '7' },
  currentPaymentStatuses: { example: 'PAID,TRIAL (default: PAID,TRIAL,ACTIVE,CURRENT)' },
  alarmThresholds: { example: '\'{"PublishFailures":5,"Disconnected":2}\'' },
  metricsNamespace: { default: RECEIVER_DEFAULTS.metricsNamespace, example: 'ZapiPresence' },
  alarmEmail: { example: 'oncall@example.com.br' },
  schemaRegistry: { default: true, example: 'false' },
  debugEventLog: { default: false, example: 'true' },
  presenceStore: { default: false, example: 'true (current presence per chat, derived events, a read API)' },
  canary: { default: true, example: 'false (no canary: nothing proves the path between callbacks)' },
  canaryIntervalMinutes: {
    default: CANARY_DEFAULTS.intervalMinutes,
    example: `5 (whole minutes from ${CANARY_DEFAULTS.minIntervalMinutes} to ${CANARY_DEFAULTS.maxIntervalMinutes})`,
  },
  activityExpirySeconds: { default: 25, example: '25' },
  presenceIdleDays: { default: 30, example: '30' },
  liveFeed: {
    default: false,
    example:
      "true (presence on agents' screens: AppSync Events, a Cognito user pool; turns presenceStore on)",
  },
  liveFeedUserPoolId: { example: 'sa-east-1_AbCdEf123 (agents sign in with this existing user pool)' },
  liveFeedOidcIssuer: {
    example: 'https://login.example.com.br/realms/helpdesk (agents sign in with your OIDC issuer)',
  },
  liveFeedOidcClientId: { example: 'helpdesk-web' },
  liveFeedGroupsClaim: {
    default: 'groups',
    example: 'groups (the claim of your OIDC tokens that lists groups)',
  },
  liveFeedTokenMinutes: {
    default: 60,
    example: "30 (lifetime of the agents' tokens of the app client the app creates: 5 to 1440)",
  },
  liveFeedAllowedOrigins: {
    default: '*',
    example: 'https://helpdesk.example.com.br (several: A,B; the agent pages that call the snapshot route)',
  },
} as const;

export type ContextKey = keyof typeof CONTEXT_KEYS;

export interface PresenceConfig {
  /** Side-by-side deployments: the stack is `ZapiPresence-{stage}`, its defaults under `/zapi-{stage}/`. */
  readonly stage?: string;
  /** Instances that must register for a deploy to succeed; the fleet is whatever SSM holds. */
  readonly instanceIds: readonly string[];
  /** Publish to this existing bus instead of creating one. */
  readonly eventBusArn?: string;
  /** Name for the bus this app creates. */
  readonly eventBusName?: string;
  /** SSM SecureString holding the webhook master secret. */
  readonly webhookSecretParameter: string;
  /** SSM SecureString holding each instance's token; `{instanceId}` is replaced. */
  readonly instanceTokenParameter: string;
  /** SSM SecureString holding the account security token (Client-Token header), when the account uses one. */
  readonly clientTokenParameter?: string;
  /** Z-API API base URL used by the registration. */
  readonly zapiBaseUrl: string;
  /** Register the webhook URL with Z-API on every deploy. */
  readonly registerWebhook: boolean;
  readonly throttleRateLimit: number;
  readonly throttleBurstLimit: number;
  readonly maxBodyBytes: number;
  /** 0 keeps archived events forever. */
  readonly archiveRetentionDays: number;
  readonly logRetentionDays: RetentionDays;
  /** Reserved concurrency of the receiver; undefined = none reserved. */
  readonly receiverReservedConcurrency?: number;
  readonly receiverTimeoutSeconds: number;
  readonly receiverMemoryMb: number;
  readonly sdkAttemptTimeoutMs: number;
  readonly sdkMaxAttempts: number;
  readonly secretCacheSeconds: number;
  readonly secretGraceMinutes: number;
  readonly driftPolicy: DriftPolicy;
  readonly sweepIntervalMinutes: number;
  readonly reconcileConcurrency: number;
  readonly zapiAttemptTimeoutMs: number;
  readonly zapiMaxAttempts: number;
  /** Z-API requests per second a fleet run starts at (it adapts). */
  readonly zapiRequestsPerSecond: number;
  readonly registrationTimeoutSeconds: number;
  readonly reconcilerTimeoutSeconds: number;
  readonly dueWarningDays: number;
  readonly currentPaymentStatuses?: readonly string[];
  /** Thresholds replacing the alarms' defaults, by alarm name. */
  readonly alarmThresholds: Readonly<Partial<Record<AlarmName, number>>>;
  readonly metricsNamespace: string;
  /** Alarm notifications go here (SNS e-mail subscription). */
  readonly alarmEmail?: string;
  /** Publish the event schema in an EventBridge Schema Registry. */
  readonly schemaRegistry: boolean;
  /** Send every presence event to a CloudWatch log group, to watch events arrive. */
  readonly debugEventLog: boolean;
  /** Encrypt the log groups with a customer-managed KMS key. */
  readonly encryptLogs: boolean;
  /** Extract the traffic metrics (per status, per reason, canary latency, every fleet count). */
  readonly detailedMetrics: boolean;
  /** Create the CloudWatch dashboard. */
  readonly dashboard: boolean;
  /** Accounts allowed to create rules on the bus. */
  readonly subscriberAccountIds: readonly string[];
  /** Keep each chat's presence state, with derived events and a read API. */
  readonly presenceStore: boolean;
  /** A canary proves the path every `canaryIntervalMinutes`. */
  readonly canary: boolean;
  readonly canaryIntervalMinutes: number;
  readonly activityExpirySeconds: number;
  readonly presenceIdleDays: number;
  /** Presence on agents' screens (needs the presence store, which it turns on). */
  readonly liveFeed?: LiveFeedConfig;
}

export interface LiveFeedConfig {
  /** Agents sign in with this existing Cognito user pool; else one is created (unless oidc). */
  readonly userPoolId?: string;
  /** Agents sign in with this OIDC issuer instead. */
  readonly oidc?: { readonly issuer: string; readonly clientId: string; readonly groupsClaim: string };
  readonly allowedOrigins: readonly string[];
  /** Lifetime of the agents' tokens (minutes), for the app client the app creates. */
  readonly tokenMinutes?: number;
  /** The store was off by default and the feed turned it on (the app says so at synth). */
  readonly turnedStoreOn: boolean;
}

/** Reads one context value; a CDK `App` or `Node` provides this. */
export type ContextReader = (key: string) => unknown;

/** Raised for bad context; its message lists every problem. */
export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`Invalid CDK context:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

const SSM_NAME = /^\/?[A-Za-z0-9_.\-/{}]{1,1011}$/;
const EVENT_BUS_ARN = /^arn:aws[a-z-]*:events:[a-z0-9-]+:\d{12}:event-bus\/[A-Za-z0-9._\-/]{1,256}$/;
const EVENT_BUS_NAME = /^[A-Za-z0-9._-]{1,256}$/;
const MAX_BODY_LIMIT = 200_000;
const LOG_RETENTIONS = new Set<number>(
  Object.values(RetentionDays).filter((value): value is number => typeof value === 'number' && value > 0),
);

/** Context keys the CDK CLI itself writes into cdk.json (not settings of this app). */
const CLI_KEYS = new Set(['acknowledged-issue-numbers']);

/** The closest setting name to a mistyped one (edit distance), if any is close. */
function closestKey(key: string): ContextKey | undefined {
  const distance = (a: string, b: string) => {
    const row = Array.from({ length: b.length + 1 }, (_, i) => i);
    for (let i = 1; i <= a.length; i++) {
      let previous = row[0] as number;
      row[0] = i;
      for (let j = 1; j <= b.length; j++) {
        const saved = row[j] as number;
        row[j] = Math.min(
          (row[j] as number) + 1,
          (row[j - 1] as number) + 1,
          previous + (a[i - 1]?.toLowerCase() === b[j - 1]?.toLowerCase() ? 0 : 1),
        );
        previous = saved;
      }
    }
    return row[b.length] as number;
  };
  let best: [ContextKey, number] | undefined;
  for (const candidate of Object.keys(CONTEXT_KEYS) as ContextKey[]) {
    const d = distance(key, candidate);
    if (best === undefined || d < best[1]) best = [candidate, d];
  }
  return best !== undefined && best[1] <= Math.max(2, Math.floor(key.length / 4)) ? best[0] : undefined;
}

/**
 * Reads and validates every setting. `contextKeys` (every key the app's context holds) lets a mistyped
 * setting (`-c instanceIds=...`) fail loudly instead of being ignored; feature flags and CDK's own keys
 * (they contain `:`) are left alone.
 */
export function loadConfig(read: ContextReader, contextKeys: readonly string[] = []): PresenceConfig {
  const problems: string[] = [];
  for (const key of contextKeys) {
    if (key.includes(':') || key.startsWith('@') || CLI_KEYS.has(key) || key in CONTEXT_KEYS) continue;
    const near = closestKey(key);
    problems.push(
      `${key}: not a setting of this app${near === undefined ? '' : `; did you mean ${near}?`} (every setting: docs/settings.md)`,
    );
  }
  const problem = (key: ContextKey, what: string) =>
    problems.push(`${key}: ${what}. Example: -c ${key}=${CONTEXT_KEYS[key].example}`);

  const text = (key: ContextKey): string | undefined => {
    const raw = read(key);
    // A list setting may be a JSON array in cdk.json: the same as its comma-separated form.
    const value =
      LIST_KEYS.has(key) &&
      Array.isArray(raw) &&
      raw.every((item) => typeof item === 'string' || typeof item === 'number')
        ? raw.join(',')
        : raw;
    if (value === undefined || value === null) return undefined;
    if (typeof value !== 'string' && typeof value !== 'number') {
      problem(key, `expected a string, got ${JSON.stringify(value)}`);
      return undefined;
    }
    const trimmed = String(value).trim();
    return trimmed === '' ? undefined : trimmed;
  };

  const integer = (key: ContextKey, fallback: number, min: number, max: number): number => {
    const raw = text(key);
    if (raw === undefined) return fallback;
    const value = Number(raw);
    if (!Number.isInteger(value) || value < min || value > max) {
      problem(key, `expected a whole number from ${min} to ${max}, got "${raw}"`);
      return fallback;
    }
    return value;
  };

  const ssmName = (key: ContextKey, fallback?: string): string | undefined => {
    const value = text(key) ?? fallback;
    if (value !== undefined && !SSM_NAME.test(value))
      problem(key, `"${value}" is not a valid SSM parameter name`);
    return value;
  };

  // instanceId: optional, comma-separated; the deploy fails when one of these cannot be registered.
  const rawIds = text('instanceId');
  const instanceIds =
    rawIds === undefined ? [] : [...new Set(rawIds.split(',').map((id) => id.trim()))].filter(Boolean);
  const bad = instanceIds.filter((id) => !INSTANCE_ID_PATTERN.test(id));
  if (rawIds !== undefined && instanceIds.length === 0) {
    problem('instanceId', `"${rawIds}" lists no instance id`);
  } else if (bad.length > 0) {
    problem(
      'instanceId',
      `${bad.map((id) => `"${id}"`).join(', ')} is not a Z-API instance id (letters, digits, - and _)`,
    );
  } else if (instanceIds.includes(CANARY_INSTANCE_ID)) {
    problem(
      'instanceId',
      `"${CANARY_INSTANCE_ID}" is the canary's instance id, which is never registered at Z-API`,
    );
  }

  const eventBusArn = text('eventBusArn');
  if (eventBusArn !== undefined && !EVENT_BUS_ARN.test(eventBusArn))
    problem('eventBusArn', `"${eventBusArn}" is not an event bus ARN`);
  const eventBusName = text('eventBusName');
  if (eventBusName !== undefined) {
    if (!EVENT_BUS_NAME.test(eventBusName) || eventBusName === 'default') {
      problem('eventBusName', `"${eventBusName}" is not a valid name for a new bus`);
    }
    if (eventBusArn !== undefined)
      problem('eventBusName', 'names a bus to create; it cannot be combined with eventBusArn');
  }

  // A stage keeps its own parameters (and metrics) apart: /zapi-{stage}/... unless set explicitly (a
  // path of its own, so no other deployment's listing of /zapi or grant on /zapi/*/token reaches it).
  const stageRaw = text('stage');
  const stageOk = stageRaw === undefined || STAGE_PATTERN.test(stageRaw);
  if (!stageOk)
    problem('stage', `"${stageRaw}" must start with a letter and hold up to 31 letters, digits and -`);
  // A bad stage is reported alone: the defaults below are not derived from it.
  const stage = stageOk ? stageRaw : undefined;
  const under = (name: string) => stageParameter(name, stage);
  const webhookSecretParameter = ssmName(
    'webhookSecretParameter',
    under(CONTEXT_KEYS.webhookSecretParameter.default),
  ) as string;
  const instanceTokenParameter = ssmName(
    'instanceTokenParameter',
    under(CONTEXT_KEYS.instanceTokenParameter.default),
  ) as string;
  const placeholder = instanceTokenParameter.indexOf('{instanceId}');
  if (
    placeholder < 0 ||
    instanceTokenParameter.indexOf('{instanceId}', placeholder + 1) >= 0 ||
    !/^\/[^{}]*[^/{}][^{}]*\//.test(instanceTokenParameter.slice(0, placeholder + 1))
  ) {
    problem(
      'instanceTokenParameter',
      `"${instanceTokenParameter}" must start with a path (/name/) and contain {instanceId} exactly once: every parameter it matches is an instance of the fleet`,
    );
  } else if (!/^\/[^{}/]+$/.test(instanceTokenParameter.slice(placeholder + '{instanceId}'.length))) {
    problem(
      'instanceTokenParameter',
      `"${instanceTokenParameter}" must end with /name after {instanceId}: the read grant ends with that name (an IAM * also matches /)`,
    );
  }
  const clientTokenParameter = ssmName('clientTokenParameter');

  const zapiBaseUrl = (text('zapiBaseUrl') ?? CONTEXT_KEYS.zapiBaseUrl.default).replace(/\/+$/, '');
  if (!/^https:\/\/[^/?#\s]+(\/[^?#\s]*)?$/.test(zapiBaseUrl))
    problem('zapiBaseUrl', `"${zapiBaseUrl}" is not an https:// URL`);

  const flag = (key: ContextKey, fallback: boolean): boolean => {
    const raw = read(key);
    if (raw === undefined || raw === null) return fallback;
    const normalized = String(raw).trim().toLowerCase();
    if (normalized === 'true' || normalized === 'false') return normalized === 'true';
    problem(key, `expected true or false, got ${JSON.stringify(raw)}`);
    return fallback;
  };
  const registerWebhook = flag('registerWebhook', CONTEXT_KEYS.registerWebhook.default);
  const schemaRegistry = flag('schemaRegistry', CONTEXT_KEYS.schemaRegistry.default);
  const debugEventLog = flag('debugEventLog', CONTEXT_KEYS.debugEventLog.default);
  const encryptLogs = flag('encryptLogs', CONTEXT_KEYS.encryptLogs.default);
  const detailedMetrics = flag('detailedMetrics', CONTEXT_KEYS.detailedMetrics.default);
  const dashboard = flag('dashboard', CONTEXT_KEYS.dashboard.default);
  const liveFeedOn = flag('liveFeed', CONTEXT_KEYS.liveFeed.default);
  const storeAsked = read('presenceStore');
  // The live feed carries the store's derived events: it turns the store on, unless told not to.
  const presenceStore = flag('presenceStore', liveFeedOn || CONTEXT_KEYS.presenceStore.default);
  if (liveFeedOn && !presenceStore && storeAsked !== undefined && storeAsked !== null) {
    problem(
      'liveFeed',
      'needs the presence store (the feed carries its derived events; its snapshot reads its table); drop -c presenceStore=false',
    );
  }
  const liveFeed = liveFeedOn
    ? liveFeedConfig(text, problem, storeAsked === undefined || storeAsked === null, integer)
    : undefined;
  if (!liveFeedOn) {
    for (const key of LIVE_FEED_KEYS) {
      if (read(key) !== undefined && read(key) !== null)
        problem(key, 'a setting of the live feed, which is off; add -c liveFeed=true');
    }
  }
  const activityExpirySeconds = integer(
    'activityExpirySeconds',
    CONTEXT_KEYS.activityExpirySeconds.default,
    5,
    120,
  );
  const presenceIdleDays = integer('presenceIdleDays', CONTEXT_KEYS.presenceIdleDays.default, 1, 3_650);
  if (!presenceStore) {
    for (const key of ['activityExpirySeconds', 'presenceIdleDays'] as const) {
      // (A bad value is reported as such: one problem per key.)
      if (read(key) !== undefined && !problems.some((p) => p.startsWith(`${key}: `))) {
        problems.push(`${key}: a setting of the presence store, which is off; add -c presenceStore=true`);
      }
    }
  }
  const canary = flag('canary', CONTEXT_KEYS.canary.default);
  const canaryIntervalMinutes = integer(
    'canaryIntervalMinutes',
    CONTEXT_KEYS.canaryIntervalMinutes.default,
    CANARY_DEFAULTS.minIntervalMinutes,
    CANARY_DEFAULTS.maxIntervalMinutes,
  );
  if (
    !canary &&
    read('canaryIntervalMinutes') !== undefined &&
    !problems.some((p) => p.startsWith('canaryIntervalMinutes: '))
  ) {
    problem(
      'canaryIntervalMinutes',
      'a setting of the canary, which is off (-c canary=false): remove one of the two',
    );
  }
  const accountsRaw = text('subscriberAccountIds');
  const subscriberAccountIds =
    accountsRaw === undefined
      ? []
      : [...new Set(accountsRaw.split(',').map((a) => a.trim()))].filter(Boolean);
  const badAccounts = subscriberAccountIds.filter((a) => !/^\d{12}$/.test(a));
  if (badAccounts.length > 0) {
    problem(
      'subscriberAccountIds',
      `${badAccounts.map((a) => `"${a}"`).join(', ')} is not a 12-digit AWS account id`,
    );
  } else if (subscriberAccountIds.length > 0 && eventBusArn !== undefined) {
    problem(
      'subscriberAccountIds',
      'only for a bus this app creates; with eventBusArn, set the policy on your own bus',
    );
  }

  // None by default: a reservation fails the deploy on accounts whose concurrency quota is 10 (new ones).
  const concurrencyRaw = text('receiverReservedConcurrency');
  const receiverReservedConcurrency =
    concurrencyRaw === undefined || concurrencyRaw.toLowerCase() === 'off'
      ? undefined
      : integer('receiverReservedConcurrency', 0, 1, 1_000) || undefined;
  const K = CONTEXT_KEYS;
  const receiverTimeoutSeconds = integer('receiverTimeoutSeconds', K.receiverTimeoutSeconds.default, 3, 30);
  const receiverMemoryMb = integer('receiverMemoryMb', K.receiverMemoryMb.default, 128, 10_240);
  const sdkAttemptTimeoutMs = integer('sdkAttemptTimeoutMs', K.sdkAttemptTimeoutMs.default, 100, 30_000);
  const sdkMaxAttempts = integer('sdkMaxAttempts', K.sdkMaxAttempts.default, 1, 10);
  const secretCacheSeconds = integer('secretCacheSeconds', K.secretCacheSeconds.default, 1, 600);
  const driftPolicy = (text('driftPolicy') ?? K.driftPolicy.default) as DriftPolicy;
  if (!DRIFT_POLICIES.includes(driftPolicy))
    problem('driftPolicy', `expected ${DRIFT_POLICIES.join(' or ')}, got "${driftPolicy}"`);
  const sweepIntervalMinutes = integer('sweepIntervalMinutes', K.sweepIntervalMinutes.default, 5, 720);
  const minimumGrace = minimumGraceSeconds(
    secretCacheSeconds,
    registerWebhook ? sweepIntervalMinutes : undefined,
  );
  // Unless given, the grace window is 90 minutes, or what a longer sweep interval needs.
  const secretGraceMinutes = integer(
    'secretGraceMinutes',
    Math.ceil(
      defaultGraceSeconds(secretCacheSeconds, registerWebhook ? sweepIntervalMinutes : undefined) / 60,
    ),
    0,
    10_080,
  );
  if (secretGraceMinutes * 60 < minimumGrace) {
    const least = Math.ceil(minimumGrace / 60);
    problems.push(
      `secretGraceMinutes: ${secretGraceMinutes} is too short: after a rotation the previous master must stay valid while receivers learn the new one (secretCacheSeconds), the reconciler re-registers every instance${registerWebhook ? ', and the next sweep (sweepIntervalMinutes) retries any Z-API failed for' : ''}; use at least ${least}, or leave it out (the default covers it). Example: -c secretGraceMinutes=${least}`,
    );
  }
  const reconcileConcurrency = integer('reconcileConcurrency', K.reconcileConcurrency.default, 1, 100);
  const zapiAttemptTimeoutMs = integer('zapiAttemptTimeoutMs', K.zapiAttemptTimeoutMs.default, 100, 60_000);
  const zapiMaxAttempts = integer('zapiMaxAttempts', K.zapiMaxAttempts.default, 1, 10);
  const zapiRequestsPerSecond = integer('zapiRequestsPerSecond', K.zapiRequestsPerSecond.default, 1, 1_000);
  const registrationTimeoutSeconds = integer(
    'registrationTimeoutSeconds',
    K.registrationTimeoutSeconds.default,
    30,
    840,
  );
  const reconcilerTimeoutSeconds = integer(
    'reconcilerTimeoutSeconds',
    K.reconcilerTimeoutSeconds.default,
    30,
    900,
  );
  if (reconcilerTimeoutSeconds < secretCacheSeconds + 120) {
    problem(
      'reconcilerTimeoutSeconds',
      `${reconcilerTimeoutSeconds} is too short: after a rotation the reconciler waits out secretCacheSeconds (${secretCacheSeconds}) before registering; use at least ${secretCacheSeconds + 120}`,
    );
  }
  const dueWarningDays = integer('dueWarningDays', K.dueWarningDays.default, 0, 365);
  const statusesRaw = text('currentPaymentStatuses');
  const currentPaymentStatuses = statusesRaw
    ?.split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (statusesRaw !== undefined && currentPaymentStatuses?.length === 0)
    problem('currentPaymentStatuses', 'lists no status');

  const alarmThresholds: Partial<Record<AlarmName, number>> = {};
  const thresholdsRaw = read('alarmThresholds');
  if (thresholdsRaw !== undefined && thresholdsRaw !== null) {
    let parsed: unknown = thresholdsRaw;
    if (typeof thresholdsRaw === 'string') {
      try {
        parsed = JSON.parse(thresholdsRaw);
      } catch {
        parsed = undefined;
      }
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      problem('alarmThresholds', 'expected a JSON object of alarm name -> threshold');
    } else {
      for (const [name, value] of Object.entries(parsed)) {
        if (name === 'CanaryArrivals') {
          problem(
            'alarmThresholds',
            'CanaryArrivals has no threshold (it fires when no canary callback arrives); set canaryIntervalMinutes instead',
          );
        } else if (!(ALARM_NAMES as readonly string[]).includes(name)) {
          problem('alarmThresholds', `"${name}" is not an alarm; use one of ${ALARM_NAMES.join(', ')}`);
        } else if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
          problem(
            'alarmThresholds',
            `${name}: expected a whole number of at least 1, got ${JSON.stringify(value)}`,
          );
        } else {
          alarmThresholds[name as AlarmName] = value;
        }
      }
    }
  }

  const metricsNamespace =
    text('metricsNamespace') ??
    (stage === undefined
      ? CONTEXT_KEYS.metricsNamespace.default
      : `${CONTEXT_KEYS.metricsNamespace.default}/${stage}`);
  if (!/^[A-Za-z0-9.\-_/#:]{1,255}$/.test(metricsNamespace) || metricsNamespace.startsWith('AWS/')) {
    problem('metricsNamespace', `"${metricsNamespace}" is not a CloudWatch namespace of your own`);
  }
  const alarmEmail = text('alarmEmail');
  if (alarmEmail !== undefined && !/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(alarmEmail)) {
    problem('alarmEmail', `"${alarmEmail}" is not an e-mail address`);
  }

  const throttleRateLimit = integer('throttleRateLimit', CONTEXT_KEYS.throttleRateLimit.default, 1, 10_000);
  const throttleBurstLimit = integer('throttleBurstLimit', CONTEXT_KEYS.throttleBurstLimit.default, 1, 5_000);
  const maxBodyBytes = integer('maxBodyBytes', CONTEXT_KEYS.maxBodyBytes.default, 256, MAX_BODY_LIMIT);
  const archiveRetentionDays = integer(
    'archiveRetentionDays',
    CONTEXT_KEYS.archiveRetentionDays.default,
    0,
    36_500,
  );
  const logRetentionDays = integer('logRetentionDays', CONTEXT_KEYS.logRetentionDays.default, 1, 3_653);
  if (!LOG_RETENTIONS.has(logRetentionDays)) {
    problem(
      'logRetentionDays',
      `${logRetentionDays} is not a CloudWatch Logs retention; use one of ${[...LOG_RETENTIONS].sort((a, b) => a - b).join(', ')}`,
    );
  }

  if (problems.length > 0) throw new ConfigError(problems);
  return {
    ...(stage !== undefined && { stage }),
    instanceIds,
    ...(eventBusArn !== undefined && { eventBusArn }),
    ...(eventBusName !== undefined && { eventBusName }),
    webhookSecretParameter,
    instanceTokenParameter,
    ...(clientTokenParameter !== undefined && { clientTokenParameter }),
    zapiBaseUrl,
    registerWebhook,
    throttleRateLimit,
    throttleBurstLimit,
    maxBodyBytes,
    archiveRetentionDays,
    logRetentionDays: logRetentionDays as RetentionDays,
    ...(receiverReservedConcurrency !== undefined && { receiverReservedConcurrency }),
    receiverTimeoutSeconds,
    receiverMemoryMb,
    sdkAttemptTimeoutMs,
    sdkMaxAttempts,
    secretCacheSeconds,
    secretGraceMinutes,
    driftPolicy,
    sweepIntervalMinutes,
    reconcileConcurrency,
    zapiAttemptTimeoutMs,
    zapiMaxAttempts,
    zapiRequestsPerSecond,
    registrationTimeoutSeconds,
    reconcilerTimeoutSeconds,
    dueWarningDays,
    ...(currentPaymentStatuses !== undefined && { currentPaymentStatuses }),
    alarmThresholds,
    metricsNamespace,
    ...(alarmEmail !== undefined && { alarmEmail }),
    schemaRegistry,
    debugEventLog,
    encryptLogs,
    detailedMetrics,
    dashboard,
    subscriberAccountIds,
    presenceStore,
    activityExpirySeconds,
    presenceIdleDays,
    canary,
    canaryIntervalMinutes,
    ...(liveFeed !== undefined && { liveFeed }),
  };
}

const LIVE_FEED_KEYS = [
  'liveFeedTokenMinutes',
  'liveFeedUserPoolId',
  'liveFeedOidcIssuer',
  'liveFeedOidcClientId',
  'liveFeedGroupsClaim',
  'liveFeedAllowedOrigins',
] as const;

/** The live feed's settings (with -c liveFeed=true). */
function liveFeedConfig(
  text: (key: ContextKey) => string | undefined,
  problem: (key: ContextKey, what: string) => void,
  turnedStoreOn: boolean,
  integer: (key: ContextKey, fallback: number, min: number, max: number) => number,
): LiveFeedConfig {
  const userPoolId = text('liveFeedUserPoolId');
  if (userPoolId !== undefined && !/^[\w-]+_[0-9a-zA-Z]+$/.test(userPoolId)) {
    problem('liveFeedUserPoolId', `"${userPoolId}" is not a Cognito user pool id`);
  }
  const issuer = text('liveFeedOidcIssuer');
  const clientId = text('liveFeedOidcClientId');
  const groupsClaim = text('liveFeedGroupsClaim');
  if ((issuer === undefined) !== (clientId === undefined)) {
    problem(
      issuer === undefined ? 'liveFeedOidcIssuer' : 'liveFeedOidcClientId',
      'an OIDC issuer needs both liveFeedOidcIssuer and liveFeedOidcClientId',
    );
  }
  if (groupsClaim !== undefined && issuer === undefined) {
    problem('liveFeedGroupsClaim', 'only with an OIDC issuer (Cognito tokens list groups in cognito:groups)');
  }
  if (issuer !== undefined && userPoolId !== undefined) {
    problem('liveFeedUserPoolId', 'agents sign in with a user pool or an OIDC issuer, not both');
  }
  const origins = (text('liveFeedAllowedOrigins') ?? CONTEXT_KEYS.liveFeedAllowedOrigins.default)
    .split(',')
    .map((origin) => origin.trim())
    .filter((origin) => origin !== '');
  for (const origin of origins) {
    if (origin !== '*' && !/^https?:\/\/[^\s/?#]+$/.test(origin)) {
      problem('liveFeedAllowedOrigins', `"${origin}" is not an origin (scheme and host, no path)`);
    }
  }
  const tokenMinutesSet = text('liveFeedTokenMinutes') !== undefined;
  const tokenMinutes = integer('liveFeedTokenMinutes', CONTEXT_KEYS.liveFeedTokenMinutes.default, 5, 1_440);
  if (tokenMinutesSet && (issuer !== undefined || userPoolId !== undefined)) {
    problem(
      'liveFeedTokenMinutes',
      'only for the app client the app creates (set token lifetimes in your own pool or issuer)',
    );
  }
  return {
    ...(userPoolId !== undefined && { userPoolId }),
    ...(tokenMinutesSet && { tokenMinutes }),
    ...(issuer !== undefined &&
      clientId !== undefined && {
        oidc: { issuer, clientId, groupsClaim: groupsClaim ?? CONTEXT_KEYS.liveFeedGroupsClaim.default },
      }),
    allowedOrigins: origins,
    turnedStoreOn,
  };
}

/** The stack's name: `ZapiPresence`, or `ZapiPresence-{stage}`. */
export function stackName(config: Pick<PresenceConfig, 'stage'>): string {
  return config.stage === undefined ? 'ZapiPresence' : `ZapiPresence-${config.stage}`;
}
