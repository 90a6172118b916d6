/**
 * The fleet run under adverse conditions, offline (Z-API stand-in on 127.0.0.1, real ZapiClient and rate
 * limiter): odd URL shapes Z-API echoes back, 429 storms with and without Retry-After (seconds and HTTP
 * date), a listing that fails halfway, duplicates, the pipeline (checks start while the listing goes on,
 * tokens read 10 at a time), and the canary never registered.
 */
import { describe, expect, it } from 'vitest';
import {
  type FleetDeps,
  type FleetReport,
  type FleetSettings,
  runFleet,
} from '../../../functions/fleet/reconcile.ts';
import { countOutcomes, type LogSink, reportRun } from '../../../functions/fleet/report.ts';
import { MAX_429_IN_A_ROW, ZapiClient, type ZapiRateLimiter } from '../../../functions/fleet/zapi.ts';
import { type Deadline, deadlineAt } from '../../../functions/shared/aws/deadline.ts';
import { ParameterError } from '../../../functions/shared/aws/ssm.ts';
import { CANARY_INSTANCE_ID } from '../../../functions/shared/contract/presence-contract.ts';
import { instanceWebhookPath, instanceWebhookUrl } from '../../../functions/shared/secrets/webhook-secret.ts';
import { useZapiStandIn } from '../../support/use-zapi-standin.ts';

const BASE = 'https://abc123.execute-api.sa-east-1.amazonaws.com';
const MASTER = 'Adverse_master-secret-0123456789abcdefgh';
const tokenOf = (id: string) => `tok${id}0a1b2c3d4e5f`;
const expectedUrl = (id: string) => instanceWebhookUrl(BASE, id, MASTER);
const soon = (ms = 20_000): Deadline => deadlineAt(Date.now() + ms);

const SETTINGS: FleetSettings = {
  webhookBaseUrl: BASE,
  driftPolicy: 'repair',
  concurrency: 8,
  dueWarningMs: 0,
  currentPaymentStatuses: ['PAID'],
  requestsPerSecond: 1_000,
};

const zapi = useZapiStandIn();

interface Options {
  /** Pages of ids the listing yields (default: every stand-in instance, 50 a page). */
  readonly pages?: (deadline: Deadline) => AsyncGenerator<string[]>;
  readonly onReadTokens?: (ids: readonly string[]) => void;
}

function deps(options: Options = {}): FleetDeps {
  return {
    listInstanceIds:
      options.pages ??
      async function* () {
        const ids = [...zapi.instances.keys()];
        for (let i = 0; i < ids.length; i += 50) yield ids.slice(i, i + 50);
      },
    readTokens: async (ids) => {
      options.onReadTokens?.(ids);
      return new Map(ids.filter((id) => zapi.instances.has(id)).map((id) => [id, tokenOf(id)] as const));
    },
    readToken: async (id) => (zapi.instances.has(id) ? tokenOf(id) : undefined),
    readClientToken: async () => undefined,
    readMaster: async () => MASTER,
    zapi: (credentials, limiter: ZapiRateLimiter) =>
      new ZapiClient(credentials, { baseUrl: zapi.url, limiter, attemptTimeoutMs: 2_000, maxAttempts: 2 }),
    tokenParameterName: (id) => `/zapi/${id}/token`,
  };
}

const actions = (report: FleetReport) =>
  Object.fromEntries(report.outcomes.map((o) => [o.instanceId, o.action]));
const puts = () => zapi.requests.filter((r) => r.method === 'PUT');
const reconcile = { mode: 'reconcile', trigger: 'sweep' } as const;

