import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { describe, expect, it } from 'vitest';
import { FLEET_DEFAULTS } from '../../functions/fleet/settings.ts';
import { RECEIVER_DEFAULTS } from '../../functions/presence-webhook/env.ts';
import { CANARY_INSTANCE_ID } from '../../functions/shared/contract/presence-contract.ts';
import { CONTEXT_KEYS, ConfigError, type ContextKey, loadConfig, stackName } from '../../lib/config.ts';
import { ALARM_NAMES } from '../../lib/monitoring.ts';

const from = (context: Record<string, unknown>) => loadConfig((key) => context[key]);

function problemsOf(context: Record<string, unknown>): string[] {
  try {
    from(context);
  } catch (error) {
    if (error instanceof ConfigError) return [...error.problems];
    throw error;
  }
  throw new Error('expected a ConfigError');
}

/** The one problem a context has; fails when it has none or several. */
function onlyProblem(context: Record<string, unknown>): string {
  const problems = problemsOf(context);
  expect(problems).toHaveLength(1);
  return problems[0] as string;
}

const example = (key: ContextKey) => `Example: -c ${key}=${CONTEXT_KEYS[key].example}`;

describe('loadConfig: defaults', () => {
  it('needs no context at all and documents every default', () => {
    expect(from({})).toEqual({
      instanceIds: [],
      dueWarningDays: FLEET_DEFAULTS.dueWarningDays,
      webhookSecretParameter: '/zapi/webhook-secret',
      instanceTokenParameter: '/zapi/{instanceId}/token',
      zapiBaseUrl: 'https://api.z-api.io',
      registerWebhook: true,
      throttleRateLimit: 50,
      throttleBurstLimit: 100,
      maxBodyBytes: 16_384,
      archiveRetentionDays: 30,
      logRetentionDays: RetentionDays.ONE_YEAR,
      encryptLogs: false,
      detailedMetrics: false,
      dashboard: false,
      subscriberAccountIds: [],
      presenceStore: false,
      activityExpirySeconds: 25,
      presenceIdleDays: 30,
      canary: true,
      canaryIntervalMinutes: 5,
      receiverTimeoutSeconds: 10,
      receiverMemoryMb: 256,
      sdkAttemptTimeoutMs: 2_000,
      sdkMaxAttempts: 2,
      secretCacheSeconds: 300,
      secretGraceMinutes: 90,
      driftPolicy: 'repair',
      sweepIntervalMinutes: 60,
      reconcileConcurrency: 16,
      zapiAttemptTimeoutMs: 5_000,
      zapiMaxAttempts: 4,
      zapiRequestsPerSecond: 20,
      registrationTimeoutSeconds: 300,
      reconcilerTimeoutSeconds: 900,
      alarmThresholds: {},
      metricsNamespace: 'ZapiPresence',
      schemaRegistry: true,
      debugEventLog: false,
    });
  });

  it('leaves optional settings out instead of inventing values', () => {
    const config = from({}) as unknown as Record<string, unknown>;
    for (const key of [
      'stage',
      'eventBusArn',
      'eventBusName',
      'clientTokenParameter',
      'receiverReservedConcurrency',
      'currentPaymentStatuses',
      'alarmEmail',
    ]) {
      expect(config, key).not.toHaveProperty(key);
    }
  });

  it('takes its documented defaults from the modules the functions read (no second copy)', () => {
    const config = from({});
    expect(config.webhookSecretParameter).toBe(CONTEXT_KEYS.webhookSecretParameter.default);
    expect(config.instanceTokenParameter).toBe(FLEET_DEFAULTS.tokenParameterTemplate);
    expect(config.maxBodyBytes).toBe(RECEIVER_DEFAULTS.maxBodyBytes);
    expect(config.receiverTimeoutSeconds).toBe(RECEIVER_DEFAULTS.timeoutSeconds);
    expect(config.receiverMemoryMb).toBe(RECEIVER_DEFAULTS.memoryMb);
    expect(config.sdkAttemptTimeoutMs).toBe(RECEIVER_DEFAULTS.sdkAttemptTimeoutMs);
    expect(config.sdkMaxAttempts).toBe(RECEIVER_DEFAULTS.sdkMaxAttempts);
    expect(config.secretCacheSeconds).toBe(RECEIVER_DEFAULTS.secretCacheSeconds);
    expect(config.secretGraceMinutes * 60).toBe(RECEIVER_DEFAULTS.secretGraceSeconds);
    expect(config.metricsNamespace).toBe(RECEIVER_DEFAULTS.metricsNamespace);
    expect(config.driftPolicy).toBe(FLEET_DEFAULTS.driftPolicy);
    expect(config.sweepIntervalMinutes).toBe(FLEET_DEFAULTS.sweepIntervalMinutes);
    expect(config.reconcileConcurrency).toBe(FLEET_DEFAULTS.concurrency);
    expect(config.zapiAttemptTimeoutMs).toBe(FLEET_DEFAULTS.zapiAttemptTimeoutMs);
    expect(config.zapiMaxAttempts).toBe(FLEET_DEFAULTS.zapiMaxAttempts);
    expect(config.zapiBaseUrl).toBe(FLEET_DEFAULTS.zapiBaseUrl);
    expect(config.registrationTimeoutSeconds).toBe(FLEET_DEFAULTS.registrationTimeoutSeconds);
    expect(config.reconcilerTimeoutSeconds).toBe(FLEET_DEFAULTS.reconcilerTimeoutSeconds);
    // Every documented default is the value loadConfig returns.
    const values = config as unknown as Record<string, unknown>;
    for (const [key, spec] of Object.entries(CONTEXT_KEYS)) {
      // The live feed's settings live under config.liveFeed (checked below).
      if ('default' in spec && !key.startsWith('liveFeed')) expect(values[key], key).toEqual(spec.default);
    }
    expect(config.liveFeed === undefined).toBe(!CONTEXT_KEYS.liveFeed.default);
    expect(from({ liveFeed: 'true' }).liveFeed?.allowedOrigins.join(',')).toBe(
      CONTEXT_KEYS.liveFeedAllowedOrigins.default,
    );
  });

  it('reads strings from -c and numbers or booleans from cdk.json alike', () => {
    expect(
      from({
        throttleRateLimit: '120',
        throttleBurstLimit: 240,
        logRetentionDays: '90',
        registerWebhook: false,
        schemaRegistry: 'FALSE',
        debugEventLog: true,
        sweepIntervalMinutes: ' 15 ',
      }),
    ).toMatchObject({
      throttleRateLimit: 120,
      throttleBurstLimit: 240,
      logRetentionDays: 90,
      registerWebhook: false,
      schemaRegistry: false,
      debugEventLog: true,
      sweepIntervalMinutes: 15,
    });
  });

  it('takes an existing bus by ARN, a Client-Token parameter and payment statuses', () => {
    const arn = 'arn:aws:events:sa-east-1:123456789012:event-bus/shared';
    expect(
      from({
        eventBusArn: arn,
        clientTokenParameter: '/zapi/client-token',
        currentPaymentStatuses: ' PAID, TRIAL ,',
        zapiBaseUrl: 'https://zapi.example.com/api//',
      }),
    ).toMatchObject({
      eventBusArn: arn,
      clientTokenParameter: '/zapi/client-token',
      currentPaymentStatuses: ['PAID', 'TRIAL'],
      zapiBaseUrl: 'https://zapi.example.com/api',
    });
    expect(from({ currentPaymentStatuses: ['PAID', 'TRIAL'] }).currentPaymentStatuses).toEqual([
      'PAID',
      'TRIAL',
    ]);
  });
});

