/**
 * The live feed, for `npm run bench`:
 *
 *   latency      local end to end, `npm start`'s server and its twin: from a callback's POST to the event in
 *                a subscribed raw WebSocket client, p50 and p99 over >= 1,000 callbacks, against the POST's
 *                own answer (the receiver alone) in the same run; and to the DOM of the agent page in
 *                Chromium (when Chromium is there)
 *   publisher    events a second through the publisher core (SigV4 signing, one request per Lambda
 *                invocation; and in requests of 5) to the AppSync stand-in, against bare unsigned POSTs of
 *                the same bodies to a plain HTTP server
 *   client       the browser client's bundle (esbuild, minified) and its gzip size
 *   cost         feed messages per callback (the presence store's derived events, from the simulated
 *                stream of ./presence-store.ts, and the COMPOSING/RECORDING news), then dollars per million
 *                callbacks per connected agent and per agent-hour, from AppSync Events' list prices
 */
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { SignatureV4 } from '@smithy/signature-v4';
import WebSocket from 'ws';
import { realtimeProtocols } from '../../functions/live-feed/client.ts';
import { encodeFeedEvent, type FeedEvent } from '../../functions/live-feed/message.ts';
import { NodeSha256, publishUrl, signedSend } from '../../functions/live-feed/publish-handler.ts';
import { createFeedPublisher } from '../../functions/live-feed/publisher.ts';
import { type LocalServer, startLocalServer } from '../../functions/local/server.ts';
import { deadlineAt } from '../../functions/shared/aws/deadline.ts';
import {
  DERIVED_DETAIL_TYPES,
  DERIVED_EVENT_SOURCE,
} from '../../functions/shared/contract/presence-contract.ts';
import { instanceWebhookUrl } from '../../functions/shared/secrets/webhook-secret.ts';
import { STANDIN_CREDENTIALS, startAppSyncStandIn } from '../support/appsync-standin.ts';
import { PRICES } from './cost.ts';
import type { StoreCounts } from './presence-store.ts';

/** AppSync Events list prices, us-east-1: operations (connections, publishes, deliveries, subscriptions), connection-minutes. */
export const APPSYNC_EVENTS_PRICES = {
  operationsPerMillion: 1.0,
  connectionMinutesPerMillion: 0.08,
} as const;
/**
 * Assumed in-region wait of one AppSync publish request (its service time), which cannot be measured here,
 * as ./cost.ts assumes for PutEvents; the CPU part is measured.
 */
export const ASSUMED_PUBLISH_MS = 10;
const PUBLISHER_MEMORY_MB = 256;
const FULL_VCPU_MB = 1769;

const MASTER = 'bench-feed-master-0123456789abcdefghijklm';
const INSTANCE = 'BENCHFEED';

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
};

export interface FeedLatency {
  readonly callbacks: number;
  readonly acceptedP50: number;
  readonly acceptedP99: number;
  readonly feedP50: number;
  readonly feedP99: number;
}

async function post(server: LocalServer, phone: string, status: string): Promise<number> {
  const response = await fetch(instanceWebhookUrl(server.baseUrl, INSTANCE, MASTER), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      type: 'PresenceChatCallback',
      phone,
      status,
      lastSeen: null,
      instanceId: INSTANCE,
    }),
  });
  await response.arrayBuffer();
  return response.status;
}

