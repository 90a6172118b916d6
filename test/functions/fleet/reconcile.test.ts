/**
 * The fleet reconciler (runFleet) against the Z-API stand-in on 127.0.0.1 with the real ZapiClient and
 * dependencies built here, plus stub Z-API ports where exact states are needed; and the run's report
 * (counts, log lines, the EMF line, the failure list).
 */
import { describe, expect, it, vi } from 'vitest';
import {
  classify,
  DRIFT_POLICIES,
  type FleetDeps,
  type FleetReport,
  type FleetSettings,
  type InstanceOutcome,
  isOwnEndpoint,
  type RunRequest,
  runFleet,
  type ZapiPort,
} from '../../../functions/fleet/reconcile.ts';
import {
  countOutcomes,
  emfSummary,
  failureList,
  type LogSink,
  logOutcomes,
  reportRun,
} from '../../../functions/fleet/report.ts';
import { FLEET_METRICS } from '../../../functions/fleet/settings.ts';
import {
  type InstanceState,
  secretForms,
  ZapiClient,
  type ZapiCredentials,
  ZapiError,
  type ZapiRateLimiter,
} from '../../../functions/fleet/zapi.ts';
import { type Deadline, deadlineAt } from '../../../functions/shared/aws/deadline.ts';
import { ParameterError } from '../../../functions/shared/aws/ssm.ts';
import {
  deriveInstanceSecret,
  instanceWebhookPath,
  instanceWebhookUrl,
} from '../../../functions/shared/secrets/webhook-secret.ts';
import { useZapiStandIn } from '../../support/use-zapi-standin.ts';
import type { StandInInstance } from '../../support/zapi-standin.ts';

const BASE = 'https://abc123.execute-api.sa-east-1.amazonaws.com';
const MASTER = 'Fleet_master-secret-0123456789abcdefghij';
const CLIENT_TOKEN = 'CtAccount0123456789SecurityTok';
const DAY = 86_400_000;
const NOW = Date.now();
const FAR = NOW + 365 * DAY;
const DUE_SOON_SECONDS = Math.floor((NOW + 3 * DAY) / 1_000);
const FOREIGN_URL = 'https://helpdesk.example.com:8443/hooks/presence?apikey=FOREIGNKEY123#frag';
const FOREIGN_HOST = 'helpdesk.example.com:8443';
const MARKER = 'ANSWER-MARKER-55aa';

const tokenOf = (id: string) => `tok-${id}-5e6f7a8b9c0d1e2f`;
const expectedUrl = (id: string) => instanceWebhookUrl(BASE, id, MASTER);
const ownPath = (id: string) => instanceWebhookPath(BASE, id);
const soon = (ms = 10_000): Deadline => deadlineAt(Date.now() + ms);

const SETTINGS: FleetSettings = {
  webhookBaseUrl: BASE,
  driftPolicy: 'repair',
  concurrency: 4,
  dueWarningMs: 7 * DAY,
  currentPaymentStatuses: ['PAID', 'trial'],
};

const OTHER_URLS = {
  receivedCallbackUrl: 'https://crm.example.com/received',
  deliveryCallbackUrl: 'https://crm.example.com/delivery',
};

/** The fleet: one instance per situation. */
function fleet(id: string): Partial<StandInInstance> {
  const right = { presenceUrl: expectedUrl(id) };
  switch (id) {
    case 'RIGHT_A':
    case 'RIGHT_B':
      return right;
    case 'EMPTY_A':
      return {};
    case 'STALE_A':
      return { presenceUrl: `${ownPath(id)}?secret=old-secret-value` };
    case 'STALE_B':
      return { presenceUrl: ownPath(id) };
    case 'FOREIGN_A':
      return { presenceUrl: FOREIGN_URL };
    case 'DOWN_A':
      return {
        behaviour: {
          status: 503,
          body: JSON.stringify({ error: `${MARKER} ${tokenOf(id)} ${expectedUrl(id)} ${MASTER}` }),
        },
      };
    case 'CT_A':
      return { requireClientToken: CLIENT_TOKEN };
    case 'DISC_A':
      return { ...right, connected: false };
    case 'DUE_A':
      return { ...right, due: DUE_SOON_SECONDS };
    case 'OVERDUE_A':
      return { ...right, paymentStatus: 'OVERDUE' };
    case 'TRIAL_A':
      return { ...right, paymentStatus: 'Trial' };
    case 'IGNORE_A':
      return { ignorePuts: true };
    default:
      throw new Error(id);
  }
}
const FLEET_IDS = [
  'RIGHT_A',
  'RIGHT_B',
  'EMPTY_A',
  'STALE_A',
  'STALE_B',
  'FOREIGN_A',
  'DOWN_A',
  'CT_A',
  'DISC_A',
  'DUE_A',
  'OVERDUE_A',
  'TRIAL_A',
  'IGNORE_A',
];

const zapi = useZapiStandIn({ trickleEveryMs: 20 });

function seedFleet(ids: readonly string[] = FLEET_IDS): void {
  for (const id of ids) zapi.add(id, tokenOf(id), { due: FAR, otherUrls: { ...OTHER_URLS }, ...fleet(id) });
}

interface DepsOptions {
  readonly clientToken?: string;
  readonly tokens?: Map<string, string>;
  readonly now?: () => number;
  readonly attemptTimeoutMs?: number;
}

function makeDeps(options: DepsOptions = {}) {
  const tokens = options.tokens ?? new Map([...zapi.instances].map(([id, instance]) => [id, instance.token]));
  const deps = {
    listInstanceIds: vi.fn(async function* (_: Deadline) {
      const ids = [...tokens.keys()];
      for (let i = 0; i < ids.length; i += 50) yield ids.slice(i, i + 50);
    }),
    readTokens: vi.fn(async (ids: readonly string[], _: Deadline) => {
      const found = new Map<string, string>();
      for (const id of ids) {
        const token = tokens.get(id);
        if (token !== undefined) found.set(id, token);
      }
      return found;
    }),
    readToken: vi.fn(async (instanceId: string, _: Deadline) => tokens.get(instanceId)),
    readClientToken: vi.fn(async (_: Deadline) => options.clientToken),
    readMaster: vi.fn(async (_: Deadline, _options?: { readonly waitForNewMaster?: boolean }) => MASTER),
    zapi: vi.fn(
      (credentials: ZapiCredentials, limiter?: ZapiRateLimiter): ZapiPort =>
        new ZapiClient(credentials, {
          ...(limiter !== undefined && { limiter }),
          baseUrl: zapi.url,
          attemptTimeoutMs: options.attemptTimeoutMs ?? 1_000,
          maxAttempts: 2,
          backoffBaseMs: 1,
          random: () => 0,
        }),
    ),
    tokenParameterName: (instanceId: string) => `/zapi/${instanceId}/token`,
    now: options.now ?? (() => NOW),
  };
  return deps satisfies FleetDeps;
}

const health = (patch: Partial<InstanceOutcome['health'] & object> = {}) => ({
  connected: true,
  dueAt: FAR,
  expiresSoon: false,
  paymentStatus: 'PAID',
  paymentIssue: false,
  ...patch,
});

const byId = (report: FleetReport) => Object.fromEntries(report.outcomes.map((o) => [o.instanceId, o]));

const puts = () => zapi.requests.filter((r) => r.method === 'PUT');
const putCounts = () => {
  const counts: Record<string, number> = {};
  for (const r of puts()) counts[r.instanceId] = (counts[r.instanceId] ?? 0) + 1;
  return counts;
};

const SERVER_ERROR = {
  code: 'server-error',
  message:
    'Z-API answered 503 to GET me (server-error); Z-API is failing or busy; the next sweep tries again',
};
const NOT_CONFIRMED_NONE = {
  code: 'not-confirmed',
  message:
    'Z-API accepted the update but GET me shows none instead of this endpoint; check the instance in the Z-API panel',
};

