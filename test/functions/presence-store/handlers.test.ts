/**
 * The presence-state Lambda (functions/presence-store/state-handler.ts) and the read function
 * (functions/presence-store/read-handler.ts) through the real SDK: DynamoDB is dynalite, EventBridge the
 * project's AWS stand-in, SQS a tiny AWS JSON 1.0 stand-in below. SQS batches carry EventBridge events
 * (as an EventBridge→SQS target delivers them) and expiry checks.
 */

import { createHash, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { DescribeTableCommand, DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import type { APIGatewayProxyEventV2, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import dynalite from 'dynalite';
import * as v from 'valibot';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { type ChatState, stateView } from '../../../functions/presence-store/presence-state.ts';
import { readPresence } from '../../../functions/presence-store/read-handler.ts';
import { EXPIRY_RETRY_SECONDS, MAX_RECEIVES, STATE_ENV } from '../../../functions/presence-store/settings.ts';
import { dynamoStore } from '../../../functions/presence-store/store.ts';
import { deadlineAt } from '../../../functions/shared/aws/deadline.ts';
import {
  DERIVED_DETAIL_TYPES,
  DERIVED_EVENT_SOURCE,
  DETAIL_TYPES,
  type DerivedDetailType,
  EVENT_SOURCE,
  type PresenceStatus,
} from '../../../functions/shared/contract/presence-contract.ts';
import { DERIVED_DETAIL_SCHEMAS } from '../../../functions/shared/contract/presence-derived-schemas.ts';
import { type AwsStandIn, standInEnvironment, startAwsStandIn } from '../../support/aws-standin.ts';
import { bundleDirectory } from '../../support/bundle.ts';
import { invokeBundle } from '../../support/invoke.ts';
import { createPresenceTable } from '../../support/presence-table.ts';
import { synth } from '../../support/synth.ts';

// --- A tiny SQS stand-in (AWS JSON 1.0: SendMessage, SendMessageBatch, ChangeMessageVisibility) ----

interface SentMessage {
  readonly QueueUrl: string;
  readonly MessageBody: string;
  readonly DelaySeconds?: number;
}

interface SqsStandIn {
  readonly url: string;
  readonly sent: SentMessage[];
  /** Next SendMessage calls answer QueueDoesNotExist (not retried by the SDK). */
  failNext: number;
  /** Next SendMessage calls answer a wrong MD5OfMessageBody. */
  wrongMd5Next: number;
  /** Every ChangeMessageVisibility received. */
  readonly visibility: { QueueUrl: string; ReceiptHandle: string; VisibilityTimeout: number }[];
  close(): Promise<void>;
}

function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    request.on('error', reject);
  });
}

function answerJson10(response: ServerResponse, status: number, body: unknown, headers = {}): void {
  const text = JSON.stringify(body);
  response.writeHead(status, {
    'content-type': 'application/x-amz-json-1.0',
    'content-length': Buffer.byteLength(text),
    'x-amzn-requestid': randomUUID(),
    ...headers,
  });
  response.end(text);
}

