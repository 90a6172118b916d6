/**
 * The canary's cost and the stage throttle's trade-off, for `npm run bench`.
 *
 * Canary: the shipped canary bundle runs against the shipped receiver behind the API stand-in
 * (127.0.0.1), and the shipped arrival bundle times each event: measured are the wall time of a warm
 * run of each function, and the log bytes each writes. Priced per month at us-east-1 list prices, with
 * the template's own count of what the canary adds (alarms, metric series in a healthy month).
 *
 * Flood: what an attacker who knows only the hostname costs and what it does to Z-API's callbacks.
 *   - a wrong-secret request (401), and a request for an id Z-API never sends (404 unknown-instance,
 *     refused before the secret is looked at): the shipped receiver's CPU and log bytes for one,
 *     measured warm; what a flood of either costs just below the stage throttle, an hour and a month;
 *   - the share of real callbacks refused (429) while the stage's token bucket (rate, burst) is shared
 *     with a flood, simulated request by request (seeded Poisson arrivals).
 */
import { pathToFileURL } from 'node:url';
import { startApiStandIn } from '../support/api-standin.ts';
import { type AwsStandIn, standInEnvironment } from '../support/aws-standin.ts';
import { runNodeScript } from '../support/invoke.ts';
import { ASSUMED_PUT_EVENTS_MS, accessLogBytes, PRICES } from './cost.ts';
import { LIST_PRICES, type ListPrices, PRICE_REGIONS, type PriceRegion } from './prices.ts';

/** Lambda gives one full vCPU at 1769 MB; below that, CPU time stretches proportionally. */
const FULL_VCPU_MB = 1769;
/** 730 hours: the month AWS prices by. */
const MINUTES_A_MONTH = 730 * 60;

export interface CanaryInputs {
  readonly canaryBundle: string;
  readonly arrivalBundle: string;
  readonly receiverBundle: string;
  readonly standIn: AwsStandIn;
  readonly receiverEnv: Record<string, string>;
  readonly runs: number;
  /** CPU per accepted webhook of the receiver, measured by the warm bench (ms). */
  readonly receiverCpuMs: number;
  /** From the synthesized template. */
  readonly intervalMinutes: number;
  readonly canaryMemoryMb: number;
  readonly arrivalMemoryMb: number;
  readonly receiverMemoryMb: number;
  /** Alarms the canary adds, and the metrics they read (each priced), counted from the template. */
  readonly alarms: number;
  readonly alarmMetrics: number;
  readonly accessLogFormat: string;
}

/** Times warm invocations of a bundle in one process; counts what it writes to stdout. */
const timedScript = (bundle: string, events: unknown[]) => `
  const { handler } = await import(${JSON.stringify(pathToFileURL(bundle).href)});
  const events = ${JSON.stringify(events)};
  let bytes = 0;
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = (chunk) => { bytes += Buffer.byteLength(chunk); return true; };
  const times = [];
  let failures = 0;
  for (const event of events) {
    const deadline = Date.now() + 30000;
    const t0 = performance.now();
    try { await handler(typeof event === 'function' ? event() : { ...event, time: new Date().toISOString() }, { awsRequestId: 'bench', getRemainingTimeInMillis: () => deadline - Date.now() }); }
    catch { failures++; }
    times.push(performance.now() - t0);
  }
  process.stdout.write = write;
  const warm = times.slice(1).sort((a, b) => a - b);
  const median = warm.length ? warm[Math.floor(warm.length / 2)] : times[0];
  console.log('RESULT ' + JSON.stringify({ firstMs: times[0], warmMs: median, bytesPerRun: bytes / events.length, failures }));
`;

async function timed(bundle: string, events: unknown[], env: Record<string, string>) {
  const { stdout, stderr } = await runNodeScript(timedScript(bundle, events), env);
  const line = stdout.split('\n').find((l) => l.startsWith('RESULT '));
  if (!line) throw new Error(`bench child printed no result: ${stderr || stdout}`);
  return JSON.parse(line.slice(7)) as {
    firstMs: number;
    warmMs: number;
    bytesPerRun: number;
    failures: number;
  };
}