/** Every secret of the fleet, in every form. */
function forbiddenTexts(ids: readonly string[] = FLEET_IDS): string[] {
  const secrets = [MASTER, CLIENT_TOKEN];
  for (const id of ids) secrets.push(tokenOf(id), deriveInstanceSecret(MASTER, id), expectedUrl(id));
  return [...secrets.flatMap(secretForms), 'FOREIGNKEY123', '/hooks/presence', MARKER];
}

function expectNoSecrets(text: string, ids?: readonly string[]): void {
  for (const secret of forbiddenTexts(ids)) expect(text).not.toContain(secret);
}

/** Runs the report's writers into strings. */
function reportText(report: FleetReport): string {
  const lines: string[] = [];
  const log: LogSink = {
    info: (r) => lines.push(JSON.stringify(r)),
    warn: (r) => lines.push(JSON.stringify(r)),
    error: (r) => lines.push(JSON.stringify(r)),
  };
  reportRun(report, { namespace: 'Test', durationMs: 1, log, write: (line) => lines.push(line) });
  lines.push(...failureList(report, 100));
  return lines.join('\n');
}

const reconcile: RunRequest = { mode: 'reconcile', trigger: 'sweep' };

describe('runFleet reconcile (repair) against the Z-API stand-in', () => {
  it('leaves right URLs alone, registers missing and stale ones, corrects drift and reports health', async () => {
    seedFleet();
    const deps = makeDeps({ clientToken: CLIENT_TOKEN });
    const report = await runFleet(reconcile, SETTINGS, deps, soon());

    expect(report.mode).toBe('reconcile');
    expect(report.trigger).toBe('sweep');
    expect(report.wholeFleet).toBe(true);
    expect(report.outcomes.map((o) => o.instanceId)).toEqual(FLEET_IDS);
    const unchanged = (id: string, h = health()) => ({
      instanceId: id,
      action: 'unchanged',
      found: 'right',
      registered: true,
      health: h,
    });
    expect(byId(report)).toStrictEqual({
      RIGHT_A: unchanged('RIGHT_A'),
      RIGHT_B: unchanged('RIGHT_B'),
      EMPTY_A: {
        instanceId: 'EMPTY_A',
        action: 'registered',
        found: 'missing',
        registered: true,
        health: health(),
      },
      STALE_A: {
        instanceId: 'STALE_A',
        action: 'registered',
        found: 'stale',
        registered: true,
        health: health(),
      },
      STALE_B: {
        instanceId: 'STALE_B',
        action: 'registered',
        found: 'stale',
        registered: true,
        health: health(),
      },
      FOREIGN_A: {
        instanceId: 'FOREIGN_A',
        action: 'corrected',
        found: 'foreign',
        foundHost: FOREIGN_HOST,
        registered: true,
        health: health(),
      },
      DOWN_A: { instanceId: 'DOWN_A', action: 'failed', registered: false, error: SERVER_ERROR },
      CT_A: {
        instanceId: 'CT_A',
        action: 'registered',
        found: 'missing',
        registered: true,
        health: health(),
      },
      DISC_A: unchanged('DISC_A', health({ connected: false })),
      DUE_A: unchanged('DUE_A', health({ dueAt: DUE_SOON_SECONDS * 1_000, expiresSoon: true })),
      OVERDUE_A: unchanged('OVERDUE_A', health({ paymentStatus: 'OVERDUE', paymentIssue: true })),
      TRIAL_A: unchanged('TRIAL_A', health({ paymentStatus: 'Trial' })),
      IGNORE_A: {
        instanceId: 'IGNORE_A',
        action: 'failed',
        found: 'missing',
        registered: false,
        health: health(),
        error: NOT_CONFIRMED_NONE,
      },
    });

    // What Z-API holds now.
    for (const id of ['RIGHT_A', 'RIGHT_B', 'EMPTY_A', 'STALE_A', 'STALE_B', 'FOREIGN_A', 'CT_A', 'DISC_A']) {
      expect(zapi.get(id).presenceUrl).toBe(expectedUrl(id));
    }
    expect(zapi.get('DOWN_A').presenceUrl).toBe('');
    expect(zapi.get('IGNORE_A').presenceUrl).toBe('');
    for (const id of FLEET_IDS) expect(zapi.get(id).otherUrls).toEqual(OTHER_URLS);

    // Only GET me and PUT update-webhook-chat-presence, always with the Client-Token, PUTs only where needed.
    for (const r of zapi.requests) {
      expect(['GET me', 'PUT update-webhook-chat-presence']).toContain(`${r.method} ${r.operation}`);
      expect(r.headers['client-token']).toBe(CLIENT_TOKEN);
    }
    expect(putCounts()).toEqual({ EMPTY_A: 1, STALE_A: 1, STALE_B: 1, FOREIGN_A: 1, CT_A: 1, IGNORE_A: 1 });
    for (const r of puts()) expect(JSON.parse(r.body)).toEqual({ value: expectedUrl(r.instanceId) });
    // A down instance is retried (maxAttempts 2), and stops nobody.
    expect(zapi.requests.filter((r) => r.instanceId === 'DOWN_A')).toHaveLength(2);

    expect(deps.readMaster).toHaveBeenCalledTimes(1);
    expect(deps.readClientToken).toHaveBeenCalledTimes(1);
    expect(deps.listInstanceIds).toHaveBeenCalledTimes(1);
    expect(deps.readToken).not.toHaveBeenCalled();
    expect(deps.zapi).toHaveBeenCalledTimes(FLEET_IDS.length);
    for (const [credentials] of deps.zapi.mock.calls) {
      expect(credentials).toEqual({
        instanceId: credentials.instanceId,
        token: tokenOf(credentials.instanceId),
        clientToken: CLIENT_TOKEN,
      });
    }

    expectNoSecrets(JSON.stringify(report));
    expectNoSecrets(reportText(report));
  });

  it('a second sweep finds every repaired instance right and PUTs nothing', async () => {
    seedFleet(['EMPTY_A', 'STALE_A', 'FOREIGN_A']);
    await runFleet(reconcile, SETTINGS, makeDeps(), soon());
    zapi.reset();
    const again = await runFleet(reconcile, SETTINGS, makeDeps(), soon());
    expect(again.outcomes.map((o) => o.action)).toEqual(['unchanged', 'unchanged', 'unchanged']);
    expect(puts()).toHaveLength(0);
  });

  it('without the Client-Token, the instance that requires it fails (client-token-required) and the others work', async () => {
    seedFleet();
    const report = await runFleet(reconcile, SETTINGS, makeDeps(), soon());
    expect(byId(report).CT_A).toStrictEqual({
      instanceId: 'CT_A',
      action: 'failed',
      registered: false,
      error: {
        code: 'client-token-required',
        message:
          'Z-API answered 400 to GET me (client-token-required); the account requires its security token: store it as an SSM SecureString and set clientTokenParameter',
      },
    });
    expect(byId(report).EMPTY_A?.action).toBe('registered');
    expect(byId(report).FOREIGN_A?.action).toBe('corrected');
    for (const r of zapi.requests) expect(r.headers['client-token']).toBeUndefined();
    expect(zapi.get('CT_A').presenceUrl).toBe('');
    expectNoSecrets(reportText(report));
  });

  it('a PUT Z-API does not apply over another URL is not-confirmed, naming only that URL host', async () => {
    zapi.add('IGNORE_F', tokenOf('IGNORE_F'), { presenceUrl: FOREIGN_URL, ignorePuts: true, due: FAR });
    const report = await runFleet(reconcile, SETTINGS, makeDeps(), soon());
    expect(report.outcomes).toStrictEqual([
      {
        instanceId: 'IGNORE_F',
        action: 'failed',
        found: 'foreign',
        foundHost: FOREIGN_HOST,
        registered: false,
        health: health(),
        error: {
          code: 'not-confirmed',
          message: `Z-API accepted the update but GET me shows a URL on ${FOREIGN_HOST} instead of this endpoint; check the instance in the Z-API panel`,
        },
      },
    ]);
  });

  it("this endpoint's URL for another instance is foreign, not stale", async () => {
    zapi.add('SWAP_A', tokenOf('SWAP_A'), { presenceUrl: expectedUrl('RIGHT_A') });
    const report = await runFleet(reconcile, SETTINGS, makeDeps(), soon());
    expect(report.outcomes[0]).toMatchObject({
      action: 'corrected',
      found: 'foreign',
      foundHost: 'abc123.execute-api.sa-east-1.amazonaws.com',
    });
    expect(zapi.get('SWAP_A').presenceUrl).toBe(expectedUrl('SWAP_A'));
  });
});