async function startSqsStandIn(): Promise<SqsStandIn> {
  const sent: SentMessage[] = [];
  const visibility: SqsStandIn['visibility'] = [];
  const state = { failNext: 0, wrongMd5Next: 0 };
  const server: Server = createServer(async (request, response) => {
    const target = String(request.headers['x-amz-target'] ?? '');
    const body = JSON.parse((await readBody(request)) || '{}') as SentMessage;
    if (target === 'AmazonSQS.ChangeMessageVisibility') {
      visibility.push(body as unknown as SqsStandIn['visibility'][number]);
      return answerJson10(response, 200, {});
    }
    const isBatch = target === 'AmazonSQS.SendMessageBatch';
    if (target !== 'AmazonSQS.SendMessage' && !isBatch) {
      return answerJson10(response, 400, {
        __type: 'com.amazonaws.sqs#UnsupportedOperation',
        message: `stand-in does not speak ${target}`,
      });
    }
    if (state.failNext > 0) {
      state.failNext -= 1;
      return answerJson10(
        response,
        400,
        { __type: 'com.amazonaws.sqs#QueueDoesNotExist', message: 'The specified queue does not exist.' },
        { 'x-amzn-query-error': 'AWS.SimpleQueueService.NonExistentQueue;Sender' },
      );
    }
    const wrong = state.wrongMd5Next > 0;
    if (wrong) state.wrongMd5Next -= 1;
    if (isBatch) {
      const { QueueUrl, Entries } = body as unknown as {
        QueueUrl: string;
        Entries: { Id: string; MessageBody: string; DelaySeconds?: number }[];
      };
      for (const { MessageBody, DelaySeconds } of Entries)
        sent.push({ QueueUrl, MessageBody, ...(DelaySeconds !== undefined && { DelaySeconds }) });
      return answerJson10(response, 200, {
        Successful: Entries.map((entry) => ({
          Id: entry.Id,
          MessageId: randomUUID(),
          MD5OfMessageBody: wrong
            ? '0'.repeat(32)
            : createHash('md5').update(entry.MessageBody, 'utf8').digest('hex'),
        })),
        Failed: [],
      });
    }
    sent.push(body);
    const md5 = createHash('md5').update(body.MessageBody, 'utf8').digest('hex');
    return answerJson10(response, 200, {
      MessageId: randomUUID(),
      MD5OfMessageBody: wrong ? '0'.repeat(32) : md5,
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    sent,
    visibility,
    get failNext() {
      return state.failNext;
    },
    set failNext(value: number) {
      state.failNext = value;
    },
    get wrongMd5Next() {
      return state.wrongMd5Next;
    },
    set wrongMd5Next(value: number) {
      state.wrongMd5Next = value;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

// --- Fixtures ------------------------------------------------------------------------------------

const TABLE = 'presence-state-handler';
const BUS = 'presence-bus';
const INSTANCE = 'INSTANCEA';

let dynamo: Server;
let dynamoUrl: string;
let client: DynamoDBClient;
let aws: AwsStandIn;
let sqs: SqsStandIn;
let queueUrl: string;

type StateHandler = (event: SQSEvent) => Promise<SQSBatchResponse>;

async function loadStateHandler(env: Record<string, string | undefined> = {}): Promise<StateHandler> {
  for (const [key, value] of Object.entries({
    ...standInEnvironment(aws.url),
    AWS_ENDPOINT_URL_DYNAMODB: dynamoUrl,
    AWS_ENDPOINT_URL_SQS: sqs.url,
    [STATE_ENV.tableName]: TABLE,
    [STATE_ENV.eventBusName]: BUS,
    [STATE_ENV.expiryQueueUrl]: queueUrl,
    [STATE_ENV.expirySeconds]: undefined,
    [STATE_ENV.idleDays]: undefined,
    ...env,
  }))
    vi.stubEnv(key, value);
  vi.resetModules();
  return (await import('../../../functions/presence-store/state-handler.ts')).handler as StateHandler;
}

let chatCounter = 0;
const newPhone = () => {
  chatCounter += 1;
  return `55219${String(chatCounter).padStart(8, '0')}`;
};
const newGroup = () => {
  chatCounter += 1;
  return `120363${String(chatCounter).padStart(12, '0')}-group`;
};

/** A read route request: the path parameters, and `?participant=` when given. */
const path = (instanceId: string | undefined, phone: string | undefined, participant?: string) => ({
  pathParameters: {
    ...(instanceId !== undefined && { instanceId }),
    ...(phone !== undefined && { phone }),
  },
  ...(participant !== undefined && { queryStringParameters: { participant } }),
});

/** Whole seconds, as EventBridge stamps `time`. */
const isoSeconds = (ms: number) =>
  new Date(Math.floor(ms / 1_000) * 1_000).toISOString().replace('.000Z', 'Z');

/** The EventBridge event an EventBridge→SQS target puts in the message body. */
function presenceEvent(
  phone: string,
  status: PresenceStatus,
  timeMs: number,
  extra: {
    id?: string;
    lastSeen?: number | null;
    instanceId?: string;
    /** More callback fields (a group's participantPhone, participant, participantLid…). */
    detail?: Record<string, unknown>;
  } = {},
) {
  const instanceId = extra.instanceId ?? INSTANCE;
  return {
    version: '0',
    id: extra.id ?? randomUUID(),
    'detail-type': DETAIL_TYPES[status],
    source: EVENT_SOURCE,
    account: '123456789012',
    time: isoSeconds(timeMs),
    region: 'sa-east-1',
    resources: [],
    detail: {
      type: 'PresenceChatCallback',
      phone,
      status,
      lastSeen: extra.lastSeen === undefined ? null : extra.lastSeen,
      instanceId,
      ...extra.detail,
    },
  };
}

let messageCounter = 0;
function record(body: unknown, receiveCount = 1): SQSRecord {
  messageCounter += 1;
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  return {
    messageId: `message-${messageCounter}`,
    receiptHandle: `receipt-${messageCounter}`,
    body: text,
    attributes: {
      ApproximateReceiveCount: String(receiveCount),
      SentTimestamp: String(Date.now()),
      SenderId: 'AIDAEXAMPLE',
      ApproximateFirstReceiveTimestamp: String(Date.now()),
    },
    messageAttributes: {},
    md5OfBody: createHash('md5').update(text).digest('hex'),
    eventSource: 'aws:sqs',
    eventSourceARN: 'arn:aws:sqs:sa-east-1:123456789012:presence-events',
    awsRegion: 'sa-east-1',
  };
}

const batch = (...records: SQSRecord[]): SQSEvent => ({ Records: records });
/** An expiry check as the handler sends it (`news`: the COMPOSING or RECORDING it is for). */
const expiry = (phone: string, instanceId = INSTANCE, participant?: string, news?: number) => ({
  expire: {
    instanceId,
    phone,
    ...(participant !== undefined && { participant }),
    ...(news !== undefined && { news }),
  },
});

/** Derived events that reached EventBridge for a chat (or one participant of it), with the detail parsed. */
const derivedFor = (phone: string, participant?: string) =>
  aws.events
    .map((entry) => ({ ...entry, detail: JSON.parse(String(entry.Detail)) as Record<string, unknown> }))
    .filter((entry) => entry.detail.phone === phone && entry.detail.participant === participant);

/**
 * Freezes `Date` (timers stay real) at a whole second, so what is counted from the clock (the expiry
 * check's delay) is exact. Call it before loadStateHandler: the handler keeps `Date.now` as its clock
 * when it loads. Undone after each test.
 */
function freezeClock(): number {
  const now = Math.floor(Date.now() / 1_000) * 1_000;
  vi.useFakeTimers({ toFake: ['Date'], now });
  return now;
}

/** The raw item of a chat (`chat`: its phone, or `group#participant`). */
const stored = async (chat: string, instanceId = INSTANCE) =>
  (
    await client.send(
      new GetItemCommand({
        TableName: TABLE,
        Key: { instanceId: { S: instanceId }, chat: { S: chat } },
        ConsistentRead: true,
      }),
    )
  ).Item;

beforeAll(async () => {
  dynamo = dynalite({
    createTableMs: 0,
    deleteTableMs: 0,
    updateTableMs: 0,
  });
  await new Promise<void>((resolve) => dynamo.listen(0, '127.0.0.1', resolve));
  dynamoUrl = `http://127.0.0.1:${(dynamo.address() as AddressInfo).port}`;
  client = new DynamoDBClient({
    endpoint: dynamoUrl,
    region: 'sa-east-1',
    credentials: { accessKeyId: 'AKIDDYNALITE', secretAccessKey: 'dynalite-secret' },
  });
  await createPresenceTable(client, TABLE);
  for (;;) {
    const { Table } = await client.send(new DescribeTableCommand({ TableName: TABLE }));
    if (Table?.TableStatus === 'ACTIVE') break;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  aws = await startAwsStandIn();
  sqs = await startSqsStandIn();
  queueUrl = `${sqs.url}/123456789012/presence-expiry`;
});

afterAll(async () => {
  vi.unstubAllEnvs();
  client?.destroy();
  await aws?.close();
  await sqs?.close();
  await new Promise<void>((resolve) => (dynamo ? dynamo.close(() => resolve()) : resolve()));
});

let errors: unknown[];
beforeEach(() => {
  errors = [];
  vi.spyOn(console, 'error').mockImplementation((entry: unknown) => {
    errors.push(entry);
  });
  vi.spyOn(console, 'info').mockImplementation(() => {});
  vi.spyOn(console, 'warn').mockImplementation(() => {});
  // The handler's EMF metric lines (written to stdout, as Lambda wants them) stay out of the test output.
  const write = process.stdout.write.bind(process.stdout) as (chunk: string | Uint8Array) => boolean;
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) =>
    String(chunk).includes('"_aws":') ? true : write(chunk),
  );
});
afterEach(() => {
  vi.useRealTimers();
  vi.unstubAllEnvs();
});

describe('presence-state Lambda handler', () => {
  it('refuses to load without its table, bus or queue, or with a bad number', async () => {
    await expect(loadStateHandler({ [STATE_ENV.tableName]: '' })).rejects.toThrow(STATE_ENV.tableName);
    await expect(loadStateHandler({ [STATE_ENV.eventBusName]: ' ' })).rejects.toThrow(STATE_ENV.eventBusName);
    await expect(loadStateHandler({ [STATE_ENV.expiryQueueUrl]: undefined })).rejects.toThrow(
      STATE_ENV.expiryQueueUrl,
    );
    await expect(loadStateHandler({ [STATE_ENV.expirySeconds]: '2.5' })).rejects.toThrow(
      STATE_ENV.expirySeconds,
    );
    await expect(loadStateHandler({ [STATE_ENV.idleDays]: '0' })).rejects.toThrow(STATE_ENV.idleDays);
  });

  it('a batch of presence events: state written, derived events on the bus, the expiry check sent with DelaySeconds 27 (counted from the news)', async () => {
    const now = freezeClock();
    const handler = await loadStateHandler();
    const typing = newPhone();
    const online = newPhone();
    const recording = newPhone();
    const sentBefore = sqs.sent.length;
    const result = await handler(
      batch(
        record(presenceEvent(typing, 'COMPOSING', now - 2_000)),
        record(presenceEvent(online, 'AVAILABLE', now - 2_000, { lastSeen: 1_740_830_400 })),
        record(presenceEvent(typing, 'PAUSED', now)),
        record(presenceEvent(recording, 'RECORDING', now)),
      ),
    );
    expect(result).toEqual({ batchItemFailures: [] });

    const typingEvents = derivedFor(typing);
    expect(typingEvents.map((e) => e.DetailType)).toEqual([
      DERIVED_DETAIL_TYPES.cameOnline,
      DERIVED_DETAIL_TYPES.activityStarted,
      DERIVED_DETAIL_TYPES.activityStopped,
    ]);
    expect(typingEvents[2]?.detail).toMatchObject({
      activity: 'typing',
      reason: 'paused',
      durationMs: 2_000,
    });
    expect(typingEvents.map((e) => e.detail.sequence)).toEqual([
      now - 2_000,
      now - 2_000 + 1,
      now - 2_000 + 2,
    ]);
    expect(derivedFor(online).map((e) => e.DetailType)).toEqual([DERIVED_DETAIL_TYPES.cameOnline]);
    for (const entry of [...typingEvents, ...derivedFor(online)]) {
      expect(entry.Source).toBe(DERIVED_EVENT_SOURCE);
      expect(entry.EventBusName).toBe(BUS);
      const schema = DERIVED_DETAIL_SCHEMAS[entry.DetailType as DerivedDetailType];
      expect(v.safeParse(schema, entry.detail).issues).toBeUndefined();
      expect(entry.detail.instanceId).toBe(INSTANCE);
    }

    // Processed at once: 25 s + 2. The COMPOSING of 2 s before: 23 s of its window left, + 2.
    expect(sqs.sent.slice(sentBefore).sort((x, y) => x.MessageBody.localeCompare(y.MessageBody))).toEqual(
      [
        {
          QueueUrl: queueUrl,
          MessageBody: JSON.stringify(expiry(typing, INSTANCE, undefined, now - 2_000)),
          DelaySeconds: 25,
        },
        {
          QueueUrl: queueUrl,
          MessageBody: JSON.stringify(expiry(recording, INSTANCE, undefined, now)),
          DelaySeconds: 27,
        },
      ].sort((x, y) => x.MessageBody.localeCompare(y.MessageBody)),
    );

    const item = await stored(typing);
    expect(item?.status).toEqual({ S: 'PAUSED' });
    // Published, then cleared: no later reader publishes it again.
    expect(item?.pending).toBeUndefined();
    expect(item?.sequence).toEqual({ N: String(now - 2_000 + 2) });
    const expiresAt = Number(item?.expiresAt?.N);
    expect(Math.abs(expiresAt - (Math.floor(Date.now() / 1_000) + 30 * 86_400))).toBeLessThan(60);
    expect((await stored(online))?.lastSeen).toEqual({ N: '1740830400' });
  });

  it('ACTIVITY_EXPIRY_SECONDS and IDLE_DAYS are honoured', async () => {
    const now = freezeClock();
    const handler = await loadStateHandler({ [STATE_ENV.expirySeconds]: '10', [STATE_ENV.idleDays]: '2' });
    const phone = newPhone();
    const sentBefore = sqs.sent.length;
    expect(await handler(batch(record(presenceEvent(phone, 'RECORDING', now))))).toEqual({
      batchItemFailures: [],
    });
    expect(sqs.sent.slice(sentBefore).map((m) => m.DelaySeconds)).toEqual([12]);
    expect(Number((await stored(phone))?.expiresAt?.N)).toBe(now / 1_000 + 2 * 86_400);
  });

  it('an expiry message ends an activity with no news for 25 s (and an early one reschedules the check)', async () => {
    const now = freezeClock();
    const handler = await loadStateHandler();
    const stale = newPhone();
    const fresh = newPhone();
    await handler(
      batch(
        record(presenceEvent(stale, 'COMPOSING', now - 40_000)),
        record(presenceEvent(stale, 'COMPOSING', now - 30_000)),
        record(presenceEvent(fresh, 'COMPOSING', now)),
      ),
    );
    const sentBefore = sqs.sent.length;
    const result = await handler(
      batch(record(expiry(stale)), record(expiry(fresh)), record(expiry(newPhone()))),
    );
    expect(result).toEqual({ batchItemFailures: [] });
    // The fresh typing's window ends in 25 s: checked again then (+ 2 s).
    expect(sqs.sent.slice(sentBefore)).toEqual([
      {
        QueueUrl: queueUrl,
        MessageBody: JSON.stringify(expiry(fresh, INSTANCE, undefined, now)),
        DelaySeconds: 27,
      },
    ]);
    const stopped = derivedFor(stale).filter((e) => e.DetailType === DERIVED_DETAIL_TYPES.activityStopped);
    expect(stopped).toHaveLength(1);
    expect(stopped[0]?.Source).toBe(DERIVED_EVENT_SOURCE);
    expect(stopped[0]?.detail).toMatchObject({
      activity: 'typing',
      reason: 'expired',
      startedAt: new Date(Math.floor((now - 40_000) / 1_000) * 1_000).toISOString(),
      at: new Date(Math.floor((now - 30_000) / 1_000) * 1_000).toISOString(),
      durationMs: 10_000,
      sequence: now - 40_000 + 2,
    });
    expect(derivedFor(fresh).map((e) => e.DetailType)).not.toContain(DERIVED_DETAIL_TYPES.activityStopped);
    expect((await stored(stale))?.activity).toBeUndefined();
    expect((await stored(fresh))?.activity).toEqual({ S: 'typing' });
  });

  it('a malformed record is reported alone; the others succeed', async () => {
    const handler = await loadStateHandler();
    const a = newPhone();
    const b = newPhone();
    const bad = [
      record('{not json'),
      record({ ...presenceEvent(a, 'AVAILABLE', Date.now()), source: 'someone.else' }),
      record({ ...presenceEvent(a, 'AVAILABLE', Date.now()), time: 'yesterday' }),
      record({ ...presenceEvent(a, 'AVAILABLE', Date.now()), detail: { phone: a, status: 'ONLINE' } }),
      record({ expire: { instanceId: INSTANCE } }),
    ];
    const good = [
      record(presenceEvent(a, 'AVAILABLE', Date.now())),
      record(presenceEvent(b, 'UNAVAILABLE', Date.now())),
      record(expiry(b)),
    ];
    const result = await handler(
      batch(bad[0] as SQSRecord, ...good.slice(0, 1), ...bad.slice(1), ...good.slice(1)),
    );
    expect(result.batchItemFailures.map((f) => f.itemIdentifier).sort()).toEqual(
      bad.map((r) => r.messageId).sort(),
    );
    expect((await stored(a))?.status).toEqual({ S: 'AVAILABLE' });
    expect((await stored(b))?.status).toEqual({ S: 'UNAVAILABLE' });
    expect(derivedFor(a).map((e) => e.DetailType)).toEqual([DERIVED_DETAIL_TYPES.cameOnline]);
    expect(errors).toHaveLength(bad.length);
  });

  it('an older or duplicate delivery is not a failure and publishes nothing', async () => {
    const handler = await loadStateHandler();
    const phone = newPhone();
    const now = Date.now();
    const newer = presenceEvent(phone, 'AVAILABLE', now);
    await handler(batch(record(newer)));
    const result = await handler(
      batch(record(newer), record(presenceEvent(phone, 'COMPOSING', now - 5_000))),
    );
    expect(result).toEqual({ batchItemFailures: [] });
    expect(derivedFor(phone).map((e) => e.DetailType)).toEqual([DERIVED_DETAIL_TYPES.cameOnline]);
    expect((await stored(phone))?.lastEventId).toEqual({ S: newer.id });
  });

  it.each([
    ['AVAILABLE then UNAVAILABLE', 'AVAILABLE', 'UNAVAILABLE', { online: false, activity: null }],
    ['UNAVAILABLE then AVAILABLE', 'UNAVAILABLE', 'AVAILABLE', { online: true, activity: null }],
    ['COMPOSING then PAUSED', 'COMPOSING', 'PAUSED', { online: true, activity: null }],
    ['RECORDING then COMPOSING', 'RECORDING', 'COMPOSING', { online: true, activity: 'typing' }],
  ] as const)(
    '%s within one second, delivered swapped: ordered by receivedAt (ms), the state and the subscriber end as Z-API sent them',
    async (_name, first, second, presence) => {
      const handler = await loadStateHandler();
      const phone = newPhone();
      const second0 = Math.floor(Date.now() / 1_000) * 1_000;
      // Both published in the same second: EventBridge's time alone cannot order them.
      const a = presenceEvent(phone, first, second0, { detail: { receivedAt: second0 + 100 } });
      const b = presenceEvent(phone, second, second0, { detail: { receivedAt: second0 + 600 } });
      expect(a.time).toBe(b.time);
      expect(await handler(batch(record(b), record(a)))).toEqual({ batchItemFailures: [] });
      const item = await stored(phone);
      expect(item?.status).toEqual({ S: second });
      expect(item?.online).toEqual({ BOOL: presence.online });
      // A subscriber keeping the `current` of the highest sequence (offline when it saw nothing).
      const derived = derivedFor(phone);
      const details = derived.map((e) => e.detail as { sequence: number; current: unknown });
      const highest = details.reduce<(typeof details)[number] | undefined>(
        (best, d) => (best === undefined || d.sequence > best.sequence ? d : best),
        undefined,
      );
      const seen: unknown = highest?.current ?? { online: false, activity: null };
      expect(seen).toEqual({ ...presence });
      // Never an announced activity that Z-API's order had already ended.
      if (first === 'COMPOSING')
        expect(derived.map((e) => e.DetailType)).not.toContain(DERIVED_DETAIL_TYPES.activityStarted);
    },
  );

  it('failed records are counted (one EMF line per failing batch, StateRecordFailures), for the alarm Lambda Errors cannot be', async () => {
    const handler = await loadStateHandler({ [STATE_ENV.metricsNamespace]: 'Team/Presence' });
    const lines: string[] = [];
    const write = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      lines.push(String(chunk));
      return true;
    });
    try {
      aws.failNextEntries('InternalFailure');
      const failing = record(presenceEvent(newPhone(), 'AVAILABLE', Date.now()));
      const fine = record(presenceEvent(newPhone(), 'AVAILABLE', Date.now()));
      expect(await handler(batch(failing, fine))).toEqual({
        batchItemFailures: [{ itemIdentifier: failing.messageId }],
      });
      expect(await handler(batch(record(presenceEvent(newPhone(), 'AVAILABLE', Date.now()))))).toEqual({
        batchItemFailures: [],
      });
    } finally {
      write.mockRestore();
    }
    const metrics = lines.filter((l) => l.includes('StateRecordFailures')).map((l) => JSON.parse(l));
    expect(metrics).toHaveLength(1);
    expect(metrics[0]).toMatchObject({
      _aws: {
        CloudWatchMetrics: [
          { Namespace: 'Team/Presence', Metrics: [{ Name: 'StateRecordFailures', Unit: 'Count' }] },
        ],
      },
      StateRecordFailures: 1,
    });
  });

  it('a redelivery of an event of the same second (not the last applied) is a duplicate: nothing re-applied', async () => {
    const handler = await loadStateHandler();
    const phone = newPhone();
    const now = Date.now();
    const composing = presenceEvent(phone, 'COMPOSING', now);
    const paused = presenceEvent(phone, 'PAUSED', now);
    expect(await handler(batch(record(composing), record(paused)))).toEqual({ batchItemFailures: [] });
    const before = await stored(phone);
    expect([...(before?.recentEventIds?.SS ?? [])].sort()).toEqual([composing.id, paused.id].sort());
    const sentBefore = sqs.sent.length;
    expect(await handler(batch(record(composing)))).toEqual({ batchItemFailures: [] });
    expect(derivedFor(phone).map((e) => e.DetailType)).toEqual([
      DERIVED_DETAIL_TYPES.cameOnline,
      DERIVED_DETAIL_TYPES.activityStarted,
      DERIVED_DETAIL_TYPES.activityStopped,
    ]);
    expect(sqs.sent.length).toBe(sentBefore);
    expect(await stored(phone)).toEqual(before);
    expect((await stored(phone))?.status).toEqual({ S: 'PAUSED' });
  });

  it('EventBridge refusing an entry fails the record; its redelivery publishes the pending events once', async () => {
    const now = freezeClock();
    const handler = await loadStateHandler();
    const phone = newPhone();
    const event = record(presenceEvent(phone, 'AVAILABLE', now));
    aws.failNextEntries('InternalFailure');
    expect(await handler(batch(event))).toEqual({ batchItemFailures: [{ itemIdentifier: event.messageId }] });
    expect(derivedFor(phone)).toEqual([]);
    expect((await stored(phone))?.pending?.S).toContain('came-online');
    expect(await handler(batch(event))).toEqual({ batchItemFailures: [] });
    expect(derivedFor(phone).map((e) => e.DetailType)).toEqual([DERIVED_DETAIL_TYPES.cameOnline]);
    expect(derivedFor(phone)[0]?.detail.sequence).toBe(now);
    // Cleared once published: another redelivery publishes nothing more.
    expect((await stored(phone))?.pending).toBeUndefined();
    expect(await handler(batch(event))).toEqual({ batchItemFailures: [] });
    expect(derivedFor(phone)).toHaveLength(1);
  });

  it('a failed expiry check is brought back in seconds, backing off by receive count (not after the queue’s 3-minute visibility timeout); a failed presence event keeps the queue’s', async () => {
    const now = freezeClock();
    const handler = await loadStateHandler();
    const phone = newPhone();
    await handler(batch(record(presenceEvent(phone, 'COMPOSING', now - 30_000))));
    const seen = sqs.visibility.length;
    for (const [receives, seconds] of [
      [1, 5],
      [2, 15],
      [3, 60],
      [4, 180],
      [5, 300],
      [12, 300],
      [MAX_RECEIVES - 1, 300],
    ] as const) {
      aws.failNextEntries('InternalFailure');
      const check = record(expiry(phone, INSTANCE, undefined, now - 30_000), receives);
      expect(await handler(batch(check))).toEqual({
        batchItemFailures: [{ itemIdentifier: check.messageId }],
      });
      expect(sqs.visibility.at(-1)).toEqual({
        QueueUrl: queueUrl,
        ReceiptHandle: check.receiptHandle,
        VisibilityTimeout: seconds,
      });
    }
    expect(sqs.visibility.length).toBe(seen + 7);
    // Retried for over an hour, never more than 5 minutes apart: an outage of 15 minutes and more ends
    // with the stop published within 5 minutes of EventBridge's return, not at the chat's next callback.
    const spanned = Array.from({ length: MAX_RECEIVES - 1 }, (_, i) =>
      Number(EXPIRY_RETRY_SECONDS[Math.min(i, EXPIRY_RETRY_SECONDS.length - 1)]),
    ).reduce((a, b) => a + b, 0);
    expect(spanned).toBeGreaterThan(60 * 60);
    expect(Math.max(...EXPIRY_RETRY_SECONDS)).toBeLessThanOrEqual(300);
    // A presence event that fails is left to the queue.
    aws.failNextEntries('InternalFailure');
    const event = record(presenceEvent(newPhone(), 'AVAILABLE', now));
    expect(await handler(batch(event))).toEqual({ batchItemFailures: [{ itemIdentifier: event.messageId }] });
    expect(sqs.visibility.length).toBe(seen + 7);
    // The check, when it comes back, ends the typing.
    const again = record(expiry(phone, INSTANCE, undefined, now - 30_000), 2);
    expect(await handler(batch(again))).toEqual({ batchItemFailures: [] });
    expect(derivedFor(phone).at(-1)).toMatchObject({ DetailType: DERIVED_DETAIL_TYPES.activityStopped });
  });

  it('SQS failing (or answering a wrong MD5) fails the record before anything is written', async () => {
    const handler = await loadStateHandler();
    for (const breakIt of [() => (sqs.failNext = 1), () => (sqs.wrongMd5Next = 1)]) {
      const phone = newPhone();
      const event = record(presenceEvent(phone, 'COMPOSING', Date.now()));
      breakIt();
      expect(await handler(batch(event))).toEqual({
        batchItemFailures: [{ itemIdentifier: event.messageId }],
      });
      expect(await stored(phone)).toBeUndefined();
      expect(derivedFor(phone)).toEqual([]);
      expect(await handler(batch(event))).toEqual({ batchItemFailures: [] });
      expect(derivedFor(phone).map((e) => e.DetailType)).toEqual([
        DERIVED_DETAIL_TYPES.cameOnline,
        DERIVED_DETAIL_TYPES.activityStarted,
      ]);
    }
  });

  it('a record that fails holds back the chat’s later records of the batch (failures too, not applied); other chats go on', async () => {
    const now = freezeClock();
    const handler = await loadStateHandler();
    const a = newPhone();
    const b = newPhone();
    const a1 = record(presenceEvent(a, 'AVAILABLE', now - 3_000));
    const a2 = record(presenceEvent(a, 'COMPOSING', now - 2_000));
    const a3 = record(presenceEvent(a, 'PAUSED', now - 1_000));
    const a4 = record(presenceEvent(a, 'UNAVAILABLE', now));
    const b1 = record(presenceEvent(b, 'AVAILABLE', now - 2_000));
    const b2 = record(presenceEvent(b, 'UNAVAILABLE', now));
    const junk = record('{not json');
    // Only a2 (a COMPOSING) asks SQS for an expiry check: it fails.
    sqs.failNext = 1;
    const result = await handler(batch(a1, b1, a2, junk, b2, a3, a4));
    expect(result.batchItemFailures.map((f) => f.itemIdentifier).sort()).toEqual(
      [a2, junk, a3, a4].map((r) => r.messageId).sort(),
    );
    // a3 and a4 did not overtake a2.
    expect(await stored(a)).toMatchObject({ status: { S: 'AVAILABLE' }, version: { N: '1' } });
    expect(derivedFor(a).map((e) => e.DetailType)).toEqual([DERIVED_DETAIL_TYPES.cameOnline]);
    expect((await stored(b))?.status).toEqual({ S: 'UNAVAILABLE' });
    expect(derivedFor(b).map((e) => e.DetailType)).toEqual([
      DERIVED_DETAIL_TYPES.cameOnline,
      DERIVED_DETAIL_TYPES.wentOffline,
    ]);
    // Logged: the failure and the unreadable record (the held-back ones are not failures of their own).
    expect(errors.map((e) => (e as { messageId: string }).messageId).sort()).toEqual(
      [a2.messageId, junk.messageId].sort(),
    );

    // SQS delivers them again: in order now, nothing lost.
    expect(await handler(batch(a2, a3, a4))).toEqual({ batchItemFailures: [] });
    expect(derivedFor(a).map((e) => [e.DetailType, e.detail.sequence])).toEqual([
      [DERIVED_DETAIL_TYPES.cameOnline, now - 3_000],
      [DERIVED_DETAIL_TYPES.activityStarted, now - 3_000 + 1],
      [DERIVED_DETAIL_TYPES.activityStopped, now - 3_000 + 2],
      [DERIVED_DETAIL_TYPES.wentOffline, now - 3_000 + 3],
    ]);
  });

  it('an unreadable record fails alone: it holds back nothing (it names no chat)', async () => {
    const handler = await loadStateHandler();
    const phone = newPhone();
    const now = Date.now();
    const bad = record({ ...presenceEvent(phone, 'AVAILABLE', now), time: 'yesterday' });
    const later = record(presenceEvent(phone, 'UNAVAILABLE', now + 1_000));
    expect(await handler(batch(bad, later))).toEqual({
      batchItemFailures: [{ itemIdentifier: bad.messageId }],
    });
    expect((await stored(phone))?.status).toEqual({ S: 'UNAVAILABLE' });
  });

  it('an empty or overlong chat id or participant, or an instance id Z-API never gives: unstorable, logged and acknowledged (not retried), nothing written', async () => {
    const now = freezeClock();
    const handler = await loadStateHandler();
    const infos: unknown[] = [];
    vi.spyOn(console, 'info').mockImplementation((entry: unknown) => {
      infos.push(entry);
    });
    const long = '5'.repeat(200);
    const group = newGroup();
    const member = 'p'.repeat(200);
    const unstorable = [
      record(presenceEvent(long, 'COMPOSING', now)),
      record(presenceEvent(group, 'RECORDING', now, { detail: { participantPhone: member } })),
      record(presenceEvent(long, 'AVAILABLE', now, { detail: { participantPhone: '5511' } })),
      record(expiry(long)),
      record(expiry(group, INSTANCE, member)),
      // Never from the receiver (it validates them), but another publisher of the source could send them.
      record(presenceEvent(newPhone(), 'AVAILABLE', now, { instanceId: '' })),
      record(presenceEvent(newPhone(), 'AVAILABLE', now, { instanceId: 'I'.repeat(3_000) })),
      record(presenceEvent(newPhone(), 'AVAILABLE', now, { instanceId: 'not/an instance' })),
      record(presenceEvent('', 'AVAILABLE', now)),
    ];
    // The longest that is kept: 128.
    const edge = '6'.repeat(128);
    const kept = record(presenceEvent(edge, 'AVAILABLE', now));
    const sentBefore = sqs.sent.length;
    const eventsBefore = aws.events.length;
    expect(await handler(batch(...unstorable, kept))).toEqual({ batchItemFailures: [] });
    expect(infos).toEqual(
      expect.arrayContaining(
        unstorable.map((r) => ({
          msg: 'presence event not applied',
          outcome: 'unstorable',
          messageId: r.messageId,
        })),
      ),
    );
    expect(infos).toHaveLength(unstorable.length);
    expect(errors).toEqual([]);
    expect(await stored(long)).toBeUndefined();
    expect(await stored(`${long}#5511`)).toBeUndefined();
    expect(await stored(`${group}#${member}`)).toBeUndefined();
    expect(sqs.sent.length).toBe(sentBefore);
    expect(aws.events.slice(eventsBefore).map((e) => JSON.parse(String(e.Detail)).phone)).toEqual([edge]);
    expect((await stored(edge))?.status).toEqual({ S: 'AVAILABLE' });
  });

  it('an event replayed from the archive (replay-name) is applied like any: what it changes is published (subscribers missed it too)', async () => {
    const now = freezeClock();
    const handler = await loadStateHandler();
    const phone = newPhone();
    const replayed = (status: PresenceStatus, at: number) => ({
      ...presenceEvent(phone, status, at),
      'replay-name': 'presence-recovery',
    });
    // Live: the contact came online and typed; the PAUSED and UNAVAILABLE after it were lost.
    expect(await handler(batch(record(presenceEvent(phone, 'COMPOSING', now - 10_000))))).toEqual({
      batchItemFailures: [],
    });
    // The replay brings them back, with an older copy of the COMPOSING (dropped).
    const replay = [
      replayed('COMPOSING', now - 10_000),
      replayed('PAUSED', now - 8_000),
      replayed('UNAVAILABLE', now - 6_000),
    ];
    expect(await handler(batch(...replay.map(record)))).toEqual({ batchItemFailures: [] });
    expect(derivedFor(phone).map((e) => [e.DetailType, e.detail.sequence, e.detail.current])).toEqual([
      [DERIVED_DETAIL_TYPES.cameOnline, now - 10_000, { online: true, activity: 'typing' }],
      [DERIVED_DETAIL_TYPES.activityStarted, now - 10_000 + 1, { online: true, activity: 'typing' }],
      [DERIVED_DETAIL_TYPES.activityStopped, now - 10_000 + 2, { online: true, activity: null }],
      [DERIVED_DETAIL_TYPES.wentOffline, now - 10_000 + 3, { online: false, activity: null }],
    ]);
    expect(await stored(phone)).toMatchObject({
      status: { S: 'UNAVAILABLE' },
      lastEventId: { S: replay[2]?.id },
      sequence: { N: String(now - 10_000 + 3) },
    });
  });

  it('at least once: an entry accepted next to one refused is published again with the same sequence', async () => {
    const now = freezeClock();
    const handler = await loadStateHandler();
    const phone = newPhone();
    const event = record(presenceEvent(phone, 'COMPOSING', now));
    // came-online accepted, activity-started refused.
    aws.failNextEntries('', 'InternalFailure');
    expect(await handler(batch(event))).toEqual({ batchItemFailures: [{ itemIdentifier: event.messageId }] });
    expect(await handler(batch(event))).toEqual({ batchItemFailures: [] });
    const published = derivedFor(phone);
    expect(published.map((e) => [e.DetailType, e.detail.sequence])).toEqual([
      [DERIVED_DETAIL_TYPES.cameOnline, now],
      [DERIVED_DETAIL_TYPES.cameOnline, now],
      [DERIVED_DETAIL_TYPES.activityStarted, now + 1],
    ]);
    expect(published[1]?.Detail).toBe(published[0]?.Detail);
  });
});

describe('group chats (a state per participant)', () => {
  const A = '5511911110000';
  const B = '5511922220000';

  it('A typing, B pausing then leaving: A’s typing goes on; an item per participant; the read route lists them and reads one', async () => {
    const now = freezeClock();
    const handler = await loadStateHandler();
    const group = newGroup();
    const sentBefore = sqs.sent.length;
    const result = await handler(
      batch(
        record(presenceEvent(group, 'COMPOSING', now - 2_000, { detail: { participantPhone: A } })),
        // Z-API's participant fields, in the order participantOf reads them.
        record(
          presenceEvent(group, 'PAUSED', now - 1_000, {
            detail: { participant: B, participantLid: '9@lid' },
          }),
        ),
        record(
          presenceEvent(group, 'UNAVAILABLE', now, {
            detail: { participantPhone: ` ${B} `, participant: A },
          }),
        ),
      ),
    );
    expect(result).toEqual({ batchItemFailures: [] });
    const at = (ms: number) => new Date(ms).toISOString();
    const key = (participant: string) => ({ instanceId: INSTANCE, phone: group, participant });
    const typing = { online: true, activity: 'typing' };
    expect(derivedFor(group, A).map((e) => [e.DetailType, e.detail])).toEqual([
      [
        DERIVED_DETAIL_TYPES.cameOnline,
        { ...key(A), at: at(now - 2_000), sequence: now - 2_000, current: typing },
      ],
      [
        DERIVED_DETAIL_TYPES.activityStarted,
        { ...key(A), activity: 'typing', at: at(now - 2_000), sequence: now - 2_000 + 1, current: typing },
      ],
    ]);
    expect(derivedFor(group, B).map((e) => [e.DetailType, e.detail])).toEqual([
      [
        DERIVED_DETAIL_TYPES.cameOnline,
        { ...key(B), at: at(now - 1_000), sequence: now - 1_000, current: { online: true, activity: null } },
      ],
      [
        DERIVED_DETAIL_TYPES.wentOffline,
        {
          ...key(B),
          onlineSince: at(now - 1_000),
          at: at(now),
          durationMs: 1_000,
          sequence: now - 1_000 + 1,
          current: { online: false, activity: null },
        },
      ],
    ]);
    expect(derivedFor(group)).toEqual([]);
    for (const entry of [...derivedFor(group, A), ...derivedFor(group, B)]) {
      const schema = DERIVED_DETAIL_SCHEMAS[entry.DetailType as DerivedDetailType];
      expect(v.safeParse(schema, entry.detail).issues).toBeUndefined();
    }
    expect(sqs.sent.slice(sentBefore)).toEqual([
      {
        QueueUrl: queueUrl,
        MessageBody: JSON.stringify(expiry(group, INSTANCE, A, now - 2_000)),
        DelaySeconds: 25,
      },
    ]);
    expect(await stored(`${group}#${A}`)).toMatchObject({
      chat: { S: `${group}#${A}` },
      phone: { S: group },
      participant: { S: A },
      activity: { S: 'typing' },
    });
    expect(await stored(`${group}#${B}`)).toMatchObject({ participant: { S: B }, online: { BOOL: false } });
    expect(await stored(group)).toBeUndefined();

    // The read route: every participant, or one.
    const store = dynamoStore(client, TABLE, { ttlSeconds: 60 });
    const d = deadlineAt(Date.now() + 5_000);
    const viewA = stateView((await store.get(key(A), d))?.state as ChatState);
    const viewB = stateView((await store.get(key(B), d))?.state as ChatState);
    expect(viewA).toMatchObject({ participant: A, activity: 'typing' });
    const list = await readPresence(path(INSTANCE, group), store, undefined, { now: () => now });
    expect(list.statusCode).toBe(200);
    expect(JSON.parse(String(list.body))).toEqual({
      instanceId: INSTANCE,
      phone: group,
      participants: [viewA, viewB],
    });
    const one = await readPresence(path(INSTANCE, group, B), store, undefined, { now: () => now });
    expect(one.statusCode).toBe(200);
    expect(JSON.parse(String(one.body))).toEqual(viewB);
    const nobody = await readPresence(path(INSTANCE, group, '5511933330000'), store, undefined, {
      now: () => now,
    });
    expect(nobody.statusCode).toBe(404);
    expect(JSON.parse(String(nobody.body))).toMatchObject({ ok: false, error: 'unknown-chat' });

    // A's expiry check, with its participant, when A's window (25 s, and the second of the news's
    // EventBridge time) has ended.
    vi.setSystemTime(now + 24_000);
    expect(await handler(batch(record(expiry(group, INSTANCE, A))))).toEqual({ batchItemFailures: [] });
    expect(derivedFor(group, A).at(-1)?.detail).toEqual({
      ...key(A),
      activity: 'typing',
      reason: 'expired',
      startedAt: at(now - 2_000),
      at: at(now - 2_000),
      durationMs: 0,
      sequence: now - 2_000 + 2,
      current: { online: true, activity: null },
    });
    expect(derivedFor(group, B)).toHaveLength(2);
  });

  // `#` joins a group and its member in the table's sort key (`group#participant`): a direct chat whose
  // phone is `G-group#P` would be participant P of group G-group. No WhatsApp id holds a `#`.
  it('a phone containing `#` (a direct chat `G-group#P`): unstorable, acknowledged (not retried), nothing written; participant P of G-group untouched', async () => {
    const now = freezeClock();
    const handler = await loadStateHandler();
    const group = newGroup();
    const P = '5511944440000';
    expect(
      await handler(
        batch(record(presenceEvent(group, 'AVAILABLE', now - 5_000, { detail: { participantPhone: P } }))),
      ),
    ).toEqual({ batchItemFailures: [] });
    const member = await stored(`${group}#${P}`);
    expect(member).toMatchObject({ phone: { S: group }, participant: { S: P }, status: { S: 'AVAILABLE' } });
    const memberEvents = derivedFor(group, P);
    expect(memberEvents.map((e) => e.DetailType)).toEqual([DERIVED_DETAIL_TYPES.cameOnline]);

    const infos: unknown[] = [];
    vi.spyOn(console, 'info').mockImplementation((entry: unknown) => {
      infos.push(entry);
    });
    const odd = `${group}#${P}`;
    const unstorable = [
      record(presenceEvent(odd, 'UNAVAILABLE', now)),
      record(presenceEvent(odd, 'COMPOSING', now)),
      record(expiry(odd)),
      // A `#` anywhere, with or without a participant.
      record(presenceEvent('5511#', 'AVAILABLE', now)),
      record(presenceEvent('#', 'AVAILABLE', now)),
      record(presenceEvent(`${group}#`, 'RECORDING', now, { detail: { participantPhone: '5522' } })),
      record(expiry(`${group}#`, INSTANCE, '5522')),
    ];
    const sentBefore = sqs.sent.length;
    const eventsBefore = aws.events.length;
    expect(await handler(batch(...unstorable))).toEqual({ batchItemFailures: [] });
    expect(infos).toEqual(
      unstorable.map((r) => ({
        msg: 'presence event not applied',
        outcome: 'unstorable',
        messageId: r.messageId,
      })),
    );
    expect(errors).toEqual([]);
    // Nothing published, no expiry check, and P's item exactly as it was.
    expect(aws.events.length).toBe(eventsBefore);
    expect(sqs.sent.length).toBe(sentBefore);
    expect(await stored(odd)).toEqual(member);
    expect(derivedFor(odd)).toEqual([]);
    expect(derivedFor(group, P)).toEqual(memberEvents);
    for (const chat of ['5511#', '#', `${group}#`, `${group}##5522`, `${group}#5522`])
      expect(await stored(chat), chat).toBeUndefined();
  });

  it('a group whose callbacks name no participant is one chat: GET on the group reads it', async () => {
    const handler = await loadStateHandler();
    const group = newGroup();
    const now = Date.now();
    await handler(
      batch(record(presenceEvent(group, 'AVAILABLE', now, { detail: { participantPhone: '  ' } }))),
    );
    expect((await stored(group))?.participant).toBeUndefined();
    const store = dynamoStore(client, TABLE, { ttlSeconds: 60 });
    const chat = await store.get({ instanceId: INSTANCE, phone: group }, deadlineAt(Date.now() + 5_000));
    const read = await readPresence(path(INSTANCE, group), store);
    expect(read.statusCode).toBe(200);
    expect(JSON.parse(String(read.body))).toEqual(stateView(chat?.state as ChatState));
    expect(JSON.parse(String(read.body))).not.toHaveProperty('participants');
    expect((await readPresence(path(INSTANCE, newGroup()), store)).statusCode).toBe(404);
  });
});

describe('presence read', () => {
  it('readPresence: 200 with the stateView, 404 for an unknown chat, 400 for a bad instance or phone', async () => {
    const handler = await loadStateHandler();
    const phone = newPhone();
    await handler(batch(record(presenceEvent(phone, 'COMPOSING', Date.now(), { lastSeen: null }))));
    const store = dynamoStore(client, TABLE, { ttlSeconds: 60 });
    const chat = await store.get({ instanceId: INSTANCE, phone: phone }, deadlineAt(Date.now() + 5_000));
    if (chat === undefined) throw new Error('the chat was not stored');

    const ok = await readPresence(path(INSTANCE, phone), store);
    expect(ok.statusCode).toBe(200);
    expect(ok.headers).toEqual({ 'content-type': 'application/json' });
    expect(JSON.parse(String(ok.body))).toEqual(stateView(chat.state));
    expect(JSON.parse(String(ok.body))).toMatchObject({
      status: 'COMPOSING',
      activity: 'typing',
      lastSeen: null,
    });

    const unknown = await readPresence(path(INSTANCE, newPhone()), store);
    expect(unknown.statusCode).toBe(404);
    expect(JSON.parse(String(unknown.body))).toMatchObject({ ok: false, error: 'unknown-chat' });

    for (const instanceId of [undefined, '', 'bad id', 'a/b', 'x'.repeat(65)]) {
      const bad = await readPresence(path(instanceId, phone), store);
      expect(bad.statusCode, String(instanceId)).toBe(400);
      expect(JSON.parse(String(bad.body))).toMatchObject({ ok: false, error: 'invalid-instance' });
    }
    for (const badPhone of [undefined, '', 'p'.repeat(129)]) {
      const bad = await readPresence(path(INSTANCE, badPhone), store);
      expect(bad.statusCode).toBe(400);
      expect(JSON.parse(String(bad.body))).toMatchObject({ ok: false, error: 'invalid-phone' });
    }
  });

  it('readPresence: 503 when the table cannot be read', async () => {
    const broken = dynamoStore(client, 'no-such-table', { ttlSeconds: 60 });
    const result = await readPresence(path(INSTANCE, newPhone()), broken);
    expect(result.statusCode).toBe(503);
    expect(JSON.parse(String(result.body))).toMatchObject({ ok: false, error: 'store-unavailable' });
  });

  it('the read Lambda handler reads the table named in its environment', async () => {
    const stateHandler = await loadStateHandler();
    const phone = newPhone();
    await stateHandler(batch(record(presenceEvent(phone, 'UNAVAILABLE', Date.now()))));
    vi.resetModules();
    const { handler } = await import('../../../functions/presence-store/read-handler.ts');
    const ok = await handler(path(INSTANCE, phone) as APIGatewayProxyEventV2);
    expect(ok.statusCode).toBe(200);
    expect(JSON.parse(String(ok.body))).toMatchObject({
      instanceId: INSTANCE,
      phone,
      status: 'UNAVAILABLE',
      online: false,
      activity: null,
    });
    expect((await handler(path(INSTANCE, newPhone()) as APIGatewayProxyEventV2)).statusCode).toBe(404);
  });

  it('readPresence: an activity past its expiry window is shown ended, before its expiry check comes (nothing written)', async () => {
    const now = freezeClock();
    const handler = await loadStateHandler();
    const phone = newPhone();
    await handler(batch(record(presenceEvent(phone, 'COMPOSING', now, { lastSeen: null }))));
    const store = dynamoStore(client, TABLE, { ttlSeconds: 60 });
    const chat = await store.get({ instanceId: INSTANCE, phone }, deadlineAt(Date.now() + 5_000));
    const read = async (at: number, expiryMs?: number) => {
      const result = await readPresence(path(INSTANCE, phone), store, undefined, {
        now: () => at,
        ...(expiryMs !== undefined && { expiryMs }),
      });
      expect(result.statusCode).toBe(200);
      return JSON.parse(String(result.body)) as Record<string, unknown>;
    };
    const iso = new Date(now).toISOString();
    const ended = {
      instanceId: INSTANCE,
      phone,
      status: 'COMPOSING',
      statusSince: iso,
      online: true,
      onlineSince: iso,
      activity: null,
      lastSeen: null,
      updatedAt: iso,
    };
    expect(await read(now + 25_999)).toEqual(stateView(chat?.state as ChatState));
    expect(await read(now + 25_999)).toMatchObject({ activity: 'typing', activitySince: iso });
    // The default window: 25 s, and the second of EventBridge's whole-second times.
    expect(await read(now + 26_000)).toEqual(ended);
    // Another window.
    expect(await read(now + 10_999, 10_000)).toMatchObject({ activity: 'typing' });
    expect(await read(now + 11_000, 10_000)).toEqual(ended);
    expect((await stored(phone))?.activity).toEqual({ S: 'typing' });
  });

  it('readPresence: an item past its expiresAt (DynamoDB deletes expired items late) is 404, a participant of a group too', async () => {
    const now = freezeClock();
    const handler = await loadStateHandler({ [STATE_ENV.idleDays]: '1' });
    const phone = newPhone();
    const group = newGroup();
    await handler(
      batch(
        record(presenceEvent(phone, 'UNAVAILABLE', now)),
        record(presenceEvent(group, 'UNAVAILABLE', now, { detail: { participantPhone: '5511' } })),
      ),
    );
    vi.setSystemTime(now + 3_600_000);
    await handler(
      batch(
        record(presenceEvent(group, 'AVAILABLE', now + 3_600_000, { detail: { participantPhone: '5522' } })),
      ),
    );
    const expiresAt = Number((await stored(phone))?.expiresAt?.N) * 1_000;
    expect(expiresAt).toBe(now + 86_400_000);
    const store = dynamoStore(client, TABLE, { ttlSeconds: 60 });
    const at = (ms: number, participant?: string, chat = phone) =>
      readPresence(path(INSTANCE, chat, participant), store, undefined, { now: () => ms });

    expect((await at(expiresAt - 1)).statusCode).toBe(200);
    const gone = await at(expiresAt);
    expect(gone.statusCode).toBe(404);
    expect(JSON.parse(String(gone.body))).toMatchObject({ ok: false, error: 'unknown-chat' });

    const members = async (ms: number) => {
      const result = await at(ms, undefined, group);
      return result.statusCode === 200
        ? (
            JSON.parse(String(result.body)) as { participants: Array<{ participant: string }> }
          ).participants.map((m) => m.participant)
        : result.statusCode;
    };
    expect(await members(expiresAt - 1)).toEqual(['5511', '5522']);
    expect(await members(expiresAt)).toEqual(['5522']);
    expect((await at(expiresAt, '5511', group)).statusCode).toBe(404);
    expect((await at(expiresAt, '5522', group)).statusCode).toBe(200);
    expect(await members(expiresAt + 3_600_000)).toBe(404);
  });

  it('readPresence: a phone containing `#` is 400 invalid-phone (never a group participant’s item)', async () => {
    const handler = await loadStateHandler();
    const group = newGroup();
    const P = '5511955550000';
    await handler(
      batch(record(presenceEvent(group, 'AVAILABLE', Date.now(), { detail: { participantPhone: P } }))),
    );
    const store = dynamoStore(client, TABLE, { ttlSeconds: 60 });
    // P's item is there, read as a participant of the group.
    expect((await readPresence(path(INSTANCE, group, P), store)).statusCode).toBe(200);
    for (const [phone, participant] of [
      [`${group}#${P}`, undefined],
      [`${group}#${P}`, P],
      [`${group}#`, undefined],
      ['#', undefined],
      ['5511#99', undefined],
    ] as const) {
      const bad = await readPresence(path(INSTANCE, phone, participant), store);
      expect(bad.statusCode, phone).toBe(400);
      expect(JSON.parse(String(bad.body))).toEqual({
        ok: false,
        error: 'invalid-phone',
        message: 'the URL does not name a chat',
      });
    }
  });

  it('readPresence: ?participant= must be 1 to 128 characters (400 invalid-participant)', async () => {
    const store = dynamoStore(client, TABLE, { ttlSeconds: 60 });
    for (const participant of ['', 'p'.repeat(129)]) {
      for (const phone of [newGroup(), newPhone()]) {
        const bad = await readPresence(path(INSTANCE, phone, participant), store);
        expect(bad.statusCode, `${participant.length}`).toBe(400);
        expect(JSON.parse(String(bad.body))).toEqual({
          ok: false,
          error: 'invalid-participant',
          message: 'participant must be 1 to 128 characters',
        });
      }
    }
    for (const participant of ['p', 'p'.repeat(128)]) {
      const unknown = await readPresence(path(INSTANCE, newGroup(), participant), store);
      expect(unknown.statusCode).toBe(404);
      expect(JSON.parse(String(unknown.body))).toMatchObject({ ok: false, error: 'unknown-chat' });
    }
    // The instance and the phone are checked first.
    const badPhone = await readPresence(path(INSTANCE, '', ''), store);
    expect(JSON.parse(String(badPhone.body))).toMatchObject({ error: 'invalid-phone' });
  });

  it('the read Lambda handler takes the expiry window from ACTIVITY_EXPIRY_SECONDS', async () => {
    const now = freezeClock();
    const stateHandler = await loadStateHandler({ [STATE_ENV.expirySeconds]: '5' });
    const phone = newPhone();
    await stateHandler(batch(record(presenceEvent(phone, 'RECORDING', now - 6_000))));
    expect((await stored(phone))?.activity).toEqual({ S: 'recording' });
    vi.resetModules();
    const { handler } = await import('../../../functions/presence-store/read-handler.ts');
    const activity = async () =>
      (
        JSON.parse(String((await handler(path(INSTANCE, phone) as APIGatewayProxyEventV2)).body)) as {
          activity: unknown;
        }
      ).activity;
    // 6 s without news: past a 5 s window.
    expect(await activity()).toBeNull();
    // Without the setting (or a bad one): the default 25 s.
    for (const value of [undefined, '', 'soon', '2.5', '0']) {
      vi.stubEnv(STATE_ENV.expirySeconds, value);
      expect(await activity(), String(value)).toBe('recording');
    }
    vi.stubEnv(STATE_ENV.expirySeconds, '7');
    expect(await activity()).toBe('recording');
  });
});

describe('the shipped state and read bundles (a real synth with the presence store)', () => {
  let stateBundle: string;
  let readBundle: string;

  beforeAll(() => {
    process.env.CDK_VALIDATION = 'true';
    const result = synth({ presenceStore: 'true' }, { bundle: true });
    delete process.env.CDK_VALIDATION;
    const bundle = (prefix: string) =>
      join(bundleDirectory(result.template, result.assembly.directory, prefix), 'index.mjs');
    const functions = Object.keys(result.template.findResources('AWS::Lambda::Function'));
    stateBundle = bundle(functions.find((id) => /^State[0-9A-F]{8}$/.test(id)) ?? 'no state function');
    readBundle = bundle('StateRead');
  }, 180_000);

  const env = () => ({
    ...standInEnvironment(aws.url),
    AWS_ENDPOINT_URL_DYNAMODB: dynamoUrl,
    AWS_ENDPOINT_URL_SQS: sqs.url,
    [STATE_ENV.tableName]: TABLE,
    [STATE_ENV.eventBusName]: BUS,
    [STATE_ENV.expiryQueueUrl]: queueUrl,
  });

  it('applies presence events ordered by receivedAt, schedules and runs the expiry, and the read bundle serves the state', async () => {
    const phone = newPhone();
    const base = Math.floor(Date.now() / 1_000) * 1_000 - 60_000;
    const sentBefore = sqs.sent.length;
    // AVAILABLE and COMPOSING in one second, delivered swapped; then the expiry check of the COMPOSING.
    const available = presenceEvent(phone, 'AVAILABLE', base, { detail: { receivedAt: base + 100 } });
    const composing = presenceEvent(phone, 'COMPOSING', base, { detail: { receivedAt: base + 700 } });
    const { results, stdout, stderr } = await invokeBundle(
      stateBundle,
      [
        { Records: [record(composing), record(available)] },
        { Records: [record(expiry(phone, INSTANCE, undefined, base + 700))] },
      ],
      env(),
    );
    expect(results).toEqual([{ batchItemFailures: [] }, { batchItemFailures: [] }]);
    expect(derivedFor(phone).map((e) => e.DetailType)).toEqual([
      DERIVED_DETAIL_TYPES.cameOnline,
      DERIVED_DETAIL_TYPES.activityStarted,
      DERIVED_DETAIL_TYPES.activityStopped,
    ]);
    expect(derivedFor(phone).at(-1)?.detail).toMatchObject({
      reason: 'expired',
      current: { online: true, activity: null },
    });
    expect(sqs.sent.length).toBe(sentBefore + 1);
    expect(`${stdout}${stderr}`).not.toContain('"level":"ERROR"');

    const read = await invokeBundle(
      readBundle,
      [
        { pathParameters: { instanceId: INSTANCE, phone } },
        { pathParameters: { instanceId: INSTANCE, phone: newPhone() } },
        { pathParameters: { instanceId: 'bad id', phone } },
      ],
      env(),
    );
    const [found, missing, bad] = read.results as Array<{ statusCode: number; body: string }>;
    expect(found?.statusCode).toBe(200);
    expect(JSON.parse(found?.body ?? '{}')).toMatchObject({
      instanceId: INSTANCE,
      phone,
      online: true,
      activity: null,
      status: 'COMPOSING',
    });
    expect(missing?.statusCode).toBe(404);
    expect(bad?.statusCode).toBe(400);
  }, 60_000);

  it('with EventBridge refusing, the state bundle fails the record and its retry publishes the outbox once', async () => {
    const phone = newPhone();
    const event = presenceEvent(phone, 'AVAILABLE', Date.now());
    aws.failNextEntries('InternalFailure');
    const first = await invokeBundle(stateBundle, [{ Records: [record(event)] }], env());
    expect(first.results).toEqual([{ batchItemFailures: [{ itemIdentifier: expect.any(String) }] }]);
    expect(derivedFor(phone)).toEqual([]);
    const retry = await invokeBundle(stateBundle, [{ Records: [record(event, 2)] }], env());
    expect(retry.results).toEqual([{ batchItemFailures: [] }]);
    expect(derivedFor(phone).map((e) => e.DetailType)).toEqual([DERIVED_DETAIL_TYPES.cameOnline]);
  }, 60_000);
});
