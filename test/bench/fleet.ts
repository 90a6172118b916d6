/**
 * Fleet scale and Z-API rate limits, measured on the shipped bundles (`npm run bench` runs it after the
 * receiver's measures): the reconciler and the registrar from `cdk synth`, each in a fresh Node process,
 * with the settings the synthesized template gives them, against stand-ins on 127.0.0.1 (SSM holding the
 * tokens, Z-API answering in 50 ms, or 150 ms for the deploy).
 *
 *   sweep, unthrottled   10,000 healthy instances (GET me each) vs bare GET me calls at the same
 *                        concurrency, same run; peak memory of the reconciler process
 *   sweep, 50 req/s      Z-API limited to 50 requests/s (token bucket, 429 + Retry-After): run time vs the
 *                        floor (requests / 50), 429s, false failures; started at 50 req/s and at the
 *                        synthesized default
 *   deploy               10,000 new instances at 150 ms a call, 10 of them named: the named ones registered,
 *                        the deploy back within its deadline, the rest left to the reconciler
 *
 * --smoke runs each scenario small.
 */
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Template } from 'aws-cdk-lib/assertions';
import pMap from 'p-map';
import { FLEET_ENV } from '../../functions/fleet/settings.ts';
import { type AwsStandIn, standInEnvironment } from '../support/aws-standin.ts';
import { bundleDirectory } from '../support/bundle.ts';
import { runNodeScript } from '../support/invoke.ts';
import { startZapiStandIn } from '../support/zapi-standin.ts';

export interface FleetBenchOptions {
  readonly smoke: boolean;
  readonly root: string;
}

const BASE = 'https://bench.execute-api.sa-east-1.amazonaws.com';
const LIMIT_PER_SECOND = 50;

/** The settings the synthesized template gives a fleet function (names and numbers only). */
function synthesizedSettings(template: Template, prefix: string): Record<string, string> {
  const functions = template.findResources('AWS::Lambda::Function');
  const found = Object.entries(functions).find(([id]) => id.startsWith(prefix));
  if (!found) throw new Error(`no ${prefix} in the template`);
  const variables = (found[1] as { Properties: { Environment: { Variables: Record<string, unknown> } } })
    .Properties.Environment.Variables;
  const keep = [
    FLEET_ENV.zapiRequestsPerSecond,
    FLEET_ENV.concurrency,
    FLEET_ENV.zapiAttemptTimeoutMs,
    FLEET_ENV.zapiMaxAttempts,
    FLEET_ENV.driftPolicy,
    FLEET_ENV.tokenParameterTemplate,
  ];
  return Object.fromEntries(
    keep.filter((k) => typeof variables[k] === 'string').map((k) => [k, variables[k] as string]),
  );
}

const PEAK_RSS_KB = `(() => {
  const m = /VmHWM:\\s+(\\d+) kB/.exec(require('node:fs').readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) : process.resourceUsage().maxRSS;
})()`;

/** Invokes a bundled handler once in a fresh process; its log lines go to /dev/null, its EMF line is kept. */
async function invoke(
  bundle: string,
  event: unknown,
  env: Record<string, string>,
  timeoutMs: number,
  root: string,
): Promise<{ result: Record<string, unknown>; emf: Record<string, unknown>; wallMs: number; rssMb: number }> {
  const script = `
    import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);
    const { handler } = await import(${JSON.stringify(pathToFileURL(bundle).href)});
    const fs = require('node:fs');
    const devNull = fs.openSync('/dev/null', 'w');
    const write = process.stdout.write.bind(process.stdout);
    let emf = '{}';
    process.stdout.write = (chunk) => { const s = String(chunk); if (s.includes('"reconcile run"')) emf = s; fs.writeSync(devNull, chunk); return true; };
    for (const level of ['log', 'info', 'warn', 'error']) console[level] = (...a) => fs.writeSync(devNull, JSON.stringify(a) + '\\n');
    const deadline = Date.now() + ${timeoutMs};
    const t0 = performance.now();
    let result;
    try { result = await handler(${JSON.stringify(event)}, { getRemainingTimeInMillis: () => deadline - Date.now() }); }
    catch (error) { result = { error: String(error && error.message) }; }
    const wallMs = performance.now() - t0;
    process.stdout.write = write;
    write('RESULT ' + JSON.stringify({ result, emf: JSON.parse(emf), wallMs, rssKb: ${PEAK_RSS_KB} }) + '\\n');
  `;
  const { stdout, stderr } = await runNodeScript(script, env, root);
  const line = stdout.split('\n').find((l) => l.startsWith('RESULT '));
  if (!line) throw new Error(`no result: ${stderr || stdout}`);
  const parsed = JSON.parse(line.slice('RESULT '.length)) as {
    result: Record<string, unknown>;
    emf: Record<string, unknown>;
    wallMs: number;
    rssKb: number;
  };
  return { ...parsed, rssMb: parsed.rssKb / 1024 };
}

