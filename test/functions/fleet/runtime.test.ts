/**
 * The fleet's wiring (functions/fleet/runtime.ts): settings from the environment, the token
 * parameter template, and fleetDeps against the SSM stand-in (real SSMClient, paging) and the Z-API
 * stand-in (real fetch), ending with a whole run through runFleet and reportRun.
 */
import { SSMClient } from '@aws-sdk/client-ssm';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { AdaptiveRateLimiter } from '../../../functions/fleet/rate-limit.ts';
import { type FleetDeps, runFleet } from '../../../functions/fleet/reconcile.ts';
import { failureList, type LogSink, reportRun } from '../../../functions/fleet/report.ts';
import {
  effectiveMasterReader,
  type FleetConfig,
  type FleetRuntimeOptions,
  fleetDeps,
  readFleetConfig,
  tokenParameterName,
  tokenPattern,
} from '../../../functions/fleet/runtime.ts';
import { FLEET_DEFAULTS, FLEET_ENV, INSTANCE_PLACEHOLDER } from '../../../functions/fleet/settings.ts';
import { secretForms, ZapiError } from '../../../functions/fleet/zapi.ts';
import { type Deadline, deadlineAt } from '../../../functions/shared/aws/deadline.ts';
import { ParameterError } from '../../../functions/shared/aws/ssm.ts';
import { CANARY_INSTANCE_ID } from '../../../functions/shared/contract/presence-contract.ts';
import {
  deriveInstanceSecret,
  instanceWebhookUrl,
} from '../../../functions/shared/secrets/webhook-secret.ts';
import { type AwsStandIn, startAwsStandIn } from '../../support/aws-standin.ts';
import { startZapiStandIn, type ZapiStandIn } from '../../support/zapi-standin.ts';

const BASE = 'https://abc123.execute-api.sa-east-1.amazonaws.com';
const MASTER = 'Runtime_master-0123456789abcdefghijklmn';
const CLIENT_TOKEN = 'RtClientToken0123456789abcdef';
const DAY = 86_400_000;
const soon = (ms = 5_000): Deadline => deadlineAt(Date.now() + ms);

describe('tokenPattern', () => {
  it("'/zapi/{instanceId}/token': lists /zapi, matches only /zapi/<id>/token", () => {
    const p = tokenPattern('/zapi/{instanceId}/token');
    expect(p.path).toBe('/zapi');
    expect(p.match('/zapi/ABC/token')).toBe('ABC');
    expect(p.match('/zapi/3C01A2B3C4D5E6F7/token')).toBe('3C01A2B3C4D5E6F7');
    expect(p.match('/zapi/a_b-C/token')).toBe('a_b-C');
    expect(p.match('/zapi/ABC/other')).toBeUndefined();
    expect(p.match('/zapi/a/b/token')).toBeUndefined();
    expect(p.match('/zapi/ABC/token/extra')).toBeUndefined();
    expect(p.match('/zapi/ABC/tokens')).toBeUndefined();
    expect(p.match('/zapiABC/token')).toBeUndefined();
    expect(p.match('/other/ABC/token')).toBeUndefined();
    expect(p.match('/zapi//token')).toBeUndefined();
    expect(p.match('/zapi/token')).toBeUndefined();
    expect(p.match('/zapi/webhook-secret')).toBeUndefined();
  });

  it('rejects ids that are not Z-API instance ids', () => {
    const p = tokenPattern('/zapi/{instanceId}/token');
    expect(p.match(`/zapi/${'A'.repeat(64)}/token`)).toBe('A'.repeat(64));
    expect(p.match(`/zapi/${'A'.repeat(65)}/token`)).toBeUndefined();
    for (const id of ['a.b', 'a b', 'a:1', 'ä', 'a%2F', '*'])
      expect(p.match(`/zapi/${id}/token`)).toBeUndefined();
  });

  it("'/zapi/prod-{instanceId}': a prefix inside the last segment", () => {
    const p = tokenPattern('/zapi/prod-{instanceId}');
    expect(p.path).toBe('/zapi');
    expect(p.match('/zapi/prod-ABC')).toBe('ABC');
    expect(p.match('/zapi/prod-')).toBeUndefined();
    expect(p.match('/zapi/ABC')).toBeUndefined();
    expect(p.match('/zapi/prod-ABC/token')).toBeUndefined();
    expect(p.match('/zapi/staging-ABC')).toBeUndefined();
  });

  it.each([
    ['/zapi/{instanceId}', '/zapi', '/zapi/ABC', 'ABC'],
    ['/{instanceId}', '/', '/ABC', 'ABC'],
    ['/{instanceId}/token', '/', '/ABC/token', 'ABC'],
    ['/a/b/c/{instanceId}/t/u', '/a/b/c', '/a/b/c/ABC/t/u', 'ABC'],
    ['/zapi/x{instanceId}y', '/zapi', '/zapi/xABCy', 'ABC'],
    ['/zapi-{instanceId}', '/', '/zapi-ABC', 'ABC'],
  ])('%s lists %s and matches %s', (template, path, name, id) => {
    const p = tokenPattern(template);
    expect(p.path).toBe(path);
    expect(p.match(name)).toBe(id);
  });

  it.each([
    ['no placeholder', '/zapi/token'],
    ['an empty template', ''],
    ['the placeholder twice', '/zapi/{instanceId}/{instanceId}'],
    ['the placeholder twice, adjacent', '/{instanceId}{instanceId}'],
    ['no leading slash', 'zapi/{instanceId}/token'],
    ['only the placeholder', '{instanceId}'],
    ['a misspelt placeholder', '/zapi/{instanceID}/token'],
  ])('refuses a template with %s', (_, template) => {
    expect(() => tokenPattern(template)).toThrow(
      new Error(
        `token parameter template "${template}" must start with / and contain {instanceId} exactly once`,
      ),
    );
  });

  it('tokenParameterName fills in the placeholder', () => {
    expect(INSTANCE_PLACEHOLDER).toBe('{instanceId}');
    expect(tokenParameterName('/zapi/{instanceId}/token', 'ABC')).toBe('/zapi/ABC/token');
    expect(tokenParameterName('/zapi/prod-{instanceId}', 'X_1')).toBe('/zapi/prod-X_1');
  });
});