describe('runFleet and the master', () => {
  it('asks readMaster to wait for a new master only when the request says so', async () => {
    seedFleet(['RIGHT_A']);
    const deps = makeDeps();
    const deadline = soon();
    await runFleet(reconcile, SETTINGS, deps, deadline);
    await runFleet(
      { mode: 'reconcile', trigger: 'change', waitForNewMaster: true },
      SETTINGS,
      deps,
      deadline,
    );
    await runFleet(
      { mode: 'register', trigger: 'deploy', waitForNewMaster: false },
      SETTINGS,
      deps,
      deadline,
    );
    expect(deps.readMaster.mock.calls).toEqual([
      [deadline, { waitForNewMaster: false }],
      [deadline, { waitForNewMaster: true }],
      [deadline, { waitForNewMaster: false }],
    ]);
  });

  it('derives every URL from the master readMaster returns (e.g. the previous one during a rotation)', async () => {
    const other = 'Another_master-0123456789abcdefghijklm';
    seedFleet(['RIGHT_A', 'EMPTY_A']);
    const deps = makeDeps();
    deps.readMaster.mockResolvedValue(other);
    const report = await runFleet(reconcile, SETTINGS, deps, soon());
    expect(report.outcomes.map((o) => [o.instanceId, o.action, o.found])).toEqual([
      ['RIGHT_A', 'registered', 'stale'],
      ['EMPTY_A', 'registered', 'missing'],
    ]);
    for (const id of ['RIGHT_A', 'EMPTY_A']) {
      expect(zapi.get(id).presenceUrl).toBe(instanceWebhookUrl(BASE, id, other));
    }
    const text = reportText(report);
    const secrets = [other, deriveInstanceSecret(other, 'RIGHT_A'), deriveInstanceSecret(other, 'EMPTY_A')];
    for (const form of secrets.flatMap(secretForms)) expect(text).not.toContain(form);
  });
});

describe('runFleet reconcile (alert)', () => {
  it('reports a foreign URL (host only) without touching it; the rest is repaired as usual', async () => {
    seedFleet();
    const report = await runFleet(
      reconcile,
      { ...SETTINGS, driftPolicy: 'alert' },
      makeDeps({ clientToken: CLIENT_TOKEN }),
      soon(),
    );
    expect(byId(report).FOREIGN_A).toStrictEqual({
      instanceId: 'FOREIGN_A',
      action: 'drift-reported',
      found: 'foreign',
      foundHost: FOREIGN_HOST,
      registered: false,
      health: health(),
    });
    expect(zapi.get('FOREIGN_A').presenceUrl).toBe(FOREIGN_URL);
    expect(putCounts()).toEqual({ EMPTY_A: 1, STALE_A: 1, STALE_B: 1, CT_A: 1, IGNORE_A: 1 });
    expect(byId(report).STALE_A?.action).toBe('registered');
    expectNoSecrets(JSON.stringify(report));
    expectNoSecrets(reportText(report));
  });

  it('knows exactly the two drift policies', () => {
    expect(DRIFT_POLICIES).toEqual(['repair', 'alert']);
  });
});

describe('runFleet register (a deploy)', () => {
  it('PUTs every instance it names, right ones included, and confirms each', async () => {
    seedFleet();
    const report = await runFleet(
      { mode: 'register', trigger: 'deploy', required: FLEET_IDS },
      SETTINGS,
      makeDeps({ clientToken: CLIENT_TOKEN }),
      soon(),
    );
    const counts: Record<string, number> = {};
    for (const id of FLEET_IDS) if (id !== 'DOWN_A') counts[id] = 1;
    expect(putCounts()).toEqual(counts);
    const outcomes = byId(report);
    expect(outcomes.RIGHT_A).toStrictEqual({
      instanceId: 'RIGHT_A',
      action: 'unchanged',
      found: 'right',
      registered: true,
      health: health(),
    });
    expect(outcomes.EMPTY_A?.action).toBe('registered');
    expect(outcomes.STALE_B?.action).toBe('registered');
    expect(outcomes.FOREIGN_A?.action).toBe('corrected');
    expect(outcomes.DISC_A).toMatchObject({
      action: 'unchanged',
      registered: true,
      health: { connected: false },
    });
    expect(outcomes.IGNORE_A?.error?.code).toBe('not-confirmed');
    expect(outcomes.DOWN_A?.error?.code).toBe('server-error');
    // A right instance is asked twice (before and after its PUT).
    expect(zapi.requests.filter((r) => r.instanceId === 'RIGHT_A' && r.method === 'GET')).toHaveLength(2);
    expect(report.trigger).toBe('deploy');
    expect(report.mode).toBe('register');
  });

  it('reconciles the rest of the fleet (PUT only where the URL is wrong) after the instances it names', async () => {
    seedFleet(['RIGHT_A', 'RIGHT_B', 'EMPTY_A', 'FOREIGN_A']);
    const report = await runFleet(
      { mode: 'register', trigger: 'deploy', required: ['RIGHT_A'] },
      SETTINGS,
      makeDeps(),
      soon(),
    );
    expect(putCounts()).toEqual({ RIGHT_A: 1, EMPTY_A: 1, FOREIGN_A: 1 });
    expect(report.outcomes.map((o) => [o.instanceId, o.action])).toEqual([
      ['RIGHT_A', 'unchanged'],
      ['RIGHT_B', 'unchanged'],
      ['EMPTY_A', 'registered'],
      ['FOREIGN_A', 'corrected'],
    ]);
    // RIGHT_B, not named, is asked once and left alone.
    expect(zapi.requests.filter((r) => r.instanceId === 'RIGHT_B')).toHaveLength(1);
  });

  it('under the alert policy leaves a foreign URL alone even when registering', async () => {
    seedFleet(['FOREIGN_A', 'RIGHT_A']);
    const report = await runFleet(
      { mode: 'register', trigger: 'deploy', required: ['FOREIGN_A', 'RIGHT_A'] },
      { ...SETTINGS, driftPolicy: 'alert' },
      makeDeps(),
      soon(),
    );
    expect(report.outcomes.map((o) => o.action)).toEqual(['drift-reported', 'unchanged']);
    expect(putCounts()).toEqual({ RIGHT_A: 1 });
    expect(zapi.get('FOREIGN_A').presenceUrl).toBe(FOREIGN_URL);
  });
});