const SWEEP = { source: 'aws.events', 'detail-type': 'Scheduled Event', detail: {} };

export async function benchFleet(
  template: Template,
  assemblyDirectory: string,
  aws: AwsStandIn,
  options: FleetBenchOptions,
) {
  const bundle = (prefix: string) => join(bundleDirectory(template, assemblyDirectory, prefix), 'index.mjs');
  const reconciler = bundle('FleetReconciler');
  const registrar = bundle('FleetRegistrar');
  const reconcilerSettings = synthesizedSettings(template, 'FleetReconciler');
  const registrarSettings = synthesizedSettings(template, 'FleetRegistrar');
  const reconcilerTimeoutMs = 900_000;
  const sizes = options.smoke
    ? { sweep: 300, limited: 150, deploy: 300, named: 10 }
    : { sweep: 10_000, limited: 2_000, deploy: 10_000, named: 10 };

  const zapi = await startZapiStandIn();
  const ids = Array.from({ length: sizes.sweep }, (_, i) => `FLEET${String(i).padStart(5, '0')}`);
  for (const id of ids) aws.put(`/zapi/${id}/token`, `TOKEN${id}`);
  const env = (settings: Record<string, string>, extra: Record<string, string> = {}) => ({
    ...standInEnvironment(aws.url),
    ...settings,
    WEBHOOK_BASE_URL: BASE,
    WEBHOOK_SECRET_PARAMETER: '/zapi/webhook-secret',
    ZAPI_BASE_URL: zapi.url,
    ...extra,
  });
  const master = aws.versions('/zapi/webhook-secret').at(-1)?.value as string;
  const { instanceWebhookUrl } = await import('../../functions/shared/secrets/webhook-secret.ts');
  const seed = (count: number, registered: boolean) => {
    zapi.instances.clear();
    for (const id of ids.slice(0, count))
      zapi.add(id, `TOKEN${id}`, registered ? { presenceUrl: instanceWebhookUrl(BASE, id, master) } : {});
  };
  const only = (count: number) => {
    for (const [i, id] of ids.entries()) {
      if (i < count) aws.put(`/zapi/${id}/token`, `TOKEN${id}`);
      else aws.delete(`/zapi/${id}/token`);
    }
  };

  try {
    // 1. Unthrottled sweep of a healthy fleet, and the bare baseline in the same run.
    zapi.latencyMs = 50;
    zapi.rateLimit = undefined;
    seed(sizes.sweep, true);
    zapi.reset();
    const sweep = await invoke(reconciler, SWEEP, env(reconcilerSettings), reconcilerTimeoutMs, options.root);
    const sweepRequests = zapi.requests.length;
    const concurrency = Number(reconcilerSettings[FLEET_ENV.concurrency] ?? 16);
    const t0 = Date.now();
    await pMap(
      ids.slice(0, sizes.sweep),
      (id) => fetch(`${zapi.url}/instances/${id}/token/TOKEN${id}/me`).then((r) => r.text()),
      { concurrency },
    );
    const bareMs = Date.now() - t0;
    const unthrottled = {
      instances: sizes.sweep,
      runMs: Number(sweep.emf.RunDuration),
      wallMs: sweep.wallMs,
      bareMs,
      ratio: Number(sweep.emf.RunDuration) / bareMs,
      registered: Number(sweep.result.registered),
      notChecked: Number(sweep.result.notChecked),
      failed: Number(sweep.result.failed),
      requests: sweepRequests,
      rssMb: sweep.rssMb,
      concurrency,
    };

    // 2. Z-API limited to 50 requests/s, answering 429 + Retry-After.
    only(sizes.limited);
    const limited = async (settings: Record<string, string>) => {
      seed(sizes.limited, true);
      zapi.reset();
      zapi.rateLimit = { perSecond: LIMIT_PER_SECOND, retryAfter: 'seconds' };
      const run = await invoke(reconciler, SWEEP, env(settings), reconcilerTimeoutMs, options.root);
      zapi.rateLimit = undefined;
      const requests = zapi.requests.length;
      const answered = requests - zapi.rateLimited;
      const floorMs = (answered / LIMIT_PER_SECOND) * 1_000;
      return {
        startRate: Number(settings[FLEET_ENV.zapiRequestsPerSecond]),
        instances: sizes.limited,
        runMs: Number(run.emf.RunDuration),
        floorMs,
        ratio: Number(run.emf.RunDuration) / floorMs,
        requests,
        rateLimited: zapi.rateLimited,
        share429: zapi.rateLimited / requests,
        registered: Number(run.result.registered),
        failed: Number(run.result.failed),
        unregistered: Number(run.result.unregistered),
        notChecked: Number(run.result.notChecked),
      };
    };
    const at50 = await limited({ ...reconcilerSettings, [FLEET_ENV.zapiRequestsPerSecond]: '50' });
    const atDefault = await limited(reconcilerSettings);

    // 3. A deploy with a fleet of new instances at 150 ms a Z-API call, 10 of them named.
    only(sizes.deploy);
    zapi.latencyMs = 150;
    seed(sizes.deploy, false);
    zapi.reset();
    const named = ids.slice(sizes.deploy - sizes.named, sizes.deploy);
    const deployDeadlineMs = options.smoke ? 15_000 : 60_000;
    const deploy = await invoke(
      registrar,
      {
        RequestType: 'Create',
        ResourceProperties: { Fleet: 'true', DeployNonce: 'bench', RequiredInstanceIds: named.join(',') },
      },
      env(registrarSettings),
      deployDeadlineMs,
      options.root,
    );
    const namedRegistered = named.filter(
      (id) => zapi.get(id).presenceUrl === instanceWebhookUrl(BASE, id, master),
    ).length;
    const data = (deploy.result.Data ?? {}) as Record<string, string>;
    const deployResult = {
      instances: sizes.deploy,
      named: sizes.named,
      deadlineMs: deployDeadlineMs,
      wallMs: deploy.wallMs,
      namedRegistered,
      registered: Number(data.Registered),
      notChecked: Number(data.NotChecked),
      failed: deploy.result.error === undefined ? 0 : 1,
      error: deploy.result.error,
    };
    // 4. A global Retry-After storm: every request answered 429 + Retry-After: 1 for 30 s.
    zapi.latencyMs = 50;
    const storm = await benchStorm(zapi, reconciler, env(reconcilerSettings), {
      instances: options.smoke ? 16 : STORM_INSTANCES,
      seconds: options.smoke ? 5 : STORM_SECONDS,
      seed: (count) => {
        only(count);
        seed(count, true);
      },
      root: options.root,
    });
    return { unthrottled, at50, atDefault, deploy: deployResult, storm, limitPerSecond: LIMIT_PER_SECOND };
  } finally {
    for (const id of ids) aws.delete(`/zapi/${id}/token`);
    await zapi.close();
  }
}