describe('odd URL shapes Z-API echoes back', () => {
  const SHAPES: Record<string, (url: string) => string> = {
    UPPERHOST: (url) =>
      url.replace(
        'https://abc123.execute-api.sa-east-1.amazonaws.com',
        'HTTPS://ABC123.EXECUTE-API.SA-EAST-1.AMAZONAWS.COM',
      ),
    PORT443: (url) => url.replace('.amazonaws.com/', '.amazonaws.com:443/'),
    ENCODED: (url) =>
      url.replace(
        /secret=(.*)$/,
        (_, secret: string) =>
          `secret=${[...secret].map((c, i) => (i % 2 ? `%${c.charCodeAt(0).toString(16)}` : c)).join('')}`,
      ),
    ENCODEDPATH: (url) => url.replace('/presence?', '/%70%72esence?'),
  };

  it('an equivalent URL is right: no PUT, counted registered, never unregistered or drift', async () => {
    for (const [id, shape] of Object.entries(SHAPES)) {
      zapi.add(id, tokenOf(id), { presenceUrl: expectedUrl(id), reportAs: shape });
    }
    for (const policy of ['repair', 'alert'] as const) {
      zapi.reset();
      const report = await runFleet(reconcile, { ...SETTINGS, driftPolicy: policy }, deps(), soon());
      expect(Object.values(actions(report))).toEqual(['unchanged', 'unchanged', 'unchanged', 'unchanged']);
      expect(puts()).toHaveLength(0);
      expect(countOutcomes(report.outcomes)).toMatchObject({
        registered: 4,
        unregistered: 0,
        driftReported: 0,
        failed: 0,
      });
    }
  });

  it('the confirming GET after a PUT compares the same way: an equivalent echo confirms the registration', async () => {
    for (const [id, shape] of Object.entries(SHAPES)) {
      zapi.add(id, tokenOf(id), {
        presenceUrl: `${instanceWebhookPath(BASE, id)}?secret=old`,
        reportAs: shape,
      });
    }
    const report = await runFleet(reconcile, SETTINGS, deps(), soon());
    expect(Object.values(actions(report))).toEqual(['registered', 'registered', 'registered', 'registered']);
    expect(report.outcomes.every((o) => o.found === 'stale' && o.registered)).toBe(true);
    expect(puts()).toHaveLength(4);
  });

  it('a trailing slash or another path is not ours: re-registered (repair) or reported (alert)', async () => {
    zapi.add('SLASH', tokenOf('SLASH'), {
      presenceUrl: expectedUrl('SLASH').replace('/presence?', '/presence/?'),
    });
    zapi.add('ROUTE', tokenOf('ROUTE'), {
      presenceUrl: expectedUrl('ROUTE').replace('/presence?', '/status?'),
    });
    const alert = await runFleet(reconcile, { ...SETTINGS, driftPolicy: 'alert' }, deps(), soon());
    expect(actions(alert)).toEqual({ SLASH: 'drift-reported', ROUTE: 'drift-reported' });
    const repair = await runFleet(reconcile, SETTINGS, deps(), soon());
    expect(actions(repair)).toEqual({ SLASH: 'corrected', ROUTE: 'corrected' });
    expect(zapi.get('SLASH').presenceUrl).toBe(expectedUrl('SLASH'));
  });

  it.each([
    ['a trailing no-break space (U+00A0)', (url: string) => `${url}\u00a0`],
    ['a leading byte-order mark (U+FEFF)', (url: string) => `\ufeff${url}`],
    ['a leading ideographic space (U+3000)', (url: string) => `\u3000${url}`],
    ['a trailing line separator (U+2028)', (url: string) => `${url}\u2028`],
    ['an empty authority (https:///host/...)', (url: string) => url.replace('https://', 'https:///')],
  ])(
    'an instance whose URL Z-API holds with %s is not right: it is re-registered (a WHATWG client would not call our URL, or another client might not)',
    async (_, shape) => {
      zapi.add('ODD', tokenOf('ODD'), { presenceUrl: shape(expectedUrl('ODD')) });
      const report = await runFleet(reconcile, SETTINGS, deps(), soon());
      expect(report.outcomes[0]).toMatchObject({ action: 'registered', found: 'stale', registered: true });
      expect(puts()).toHaveLength(1);
      expect(zapi.get('ODD').presenceUrl).toBe(expectedUrl('ODD'));
    },
  );

  it('a release clears an equivalent shape of this endpoint, and leaves a trailing-slash URL alone', async () => {
    zapi.add('UPPER', tokenOf('UPPER'), { presenceUrl: expectedUrl('UPPER'), reportAs: SHAPES.UPPERHOST });
    zapi.add('SLASH', tokenOf('SLASH'), { presenceUrl: `${instanceWebhookPath(BASE, 'SLASH')}/` });
    const report = await runFleet({ mode: 'release', trigger: 'manual' }, SETTINGS, deps(), soon());
    expect(actions(report)).toEqual({ UPPER: 'released', SLASH: 'left-alone' });
    expect(zapi.get('UPPER').presenceUrl).toBe('');
    expect(zapi.get('SLASH').presenceUrl).not.toBe('');
  });
});