describe('loadConfig: instanceId', () => {
  it('is optional: the fleet is whatever SSM holds', () => {
    expect(from({}).instanceIds).toEqual([]);
    expect(from({ instanceId: '' }).instanceIds).toEqual([]);
    expect(from({ instanceId: null }).instanceIds).toEqual([]);
  });

  it('takes several instances, comma-separated, trimmed and de-duplicated', () => {
    expect(from({ instanceId: ' ID1, ID2 ,ID1,,' }).instanceIds).toEqual(['ID1', 'ID2']);
    expect(from({ instanceId: '3C01A2B3C4D5E6F7A8B9C0D1E2F3A4B5' }).instanceIds).toEqual([
      '3C01A2B3C4D5E6F7A8B9C0D1E2F3A4B5',
    ]);
    expect(from({ instanceId: 12345 }).instanceIds).toEqual(['12345']);
  });

  it('names every id that is not a Z-API instance id, in one problem, with an example', () => {
    const problem = onlyProblem({ instanceId: 'GOOD,bad id!,x/y,OK_2' });
    expect(problem).toMatch(/^instanceId: "bad id!", "x\/y" is not a Z-API instance id/);
    expect(problem).not.toContain('GOOD');
    expect(problem).toContain(example('instanceId'));
    expect(onlyProblem({ instanceId: 'A'.repeat(65) })).toMatch(/^instanceId: "A{65}"/);
  });

  it("refuses the canary's instance id: it is never registered at Z-API", () => {
    const problem = onlyProblem({ instanceId: `ID1,${CANARY_INSTANCE_ID}` });
    expect(problem).toMatch(
      /^instanceId: "zapi-presence-canary" is the canary's instance id, which is never registered at Z-API/,
    );
    expect(problem).toContain(example('instanceId'));
  });

  it('takes a JSON array from cdk.json as the comma-separated list, and refuses any other shape', () => {
    expect(from({ instanceId: ['A', ' B ', 'A'] }).instanceIds).toEqual(['A', 'B']);
    expect(from({ instanceId: ['A,B', 'C'] }).instanceIds).toEqual(['A', 'B', 'C']);
    expect(from({ instanceId: [] }).instanceIds).toEqual([]);
    expect(onlyProblem({ instanceId: [['A']] })).toMatch(/^instanceId: expected a string, got \[\["A"\]\]/);
    expect(onlyProblem({ instanceId: [{ id: 'A' }] })).toMatch(
      /^instanceId: expected a string, got \[\{"id":"A"\}\]/,
    );
    expect(onlyProblem({ instanceId: { A: true } })).toMatch(
      /^instanceId: expected a string, got \{"A":true\}/,
    );
    // A setting that is not a list takes no array.
    expect(onlyProblem({ eventBusName: ['a', 'b'] })).toMatch(
      /^eventBusName: expected a string, got \["a","b"\]/,
    );
    expect(onlyProblem({ instanceId: [['A']] })).toContain('in cdk.json also ["ID1", "ID2"]');
  });
});

describe('loadConfig: instanceTokenParameter', () => {
  it.each([
    '/zapi/{instanceId}/token',
    '/org/zapi/{instanceId}/token',
    '/zapi/i-{instanceId}/token',
    '/zapi/{instanceId}/zapi-token',
  ])('accepts %s', (template) => {
    expect(from({ instanceTokenParameter: template }).instanceTokenParameter).toBe(template);
  });

  it.each([
    ['no placeholder', '/zapi/token'],
    ['a misspelt placeholder', '/zapi/{instanceid}/token'],
    ['the placeholder twice', '/zapi/{instanceId}/{instanceId}'],
    ['no leading slash', 'zapi/{instanceId}/token'],
    ['no path before the placeholder', '/{instanceId}/token'],
    ['an empty path segment only', '//{instanceId}/token'],
    ['the placeholder inside the first segment', '/zapi{instanceId}/token'],
  ])('refuses a template with %s, naming the key and an example', (_what, template) => {
    const problem = onlyProblem({ instanceTokenParameter: template });
    expect(problem).toContain(
      `instanceTokenParameter: "${template}" must start with a path (/name/) and contain {instanceId} exactly once`,
    );
    expect(problem).toContain(example('instanceTokenParameter'));
  });

  it.each(['/zapi/{instanceId}', '/zapi/{instanceId}/', '/zapi/{instanceId}/a/token', '/zapi/{instanceId}x'])(
    'refuses %s: the read grant must end with a name after the id (an IAM * also matches /)',
    (template) => {
      expect(onlyProblem({ instanceTokenParameter: template })).toMatch(
        /^instanceTokenParameter: ".*" must end with \/name after \{instanceId\}: the read grant ends with that name/,
      );
    },
  );
});

