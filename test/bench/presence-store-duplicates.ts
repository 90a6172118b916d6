/**
 * How often the presence store publishes a derived event twice, under the concurrency a deployment
 * sees: many chats at once, a few warm containers polling the events queue, the batching window.
 *
 * The shipped state handler (functions/presence-store/state-handler.ts, imported as Lambda runs it, its
 * SDK clients reaching DynamoDB's emulator, an EventBridge stand-in and an SQS stand-in on 127.0.0.1) is
 * driven in real time by a model of Lambda's SQS event source: `containers` pollers share the events
 * queue; a poller that takes a message gathers a batch until it has 10 or the batching window (1 s) has
 * passed, then invokes the handler and is busy until it answers; messages that arrive while every
 * poller is busy wait in the queue; a failed record comes back after a visibility timeout. The expiry
 * checks the handler sends are delivered when their delay is over, in batches of 10, on pollers of their
 * own. So two records of one chat are worked on at the same moment only when the real timing makes it
 * so: two batches in flight at once, each holding one of the chat's records, or a check and a callback.
 *
 * The stream: `chats` sessions (online, typing with PAUSED flapping, sometimes recording, often leaving:
 * the store bench's), each chat's callbacks 1 to 5 s apart (`speedup` divides that), the sessions'
 * starts spread over `spreadSeconds`. Counted: the derived events EventBridge took, and how many of them
 * were a repeat of one already taken (the same chat, detail-type and `sequence`); and the moments a chat
 * was in two batches at once.
 */
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import dynalite from 'dynalite';
import { STATE_ENV } from '../../functions/presence-store/settings.ts';
import {
  DERIVED_EVENT_SOURCE,
  EVENT_SOURCE,
  type PresenceStatus,
} from '../../functions/shared/contract/presence-contract.ts';
import { BATCHING_WINDOW } from '../../lib/presence-store.ts';
import { standInEnvironment, startAwsStandIn } from '../support/aws-standin.ts';
import { createPresenceTable } from '../support/presence-table.ts';
import { seededRandom, session } from './presence-store.ts';
import { startSqs } from './presence-store-speed.ts';

export interface DuplicateScenario {
  readonly name: string;
  readonly chats: number;
  /** Pollers of the events queue (warm containers). */
  readonly containers: number;
  /** Divides the gaps between a chat's callbacks (1 to 5 s at 1). */
  readonly speedup: number;
  /** The sessions start within this many seconds. */
  readonly spreadSeconds: number;
}