describe('429 storms (a Z-API stand-in limited to a request rate)', () => {
  const FLEET = Array.from({ length: 60 }, (_, i) => `RL${String(i).padStart(3, '0')}`);

  it.each([
    ['Retry-After in seconds', 'seconds'],
    ['Retry-After as an HTTP date', 'date'],
    ['no Retry-After', 'none'],
  ] as const)(
    'with %s: every instance checked, none failed or unregistered, the run slowed down',
    async (_, retryAfter) => {
      for (const id of FLEET) zapi.add(id, tokenOf(id), { presenceUrl: expectedUrl(id) });
      zapi.latencyMs = 5;
      zapi.rateLimit = { perSecond: 20, retryAfter };
      // Starting well above the limit, so the storm comes at once.
      const report = await runFleet(reconcile, { ...SETTINGS, requestsPerSecond: 100 }, deps(), soon(30_000));
      const counts = countOutcomes(report.outcomes);
      expect(counts).toMatchObject({
        fleetSize: 60,
        registered: 60,
        failed: 0,
        unregistered: 0,
        notChecked: 0,
      });
      expect(zapi.rateLimited).toBeGreaterThan(0);
      expect(report.rate?.rateLimited).toBe(zapi.rateLimited);
      expect(report.rate?.lowestRate).toBeLessThan(100);
      // The run backed off: far fewer 429s than requests.
      expect(zapi.rateLimited).toBeLessThan(zapi.requests.length / 2);
    },
    40_000,
  );

  it.each([
    ['without Retry-After', undefined],
    ['with Retry-After: 1', { 'retry-after': '1' }],
  ] as const)(
    'one instance Z-API always answers 429 (%s) while it answers the others fails alone (rate-limited): it does not hold the fleet back',
    async (_name, headers) => {
      // Listed first, so that Z-API answers the others between its 429s (refused alone, not a storm).
      zapi.add('REFUSED', tokenOf('REFUSED'), {
        behaviour: {
          status: 429,
          body: '{"error":"Too many requests"}',
          ...(headers !== undefined && { headers }),
        },
      });
      for (const id of FLEET.slice(0, 40)) zapi.add(id, tokenOf(id), { presenceUrl: expectedUrl(id) });
      const started = Date.now();
      const report = await runFleet(reconcile, { ...SETTINGS, requestsPerSecond: 10 }, deps(), soon(25_000));
      const counts = countOutcomes(report.outcomes);
      expect(counts).toMatchObject({
        fleetSize: 41,
        registered: 40,
        notChecked: 0,
        unregistered: 0,
        failed: 1,
      });
      const refused = report.outcomes.find((o) => o.instanceId === 'REFUSED');
      expect(refused).toMatchObject({ action: 'failed', error: { code: 'rate-limited' } });
      // Five 429s, then it gave up: the backoff of 429s in a row (1, 2, 4, 8 s at most), not the deadline.
      expect(zapi.requests.filter((r) => r.instanceId === 'REFUSED')).toHaveLength(5);
      expect(Date.now() - started).toBeLessThan(20_000);
    },
    40_000,
  );

  it('one instance Z-API always answers 429 with Retry-After: 30 waits alone: the run goes on at its rate, every other instance is registered in time', async () => {
    zapi.add('REFUSED', tokenOf('REFUSED'), {
      behaviour: { status: 429, body: '{}', headers: { 'retry-after': '30' } },
    });
    for (const id of FLEET) zapi.add(id, tokenOf(id), { presenceUrl: expectedUrl(id) });
    const started = Date.now();
    const report = await runFleet(
      reconcile,
      { ...SETTINGS, concurrency: 16, requestsPerSecond: 20 },
      deps(),
      soon(15_000),
    );
    expect(countOutcomes(report.outcomes)).toMatchObject({
      fleetSize: 61,
      registered: 60,
      unregistered: 0,
      failed: 0,
      notChecked: 1,
    });
    // Its Retry-After reaches past the deadline: not asked again, nothing learnt (the next run asks).
    expect(report.outcomes.find((o) => o.instanceId === 'REFUSED')).toMatchObject({
      action: 'notChecked',
      error: { code: 'out-of-time' },
    });
    expect(zapi.requests.filter((r) => r.instanceId === 'REFUSED')).toHaveLength(1);
    expect(Date.now() - started).toBeLessThan(10_000);
  }, 30_000);

  it.each([
    ['1', 5_500],
    ['0', 2_000],
  ])(
    'a fleet of ONE instance through a global storm (Retry-After: %s for %i ms): Z-API answered nobody, so it is never failed, and is checked when the storm ends',
    async (retryAfter, ms) => {
      zapi.add('ONLY', tokenOf('ONLY'), { presenceUrl: expectedUrl('ONLY') });
      zapi.stormRetryAfter = retryAfter;
      zapi.stormUntil = Date.now() + ms;
      const report = await runFleet(reconcile, { ...SETTINGS, requestsPerSecond: 20 }, deps(), soon(20_000));
      expect(zapi.rateLimited).toBeGreaterThan(MAX_429_IN_A_ROW);
      expect(actions(report)).toEqual({ ONLY: 'unchanged' });
    },
    30_000,
  );

  it('a fleet of ONE instance through a storm that outlasts the deadline (Retry-After: 0) is notChecked at the deadline, never failed', async () => {
    zapi.add('ONLY', tokenOf('ONLY'), { presenceUrl: expectedUrl('ONLY') });
    zapi.stormRetryAfter = '0';
    zapi.stormUntil = Date.now() + 60_000;
    const started = Date.now();
    const report = await runFleet(reconcile, { ...SETTINGS, requestsPerSecond: 20 }, deps(), soon(3_000));
    expect(report.outcomes).toMatchObject([
      { instanceId: 'ONLY', action: 'notChecked', error: { code: 'out-of-time' } },
    ]);
    expect(zapi.rateLimited).toBeGreaterThan(MAX_429_IN_A_ROW);
    expect(Date.now() - started).toBeGreaterThanOrEqual(2_000);
    expect(Date.now() - started).toBeLessThan(3_500);
  }, 30_000);

  it('a storm that starts when only the last instance is being worked on: it is not failed either', async () => {
    for (const id of FLEET.slice(0, 10)) zapi.add(id, tokenOf(id), { presenceUrl: expectedUrl(id) });
    zapi.stormRetryAfter = '0';
    const deadline = soon(20_000);
    // One at a time: the storm begins once nine instances were answered.
    const run = runFleet(reconcile, { ...SETTINGS, concurrency: 1, requestsPerSecond: 20 }, deps(), deadline);
    const watch = setInterval(() => {
      if (zapi.requests.length >= 9 && zapi.stormUntil === undefined) zapi.stormUntil = Date.now() + 2_000;
    }, 1);
    const report = await run.finally(() => clearInterval(watch));
    expect(zapi.rateLimited).toBeGreaterThan(MAX_429_IN_A_ROW);
    expect(countOutcomes(report.outcomes)).toMatchObject({ registered: 10, failed: 0, notChecked: 0 });
  }, 30_000);

  it('a global Retry-After storm (429 and Retry-After: 1 to everyone for 8 s): the instances take turns, none ends failed or rate-limited', async () => {
    for (const id of FLEET.slice(0, 40)) zapi.add(id, tokenOf(id), { presenceUrl: expectedUrl(id) });
    zapi.stormUntil = Date.now() + 8_000;
    const report = await runFleet(
      reconcile,
      { ...SETTINGS, concurrency: 16, requestsPerSecond: 20 },
      deps(),
      soon(30_000),
    );
    expect(countOutcomes(report.outcomes)).toMatchObject({
      fleetSize: 40,
      registered: 40,
      failed: 0,
      unregistered: 0,
      notChecked: 0,
    });
    // Fair: no instance was asked much more often than the others while Z-API answered nobody.
    const during = zapi.requests.slice(0, zapi.rateLimited).map((r) => r.instanceId);
    const most = Math.max(...[...new Set(during)].map((id) => during.filter((x) => x === id).length));
    expect(most).toBeLessThanOrEqual(2);
  }, 40_000);

  it('two instances through a storm of more than five 429s each (Retry-After: 0), each refused while the other is too: neither fails', async () => {
    for (const id of ['ONE', 'TWO']) zapi.add(id, tokenOf(id), { presenceUrl: expectedUrl(id) });
    zapi.stormRetryAfter = '0';
    zapi.stormUntil = Date.now() + 3_000;
    const report = await runFleet(reconcile, { ...SETTINGS, requestsPerSecond: 20 }, deps(), soon(20_000));
    for (const id of ['ONE', 'TWO'])
      expect(zapi.requests.filter((r) => r.instanceId === id).length).toBeGreaterThan(MAX_429_IN_A_ROW);
    expect(actions(report)).toEqual({ ONE: 'unchanged', TWO: 'unchanged' });
  }, 30_000);

  it('a storm that outlasts the deadline leaves the rest notChecked, never failed or unregistered, and says so', async () => {
    for (const id of FLEET.slice(0, 20)) zapi.add(id, tokenOf(id), { presenceUrl: expectedUrl(id) });
    zapi.rateLimit = { perSecond: 2, retryAfter: 'seconds' };
    const report = await runFleet(reconcile, { ...SETTINGS, requestsPerSecond: 50 }, deps(), soon(2_500));
    const counts = countOutcomes(report.outcomes);
    expect(counts.fleetSize).toBe(20);
    expect(counts.notChecked).toBeGreaterThan(5);
    expect(counts.registered + counts.notChecked).toBe(20);
    expect(counts).toMatchObject({ failed: 0, unregistered: 0 });
    const lines: Array<Record<string, unknown>> = [];
    const log: LogSink = {
      info: (r) => lines.push(r),
      warn: (r) => lines.push(r),
      error: (r) => lines.push(r),
    };
    const emf: string[] = [];
    reportRun(report, { namespace: 'T', durationMs: 1, log, write: (l) => void emf.push(l) });
    expect(lines.filter((l) => l.action === 'notChecked')).toHaveLength(counts.notChecked);
    expect(lines.some((l) => String(l.msg).startsWith('Z-API limited the request rate (429)'))).toBe(true);
    expect(JSON.parse(emf[0] as string)).toMatchObject({ NotChecked: counts.notChecked, Unregistered: 0 });
  });

  it('an instance the deadline cuts short mid-registration (GET me answered "none", the PUT not) is unregistered: Z-API confirmed it', async () => {
    zapi.add('CUT', tokenOf('CUT'), { script: ['normal', 'hang'] });
    const report = await runFleet(reconcile, SETTINGS, deps(), soon(1_000));
    expect(report.outcomes).toMatchObject([
      {
        instanceId: 'CUT',
        action: 'failed',
        found: 'missing',
        registered: false,
        error: { code: 'out-of-time' },
      },
    ]);
    // One instance, one alarm: Unregistered, not CheckFailures too.
    expect(countOutcomes(report.outcomes)).toMatchObject({ notChecked: 0, unregistered: 1, failed: 0 });
  });

  it('a Retry-After HTTP date far past the deadline ends the run early with notChecked', async () => {
    for (const id of FLEET.slice(0, 5)) zapi.add(id, tokenOf(id), { presenceUrl: expectedUrl(id) });
    const later = new Date(Date.now() + 3_600_000).toUTCString();
    for (const id of FLEET.slice(0, 5)) {
      zapi.get(id).behaviour = { status: 429, body: '{}', headers: { 'retry-after': later } };
    }
    const started = Date.now();
    const report = await runFleet(reconcile, SETTINGS, deps(), soon(10_000));
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(countOutcomes(report.outcomes)).toMatchObject({ notChecked: 5, failed: 0, unregistered: 0 });
  });
});