describe('loadConfig: receiverReservedConcurrency', () => {
  it('reserves nothing unless asked', () => {
    expect(from({})).not.toHaveProperty('receiverReservedConcurrency');
    expect(from({ receiverReservedConcurrency: 'off' })).not.toHaveProperty('receiverReservedConcurrency');
    expect(from({ receiverReservedConcurrency: 'OFF' })).not.toHaveProperty('receiverReservedConcurrency');
    expect(from({ receiverReservedConcurrency: '' })).not.toHaveProperty('receiverReservedConcurrency');
  });

  it('takes a number from -c or cdk.json', () => {
    expect(from({ receiverReservedConcurrency: '10' }).receiverReservedConcurrency).toBe(10);
    expect(from({ receiverReservedConcurrency: 1_000 }).receiverReservedConcurrency).toBe(1_000);
    expect(from({ receiverReservedConcurrency: 1 }).receiverReservedConcurrency).toBe(1);
  });

  it.each(['0', '1001', 'none', '2.5'])('refuses %s', (value) => {
    const problem = onlyProblem({ receiverReservedConcurrency: value });
    expect(problem).toBe(
      `receiverReservedConcurrency: expected a whole number from 1 to 1000, got "${value}". ${example('receiverReservedConcurrency')}`,
    );
  });
});

describe('loadConfig: alarmThresholds', () => {
  it('takes a JSON string (-c) or an object (cdk.json)', () => {
    expect(from({ alarmThresholds: '{"PublishFailures":5,"Disconnected":2}' }).alarmThresholds).toEqual({
      PublishFailures: 5,
      Disconnected: 2,
    });
    expect(from({ alarmThresholds: { SweepMissing: 1, Unregistered: 3 } }).alarmThresholds).toEqual({
      SweepMissing: 1,
      Unregistered: 3,
    });
  });

  it('knows every alarm with a threshold by name', () => {
    const all = Object.fromEntries(
      ALARM_NAMES.filter((name) => name !== 'CanaryArrivals').map((name, index) => [name, index + 1]),
    );
    expect(from({ alarmThresholds: JSON.stringify(all) }).alarmThresholds).toEqual(all);
  });

  it('refuses an unknown alarm, listing the valid names', () => {
    const problem = onlyProblem({ alarmThresholds: '{"PublishFailure":5}' });
    expect(problem).toMatch(
      /^alarmThresholds: "PublishFailure" is not an alarm; use one of ReceiverErrors, /,
    );
    for (const name of ALARM_NAMES) expect(problem).toContain(name);
    expect(problem).toContain(example('alarmThresholds'));
  });

  it.each([
    ['a fraction', 1.5],
    ['zero', 0],
    ['a negative number', -3],
    ['a string', '2'],
    ['null', null],
  ])('refuses %s as a threshold', (_what, value) => {
    const problem = onlyProblem({ alarmThresholds: JSON.stringify({ Disconnected: value }) });
    expect(problem).toMatch(/^alarmThresholds: Disconnected: expected a whole number of at least 1, got /);
    expect(problem).toContain(example('alarmThresholds'));
  });

  it.each(['not json', '[1,2]', '5', '"text"', 'null'])('refuses %s: not a JSON object', (value) => {
    expect(onlyProblem({ alarmThresholds: value })).toBe(
      `alarmThresholds: expected a JSON object of alarm name -> threshold. ${example('alarmThresholds')}`,
    );
  });

  it('reports each bad entry', () => {
    const problems = problemsOf({ alarmThresholds: { Nope: 1, Disconnected: 0, PaymentIssues: 2 } });
    expect(problems).toHaveLength(2);
    expect(problems[0]).toMatch(/"Nope" is not an alarm/);
    expect(problems[1]).toMatch(/Disconnected: expected a whole number/);
  });
});

describe('loadConfig: fleet settings', () => {
  it.each(['repair', 'alert'])('takes driftPolicy %s', (policy) => {
    expect(from({ driftPolicy: policy }).driftPolicy).toBe(policy);
  });

  it.each(['ALERT', 'ignore'])('refuses driftPolicy %s', (policy) => {
    expect(onlyProblem({ driftPolicy: policy })).toBe(
      `driftPolicy: expected repair or alert, got "${policy}". ${example('driftPolicy')}`,
    );
  });

  it('bounds the sweep interval to 5 minutes .. 12 hours', () => {
    expect(from({ sweepIntervalMinutes: '5' }).sweepIntervalMinutes).toBe(5);
    // (A twelve-hour sweep needs a grace window to match: see rotation timing.)
    expect(from({ sweepIntervalMinutes: 720, secretGraceMinutes: 741 }).sweepIntervalMinutes).toBe(720);
    for (const bad of ['4', '721', '0', '7.5', 'hourly']) {
      expect(onlyProblem({ sweepIntervalMinutes: bad })).toBe(
        `sweepIntervalMinutes: expected a whole number from 5 to 720, got "${bad}". ${example('sweepIntervalMinutes')}`,
      );
    }
  });

  it('refuses a payment-status list with no status', () => {
    expect(onlyProblem({ currentPaymentStatuses: ' , ' })).toBe(
      `currentPaymentStatuses: lists no status. ${example('currentPaymentStatuses')}`,
    );
  });
});

/** [key, smallest accepted, largest accepted] of every whole-number setting. */
const RANGES: ReadonlyArray<[ContextKey, number, number]> = [
  ['throttleRateLimit', 1, 10_000],
  ['throttleBurstLimit', 1, 5_000],
  ['maxBodyBytes', 256, 200_000],
  ['archiveRetentionDays', 0, 36_500],
  ['receiverReservedConcurrency', 1, 1_000],
  ['receiverTimeoutSeconds', 3, 30],
  ['receiverMemoryMb', 128, 10_240],
  ['sdkAttemptTimeoutMs', 100, 30_000],
  ['sdkMaxAttempts', 1, 10],
  ['secretCacheSeconds', 1, 600],
  ['sweepIntervalMinutes', 5, 720],
  ['reconcileConcurrency', 1, 100],
  ['zapiAttemptTimeoutMs', 100, 60_000],
  ['zapiMaxAttempts', 1, 10],
  ['zapiRequestsPerSecond', 1, 1_000],
  ['registrationTimeoutSeconds', 30, 840],
];