/** Billed Lambda cost of one invocation of `ms` at `memoryMb` (1 ms granularity). */
function lambdaDollars(memoryMb: number, ms: number, prices: ListPrices = PRICES): number {
  return (
    prices.lambdaRequestsPerMillion / 1e6 +
    (memoryMb / 1024) * (Math.ceil(ms) / 1000) * prices.lambdaArmGbSecond
  );
}

export async function measureCanary(inputs: CanaryInputs) {
  const api = await startApiStandIn(inputs.receiverBundle, inputs.receiverEnv);
  try {
    const before = inputs.standIn.events.length;
    const env = {
      ...standInEnvironment(inputs.standIn.url),
      WEBHOOK_BASE_URL: api.url,
      WEBHOOK_SECRET_PARAMETER: '/zapi/webhook-secret',
      METRICS_NAMESPACE: 'Bench',
      CANARY_API_ID: 'bench',
    };
    const receiverBytesBefore = Buffer.byteLength(api.output());
    const canary = await timed(
      inputs.canaryBundle,
      Array.from({ length: inputs.runs }, () => ({})),
      env,
    );
    const receiverLogBytes = (Buffer.byteLength(api.output()) - receiverBytesBefore) / inputs.runs;
    const published = inputs.standIn.events.slice(before);
    if (canary.failures > 0 || published.length !== inputs.runs)
      throw new Error(
        `canary bench: ${canary.failures} failed runs, ${published.length} events for ${inputs.runs} runs`,
      );
    const arrivals = published.map((entry) => ({
      id: 'bench',
      source: entry.Source,
      detail: JSON.parse(entry.Detail ?? '{}'),
    }));
    const arrival = await timed(inputs.arrivalBundle, arrivals, {
      METRICS_NAMESPACE: 'Bench',
      CANARY_API_ID: 'bench',
    });

    const runsAMonth = MINUTES_A_MONTH / inputs.intervalMinutes;
    const gb = (bytes: number) => bytes / 1e9;
    const cpuShare = (mb: number) => Math.min(1, mb / FULL_VCPU_MB);
    // The canary's time is mostly waiting on the network (the POST): not stretched by the CPU share.
    const perMonthAt = (prices: ListPrices) => {
      const perRun = {
        canaryLambda: lambdaDollars(inputs.canaryMemoryMb, canary.warmMs, prices),
        arrivalLambda: lambdaDollars(
          inputs.arrivalMemoryMb,
          arrival.warmMs / cpuShare(inputs.arrivalMemoryMb),
          prices,
        ),
        httpApi: prices.httpApiPerMillion / 1e6,
        receiverLambda: lambdaDollars(
          inputs.receiverMemoryMb,
          ASSUMED_PUT_EVENTS_MS + inputs.receiverCpuMs / cpuShare(inputs.receiverMemoryMb),
          prices,
        ),
        putEvents: prices.eventBridgePerMillion / 1e6,
        logs:
          gb(
            canary.bytesPerRun +
              arrival.bytesPerRun +
              receiverLogBytes +
              accessLogBytes(inputs.accessLogFormat),
          ) * prices.logsPerGb,
      };
      const variable = Object.values(perRun).reduce((a, b) => a + b, 0) * runsAMonth;
      // Its metric series (none in a healthy month unless detailedMetrics) are counted with the fixed
      // cost, from what the shipped bundles print. Its alarm pays for each metric it reads.
      const alarms = inputs.alarmMetrics * prices.alarmPerMonth;
      return { variable, alarms, total: variable + alarms };
    };
    const perMonthIn = Object.fromEntries(
      PRICE_REGIONS.map((region) => [region, perMonthAt(LIST_PRICES[region])]),
    ) as Record<PriceRegion, ReturnType<typeof perMonthAt>>;
    return {
      runs: inputs.runs,
      intervalMinutes: inputs.intervalMinutes,
      runsAMonth,
      canaryWarmMs: canary.warmMs,
      canaryFirstMs: canary.firstMs,
      arrivalWarmMs: arrival.warmMs,
      logBytesPerRun: {
        canary: canary.bytesPerRun,
        arrival: arrival.bytesPerRun,
        receiver: receiverLogBytes,
        access: accessLogBytes(inputs.accessLogFormat),
      },
      /** us-east-1 list prices. */
      perMonth: perMonthIn['us-east-1'],
      perMonthIn,
      alarms: inputs.alarms,
      alarmMetrics: inputs.alarmMetrics,
    };
  } finally {
    await api.close();
  }
}