describe('runFleet release', () => {
  it("clears only this endpoint's URLs (PUT ''), leaves foreign and empty ones alone, never reads the master", async () => {
    seedFleet();
    const deps = makeDeps({ clientToken: CLIENT_TOKEN });
    deps.readMaster.mockRejectedValue(new Error('the master must not be read for a release'));
    const report = await runFleet({ mode: 'release', trigger: 'manual' }, SETTINGS, deps, soon());
    expect(deps.readMaster).not.toHaveBeenCalled();
    const released = (id: string) => ({
      instanceId: id,
      action: 'released',
      registered: false,
      found: 'stale',
    });
    const leftAlone = (id: string, found: string) => ({
      instanceId: id,
      action: 'left-alone',
      registered: false,
      found,
    });
    expect(byId(report)).toStrictEqual({
      RIGHT_A: released('RIGHT_A'),
      RIGHT_B: released('RIGHT_B'),
      EMPTY_A: leftAlone('EMPTY_A', 'missing'),
      STALE_A: released('STALE_A'),
      STALE_B: released('STALE_B'),
      FOREIGN_A: leftAlone('FOREIGN_A', 'foreign'),
      DOWN_A: { instanceId: 'DOWN_A', action: 'failed', registered: false, error: SERVER_ERROR },
      CT_A: leftAlone('CT_A', 'missing'),
      DISC_A: released('DISC_A'),
      DUE_A: released('DUE_A'),
      OVERDUE_A: released('OVERDUE_A'),
      TRIAL_A: released('TRIAL_A'),
      IGNORE_A: leftAlone('IGNORE_A', 'missing'),
    });
    for (const r of puts()) expect(JSON.parse(r.body)).toEqual({ value: '' });
    expect(Object.keys(putCounts()).sort()).toEqual(
      ['DISC_A', 'DUE_A', 'OVERDUE_A', 'RIGHT_A', 'RIGHT_B', 'STALE_A', 'STALE_B', 'TRIAL_A'].sort(),
    );
    expect(zapi.get('RIGHT_A').presenceUrl).toBe('');
    expect(zapi.get('STALE_A').presenceUrl).toBe('');
    expect(zapi.get('FOREIGN_A').presenceUrl).toBe(FOREIGN_URL);
    for (const id of FLEET_IDS) expect(zapi.get(id).otherUrls).toEqual(OTHER_URLS);
    expectNoSecrets(reportText(report));
  });

  it("releases listed instances only, and leaves this endpoint's URL for another instance alone", async () => {
    seedFleet(['RIGHT_A', 'RIGHT_B', 'FOREIGN_A']);
    zapi.add('SWAP_A', tokenOf('SWAP_A'), { presenceUrl: expectedUrl('RIGHT_A') });
    const deps = makeDeps();
    const report = await runFleet(
      { mode: 'release', trigger: 'manual', instanceIds: ['RIGHT_A', 'FOREIGN_A', 'SWAP_A'] },
      SETTINGS,
      deps,
      soon(),
    );
    expect(deps.listInstanceIds).not.toHaveBeenCalled();
    expect(report.wholeFleet).toBe(false);
    expect(report.outcomes.map((o) => [o.instanceId, o.action, o.found])).toEqual([
      ['RIGHT_A', 'released', 'stale'],
      ['FOREIGN_A', 'left-alone', 'foreign'],
      ['SWAP_A', 'left-alone', 'foreign'],
    ]);
    expect(zapi.get('RIGHT_B').presenceUrl).toBe(expectedUrl('RIGHT_B'));
    expect(zapi.get('SWAP_A').presenceUrl).toBe(expectedUrl('RIGHT_A'));
  });
});

describe('runFleet instance lists, required instances and token reads', () => {
  it('runs listed instances only (each id once), reading their tokens one by one', async () => {
    seedFleet();
    const deps = makeDeps();
    const report = await runFleet(
      { mode: 'reconcile', trigger: 'manual', instanceIds: ['EMPTY_A', 'RIGHT_A', 'EMPTY_A'] },
      SETTINGS,
      deps,
      soon(),
    );
    expect(deps.listInstanceIds).not.toHaveBeenCalled();
    expect(deps.readToken.mock.calls.map(([id]) => id)).toEqual(['EMPTY_A', 'RIGHT_A']);
    expect(report.wholeFleet).toBe(false);
    expect(report.trigger).toBe('manual');
    expect(report.outcomes.map((o) => [o.instanceId, o.action])).toEqual([
      ['EMPTY_A', 'registered'],
      ['RIGHT_A', 'unchanged'],
    ]);
    expect(new Set(zapi.requests.map((r) => r.instanceId))).toEqual(new Set(['EMPTY_A', 'RIGHT_A']));
  });

  it('works on the instances a deploy names first, whatever the listing order: a slow fleet never leaves them unreached', async () => {
    seedFleet(['EMPTY_A', 'STALE_A', 'RIGHT_A', 'RIGHT_B']);
    const deps = makeDeps();
    const order: string[] = [];
    const zapiOf = deps.zapi.getMockImplementation() as (c: ZapiCredentials) => ZapiPort;
    deps.zapi.mockImplementation((credentials) => {
      order.push(credentials.instanceId);
      return zapiOf(credentials);
    });
    const report = await runFleet(
      { mode: 'register', trigger: 'deploy', required: ['RIGHT_B', 'STALE_A'] },
      { ...SETTINGS, concurrency: 1 },
      deps,
      soon(),
    );
    expect(order).toEqual(['RIGHT_B', 'STALE_A', 'EMPTY_A', 'RIGHT_A']);
    expect(report.outcomes.every((o) => o.registered)).toBe(true);
    // Z-API slow, time for about one instance: the named one is the one done.
    zapi.latencyMs = 300;
    const late = await runFleet(
      { mode: 'reconcile', trigger: 'deploy', required: ['RIGHT_A'] },
      { ...SETTINGS, concurrency: 1 },
      makeDeps(),
      soon(500),
    );
    expect(byId(late).RIGHT_A).toMatchObject({ action: 'unchanged', registered: true });
    expect(late.outcomes.filter((o) => o.registered).map((o) => o.instanceId)).toEqual(['RIGHT_A']);
  });

  it('reads each named instance’s token in its own task: one read that hangs until the deadline fails that instance alone', async () => {
    seedFleet(['EMPTY_A', 'STALE_A', 'RIGHT_A']);
    const deps = makeDeps();
    const readToken = deps.readToken.getMockImplementation() as FleetDeps['readToken'];
    deps.readToken.mockImplementation((instanceId, deadline) =>
      instanceId === 'EMPTY_A'
        ? deadline.run('SSM GetParameter', () => new Promise<never>(() => {}))
        : readToken(instanceId, deadline),
    );
    const report = await runFleet(
      { mode: 'reconcile', trigger: 'manual', instanceIds: ['EMPTY_A', 'STALE_A', 'RIGHT_A'] },
      SETTINGS,
      deps,
      soon(1_500),
    );
    expect(byId(report).EMPTY_A).toMatchObject({ action: 'failed', registered: false });
    expect(byId(report).STALE_A).toMatchObject({ action: 'registered', registered: true });
    expect(byId(report).RIGHT_A).toMatchObject({ action: 'unchanged', registered: true });
  });

  it('reports a required instance missing from SSM as failed (no-token) with the command that creates it', async () => {
    seedFleet(['RIGHT_A', 'EMPTY_A']);
    const report = await runFleet(
      { mode: 'register', trigger: 'deploy', required: ['RIGHT_A', 'GONE_A'] },
      SETTINGS,
      makeDeps(),
      soon(),
    );
    expect(report.outcomes.map((o) => o.instanceId)).toEqual(['RIGHT_A', 'GONE_A', 'EMPTY_A']);
    expect(byId(report).GONE_A).toStrictEqual({
      instanceId: 'GONE_A',
      action: 'failed',
      registered: false,
      error: {
        code: 'no-token',
        message:
          'instance GONE_A has no token parameter; create it: aws ssm put-parameter --type SecureString --name /zapi/GONE_A/token --value INSTANCE_TOKEN',
      },
    });
    expect(zapi.requests.some((r) => r.instanceId === 'GONE_A')).toBe(false);
  });

  it('a required instance listed twice is reported once', async () => {
    // The deploy reads RequiredInstanceIds from a comma-separated property: "A,A" must not count A twice.
    seedFleet(['RIGHT_A']);
    const report = await runFleet(
      { mode: 'register', trigger: 'deploy', required: ['GONE_A', 'GONE_A', 'RIGHT_A', 'RIGHT_A'] },
      SETTINGS,
      makeDeps(),
      soon(),
    );
    expect(report.outcomes.map((o) => o.instanceId)).toEqual(['GONE_A', 'RIGHT_A']);
    // No token: Z-API was never asked, so it is a failure and not a confirmed unregistered instance.
    expect(countOutcomes(report.outcomes)).toMatchObject({ fleetSize: 2, failed: 1, unregistered: 0 });
  });

  it('a listed instance without a token is failed (no-token) once, even when also required', async () => {
    seedFleet(['RIGHT_A']);
    const report = await runFleet(
      { mode: 'reconcile', trigger: 'manual', instanceIds: ['GONE_B', 'RIGHT_A'], required: ['GONE_B'] },
      SETTINGS,
      makeDeps(),
      soon(),
    );
    expect(report.outcomes.map((o) => [o.instanceId, o.action, o.error?.code])).toEqual([
      ['GONE_B', 'failed', 'no-token'],
      ['RIGHT_A', 'unchanged', undefined],
    ]);
    expect(report.outcomes[0]?.error?.message).toContain('--name /zapi/GONE_B/token --value INSTANCE_TOKEN');
  });

  it('a token read that throws fails that instance only, with a safe message', async () => {
    seedFleet(['EMPTY_A']);
    const deps = makeDeps({ clientToken: CLIENT_TOKEN });
    deps.readToken.mockImplementation(async (instanceId: string) => {
      if (instanceId === 'BROKEN_A') {
        throw new ParameterError(
          `SSM parameter /zapi/BROKEN_A/token cannot be read (AccessDeniedException) ${MASTER} ${CLIENT_TOKEN}`,
          'denied',
          '/zapi/BROKEN_A/token',
        );
      }
      if (instanceId === 'WEIRD_A') throw new RangeError(`${MASTER} ${CLIENT_TOKEN}`);
      if (instanceId === 'STRING_A') throw `${MASTER}`;
      return tokenOf(instanceId);
    });
    const report = await runFleet(
      { mode: 'reconcile', trigger: 'manual', instanceIds: ['BROKEN_A', 'WEIRD_A', 'STRING_A', 'EMPTY_A'] },
      SETTINGS,
      deps,
      soon(),
    );
    expect(report.outcomes).toStrictEqual([
      {
        instanceId: 'BROKEN_A',
        action: 'failed',
        registered: false,
        error: {
          code: 'ssm-denied',
          message: 'SSM parameter /zapi/BROKEN_A/token cannot be read (AccessDeniedException) *** ***',
        },
      },
      {
        instanceId: 'WEIRD_A',
        action: 'failed',
        registered: false,
        error: { code: 'internal', message: 'unexpected RangeError' },
      },
      {
        instanceId: 'STRING_A',
        action: 'failed',
        registered: false,
        error: { code: 'internal', message: 'unexpected error' },
      },
      { instanceId: 'EMPTY_A', action: 'registered', found: 'missing', registered: true, health: health() },
    ]);
  });

  it('fails the whole run when the master or Client-Token cannot be read', async () => {
    const problem = new ParameterError(
      'SSM parameter /zapi could not be read (Throttling)',
      'unavailable',
      '/zapi',
    );
    const master = makeDeps();
    master.readMaster.mockRejectedValue(problem);
    await expect(runFleet(reconcile, SETTINGS, master, soon())).rejects.toBe(problem);
    const client = makeDeps();
    client.readClientToken.mockRejectedValue(problem);
    await expect(runFleet(reconcile, SETTINGS, client, soon())).rejects.toBe(problem);
    expect(zapi.requests).toHaveLength(0);
  });
});