describe('the listing', () => {
  it('fails halfway: the instances listed before are checked and reported, and the run says the listing failed', async () => {
    for (const id of ['L1', 'L2', 'L3']) zapi.add(id, tokenOf(id), { presenceUrl: expectedUrl(id) });
    const failure = new ParameterError(
      'SSM parameter /zapi cannot be read (AccessDeniedException)',
      'denied',
      '/zapi',
    );
    const report = await runFleet(
      reconcile,
      SETTINGS,
      deps({
        pages: async function* () {
          yield ['L1', 'L2'];
          throw failure;
        },
      }),
      soon(),
    );
    expect(actions(report)).toEqual({ L1: 'unchanged', L2: 'unchanged' });
    expect(report.listingFailed).toEqual({ code: 'ssm-denied', message: failure.message });
    const lines: Array<Record<string, unknown>> = [];
    const log: LogSink = {
      info: (r) => lines.push(r),
      warn: (r) => lines.push(r),
      error: (r) => lines.push(r),
    };
    reportRun(report, { namespace: 'T', durationMs: 1, log, write: () => {} });
    expect(lines).toContainEqual(
      expect.objectContaining({
        code: 'ssm-denied',
        error: failure.message,
        msg: expect.stringContaining('could not be listed'),
      }),
    );
  });

  it('an id listed twice (across pages, or also named) is checked once', async () => {
    for (const id of ['D1', 'D2']) zapi.add(id, tokenOf(id), { presenceUrl: expectedUrl(id) });
    const report = await runFleet(
      { ...reconcile, required: ['D2'] },
      SETTINGS,
      deps({
        pages: async function* () {
          yield ['D1', 'D2', 'D1'];
          yield ['D2', 'D1'];
        },
      }),
      soon(),
    );
    expect(report.outcomes.map((o) => o.instanceId)).toEqual(['D2', 'D1']);
    expect(zapi.requests.filter((r) => r.instanceId === 'D1')).toHaveLength(1);
  });

  it('streams: Z-API checks start while the listing goes on, and tokens are read 10 at a time, just ahead of the checks', async () => {
    const ids = Array.from({ length: 200 }, (_, i) => `S${String(i).padStart(4, '0')}`);
    for (const id of ids) zapi.add(id, tokenOf(id), { presenceUrl: expectedUrl(id) });
    zapi.latencyMs = 10;
    let firstZapiBeforeListingEnded = false;
    const batches: number[] = [];
    let tokensRead = 0;
    let mostAhead = 0;
    const report = await runFleet(
      reconcile,
      { ...SETTINGS, concurrency: 4 },
      deps({
        pages: async function* () {
          for (let i = 0; i < ids.length; i += 50) {
            yield ids.slice(i, i + 50);
            await new Promise((resolve) => setTimeout(resolve, 30));
          }
          firstZapiBeforeListingEnded = zapi.requests.length > 0;
        },
        onReadTokens: (batch) => {
          batches.push(batch.length);
          tokensRead += batch.length;
          // Tokens held but not yet handed to Z-API.
          mostAhead = Math.max(mostAhead, tokensRead - zapi.requests.length);
        },
      }),
      soon(),
    );
    expect(report.outcomes).toHaveLength(200);
    expect(firstZapiBeforeListingEnded).toBe(true);
    expect(Math.max(...batches)).toBe(10);
    expect(batches.reduce((a, b) => a + b, 0)).toBe(200);
    // Never the whole fleet's tokens at once: the batch being handed out, one read ahead, and the checks running.
    expect(mostAhead).toBeLessThanOrEqual(10 + 10 + 4);
  });

  it('a listing the deadline cuts leaves what it listed but never reached notChecked, and says so', async () => {
    const ids = Array.from({ length: 40 }, (_, i) => `C${String(i).padStart(3, '0')}`);
    for (const id of ids) zapi.add(id, tokenOf(id), { presenceUrl: expectedUrl(id) });
    zapi.latencyMs = 100;
    const report = await runFleet(
      reconcile,
      { ...SETTINGS, concurrency: 2 },
      deps({
        pages: async function* (deadline: Deadline) {
          yield ids;
          await deadline.run('SSM DescribeParameters', () => new Promise<never>(() => {}));
        },
      }),
      soon(800),
    );
    const counts = countOutcomes(report.outcomes);
    expect(counts.fleetSize).toBe(40);
    expect(counts.notChecked).toBeGreaterThan(20);
    expect(counts).toMatchObject({ failed: 0, unregistered: 0 });
    expect(report.listingCut).toBe(true);
    expect(report.listingFailed).toBeUndefined();
    // Names the cut listing never gave are in no outcome: the NotChecked metric counts at least one more,
    // so even a cut that leaves every listed instance checked is seen by the alarm.
    const emf: string[] = [];
    reportRun(report, {
      namespace: 'T',
      durationMs: 1,
      log: { info: () => {}, warn: () => {}, error: () => {} },
      write: (l) => void emf.push(l),
    });
    expect(JSON.parse(emf[0] as string).NotChecked).toBe(counts.notChecked + 1);
  });
});

describe('the canary', () => {
  it('is never registered at Z-API, even when named', async () => {
    zapi.add(CANARY_INSTANCE_ID, tokenOf(CANARY_INSTANCE_ID));
    const report = await runFleet(
      { mode: 'reconcile', trigger: 'manual', instanceIds: [CANARY_INSTANCE_ID] },
      SETTINGS,
      deps(),
      soon(),
    );
    expect(report.outcomes).toEqual([
      {
        instanceId: CANARY_INSTANCE_ID,
        action: 'failed',
        registered: false,
        error: {
          code: 'canary',
          message: `${CANARY_INSTANCE_ID} is the canary's instance id: it is never registered at Z-API`,
        },
      },
    ]);
    expect(zapi.requests).toHaveLength(0);
  });
});