describe('readFleetConfig', () => {
  const minimal = { WEBHOOK_BASE_URL: BASE, WEBHOOK_SECRET_PARAMETER: '/zapi/webhook-secret' };

  it('fills in every default', () => {
    expect(readFleetConfig(minimal)).toStrictEqual({
      webhookBaseUrl: BASE,
      tokenParameterTemplate: '/zapi/{instanceId}/token',
      masterSecretParameter: '/zapi/webhook-secret',
      clientTokenParameter: undefined,
      zapiBaseUrl: 'https://api.z-api.io',
      zapiAttemptTimeoutMs: 5_000,
      zapiMaxAttempts: 4,
      requestsPerSecond: 20,
      driftPolicy: 'repair',
      concurrency: 16,
      dueWarningMs: 7 * DAY,
      currentPaymentStatuses: ['PAID', 'TRIAL', 'ACTIVE', 'CURRENT'],
      metricsNamespace: 'ZapiPresence',
      detailedMetrics: false,
      receiverCacheMs: 300_000,
      settleMarginMs: 30_000,
    });
  });

  it('treats blank values as unset', () => {
    const blank = Object.fromEntries(Object.values(FLEET_ENV).map((name) => [name, '  ']));
    expect(readFleetConfig({ ...blank, ...minimal })).toStrictEqual(readFleetConfig(minimal));
  });

  it('reads (and trims) every setting', () => {
    const config = readFleetConfig({
      WEBHOOK_BASE_URL: ` ${BASE}// `,
      WEBHOOK_SECRET_PARAMETER: ' /x/master ',
      TOKEN_PARAMETER_TEMPLATE: ' /x/{instanceId} ',
      CLIENT_TOKEN_PARAMETER: ' /x/client-token ',
      ZAPI_BASE_URL: ' http://127.0.0.1:9 ',
      ZAPI_ATTEMPT_TIMEOUT_MS: ' 100 ',
      ZAPI_MAX_ATTEMPTS: '1',
      ZAPI_REQUESTS_PER_SECOND: ' 7 ',
      DRIFT_POLICY: ' alert ',
      RECONCILE_CONCURRENCY: '1',
      DUE_WARNING_DAYS: '0',
      CURRENT_PAYMENT_STATUSES: ' paid , Trial,X ',
      METRICS_NAMESPACE: ' Fleet/Test ',
      DETAILED_METRICS: 'true',
      RECEIVER_CACHE_SECONDS: ' 0 ',
      SETTLE_MARGIN_MS: '0',
    });
    expect(config).toStrictEqual({
      webhookBaseUrl: BASE,
      tokenParameterTemplate: '/x/{instanceId}',
      masterSecretParameter: '/x/master',
      clientTokenParameter: '/x/client-token',
      zapiBaseUrl: 'http://127.0.0.1:9',
      zapiAttemptTimeoutMs: 100,
      zapiMaxAttempts: 1,
      requestsPerSecond: 7,
      driftPolicy: 'alert',
      concurrency: 1,
      dueWarningMs: 0,
      currentPaymentStatuses: ['paid', 'Trial', 'X'],
      metricsNamespace: 'Fleet/Test',
      detailedMetrics: true,
      receiverCacheMs: 0,
      settleMarginMs: 0,
    });
    expect(
      readFleetConfig({ ...minimal, RECEIVER_CACHE_SECONDS: '60', SETTLE_MARGIN_MS: '1500' }),
    ).toMatchObject({
      receiverCacheMs: 60_000,
      settleMarginMs: 1_500,
    });
    expect(readFleetConfig({ ...minimal, DUE_WARNING_DAYS: '3' }).dueWarningMs).toBe(3 * DAY);
    expect(readFleetConfig({ ...minimal, DRIFT_POLICY: 'repair' }).driftPolicy).toBe('repair');
  });

  it('does not share the default payment statuses between configs', () => {
    const a = readFleetConfig(minimal);
    (a.currentPaymentStatuses as string[]).push('CHANGED');
    expect(readFleetConfig(minimal).currentPaymentStatuses).toEqual([
      ...FLEET_DEFAULTS.currentPaymentStatuses,
    ]);
  });

  it.each([['WEBHOOK_BASE_URL'], ['WEBHOOK_SECRET_PARAMETER']])('requires %s', (name) => {
    expect(() => readFleetConfig({ ...minimal, [name]: undefined })).toThrow(
      new Error(`environment variable ${name} is required`),
    );
    expect(() => readFleetConfig({ ...minimal, [name]: '   ' })).toThrow(
      new Error(`environment variable ${name} is required`),
    );
  });

  it('refuses an unknown drift policy', () => {
    for (const value of ['Repair', 'fix', 'alert,repair']) {
      expect(() => readFleetConfig({ ...minimal, DRIFT_POLICY: value })).toThrow(
        new Error('environment variable DRIFT_POLICY must be one of repair, alert'),
      );
    }
  });

  it('refuses a token template that cannot list a fleet', () => {
    expect(() => readFleetConfig({ ...minimal, TOKEN_PARAMETER_TEMPLATE: '/zapi/token' })).toThrow(
      /must start with \/ and contain \{instanceId\} exactly once/,
    );
  });

  it.each([
    ['ZAPI_ATTEMPT_TIMEOUT_MS', '99', 100],
    ['ZAPI_ATTEMPT_TIMEOUT_MS', '250.5', 100],
    ['ZAPI_MAX_ATTEMPTS', '0', 1],
    ['ZAPI_MAX_ATTEMPTS', 'three', 1],
    ['RECONCILE_CONCURRENCY', '0', 1],
    ['RECONCILE_CONCURRENCY', '-4', 1],
    ['RECONCILE_CONCURRENCY', '2.5', 1],
    ['DUE_WARNING_DAYS', '-1', 0],
    ['DUE_WARNING_DAYS', '7d', 0],
    ['RECEIVER_CACHE_SECONDS', '-1', 0],
    ['RECEIVER_CACHE_SECONDS', '0.5', 0],
    ['SETTLE_MARGIN_MS', '-1', 0],
    ['SETTLE_MARGIN_MS', '1s', 0],
  ])('refuses %s=%s (whole number of at least %i)', (name, raw, min) => {
    expect(() => readFleetConfig({ ...minimal, [name]: raw })).toThrow(
      new Error(`environment variable ${name} must be a whole number of at least ${min}, got "${raw}"`),
    );
  });

  it.each([
    ['ZAPI_ATTEMPT_TIMEOUT_MS', '100', 'zapiAttemptTimeoutMs', 100],
    ['ZAPI_MAX_ATTEMPTS', '1', 'zapiMaxAttempts', 1],
    ['RECONCILE_CONCURRENCY', '64', 'concurrency', 64],
    ['DUE_WARNING_DAYS', '0', 'dueWarningMs', 0],
  ] as const)('accepts the smallest or a typical %s=%s', (name, raw, key, value) => {
    expect(readFleetConfig({ ...minimal, [name]: raw })[key]).toBe(value);
  });
});