describe('runFleet concurrency and the deadline', () => {
  it('works on at most `concurrency` instances at once, and on more than one', async () => {
    const ids = Array.from({ length: 20 }, (_, i) => `PAR_${i}`);
    for (const id of ids) zapi.add(id, tokenOf(id));
    zapi.latencyMs = 15;
    const report = await runFleet(reconcile, { ...SETTINGS, concurrency: 4 }, makeDeps(), soon());
    expect(report.outcomes.every((o) => o.action === 'registered')).toBe(true);
    expect(zapi.maxInFlight).toBeLessThanOrEqual(4);
    expect(zapi.maxInFlight).toBeGreaterThan(1);
  });

  it('with concurrency 1, one request at a time', async () => {
    for (const id of ['ONE_A', 'ONE_B', 'ONE_C']) zapi.add(id, tokenOf(id));
    zapi.latencyMs = 10;
    await runFleet(reconcile, { ...SETTINGS, concurrency: 1 }, makeDeps(), soon());
    expect(zapi.maxInFlight).toBe(1);
  });

  it('reads listed tokens with the same bounded concurrency', async () => {
    const ids = Array.from({ length: 12 }, (_, i) => `TOK_${i}`);
    const deps = makeDeps({ tokens: new Map() });
    let inFlight = 0;
    let most = 0;
    deps.readToken.mockImplementation(async () => {
      inFlight++;
      most = Math.max(most, inFlight);
      await new Promise((resolve) => setTimeout(resolve, 5));
      inFlight--;
      return undefined;
    });
    const report = await runFleet(
      { mode: 'reconcile', trigger: 'manual', instanceIds: ids },
      { ...SETTINGS, concurrency: 3 },
      deps,
      soon(),
    );
    expect(report.outcomes.map((o) => o.error?.code)).toEqual(ids.map(() => 'no-token'));
    expect(most).toBeLessThanOrEqual(3);
    expect(most).toBeGreaterThan(1);
  });

  it('reports instances not started before the deadline as notChecked (out-of-time), never as failed', async () => {
    const ids = ['P0', 'P1', 'P2', 'P3', 'P4'];
    for (const id of ids) zapi.add(id, tokenOf(id), { presenceUrl: expectedUrl(id) });
    let t = 0;
    const deadline = deadlineAt(10_000, () => t);
    const deps = makeDeps();
    deps.zapi.mockImplementation((credentials: ZapiCredentials) => {
      const real = new ZapiClient(credentials, { baseUrl: zapi.url, maxAttempts: 1 });
      return {
        me: async (d: Deadline) => {
          const state = await real.me(d);
          t += 2_500; // each instance takes a quarter of the time
          return state;
        },
        updateChatPresenceWebhook: (url: string, d: Deadline) => real.updateChatPresenceWebhook(url, d),
      };
    });
    const report = await runFleet(reconcile, { ...SETTINGS, concurrency: 1 }, deps, deadline);
    expect(report.outcomes.map((o) => o.action)).toEqual([
      'unchanged',
      'unchanged',
      'unchanged',
      'unchanged',
      'notChecked',
    ]);
    expect(report.outcomes[4]).toStrictEqual({
      instanceId: 'P4',
      action: 'notChecked',
      registered: false,
      error: {
        code: 'out-of-time',
        message:
          "not checked: Z-API could not be asked before the run's deadline (its rate limit or the fleet's size); the next run checks it",
      },
    });
    expect(countOutcomes(report.outcomes)).toMatchObject({ notChecked: 1, unregistered: 0, failed: 0 });
    expect(zapi.requests.some((r) => r.instanceId === 'P4')).toBe(false);
    expect(deps.zapi).toHaveBeenCalledTimes(4);
  });

  it('an instance that hangs or trickles past the deadline is notChecked, the others finish, and the run ends by the deadline', async () => {
    seedFleet(['RIGHT_A', 'EMPTY_A', 'STALE_A']);
    zapi.add('HANG_A', tokenOf('HANG_A'), { behaviour: 'hang' });
    zapi.add('TRICKLE_A', tokenOf('TRICKLE_A'), { behaviour: 'trickle' });
    const deadline = soon(1_000);
    const report = await runFleet(reconcile, SETTINGS, makeDeps({ attemptTimeoutMs: 60_000 }), deadline);
    expect(Date.now()).toBeLessThan(deadline.at + 500);
    expect(report.outcomes.map((o) => [o.instanceId, o.action, o.error?.code])).toEqual([
      ['RIGHT_A', 'unchanged', undefined],
      ['EMPTY_A', 'registered', undefined],
      ['STALE_A', 'registered', undefined],
      ['HANG_A', 'notChecked', 'out-of-time'],
      ['TRICKLE_A', 'notChecked', 'out-of-time'],
    ]);
    expect(countOutcomes(report.outcomes)).toMatchObject({ unregistered: 0, notChecked: 2 });
  });

  it('a Z-API stand-in that hangs within the deadline fails that instance with timeout (a fact about Z-API, not unregistered)', async () => {
    seedFleet(['RIGHT_A']);
    zapi.add('HANG_A', tokenOf('HANG_A'), { behaviour: 'hang' });
    const report = await runFleet(reconcile, SETTINGS, makeDeps({ attemptTimeoutMs: 200 }), soon(10_000));
    expect(report.outcomes.map((o) => [o.instanceId, o.action, o.error?.code])).toEqual([
      ['RIGHT_A', 'unchanged', undefined],
      ['HANG_A', 'failed', 'timeout'],
    ]);
    expect(countOutcomes(report.outcomes)).toMatchObject({ failed: 1, unregistered: 0, notChecked: 0 });
  });
});