describe('loadConfig: whole-number ranges', () => {
  it.each(RANGES)('%s accepts %i .. %i and nothing outside', (key, min, max) => {
    expect((from({ [key]: String(min) }) as unknown as Record<string, unknown>)[key]).toBe(min);
    // The longest sweep interval needs a grace window to match (rotation timing, below).
    const grace = key === 'sweepIntervalMinutes' ? { secretGraceMinutes: 10_080 } : {};
    expect((from({ ...grace, [key]: max }) as unknown as Record<string, unknown>)[key]).toBe(max);
    for (const bad of [min - 1, max + 1, min + 0.5]) {
      expect(onlyProblem({ [key]: String(bad) })).toBe(
        `${key}: expected a whole number from ${min} to ${max}, got "${bad}". ${example(key)}`,
      );
    }
  });
});

describe('loadConfig: rotation timing', () => {
  it('keeps the previous master valid through the rotation run and the next sweep (cache TTL + 30 s + sweep interval + 15 min)', () => {
    // Defaults: 300 s + 30 s + 60 min + 15 min = 80.5 min, so at least 81; the default is 90.
    expect(from({}).secretGraceMinutes).toBe(90);
    expect(from({ secretGraceMinutes: '81' }).secretGraceMinutes).toBe(81);
    expect(from({ secretGraceMinutes: 10_080 }).secretGraceMinutes).toBe(10_080);
    expect(onlyProblem({ secretGraceMinutes: '80' })).toBe(
      'secretGraceMinutes: 80 is too short: after a rotation the previous master must stay valid while receivers learn the new one (secretCacheSeconds), the reconciler re-registers every instance, and the next sweep (sweepIntervalMinutes) retries any Z-API failed for; use at least 81, or leave it out (the default covers it). Example: -c secretGraceMinutes=81',
    );
    // Left out, it grows with the sweep interval and the cache TTL: any valid sweep interval works alone.
    expect(from({ sweepIntervalMinutes: '720' }).secretGraceMinutes).toBe(741);
    expect(from({ sweepIntervalMinutes: '70' }).secretGraceMinutes).toBe(91);
    expect(from({ secretCacheSeconds: '600', sweepIntervalMinutes: '65' }).secretGraceMinutes).toBe(91);
    expect(from({ sweepIntervalMinutes: '30' }).secretGraceMinutes).toBe(90);
    expect(onlyProblem({ secretGraceMinutes: '0' })).toMatch(/^secretGraceMinutes: 0 is too short/);
    // The bound follows the sweep interval and the cache TTL.
    expect(onlyProblem({ sweepIntervalMinutes: '720', secretGraceMinutes: '90' })).toMatch(
      /^secretGraceMinutes: 90 is too short.*use at least 741,/,
    );
    expect(
      from({ secretCacheSeconds: '1', sweepIntervalMinutes: '5', secretGraceMinutes: '21' })
        .secretGraceMinutes,
    ).toBe(21);
    expect(
      onlyProblem({ secretCacheSeconds: '1', sweepIntervalMinutes: '5', secretGraceMinutes: '20' }),
    ).toMatch(/^secretGraceMinutes: 20 is too short.*use at least 21,/);
    expect(onlyProblem({ secretCacheSeconds: '600', secretGraceMinutes: '85' })).toMatch(
      /^secretGraceMinutes: 85 is too short.*use at least 86,/,
    );
    // URLs registered by hand (no reconciler): the cache TTL plus 15 minutes.
    expect(from({ registerWebhook: 'false', secretGraceMinutes: '20' }).secretGraceMinutes).toBe(20);
    expect(onlyProblem({ registerWebhook: 'false', secretGraceMinutes: '19' })).toBe(
      'secretGraceMinutes: 19 is too short: after a rotation the previous master must stay valid while receivers learn the new one (secretCacheSeconds), the reconciler re-registers every instance; use at least 20, or leave it out (the default covers it). Example: -c secretGraceMinutes=20',
    );
    for (const bad of ['-1', '10081', '30.5']) {
      expect(onlyProblem({ secretGraceMinutes: bad })).toBe(
        `secretGraceMinutes: expected a whole number from 0 to 10080, got "${bad}". ${example('secretGraceMinutes')}`,
      );
    }
  });

  it('gives the reconciler time to wait out the cache TTL after a rotation', () => {
    expect(from({ reconcilerTimeoutSeconds: '420' }).reconcilerTimeoutSeconds).toBe(420);
    expect(from({ reconcilerTimeoutSeconds: 900 }).reconcilerTimeoutSeconds).toBe(900);
    expect(onlyProblem({ reconcilerTimeoutSeconds: '419' })).toBe(
      `reconcilerTimeoutSeconds: 419 is too short: after a rotation the reconciler waits out secretCacheSeconds (300) before registering; use at least 420. ${example('reconcilerTimeoutSeconds')}`,
    );
    expect(from({ secretCacheSeconds: '1', reconcilerTimeoutSeconds: '121' }).reconcilerTimeoutSeconds).toBe(
      121,
    );
    expect(onlyProblem({ secretCacheSeconds: '600', reconcilerTimeoutSeconds: '719' })).toMatch(
      /^reconcilerTimeoutSeconds: 719 is too short.*use at least 720\./,
    );
    for (const bad of ['29', '901', '450.5']) {
      expect(onlyProblem({ reconcilerTimeoutSeconds: bad })).toBe(
        `reconcilerTimeoutSeconds: expected a whole number from 30 to 900, got "${bad}". ${example('reconcilerTimeoutSeconds')}`,
      );
    }
  });
});

/** The value an example shows, as typed after `-c key=` (without shell quotes and the remark in parentheses). */
function exampleValue(key: ContextKey): string {
  const shown = CONTEXT_KEYS[key].example.replace(/ \(.*\)$/, '');
  return shown.startsWith("'") && shown.endsWith("'") ? shown.slice(1, -1) : shown;
}

