/**
 * The fixed cost a month, for `npm run bench`: what a deployment costs before its first callback,
 * computed from what ships, never typed.
 *
 *   from the synthesized template   alarms (per metric each reads), KMS keys, dashboards, the SQS polls of
 *                                   Lambda's event sources, the scheduled runs (canary, drift sweep)
 *   from the shipped bundles        the custom-metric series they print in a healthy month: each bundle is
 *                                   run with its environment from the template (stand-ins on 127.0.0.1)
 *                                   through the month's kinds of run, and every series its EMF lines
 *                                   name is priced by the hours a month that kind of run happens in
 *
 * List prices of each region the bench prices (./prices.ts: us-east-1 and sa-east-1), without the free
 * tier (the first 10 alarms, 10 metrics and 3 dashboards of an account are free; not counted here).
 */

import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { Template } from 'aws-cdk-lib/assertions';
import dynalite from 'dynalite';
import { STATE_ENV } from '../../functions/presence-store/settings.ts';
import {
  DERIVED_DETAIL_TYPES,
  DERIVED_EVENT_SOURCE,
  EVENT_SOURCE,
} from '../../functions/shared/contract/presence-contract.ts';
import { deriveInstanceSecret } from '../../functions/shared/secrets/webhook-secret.ts';
import { startApiStandIn } from '../support/api-standin.ts';
import { STANDIN_CREDENTIALS, startAppSyncStandIn } from '../support/appsync-standin.ts';
import { type AwsStandIn, standInEnvironment } from '../support/aws-standin.ts';
import { bundleDirectory } from '../support/bundle.ts';
import { invokeBundle } from '../support/invoke.ts';
import { createPresenceTable } from '../support/presence-table.ts';
import { startZapiStandIn } from '../support/zapi-standin.ts';
import { startSqs } from './presence-store-speed.ts';
import { LIST_PRICES, type ListPrices, PRICE_REGIONS, type PriceRegion, US_EAST_1 } from './prices.ts';

/** What the fixed cost prices by the month, from a region's list prices. */
export function monthlyPrices(prices: ListPrices = US_EAST_1) {
  return {
    /** A standard-resolution alarm, per metric it reads (a metric-math alarm pays for each). */
    alarmMetric: prices.alarmPerMonth,
    /** A high-resolution alarm (period under 60 s), per metric. */
    highResolutionAlarmMetric: prices.highResolutionAlarmPerMonth,
    /** A customer-managed KMS key (rotation included for the first two rotations). */
    kmsKey: prices.kmsKeyPerMonth,
    /** A dashboard, beyond an account's first three. */
    dashboard: prices.dashboardPerMonth,
    /** A custom metric series, prorated by the hour it reports in. */
    customMetric: prices.metricPerMonth,
    /** SQS requests, per million (standard queue). */
    sqsRequestsPerMillion: prices.sqsPerMillion,
  } as const;
}

export const HOURS_A_MONTH = 730;
const MINUTES_A_MONTH = HOURS_A_MONTH * 60;
/**
 * Lambda's SQS event source polls each queue with five long polls of up to 20 s while it is idle (AWS
 * documents both): about 657,000 ReceiveMessage requests a month per queue, billed as SQS requests.
 */
const SQS_IDLE_POLLERS = 5;
const SQS_LONG_POLL_SECONDS = 20;

// biome-ignore lint/suspicious/noExplicitAny: a CloudFormation template is plain JSON
type Resources = Record<string, { Type: string; Properties?: any }>;

export interface TemplateCost {
  readonly alarms: { count: number; metricsRead: number; dollars: number };
  readonly kmsKeys: { count: number; dollars: number };
  readonly dashboards: { count: number; dollars: number };
  readonly sqsPolling: { queues: number; requestsAMonth: number; dollars: number };
  /** Metric filters (on the access log): their series report only in an hour with a matching line. */
  readonly metricFilters: { count: number; metrics: string[] };
  readonly schedules: ReadonlyArray<{ rule: string; runsAMonth: number; target: string; memoryMb: number }>;
}