const STORM_INSTANCES = 40;
const STORM_SECONDS = 30;

/**
 * A sweep of `instances` healthy instances (the shipped reconciler, fresh process) while Z-API answers
 * every request 429 with `Retry-After: 1` for `seconds`, then answers normally: how many instances end
 * failed or not checked (goal: none failed; Z-API answered nobody), how the 429s were shared out among
 * the instances (at most and at least per instance), and the run time against the storm's length.
 */
export async function benchStorm(
  zapi: Awaited<ReturnType<typeof startZapiStandIn>>,
  reconciler: string,
  env: Record<string, string>,
  options: {
    readonly instances: number;
    readonly seconds: number;
    readonly seed: (count: number) => void;
    readonly root: string;
  },
) {
  options.seed(options.instances);
  zapi.reset();
  zapi.rateLimit = undefined;
  zapi.stormRetryAfter = '1';
  const started = Date.now();
  zapi.stormUntil = started + options.seconds * 1_000;
  try {
    const run = await invoke(reconciler, SWEEP, env, 900_000, options.root);
    const during = zapi.requests.slice(0, zapi.rateLimited).map((r) => r.instanceId);
    const perInstance = [...new Set(zapi.requests.map((r) => r.instanceId))].map(
      (id) => during.filter((x) => x === id).length,
    );
    return {
      instances: options.instances,
      stormSeconds: options.seconds,
      runMs: Number(run.emf.RunDuration),
      wallMs: run.wallMs,
      requests: zapi.requests.length,
      rateLimited: zapi.rateLimited,
      most429: Math.max(...perInstance),
      least429: Math.min(...perInstance),
      registered: Number(run.result.registered),
      failed: Number(run.result.failed),
      notChecked: Number(run.result.notChecked),
      unregistered: Number(run.result.unregistered),
    };
  } finally {
    zapi.stormUntil = undefined;
  }
}