describe('loadConfig: examples', () => {
  it.each((Object.keys(CONTEXT_KEYS) as ContextKey[]).filter((key) => key !== 'eventBusName'))(
    'accepts the example it shows for %s',
    (key) => {
      // The presence store's own settings need the store on, the live feed's the feed (and an OIDC issuer).
      const store = key === 'activityExpirySeconds' || key === 'presenceIdleDays';
      const feed = key.startsWith('liveFeed') && key !== 'liveFeed';
      const oidc =
        key === 'liveFeedOidcIssuer' || key === 'liveFeedOidcClientId' || key === 'liveFeedGroupsClaim';
      const text = exampleValue(key);
      const loaded = from({
        ...(store && { presenceStore: 'true' }),
        ...(feed && { liveFeed: 'true' }),
        ...(oidc && { liveFeedOidcIssuer: 'https://login.example.com', liveFeedOidcClientId: 'web' }),
        [key]: text,
      });
      if (feed) {
        const read = {
          liveFeedUserPoolId: loaded.liveFeed?.userPoolId,
          liveFeedOidcIssuer: loaded.liveFeed?.oidc?.issuer,
          liveFeedOidcClientId: loaded.liveFeed?.oidc?.clientId,
          liveFeedGroupsClaim: loaded.liveFeed?.oidc?.groupsClaim,
          liveFeedAllowedOrigins: loaded.liveFeed?.allowedOrigins.join(','),
          liveFeedTokenMinutes: String(loaded.liveFeed?.tokenMinutes),
        }[key as string];
        expect(read).toEqual(text);
        return;
      }
      if (key === 'liveFeed') {
        expect(loaded.liveFeed).toBeDefined();
        return;
      }
      const config: Record<string, unknown> = { ...loaded };
      // ...and reads it as the value it shows.
      const shown = ['instanceId', 'subscriberAccountIds', 'currentPaymentStatuses'].includes(key)
        ? text.split(',')
        : key === 'alarmThresholds'
          ? JSON.parse(text)
          : /^\d+$/.test(text)
            ? Number(text)
            : text === 'true' || text === 'false'
              ? text === 'true'
              : text;
      expect(config[key === 'instanceId' ? 'instanceIds' : key]).toEqual(shown);
    },
  );

  it('accepts the example it shows for eventBusName (without an eventBusArn)', () => {
    expect(from({ eventBusName: exampleValue('eventBusName') }).eventBusName).toBe('zapi-chat-presence');
  });
});

/** One bad value per context key, and what its problem must say. */
const BAD: Record<ContextKey, [unknown, RegExp]> = {
  instanceId: ['bad id!', /"bad id!" is not a Z-API instance id/],
  dueWarningDays: ['-1', /dueWarningDays: expected a whole number from 0 to 365/],
  eventBusArn: ['my-bus', /"my-bus" is not an event bus ARN/],
  eventBusName: ['default', /"default" is not a valid name for a new bus/],
  webhookSecretParameter: ['has space', /"has space" is not a valid SSM parameter name/],
  instanceTokenParameter: ['/zapi/token', /must start with a path \(\/name\/\) and contain \{instanceId\}/],
  clientTokenParameter: ['client token', /"client token" is not a valid SSM parameter name/],
  zapiBaseUrl: ['http://api.z-api.io', /"http:\/\/api.z-api.io" is not an https:\/\/ URL/],
  registerWebhook: ['yes', /expected true or false, got "yes"/],
  throttleRateLimit: ['fast', /expected a whole number from 1 to 10000, got "fast"/],
  throttleBurstLimit: ['0', /expected a whole number from 1 to 5000, got "0"/],
  maxBodyBytes: ['10000000', /expected a whole number from 256 to 200000/],
  archiveRetentionDays: ['-1', /expected a whole number from 0 to 36500, got "-1"/],
  logRetentionDays: ['42', /42 is not a CloudWatch Logs retention; use one of 1, 3, 5, 7, 14, 30/],
  receiverReservedConcurrency: ['0', /expected a whole number from 1 to 1000, got "0"/],
  receiverTimeoutSeconds: ['31', /expected a whole number from 3 to 30, got "31"/],
  receiverMemoryMb: ['64', /expected a whole number from 128 to 10240, got "64"/],
  sdkAttemptTimeoutMs: ['99', /expected a whole number from 100 to 30000, got "99"/],
  sdkMaxAttempts: ['11', /expected a whole number from 1 to 10, got "11"/],
  secretCacheSeconds: ['0', /expected a whole number from 1 to 600, got "0"/],
  secretGraceMinutes: ['10081', /expected a whole number from 0 to 10080, got "10081"/],
  driftPolicy: ['ignore', /expected repair or alert, got "ignore"/],
  sweepIntervalMinutes: ['4', /expected a whole number from 5 to 720, got "4"/],
  reconcileConcurrency: ['101', /expected a whole number from 1 to 100, got "101"/],
  zapiAttemptTimeoutMs: ['60001', /expected a whole number from 100 to 60000, got "60001"/],
  zapiMaxAttempts: ['0', /expected a whole number from 1 to 10, got "0"/],
  zapiRequestsPerSecond: [
    'fast',
    /zapiRequestsPerSecond: expected a whole number from 1 to 1000, got "fast"\. Example: -c zapiRequestsPerSecond=20/,
  ],
  registrationTimeoutSeconds: ['841', /expected a whole number from 30 to 840, got "841"/],
  reconcilerTimeoutSeconds: ['901', /expected a whole number from 30 to 900, got "901"/],
  currentPaymentStatuses: [',', /lists no status/],
  alarmThresholds: ['{"Nope":1}', /"Nope" is not an alarm/],
  metricsNamespace: ['AWS/Lambda', /"AWS\/Lambda" is not a CloudWatch namespace of your own/],
  alarmEmail: ['oncall', /"oncall" is not an e-mail address/],
  schemaRegistry: ['nope', /expected true or false, got "nope"/],
  debugEventLog: ['maybe', /expected true or false, got "maybe"/],
  stage: ['1st', /"1st" must start with a letter and hold up to 31 letters, digits and -/],
  encryptLogs: ['no', /expected true or false, got "no"/],
  detailedMetrics: ['on', /expected true or false, got "on"/],
  dashboard: ['1', /expected true or false, got "1"/],
  subscriberAccountIds: ['12345', /"12345" is not a 12-digit AWS account id/],
  presenceStore: ['yes', /presenceStore: expected true or false, got "yes"/],
  activityExpirySeconds: ['4', /activityExpirySeconds: expected a whole number from 5 to 120, got "4"/],
  presenceIdleDays: ['0', /presenceIdleDays: expected a whole number from 1 to 3650, got "0"/],
  canary: ['off', /canary: expected true or false, got "off"/],
  canaryIntervalMinutes: ['7', /canaryIntervalMinutes: expected a whole number from 1 to 6, got "7"/],
  liveFeed: ['on', /liveFeed: expected true or false, got "on"/],
  // Without -c liveFeed=true, each of its settings is refused as such (bad values: 'loadConfig: the live feed').
  liveFeedUserPoolId: ['x', /a setting of the live feed, which is off; add -c liveFeed=true/],
  liveFeedOidcIssuer: ['x', /a setting of the live feed, which is off; add -c liveFeed=true/],
  liveFeedOidcClientId: ['x', /a setting of the live feed, which is off; add -c liveFeed=true/],
  liveFeedGroupsClaim: ['x', /a setting of the live feed, which is off; add -c liveFeed=true/],
  liveFeedAllowedOrigins: ['x', /a setting of the live feed, which is off; add -c liveFeed=true/],
  liveFeedTokenMinutes: ['x', /a setting of the live feed, which is off; add -c liveFeed=true/],
};

