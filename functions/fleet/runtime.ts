/**
 * Wiring shared by the reconciler and the deploy-time registration: settings from the environment, and
 * the fleet's dependencies on SSM and Z-API. Secrets are read at run time, never from the environment.
 */

import { SSMClient } from '@aws-sdk/client-ssm';
import type { Deadline } from '../shared/aws/deadline.ts';
import {
  getParameter,
  getParameters,
  listParameterNames,
  ParameterError,
  putParameterCommand,
  readSecureString,
  type SsmPort,
} from '../shared/aws/ssm.ts';
import { CANARY_INSTANCE_ID, INSTANCE_ID_PATTERN } from '../shared/contract/presence-contract.ts';
import { requiredEnv as required, wholeNumber } from '../shared/env.ts';
import { DEFAULT_METRICS_NAMESPACE } from '../shared/metrics.ts';
import { masterSecretReader } from '../shared/secrets/master-secret.ts';
import { DRIFT_POLICIES, type DriftPolicy, type FleetDeps, type FleetSettings } from './reconcile.ts';
import { FLEET_DEFAULTS, FLEET_ENV, INSTANCE_PLACEHOLDER } from './settings.ts';
import { ZAPI_TOKEN_PATTERN, ZapiClient } from './zapi.ts';

/** The fleet functions' SSM calls: three attempts of at most 5 s each (an idle socket included). */
const SSM_ATTEMPTS = 3;
const SSM_ATTEMPT_MS = 5_000;
/**
 * The most one SSM call (a token, the Client-Token, a page of the listing) may take, its attempts and
 * their backoff included: a read that hangs or trickles never holds the other instances for longer.
 */
export const SSM_CALL_CAP_MS = SSM_ATTEMPTS * SSM_ATTEMPT_MS + 2_000;

/** The SSM client of the reconciler and the deploy-time registration. */
export function fleetSsmClient(): SSMClient {
  return new SSMClient({
    maxAttempts: SSM_ATTEMPTS,
    requestHandler: {
      connectionTimeout: 2_000,
      requestTimeout: SSM_ATTEMPT_MS,
      // An answer that stops half-way: requestTimeout stops counting once headers arrive.
      socketTimeout: SSM_ATTEMPT_MS,
      throwOnRequestTimeout: true,
    },
  });
}

export interface FleetConfig extends FleetSettings {
  readonly tokenParameterTemplate: string;
  readonly masterSecretParameter: string;
  readonly clientTokenParameter: string | undefined;
  readonly zapiBaseUrl: string;
  readonly zapiAttemptTimeoutMs: number;
  readonly zapiMaxAttempts: number;
  readonly requestsPerSecond: number;
  readonly metricsNamespace: string;
  /** Every count of every run as a metric, zeros included. */
  readonly detailedMetrics: boolean;
  /** The receivers' master cache TTL. */
  readonly receiverCacheMs: number;
  readonly settleMarginMs: number;
}