/** POST -> the first feed event about that chat in a raw WebSocket client, and POST -> its 200. */
export async function measureFeedLatency(callbacks: number): Promise<FeedLatency> {
  const server = await startLocalServer({ port: 0, secret: MASTER, out: () => {}, err: () => {} });
  const socket = new WebSocket(
    server.realtimeUrl,
    realtimeProtocols(server.httpDomain, server.issueToken([INSTANCE])),
  );
  const waiting = new Map<string, (at: number) => void>();
  socket.on('message', (data) => {
    const at = performance.now();
    const message = JSON.parse(data.toString()) as { type: string; event?: string };
    if (message.type !== 'data' || message.event === undefined) return;
    const feed = JSON.parse(message.event) as { kind: string; phone?: string; detail?: { phone: string } };
    const phone = feed.kind === 'news' ? feed.phone : feed.detail?.phone;
    const resolve = phone === undefined ? undefined : waiting.get(phone);
    if (resolve !== undefined) {
      waiting.delete(phone as string);
      resolve(at);
    }
  });
  await new Promise<void>((resolve) => socket.once('open', () => resolve()));
  const acked = new Promise<void>((resolve) => socket.once('message', () => resolve()));
  socket.send(JSON.stringify({ type: 'connection_init' }));
  await acked;
  const subscribed = new Promise<void>((resolve) =>
    socket.on('message', (data) => {
      if (String(data).includes('subscribe_success')) resolve();
    }),
  );
  socket.send(
    JSON.stringify({
      type: 'subscribe',
      id: 'bench',
      channel: `/presence/${INSTANCE}`,
      authorization: { host: server.httpDomain, Authorization: server.issueToken([INSTANCE]) },
    }),
  );
  await subscribed;
  const accepted: number[] = [];
  const feed: number[] = [];
  try {
    for (let i = 0; i < callbacks; i += 1) {
      const phone = `55119${String(i).padStart(8, '0')}`;
      const arrived = new Promise<number>((resolve) => waiting.set(phone, resolve));
      const started = performance.now();
      const status = await post(server, phone, 'COMPOSING');
      if (status !== 200) throw new Error(`bench: the local server answered ${status}`);
      accepted.push(performance.now() - started);
      feed.push((await arrived) - started);
    }
  } finally {
    socket.close();
    await server.close();
  }
  return {
    callbacks,
    acceptedP50: percentile(accepted, 50),
    acceptedP99: percentile(accepted, 99),
    feedP50: percentile(feed, 50),
    feedP99: percentile(feed, 99),
  };
}

export type DomLatency =
  | { readonly callbacks: number; readonly p50: number; readonly p99: number }
  | { readonly skipped: string };

/** POST -> "is typing…" on the agent page in headless Chromium (the local live view), per callback. */
export async function measureDomLatency(callbacks: number): Promise<DomLatency> {
  const { lookUpChromium, CHROMIUM_ARGS } = await import('../support/chromium.ts');
  const found = lookUpChromium();
  if (found.path === undefined) return { skipped: `no Chromium at ${found.lookedAt}` };
  const { chromium } = await import('playwright-core');
  const server = await startLocalServer({ port: 0, secret: MASTER, out: () => {}, err: () => {} });
  const browser = await chromium.launch({ executablePath: found.path, args: [...CHROMIUM_ARGS] });
  try {
    // The first callback makes the instance one the page watches.
    await post(server, '5500000000000', 'AVAILABLE');
    const page = await browser.newPage();
    await page.goto(`${server.baseUrl}/`);
    await page.waitForFunction(() => document.getElementById('connection')?.dataset.state === 'live');
    await page.evaluate(() => {
      const seen: Record<string, number> = {};
      (window as unknown as { __seen: Record<string, number> }).__seen = seen;
      const list = document.getElementById('chats') as HTMLElement;
      new MutationObserver(() => {
        for (const what of list.querySelectorAll('li .what.typing')) {
          const key = (what.closest('li') as HTMLElement).dataset.chat as string;
          if (seen[key] === undefined) seen[key] = Date.now();
        }
      }).observe(list, { childList: true, subtree: true, characterData: true, attributes: true });
    });
    const latencies: number[] = [];
    for (let i = 0; i < callbacks; i += 1) {
      const phone = `55219${String(i).padStart(8, '0')}`;
      const started = Date.now();
      await post(server, phone, 'COMPOSING');
      const key = `${INSTANCE}/${phone}`;
      await page.waitForFunction(
        (k) => (window as unknown as { __seen: Record<string, number> }).__seen[k] !== undefined,
        key,
        {
          polling: 'raf',
          timeout: 10_000,
        },
      );
      const at = await page.evaluate(
        (k) => (window as unknown as { __seen: Record<string, number> }).__seen[k] as number,
        key,
      );
      latencies.push(at - started);
    }
    return { callbacks, p50: percentile(latencies, 50), p99: percentile(latencies, 99) };
  } finally {
    await browser.close();
    await server.close();
  }
}

export interface PublisherThroughput {
  readonly events: number;
  /** One signed request per event, one at a time (as one Lambda invocation publishes its event). */
  readonly serialPerSecond: number;
  /** CPU time per event of the serial publisher (signing, encoding, the request), ms. */
  readonly cpuMsPerEvent: number;
  /** Requests of 5 events, 8 in flight. */
  readonly batchedPerSecond: number;
  /** Bare unsigned POSTs of the same bodies, one at a time, to a plain HTTP server. */
  readonly bareSerialPerSecond: number;
}

