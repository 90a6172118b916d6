/**
 * Dollars per million webhooks: what this receiver costs against API Gateway's direct EventBridge
 * integration (the floor: no Lambda, so no authentication or validation).
 *
 * List prices by region, on-demand (./prices.ts: us-east-1 and sa-east-1). Left out as too small to
 * show: log and archive storage, SSM API calls (the secret is read once per container and 5 minutes).
 * The lines: HTTP API requests (first 300 M), EventBridge custom events (64 KB chunks), the event
 * archive per GB, Lambda (arm64) requests and GB-seconds at 1 ms granularity, CloudWatch Logs ingestion
 * (standard class).
 */
import { type ListPrices, US_EAST_1 } from './prices.ts';

/** us-east-1 list prices (the warm path and the flood are priced there only). */
export const PRICES: ListPrices = US_EAST_1;

/**
 * Assumed in-region network wait of one PutEvents call (EventBridge's own service time), which cannot be
 * measured here; the CPU part of the call is measured and scaled to the memory's CPU share.
 */
export const ASSUMED_PUT_EVENTS_MS = 10;
/** Lambda gives one full vCPU at 1769 MB; below that, CPU time stretches proportionally. */
const FULL_VCPU_MB = 1769;
/** What EventBridge adds around `detail` (id, time, source, detail-type, account, region...). */
const EVENT_ENVELOPE_BYTES = 250;

export interface CostInputs {
  readonly memoryMb: number;
  /** CPU time per accepted webhook on this machine (our code and the SDK's), ms. */
  readonly cpuMsPerWebhook: number;
  readonly receiverLogBytes: number;
  /** The stage's access-log format, rendered with typical values to count its bytes. */
  readonly accessLogFormat: string;
  readonly eventBytes: number;
  /** The default deployment's fixed cost a month, computed by ./fixed-cost.ts in the same run. */
  readonly fixedPerMonth: number;
}

const SAMPLE_CONTEXT: Record<string, string> = {
  '$context.requestId': 'JxLb4gN3IAMEbDw=',
  '$context.apiId': 'a1b2c3d4e5',
  '$context.requestTime': '25/Nov/2026:12:00:00 +0000',
  '$context.identity.sourceIp': '54.233.120.10',
  '$context.identity.userAgent': 'ReactorNetty/1.1.10',
  '$context.routeKey': 'POST /instances/{instanceId}/presence',
  '$context.status': '200',
  '$context.responseLength': '52',
  '$context.responseLatency': '19',
  '$context.integrationStatus': '200',
  '$context.integrationLatency': '17',
  '$context.integrationErrorMessage': '-',
  '$context.error.message': '-',
  '$context.requestTimeEpoch': '1764072000000',
};

export function accessLogBytes(format: string): number {
  let line = format;
  for (const [key, value] of Object.entries(SAMPLE_CONTEXT).sort((a, b) => b[0].length - a[0].length)) {
    line = line.split(key).join(value);
  }
  return Buffer.byteLength(line);
}

function lambdaDurationMs(memoryMb: number, cpuMs: number): number {
  const share = Math.min(1, memoryMb / FULL_VCPU_MB);
  return Math.ceil(ASSUMED_PUT_EVENTS_MS + cpuMs / share);
}

export function costModel(inputs: CostInputs, prices: ListPrices = US_EAST_1) {
  const durationMs = lambdaDurationMs(inputs.memoryMb, inputs.cpuMsPerWebhook);
  const access = accessLogBytes(inputs.accessLogFormat);
  const gb = (bytes: number) => (bytes * 1e6) / 1e9;
  const lines = {
    httpApi: prices.httpApiPerMillion,
    eventBridge: prices.eventBridgePerMillion,
    lambdaRequests: prices.lambdaRequestsPerMillion,
    lambdaDuration: 1e6 * (inputs.memoryMb / 1024) * (durationMs / 1000) * prices.lambdaArmGbSecond,
    receiverLogs: gb(inputs.receiverLogBytes) * prices.logsPerGb,
    accessLogs: gb(access) * prices.logsPerGb,
    archive: gb(inputs.eventBytes + EVENT_ENVELOPE_BYTES) * prices.archivePerGb,
  };
  const total = Object.values(lines).reduce((a, b) => a + b, 0);
  const fixedPerMonth = inputs.fixedPerMonth;
  const floor = prices.httpApiPerMillion + prices.eventBridgePerMillion;
  const atVolume = [1, 10, 100].map((millions) => ({
    millions,
    perMillion: total + fixedPerMonth / millions,
    floorPerMillion: floor,
    monthly: total * millions + fixedPerMonth,
  }));
  const byMemory = [128, 256, 512, 1024].map((memoryMb) => {
    const d = lambdaDurationMs(memoryMb, inputs.cpuMsPerWebhook);
    return {
      memoryMb,
      durationMs: d,
      lambdaDurationPerMillion: 1e6 * (memoryMb / 1024) * (d / 1000) * prices.lambdaArmGbSecond,
    };
  });
  return {
    region: prices.region,
    durationMs,
    accessLogBytes: access,
    archivedEventBytes: inputs.eventBytes + EVENT_ENVELOPE_BYTES,
    perMillion: { ...lines, total },
    floor,
    fixedPerMonth,
    atVolume,
    byMemory,
    memoryMb: inputs.memoryMb,
  };
}

export function formatCost(c: ReturnType<typeof costModel>): string {
  const d = (n: number) => `$${n.toFixed(3)}`;
  const p = c.perMillion;
  return [
    `cost per million webhooks, ${c.region} list prices (receiver at ${c.memoryMb} MB arm64, modelled duration ${c.durationMs} ms = ${ASSUMED_PUT_EVENTS_MS} ms assumed PutEvents network wait + the measured CPU per webhook scaled to the memory's CPU share):`,
    '',
    '| line | $ per million |',
    '| --- | --- |',
    `| HTTP API | ${d(p.httpApi)} |`,
    `| EventBridge PutEvents | ${d(p.eventBridge)} |`,
    `| Lambda requests | ${d(p.lambdaRequests)} |`,
    `| Lambda duration | ${d(p.lambdaDuration)} |`,
    `| receiver logs | ${d(p.receiverLogs)} |`,
    `| access logs (${c.accessLogBytes} B a line) | ${d(p.accessLogs)} |`,
    `| event archive (${c.archivedEventBytes} B an event) | ${d(p.archive)} |`,
    `| **variable total** | **${d(p.total)}** (floor ${d(c.floor)}; goal <= $2.300: ${p.total <= 2.3 ? 'met' : 'NOT met'}) |`,
    '',
    `fixed: ${d(c.fixedPerMonth)} a month (the default deployment's in ${c.region}, computed below).`,
    '',
    '| webhooks a month | $ per million, all in | floor | monthly |',
    '| --- | --- | --- | --- |',
    ...c.atVolume.map(
      (v) => `| ${v.millions} M | ${d(v.perMillion)} | ${d(v.floorPerMillion)} | ${d(v.monthly)} |`,
    ),
    '',
    '| memory | modelled duration | Lambda duration $ per million |',
    '| --- | --- | --- |',
    ...c.byMemory.map((m) => `| ${m.memoryMb} MB | ${m.durationMs} ms | ${d(m.lambdaDurationPerMillion)} |`),
  ].join('\n');
}