describe('fleetDeps against the SSM and Z-API stand-ins', () => {
  let aws: AwsStandIn;
  let zapi: ZapiStandIn;
  let ssm: SSMClient;
  const TOKEN_IDS = Array.from({ length: 23 }, (_, i) => `INST${String(i).padStart(2, '0')}`);
  const tokenOf = (id: string) => `token-${id}-0a1b2c3d4e5f`;
  const limiter = () => new AdaptiveRateLimiter({ requestsPerSecond: 100 });

  /** The listing as a run reads it: names page by page, then tokens 10 at a time. */
  async function listFleet(deps: FleetDeps, deadline: Deadline) {
    const members: Array<{ instanceId: string; token: string }> = [];
    for await (const ids of deps.listInstanceIds(deadline)) {
      for (let i = 0; i < ids.length; i += 10) {
        const tokens = await deps.readTokens(ids.slice(i, i + 10), deadline);
        for (const [instanceId, token] of tokens) members.push({ instanceId, token });
      }
    }
    return members;
  }

  const config = (patch: Partial<FleetConfig> = {}): FleetConfig => ({
    ...readFleetConfig({
      WEBHOOK_BASE_URL: BASE,
      WEBHOOK_SECRET_PARAMETER: '/zapi/webhook-secret',
      CLIENT_TOKEN_PARAMETER: '/zapi/client-token',
    }),
    zapiBaseUrl: zapi.url,
    zapiAttemptTimeoutMs: 300,
    zapiMaxAttempts: 2,
    ...patch,
  });

  beforeAll(async () => {
    const parameters: Record<string, string> = {
      '/zapi/webhook-secret': MASTER,
      '/zapi/client-token': CLIENT_TOKEN,
      '/zapi/INST00/other': 'not-a-token',
      '/zapi/a/b/token': 'nested-token',
      '/zapi/bad.id/token': 'bad-id-token',
      '/zapi/LEGACY1': 'token-LEGACY1-0a1b2c3d4e5f',
      '/elsewhere/INST99/token': 'elsewhere-token',
      '/flat/webhook-secret': MASTER,
      '/flat/client-token': CLIENT_TOKEN,
      '/flat/FLATA': tokenOf('FLATA'),
      '/flat/FLATB': tokenOf('FLATB'),
      '/flat/nested/FLATC': tokenOf('FLATC'),
      '/bad/short': 'too-short-master',
      '/bad/chars': `${'a'.repeat(40)}!"#$`,
      '/bad/empty-ish': ' ',
      '/bad/client-token-newline': 'CtAccount0123456789\n',
      '/bad/client-token-euro': 'CtAccount€0123456789',
    };
    for (const id of TOKEN_IDS) parameters[`/zapi/${id}/token`] = tokenOf(id);
    aws = await startAwsStandIn(parameters);
    zapi = await startZapiStandIn();
    ssm = new SSMClient({
      region: 'sa-east-1',
      endpoint: aws.url,
      credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
      maxAttempts: 1,
    });
  });
  afterAll(async () => {
    ssm.destroy();
    await Promise.all([aws.close(), zapi.close()]);
  });
  beforeEach(() => {
    aws.calls.length = 0;
    aws.misbehave.clear();
    aws.misbehaveParameters.clear();
    zapi.instances.clear();
    zapi.reset();
  });

  it('lists names only, then reads exactly the token parameters (10 at a time): never the master, the Client-Token or other names', async () => {
    const members = await listFleet(fleetDeps(config(), ssm), soon());
    expect(members.map((m) => m.instanceId).sort()).toEqual(TOKEN_IDS);
    for (const m of members) expect(m.token).toBe(tokenOf(m.instanceId));
    // 23 tokens + 6 other names under /zapi: one page of names, then three reads of at most 10 tokens.
    expect(aws.calls[0]).toBe('AmazonSSM.DescribeParameters');
    const reads = aws.calls.slice(1);
    expect(reads).toHaveLength(3);
    const read = reads.flatMap((call) => call.replace('AmazonSSM.GetParameters ', '').split(','));
    expect(read.sort()).toEqual(TOKEN_IDS.map((id) => `/zapi/${id}/token`).sort());
    expect(aws.calls.some((call) => call.includes('GetParametersByPath'))).toBe(false);
  });

  it("never lists the canary's token parameter as an instance (it is never registered at Z-API)", async () => {
    aws.put(`/zapi/${CANARY_INSTANCE_ID}/token`, 'canary-token-0a1b2c3d');
    try {
      const members = await listFleet(fleetDeps(config(), ssm), soon());
      expect(members.map((m) => m.instanceId).sort()).toEqual(TOKEN_IDS);
      expect(aws.calls.join(' ')).not.toContain(CANARY_INSTANCE_ID);
      expect(
        tokenPattern('/zapi/{instanceId}/token').match(`/zapi/${CANARY_INSTANCE_ID}/token`),
      ).toBeUndefined();
    } finally {
      aws.delete(`/zapi/${CANARY_INSTANCE_ID}/token`);
    }
  });

  it("with a template without a suffix ('/flat/{instanceId}'), the master and the Client-Token are never instances", async () => {
    const members = await listFleet(
      fleetDeps(
        config({
          tokenParameterTemplate: '/flat/{instanceId}',
          masterSecretParameter: '/flat/webhook-secret',
          clientTokenParameter: '/flat/client-token',
        }),
        ssm,
      ),
      soon(),
    );
    expect(members).toStrictEqual([
      { instanceId: 'FLATA', token: tokenOf('FLATA') },
      { instanceId: 'FLATB', token: tokenOf('FLATB') },
    ]);
    for (const m of members) {
      expect(m.token).not.toBe(MASTER);
      expect(m.token).not.toBe(CLIENT_TOKEN);
    }
    // The same with '/zapi/{instanceId}' next to '/zapi/webhook-secret' and '/zapi/client-token'.
    const zapiFlat = await listFleet(
      fleetDeps(config({ tokenParameterTemplate: '/zapi/{instanceId}' }), ssm),
      soon(),
    );
    expect(zapiFlat).toStrictEqual([{ instanceId: 'LEGACY1', token: tokenOf('LEGACY1') }]);
  });

  it('with a template without a suffix, a listed id naming the master or the Client-Token never sends its value to Z-API', async () => {
    // {"instanceIds": ["webhook-secret"]} passes the trigger's id check; listFleet skips these names, readToken must too.
    const flat = config({
      tokenParameterTemplate: '/flat/{instanceId}',
      masterSecretParameter: '/flat/webhook-secret',
      clientTokenParameter: '/flat/client-token',
    });
    const urls: string[] = [];
    const spy = (input: string | URL | Request, init?: RequestInit) => {
      urls.push(String(input));
      return fetch(input, init);
    };
    const deps = fleetDeps(flat, ssm, { fetch: spy as typeof fetch });
    for (const id of ['webhook-secret', 'client-token']) {
      const value = await deps.readToken(id, soon()).catch(() => undefined);
      expect([MASTER, CLIENT_TOKEN]).not.toContain(value);
    }
    const report = await runFleet(
      { mode: 'release', trigger: 'manual', instanceIds: ['webhook-secret', 'client-token', 'FLATA'] },
      flat,
      deps,
      soon(),
    );
    expect(report.outcomes).toHaveLength(3);
    for (const url of urls) {
      for (const secret of [MASTER, CLIENT_TOKEN].flatMap(secretForms)) expect(url).not.toContain(secret);
    }
  });

  it('the listing skips a token parameter with an empty value and keeps one entry per instance', async () => {
    aws.put('/zapi/INST00/token', '');
    try {
      const members = await listFleet(fleetDeps(config(), ssm), soon());
      expect(members.map((m) => m.instanceId).sort()).toEqual(TOKEN_IDS.filter((id) => id !== 'INST00'));
    } finally {
      aws.put('/zapi/INST00/token', tokenOf('INST00'));
    }
  });

  it('the listing turns an SSM failure into a ParameterError naming the path', async () => {
    aws.misbehave.set('AmazonSSM.DescribeParameters', 'hang');
    const error = await listFleet(fleetDeps(config(), ssm), soon(300)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ParameterError);
    expect(error).toMatchObject({ code: 'timeout', parameter: '/zapi' });
  });

  it('readToken reads one token, and says undefined for a missing parameter', async () => {
    const deps = fleetDeps(config(), ssm);
    expect(await deps.readToken('INST07', soon())).toBe(tokenOf('INST07'));
    expect(await deps.readToken('NOPE', soon())).toBeUndefined();
    expect(aws.calls).toEqual([
      'AmazonSSM.GetParameter /zapi/INST07/token',
      'AmazonSSM.GetParameter /zapi/NOPE/token',
    ]);
    expect(deps.tokenParameterName('NOPE')).toBe('/zapi/NOPE/token');
  });

  it('readToken passes on other failures (timeout, unavailable)', async () => {
    const deps = fleetDeps(config(), ssm);
    aws.misbehaveParameters.set('/zapi/INST01/token', 'hang');
    aws.misbehaveParameters.set('/zapi/INST02/token', 'reset');
    const hung = await deps.readToken('INST01', soon(300)).catch((e: unknown) => e);
    expect(hung).toBeInstanceOf(ParameterError);
    expect(hung).toMatchObject({ code: 'timeout', parameter: '/zapi/INST01/token' });
    const reset = await deps.readToken('INST02', soon()).catch((e: unknown) => e);
    expect(reset).toBeInstanceOf(ParameterError);
    expect(reset).toMatchObject({ code: 'unavailable', parameter: '/zapi/INST02/token' });
  });

  it('readClientToken: undefined without a parameter (no SSM call), the value with one', async () => {
    expect(
      await fleetDeps(config({ clientTokenParameter: undefined }), ssm).readClientToken(soon()),
    ).toBeUndefined();
    expect(aws.calls).toEqual([]);
    expect(await fleetDeps(config(), ssm).readClientToken(soon())).toBe(CLIENT_TOKEN);
    const missing = await fleetDeps(config({ clientTokenParameter: '/zapi/none' }), ssm)
      .readClientToken(soon())
      .catch((e: unknown) => e);
    expect(missing).toMatchObject({ code: 'not-found', parameter: '/zapi/none' });
  });

  it.each(['/bad/client-token-newline', '/bad/client-token-euro'])(
    'readClientToken refuses a Client-Token a header cannot carry (%s), naming the parameter, never the value',
    async (name) => {
      const error = await fleetDeps(config({ clientTokenParameter: name }), ssm)
        .readClientToken(soon())
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ParameterError);
      expect(error).toMatchObject({ code: 'invalid', parameter: name });
      expect((error as Error).message).toBe(
        `SSM parameter ${name} (the Client-Token) holds characters other than letters, digits, - and _ (Z-API's account security token has none; a trailing newline or space, say): store it again: aws ssm put-parameter --type SecureString --name ${name} --value 'YOUR_ACCOUNT_SECURITY_TOKEN' --overwrite`,
      );
      expect((error as Error).message).not.toContain('CtAccount');
    },
  );

  it.each([
    ['/bad/short', 'too-short-master', 'holds 16 characters; a master secret has 32 to 512'],
    ['/bad/chars', `${'a'.repeat(40)}!"#$`, 'holds characters other than letters, digits, - and _'],
    ['/bad/empty-ish', ' ', 'holds 1 characters'],
  ])(
    'readMaster refuses a bad master at %s, naming the parameter and never the value',
    async (name, value, why) => {
      const error = await fleetDeps(config({ masterSecretParameter: name }), ssm)
        .readMaster(soon())
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ParameterError);
      const message = (error as ParameterError).message;
      expect(message).toContain(`SSM parameter ${name} ${why}`);
      expect(message).toContain(`--name ${name}`);
      expect(message).not.toContain(value.trim() || '\u0000');
      expect((error as ParameterError).code).toBe('invalid');
    },
  );

  it('readMaster of a missing parameter names it', async () => {
    const error = await fleetDeps(config({ masterSecretParameter: '/zapi/missing' }), ssm)
      .readMaster(soon())
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'not-found', parameter: '/zapi/missing' });
  });

  describe('readMaster around a rotation (effectiveMasterReader)', () => {
    const T = 1_800_000_000_000;
    const OLD = 'Old_master-0123456789abcdefghijklmnop';
    const SETTLE = { receiverCacheMs: 300_000, settleMarginMs: 30_000 }; // 330 s
    let n = 0;
    /** A master rotated `agoMs` before T (from OLD, unless `previous` says otherwise). */
    function rotated(agoMs: number, previous: string | null = OLD): string {
      n += 1;
      const name = `/rot/m${n}`;
      if (previous !== null) aws.put(name, previous, T - 10 * DAY);
      aws.put(name, MASTER, T - agoMs);
      return name;
    }
    function reader(name: string, options: FleetRuntimeOptions = {}) {
      const sleep = vi.fn(async (_ms: number) => {});
      const log = vi.fn((_record: Record<string, unknown>) => {});
      const read = effectiveMasterReader({ masterSecretParameter: name, ...SETTLE }, ssm, {
        now: () => T,
        sleep,
        log,
        ...options,
      });
      return { read, sleep, log };
    }
    /** A deadline `remaining` ms after T on the same frozen clock. */
    const left = (remaining: number) => deadlineAt(T + remaining, () => T);

    it('once the window is over: the current master, without reading older versions or waiting', async () => {
      const name = rotated(330_000);
      const { read, sleep } = reader(name);
      expect(await read(left(600_000), { waitForNewMaster: true })).toBe(MASTER);
      expect(await read(left(600_000))).toBe(MASTER);
      expect(sleep).not.toHaveBeenCalled();
      expect(aws.calls).toEqual([`AmazonSSM.GetParameter ${name}`, `AmazonSSM.GetParameter ${name}`]);
    });

    it('a master never rotated: the current one', async () => {
      const name = rotated(10 * DAY, null);
      const { read, sleep } = reader(name);
      expect(await read(left(600_000), { waitForNewMaster: true })).toBe(MASTER);
      expect(sleep).not.toHaveBeenCalled();
    });

    it('inside the window: the previous master (every receiver still accepts it)', async () => {
      const name = rotated(329_000);
      const { read, sleep, log } = reader(name);
      expect(await read(left(600_000))).toBe(OLD);
      expect(await read(left(600_000), { waitForNewMaster: false })).toBe(OLD);
      expect(aws.calls).toContain(`AmazonSSM.GetParameter ${name}:1`);
      expect(sleep).not.toHaveBeenCalled();
      expect(log).not.toHaveBeenCalled();
    });

    it('the run a rotation triggered waits the window out (leaving a minute), then uses the new master', async () => {
      const name = rotated(30_000);
      const { read, sleep, log } = reader(name);
      expect(await read(left(360_000), { waitForNewMaster: true })).toBe(MASTER);
      expect(sleep.mock.calls).toEqual([[300_000]]);
      expect(log.mock.calls).toEqual([
        [
          {
            msg: 'the master secret was just rotated: waiting until every receiver knows it before registering the new URLs',
            waitMs: 300_000,
          },
        ],
      ]);
      for (const [record] of log.mock.calls) {
        for (const secret of [MASTER, OLD]) expect(JSON.stringify(record)).not.toContain(secret);
      }
    });

    it('without a minute to spare after the wait, it registers the previous master instead', async () => {
      const name = rotated(30_000);
      const { read, sleep, log } = reader(name);
      expect(await read(left(359_999), { waitForNewMaster: true })).toBe(OLD);
      expect(sleep).not.toHaveBeenCalled();
      expect(log).not.toHaveBeenCalled();
    });

    it('inside the window with no usable previous version: the current master', async () => {
      const unreadable = rotated(1_000);
      aws.misbehaveParameters.set(`${unreadable}:1`, 'reset');
      expect(await reader(unreadable).read(left(600_000))).toBe(MASTER);
      const invalid = rotated(1_000, 'short');
      expect(await reader(invalid).read(left(600_000))).toBe(MASTER);
    });

    it('a master created just now (version 1): the current one, and the triggered run waits the window', async () => {
      const name = rotated(1_000, null);
      const plain = reader(name);
      expect(await plain.read(left(600_000))).toBe(MASTER);
      expect(plain.sleep).not.toHaveBeenCalled();
      const triggered = reader(name);
      expect(await triggered.read(left(600_000), { waitForNewMaster: true })).toBe(MASTER);
      expect(triggered.sleep.mock.calls).toEqual([[329_000]]);
    });

    it('uses the real clock and a real pause by default', async () => {
      const name = `/rot/real${++n}`;
      aws.put(name, OLD, Date.now() - 10 * DAY);
      aws.put(name, MASTER, Date.now() - 1_000);
      const inWindow = effectiveMasterReader(
        { masterSecretParameter: name, receiverCacheMs: 60_000, settleMarginMs: 0 },
        ssm,
      );
      expect(await inWindow(soon())).toBe(OLD);
      const over = effectiveMasterReader(
        { masterSecretParameter: name, receiverCacheMs: 0, settleMarginMs: 0 },
        ssm,
      );
      expect(await over(soon())).toBe(MASTER);
      const shortWait = effectiveMasterReader(
        { masterSecretParameter: name, receiverCacheMs: 0, settleMarginMs: 1_100 },
        ssm,
      );
      expect(await shortWait(soon(65_000), { waitForNewMaster: true })).toBe(MASTER);
    });

    it('fleetDeps wires the settings, clock, pause and log into readMaster', async () => {
      const name = rotated(30_000);
      const sleep = vi.fn(async (_ms: number) => {});
      const log = vi.fn();
      const deps = fleetDeps(config({ masterSecretParameter: name, ...SETTLE }), ssm, {
        now: () => T,
        sleep,
        log,
      });
      expect(await deps.readMaster(left(600_000))).toBe(OLD);
      expect(await deps.readMaster(left(600_000), { waitForNewMaster: true })).toBe(MASTER);
      expect(sleep.mock.calls).toEqual([[300_000]]);
      expect(log).toHaveBeenCalledTimes(1);
    });
  });

  it('zapi() builds a client with the configured base URL, attempts, attempt timeout and fetch', async () => {
    zapi.add('ZA', tokenOf('ZA'), { behaviour: { status: 500, body: '' } });
    const fetchSpy = vi.fn((input: string | URL | Request, init?: RequestInit) => fetch(input, init));
    const deps = fleetDeps(config(), ssm, { fetch: fetchSpy as unknown as typeof fetch });
    const error = await deps
      .zapi({ instanceId: 'ZA', token: tokenOf('ZA') }, limiter())
      .me(soon())
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ZapiError);
    expect((error as ZapiError).code).toBe('server-error');
    expect(zapi.requests).toHaveLength(2);
    expect(fetchSpy).toHaveBeenCalledTimes(2);
    expect(String(fetchSpy.mock.calls[0]?.[0])).toBe(`${zapi.url}/instances/ZA/token/${tokenOf('ZA')}/me`);

    // The attempt timeout (300 ms) ends a hung call well before a 3 s deadline.
    zapi.reset();
    zapi.get('ZA').behaviour = 'hang';
    const deadline = soon(3_000);
    const hung = await fleetDeps(config({ zapiMaxAttempts: 1 }), ssm)
      .zapi({ instanceId: 'ZA', token: tokenOf('ZA') }, limiter())
      .me(deadline)
      .catch((e: unknown) => e);
    expect((hung as ZapiError).code).toBe('timeout');
    expect(Date.now()).toBeLessThan(deadline.at);
    expect(zapi.requests).toHaveLength(1);
  });

  it('zapi() uses the global fetch when none is given, and passes the Client-Token', async () => {
    zapi.add('ZB', tokenOf('ZB'), { requireClientToken: CLIENT_TOKEN, connected: false });
    const state = await fleetDeps(config(), ssm)
      .zapi({ instanceId: 'ZB', token: tokenOf('ZB'), clientToken: CLIENT_TOKEN }, limiter())
      .me(soon());
    expect(state.connected).toBe(false);
    expect(zapi.requests[0]?.headers['client-token']).toBe(CLIENT_TOKEN);
  });

  it('a whole run: every instance registered from SSM, nothing secret in the outcomes or the report', async () => {
    const ids = ['INST00', 'INST01', 'INST02', 'INST03'];
    for (const id of TOKEN_IDS) {
      zapi.add(id, tokenOf(id), {
        requireClientToken: CLIENT_TOKEN,
        ...(ids.includes(id) ? {} : { presenceUrl: instanceWebhookUrl(BASE, id, MASTER) }),
      });
    }
    zapi.add('INST22', tokenOf('INST22'), {
      requireClientToken: CLIENT_TOKEN,
      behaviour: { status: 500, body: `${MASTER} ${CLIENT_TOKEN}` },
    });
    const cfg = config({ concurrency: 5 });
    const report = await runFleet({ mode: 'reconcile', trigger: 'sweep' }, cfg, fleetDeps(cfg, ssm), soon());
    const actions = Object.fromEntries(report.outcomes.map((o) => [o.instanceId, o.action]));
    for (const id of ids) expect(actions[id]).toBe('registered');
    expect(actions.INST22).toBe('failed');
    expect(Object.values(actions).filter((a) => a === 'unchanged')).toHaveLength(
      TOKEN_IDS.length - ids.length - 1,
    );
    for (const id of ids) expect(zapi.get(id).presenceUrl).toBe(instanceWebhookUrl(BASE, id, MASTER));

    const lines: string[] = [];
    const log: LogSink = {
      info: (r) => void lines.push(JSON.stringify(r)),
      warn: (r) => void lines.push(JSON.stringify(r)),
      error: (r) => void lines.push(JSON.stringify(r)),
    };
    const counts = reportRun(report, {
      namespace: 'T',
      durationMs: 5,
      log,
      write: (l) => void lines.push(l),
    });
    expect(counts).toMatchObject({ fleetSize: 23, registered: 22, newlyRegistered: 4, failed: 1 });
    const text = [JSON.stringify(report), ...lines, ...failureList(report)].join('\n');
    const secrets = [MASTER, CLIENT_TOKEN];
    for (const id of TOKEN_IDS) secrets.push(tokenOf(id), deriveInstanceSecret(MASTER, id));
    for (const secret of secrets.flatMap(secretForms)) expect(text).not.toContain(secret);
  });
});