describe('runFleet with stub Z-API ports', () => {
  const state = (patch: Partial<InstanceState> = {}): InstanceState => ({
    presenceChatCallbackUrl: undefined,
    connected: true,
    dueAt: undefined,
    paymentStatus: undefined,
    ...patch,
  });

  function stubDeps(port: (id: string) => ZapiPort, options: DepsOptions = {}) {
    const deps = makeDeps({ tokens: new Map([['STUB_A', tokenOf('STUB_A')]]), ...options });
    deps.zapi.mockImplementation((c: ZapiCredentials) => port(c.instanceId));
    return deps;
  }

  it('reports the health seen after the PUT', async () => {
    const answers = [
      state({ connected: true }),
      state({ presenceChatCallbackUrl: expectedUrl('STUB_A'), connected: false }),
    ];
    const updates: string[] = [];
    const deps = stubDeps(() => ({
      me: async () => answers.shift() as InstanceState,
      updateChatPresenceWebhook: async (url) => void updates.push(url),
    }));
    const report = await runFleet(reconcile, SETTINGS, deps, soon());
    expect(updates).toEqual([expectedUrl('STUB_A')]);
    expect(report.outcomes[0]).toStrictEqual({
      instanceId: 'STUB_A',
      action: 'registered',
      found: 'missing',
      registered: true,
      health: {
        connected: false,
        dueAt: undefined,
        expiresSoon: false,
        paymentStatus: undefined,
        paymentIssue: false,
      },
    });
  });

  it.each([
    ['due one ms inside the warning', 1_000_999, true],
    ['due exactly at the warning', 1_001_000, false],
    ['already expired', 999_000, true],
    ['no due', undefined, false],
  ])('expiresSoon when %s', async (_, dueAt, expiresSoon) => {
    const deps = stubDeps(
      () => ({
        me: async () => state({ presenceChatCallbackUrl: expectedUrl('STUB_A'), dueAt }),
        updateChatPresenceWebhook: async () => {},
      }),
      { now: () => 1_000_000 },
    );
    const report = await runFleet(reconcile, { ...SETTINGS, dueWarningMs: 1_000 }, deps, soon());
    expect(report.outcomes[0]?.health?.expiresSoon).toBe(expiresSoon);
    expect(report.outcomes[0]?.health?.dueAt).toBe(dueAt);
  });

  it('uses Date.now when deps have no clock', async () => {
    const dueAt = Date.now() + 60_000;
    const deps = stubDeps(() => ({
      me: async () => state({ presenceChatCallbackUrl: expectedUrl('STUB_A'), dueAt }),
      updateChatPresenceWebhook: async () => {},
    }));
    const { now: _now, ...withoutClock } = deps;
    const near = await runFleet(reconcile, { ...SETTINGS, dueWarningMs: 3_600_000 }, withoutClock, soon());
    expect(near.outcomes[0]?.health?.expiresSoon).toBe(true);
    const far = await runFleet(reconcile, { ...SETTINGS, dueWarningMs: 1_000 }, withoutClock, soon());
    expect(far.outcomes[0]?.health?.expiresSoon).toBe(false);
  });

  it.each([
    ['PAID', ['PAID'], false],
    ['paid', ['PAID'], false],
    ['PAID', ['paid'], false],
    ['OVERDUE', ['PAID', 'TRIAL'], true],
    ['PAID', [], true],
    [undefined, [], false],
  ] as const)('paymentStatus %s against %j: paymentIssue %s', async (paymentStatus, allowed, issue) => {
    const deps = stubDeps(() => ({
      me: async () => state({ presenceChatCallbackUrl: expectedUrl('STUB_A'), paymentStatus }),
      updateChatPresenceWebhook: async () => {},
    }));
    const report = await runFleet(reconcile, { ...SETTINGS, currentPaymentStatuses: allowed }, deps, soon());
    expect(report.outcomes[0]?.health).toMatchObject({ paymentStatus, paymentIssue: issue });
  });

  it.each([
    [
      'a ZapiError (its message redacted of the master, the Client-Token and the instance token)',
      () => new ZapiError(`x ${MASTER} ${CLIENT_TOKEN} ${tokenOf('STUB_A')} y`, 'network'),
      { code: 'network', message: 'x *** *** *** y' },
    ],
    [
      'a ParameterError',
      () =>
        new ParameterError(`SSM parameter /p could not be read in time (5 ms) ${MASTER}`, 'timeout', '/p'),
      { code: 'ssm-timeout', message: 'SSM parameter /p could not be read in time (5 ms) ***' },
    ],
    [
      'a TypeError',
      () => new TypeError(`${tokenOf('STUB_A')}`),
      { code: 'internal', message: 'unexpected TypeError' },
    ],
    [
      'something not an Error',
      () => ({ token: tokenOf('STUB_A') }),
      { code: 'internal', message: 'unexpected error' },
    ],
  ])('an instance that throws %s fails safely', async (_, thrown, error) => {
    for (const step of ['me', 'update'] as const) {
      const deps = stubDeps(
        () => ({
          me: async () => {
            if (step === 'me') throw thrown();
            return state();
          },
          updateChatPresenceWebhook: async () => {
            throw thrown();
          },
        }),
        { clientToken: CLIENT_TOKEN },
      );
      const report = await runFleet(reconcile, SETTINGS, deps, soon());
      if (step === 'me') {
        expect(report.outcomes).toStrictEqual([
          { instanceId: 'STUB_A', action: 'failed', registered: false, error },
        ]);
      } else {
        // GET me answered: what Z-API calls is known (nothing), so the failure says so.
        expect(report.outcomes).toMatchObject([
          { instanceId: 'STUB_A', action: 'failed', registered: false, found: 'missing', error },
        ]);
        expect(countOutcomes(report.outcomes).unregistered).toBe(1);
      }
    }
  });

  it('gives a port no clientToken when none is configured', async () => {
    const deps = stubDeps(() => ({
      me: async () => state({ presenceChatCallbackUrl: expectedUrl('STUB_A') }),
      updateChatPresenceWebhook: async () => {},
    }));
    await runFleet(reconcile, SETTINGS, deps, soon());
    expect(deps.zapi.mock.calls[0]?.[0]).toStrictEqual({ instanceId: 'STUB_A', token: tokenOf('STUB_A') });
  });

  it('a release that fails is reported as failed', async () => {
    const deps = stubDeps(() => ({
      me: async () => state({ presenceChatCallbackUrl: ownPath('STUB_A') }),
      updateChatPresenceWebhook: async () => {
        throw new ZapiError(
          'Z-API answered 500 to PUT update-webhook-chat-presence (server-error)',
          'server-error',
          500,
        );
      },
    }));
    const report = await runFleet({ mode: 'release', trigger: 'manual' }, SETTINGS, deps, soon());
    expect(report.outcomes[0]).toMatchObject({ action: 'failed', error: { code: 'server-error' } });
  });
});