/** Every line of the template that is priced by the month. */
export function templateCost(template: Template, prices: ListPrices = US_EAST_1): TemplateCost {
  const MONTHLY_PRICES = monthlyPrices(prices);
  const resources = (template.toJSON() as { Resources: Resources }).Resources;
  const of = (type: string) => Object.entries(resources).filter(([, r]) => r.Type === type);
  let metricsRead = 0;
  let alarmDollars = 0;
  for (const [, alarm] of of('AWS::CloudWatch::Alarm')) {
    const p = alarm.Properties ?? {};
    const stats = Array.isArray(p.Metrics)
      ? (p.Metrics as Array<{ MetricStat?: { Period?: number } }>).filter((m) => m.MetricStat !== undefined)
      : [{ MetricStat: { Period: p.Period } }];
    for (const stat of stats) {
      metricsRead += 1;
      alarmDollars +=
        (stat.MetricStat?.Period ?? 60) < 60
          ? MONTHLY_PRICES.highResolutionAlarmMetric
          : MONTHLY_PRICES.alarmMetric;
    }
  }
  const keys = of('AWS::KMS::Key').length;
  const dashboards = of('AWS::CloudWatch::Dashboard').length;
  const sqsSources = of('AWS::Lambda::EventSourceMapping').filter(([, m]) => {
    const source = m.Properties?.EventSourceArn?.['Fn::GetAtt']?.[0];
    return typeof source === 'string' && resources[source]?.Type === 'AWS::SQS::Queue';
  }).length;
  const requestsAMonth = sqsSources * SQS_IDLE_POLLERS * (MINUTES_A_MONTH * (60 / SQS_LONG_POLL_SECONDS));
  const memoryOf = (logicalId: string) => Number(resources[logicalId]?.Properties?.MemorySize ?? 128);
  const schedules = of('AWS::Events::Rule').flatMap(([id, rule]) => {
    const expression = rule.Properties?.ScheduleExpression;
    if (typeof expression !== 'string') return [];
    const rate = /^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$/.exec(expression);
    if (!rate)
      throw new Error(`fixed cost: schedule ${id} has an expression this bench cannot price: ${expression}`);
    const minutes =
      Number(rate[1]) * (rate[2]?.startsWith('minute') ? 1 : rate[2]?.startsWith('hour') ? 60 : 1440);
    const targets = (rule.Properties?.Targets ?? []) as Array<{ Arn?: { 'Fn::GetAtt'?: [string, string] } }>;
    return targets.map((target) => {
      const fn = target.Arn?.['Fn::GetAtt']?.[0] ?? 'unknown';
      return { rule: id, runsAMonth: MINUTES_A_MONTH / minutes, target: fn, memoryMb: memoryOf(fn) };
    });
  });
  return {
    alarms: { count: of('AWS::CloudWatch::Alarm').length, metricsRead, dollars: alarmDollars },
    kmsKeys: { count: keys, dollars: keys * MONTHLY_PRICES.kmsKey },
    dashboards: { count: dashboards, dollars: dashboards * MONTHLY_PRICES.dashboard },
    sqsPolling: {
      queues: sqsSources,
      requestsAMonth,
      dollars: (requestsAMonth / 1e6) * MONTHLY_PRICES.sqsRequestsPerMillion,
    },
    schedules,
    metricFilters: {
      count: of('AWS::Logs::MetricFilter').length,
      metrics: of('AWS::Logs::MetricFilter').flatMap(([, f]) =>
        ((f.Properties?.MetricTransformations ?? []) as Array<{ MetricName: string }>).map(
          (t) => t.MetricName,
        ),
      ),
    },
  };
}