describe('loadConfig: the live feed', () => {
  it('is off by default; on, it turns the presence store on and says so', () => {
    expect(from({}).liveFeed).toBeUndefined();
    const config = from({ liveFeed: 'true' });
    expect(config.presenceStore).toBe(true);
    expect(config.liveFeed).toEqual({ allowedOrigins: ['*'], turnedStoreOn: true });
    expect(from({ liveFeed: true, presenceStore: 'true' }).liveFeed?.turnedStoreOn).toBe(false);
  });

  it('refuses the feed with the store turned off, saying what to drop', () => {
    expect(onlyProblem({ liveFeed: 'true', presenceStore: 'false' })).toMatch(
      /^liveFeed: needs the presence store .*drop -c presenceStore=false/,
    );
  });

  it('takes an existing user pool, or an OIDC issuer with its client id and groups claim', () => {
    expect(from({ liveFeed: 'true', liveFeedUserPoolId: 'sa-east-1_AbC123' }).liveFeed?.userPoolId).toBe(
      'sa-east-1_AbC123',
    );
    expect(
      from({
        liveFeed: 'true',
        liveFeedOidcIssuer: 'https://login.example.com/realms/x',
        liveFeedOidcClientId: 'web',
      }).liveFeed?.oidc,
    ).toEqual({ issuer: 'https://login.example.com/realms/x', clientId: 'web', groupsClaim: 'groups' });
    expect(
      from({
        liveFeed: 'true',
        liveFeedOidcIssuer: 'https://login.example.com',
        liveFeedOidcClientId: 'web',
        liveFeedGroupsClaim: 'https://example.com/groups',
      }).liveFeed?.oidc?.groupsClaim,
    ).toBe('https://example.com/groups');
    expect(
      from({ liveFeed: 'true', liveFeedAllowedOrigins: 'https://a.example,http://localhost:5173' }).liveFeed
        ?.allowedOrigins,
    ).toEqual(['https://a.example', 'http://localhost:5173']);
  });

  it.each([
    [{ liveFeedUserPoolId: 'pool' }, /^liveFeedUserPoolId: "pool" is not a Cognito user pool id/],
    [{ liveFeedOidcIssuer: 'https://x.example' }, /^liveFeedOidcClientId: an OIDC issuer needs both/],
    [{ liveFeedOidcClientId: 'web' }, /^liveFeedOidcIssuer: an OIDC issuer needs both/],
    [{ liveFeedGroupsClaim: 'groups' }, /^liveFeedGroupsClaim: only with an OIDC issuer/],
    [
      {
        liveFeedUserPoolId: 'sa-east-1_A1',
        liveFeedOidcIssuer: 'https://x.example',
        liveFeedOidcClientId: 'w',
      },
      /^liveFeedUserPoolId: agents sign in with a user pool or an OIDC issuer, not both/,
    ],
    [
      { liveFeedAllowedOrigins: 'https://a.example/path' },
      /^liveFeedAllowedOrigins: "https:\/\/a.example\/path" is not an origin/,
    ],
    [{ liveFeedTokenMinutes: '4' }, /^liveFeedTokenMinutes: expected a whole number from 5 to 1440/],
    [
      { liveFeedTokenMinutes: '30', liveFeedUserPoolId: 'sa-east-1_A1' },
      /^liveFeedTokenMinutes: only for the app client the app creates/,
    ],
  ])('refuses %j, naming the key', (context, message) => {
    expect(onlyProblem({ liveFeed: 'true', ...context })).toMatch(message);
  });
});

