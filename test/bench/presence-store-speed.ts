/**
 * The presence store's speed: raw callbacks a second through the shipped state handler
 * (functions/presence-store/state-handler.ts, imported as Lambda runs it, its SDK clients reaching DynamoDB's
 * emulator, an EventBridge stand-in and an SQS stand-in on 127.0.0.1 through AWS_ENDPOINT_URL_*),
 * against a bare GetItem + PutItem per callback on the same dynalite, batch by batch, interleaved.
 *
 * The stream: `chats` sessions (online, typing with PAUSED flapping, sometimes recording, often leaving)
 * that overlap in time, cut into SQS batches of 10 in arrival order, as the events queue's batching
 * window would. Expiry checks the handler sends are delivered to it when due, in batches of 10 too,
 * and their time counts on the shipped side. Both sides run a batch's records 8 at a time (the
 * handler's concurrency). The clock (`Date.now`) runs in virtual time so that activities expire
 * without waiting; timings use `performance.now()`.
 *
 * Remote calls are counted where they arrive (dynalite's and the stand-ins' requests), by operation.
 */

import { createHash, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { DynamoDBClient, GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import dynalite from 'dynalite';
import pMap from 'p-map';
import { STATE_ENV } from '../../functions/presence-store/settings.ts';
import { EVENT_SOURCE, type PresenceStatus } from '../../functions/shared/contract/presence-contract.ts';
import { standInEnvironment, startAwsStandIn } from '../support/aws-standin.ts';
import { createPresenceTable } from '../support/presence-table.ts';
import { seededRandom, session } from './presence-store.ts';

export interface StoreSpeed {
  readonly callbacks: number;
  readonly batches: number;
  readonly expiryChecks: number;
  /** Callbacks a second, the shipped handler (expiry checks included) and the bare pair. */
  readonly shippedPerSecond: number;
  readonly barePerSecond: number;
  readonly ratio: number;
  /** Remote calls per callback by operation (e.g. `DynamoDB GetItem`), the shipped side. */
  readonly callsPerCallback: Readonly<Record<string, number>>;
  readonly totalCallsPerCallback: number;
  readonly bareCallsPerCallback: number;
  readonly failedRecords: number;
}

export interface Counter {
  readonly byOp: Map<string, number>;
}
const bump = (counter: Counter, op: string) => counter.byOp.set(op, (counter.byOp.get(op) ?? 0) + 1);

function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    request.on('error', reject);
  });
}

interface Queued {
  readonly body: string;
  readonly dueAt: number;
}