// --- the flood ----------------------------------------------------------------------------------

/** CPU µs and log bytes of one wrong-secret request through the shipped receiver, warm. */
const wrongSecretScript = (bundle: string, calls: number) => `
  const { handler } = await import(${JSON.stringify(pathToFileURL(bundle).href)});
  let bytes = 0;
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = (chunk) => { bytes += Buffer.byteLength(chunk); return true; };
  const event = (i) => ({
    pathParameters: { instanceId: '3C01A2B3C4D5E6F7A8B9C0D1E2F3A4B5' },
    queryStringParameters: { secret: 'wrong-' + i },
    headers: { 'content-type': 'application/json' },
    requestContext: { requestId: 'JxLb4gN3IAMEbDw=' },
    body: '{"type":"PresenceChatCallback"}',
    isBase64Encoded: false,
  });
  const call = async (i) => {
    const deadline = Date.now() + 10000;
    const r = await handler(event(i), { getRemainingTimeInMillis: () => deadline - Date.now() });
    if (r.statusCode !== 401) throw new Error('status ' + r.statusCode);
  };
  for (let i = 0; i < 200; i++) await call(i);
  bytes = 0;
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < ${calls}; i++) await call(i);
  const cpu = process.cpuUsage(cpu0);
  process.stdout.write = write;
  console.log('RESULT ' + JSON.stringify({ cpuUs: (cpu.user + cpu.system) / ${calls}, logBytes: bytes / ${calls} }));
`;

/**
 * CPU µs and log bytes of one request for an instance id Z-API never sends (`a.b`, 65 characters, `a~b`:
 * 404 unknown-instance, refused before the secret is looked at) through the shipped receiver, warm.
 */
const unknownInstanceScript = (bundle: string, calls: number) => `
  const { handler } = await import(${JSON.stringify(pathToFileURL(bundle).href)});
  let bytes = 0;
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = (chunk) => { bytes += Buffer.byteLength(chunk); return true; };
  const ids = ['a.b', 'A'.repeat(65), 'a~b'];
  const event = (i) => ({
    pathParameters: { instanceId: ids[i % ids.length] },
    queryStringParameters: { secret: 'any-' + i },
    headers: { 'content-type': 'application/json' },
    requestContext: { requestId: 'JxLb4gN3IAMEbDw=' },
    body: '{"type":"PresenceChatCallback"}',
    isBase64Encoded: false,
  });
  const call = async (i) => {
    const deadline = Date.now() + 10000;
    const r = await handler(event(i), { getRemainingTimeInMillis: () => deadline - Date.now() });
    if (r.statusCode !== 404) throw new Error('status ' + r.statusCode);
  };
  for (let i = 0; i < 200; i++) await call(i);
  bytes = 0;
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < ${calls}; i++) await call(i);
  const cpu = process.cpuUsage(cpu0);
  process.stdout.write = write;
  console.log('RESULT ' + JSON.stringify({ cpuUs: (cpu.user + cpu.system) / ${calls}, logBytes: bytes / ${calls} }));
`;

/** A seeded uniform random number generator (mulberry32). */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The share of Z-API's callbacks a stage token bucket (rate, burst) refuses while a flood of `floodRps`
 * shares it: both Poisson, request by request, for `seconds`.
 */
export function refusedShare(
  rate: number,
  burst: number,
  floodRps: number,
  zapiRps: number,
  seconds: number,
  seed = 1,
): number {
  const next = random(seed);
  const gap = (rps: number) => -Math.log(1 - next()) / rps;
  let tokens = burst;
  let now = 0;
  let flood = gap(floodRps);
  let zapi = gap(zapiRps);
  let zapiSent = 0;
  let zapiRefused = 0;
  while (Math.min(flood, zapi) < seconds) {
    const isZapi = zapi < flood;
    const at = isZapi ? zapi : flood;
    tokens = Math.min(burst, tokens + (at - now) * rate);
    now = at;
    const allowed = tokens >= 1;
    if (allowed) tokens -= 1;
    if (isZapi) {
      zapiSent++;
      if (!allowed) zapiRefused++;
      zapi += gap(zapiRps);
    } else {
      flood += gap(floodRps);
    }
  }
  return zapiSent === 0 ? 0 : zapiRefused / zapiSent;
}