describe('loadConfig: the canary', () => {
  it('is on by default, every 5 minutes', () => {
    const config = from({});
    expect(config.canary).toBe(true);
    expect(config.canaryIntervalMinutes).toBe(5);
  });

  it('takes -c canary=false and an interval', () => {
    expect(from({ canary: 'false' }).canary).toBe(false);
    expect(from({ canaryIntervalMinutes: '1' }).canaryIntervalMinutes).toBe(1);
    expect(from({ canaryIntervalMinutes: 6 }).canaryIntervalMinutes).toBe(6);
  });

  it.each(['0', '2.5', 'five'])('refuses the interval %s, naming the range', (value) => {
    expect(onlyProblem({ canaryIntervalMinutes: value })).toMatch(
      /^canaryIntervalMinutes: expected a whole number from 1 to 6/,
    );
  });

  it('refuses an interval for a canary that is off', () => {
    expect(onlyProblem({ canary: 'false', canaryIntervalMinutes: '5' })).toMatch(
      /^canaryIntervalMinutes: a setting of the canary, which is off \(-c canary=false\): remove one of the two\. Example: -c canaryIntervalMinutes=5/,
    );
    expect(onlyProblem({ alarmThresholds: '{"CanaryArrivals":2}' })).toMatch(
      /^alarmThresholds: CanaryArrivals has no threshold .*set canaryIntervalMinutes instead/,
    );
  });

  it("refuses the canary's reserved id as an instance", () => {
    expect(onlyProblem({ instanceId: `ABC,${CANARY_INSTANCE_ID}` })).toMatch(
      /^instanceId: "zapi-presence-canary" is the canary's instance id, which is never registered at Z-API/,
    );
  });
});