/** SQS (AWS JSON 1.0): SendMessage and SendMessageBatch, kept for delivery when their delay is over. */
export async function startSqs(counter: Counter, now: () => number) {
  const queued: Queued[] = [];
  const md5 = (text: string) => createHash('md5').update(text, 'utf8').digest('hex');
  const server: Server = createServer(async (request, response) => {
    const target = String(request.headers['x-amz-target'] ?? '');
    const body = JSON.parse((await readBody(request)) || '{}') as Record<string, unknown>;
    bump(counter, `SQS ${target.replace('AmazonSQS.', '')}`);
    let answer: unknown = {};
    if (target === 'AmazonSQS.SendMessage') {
      queued.push({
        body: body.MessageBody as string,
        dueAt: now() + Number(body.DelaySeconds ?? 0) * 1_000,
      });
      answer = { MessageId: randomUUID(), MD5OfMessageBody: md5(body.MessageBody as string) };
    } else if (target === 'AmazonSQS.SendMessageBatch') {
      const entries = body.Entries as Array<{ Id: string; MessageBody: string; DelaySeconds?: number }>;
      for (const entry of entries)
        queued.push({ body: entry.MessageBody, dueAt: now() + (entry.DelaySeconds ?? 0) * 1_000 });
      answer = {
        Successful: entries.map((entry) => ({
          Id: entry.Id,
          MessageId: randomUUID(),
          MD5OfMessageBody: md5(entry.MessageBody),
        })),
        Failed: [],
      };
    }
    const text = JSON.stringify(answer);
    response.writeHead(200, {
      'content-type': 'application/x-amz-json-1.0',
      'content-length': Buffer.byteLength(text),
    });
    response.end(text);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    queued,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const record = (body: string): SQSRecord =>
  ({
    messageId: randomUUID(),
    receiptHandle: randomUUID(),
    body,
    attributes: { ApproximateReceiveCount: '1' },
  }) as unknown as SQSRecord;

export async function measureStoreSpeed(chats: number, rounds = 1): Promise<StoreSpeed> {
  const shippedCalls: Counter = { byOp: new Map() };
  const bareCalls: Counter = { byOp: new Map() };
  let counting: Counter | undefined;
  const realNow = Date.now;
  let offset = 0;
  const now = () => realNow() + offset;

  const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  server.on('request', (request: IncomingMessage) => {
    const target = String(request.headers['x-amz-target'] ?? '').replace('DynamoDB_20120810.', '');
    if (counting) bump(counting, `DynamoDB ${target}`);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const dynamoUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const aws = await startAwsStandIn();
  const sqs = await startSqs(
    {
      get byOp() {
        return (counting ?? { byOp: new Map() }).byOp;
      },
    },
    now,
  );
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
  const bare = new DynamoDBClient({
    region: 'sa-east-1',
    endpoint: dynamoUrl,
    credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
    maxAttempts: 3,
  });
  try {
    await createPresenceTable(bare, 'presence');
    // Virtual time from here on: the handler's `now` (captured at import) and its deadlines follow it.
    Date.now = now;
    const { handler } = (await import('../../functions/presence-store/state-handler.ts')) as {
      handler: (event: SQSEvent) => Promise<SQSBatchResponse>;
    };

    const random = seededRandom(7);
    let shippedMs = 0;
    let bareMs = 0;
    let callbacks = 0;
    let batches = 0;
    let expiryChecks = 0;
    let failedRecords = 0;
    let id = 0;
    for (let round = 0; round < rounds; round++) {
      // Sessions that overlap: each starts somewhere in a window as long as about 30 of them.
      const start = now() + 60_000;
      const stream: Array<{ time: number; phone: string; status: PresenceStatus }> = [];
      for (let c = 0; c < chats; c++) {
        const phone = `5511${round}${String(c).padStart(8, '0')}`;
        let time = start + Math.floor(random() * (chats / 30) * 120_000);
        for (const status of session(random)) {
          time += 1_000 + Math.floor(random() * 4_000);
          stream.push({ time, phone, status });
        }
      }
      stream.sort((a, b) => a.time - b.time);
      const deliverDue = async (upTo: number) => {
        for (;;) {
          const due = sqs.queued.filter((q) => q.dueAt <= upTo).slice(0, 10);
          if (due.length === 0) return;
          for (const q of due) sqs.queued.splice(sqs.queued.indexOf(q), 1);
          offset = Math.max(offset, Math.max(...due.map((q) => q.dueAt)) - realNow());
          counting = shippedCalls;
          const t0 = performance.now();
          const result = await handler({ Records: due.map((q) => record(q.body)) });
          shippedMs += performance.now() - t0;
          counting = undefined;
          failedRecords += result.batchItemFailures.length;
          expiryChecks += due.length;
        }
      };
      for (let i = 0; i < stream.length; i += 10) {
        const batch = stream.slice(i, i + 10);
        const last = (batch.at(-1) as { time: number }).time;
        await deliverDue(last);
        offset = Math.max(offset, last + 50 - realNow());
        const records = batch.map(({ time, phone, status }) =>
          record(
            JSON.stringify({
              id: `e${id++}`,
              time: new Date(Math.floor(time / 1_000) * 1_000).toISOString(),
              source: EVENT_SOURCE,
              'detail-type': status,
              detail: { instanceId: 'BENCH', phone, status, receivedAt: time },
            }),
          ),
        );
        counting = shippedCalls;
        let t0 = performance.now();
        const result = await handler({ Records: records });
        shippedMs += performance.now() - t0;
        failedRecords += result.batchItemFailures.length;

        // The bare pair, on items of its own: read the chat, write it back one version on.
        counting = bareCalls;
        t0 = performance.now();
        await pMap(
          batch,
          async ({ time, phone, status }) => {
            const Key = { instanceId: { S: 'BARE' }, chat: { S: phone } };
            const { Item } = await bare.send(
              new GetItemCommand({ TableName: 'presence', Key, ConsistentRead: true }),
            );
            await bare.send(
              new PutItemCommand({
                TableName: 'presence',
                Item: {
                  ...Key,
                  status: { S: status },
                  eventTime: { N: String(time) },
                  version: { N: String(Number(Item?.version?.N ?? 0) + 1) },
                },
              }),
            );
          },
          { concurrency: 8 },
        );
        bareMs += performance.now() - t0;
        counting = undefined;
        callbacks += batch.length;
        batches += 1;
      }
      // The quiet end: every activity still open expires.
      await deliverDue(Number.POSITIVE_INFINITY);
    }
    const callsPerCallback: Record<string, number> = {};
    for (const [op, count] of [...shippedCalls.byOp].sort()) callsPerCallback[op] = count / callbacks;
    for (const call of aws.calls) {
      const op = `EventBridge ${call.replace('AWSEvents.', '')}`;
      callsPerCallback[op] = (callsPerCallback[op] ?? 0) + 1 / callbacks;
    }
    const total = Object.values(callsPerCallback).reduce((a, b) => a + b, 0);
    const bareTotal = [...bareCalls.byOp.values()].reduce((a, b) => a + b, 0);
    const shippedPerSecond = callbacks / (shippedMs / 1_000);
    const barePerSecond = callbacks / (bareMs / 1_000);
    return {
      callbacks,
      batches,
      expiryChecks,
      shippedPerSecond,
      barePerSecond,
      ratio: shippedPerSecond / barePerSecond,
      callsPerCallback,
      totalCallsPerCallback: total,
      bareCallsPerCallback: bareTotal / callbacks,
      failedRecords,
    };
  } finally {
    Date.now = realNow;
    for (const key of Object.keys(env)) {
      if (saved[key] === undefined) delete process.env[key];
      else process.env[key] = saved[key];
    }
    bare.destroy();
    await sqs.close();
    await aws.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

export function formatStoreSpeed(s: StoreSpeed): string {
  const f = (x: number, d = 2) =>
    x.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
  const calls = Object.entries(s.callsPerCallback)
    .map(([op, n]) => `${op} ${f(n)}`)
    .join(', ');
  return [
    `presence store speed: ${s.callbacks} callbacks in ${s.batches} batches of 10, ${s.expiryChecks} expiry checks, ${s.failedRecords} records failed`,
    `  shipped state handler ${f(s.shippedPerSecond, 0)} callbacks/s vs bare GetItem + PutItem ${f(s.barePerSecond, 0)} callbacks/s = ${f(s.ratio)} (goal >= 0.70: ${s.ratio >= 0.7 ? 'met' : 'not met'})`,
    `  remote calls per callback: ${f(s.totalCallsPerCallback)} (${calls}); bare ${f(s.bareCallsPerCallback)}`,
  ].join('\n');
}
