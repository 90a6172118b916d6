/**
 * `npm run bench [-- --smoke] [-- --json FILE]`: measures the receiver bundle exactly as `cdk synth`
 * ships it, against baselines measured in the same run on the same machine.
 *
 *   bundle size      bytes of index.mjs (and gzip, as a rough zip size)
 *   cold import      import of the bundle in a fresh Node process vs importing the two AWS SDK clients it
 *                    uses, unbundled, from node_modules; alternating, median of >= 7 pairs; ratio
 *   first response   fresh process: import + secret fetch + first publish, against stand-ins on
 *                    127.0.0.1 speaking AWS JSON 1.1 (reached through AWS_ENDPOINT_URL_*)
 *   warm             per accepted webhook vs one bare PutEvents call (same SDK version, bundled by esbuild
 *                    with its defaults) to the same stand-in: interleaved in one process, and each side
 *                    in its own process; plus a CPU profile of where the time goes (test/bench/warm.ts)
 *   memory, logs     peak RSS; log bytes per accepted webhook
 *   cost             dollars per million webhooks vs API Gateway's direct EventBridge integration
 *   per-instance     CPU of our code with per-instance secrets (HMAC per request) vs the single shared
 *   secrets          secret it replaced (one SHA-256 compare), same run
 *   reconcile        the shipped reconciler bundle sweeping 1,000 instances (Z-API stand-in answering in
 *                    50 ms, SSM stand-in holding 1,000 tokens) vs bare GET me calls at the same
 *                    concurrency; and a deploy's registration of all of them (PUT + GET me each)
 *
 * --smoke runs few iterations and checks that every number is sane; it never fails on a timing.
 * --only warm|store|storm|duplicates|fixed measures one part alone (see ONLY_PARTS).
 */

import { hash, timingSafeEqual } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';
import pMap from 'p-map';
import { FLEET_DEFAULTS } from '../../functions/fleet/settings.ts';
import { createApiGatewayHandler } from '../../functions/presence-webhook/adapter.ts';
import { createMetricsLogger } from '../../functions/presence-webhook/metrics.ts';
import { createSecretVerifier, type VerifySecret } from '../../functions/presence-webhook/secret.ts';
import { deriveInstanceSecret } from '../../functions/shared/secrets/webhook-secret.ts';
import { BATCHING_WINDOW } from '../../lib/presence-store.ts';
import { type AwsStandIn, standInEnvironment, startAwsStandIn } from '../support/aws-standin.ts';
import { bundleDirectory } from '../support/bundle.ts';
import { invokeBundle, runNodeScript } from '../support/invoke.ts';
import { synth } from '../support/synth.ts';
import { startZapiStandIn } from '../support/zapi-standin.ts';
import { formatCanary, formatFlood, measureCanary, measureFlood } from './canary.ts';
import { CHILD_PRELUDE, PEAK_RSS_KB } from './child.ts';
import { costModel, formatCost } from './cost.ts';
import { formatFixedCost, measureFixedCosts } from './fixed-cost.ts';
import {
  benchFleet,
  fleetSanity,
  formatFleet,
  formatOneInstance,
  formatStorm,
  oneInstanceCases,
  stormAlone,
} from './fleet.ts';
import {
  feedCost,
  formatFeed,
  measureClientBundle,
  measureDomLatency,
  measureFeedLatency,
  measurePublisher,
} from './live-feed.ts';
import { ASSUMED_BATCH_MS, measureStore, storeCost } from './presence-store.ts';
import { duplicateScenarios, formatDuplicates, measureDuplicates } from './presence-store-duplicates.ts';
import { formatStoreSpeed, measureStoreSpeed } from './presence-store-speed.ts';
import { LIST_PRICES, PRICE_REGIONS, type PriceRegion } from './prices.ts';
import { formatWarm, measureWarm } from './warm.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const args = process.argv.slice(2);
const SMOKE = args.includes('--smoke');
const jsonOut = args.includes('--json') ? args[args.indexOf('--json') + 1] : undefined;
/** `--only warm`: synthesize, then measure the warm path alone (a few minutes instead of a full run). */
const ONLY = args.includes('--only') ? args[args.indexOf('--only') + 1] : undefined;
const ONLY_PARTS = ['warm', 'store', 'storm', 'duplicates', 'fixed'] as const;
if (ONLY !== undefined && !(ONLY_PARTS as readonly string[]).includes(ONLY))
  throw new Error(`--only ${ONLY}: one of ${ONLY_PARTS.join(', ')}`);

const PAIRS = SMOKE ? 3 : 9;
const FIRST_RUNS = SMOKE ? 2 : 7;

const MASTER = 'bench-master-0123456789abcdef0123456789';
const INSTANCE = '3C01A2B3C4D5E6F7A8B9C0D1E2F3A4B5';
const SECRET = deriveInstanceSecret(MASTER, INSTANCE);
const FLEET_SIZE = SMOKE ? 100 : 1_000;
const ZAPI_LATENCY_MS = 50;
const BUS = 'bench-bus';

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
};