export async function measureFlood(options: {
  /** Alarms the flood detection adds (Throttled, WrongSecrets), counted from the template. */
  alarms: number;
  receiverBundle: string;
  receiverEnv: Record<string, string>;
  memoryMb: number;
  accessLogFormat: string;
  rate: number;
  burst: number;
  calls: number;
  seconds: number;
}) {
  const refusal = async (script: string, status: string) => {
    const { stdout, stderr } = await runNodeScript(script, options.receiverEnv);
    const line = stdout.split('\n').find((l) => l.startsWith('RESULT '));
    if (!line) throw new Error(`flood bench printed no result: ${stderr || stdout}`);
    const { cpuUs, logBytes } = JSON.parse(line.slice(7)) as { cpuUs: number; logBytes: number };
    const share = Math.min(1, options.memoryMb / FULL_VCPU_MB);
    const durationMs = Math.max(1, Math.ceil(cpuUs / 1000 / share));
    const access = accessLogBytes(options.accessLogFormat.replace('$context.status', status));
    const perMillion = {
      httpApi: PRICES.httpApiPerMillion,
      lambdaRequests: PRICES.lambdaRequestsPerMillion,
      lambdaDuration: 1e6 * (options.memoryMb / 1024) * (durationMs / 1000) * PRICES.lambdaArmGbSecond,
      logs: ((logBytes + access) * 1e6 * PRICES.logsPerGb) / 1e9,
    };
    const total = Object.values(perMillion).reduce((a, b) => a + b, 0);
    return { cpuUs, logBytes, durationMs, perMillion, total };
  };
  const wrong = await refusal(wrongSecretScript(options.receiverBundle, options.calls), '401');
  const unknown = await refusal(unknownInstanceScript(options.receiverBundle, options.calls), '404');
  const { cpuUs, logBytes, durationMs, perMillion: perMillion401, total: total401 } = wrong;
  // A 429 never reaches the receiver: at most the request (if billed) and its access-log line.
  const perMillion429 =
    PRICES.httpApiPerMillion + (accessLogBytes(options.accessLogFormat) * 1e6 * PRICES.logsPerGb) / 1e9;
  const floods = [100, 1_000, 10_000];
  const rates = [
    [options.rate, options.burst],
    [options.rate * 4, options.burst * 4],
    [options.rate * 20, options.burst * 20],
  ] as const;
  const table = rates.map(([rate, burst]) => ({
    rate,
    burst,
    refused: floods.map((floodRps) => ({
      floodRps,
      share: refusedShare(rate, burst, floodRps, 2, options.seconds),
      // What an hour of that flood costs you: the requests let through are 401s, the rest 429s.
      dollarsPerHour:
        (Math.min(floodRps, rate) * 3600 * total401 + Math.max(0, floodRps - rate) * 3600 * perMillion429) /
        1e6,
    })),
  }));
  // A flood just below the stage throttle, all of it reaching the receiver: what it costs an hour and a
  // month (730 hours), in 401s or in unknown ids.
  const belowThrottle = Math.max(1, options.rate - 1);
  const atThrottle = (perMillion: number) => ({
    rps: belowThrottle,
    perHour: (belowThrottle * 3600 * perMillion) / 1e6,
    perMonth: (belowThrottle * 3600 * 730 * perMillion) / 1e6,
  });
  return {
    cpuUsPer401: cpuUs,
    logBytesPer401: logBytes,
    durationMs,
    perMillion401,
    total401,
    unknownInstance: {
      cpuUs: unknown.cpuUs,
      logBytes: unknown.logBytes,
      durationMs: unknown.durationMs,
      perMillion: unknown.perMillion,
      total: unknown.total,
    },
    belowThrottle401: atThrottle(total401),
    belowThrottle404: atThrottle(unknown.total),
    perMillion429,
    table,
    seconds: options.seconds,
    alarms: options.alarms,
    alarmsPerMonth: options.alarms * PRICES.alarmPerMonth,
  };
}

const d = (n: number, digits = 3) => `$${n.toFixed(digits)}`;

