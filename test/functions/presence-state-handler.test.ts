/**
 * The presence-state Lambda (functions/presence-state/handler.ts) and the read function
 * (functions/presence-read/handler.ts) through the real SDK: DynamoDB is dynalite, EventBridge the
 * project's AWS stand-in, SQS a tiny AWS JSON 1.0 stand-in below. SQS batches carry EventBridge events
 * (as an EventBridge→SQS target delivers them) and expiry checks.
 */
import { createHash, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  CreateTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  GetItemCommand,
} from '@aws-sdk/client-dynamodb';
import type { APIGatewayProxyEventV2, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import dynalite from 'dynalite';
import * as v from 'valibot';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { readPresence } from '../../functions/presence-read/handler.ts';
import { deadlineAt } from '../../functions/shared/deadline.ts';
import {
  DERIVED_DETAIL_TYPES,
  DERIVED_EVENT_SOURCE,
  DETAIL_TYPES,
  type DerivedDetailType,
  EVENT_SOURCE,
  type PresenceStatus,
} from '../../functions/shared/presence-contract.ts';
import { DERIVED_DETAIL_SCHEMAS } from '../../functions/shared/presence-derived-schemas.ts';
import { stateView } from '../../functions/shared/presence-state.ts';
import { STATE_ENV } from '../../functions/shared/presence-state-settings.ts';
import { dynamoStore } from '../../functions/shared/presence-store.ts';
import { type AwsStandIn, standInEnvironment, startAwsStandIn } from '../support/aws-standin.ts';

// --- A tiny SQS stand-in (AWS JSON 1.0, SendMessage only) -----------------------------------------

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
  const state = { failNext: 0, wrongMd5Next: 0 };
  const server: Server = createServer(async (request, response) => {
    const target = String(request.headers['x-amz-target'] ?? '');
    const body = JSON.parse((await readBody(request)) || '{}') as SentMessage;
    if (target !== 'AmazonSQS.SendMessage') {
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
    sent.push(body);
    const md5 = createHash('md5').update(body.MessageBody, 'utf8').digest('hex');
    const wrong = state.wrongMd5Next > 0;
    if (wrong) state.wrongMd5Next -= 1;
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
  return (await import('../../functions/presence-state/handler.ts')).handler as StateHandler;
}

let chatCounter = 0;
const newPhone = () => {
  chatCounter += 1;
  return `55219${String(chatCounter).padStart(8, '0')}`;
};

/** Whole seconds, as EventBridge stamps `time`. */
const isoSeconds = (ms: number) =>
  new Date(Math.floor(ms / 1_000) * 1_000).toISOString().replace('.000Z', 'Z');

/** The EventBridge event an EventBridge→SQS target puts in the message body. */
function presenceEvent(
  phone: string,
  status: PresenceStatus,
  timeMs: number,
  extra: { id?: string; lastSeen?: number | null; instanceId?: string } = {},
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
    },
  };
}

let messageCounter = 0;
function record(body: unknown): SQSRecord {
  messageCounter += 1;
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  return {
    messageId: `message-${messageCounter}`,
    receiptHandle: `receipt-${messageCounter}`,
    body: text,
    attributes: {
      ApproximateReceiveCount: '1',
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
const expiry = (phone: string, instanceId = INSTANCE) => ({ expire: { instanceId, phone } });

/** Derived events that reached EventBridge for a chat, as [detail-type, detail]. */
const derivedFor = (phone: string) =>
  aws.events
    .map((entry) => ({ ...entry, detail: JSON.parse(String(entry.Detail)) as Record<string, unknown> }))
    .filter((entry) => entry.detail.phone === phone);

const stored = async (phone: string, instanceId = INSTANCE) =>
  (
    await client.send(
      new GetItemCommand({
        TableName: TABLE,
        Key: { instanceId: { S: instanceId }, phone: { S: phone } },
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
  await client.send(
    new CreateTableCommand({
      TableName: TABLE,
      AttributeDefinitions: [
        { AttributeName: 'instanceId', AttributeType: 'S' },
        { AttributeName: 'phone', AttributeType: 'S' },
      ],
      KeySchema: [
        { AttributeName: 'instanceId', KeyType: 'HASH' },
        { AttributeName: 'phone', KeyType: 'RANGE' },
      ],
      BillingMode: 'PAY_PER_REQUEST',
    }),
  );
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
});
afterEach(() => {
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

  it('a batch of presence events: state written, derived events on the bus, the expiry check sent with DelaySeconds 27', async () => {
    const handler = await loadStateHandler();
    const typing = newPhone();
    const online = newPhone();
    const now = Date.now();
    const sentBefore = sqs.sent.length;
    const result = await handler(
      batch(
        record(presenceEvent(typing, 'COMPOSING', now - 2_000)),
        record(presenceEvent(online, 'AVAILABLE', now - 2_000, { lastSeen: 1_740_830_400 })),
        record(presenceEvent(typing, 'PAUSED', now)),
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
    expect(derivedFor(online).map((e) => e.DetailType)).toEqual([DERIVED_DETAIL_TYPES.cameOnline]);
    for (const entry of [...typingEvents, ...derivedFor(online)]) {
      expect(entry.Source).toBe(DERIVED_EVENT_SOURCE);
      expect(entry.EventBusName).toBe(BUS);
      const schema = DERIVED_DETAIL_SCHEMAS[entry.DetailType as DerivedDetailType];
      expect(v.safeParse(schema, entry.detail).issues).toBeUndefined();
      expect(entry.detail.instanceId).toBe(INSTANCE);
    }

    expect(sqs.sent.slice(sentBefore)).toEqual([
      {
        QueueUrl: queueUrl,
        MessageBody: JSON.stringify(expiry(typing)),
        DelaySeconds: 27,
      },
    ]);

    const item = await stored(typing);
    expect(item?.status).toEqual({ S: 'PAUSED' });
    expect(item?.pending).toBeUndefined();
    const expiresAt = Number(item?.expiresAt?.N);
    expect(Math.abs(expiresAt - (Math.floor(Date.now() / 1_000) + 30 * 86_400))).toBeLessThan(60);
    expect((await stored(online))?.lastSeen).toEqual({ N: '1740830400' });
  });

  it('ACTIVITY_EXPIRY_SECONDS and IDLE_DAYS are honoured', async () => {
    const handler = await loadStateHandler({ [STATE_ENV.expirySeconds]: '10', [STATE_ENV.idleDays]: '2' });
    const phone = newPhone();
    const sentBefore = sqs.sent.length;
    expect(await handler(batch(record(presenceEvent(phone, 'RECORDING', Date.now()))))).toEqual({
      batchItemFailures: [],
    });
    expect(sqs.sent.slice(sentBefore).map((m) => m.DelaySeconds)).toEqual([12]);
    const expiresAt = Number((await stored(phone))?.expiresAt?.N);
    expect(Math.abs(expiresAt - (Math.floor(Date.now() / 1_000) + 2 * 86_400))).toBeLessThan(60);
  });

  it('an expiry message ends an activity with no news for 25 s (and an early one does nothing)', async () => {
    const handler = await loadStateHandler();
    const stale = newPhone();
    const fresh = newPhone();
    const now = Date.now();
    await handler(
      batch(
        record(presenceEvent(stale, 'COMPOSING', now - 40_000)),
        record(presenceEvent(stale, 'COMPOSING', now - 30_000)),
        record(presenceEvent(fresh, 'COMPOSING', now)),
      ),
    );
    const result = await handler(
      batch(record(expiry(stale)), record(expiry(fresh)), record(expiry(newPhone()))),
    );
    expect(result).toEqual({ batchItemFailures: [] });
    const stopped = derivedFor(stale).filter((e) => e.DetailType === DERIVED_DETAIL_TYPES.activityStopped);
    expect(stopped).toHaveLength(1);
    expect(stopped[0]?.Source).toBe(DERIVED_EVENT_SOURCE);
    expect(stopped[0]?.detail).toMatchObject({
      activity: 'typing',
      reason: 'expired',
      startedAt: new Date(Math.floor((now - 40_000) / 1_000) * 1_000).toISOString(),
      at: new Date(Math.floor((now - 30_000) / 1_000) * 1_000).toISOString(),
      durationMs: 10_000,
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
    const handler = await loadStateHandler();
    const phone = newPhone();
    const event = record(presenceEvent(phone, 'AVAILABLE', Date.now()));
    aws.failNextEntries('InternalFailure');
    expect(await handler(batch(event))).toEqual({ batchItemFailures: [{ itemIdentifier: event.messageId }] });
    expect(derivedFor(phone)).toEqual([]);
    expect((await stored(phone))?.pending?.S).toContain('came-online');
    expect(await handler(batch(event))).toEqual({ batchItemFailures: [] });
    expect(derivedFor(phone).map((e) => e.DetailType)).toEqual([DERIVED_DETAIL_TYPES.cameOnline]);
    expect((await stored(phone))?.pending).toBeUndefined();
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
});

describe('presence read', () => {
  const path = (instanceId: string | undefined, phone: string | undefined) => ({
    pathParameters: {
      ...(instanceId !== undefined && { instanceId }),
      ...(phone !== undefined && { phone }),
    },
  });

  it('readPresence: 200 with the stateView, 404 for an unknown chat, 400 for a bad instance or phone', async () => {
    const handler = await loadStateHandler();
    const phone = newPhone();
    await handler(batch(record(presenceEvent(phone, 'COMPOSING', Date.now(), { lastSeen: null }))));
    const store = dynamoStore(client, TABLE, { ttlSeconds: 60 });
    const chat = await store.get(INSTANCE, phone, deadlineAt(Date.now() + 5_000));
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
    const { handler } = await import('../../functions/presence-read/handler.ts');
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
});