/** Runs a module script in a fresh Node process; it prints one JSON line prefixed with RESULT. */
async function runChild(script: string, env: Record<string, string>): Promise<Record<string, number>> {
  const { stdout, stderr } = await runNodeScript(script, env, ROOT);
  const line = stdout.split('\n').find((l) => l.startsWith('RESULT '));
  if (!line) throw new Error(`child printed no result: ${stderr || stdout}`);
  return JSON.parse(line.slice('RESULT '.length)) as Record<string, number>;
}

const receiverEnv = (standIn: AwsStandIn) => ({
  ...standInEnvironment(standIn.url),
  EVENT_BUS_NAME: BUS,
  WEBHOOK_SECRET_PARAMETER: '/zapi/webhook-secret',
});

const EVENT = {
  version: '2.0',
  routeKey: 'POST /instances/{instanceId}/presence',
  pathParameters: { instanceId: INSTANCE },
  queryStringParameters: { secret: SECRET },
  headers: { 'content-type': 'application/json' },
  requestContext: { requestId: 'JxLb4gN3IAMEbDw=' },
  body: JSON.stringify({
    type: 'PresenceChatCallback',
    phone: '5544999999999',
    status: 'COMPOSING',
    lastSeen: null,
    instanceId: INSTANCE,
  }),
  isBase64Encoded: false,
};

// --- child scripts ---------------------------------------------------------------------------

const importBundleScript = (bundle: string) => `${CHILD_PRELUDE}
  const t0 = performance.now();
  await import(${JSON.stringify(pathToFileURL(bundle).href)});
  const ms = performance.now() - t0;
  console.log('RESULT ' + JSON.stringify({ ms, rssKb: ${PEAK_RSS_KB} }));
`;

const importSdkScript = `${CHILD_PRELUDE}
  const t0 = performance.now();
  await import('@aws-sdk/client-eventbridge');
  await import('@aws-sdk/client-ssm');
  const ms = performance.now() - t0;
  console.log('RESULT ' + JSON.stringify({ ms, rssKb: ${PEAK_RSS_KB} }));
`;

const firstResponseScript = (bundle: string) => `${CHILD_PRELUDE}
  const t0 = performance.now();
  const { handler } = await import(${JSON.stringify(pathToFileURL(bundle).href)});
  const imported = performance.now();
  const write = process.stdout.write.bind(process.stdout);
  const devNull = require('node:fs').openSync('/dev/null', 'w');
  process.stdout.write = (chunk) => { require('node:fs').writeSync(devNull, chunk); return true; };
  const deadline = Date.now() + 10000;
  const result = await handler(${JSON.stringify(EVENT)}, { getRemainingTimeInMillis: () => deadline - Date.now() });
  const done = performance.now();
  process.stdout.write = write;
  console.log('RESULT ' + JSON.stringify({ status: result.statusCode, totalMs: done - t0, importMs: imported - t0, firstCallMs: done - imported, rssKb: ${PEAK_RSS_KB} }));
`;

/** CPU µs per accepted webhook of the shipped bundle, warm, publishing to the stand-in (`--only fixed`). */
const warmCpuScript = (bundle: string, calls: number) => `${CHILD_PRELUDE}
  const { handler } = await import(${JSON.stringify(pathToFileURL(bundle).href)});
  const devNull = require('node:fs').openSync('/dev/null', 'w');
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = (chunk) => { require('node:fs').writeSync(devNull, chunk); return true; };
  const call = async () => {
    const deadline = Date.now() + 10000;
    const r = await handler(${JSON.stringify(EVENT)}, { getRemainingTimeInMillis: () => deadline - Date.now() });
    if (r.statusCode !== 200) throw new Error('status ' + r.statusCode);
  };
  for (let i = 0; i < 200; i++) await call();
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < ${calls}; i++) await call();
  const cpu = process.cpuUsage(cpu0);
  process.stdout.write = write;
  console.log('RESULT ' + JSON.stringify({ cpuUs: (cpu.user + cpu.system) / ${calls} }));
`;

/**
 * Our code alone (adapter, core, secret check, metrics line), with the publish stubbed: CPU µs per
 * webhook, with per-instance secrets (an HMAC per request) and, as the baseline measured alongside, with
 * the single shared secret they replaced (one SHA-256 compare). Alternating rounds.
 */
async function ourCodeAlone(): Promise<{ perInstanceUs: number; sharedUs: number }> {
  const sharedDigest = hash('sha256', SECRET, 'buffer');
  const shared: VerifySecret = (_instanceId, candidate) =>
    timingSafeEqual(hash('sha256', candidate, 'buffer'), sharedDigest);
  const handler = (verifySecret: VerifySecret) =>
    createApiGatewayHandler(
      {
        maxBodyBytes: 16_384,
        verifySecret,
        publish: async () => ({ eventId: '6f1c8a2e-1b2c-4d5e-8f90-a1b2c3d4e5f6' }),
      },
      createMetricsLogger('ZapiPresence', () => {}),
    );
  const perInstance = handler(createSecretVerifier({ load: async () => ({ current: MASTER }) }));
  const baseline = handler(shared);
  const n = SMOKE ? 2_000 : 25_000;
  const cpuOf = async (handle: typeof baseline) => {
    const cpu0 = process.cpuUsage();
    for (let i = 0; i < n; i++) await handle(EVENT);
    const cpu = process.cpuUsage(cpu0);
    return (cpu.user + cpu.system) / n;
  };
  await cpuOf(perInstance);
  await cpuOf(baseline);
  const a: number[] = [];
  const b: number[] = [];
  for (let round = 0; round < (SMOKE ? 2 : 6); round++) {
    a.push(await cpuOf(perInstance));
    b.push(await cpuOf(baseline));
  }
  return { perInstanceUs: median(a), sharedUs: median(b) };
}