export function readFleetConfig(env: NodeJS.ProcessEnv): FleetConfig {
  const E = FLEET_ENV;
  const D = FLEET_DEFAULTS;
  const driftPolicy = (env[E.driftPolicy]?.trim() || D.driftPolicy) as DriftPolicy;
  if (!DRIFT_POLICIES.includes(driftPolicy))
    throw new Error(`environment variable ${E.driftPolicy} must be one of ${DRIFT_POLICIES.join(', ')}`);
  const template = env[E.tokenParameterTemplate]?.trim() || D.tokenParameterTemplate;
  tokenPattern(template); // fails early on a template that cannot list a fleet
  const statuses = env[E.currentPaymentStatuses]?.trim();
  return {
    webhookBaseUrl: required(env, E.webhookBaseUrl).replace(/\/+$/, ''),
    tokenParameterTemplate: template,
    masterSecretParameter: required(env, E.masterSecretParameter),
    clientTokenParameter: env[E.clientTokenParameter]?.trim() || undefined,
    zapiBaseUrl: env[E.zapiBaseUrl]?.trim() || D.zapiBaseUrl,
    zapiAttemptTimeoutMs: wholeNumber(env, E.zapiAttemptTimeoutMs, D.zapiAttemptTimeoutMs, 100),
    zapiMaxAttempts: wholeNumber(env, E.zapiMaxAttempts, D.zapiMaxAttempts, 1),
    requestsPerSecond: wholeNumber(env, E.zapiRequestsPerSecond, D.zapiRequestsPerSecond, 1),
    driftPolicy,
    concurrency: wholeNumber(env, E.concurrency, D.concurrency, 1),
    dueWarningMs: wholeNumber(env, E.dueWarningDays, D.dueWarningDays, 0) * 86_400_000,
    currentPaymentStatuses: statuses
      ? statuses.split(',').map((s) => s.trim())
      : [...D.currentPaymentStatuses],
    metricsNamespace: env[E.metricsNamespace]?.trim() || DEFAULT_METRICS_NAMESPACE,
    detailedMetrics: env[E.detailedMetrics] === 'true',
    receiverCacheMs: wholeNumber(env, E.receiverCacheSeconds, D.receiverCacheSeconds, 0) * 1_000,
    settleMarginMs: wholeNumber(env, E.settleMarginMs, D.settleMarginMs, 0),
  };
}

/**
 * The SSM path to list and the pattern of a token name, from a template such as `/zapi/{instanceId}/token`:
 * path `/zapi`, and names `/zapi/<id>/token` exactly (a valid instance id, nothing else). The canary's id
 * never matches: its token is never sent to Z-API's webhook API, so it is never registered there.
 */
export function tokenPattern(template: string): { path: string; match(name: string): string | undefined } {
  const at = template.indexOf(INSTANCE_PLACEHOLDER);
  if (at < 0 || template.indexOf(INSTANCE_PLACEHOLDER, at + 1) >= 0 || !template.startsWith('/')) {
    throw new Error(
      `token parameter template "${template}" must start with / and contain ${INSTANCE_PLACEHOLDER} exactly once`,
    );
  }
  const prefix = template.slice(0, at);
  const suffix = template.slice(at + INSTANCE_PLACEHOLDER.length);
  const path = prefix.slice(0, prefix.lastIndexOf('/')) || '/';
  return {
    path,
    match(name) {
      if (!name.startsWith(prefix) || !name.endsWith(suffix)) return undefined;
      const id = name.slice(prefix.length, name.length - suffix.length);
      return INSTANCE_ID_PATTERN.test(id) && id !== CANARY_INSTANCE_ID ? id : undefined;
    },
  };
}

export function tokenParameterName(template: string, instanceId: string): string {
  return template.replace(INSTANCE_PLACEHOLDER, instanceId);
}

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export interface FleetRuntimeOptions {
  readonly fetch?: typeof fetch;
  readonly now?: () => number;
  readonly sleep?: (ms: number) => Promise<void>;
  readonly log?: (record: Record<string, unknown>) => void;
}

/**
 * The master to derive URLs from. A receiver caches the master for `receiverCacheMs`, so for that long
 * (plus a margin) after a rotation some receiver may not know the new one: URLs derived from it would be
 * refused there. Inside that window, register with the previous master (every receiver accepts it: as
 * its cached value, or as the previous one within the grace window), or, when asked to (the run the
 * rotation itself triggered), wait the window out and register the new one.
 */
export function effectiveMasterReader(
  config: Pick<FleetConfig, 'masterSecretParameter' | 'receiverCacheMs' | 'settleMarginMs'>,
  ssm: SsmPort,
  options: FleetRuntimeOptions = {},
): FleetDeps['readMaster'] {
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? defaultSleep;
  const settleMs = config.receiverCacheMs + config.settleMarginMs;
  const read = masterSecretReader({
    ssm,
    parameterName: config.masterSecretParameter,
    graceMs: settleMs,
    readCapMs: SSM_CALL_CAP_MS,
    now,
  });
  return async (deadline, request) => {
    const master = await read(deadline);
    const wait = master.since === undefined ? 0 : master.since + settleMs - now();
    if (wait <= 0) return master.current;
    // Waiting leaves at least a minute for the run itself.
    if (request?.waitForNewMaster && deadline.remainingMs() - wait >= 60_000) {
      options.log?.({
        msg: 'the master secret was just rotated: waiting until every receiver knows it before registering the new URLs',
        waitMs: Math.round(wait),
      });
      await sleep(wait);
      return master.current;
    }
    return master.previous ?? master.current;
  };
}