/** Every custom-metric series an EMF line names: `namespace|metric|dimension=value,...`. */
export function seriesIn(output: string): string[] {
  const found: string[] = [];
  for (const line of output.split('\n')) {
    const start = line.indexOf('{');
    if (start < 0 || !line.includes('"_aws"')) continue;
    let record: Record<string, unknown>;
    try {
      record = JSON.parse(line.slice(start)) as Record<string, unknown>;
    } catch {
      continue;
    }
    const directives = (record._aws as { CloudWatchMetrics?: unknown })?.CloudWatchMetrics;
    if (!Array.isArray(directives)) continue;
    for (const d of directives as Array<{
      Namespace: string;
      Dimensions: string[][];
      Metrics: Array<{ Name: string }>;
    }>) {
      for (const dimensions of d.Dimensions) {
        for (const metric of d.Metrics) {
          const dims = dimensions.map((name) => `${name}=${String(record[name])}`).join(',');
          found.push(`${d.Namespace}|${metric.Name}|${dims}`);
        }
      }
    }
  }
  return found;
}

/** A kind of run in a healthy month, and the hours of the month it happens in. */
export interface MonthRun {
  readonly kind: string;
  readonly hoursAMonth: number;
  readonly output: string;
}

export interface SeriesCost {
  readonly series: ReadonlyArray<{ series: string; hoursAMonth: number; dollars: number }>;
  readonly dollars: number;
}

/** Each series at the most hours any run that prints it happens in (CloudWatch prorates by the hour). */
export function seriesCost(runs: readonly MonthRun[], prices: ListPrices = US_EAST_1): SeriesCost {
  const MONTHLY_PRICES = monthlyPrices(prices);
  const hours = new Map<string, number>();
  for (const run of runs) {
    for (const series of seriesIn(run.output)) {
      hours.set(series, Math.min(HOURS_A_MONTH, Math.max(hours.get(series) ?? 0, run.hoursAMonth)));
    }
  }
  const series = [...hours].map(([name, h]) => ({
    series: name,
    hoursAMonth: h,
    dollars: (MONTHLY_PRICES.customMetric * h) / HOURS_A_MONTH,
  }));
  return { series, dollars: series.reduce((sum, s) => sum + s.dollars, 0) };
}

function functionEnvironment(template: Template, prefix: string | RegExp): Record<string, string> {
  const resources = (template.toJSON() as { Resources: Resources }).Resources;
  const found = Object.entries(resources).find(
    ([id, r]) =>
      r.Type === 'AWS::Lambda::Function' &&
      (typeof prefix === 'string' ? id.startsWith(prefix) : prefix.test(id)),
  );
  if (!found) throw new Error(`fixed cost: no ${prefix} function in the template`);
  const variables = (found[1].Properties?.Environment?.Variables ?? {}) as Record<string, unknown>;
  // Literal values only: names of resources (tokens) are the stand-ins' in this run.
  return Object.fromEntries(
    Object.entries(variables).filter((entry): entry is [string, string] => typeof entry[1] === 'string'),
  );
}

export interface HealthyMonthInputs {
  readonly template: Template;
  readonly assemblyDirectory: string;
  readonly standIn: AwsStandIn;
  readonly master: string;
  /** Hours a month with callbacks (an upper bound: every hour). */
  readonly trafficHours?: number;
}

const INSTANCES = ['3C01A2B3C4D5E6F7A8B9C0D1E2F3A4B5', '3C01A2B3C4D5E6F7A8B9C0D1E2F3A4B6'];
const STATUSES = ['AVAILABLE', 'UNAVAILABLE', 'COMPOSING', 'RECORDING', 'PAUSED'] as const;