export type FleetStorm = Awaited<ReturnType<typeof benchStorm>>;

/** The storm alone (`npm run bench -- --only storm`): its own Z-API stand-in and tokens. */
export async function stormAlone(
  template: Template,
  assemblyDirectory: string,
  aws: AwsStandIn,
  options: FleetBenchOptions,
): Promise<FleetStorm> {
  const reconciler = join(bundleDirectory(template, assemblyDirectory, 'FleetReconciler'), 'index.mjs');
  const settings = synthesizedSettings(template, 'FleetReconciler');
  const zapi = await startZapiStandIn();
  zapi.latencyMs = 50;
  const count = options.smoke ? 16 : STORM_INSTANCES;
  const ids = Array.from({ length: count }, (_, i) => `STORM${String(i).padStart(3, '0')}`);
  const master = aws.versions('/zapi/webhook-secret').at(-1)?.value as string;
  const { instanceWebhookUrl } = await import('../../functions/shared/secrets/webhook-secret.ts');
  try {
    return await benchStorm(
      zapi,
      reconciler,
      {
        ...standInEnvironment(aws.url),
        ...settings,
        WEBHOOK_BASE_URL: BASE,
        WEBHOOK_SECRET_PARAMETER: '/zapi/webhook-secret',
        ZAPI_BASE_URL: zapi.url,
      },
      {
        instances: count,
        seconds: options.smoke ? 5 : STORM_SECONDS,
        seed: () => {
          for (const id of ids) {
            aws.put(`/zapi/${id}/token`, `TOKEN${id}`);
            zapi.add(id, `TOKEN${id}`, { presenceUrl: instanceWebhookUrl(BASE, id, master) });
          }
        },
        root: options.root,
      },
    );
  } finally {
    for (const id of ids) aws.delete(`/zapi/${id}/token`);
    await zapi.close();
  }
}

/**
 * The 429 cases around one instance (`--only storm`, after the storm above), on the shipped reconciler:
 *
 *   a fleet of one     the same storm (429 + `Retry-After: 1` to every request) with ONE instance: Z-API
 *                      answered nobody, so it must not end failed (it is checked once the storm ends)
 *   one refused        one instance Z-API always answers 429 + `Retry-After: 30`, listed first, among
 *                      healthy ones, at 20 req/s with a 45 s deadline: the others must not wait for it
 */