/**
 * The shipped reconciler sweeping FLEET_SIZE instances in a fresh process against stand-ins (Z-API answers
 * in 50 ms), vs the same number of bare GET me calls at the same concurrency; then a deploy-style
 * registration of all of them (register mode: PUT and GET me each, SSM listing included).
 */
async function reconcileFleet(reconcileBundle: string, registerBundle: string, standIn: AwsStandIn) {
  const zapi = await startZapiStandIn();
  zapi.latencyMs = ZAPI_LATENCY_MS;
  const base = 'https://bench.execute-api.sa-east-1.amazonaws.com';
  const ids = Array.from({ length: FLEET_SIZE }, (_, i) => `BENCH${String(i).padStart(5, '0')}`);
  for (const id of ids) {
    standIn.put(`/zapi/${id}/token`, `TOKEN${id}`);
    zapi.add(id, `TOKEN${id}`);
  }
  const env = {
    ...standInEnvironment(standIn.url),
    WEBHOOK_BASE_URL: base,
    WEBHOOK_SECRET_PARAMETER: '/zapi/webhook-secret',
    ZAPI_BASE_URL: zapi.url,
  };
  try {
    // A deploy first (every instance empty: PUT + GET me each), then a sweep of a healthy fleet.
    let t0 = Date.now();
    const deploy = await invokeBundle(
      registerBundle,
      [{ RequestType: 'Create', ResourceProperties: { Fleet: 'true', DeployNonce: 'bench' } }],
      env,
      300_000,
    );
    const deployMs = Date.now() - t0;
    const deployed = deploy.results[0] as { Data?: { Registered?: string } };
    zapi.reset();
    t0 = Date.now();
    const sweep = await invokeBundle(
      reconcileBundle,
      [{ source: 'aws.events', 'detail-type': 'Scheduled Event', detail: {} }],
      env,
      300_000,
    );
    const sweepMs = Date.now() - t0;
    const swept = sweep.results[0] as { fleetSize?: number; registered?: number };
    const maxInFlight = zapi.maxInFlight;
    // The baseline: the same GET me calls, bare fetch, same concurrency, in this process.
    t0 = Date.now();
    await pMap(ids, (id) => fetch(`${zapi.url}/instances/${id}/token/TOKEN${id}/me`).then((r) => r.text()), {
      concurrency: FLEET_DEFAULTS.concurrency,
    });
    const bareMs = Date.now() - t0;
    // A drift sweep: a tenth of the fleet taken over by another tool.
    for (const id of ids.filter((_, i) => i % 10 === 0))
      zapi.get(id).presenceUrl = 'https://other.example.com/hook';
    t0 = Date.now();
    const drift = await invokeBundle(
      reconcileBundle,
      [{ source: 'aws.events', 'detail-type': 'Scheduled Event', detail: {} }],
      env,
      300_000,
    );
    const driftMs = Date.now() - t0;
    const drifted = drift.results[0] as { corrected?: number };
    return {
      instances: FLEET_SIZE,
      zapiLatencyMs: ZAPI_LATENCY_MS,
      concurrency: FLEET_DEFAULTS.concurrency,
      deployMs,
      deployRegistered: Number(deployed.Data?.Registered ?? 0),
      sweepMs,
      sweepRegistered: swept.registered ?? 0,
      bareMeMs: bareMs,
      ratio: sweepMs / bareMs,
      driftSweepMs: driftMs,
      driftCorrected: drifted.corrected ?? 0,
      maxInFlight,
    };
  } finally {
    for (const id of ids) standIn.delete(`/zapi/${id}/token`);
    await zapi.close();
  }
}