describe('classify and isOwnEndpoint', () => {
  const expected = expectedUrl('CL_A');
  const own = ownPath('CL_A');
  it.each([
    [undefined, 'missing'],
    ['', 'missing'],
    [expected, 'right'],
    [`${own}?secret=old`, 'stale'],
    [own, 'stale'],
    [`${own}#x`, 'stale'],
    [`${own}?secret=a#b`, 'stale'],
    [`${own}/`, 'foreign'],
    [`${own}x?secret=old`, 'foreign'],
    [own.replace('https://', 'http://'), 'foreign'],
    [ownPath('CL_B'), 'foreign'],
    [FOREIGN_URL, 'foreign'],
    [`${FOREIGN_URL}?x=${own}`, 'foreign'],
  ] as const)('%s is %s', (current, found) => {
    expect(classify(current, expected, own)).toBe(found);
  });

  it('isOwnEndpoint ignores only the query string and fragment', () => {
    expect(isOwnEndpoint(`${own}?a=1`, own)).toBe(true);
    expect(isOwnEndpoint(own, own)).toBe(true);
    expect(isOwnEndpoint(`${own}?`, own)).toBe(true);
    expect(isOwnEndpoint(`x${own}`, own)).toBe(false);
    expect(isOwnEndpoint('', own)).toBe(false);
    // Not URLs: never this endpoint.
    expect(isOwnEndpoint('?', '')).toBe(false);
  });
});

