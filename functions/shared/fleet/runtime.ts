/**
 * Wiring shared by the reconciler and the deploy-time registration: settings from the environment, and
 * the fleet's dependencies on SSM and Z-API. Secrets are read at run time, never from the environment.
 */
import type { Deadline } from '../deadline.ts';
import { masterSecretReader } from '../master-secret.ts';
import { INSTANCE_ID_PATTERN } from '../presence-contract.ts';
import { getParameter, listParametersByPath, ParameterError, readSecureString, type SsmPort } from '../ssm.ts';
import { DRIFT_POLICIES, type DriftPolicy, type FleetDeps, type FleetMember, type FleetSettings } from './reconcile.ts';
import { FLEET_DEFAULTS, FLEET_ENV, INSTANCE_PLACEHOLDER } from './settings.ts';
import { ZapiClient } from './zapi.ts';

export interface FleetConfig extends FleetSettings {
  readonly tokenParameterTemplate: string;
  readonly masterSecretParameter: string;
  readonly clientTokenParameter: string | undefined;
  readonly zapiBaseUrl: string;
  readonly zapiAttemptTimeoutMs: number;
  readonly zapiMaxAttempts: number;
  readonly metricsNamespace: string;
}

function required(env: NodeJS.ProcessEnv, name: string): string {
  const value = env[name]?.trim();
  if (!value) throw new Error(`environment variable ${name} is required`);
  return value;
}

function whole(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number): number {
  const raw = env[name]?.trim();
  if (!raw) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min)
    throw new Error(`environment variable ${name} must be a whole number of at least ${min}, got "${raw}"`);
  return value;
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
    zapiAttemptTimeoutMs: whole(env, E.zapiAttemptTimeoutMs, D.zapiAttemptTimeoutMs, 100),
    zapiMaxAttempts: whole(env, E.zapiMaxAttempts, D.zapiMaxAttempts, 1),
    driftPolicy,
    concurrency: whole(env, E.concurrency, D.concurrency, 1),
    dueWarningMs: whole(env, E.dueWarningDays, D.dueWarningDays, 0) * 86_400_000,
    currentPaymentStatuses: statuses ? statuses.split(',').map((s) => s.trim()) : [...D.currentPaymentStatuses],
    metricsNamespace: env[E.metricsNamespace]?.trim() || 'ZapiPresence',
  };
}

/**
 * The SSM path to list and the pattern of a token name, from a template such as `/zapi/{instanceId}/token`:
 * path `/zapi`, and names `/zapi/<id>/token`.
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
      return INSTANCE_ID_PATTERN.test(id) ? id : undefined;
    },
  };
}

export function tokenParameterName(template: string, instanceId: string): string {
  return template.replace(INSTANCE_PLACEHOLDER, instanceId);
}

/** The fleet's dependencies on SSM and Z-API. */
export function fleetDeps(config: FleetConfig, ssm: SsmPort, fetchImpl?: typeof fetch): FleetDeps {
  const pattern = tokenPattern(config.tokenParameterTemplate);
  const readMaster = masterSecretReader({ ssm, parameterName: config.masterSecretParameter, graceMs: 0 });
  return {
    async listFleet(deadline: Deadline): Promise<FleetMember[]> {
      const members = new Map<string, string>();
      // A template without a suffix (`/zapi/{instanceId}`) would match the master and the Client-Token too:
      // never treat those as instances (their values would go into a Z-API URL).
      const notTokens = new Set([config.masterSecretParameter, config.clientTokenParameter]);
      for (const parameter of await listParametersByPath(ssm, pattern.path, deadline)) {
        if (notTokens.has(parameter.Name)) continue;
        const instanceId = parameter.Name === undefined ? undefined : pattern.match(parameter.Name);
        if (instanceId !== undefined && parameter.Value) members.set(instanceId, parameter.Value);
      }
      return [...members].map(([instanceId, token]) => ({ instanceId, token }));
    },
    async readToken(instanceId, deadline) {
      try {
        return (await getParameter(ssm, tokenParameterName(config.tokenParameterTemplate, instanceId), deadline))
          .Value;
      } catch (error) {
        if (error instanceof ParameterError && error.code === 'not-found') return undefined;
        throw error;
      }
    },
    readClientToken: async (deadline) =>
      config.clientTokenParameter === undefined
        ? undefined
        : readSecureString(ssm, config.clientTokenParameter, deadline),
    readMaster: async (deadline) => (await readMaster(deadline)).current,
    zapi: (credentials) =>
      new ZapiClient(credentials, {
        baseUrl: config.zapiBaseUrl,
        attemptTimeoutMs: config.zapiAttemptTimeoutMs,
        maxAttempts: config.zapiMaxAttempts,
        ...(fetchImpl !== undefined && { fetch: fetchImpl }),
      }),
    tokenParameterName: (instanceId) => tokenParameterName(config.tokenParameterTemplate, instanceId),
  };
}