export async function oneInstanceCases(
  template: Template,
  assemblyDirectory: string,
  aws: AwsStandIn,
  options: FleetBenchOptions,
) {
  const reconciler = join(bundleDirectory(template, assemblyDirectory, 'FleetReconciler'), 'index.mjs');
  const zapi = await startZapiStandIn();
  zapi.latencyMs = 50;
  const master = aws.versions('/zapi/webhook-secret').at(-1)?.value as string;
  const { instanceWebhookUrl } = await import('../../functions/shared/secrets/webhook-secret.ts');
  const env = {
    ...standInEnvironment(aws.url),
    ...synthesizedSettings(template, 'FleetReconciler'),
    [FLEET_ENV.zapiRequestsPerSecond]: '20',
    WEBHOOK_BASE_URL: BASE,
    WEBHOOK_SECRET_PARAMETER: '/zapi/webhook-secret',
    ZAPI_BASE_URL: zapi.url,
  };
  const healthy = Array.from(
    { length: options.smoke ? 50 : 200 },
    (_, i) => `OK${String(i).padStart(3, '0')}`,
  );
  const all = ['ONLY', 'REFUSED', ...healthy];
  /** Exactly these instances, at SSM and at Z-API, each holding our URL. */
  const seed = (ids: readonly string[]) => {
    for (const id of all) aws.delete(`/zapi/${id}/token`);
    zapi.instances.clear();
    for (const id of ids) {
      aws.put(`/zapi/${id}/token`, `TOKEN${id}`);
      zapi.add(id, `TOKEN${id}`, { presenceUrl: instanceWebhookUrl(BASE, id, master) });
    }
  };
  try {
    const single = await benchStorm(zapi, reconciler, env, {
      instances: 1,
      seconds: options.smoke ? 5 : STORM_SECONDS,
      seed: () => seed(['ONLY']),
      root: options.root,
    });
    seed(['REFUSED', ...healthy]);
    zapi.get('REFUSED').behaviour = { status: 429, body: '{}', headers: { 'retry-after': '30' } };
    zapi.reset();
    const deadlineMs = 45_000;
    const run = await invoke(reconciler, SWEEP, env, deadlineMs, options.root);
    const refused = {
      healthy: healthy.length,
      deadlineMs,
      runMs: Number(run.emf.RunDuration),
      registered: Number(run.result.registered),
      failed: Number(run.result.failed),
      notChecked: Number(run.result.notChecked),
      refusedRequests: zapi.requests.filter((r) => r.instanceId === 'REFUSED').length,
    };
    return { single, refused };
  } finally {
    for (const id of all) aws.delete(`/zapi/${id}/token`);
    await zapi.close();
  }
}

export type OneInstanceCases = Awaited<ReturnType<typeof oneInstanceCases>>;

export function formatOneInstance(x: OneInstanceCases): string {
  const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  const one = x.single;
  const r = x.refused;
  return [
    `| a fleet of ONE instance through the storm (429 + \`Retry-After: 1\` to every request for ${one.stormSeconds} s) | **${one.failed} failed**, ${one.notChecked} not checked, ${one.registered} registered; ${one.rateLimited} of ${one.requests} requests answered 429; run ${s(one.runMs)} | 0 failed: ${one.failed === 0 && one.registered === 1 ? 'met' : 'NOT met'} |`,
    `| one instance always answered 429 + \`Retry-After: 30\` among ${r.healthy} healthy ones, 20 req/s, ${s(r.deadlineMs)} deadline | **${r.registered} registered**, ${r.failed} failed, ${r.notChecked} not checked; the refused one asked ${r.refusedRequests} times; run ${s(r.runMs)} | every healthy one registered: ${r.registered === r.healthy ? 'met' : 'NOT met'} |`,
  ].join('\n');
}

export function formatStorm(x: FleetStorm): string {
  const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  return `| Retry-After storm: Z-API answers 429 + \`Retry-After: 1\` to every request for ${x.stormSeconds} s, sweep of ${x.instances} healthy instances (the shipped reconciler, synthesized settings) | **${x.failed} failed**, ${x.notChecked} not checked, ${x.unregistered} unregistered, ${x.registered} registered; ${x.rateLimited} of ${x.requests} requests answered 429, ${x.least429} to ${x.most429} per instance; run ${s(x.runMs)} (storm ${x.stormSeconds} s) | 0 failed: ${x.failed === 0 && x.unregistered === 0 ? 'met' : 'NOT met'} |`;
}