export async function measurePublisher(events: number): Promise<PublisherThroughput> {
  const appsync = await startAppSyncStandIn();
  const bare = createServer((request, response) => {
    request.resume();
    request.on('end', () => {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end('{"failed":[],"successful":[]}');
    });
  });
  await new Promise<void>((resolve) => bare.listen(0, '127.0.0.1', resolve));
  const bareUrl = `http://127.0.0.1:${(bare.address() as AddressInfo).port}/event`;
  const signer = new SignatureV4({
    service: 'appsync',
    region: 'sa-east-1',
    credentials: STANDIN_CREDENTIALS,
    sha256: NodeSha256,
  });
  const publish = createFeedPublisher({ send: signedSend(publishUrl(appsync.url), signer) });
  const feedEvents: FeedEvent[] = Array.from({ length: events }, (_, i) => {
    const encoded = encodeFeedEvent({
      id: `bench-${i}`,
      source: DERIVED_EVENT_SOURCE,
      'detail-type': DERIVED_DETAIL_TYPES.activityStarted,
      detail: {
        instanceId: INSTANCE,
        phone: `5511${i}`,
        activity: 'typing',
        at: new Date().toISOString(),
        sequence: i + 1,
        current: { online: true, activity: 'typing' },
      },
    });
    if (!encoded.ok) throw new Error(encoded.detail);
    return encoded.event;
  });
  const deadline = () => deadlineAt(Date.now() + 60_000);
  try {
    let started = performance.now();
    for (const event of feedEvents)
      await fetch(bareUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ channel: event.channel, events: [event.body] }),
      }).then((r) => r.arrayBuffer());
    const bareSerialPerSecond = events / ((performance.now() - started) / 1_000);

    const cpuBefore = process.cpuUsage();
    started = performance.now();
    for (const event of feedEvents) {
      const outcome = await publish([event], deadline());
      if (outcome.published !== 1) throw new Error('bench: the stand-in refused a publish');
    }
    const serialSeconds = (performance.now() - started) / 1_000;
    const cpu = process.cpuUsage(cpuBefore);

    started = performance.now();
    const chunks: FeedEvent[][] = [];
    for (let i = 0; i < feedEvents.length; i += 40) chunks.push(feedEvents.slice(i, i + 40));
    for (const chunk of chunks) {
      const outcome = await publish(chunk, deadline());
      if (outcome.published !== chunk.length) throw new Error('bench: the stand-in refused a publish');
    }
    const batchedPerSecond = events / ((performance.now() - started) / 1_000);
    return {
      events,
      serialPerSecond: events / serialSeconds,
      // The stand-in runs in this process too: its share is in here (an upper bound for ours).
      cpuMsPerEvent: (cpu.user + cpu.system) / 1_000 / events,
      batchedPerSecond,
      bareSerialPerSecond,
    };
  } finally {
    await appsync.close();
    await new Promise<void>((resolve) => bare.close(() => resolve()));
  }
}

export interface ClientBundle {
  readonly bytes: number;
  readonly gzipBytes: number;
}

/** The browser client as an app's bundler would ship it: esbuild, minified, ESM. */
export function measureClientBundle(): ClientBundle {
  const esbuild = createRequire(import.meta.url)('esbuild') as {
    buildSync(options: Record<string, unknown>): { outputFiles: { contents: Uint8Array }[] };
  };
  const entry = fileURLToPath(new URL('../../functions/live-feed/client.ts', import.meta.url));
  const out = esbuild.buildSync({
    entryPoints: [entry],
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    write: false,
  }).outputFiles[0]?.contents as Uint8Array;
  return { bytes: out.byteLength, gzipBytes: gzipSync(out, { level: 9 }).byteLength };
}

export interface FeedCost {
  readonly derivedPerCallback: number;
  readonly newsPerCallback: number;
  readonly messagesPerCallback: number;
  /** The publisher and AppSync's publish operations, per million callbacks (no agent connected). */
  readonly publishPerMillion: number;
  /** What each connected agent (subscribed to the instance) adds per million callbacks: one delivery per message. */
  readonly perAgentPerMillion: number;
  /** One agent connected for an hour: 60 connection-minutes, a connect, a subscription, a snapshot. */
  readonly perAgentHour: number;
  readonly publisherMsPerEvent: number;
}