export function formatCanary(c: Awaited<ReturnType<typeof measureCanary>>): string {
  return [
    `canary, every ${c.intervalMinutes} minutes (${Math.round(c.runsAMonth)} runs a month; ${c.runs} runs measured against the shipped receiver on 127.0.0.1):`,
    '',
    '| measure | value |',
    '| --- | --- |',
    `| canary run, warm (SSM read + POST through API + receiver + PutEvents) | ${c.canaryWarmMs.toFixed(1)} ms (first run ${c.canaryFirstMs.toFixed(1)} ms) |`,
    `| arrival timer, warm | ${c.arrivalWarmMs.toFixed(2)} ms |`,
    `| log bytes per run: canary, arrival, receiver, access | ${c.logBytesPerRun.canary.toFixed(0)}, ${c.logBytesPerRun.arrival.toFixed(0)}, ${c.logBytesPerRun.receiver.toFixed(0)}, ${c.logBytesPerRun.access} B |`,
    `| **canary cost a month** | **${d(c.perMonth.total)}**: ${c.alarms} alarm reading ${c.alarmMetrics} metrics ${d(c.perMonth.alarms, 2)}, runs ${d(c.perMonth.variable)} (requests, Lambda, PutEvents, logs) |`,
  ].join('\n');
}

export function formatFlood(f: Awaited<ReturnType<typeof measureFlood>>): string {
  const floods = f.table[0]?.refused.map((r) => r.floodRps) ?? [];
  return [
    `someone who knows the hostname (wrong secrets, unknown ids; ${f.seconds} s simulated per cell, Z-API at 2 callbacks a second):`,
    '',
    `| measure | value |`,
    '| --- | --- |',
    `| a 401 in the shipped receiver, warm | ${f.cpuUsPer401.toFixed(0)} µs CPU (${f.durationMs} ms billed at the receiver's memory), ${f.logBytesPer401.toFixed(0)} log bytes |`,
    `| **a flood of 401s, $ per million** | **${d(f.total401)}** (HTTP API ${d(f.perMillion401.httpApi)}, Lambda ${d(f.perMillion401.lambdaRequests + f.perMillion401.lambdaDuration)}, logs ${d(f.perMillion401.logs)}) |`,
    `| a 404 unknown-instance (ids \`a.b\`, 65 characters, \`a~b\`) in the shipped receiver, warm | ${f.unknownInstance.cpuUs.toFixed(0)} µs CPU (${f.unknownInstance.durationMs} ms billed), ${f.unknownInstance.logBytes.toFixed(0)} log bytes |`,
    `| **a flood of unknown ids (404), $ per million** | **${d(f.unknownInstance.total)}** (HTTP API ${d(f.unknownInstance.perMillion.httpApi)}, Lambda ${d(f.unknownInstance.perMillion.lambdaRequests + f.unknownInstance.perMillion.lambdaDuration)}, logs ${d(f.unknownInstance.perMillion.logs)}) |`,
    `| a flood just below the stage throttle (${f.belowThrottle401.rps}/s), all of it reaching the receiver | 401s: ${d(f.belowThrottle401.perHour, 2)} an hour, ${d(f.belowThrottle401.perMonth, 0)} a month; unknown ids (404): ${d(f.belowThrottle404.perHour, 2)} an hour, ${d(f.belowThrottle404.perMonth, 0)} a month; both counted by \`UnauthenticatedRequests\` (alarm \`WrongSecrets\`) |`,
    `| refused by the throttle (429), $ per million, if API Gateway bills them | ${d(f.perMillion429)} |`,
    `| the flood alarms (Throttled, WrongSecrets) a month | ${d(f.alarmsPerMonth, 2)} (${f.alarms} alarms; the metric filters write a datapoint only when a 429, 401 or 404 happens: no series in a quiet month) |`,
    '',
    `| stage throttle (rate/burst) | ${floods.map((n) => `flood ${n}/s: Z-API callbacks refused · $ an hour`).join(' | ')} |`,
    `| --- | ${floods.map(() => '---').join(' | ')} |`,
    ...f.table.map(
      (row) =>
        `| ${row.rate}/${row.burst} | ${row.refused.map((r) => `${(r.share * 100).toFixed(1)} % · ${d(r.dollarsPerHour, 2)}`).join(' | ')} |`,
    ),
  ].join('\n');
}