export type FleetBench = Awaited<ReturnType<typeof benchFleet>>;

export function formatFleet(r: FleetBench): string {
  const f = (n: number, d = 2) => n.toFixed(d);
  const s = (ms: number) => `${f(ms / 1000, 1)} s`;
  const goal = (ok: boolean) => (ok ? 'met' : 'NOT met');
  const u = r.unthrottled;
  const limitedRow = (x: FleetBench['at50'], label: string, bound: number) =>
    `| sweep of ${x.instances} healthy instances, Z-API limited to ${r.limitPerSecond} req/s (429 + Retry-After), ${label} | ${s(x.runMs)} vs floor ${s(x.floorMs)} = **${f(x.ratio)}**; ${x.rateLimited} of ${x.requests} requests answered 429 (**${f(x.share429 * 100, 1)} %**); ${x.failed} failed, ${x.unregistered} unregistered, ${x.notChecked} not checked | <= ${bound} x floor, <= 5 % 429, 0 false failures: ${goal(x.ratio <= bound && x.share429 <= 0.05 && x.failed === 0 && x.unregistered === 0 && x.notChecked === 0)} |`;
  return [
    '| fleet measure | value | goal |',
    '| --- | --- | --- |',
    `| sweep of ${u.instances} healthy instances, unthrottled (Z-API 50 ms, concurrency ${u.concurrency}) vs bare GET me calls at the same concurrency | ${s(u.runMs)} vs ${s(u.bareMs)} = **${f(u.ratio)}**; ${u.registered} registered, ${u.notChecked} not checked, ${u.failed} failed; ${u.requests} Z-API requests; peak RSS ${f(u.rssMb, 0)} MB | 10,000 in <= 45 s: ${goal(u.instances < 10_000 || (u.runMs <= 45_000 && u.registered === u.instances))} |`,
    limitedRow(r.at50, 'starting at 50 req/s', 1.2),
    limitedRow(r.atDefault, `starting at the synthesized default (${r.atDefault.startRate} req/s)`, 1.3),
    `| deploy with ${r.deploy.instances} new instances at 150 ms a Z-API call, ${r.deploy.named} named (deadline ${s(r.deploy.deadlineMs)}) | back in ${s(r.deploy.wallMs)}; ${r.deploy.namedRegistered} of ${r.deploy.named} named registered; ${r.deploy.registered} registered in all, ${r.deploy.notChecked} left not checked for the reconciler${r.deploy.error ? `; failed: ${r.deploy.error}` : ''} | named registered, within the deadline: ${goal(r.deploy.namedRegistered === r.deploy.named && r.deploy.wallMs < r.deploy.deadlineMs && r.deploy.failed === 0)} |`,
    formatStorm(r.storm),
  ].join('\n');
}

/** Checks the run did what it says (never a timing). */
export function fleetSanity(r: FleetBench): string[] {
  const problems: string[] = [];
  if (r.unthrottled.registered !== r.unthrottled.instances)
    problems.push(
      `unthrottled sweep found ${r.unthrottled.registered} of ${r.unthrottled.instances} registered`,
    );
  for (const [name, x] of [
    ['at50', r.at50],
    ['atDefault', r.atDefault],
  ] as const) {
    if (x.failed !== 0 || x.unregistered !== 0)
      problems.push(`${name}: ${x.failed} failed, ${x.unregistered} unregistered`);
    if (!(x.runMs > 0)) problems.push(`${name}: run time ${x.runMs}`);
  }
  if (r.storm.failed !== 0 || r.storm.unregistered !== 0 || r.storm.registered !== r.storm.instances)
    problems.push(
      `storm: ${r.storm.failed} failed, ${r.storm.unregistered} unregistered, ${r.storm.registered} of ${r.storm.instances} registered`,
    );
  if (r.deploy.namedRegistered !== r.deploy.named)
    problems.push(`deploy registered ${r.deploy.namedRegistered} of ${r.deploy.named} named instances`);
  return problems;
}