/** The canary's cost and the flood trade-off, from the shipped bundles and the synthesized template. */
async function canaryAndFlood(
  synthesized: ReturnType<typeof synth>,
  receiverBundle: string,
  env: Record<string, string>,
  standIn: AwsStandIn,
  receiverMemoryMb: number,
  accessLogFormat: string,
  receiverCpuUs: number,
) {
  const { template, assembly } = synthesized;
  const fn = (prefix: string) => {
    const found = Object.entries(template.findResources('AWS::Lambda::Function')).find(([id]) =>
      id.startsWith(prefix),
    );
    if (!found) throw new Error(`no ${prefix} function in the template`);
    return (found[1] as { Properties: { MemorySize: number } }).Properties;
  };
  const schedule = Object.entries(template.findResources('AWS::Events::Rule')).find(([id]) =>
    id.startsWith('CanarySchedule'),
  );
  const rate = /^rate\((\d+) minutes?\)$/.exec(
    String((schedule?.[1] as { Properties: { ScheduleExpression: string } })?.Properties.ScheduleExpression),
  );
  if (!rate) throw new Error('no canary schedule in the template');
  const alarmResources = template.findResources('AWS::CloudWatch::Alarm') as Record<
    string,
    { Properties: { Metrics?: Array<{ MetricStat?: unknown }> } }
  >;
  const alarms = Object.keys(alarmResources);
  const canaryAlarms = alarms.filter((id) => id.includes('Canary'));
  // Each metric an alarm reads is priced (a metric-math alarm pays for each).
  const metricsRead = (id: string) =>
    alarmResources[id]?.Properties.Metrics?.filter((m) => m.MetricStat !== undefined).length ?? 1;
  const stage = Object.values(template.findResources('AWS::ApiGatewayV2::Stage'))[0] as {
    Properties: { DefaultRouteSettings: { ThrottlingRateLimit: number; ThrottlingBurstLimit: number } };
  };
  const canary = await measureCanary({
    canaryBundle: join(bundleDirectory(template, assembly.directory, 'CanaryFunction'), 'index.mjs'),
    arrivalBundle: join(bundleDirectory(template, assembly.directory, 'CanaryArrival'), 'index.mjs'),
    receiverBundle,
    standIn,
    receiverEnv: env,
    runs: SMOKE ? 3 : 30,
    receiverCpuMs: receiverCpuUs / 1000,
    intervalMinutes: Number(rate[1]),
    canaryMemoryMb: fn('CanaryFunction').MemorySize,
    arrivalMemoryMb: fn('CanaryArrival').MemorySize,
    receiverMemoryMb,
    alarms: canaryAlarms.length,
    alarmMetrics: canaryAlarms.reduce((sum, id) => sum + metricsRead(id), 0),
    accessLogFormat,
  });
  const flood = await measureFlood({
    receiverBundle,
    receiverEnv: env,
    memoryMb: receiverMemoryMb,
    accessLogFormat,
    rate: stage.Properties.DefaultRouteSettings.ThrottlingRateLimit,
    burst: stage.Properties.DefaultRouteSettings.ThrottlingBurstLimit,
    calls: SMOKE ? 200 : 5_000,
    seconds: SMOKE ? 60 : 600,
    alarms: alarms.filter((id) => /Throttled|WrongSecrets/.test(id)).length,
  });
  return { canary, flood };
}

// --- the run --------------------------------------------------------------------------------

/** Every fixed-cost variant (the default one is the run's own synth), with the canary's measured runs. */
function fixedCostsOf(
  synthesized: ReturnType<typeof synth>,
  standIn: AwsStandIn,
  canary: { perMonthIn: Record<PriceRegion, { variable: number }> },
) {
  return measureFixedCosts({
    synthesize: (context) => {
      const variant =
        Object.keys(context).length === 0
          ? synthesized
          : synth({ instanceId: INSTANCE, ...context }, { bundle: true });
      return { template: variant.template, assemblyDirectory: variant.assembly.directory };
    },
    standIn,
    master: MASTER,
    canaryRunsPerMonth: {
      'us-east-1': canary.perMonthIn['us-east-1'].variable,
      'sa-east-1': canary.perMonthIn['sa-east-1'].variable,
    },
  });
}

/** `--only store`: the presence store's counts and speed alone (no synth), in a minute or two. */
async function onlyStore(): Promise<void> {
  const counts = await measureStore(SMOKE ? 20 : 300);
  const f = (n: number, d = 2) => n.toFixed(d);
  process.stdout.write(
    `presence store per raw callback (core, one at a time): ${JSON.stringify(storeCost(counts).perCallback)}\n`,
  );
  for (const region of PRICE_REGIONS) {
    const store = storeCost(counts, 256, LIST_PRICES[region]);
    process.stdout.write(
      `presence store, $ per million callbacks (${region} list prices; batch of 10 assumed ${ASSUMED_BATCH_MS} ms): ${f(store.perMillion.total, 3)}, of which the expiry mechanism ${f(store.expiryMechanismPerMillion, 3)} (${f(store.expiryMechanismAlonePerMillion, 3)} when every check comes in a batch of its own)\n`,
    );
  }
  process.stdout.write(`${formatStoreSpeed(await measureStoreSpeed(SMOKE ? 30 : 300, SMOKE ? 1 : 2))}\n`);
}