function callback(instanceId: string, secret: string, status: string, body?: string) {
  return {
    version: '2.0',
    routeKey: 'POST /instances/{instanceId}/presence',
    rawPath: `/instances/${instanceId}/presence`,
    pathParameters: { instanceId },
    queryStringParameters: { secret },
    headers: { 'content-type': 'application/json' },
    requestContext: { requestId: `fixed-cost-${status}`, timeEpoch: Date.now() },
    body:
      body ??
      JSON.stringify({
        type: 'PresenceChatCallback',
        phone: '5544999999999',
        status,
        lastSeen: null,
        instanceId,
      }),
    isBase64Encoded: false,
  };
}

/**
 * Runs the shipped bundles through a healthy month of a team with two instances: callbacks of every
 * status (and a stray wrong secret and bad body, which any public URL gets), the canary and its arrival,
 * a deploy's registration, the hourly sweeps, a token change. Returns what each kind of run printed.
 */
export async function healthyMonth(inputs: HealthyMonthInputs): Promise<MonthRun[]> {
  const { template, assemblyDirectory: dir, standIn, master } = inputs;
  const resources = (template.toJSON() as { Resources: Resources }).Resources;
  const has = (prefix: string) =>
    Object.entries(resources).some(([id, r]) => r.Type === 'AWS::Lambda::Function' && id.startsWith(prefix));
  const bundle = (prefix: string) => join(bundleDirectory(template, dir, prefix), 'index.mjs');
  const stateFunction = Object.keys(resources).find(
    (id) => resources[id]?.Type === 'AWS::Lambda::Function' && STATE_FUNCTION.test(id),
  );
  const aws = standInEnvironment(standIn.url);
  const bus = 'fixed-cost-bus';
  const receiverEnv = {
    ...functionEnvironment(template, 'PresenceReceiver'),
    ...aws,
    EVENT_BUS_NAME: bus,
    WEBHOOK_SECRET_PARAMETER: '/zapi/webhook-secret',
  };
  const runs: MonthRun[] = [];
  const traffic = inputs.trafficHours ?? HOURS_A_MONTH;

  const [first] = INSTANCES as [string];
  const secret = deriveInstanceSecret(master, first);
  const receiver = await invokeBundle(
    bundle('PresenceReceiver'),
    STATUSES.map((status) => callback(first, secret, status)),
    receiverEnv,
  );
  runs.push({ kind: 'callbacks of every status', hoursAMonth: traffic, output: receiver.stdout });
  // Not healthy, but what one hour with a stranger's wrong secret and a refused callback adds.
  const refused = await invokeBundle(
    bundle('PresenceReceiver'),
    [
      callback(first, 'wrong-secret-wrong-secret-wrong-secret-00', 'COMPOSING'),
      callback(first, secret, 'TYPING', '{"type":"PresenceChatCallback"}'),
    ],
    receiverEnv,
  );
  runs.push({ kind: 'one hour with a 401 and a refused callback', hoursAMonth: 1, output: refused.stdout });

  if (has('CanaryFunction')) {
    const api = await startApiStandIn(bundle('PresenceReceiver'), receiverEnv);
    try {
      const before = standIn.events.length;
      const canaryEnv = {
        ...functionEnvironment(template, 'CanaryFunction'),
        ...aws,
        WEBHOOK_BASE_URL: api.url,
        WEBHOOK_SECRET_PARAMETER: '/zapi/webhook-secret',
        CANARY_API_ID: 'fixed-cost',
      };
      const run = await invokeBundle(bundle('CanaryFunction'), [{}], canaryEnv);
      const published = standIn.events.slice(before);
      if (published.length !== 1)
        throw new Error(`fixed cost: the canary run published ${published.length} events: ${run.stdout}`);
      const arrival = await invokeBundle(
        bundle('CanaryArrival'),
        published.map((entry) => ({
          id: 'fixed-cost',
          source: entry.Source,
          time: new Date().toISOString(),
          detail: JSON.parse(entry.Detail ?? '{}'),
        })),
        { ...functionEnvironment(template, 'CanaryArrival'), CANARY_API_ID: 'fixed-cost' },
      );
      runs.push({
        kind: 'canary runs, their callbacks and arrivals',
        hoursAMonth: HOURS_A_MONTH,
        output: `${run.stdout}\n${api.output()}\n${arrival.stdout}`,
      });
    } finally {
      await api.close();
    }
  }

  if (has('FleetReconciler')) {
    const zapi = await startZapiStandIn();
    // Z-API answering in 50 ms, as in the fleet bench: the sweep's duration is billed.
    zapi.latencyMs = 50;
    try {
      for (const id of INSTANCES) {
        standIn.put(`/zapi/${id}/token`, `TOKEN${id}`);
        zapi.add(id, `TOKEN${id}`);
      }
      const fleetEnv = (prefix: string) => ({
        ...functionEnvironment(template, prefix),
        ...aws,
        WEBHOOK_BASE_URL: 'https://fixedcost.execute-api.us-east-1.amazonaws.com',
        WEBHOOK_SECRET_PARAMETER: '/zapi/webhook-secret',
        ZAPI_BASE_URL: zapi.url,
        SETTLE_MARGIN_MS: '0',
      });
      const deploy = await invokeBundle(
        bundle('FleetRegistrar'),
        [{ RequestType: 'Create', ResourceProperties: { Fleet: 'true', DeployNonce: 'fixed-cost' } }],
        { ...fleetEnv('FleetRegistrar'), RECONCILER_FUNCTION_NAME: '' },
      );
      runs.push({ kind: 'a deploy', hoursAMonth: 1, output: deploy.stdout });
      const sweep = await invokeBundle(
        bundle('FleetReconciler'),
        [{ source: 'aws.events', 'detail-type': 'Scheduled Event', detail: {} }],
        fleetEnv('FleetReconciler'),
      );
      const swept = sweep.results[0] as { registered?: number };
      if (swept.registered !== INSTANCES.length)
        throw new Error(
          `fixed cost: the sweep found ${String(swept.registered)} registered: ${sweep.stdout}`,
        );
      runs.push({ kind: 'hourly drift sweeps', hoursAMonth: HOURS_A_MONTH, output: sweep.stdout });
      const change = await invokeBundle(
        bundle('FleetReconciler'),
        [
          {
            source: 'aws.ssm',
            'detail-type': 'Parameter Store Change',
            detail: { name: `/zapi/${first}/token`, operation: 'Update', type: 'SecureString' },
          },
        ],
        fleetEnv('FleetReconciler'),
      );
      runs.push({ kind: 'a token change', hoursAMonth: 1, output: change.stdout });
    } finally {
      await zapi.close();
    }
  }
  if (has('LiveFeedPublisher')) {
    runs.push({
      kind: 'live feed: derived events and news published',
      hoursAMonth: traffic,
      output: await healthyFeed(
        bundle('LiveFeedPublisher'),
        functionEnvironment(template, 'LiveFeedPublisher'),
      ),
    });
  }
  if (stateFunction !== undefined) {
    runs.push({
      kind: 'presence state: callbacks and expiry checks',
      hoursAMonth: traffic,
      output: await healthyState(bundle(stateFunction), functionEnvironment(template, STATE_FUNCTION), aws),
    });
  }
  return runs;
}