describe('report', () => {
  const H = (patch: Partial<InstanceOutcome['health'] & object> = {}) => ({
    connected: true,
    dueAt: 1,
    expiresSoon: false,
    paymentStatus: 'PAID',
    paymentIssue: false,
    ...patch,
  });
  const SAMPLE: InstanceOutcome[] = [
    { instanceId: 'U1', action: 'unchanged', found: 'right', registered: true, health: H() },
    {
      instanceId: 'U2',
      action: 'unchanged',
      found: 'right',
      registered: true,
      health: H({ connected: false }),
    },
    {
      instanceId: 'U3',
      action: 'unchanged',
      found: 'right',
      registered: true,
      health: H({ connected: undefined }),
    },
    {
      instanceId: 'R1',
      action: 'registered',
      found: 'missing',
      registered: true,
      health: H({ expiresSoon: true }),
    },
    { instanceId: 'R2', action: 'registered', found: 'stale', registered: true },
    {
      instanceId: 'C1',
      action: 'corrected',
      found: 'foreign',
      foundHost: 'h.example',
      registered: true,
      health: H({ paymentIssue: true, paymentStatus: 'OVERDUE' }),
    },
    {
      instanceId: 'D1',
      action: 'drift-reported',
      found: 'foreign',
      foundHost: 'd.example',
      registered: false,
      health: H(),
    },
    { instanceId: 'F1', action: 'failed', registered: false, error: { code: 'server-error', message: 'm1' } },
    {
      instanceId: 'F2',
      action: 'failed',
      found: 'missing',
      registered: false,
      health: H({ connected: false }),
      error: { code: 'not-confirmed', message: 'm2' },
    },
    {
      instanceId: 'S1',
      action: 'notChecked',
      registered: false,
      error: { code: 'out-of-time', message: 'm3' },
    },
    { instanceId: 'L1', action: 'left-alone', found: 'foreign', registered: false },
    { instanceId: 'X1', action: 'released', found: 'stale', registered: false },
  ];
  const REPORT: FleetReport = { mode: 'reconcile', trigger: 'sweep', wholeFleet: true, outcomes: SAMPLE };
  const COUNTS = {
    fleetSize: 12,
    healthy: 5,
    registered: 6,
    newlyRegistered: 2,
    corrected: 1,
    // Two failed outcomes, one of them Z-API's confirmed "calls elsewhere": that one is unregistered only.
    failed: 1,
    unregistered: 1,
    notChecked: 1,
    driftReported: 1,
    disconnected: 2,
    expiringSoon: 1,
    paymentIssues: 1,
    released: 1,
  };

  function capture() {
    const lines: Array<[string, Record<string, unknown>]> = [];
    const log: LogSink = {
      info: (r) => void lines.push(['info', r]),
      warn: (r) => void lines.push(['warn', r]),
      error: (r) => void lines.push(['error', r]),
    };
    return { lines, log };
  }

  it('counts: healthy = registered and not disconnected; unregistered = only what Z-API confirmed (not a failure before any answer, not notChecked, not drift)', () => {
    expect(countOutcomes(SAMPLE)).toStrictEqual(COUNTS);
    expect(countOutcomes([])).toStrictEqual(Object.fromEntries(Object.keys(COUNTS).map((k) => [k, 0])));
    // A release leaves instances unregistered on purpose: both of its failures are failures.
    expect(countOutcomes(SAMPLE, 'release')).toStrictEqual({ ...COUNTS, failed: 2, unregistered: 0 });
  });

  it('writes one line per instance needing attention, nothing for healthy unchanged or left-alone ones', () => {
    const { lines, log } = capture();
    logOutcomes(REPORT, log);
    const base = (id: string, action: string, extra: Record<string, unknown> = {}) => ({
      instanceId: id,
      trigger: 'sweep',
      action,
      ...extra,
    });
    const notConnected =
      'instance not connected to WhatsApp: no presence callback will arrive until its QR code is scanned again';
    expect(lines).toStrictEqual([
      ['error', { msg: notConnected, ...base('U2', 'unchanged', { found: 'right' }) }],
      ['info', { msg: 'webhook registered', ...base('R1', 'registered', { found: 'missing' }) }],
      [
        'warn',
        {
          msg: 'instance expires soon',
          ...base('R1', 'registered', { found: 'missing' }),
          due: '1970-01-01T00:00:00.001Z',
        },
      ],
      ['info', { msg: 'webhook registered', ...base('R2', 'registered', { found: 'stale' }) }],
      [
        'info',
        {
          msg: 'drift corrected: another URL had replaced this endpoint',
          ...base('C1', 'corrected', { found: 'foreign', foundHost: 'h.example' }),
        },
      ],
      [
        'warn',
        {
          msg: 'instance payment status is not current',
          ...base('C1', 'corrected', { found: 'foreign', foundHost: 'h.example' }),
          paymentStatus: 'OVERDUE',
        },
      ],
      [
        'warn',
        {
          msg: 'drift found: another URL has replaced this endpoint (driftPolicy alert: left as is)',
          ...base('D1', 'drift-reported', { found: 'foreign', foundHost: 'd.example' }),
        },
      ],
      [
        'error',
        {
          msg: 'instance could not be registered',
          ...base('F1', 'failed'),
          code: 'server-error',
          error: 'm1',
        },
      ],
      [
        'error',
        {
          msg: 'instance could not be registered',
          ...base('F2', 'failed', { found: 'missing' }),
          code: 'not-confirmed',
          error: 'm2',
        },
      ],
      ['error', { msg: notConnected, ...base('F2', 'failed', { found: 'missing' }) }],
      [
        'warn',
        {
          msg: "instance not checked: Z-API could not be asked before the run's deadline; the next run checks it",
          ...base('S1', 'notChecked'),
          code: 'out-of-time',
          error: 'm3',
        },
      ],
      ['info', { msg: 'webhook released', ...base('X1', 'released', { found: 'stale' }) }],
    ]);
  });

  it('writes nothing at all for a healthy fleet', () => {
    const { lines, log } = capture();
    logOutcomes(
      {
        mode: 'reconcile',
        trigger: 'sweep',
        wholeFleet: true,
        outcomes: [SAMPLE[0], SAMPLE[2]] as InstanceOutcome[],
      },
      log,
    );
    expect(lines).toEqual([]);
  });

  it('an expiring instance without a due date logs due undefined', () => {
    const { lines, log } = capture();
    logOutcomes(
      {
        mode: 'reconcile',
        trigger: 'change',
        wholeFleet: false,
        outcomes: [
          {
            instanceId: 'E1',
            action: 'unchanged',
            registered: true,
            health: H({ expiresSoon: true, dueAt: undefined }),
          },
        ],
      },
      log,
    );
    expect(lines).toStrictEqual([
      [
        'warn',
        {
          msg: 'instance expires soon',
          instanceId: 'E1',
          trigger: 'change',
          action: 'unchanged',
          due: undefined,
        },
      ],
    ]);
  });

  it('the EMF line: namespace, Trigger and Scope dimensions, every metric with its unit and value', () => {
    const line = emfSummary(REPORT, COUNTS, 'ZapiPresence', 1234.6, 1_700_000_000_000);
    expect(line.endsWith('\n')).toBe(true);
    expect(line.trimEnd()).not.toContain('\n');
    const parsed = JSON.parse(line);
    const M = FLEET_METRICS;
    const counted = [
      M.fleetSize,
      M.healthy,
      M.registered,
      M.newlyRegistered,
      M.corrected,
      M.failed,
      M.unregistered,
      M.notChecked,
      M.driftReported,
      M.disconnected,
      M.expiringSoon,
      M.paymentIssues,
      M.released,
    ];
    expect(parsed).toStrictEqual({
      _aws: {
        Timestamp: 1_700_000_000_000,
        CloudWatchMetrics: [
          {
            Namespace: 'ZapiPresence',
            Dimensions: [['Trigger', 'Scope']],
            Metrics: [
              ...counted.map((Name) => ({ Name, Unit: 'Count' })),
              { Name: 'RunDuration', Unit: 'Milliseconds' },
            ],
          },
        ],
      },
      msg: 'reconcile run',
      mode: 'reconcile',
      Trigger: 'sweep',
      Scope: 'fleet',
      FleetSize: 12,
      Healthy: 5,
      Registered: 6,
      NewlyRegistered: 2,
      Corrected: 1,
      Failed: 1,
      Unregistered: 1,
      NotChecked: 1,
      DriftReported: 1,
      Disconnected: 2,
      ExpiringSoon: 1,
      PaymentIssues: 1,
      Released: 1,
      RunDuration: 1235,
    });
    const listed = JSON.parse(
      emfSummary({ ...REPORT, wholeFleet: false, trigger: 'change', mode: 'release' }, COUNTS, 'N', 0, 1),
    );
    expect(listed).toMatchObject({ Scope: 'instances', Trigger: 'change', mode: 'release', RunDuration: 0 });
    expect(listed._aws.CloudWatchMetrics[0].Namespace).toBe('N');
  });

  it('reportRun writes the instance lines, then the EMF line, and returns the counts', () => {
    const order: string[] = [];
    const { lines, log } = capture();
    const sink: LogSink = {
      info: (r) => {
        order.push('log');
        log.info(r);
      },
      warn: (r) => {
        order.push('log');
        log.warn(r);
      },
      error: (r) => {
        order.push('log');
        log.error(r);
      },
    };
    const written: string[] = [];
    const counts = reportRun(REPORT, {
      namespace: 'NS',
      durationMs: 10,
      log: sink,
      write: (line) => {
        order.push('emf');
        written.push(line);
      },
      now: () => 42,
    });
    expect(counts).toStrictEqual(COUNTS);
    expect(lines).toHaveLength(12);
    expect(order.at(-1)).toBe('emf');
    expect(order.filter((o) => o === 'emf')).toHaveLength(1);
    expect(written).toEqual([emfSummary(REPORT, COUNTS, 'NS', 10, 42, false)]);
  });

  it('reportRun defaults to console, process.stdout and Date.now', () => {
    const info = vi.spyOn(console, 'info').mockImplementation(() => {});
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    const error = vi.spyOn(console, 'error').mockImplementation(() => {});
    const write = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    vi.spyOn(Date, 'now').mockReturnValue(777);
    reportRun(REPORT, { namespace: 'NS', durationMs: 1 });
    const emf = write.mock.calls.map(([chunk]) => String(chunk)).filter((c) => c.includes('"reconcile run"'));
    vi.mocked(Date.now).mockRestore();
    write.mockRestore();
    expect(info).toHaveBeenCalledTimes(4);
    expect(warn).toHaveBeenCalledTimes(4);
    expect(error).toHaveBeenCalledTimes(4);
    expect(emf).toEqual([emfSummary(REPORT, COUNTS, 'NS', 1, 777, false)]);
  });

  it('reportRun with detailed metrics writes every count as a metric', () => {
    const written: string[] = [];
    reportRun(REPORT, {
      namespace: 'NS',
      durationMs: 10,
      log: capture().log,
      write: (line) => void written.push(line),
      now: () => 42,
      detailed: true,
    });
    expect(written).toEqual([emfSummary(REPORT, COUNTS, 'NS', 10, 42, true)]);
    expect(JSON.parse(written[0] as string)._aws.CloudWatchMetrics[0].Metrics).toHaveLength(14);
  });

  it('without detailed metrics, extracts only the alarmed counts that are not zero (none for a healthy run), every count still in the line', () => {
    const M = FLEET_METRICS;
    const line = JSON.parse(emfSummary(REPORT, COUNTS, 'ZapiPresence', 5, 1, false));
    expect(line._aws.CloudWatchMetrics).toEqual([
      {
        Namespace: 'ZapiPresence',
        Dimensions: [['Trigger', 'Scope']],
        Metrics: [
          M.failed,
          M.unregistered,
          M.notChecked,
          M.driftReported,
          M.disconnected,
          M.expiringSoon,
          M.paymentIssues,
        ].map((Name) => ({ Name, Unit: 'Count' })),
      },
    ]);
    expect(line).toMatchObject({ FleetSize: 12, Healthy: 5, Registered: 6, RunDuration: 5 });
    // Nothing an alarm watches but Unregistered; then nothing at all.
    const quiet = {
      ...COUNTS,
      failed: 0,
      notChecked: 0,
      driftReported: 0,
      expiringSoon: 0,
      paymentIssues: 0,
      disconnected: 0,
    };
    const some = JSON.parse(emfSummary(REPORT, quiet, 'N', 5, 1, false));
    expect(some._aws.CloudWatchMetrics[0].Metrics).toEqual([{ Name: M.unregistered, Unit: 'Count' }]);
    const healthy = JSON.parse(emfSummary(REPORT, { ...quiet, unregistered: 0 }, 'N', 5, 1, false));
    expect(healthy).not.toHaveProperty('_aws');
    expect(healthy).toMatchObject({ msg: 'reconcile run', FleetSize: 12, Unregistered: 0 });
  });

  it('failureList: every outcome with an error, at most `limit` (10 by default), then "... and N more"', () => {
    const failures = (n: number): FleetReport => ({
      ...REPORT,
      outcomes: [
        SAMPLE[0] as InstanceOutcome,
        ...Array.from({ length: n }, (_, i) => ({
          instanceId: `F${i}`,
          action: 'failed' as const,
          registered: false,
          error: { code: 'x', message: `problem ${i}` },
        })),
      ],
    });
    expect(failureList(failures(0))).toEqual([]);
    expect(failureList(failures(10))).toHaveLength(10);
    expect(failureList(failures(10)).at(-1)).toBe('F9: problem 9');
    const eleven = failureList(failures(11));
    expect(eleven).toHaveLength(11);
    expect(eleven[0]).toBe('F0: problem 0');
    expect(eleven[10]).toBe('... and 1 more (see the log)');
    expect(failureList(failures(5), 3)).toEqual([
      'F0: problem 0',
      'F1: problem 1',
      'F2: problem 2',
      '... and 2 more (see the log)',
    ]);
    expect(failureList(failures(3), 3)).toEqual(['F0: problem 0', 'F1: problem 1', 'F2: problem 2']);
    expect(failureList(REPORT)).toEqual(['F1: m1', 'F2: m2', 'S1: m3']);
  });
});