async function main(): Promise<void> {
  if (args[args.indexOf('--only') + 1] === 'store' && args.includes('--only')) return onlyStore();
  if (ONLY === 'duplicates') {
    const duplicates = await measureDuplicates(duplicateScenarios(SMOKE));
    console.log(formatDuplicates(duplicates));
    if (jsonOut) writeFileSync(jsonOut, `${JSON.stringify({ duplicates }, null, 2)}\n`);
    return;
  }
  const started = Date.now();
  process.stderr.write(`bench${SMOKE ? ' (smoke)' : ''}: synthesizing the app with bundling...\n`);
  const synthesized = synth({ instanceId: INSTANCE }, { bundle: true });
  const directory = bundleDirectory(synthesized.template, synthesized.assembly.directory, 'PresenceReceiver');
  const bundle = join(directory, 'index.mjs');
  const bundleBytes = statSync(bundle).size;
  const gzipBytes = gzipSync(readFileSync(bundle), { level: 9 }).byteLength;
  const receiver = Object.entries(synthesized.template.findResources('AWS::Lambda::Function')).find(([id]) =>
    id.startsWith('PresenceReceiver'),
  );
  if (!receiver) throw new Error('no receiver function in the template');
  const memoryMb = Number((receiver[1] as { Properties: { MemorySize: number } }).Properties.MemorySize);
  const accessLogFormat = String(
    (
      Object.values(synthesized.template.findResources('AWS::ApiGatewayV2::Stage'))[0] as {
        Properties: { AccessLogSettings: { Format: string } };
      }
    ).Properties.AccessLogSettings.Format,
  );

  const standIn = await startAwsStandIn({ '/zapi/webhook-secret': MASTER });
  const reconcileBundle = join(
    bundleDirectory(synthesized.template, synthesized.assembly.directory, 'FleetReconciler'),
    'index.mjs',
  );
  const registerBundle = join(
    bundleDirectory(synthesized.template, synthesized.assembly.directory, 'FleetRegistrar'),
    'index.mjs',
  );
  const env = receiverEnv(standIn);
  const warmOptions = {
    receiverBundle: bundle,
    env,
    event: EVENT,
    bus: BUS,
    smoke: SMOKE,
    root: ROOT,
    outDir: join(ROOT, '.bench-out', 'warm'),
    log: (line: string) => process.stderr.write(`${line}\n`),
  };
  try {
    if (ONLY === 'fixed') {
      // The canary, the flood and the fixed cost: what a change to the alarms or the metric filters moves.
      const warmCpu = await runChild(warmCpuScript(bundle, SMOKE ? 200 : 2_000), env);
      const { canary, flood } = await canaryAndFlood(
        synthesized,
        bundle,
        env,
        standIn,
        memoryMb,
        accessLogFormat,
        warmCpu.cpuUs as number,
      );
      const fixedCosts = await fixedCostsOf(synthesized, standIn, canary);
      console.log(
        [
          formatCanary(canary),
          '',
          formatFlood(flood),
          '',
          ...PRICE_REGIONS.flatMap((region) => [formatFixedCost(fixedCosts[region]), '']),
        ].join('\n'),
      );
      if (jsonOut) writeFileSync(jsonOut, `${JSON.stringify({ canary, flood, fixedCosts }, null, 2)}\n`);
      return;
    }
    if (ONLY === 'storm') {
      const storm = await stormAlone(synthesized.template, synthesized.assembly.directory, standIn, {
        smoke: SMOKE,
        root: ROOT,
      });
      const one = await oneInstanceCases(synthesized.template, synthesized.assembly.directory, standIn, {
        smoke: SMOKE,
        root: ROOT,
      });
      console.log(
        `| fleet measure | value | goal |\n| --- | --- | --- |\n${formatStorm(storm)}\n${formatOneInstance(one)}`,
      );
      if (jsonOut) writeFileSync(jsonOut, `${JSON.stringify({ storm, one }, null, 2)}\n`);
      return;
    }
    if (ONLY === 'warm') {
      const warm = await measureWarm(warmOptions);
      const report = { bundleBytes, bundleKiB: bundleBytes / 1024, gzipBytes, warm };
      console.log(`bundle: ${bundleBytes} B (${(bundleBytes / 1024).toFixed(1)} KiB; gzip ${gzipBytes} B)\n`);
      console.log(formatWarm(warm));
      if (jsonOut) writeFileSync(jsonOut, `${JSON.stringify(report, null, 2)}\n`);
      return;
    }
    process.stderr.write(`cold import: ${PAIRS} alternating pairs...\n`);
    const bundleMs: number[] = [];
    const sdkMs: number[] = [];
    const pairRatios: number[] = [];
    for (let i = 0; i < PAIRS; i++) {
      // Alternate which goes first, so drift on a shared machine hits both sides alike.
      const [a, b] =
        i % 2 === 0
          ? [await runChild(importBundleScript(bundle), env), await runChild(importSdkScript, env)]
          : [undefined, await runChild(importSdkScript, env)];
      const bundled = a ?? (await runChild(importBundleScript(bundle), env));
      bundleMs.push(bundled.ms as number);
      sdkMs.push(b.ms as number);
      pairRatios.push((bundled.ms as number) / (b.ms as number));
    }

    process.stderr.write(`first response: ${FIRST_RUNS} fresh processes...\n`);
    const firsts: Array<Record<string, number>> = [];
    for (let i = 0; i < FIRST_RUNS; i++) {
      const r = await runChild(firstResponseScript(bundle), env);
      if (r.status !== 200) throw new Error(`first response answered ${r.status}`);
      firsts.push(r);
    }

    const warm = await measureWarm(warmOptions);
    const ourCpu = await ourCodeAlone();
    process.stderr.write(`reconcile: a fleet of ${FLEET_SIZE} instances...\n`);
    const reconcile = await reconcileFleet(reconcileBundle, registerBundle, standIn);
    process.stderr.write('fleet: scale and Z-API rate limits...\n');
    const fleet = await benchFleet(synthesized.template, synthesized.assembly.directory, standIn, {
      smoke: SMOKE,
      root: ROOT,
    });
    process.stderr.write('presence store: counting its work on a simulated stream...\n');
    const storeCounts = await measureStore(SMOKE ? 20 : 300);
    const store = {
      counts: storeCounts,
      ...storeCost(storeCounts),
      perMillionIn: Object.fromEntries(
        PRICE_REGIONS.map((region) => [region, storeCost(storeCounts, 256, LIST_PRICES[region]).perMillion]),
      ) as Record<PriceRegion, ReturnType<typeof storeCost>['perMillion']>,
    };
    process.stderr.write('live feed: latency through the twin, the publisher, the client bundle...\n');
    const feedLatency = await measureFeedLatency(SMOKE ? 50 : 1_000);
    const feedDom = await measureDomLatency(SMOKE ? 20 : 1_000);
    const feedPublisher = await measurePublisher(SMOKE ? 200 : 2_000);
    const feed = {
      latency: feedLatency,
      dom: feedDom,
      publisher: feedPublisher,
      client: measureClientBundle(),
      cost: feedCost(storeCounts, feedPublisher),
    };
    process.stderr.write('presence store: duplicates under concurrency (real time, a few minutes)...\n');
    const duplicates = await measureDuplicates(duplicateScenarios(SMOKE));
    process.stderr.write('canary and flood: the shipped canary, arrival and receiver bundles...\n');
    const { canary, flood } = await canaryAndFlood(
      synthesized,
      bundle,
      env,
      standIn,
      memoryMb,
      accessLogFormat,
      warm.cpuUs as number,
    );

    process.stderr.write('fixed cost: four variants synthesized, a healthy month of their bundles...\n');
    const fixedCosts = await fixedCostsOf(synthesized, standIn, canary);

    const results = {
      machine: {
        cpus: cpus().length,
        cpu: cpus()[0]?.model ?? 'unknown',
        node: process.version,
        smoke: SMOKE,
      },
      bundleBytes,
      bundleKiB: bundleBytes / 1024,
      gzipBytes,
      coldImport: {
        bundleMs: median(bundleMs),
        sdkMs: median(sdkMs),
        ratio: median(bundleMs) / median(sdkMs),
        medianPairRatio: median(pairRatios),
        pairs: PAIRS,
      },
      firstResponse: {
        totalMs: median(firsts.map((f) => f.totalMs as number)),
        importMs: median(firsts.map((f) => f.importMs as number)),
        firstCallMs: median(firsts.map((f) => f.firstCallMs as number)),
        rssMb: Math.max(...firsts.map((f) => f.rssKb as number)) / 1024,
      },
      warm: {
        handlerUs: warm.handlerUs as number,
        barePutEventsUs: warm.bareUs as number,
        ratio: (warm.handlerUs as number) / (warm.bareUs as number),
        calls: warm.calls as number,
        cpuUsPerWebhook: warm.cpuUs as number,
        ourCodeCpuUs: ourCpu.perInstanceUs,
        ourCodeSharedSecretCpuUs: ourCpu.sharedUs,
        perInstanceSecretRatio: ourCpu.perInstanceUs / ourCpu.sharedUs,
        logBytesPerWebhook: warm.logBytesPerWebhook as number,
        rssMb: (warm.rssKb as number) / 1024,
        interleaved: warm.interleaved,
        separate: warm.separate,
        breakdown: warm.breakdown,
      },
      memoryMb,
      accessLogFormat,
      reconcile,
      fleet,
      store,
      duplicates,
      canary,
      flood,
      fixedCosts,
      feed,
    };
    const costAt = (region: PriceRegion) =>
      costModel(
        {
          memoryMb,
          cpuMsPerWebhook: results.warm.cpuUsPerWebhook / 1000,
          receiverLogBytes: results.warm.logBytesPerWebhook,
          accessLogFormat,
          eventBytes: EVENT.body.length,
          fixedPerMonth: (fixedCosts[region][0] as { total: number }).total,
        },
        LIST_PRICES[region],
      );
    const costIn = Object.fromEntries(PRICE_REGIONS.map((region) => [region, costAt(region)])) as Record<
      PriceRegion,
      ReturnType<typeof costAt>
    >;
    const report = { ...results, cost: costIn['us-east-1'], costIn, seconds: (Date.now() - started) / 1000 };

    console.log(formatReport(report));
    console.log(`\n${formatWarm(warm)}`);
    console.log(`\n${formatFleet(fleet)}`);
    console.log(`\n${formatDuplicates(duplicates)}`);
    if (jsonOut) writeFileSync(jsonOut, `${JSON.stringify(report, null, 2)}\n`);
    const problems = [...sanity(report), ...fleetSanity(fleet)];
    if (problems.length > 0) {
      console.error(`bench: insane results:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
      process.exitCode = 1;
    }
  } finally {
    await standIn.close();
  }
}

// biome-ignore lint/suspicious/noExplicitAny: a report is plain JSON
type Report = Record<string, any>;

/** Checks that the numbers are numbers and the run did what it says; never judges a timing. */
function sanity(r: Report): string[] {
  const problems: string[] = [];
  const positive = (name: string, value: unknown) => {
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0)
      problems.push(`${name} = ${String(value)}`);
  };
  positive('bundleBytes', r.bundleBytes);
  positive('coldImport.bundleMs', r.coldImport.bundleMs);
  positive('coldImport.sdkMs', r.coldImport.sdkMs);
  positive('coldImport.ratio', r.coldImport.ratio);
  positive('firstResponse.totalMs', r.firstResponse.totalMs);
  positive('warm.handlerUs', r.warm.handlerUs);
  positive('warm.barePutEventsUs', r.warm.barePutEventsUs);
  positive('warm.ratio', r.warm.ratio);
  positive('warm.logBytesPerWebhook', r.warm.logBytesPerWebhook);
  positive('warm.rssMb', r.warm.rssMb);
  positive('warm.ourCodeCpuUs', r.warm.ourCodeCpuUs);
  positive('cost.perMillion', r.cost.perMillion.total);
  for (const region of PRICE_REGIONS) {
    positive(`costIn.${region}.perMillion`, r.costIn[region].perMillion.total);
    positive(`fixedCosts.${region}.default`, r.fixedCosts[region][0]?.total);
    positive(`store.perMillionIn.${region}`, r.store.perMillionIn[region].total);
  }
  positive('reconcile.sweepMs', r.reconcile.sweepMs);
  positive('store.perMillion.total', r.store.perMillion.total);
  if (r.store.counts.expired < 1) problems.push('the simulated stream expired no activity');
  positive('reconcile.bareMeMs', r.reconcile.bareMeMs);
  positive('canary.perMonth.total', r.canary.perMonth.total);
  positive('flood.total401', r.flood.total401);
  positive('feed.latency.feedP50', r.feed.latency.feedP50);
  positive('feed.publisher.serialPerSecond', r.feed.publisher.serialPerSecond);
  positive('feed.cost.perAgentPerMillion', r.feed.cost.perAgentPerMillion);
  if (r.feed.latency.callbacks < (r.machine.smoke ? 50 : 1_000))
    problems.push('the feed latency ran on too few callbacks');
  positive('flood.unknownInstance.total', r.flood.unknownInstance.total);
  if (r.canary.alarms !== 1) problems.push(`the template has ${r.canary.alarms} canary alarms, not 1`);
  if (r.flood.alarms !== 2) problems.push(`the template has ${r.flood.alarms} flood alarms, not 2`);
  if (r.reconcile.deployRegistered !== r.reconcile.instances)
    problems.push(`deploy registered ${r.reconcile.deployRegistered} of ${r.reconcile.instances}`);
  if (r.reconcile.sweepRegistered !== r.reconcile.instances)
    problems.push(`sweep found ${r.reconcile.sweepRegistered} of ${r.reconcile.instances} registered`);
  if (r.reconcile.driftCorrected !== Math.ceil(r.reconcile.instances / 10))
    problems.push(`drift sweep corrected ${r.reconcile.driftCorrected}`);
  if (r.reconcile.maxInFlight > r.reconcile.concurrency)
    problems.push(
      `Z-API saw ${r.reconcile.maxInFlight} calls at once, over the concurrency ${r.reconcile.concurrency}`,
    );
  return problems;
}

/** What a deployment costs in each priced region: the figures the README's first screen quotes. */
function formatByRegion(r: Report): string {
  const d = (n: number) => `$${n.toFixed(2)}`;
  return [
    'cost by region (list prices, no free tier; every line below in its own table):',
    '',
    '| region | fixed a month, default | fixed a month, with the presence store | per million callbacks | the presence store, per million callbacks |',
    '| --- | --- | --- | --- | --- |',
    ...PRICE_REGIONS.map(
      (region) =>
        `| ${region} | ${d(r.fixedCosts[region][0].total)} | ${d(r.fixedCosts[region][1].total)} | ${d(r.costIn[region].perMillion.total)} | ${d(r.store.perMillionIn[region].total)} |`,
    ),
  ].join('\n');
}

function formatReport(r: Report): string {
  const f = (n: number, d = 2) => n.toFixed(d);
  const goal = (ok: boolean) => (ok ? 'met' : 'NOT met');
  const lines = [
    `| measure | value | goal |`,
    `| --- | --- | --- |`,
    `| bundle size | ${r.bundleBytes} B (${f(r.bundleKiB, 1)} KiB; gzip ${r.gzipBytes} B) | <= 200 KiB: ${goal(r.bundleKiB <= 200)} |`,
    `| cold import: bundle vs SDK clients unbundled | ${f(r.coldImport.bundleMs, 1)} ms vs ${f(r.coldImport.sdkMs, 1)} ms = **${f(r.coldImport.ratio)}** (median of ${r.coldImport.pairs} pairs; median pair ratio ${f(r.coldImport.medianPairRatio)}) | <= 0.30: ${goal(r.coldImport.ratio <= 0.3)} |`,
    `| first response in a fresh process | ${f(r.firstResponse.totalMs, 1)} ms (import ${f(r.firstResponse.importMs, 1)} + secret fetch and publish ${f(r.firstResponse.firstCallMs, 1)}) | – |`,
    `| warm: per accepted webhook vs bare PutEvents (esbuild defaults), interleaved in one process | ${f(r.warm.interleaved.handlerUs.median, 0)} µs vs ${f(r.warm.interleaved.bareUs.median, 0)} µs = **${f(r.warm.interleaved.ratio.median, 3)}** (${f(r.warm.interleaved.ratio.min, 3)}–${f(r.warm.interleaved.ratio.max, 3)} over ${r.warm.interleaved.processes} processes) | <= 1.05: ${goal(r.warm.interleaved.ratio.median <= 1.05)} |`,
    `| warm: the same, each side in its own process | **${f(r.warm.separate.ratio.median, 3)}** (${f(r.warm.separate.ratio.min, 3)}–${f(r.warm.separate.ratio.max, 3)} over ${r.warm.separate.rounds} rounds) | <= 1.05: ${goal(r.warm.separate.ratio.median <= 1.05)} |`,
    `| CPU per accepted webhook (warm) | ${f(r.warm.cpuUsPerWebhook, 0)} µs, of which our code (adapter, core, secret check, metrics line; source, not bundle) ${f(r.warm.ourCodeCpuUs, 1)} µs | – |`,
    `| our code with per-instance secrets vs one shared secret | ${f(r.warm.ourCodeCpuUs, 1)} µs vs ${f(r.warm.ourCodeSharedSecretCpuUs, 1)} µs = **${f(r.warm.perInstanceSecretRatio, 2)}** | – |`,
    `| reconcile: sweep of ${r.reconcile.instances} healthy instances (Z-API ${r.reconcile.zapiLatencyMs} ms, concurrency ${r.reconcile.concurrency}) vs bare GET me calls | ${f(r.reconcile.sweepMs / 1000, 1)} s vs ${f(r.reconcile.bareMeMs / 1000, 1)} s = **${f(r.reconcile.ratio, 2)}** | 1,000 in <= 60 s: ${goal(r.reconcile.instances < 1000 || r.reconcile.sweepMs <= 60_000)} |`,
    `| reconcile: sweep with 10% drifted (PUT + GET me for those) | ${f(r.reconcile.driftSweepMs / 1000, 1)} s, ${r.reconcile.driftCorrected} corrected | – |`,
    `| deploy registration of ${r.reconcile.instances} new instances (PUT + GET me each) | ${f(r.reconcile.deployMs / 1000, 1)} s | – |`,
    `| presence store, per raw callback (${r.store.counts.callbacks} callbacks of a simulated stream) | ${f(r.store.perCallback.reads)} reads, ${f(r.store.perCallback.writes)} writes, ${f(r.store.perCallback.derived)} derived events, ${f(r.store.perCallback.expiryMessages)} expiry checks | – |`,
    `| presence store, latency its events queue adds (the shipped batching window) | at most ${BATCHING_WINDOW.toSeconds()} s: batches of 10 once 10 callbacks come within it | – |`,
    `| presence store, $ per million callbacks (us-east-1 list prices; batch of 10 assumed ${ASSUMED_BATCH_MS} ms) | ${f(r.store.perMillion.total, 3)}, of which the expiry mechanism (SQS delay queue and the check's read) ${f(r.store.expiryMechanismPerMillion, 3)} (${f(r.store.expiryMechanismAlonePerMillion, 3)} when every check comes in a batch of its own) | cents per million for expiry: ${goal(r.store.expiryMechanismAlonePerMillion < 1)} |`,
    `| presence store, $ per million callbacks (sa-east-1 list prices; the same counts) | ${f(r.store.perMillionIn['sa-east-1'].total, 3)} | – |`,
    `| peak memory (the process's own VmHWM) | first response ${f(r.firstResponse.rssMb, 1)} MB; after the warm loop ${f(r.warm.rssMb, 1)} MB | – |`,
    `| log bytes per accepted webhook (receiver) | ${f(r.warm.logBytesPerWebhook, 0)} B | <= 300: ${goal(r.warm.logBytesPerWebhook <= 300)} |`,
    '',
    formatCanary(r.canary),
    '',
    formatFlood(r.flood),
    '',
    formatByRegion(r),
    '',
    ...PRICE_REGIONS.flatMap((region) => [formatCost(r.costIn[region]), '']),
    ...PRICE_REGIONS.flatMap((region) => [formatFixedCost(r.fixedCosts[region]), '']),
    formatFeed(r.feed),
    '',
    `machine: ${r.machine.cpus} × ${r.machine.cpu}, Node ${r.machine.node}${r.machine.smoke ? ' (smoke run: few iterations, numbers are rough)' : ''}; ${f(r.seconds, 0)} s`,
  ];
  return lines.join('\n');
}

await main();