/** Dollars from the store's counts (derived events) and the stream's COMPOSING/RECORDING callbacks. */
export function feedCost(
  counts: StoreCounts & { readonly activityCallbacks: number },
  publisher: PublisherThroughput,
): FeedCost {
  const derivedPerCallback = counts.derived / counts.callbacks;
  const newsPerCallback = counts.activityCallbacks / counts.callbacks;
  const messagesPerCallback = derivedPerCallback + newsPerCallback;
  // One invocation per message: its CPU stretched to the memory's CPU share, plus the publish's wait.
  const publisherMsPerEvent = Math.ceil(
    publisher.cpuMsPerEvent * (FULL_VCPU_MB / PUBLISHER_MEMORY_MB) + ASSUMED_PUBLISH_MS,
  );
  const lambdaPerEvent =
    PRICES.lambdaRequestsPerMillion / 1e6 +
    (PUBLISHER_MEMORY_MB / 1024) * (publisherMsPerEvent / 1000) * PRICES.lambdaArmGbSecond;
  const operation = APPSYNC_EVENTS_PRICES.operationsPerMillion / 1e6;
  const publishPerMillion = messagesPerCallback * 1e6 * (lambdaPerEvent + operation);
  const perAgentPerMillion = messagesPerCallback * 1e6 * operation;
  // An hour: 60 connection-minutes; a connect, a subscription (operations); a snapshot (HTTP API request + a short read).
  const snapshot =
    PRICES.httpApiPerMillion / 1e6 +
    PRICES.lambdaRequestsPerMillion / 1e6 +
    (256 / 1024) * 0.05 * PRICES.lambdaArmGbSecond;
  const perAgentHour =
    60 * (APPSYNC_EVENTS_PRICES.connectionMinutesPerMillion / 1e6) + 2 * operation + snapshot;
  return {
    derivedPerCallback,
    newsPerCallback,
    messagesPerCallback,
    publishPerMillion,
    perAgentPerMillion,
    perAgentHour,
    publisherMsPerEvent,
  };
}

export interface FeedBench {
  readonly latency: FeedLatency;
  readonly dom: DomLatency;
  readonly publisher: PublisherThroughput;
  readonly client: ClientBundle;
  readonly cost: FeedCost;
}

export function formatFeed(r: FeedBench): string {
  const f = (n: number, d = 2) => n.toFixed(d);
  const dom =
    'skipped' in r.dom
      ? `skipped: ${r.dom.skipped}`
      : `p50 ${f(r.dom.p50, 0)} ms, p99 ${f(r.dom.p99, 0)} ms over ${r.dom.callbacks} callbacks`;
  return [
    '### Live feed (`liveFeed`)',
    '',
    '| measure | value |',
    '| --- | --- |',
    `| local end to end: POST -> the event in a subscribed WebSocket client (the twin, ${r.latency.callbacks} callbacks) | p50 **${f(r.latency.feedP50)} ms**, p99 **${f(r.latency.feedP99)} ms**; the POST's own answer p50 ${f(r.latency.acceptedP50)} ms, p99 ${f(r.latency.acceptedP99)} ms (ratio p50 ${f(r.latency.feedP50 / r.latency.acceptedP50)}) |`,
    `| local end to end: POST -> "is typing…" on the agent page in headless Chromium | ${dom} |`,
    `| publisher: events a second (SigV4, one request an event, one at a time) vs bare unsigned POSTs | ${f(r.publisher.serialPerSecond, 0)} vs ${f(r.publisher.bareSerialPerSecond, 0)} = **${f(r.publisher.serialPerSecond / r.publisher.bareSerialPerSecond)}** (${r.publisher.events} events) |`,
    `| publisher: events a second in requests of 5 | ${f(r.publisher.batchedPerSecond, 0)} |`,
    `| publisher CPU per event (signing, encoding, the request; the stand-in's share included) | ${f(r.publisher.cpuMsPerEvent, 3)} ms |`,
    `| browser client bundle (esbuild, minified) | ${r.client.bytes} B, gzip ${r.client.gzipBytes} B |`,
    `| feed messages per callback (simulated stream) | ${f(r.cost.messagesPerCallback, 3)}: ${f(r.cost.derivedPerCallback, 3)} derived events + ${f(r.cost.newsPerCallback, 3)} COMPOSING/RECORDING news |`,
    `| $ per million callbacks: publisher Lambda (${r.cost.publisherMsPerEvent} ms billed, ${ASSUMED_PUBLISH_MS} ms of it AppSync's assumed wait) and AppSync publishes | ${f(r.cost.publishPerMillion, 3)} |`,
    `| $ per million callbacks, per connected agent (one delivery per message) | ${f(r.cost.perAgentPerMillion, 3)} |`,
    `| $ per agent-hour (60 connection-minutes, a connect, a subscription, a snapshot) | ${r.cost.perAgentHour.toPrecision(3)} |`,
  ].join('\n');
}