/** The shipped publisher bundle against the AppSync stand-in: a typing session's derived events and news. */
async function healthyFeed(publisherBundle: string, templateEnv: Record<string, string>): Promise<string> {
  const appsync = await startAppSyncStandIn('us-east-1');
  try {
    const at = new Date().toISOString();
    const derived = (type: string, sequence: number, current: Record<string, unknown>, extra = {}) => ({
      id: randomUUID(),
      source: DERIVED_EVENT_SOURCE,
      'detail-type': type,
      detail: { instanceId: INSTANCES[0], phone: '5544999999999', at, sequence, current, ...extra },
    });
    const { stdout, results } = await invokeBundle(
      publisherBundle,
      [
        derived(DERIVED_DETAIL_TYPES.cameOnline, 1, { online: true, activity: null }),
        derived(
          DERIVED_DETAIL_TYPES.activityStarted,
          2,
          { online: true, activity: 'typing' },
          { activity: 'typing' },
        ),
        {
          id: randomUUID(),
          source: EVENT_SOURCE,
          'detail-type': 'Z-API Chat Presence COMPOSING',
          detail: {
            instanceId: INSTANCES[0],
            phone: '5544999999999',
            status: 'COMPOSING',
            receivedAt: Date.now(),
          },
        },
      ],
      {
        ...templateEnv,
        AWS_REGION: 'us-east-1',
        AWS_ACCESS_KEY_ID: STANDIN_CREDENTIALS.accessKeyId,
        AWS_SECRET_ACCESS_KEY: STANDIN_CREDENTIALS.secretAccessKey,
        FEED_HTTP_DOMAIN: appsync.url,
        // A healthy month refuses nothing: the dead letters are never written to.
        FEED_DEAD_LETTERS_URL: 'https://sqs.us-east-1.amazonaws.com/123456789012/unused',
      },
    );
    if (results.some((r) => (r as { outcome?: string }).outcome !== 'published'))
      throw new Error(`fixed cost: the publisher did not publish: ${JSON.stringify(results)}`);
    return stdout;
  } finally {
    await appsync.close();
  }
}