describe('loadConfig: problems', () => {
  it('has a bad-value case for every context key', () => {
    expect(Object.keys(BAD).sort()).toEqual(Object.keys(CONTEXT_KEYS).sort());
  });

  it.each(Object.entries(BAD) as Array<[ContextKey, [unknown, RegExp]]>)(
    'refuses a bad %s with one problem naming the key and an example',
    (key, [value, message]) => {
      const problem = onlyProblem({ [key]: value });
      expect(problem.startsWith(`${key}: `)).toBe(true);
      expect(problem).toMatch(message);
      expect(problem.endsWith(example(key))).toBe(true);
    },
  );

  it('refuses settings that are neither text nor numbers', () => {
    expect(onlyProblem({ throttleRateLimit: { value: 5 } })).toMatch(
      /^throttleRateLimit: expected a string, got \{"value":5\}/,
    );
    expect(onlyProblem({ debugEventLog: 1 })).toMatch(/^debugEventLog: expected true or false, got 1/);
  });

  it('refuses an eventBusName together with an eventBusArn', () => {
    expect(
      onlyProblem({
        eventBusName: 'x',
        eventBusArn: 'arn:aws:events:us-east-1:123456789012:event-bus/y',
      }),
    ).toMatch(/^eventBusName: names a bus to create; it cannot be combined with eventBusArn/);
  });

  it('reports every problem at once, in one error listing them all', () => {
    const context = Object.fromEntries(Object.entries(BAD).map(([key, [value]]) => [key, value]));
    delete context.eventBusName; // it would add a second problem (combined with eventBusArn)
    let error: unknown;
    try {
      from(context);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const { problems, message } = error as ConfigError;
    expect(problems.map((p) => p.split(':')[0]).sort()).toEqual(
      Object.keys(CONTEXT_KEYS)
        .filter((key) => key !== 'eventBusName')
        .sort(),
    );
    expect(message.split('\n')).toEqual(['Invalid CDK context:', ...problems.map((p) => `  - ${p}`)]);
  });
});

describe('loadConfig: presence store settings', () => {
  it('refuses activityExpirySeconds or presenceIdleDays while the store is off (they would do nothing)', () => {
    expect(onlyProblem({ activityExpirySeconds: '60' })).toBe(
      'activityExpirySeconds: a setting of the presence store, which is off; add -c presenceStore=true',
    );
    expect(onlyProblem({ presenceIdleDays: 7, presenceStore: 'false' })).toMatch(
      /^presenceIdleDays: a setting of the presence store/,
    );
    expect(from({ activityExpirySeconds: '60', presenceIdleDays: '7', presenceStore: 'true' })).toMatchObject(
      {
        activityExpirySeconds: 60,
        presenceIdleDays: 7,
      },
    );
  });
});

describe('loadConfig: stage', () => {
  it('has none by default: the stack is ZapiPresence, its parameters and metrics unprefixed', () => {
    const config = from({});
    expect(config).not.toHaveProperty('stage');
    expect(stackName(config)).toBe('ZapiPresence');
    expect(stackName(from({ stage: '' }))).toBe('ZapiPresence');
    expect(stackName(from({ stage: '  ' }))).toBe('ZapiPresence');
  });

  it('deploys a stage side by side: its own stack name, parameters under /zapi-<stage>/, metrics namespace', () => {
    // The example names the stage's own parameter path, never one under the default /zapi/ fleet path.
    expect(example('stage')).toContain('under /zapi-staging/)');
    const config = from({ stage: ' staging ' });
    expect(config).toMatchObject({
      stage: 'staging',
      webhookSecretParameter: '/zapi-staging/webhook-secret',
      instanceTokenParameter: '/zapi-staging/{instanceId}/token',
      metricsNamespace: 'ZapiPresence/staging',
    });
    expect(stackName(config)).toBe('ZapiPresence-staging');
    // Everything else is the unstaged default.
    const staged = ['stage', 'webhookSecretParameter', 'instanceTokenParameter', 'metricsNamespace'];
    const others = (c: object) => Object.entries(c).filter(([key]) => !staged.includes(key));
    expect(others(config)).toEqual(others(from({})));
  });

  it('lets explicit keys win over the stage defaults, even the unstaged values', () => {
    expect(
      from({
        stage: 'prod',
        webhookSecretParameter: '/team/zapi/master',
        instanceTokenParameter: '/team/zapi/{instanceId}/token',
        metricsNamespace: 'Team/Presence',
      }),
    ).toMatchObject({
      stage: 'prod',
      webhookSecretParameter: '/team/zapi/master',
      instanceTokenParameter: '/team/zapi/{instanceId}/token',
      metricsNamespace: 'Team/Presence',
    });
    expect(
      from({
        stage: 'prod',
        webhookSecretParameter: '/zapi/webhook-secret',
        instanceTokenParameter: '/zapi/{instanceId}/token',
        metricsNamespace: 'ZapiPresence',
      }),
    ).toMatchObject({
      webhookSecretParameter: '/zapi/webhook-secret',
      instanceTokenParameter: '/zapi/{instanceId}/token',
      metricsNamespace: 'ZapiPresence',
    });
    // Only the unset ones follow the stage.
    expect(from({ stage: 'prod', webhookSecretParameter: '/team/master' })).toMatchObject({
      webhookSecretParameter: '/team/master',
      instanceTokenParameter: '/zapi-prod/{instanceId}/token',
      metricsNamespace: 'ZapiPresence/prod',
    });
  });

  it.each(['a', 'Prod', 'dev-2', 'pr-1234', `s${'x'.repeat(30)}`])('accepts the stage %s', (stage) => {
    const config = from({ stage });
    expect(config.stage).toBe(stage);
    expect(stackName(config)).toBe(`ZapiPresence-${stage}`);
  });

  it.each([
    ['a leading digit', '1st'],
    ['a leading dash', '-dev'],
    ['an underscore', 'dev_2'],
    ['a slash (it would nest parameter paths)', 'dev/x'],
    ['a dot', 'v1.2'],
    ['32 characters', `s${'x'.repeat(31)}`],
    ['a number from cdk.json', 2],
  ])('refuses a stage with %s, naming the key and an example', (_what, stage) => {
    expect(onlyProblem({ stage })).toBe(
      `stage: "${stage}" must start with a letter and hold up to 31 letters, digits and -. ${example('stage')}`,
    );
  });
});

describe('loadConfig: a stage with characters SSM refuses', () => {
  // lib/config.ts derives the default parameter names and namespace from the stage even when the stage
  // is refused, so `-c stage="my stage"` also reports webhookSecretParameter, instanceTokenParameter and
  // metricsNamespace, keys the user never set (4 problems instead of 1).
  it('reports the stage alone, not the defaults derived from it', () => {
    expect(problemsOf({ stage: 'my stage' })).toEqual([
      `stage: "my stage" must start with a letter and hold up to 31 letters, digits and -. ${example('stage')}`,
    ]);
  });

  it('still names the stage first', () => {
    expect(problemsOf({ stage: 'my stage' })[0]).toMatch(/^stage: "my stage" must start with a letter/);
  });
});

describe.each(['encryptLogs', 'detailedMetrics', 'dashboard'] as const)('loadConfig: %s', (key) => {
  it('is off unless turned on, from -c or cdk.json', () => {
    expect(from({})[key]).toBe(false);
    expect(from({ [key]: 'true' })[key]).toBe(true);
    expect(from({ [key]: ' TRUE ' })[key]).toBe(true);
    expect(from({ [key]: true })[key]).toBe(true);
    expect(from({ [key]: false })[key]).toBe(false);
    expect(from({ [key]: 'false' })[key]).toBe(false);
  });

  it.each(['', 'off', '0', 'no'])('refuses %j', (value) => {
    expect(onlyProblem({ [key]: value })).toBe(
      `${key}: expected true or false, got ${JSON.stringify(value)}. ${example(key)}`,
    );
  });
});

describe('loadConfig: subscriberAccountIds', () => {
  const ARN = 'arn:aws:events:sa-east-1:123456789012:event-bus/shared';

  it('is empty by default', () => {
    expect(from({}).subscriberAccountIds).toEqual([]);
    expect(from({ subscriberAccountIds: '' }).subscriberAccountIds).toEqual([]);
  });

  it('takes several accounts, comma-separated, trimmed and de-duplicated, from -c or cdk.json', () => {
    expect(
      from({ subscriberAccountIds: ' 210987654321, 111122223333 ,210987654321' }).subscriberAccountIds,
    ).toEqual(['210987654321', '111122223333']);
    expect(from({ subscriberAccountIds: 210987654321 }).subscriberAccountIds).toEqual(['210987654321']);
  });

  it('names every malformed id in one problem', () => {
    const problem = onlyProblem({ subscriberAccountIds: '210987654321,12345,abcdefghijkl,1234567890123' });
    expect(problem).toBe(
      `subscriberAccountIds: "12345", "abcdefghijkl", "1234567890123" is not a 12-digit AWS account id. ${example('subscriberAccountIds')}`,
    );
  });

  // lib/config.ts does not drop empty entries here, unlike instanceId and currentPaymentStatuses:
  // `-c subscriberAccountIds=210987654321,` fails with `"" is not a 12-digit AWS account id`.
  it('ignores empty entries (a trailing comma), as instanceId does', () => {
    expect(from({ subscriberAccountIds: '210987654321,,' }).subscriberAccountIds).toEqual(['210987654321']);
  });

  it('is refused with eventBusArn: the policy belongs on that bus', () => {
    expect(onlyProblem({ subscriberAccountIds: '210987654321', eventBusArn: ARN })).toBe(
      `subscriberAccountIds: only for a bus this app creates; with eventBusArn, set the policy on your own bus. ${example('subscriberAccountIds')}`,
    );
    expect(from({ subscriberAccountIds: '', eventBusArn: ARN }).subscriberAccountIds).toEqual([]);
  });

  it('takes a JSON array from cdk.json, and refuses any other shape', () => {
    expect(from({ subscriberAccountIds: ['210987654321', 210987654322] }).subscriberAccountIds).toEqual([
      '210987654321',
      '210987654322',
    ]);
    expect(onlyProblem({ subscriberAccountIds: [true] })).toMatch(
      /^subscriberAccountIds: expected a string, got \[true\]/,
    );
  });
});

describe('loadConfig: settings that do not exist', () => {
  it('refuses a mistyped setting, suggesting the right one', () => {
    expect(() => loadConfig((key) => ({ instanceIds: 'ABC' })[key], ['instanceIds'])).toThrow(
      'instanceIds: not a setting of this app; did you mean instanceId?',
    );
    expect(() => loadConfig(() => undefined, ['bogusSetting'])).toThrow(
      /bogusSetting: not a setting of this app \(/,
    );
  });

  it('leaves feature flags, CDK keys and the CLI’s own keys alone', () => {
    const keys = [
      '@aws-cdk/core:target-partitions',
      'aws:cdk:bundling-stacks',
      'acknowledged-issue-numbers',
      'instanceId',
    ];
    // Not settings: the config is the defaults, as with no context at all.
    expect(loadConfig(() => undefined, keys)).toEqual(from({}));
  });
});