/** The fleet's dependencies on SSM and Z-API. */
export function fleetDeps(config: FleetConfig, ssm: SsmPort, options: FleetRuntimeOptions = {}): FleetDeps {
  const pattern = tokenPattern(config.tokenParameterTemplate);
  const fetchImpl = options.fetch;
  // A template without a suffix (`/zapi/{instanceId}`) also matches the master and the Client-Token:
  // never treat those as instances (their values would go into a Z-API URL).
  const notTokens = new Set([config.masterSecretParameter, config.clientTokenParameter]);
  return {
    async *listInstanceIds(deadline: Deadline): AsyncGenerator<string[]> {
      for await (const names of listParameterNames(ssm, pattern.path, deadline, {
        pageCapMs: SSM_CALL_CAP_MS,
      })) {
        // Only names of exactly the template's shape are read later (never the master, the Client-Token
        // or anything else someone keeps under the path).
        yield names.flatMap((name) => {
          if (notTokens.has(name)) return [];
          const instanceId = pattern.match(name);
          return instanceId === undefined ? [] : [instanceId];
        });
      }
    },
    async readTokens(instanceIds, deadline) {
      const byName = new Map(
        instanceIds.map((id) => [tokenParameterName(config.tokenParameterTemplate, id), id] as const),
      );
      for (const name of notTokens) if (name !== undefined) byName.delete(name);
      const found = await getParameters(ssm, [...byName.keys()], deadline, SSM_CALL_CAP_MS);
      const tokens = new Map<string, string>();
      for (const [name, parameter] of found) {
        const instanceId = byName.get(name);
        if (instanceId !== undefined && parameter.Value) tokens.set(instanceId, parameter.Value);
      }
      return tokens;
    },
    async readToken(instanceId, deadline) {
      const name = tokenParameterName(config.tokenParameterTemplate, instanceId);
      if (notTokens.has(name)) {
        throw new ParameterError(
          `instance id ${instanceId} names ${name}, which holds the webhook master secret or the Client-Token, not a token: it cannot be an instance`,
          'invalid',
          name,
        );
      }
      try {
        return (await getParameter(ssm, name, deadline, SSM_CALL_CAP_MS)).Value;
      } catch (error) {
        if (error instanceof ParameterError && error.code === 'not-found') return undefined;
        throw error;
      }
    },
    async readClientToken(deadline) {
      const name = config.clientTokenParameter;
      if (name === undefined) return undefined;
      const value = await readSecureString(ssm, name, deadline, SSM_CALL_CAP_MS);
      // Sent in a header of every call: a character a header cannot carry would fail each one as a
      // network error, naming nothing.
      if (!ZAPI_TOKEN_PATTERN.test(value)) {
        throw new ParameterError(
          `SSM parameter ${name} (the Client-Token) holds characters other than letters, digits, - and _ (Z-API's account security token has none; a trailing newline or space, say): store it again: ${putParameterCommand(name, "'YOUR_ACCOUNT_SECURITY_TOKEN' --overwrite")}`,
          'invalid',
          name,
        );
      }
      return value;
    },
    readMaster: effectiveMasterReader(config, ssm, options),
    zapi: (credentials, limiter) =>
      new ZapiClient(credentials, {
        limiter,
        baseUrl: config.zapiBaseUrl,
        attemptTimeoutMs: config.zapiAttemptTimeoutMs,
        maxAttempts: config.zapiMaxAttempts,
        ...(fetchImpl !== undefined && { fetch: fetchImpl }),
      }),
    tokenParameterName: (instanceId) => tokenParameterName(config.tokenParameterTemplate, instanceId),
  };
}