/** The presence store's state function (logical id `State` + 8 hex; `StateRead...` is the read API). */
const STATE_FUNCTION = /^State[0-9A-F]{8}$/;

/** The shipped state bundle against dynalite and an SQS stand-in: a chat typing, pausing, and its expiry check. */
async function healthyState(
  stateBundle: string,
  templateEnv: Record<string, string>,
  aws: Record<string, string>,
): Promise<string> {
  const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const dynamoUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const sqs = await startSqs({ byOp: new Map() }, Date.now);
  const client = new DynamoDBClient({
    region: 'us-east-1',
    endpoint: dynamoUrl,
    credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
  });
  try {
    await createPresenceTable(client, 'presence');
    const base = Date.now() - 60_000;
    const record = (body: unknown) => ({
      messageId: randomUUID(),
      receiptHandle: randomUUID(),
      body: JSON.stringify(body),
      attributes: { ApproximateReceiveCount: '1' },
    });
    const event = (status: string, at: number) =>
      record({
        id: randomUUID(),
        time: new Date(Math.floor(at / 1_000) * 1_000).toISOString(),
        source: EVENT_SOURCE,
        'detail-type': `Z-API Chat Presence ${status}`,
        detail: { instanceId: INSTANCES[0], phone: '5544999999999', status, receivedAt: at },
      });
    const env = {
      ...templateEnv,
      ...aws,
      AWS_ENDPOINT_URL_DYNAMODB: dynamoUrl,
      AWS_ENDPOINT_URL_SQS: sqs.url,
      [STATE_ENV.tableName]: 'presence',
      [STATE_ENV.eventBusName]: 'fixed-cost-bus',
      [STATE_ENV.expiryQueueUrl]: `${sqs.url}/123456789012/expiry`,
    };
    const first = await invokeBundle(
      stateBundle,
      [
        {
          Records: [
            event('AVAILABLE', base),
            event('COMPOSING', base + 1_000),
            event('PAUSED', base + 3_000),
          ],
        },
      ],
      env,
    );
    // The expiry checks it scheduled, delivered now.
    const checks = sqs.queued.splice(0).map((q) => record(JSON.parse(q.body)));
    const second = await invokeBundle(stateBundle, [{ Records: checks }], env);
    for (const result of [...first.results, ...second.results]) {
      const failures = (result as { batchItemFailures?: unknown[] }).batchItemFailures;
      if (failures === undefined || failures.length > 0)
        throw new Error(
          `fixed cost: the state bundle failed records: ${JSON.stringify(result)} ${first.stdout}`,
        );
    }
    return `${first.stdout}\n${second.stdout}`;
  } finally {
    client.destroy();
    await sqs.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

export interface FixedCost {
  readonly variant: string;
  readonly region: PriceRegion;
  readonly template: TemplateCost;
  readonly series: SeriesCost;
  /** The scheduled runs' own requests and Lambda time (the canary's through the whole path is in the canary bench). */
  readonly scheduledRunsDollars: number;
  readonly total: number;
  readonly runs: ReadonlyArray<{ kind: string; hoursAMonth: number; series: number }>;
}

export function fixedCost(
  variant: string,
  template: TemplateCost,
  runs: readonly MonthRun[],
  /** $ a month of the runs the schedules make (requests, Lambda, logs), measured elsewhere in the bench. */
  scheduledRunsDollars: number,
  prices: ListPrices = US_EAST_1,
): FixedCost {
  const series = seriesCost(runs, prices);
  const total =
    template.alarms.dollars +
    template.kmsKeys.dollars +
    template.dashboards.dollars +
    template.sqsPolling.dollars +
    series.dollars +
    scheduledRunsDollars;
  return {
    variant,
    region: prices.region,
    template,
    series,
    scheduledRunsDollars,
    total,
    runs: runs.map((r) => ({
      kind: r.kind,
      hoursAMonth: r.hoursAMonth,
      series: new Set(seriesIn(r.output)).size,
    })),
  };
}

export function formatFixedCost(costs: readonly FixedCost[]): string {
  const d = (n: number) => `$${n.toFixed(2)}`;
  const region = costs[0]?.region ?? 'us-east-1';
  const lines = [
    `fixed cost a month (computed from the synthesized template and the series the shipped bundles print in a healthy month of two instances; ${region} list prices, no free tier):`,
    '',
    `| | ${costs.map((c) => c.variant).join(' | ')} |`,
    `| --- | ${costs.map(() => '---').join(' | ')} |`,
    `| alarms | ${costs.map((c) => `${c.template.alarms.count} reading ${c.template.alarms.metricsRead} metrics: ${d(c.template.alarms.dollars)}`).join(' | ')} |`,
    `| custom-metric series (a healthy month, plus one hour with a 401 and a refused callback) | ${costs.map((c) => `${c.series.series.length}: ${d(c.series.dollars)}`).join(' | ')} |`,
    `| KMS keys | ${costs.map((c) => `${c.template.kmsKeys.count}: ${d(c.template.kmsKeys.dollars)}`).join(' | ')} |`,
    `| dashboards | ${costs.map((c) => `${c.template.dashboards.count}: ${d(c.template.dashboards.dollars)}`).join(' | ')} |`,
    `| SQS polls of idle event sources | ${costs.map((c) => `${c.template.sqsPolling.queues} queues: ${d(c.template.sqsPolling.dollars)}`).join(' | ')} |`,
    `| metric filters (a series only in an hour with a 429, 401 or 404) | ${costs.map((c) => `${c.template.metricFilters.count} (${c.template.metricFilters.metrics.join(', ')}): $0.00`).join(' | ')} |`,
    `| scheduled runs (canary through the whole path, sweeps) | ${costs.map((c) => d(c.scheduledRunsDollars)).join(' | ')} |`,
    `| **fixed cost a month** | ${costs.map((c) => `**${d(c.total)}**`).join(' | ')} |`,
    '',
    `default goal <= $3.00: ${(costs[0]?.total ?? Number.POSITIVE_INFINITY) <= 3 ? 'met' : 'NOT met'}`,
  ];
  for (const c of costs) {
    if (c.series.series.length === 0) continue;
    lines.push(
      '',
      `series of "${c.variant}":`,
      ...c.series.series.map((s) => `- ${s.series} (${s.hoursAMonth} h: ${d(s.dollars)})`),
    );
  }
  return lines.join('\n');
}

/**
 * The scheduled runs' own cost a month. `measured`, by target function (logical id prefix): the whole
 * path of one run a month when the bench measured it (the canary: its Lambda, the API, the receiver,
 * PutEvents, the arrival, the logs), or the measured duration of one run (billed Lambda time and request).
 */
export function scheduledRunsDollars(
  template: TemplateCost,
  measured: Readonly<Record<string, { perMonth: number } | { ms: number }>>,
  prices: ListPrices = US_EAST_1,
): number {
  let dollars = 0;
  for (const schedule of template.schedules) {
    const found = Object.entries(measured).find(([prefix]) => schedule.target.startsWith(prefix))?.[1];
    if (found === undefined)
      throw new Error(`fixed cost: nothing measured for the scheduled ${schedule.target}`);
    dollars +=
      'perMonth' in found
        ? found.perMonth
        : schedule.runsAMonth *
          (prices.lambdaRequestsPerMillion / 1e6 +
            (schedule.memoryMb / 1024) * (Math.ceil(found.ms) / 1000) * prices.lambdaArmGbSecond);
  }
  return dollars;
}

/** The duration a reconcile run logged (its `RunDuration` field), in ms. */
export function runDurationMs(output: string): number {
  const match = /"RunDuration":(\d+)/.exec(output);
  if (!match) throw new Error(`fixed cost: no RunDuration in the run's output: ${output.slice(0, 500)}`);
  return Number(match[1]);
}

/** The variants priced: what ships by default, with the presence store, and with every opt-in on. */
export const FIXED_COST_VARIANTS: ReadonlyArray<{ name: string; context: Record<string, string> }> = [
  { name: 'default', context: {} },
  { name: 'presence store', context: { presenceStore: 'true' } },
  { name: 'live feed (with the presence store)', context: { presenceStore: 'true', liveFeed: 'true' } },
  {
    name: 'every opt-in (store, live feed, detailedMetrics, dashboard, encryptLogs)',
    context: {
      presenceStore: 'true',
      liveFeed: 'true',
      detailedMetrics: 'true',
      dashboard: 'true',
      encryptLogs: 'true',
    },
  },
];

/**
 * The fixed cost of each variant in each priced region: `synthesize` builds its template (with bundles),
 * the healthy month runs its bundles (once: what they print does not depend on the region), and
 * `canaryRunsPerMonth` is the canary's measured whole-path cost a month at each region's prices.
 */
export async function measureFixedCosts(options: {
  readonly synthesize: (context: Record<string, string>) => { template: Template; assemblyDirectory: string };
  readonly standIn: AwsStandIn;
  readonly master: string;
  readonly canaryRunsPerMonth: Readonly<Record<PriceRegion, number>>;
}): Promise<Record<PriceRegion, FixedCost[]>> {
  const costs = Object.fromEntries(PRICE_REGIONS.map((region) => [region, [] as FixedCost[]])) as Record<
    PriceRegion,
    FixedCost[]
  >;
  for (const variant of FIXED_COST_VARIANTS) {
    const { template, assemblyDirectory } = options.synthesize(variant.context);
    const runs = await healthyMonth({
      template,
      assemblyDirectory,
      standIn: options.standIn,
      master: options.master,
    });
    const sweep = runs.find((r) => r.kind === 'hourly drift sweeps');
    for (const region of PRICE_REGIONS) {
      const prices = LIST_PRICES[region];
      const priced = templateCost(template, prices);
      const scheduled = scheduledRunsDollars(
        priced,
        {
          CanaryFunction: { perMonth: options.canaryRunsPerMonth[region] },
          ...(sweep !== undefined && { FleetReconciler: { ms: runDurationMs(sweep.output) } }),
        },
        prices,
      );
      costs[region].push(fixedCost(variant.name, priced, runs, scheduled, prices));
    }
  }
  return costs;
}