export interface DuplicateResult extends DuplicateScenario {
  readonly callbacks: number;
  readonly batches: number;
  readonly expiryChecks: number;
  readonly derived: number;
  readonly unique: number;
  readonly duplicates: number;
  /** Times a chat's record was handed to a batch while another batch in flight held one of its records. */
  readonly sameChatOverlaps: number;
  readonly failedRecords: number;
  readonly seconds: number;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

const record = (body: string): SQSRecord =>
  ({
    messageId: randomUUID(),
    receiptHandle: randomUUID(),
    body,
    attributes: { ApproximateReceiveCount: '1' },
  }) as unknown as SQSRecord;

/** The chat a record is for (a callback or an expiry check), for counting overlaps. */
function chatOf(body: string): string {
  const parsed = JSON.parse(body) as {
    detail?: { instanceId: string; phone: string };
    expire?: { instanceId: string; phone: string };
  };
  const key = parsed.detail ?? parsed.expire;
  return `${key?.instanceId}|${key?.phone}`;
}

export async function measureDuplicates(scenarios: readonly DuplicateScenario[]): Promise<DuplicateResult[]> {
  const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const dynamoUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const aws = await startAwsStandIn();
  const sqs = await startSqs({ byOp: new Map() }, Date.now);
  const saved = { ...process.env };
  const env: Record<string, string> = {
    ...standInEnvironment(aws.url),
    AWS_ENDPOINT_URL_DYNAMODB: dynamoUrl,
    AWS_ENDPOINT_URL_SQS: sqs.url,
    [STATE_ENV.tableName]: 'presence',
    [STATE_ENV.eventBusName]: 'bench-bus',
    [STATE_ENV.expiryQueueUrl]: `${sqs.url}/123456789012/expiry`,
  };
  Object.assign(process.env, env);
  const { DynamoDBClient } = await import('@aws-sdk/client-dynamodb');
  const admin = new DynamoDBClient({
    region: 'sa-east-1',
    endpoint: dynamoUrl,
    credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
  });
  try {
    await createPresenceTable(admin, 'presence');
    // A module instance of its own (another bench may have imported the handler with other endpoints).
    const path = '../../functions/presence-store/state-handler.ts?duplicates';
    const { handler } = (await import(path)) as {
      handler: (event: SQSEvent) => Promise<SQSBatchResponse>;
    };
    const results: DuplicateResult[] = [];
    // The handler's log lines (a reordered callback is logged as not applied) are not the measure.
    const quiet = { info: console.info, warn: console.warn, error: console.error };
    console.info = console.warn = console.error = () => {};
    const write = process.stdout.write;
    process.stdout.write = (() => true) as typeof process.stdout.write;
    try {
      for (const [index, scenario] of scenarios.entries()) {
        results.push(await run(scenario, index, handler, aws.events, sqs.queued));
      }
    } finally {
      Object.assign(console, quiet);
      process.stdout.write = write;
    }
    return results;
  } finally {
    for (const key of Object.keys(env)) {
      if (saved[key] === undefined) delete process.env[key];
      else process.env[key] = saved[key];
    }
    admin.destroy();
    await sqs.close();
    await aws.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

async function run(
  scenario: DuplicateScenario,
  index: number,
  handler: (event: SQSEvent) => Promise<SQSBatchResponse>,
  published: Array<{ Source?: string; DetailType?: string; Detail?: string }>,
  expiryQueue: Array<{ body: string; dueAt: number }>,
): Promise<DuplicateResult> {
  const random = seededRandom(11 + index);
  const started = Date.now();
  const firstPublished = published.length;
  // The stream, in time order: each chat's session from its start, callbacks 1-5 s apart (÷ speedup).
  const stream: Array<{ at: number; phone: string; status: PresenceStatus }> = [];
  for (let c = 0; c < scenario.chats; c++) {
    const phone = `5511${index}${String(c).padStart(8, '0')}`;
    let at = started + 500 + Math.floor(random() * scenario.spreadSeconds * 1_000);
    for (const status of session(random)) {
      at += Math.round((1_000 + Math.floor(random() * 4_000)) / scenario.speedup);
      stream.push({ at, phone, status });
    }
  }
  stream.sort((a, b) => a.at - b.at);
  const end = (stream.at(-1)?.at ?? started) + 35_000; // the last activity's expiry check
  const queue: Array<{ body: string; visibleAt: number }> = [];
  const inFlight = new Map<string, number>(); // chat -> records in batches being worked on
  let batches = 0;
  let active = 0;
  let expiryChecks = 0;
  let failedRecords = 0;
  let sameChatOverlaps = 0;
  let id = 0;

  const invoke = async (bodies: string[]) => {
    batches += 1;
    active += 1;
    for (const body of bodies) {
      const chat = chatOf(body);
      if ((inFlight.get(chat) ?? 0) > 0) sameChatOverlaps += 1;
      inFlight.set(chat, (inFlight.get(chat) ?? 0) + 1);
    }
    const records = bodies.map(record);
    try {
      const result = await handler({ Records: records });
      failedRecords += result.batchItemFailures.length;
      for (const failure of result.batchItemFailures) {
        const failed = records.find((r) => r.messageId === failure.itemIdentifier);
        // Back after the queue's visibility timeout (shortened: the bench is about timing, not outages).
        if (failed) queue.push({ body: failed.body, visibleAt: Date.now() + 5_000 });
      }
    } finally {
      active -= 1;
      for (const body of bodies) {
        const chat = chatOf(body);
        inFlight.set(chat, (inFlight.get(chat) ?? 1) - 1);
      }
    }
  };

  // The events queue's pollers: gather up to 10, or for the batching window, then invoke.
  const windowMs = BATCHING_WINDOW.toMilliseconds();
  let done = false;
  const visible = () => queue.filter((q) => q.visibleAt <= Date.now());
  const poller = async () => {
    while (!done) {
      if (visible().length === 0) {
        await sleep(10);
        continue;
      }
      const batch: string[] = [];
      const gatherUntil = Date.now() + windowMs;
      for (;;) {
        for (const q of visible()) {
          if (batch.length >= 10) break;
          queue.splice(queue.indexOf(q), 1);
          batch.push(q.body);
        }
        if (batch.length >= 10 || Date.now() >= gatherUntil) break;
        await sleep(10);
      }
      await invoke(batch);
    }
  };
  // The expiry queue's: what is due, at once, 10 a batch.
  const expiryPoller = async () => {
    while (!done) {
      const due = expiryQueue.filter((q) => q.dueAt <= Date.now()).slice(0, 10);
      if (due.length === 0) {
        await sleep(20);
        continue;
      }
      for (const q of due) expiryQueue.splice(expiryQueue.indexOf(q), 1);
      expiryChecks += due.length;
      await invoke(due.map((q) => q.body));
    }
  };
  // EventBridge's rule delivering each callback to the events queue as it comes.
  const producer = async () => {
    for (const { at, phone, status } of stream) {
      const wait = at - Date.now();
      if (wait > 0) await sleep(wait);
      queue.push({
        body: JSON.stringify({
          id: `d${index}-${id++}`,
          time: new Date(Math.floor(at / 1_000) * 1_000).toISOString(),
          source: EVENT_SOURCE,
          'detail-type': `Z-API Chat Presence ${status}`,
          detail: { instanceId: 'BENCH', phone, status, receivedAt: at },
        }),
        visibleAt: Date.now(),
      });
    }
  };
  const pollers = [
    ...Array.from({ length: scenario.containers }, poller),
    ...Array.from({ length: 2 }, expiryPoller),
  ];
  await producer();
  while (Date.now() < end || queue.length > 0 || expiryQueue.length > 0 || active > 0) await sleep(100);
  done = true;
  await Promise.all(pollers);

  const derived = published.slice(firstPublished).filter((e) => e.Source === DERIVED_EVENT_SOURCE);
  const keys = derived.map((e) => {
    const detail = JSON.parse(e.Detail ?? '{}') as {
      instanceId: string;
      phone: string;
      participant?: string;
      sequence: number;
    };
    return `${detail.instanceId}|${detail.phone}|${detail.participant ?? ''}|${e.DetailType}|${detail.sequence}`;
  });
  const unique = new Set(keys).size;
  return {
    ...scenario,
    callbacks: stream.length,
    batches,
    expiryChecks,
    derived: derived.length,
    unique,
    duplicates: derived.length - unique,
    sameChatOverlaps,
    failedRecords,
    seconds: (Date.now() - started) / 1_000,
  };
}

/** The scenarios `npm run bench` runs (smoke: small ones). */
export function duplicateScenarios(smoke: boolean): DuplicateScenario[] {
  return smoke
    ? [{ name: 'smoke', chats: 20, containers: 3, speedup: 4, spreadSeconds: 5 }]
    : [
        // Many chats at once, callbacks seconds apart as Z-API sends them, a few warm containers.
        { name: 'realistic', chats: 400, containers: 4, speedup: 1, spreadSeconds: 60 },
        // The same chats ten times as fast, twice the containers: far busier than a team's traffic.
        { name: 'ten times as fast', chats: 400, containers: 8, speedup: 10, spreadSeconds: 10 },
      ];
}

export function formatDuplicates(results: readonly DuplicateResult[]): string {
  const pct = (n: number, of: number) => (of === 0 ? '0' : ((n / of) * 100).toFixed(2));
  return [
    '| presence store, duplicates | chats · containers · callback gap | callbacks, batches, expiry checks | derived events published | repeats (same chat, detail-type, `sequence`) | a chat in two batches at once |',
    '| --- | --- | --- | --- | --- | --- |',
    ...results.map(
      (r) =>
        `| ${r.name} (${r.seconds.toFixed(0)} s) | ${r.chats} · ${r.containers} · ${(1 / r.speedup).toFixed(1)}-${(5 / r.speedup).toFixed(1)} s | ${r.callbacks}, ${r.batches}, ${r.expiryChecks} | ${r.derived} (${r.unique} distinct) | **${r.duplicates} (${pct(r.duplicates, r.derived)} %)** | ${r.sameChatOverlaps} |`,
    ),
  ].join('\n');
}
