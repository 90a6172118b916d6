/**
 * The presence-state subscriber's Lambda: SQS batches from two queues, the presence events (an
 * `onStatus` rule of every status delivers them) and the expiry checks (a delay queue this function
 * feeds), through the core in ./process.ts. A record that fails is reported alone
 * (ReportBatchItemFailures) and retried by SQS; after its retries it lands in the dead-letter queue.
 */

import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import {
  ChangeMessageVisibilityCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import * as v from 'valibot';
import { type Deadline, invocationDeadline } from '../shared/aws/deadline.ts';
import { errorName } from '../shared/aws/error-name.ts';
import {
  DERIVED_EVENT_SOURCE,
  EVENT_SOURCE,
  PRESENCE_STATUSES,
} from '../shared/contract/presence-contract.ts';
import { DEFAULT_METRICS_NAMESPACE } from '../shared/metrics.ts';
import {
  type ChatKey,
  chatKeyOf,
  type DerivedEvent,
  derivedDetail,
  derivedDetailType,
  isStorableChat,
  type PresenceInput,
  participantOf,
} from './presence-state.ts';
import { type ChatWork, processChats, type StateDeps, type Step } from './process.ts';
import { EXPIRY_RETRY_SECONDS, STATE_DEFAULTS, STATE_ENV, STATE_FAILURES_METRIC } from './settings.ts';
import { dynamoStore } from './store.ts';

function required(name: string): string {
  const value = process.env[name]?.trim();
  if (!value) throw new Error(`environment variable ${name} is required`);
  return value;
}
const positive = (name: string, fallback: number) => {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(value) || value < 1)
    throw new Error(`environment variable ${name} must be a whole number`);
  return value;
};

const tableName = required(STATE_ENV.tableName);
const eventBusName = required(STATE_ENV.eventBusName);
const expiryQueueUrl = required(STATE_ENV.expiryQueueUrl);
const expiryMs = positive(STATE_ENV.expirySeconds, STATE_DEFAULTS.expirySeconds) * 1_000;
const idleDays = positive(STATE_ENV.idleDays, STATE_DEFAULTS.idleDays);
const metricsNamespace = process.env[STATE_ENV.metricsNamespace]?.trim() || DEFAULT_METRICS_NAMESPACE;

const requestHandler = { connectionTimeout: 1_000, requestTimeout: 3_000, throwOnRequestTimeout: true };
const dynamo = new DynamoDBClient({ maxAttempts: 3, requestHandler });
const eventBridge = new EventBridgeClient({ maxAttempts: 3, requestHandler });
const sqs = new SQSClient({ maxAttempts: 3, requestHandler });

const deps: StateDeps = {
  store: dynamoStore(dynamo, tableName, { ttlSeconds: idleDays * 86_400 }),
  expiryMs,
  now: Date.now,
  clearFailed(key, error) {
    // Nothing lost: the chat's next reader publishes the outbox again (a duplicate), then clears it.
    console.warn({
      msg: 'published outbox not cleared; its events may be published again',
      instanceId: key.instanceId,
      error: errorName(error),
    });
  },
  async publish(events: readonly DerivedEvent[], deadline: Deadline) {
    const refused: number[] = [];
    for (let i = 0; i < events.length; i += 10) {
      const entries = events.slice(i, i + 10).map((event) => ({
        EventBusName: eventBusName,
        Source: DERIVED_EVENT_SOURCE,
        DetailType: derivedDetailType(event),
        Detail: JSON.stringify(derivedDetail(event)),
      }));
      const result = await deadline.run('EventBridge PutEvents', (abortSignal) =>
        eventBridge.send(new PutEventsCommand({ Entries: entries }), { abortSignal }),
      );
      if (result.FailedEntryCount) {
        const before = refused.length;
        (result.Entries ?? []).forEach((entry, j) => {
          if (entry.ErrorCode !== undefined || entry.EventId === undefined) refused.push(i + j);
        });
        if (refused.length - before < result.FailedEntryCount)
          throw new Error(`PutEvents: ${result.FailedEntryCount} derived event(s) not accepted`);
      }
    }
    return refused;
  },
  async scheduleExpiries(checks, deadline) {
    const result = await deadline.run('SQS SendMessageBatch', (abortSignal) =>
      sqs.send(
        new SendMessageBatchCommand({
          QueueUrl: expiryQueueUrl,
          Entries: checks.map(({ key: { instanceId, phone, participant }, delaySeconds, news }, i) => ({
            Id: String(i),
            MessageBody: JSON.stringify({ expire: { instanceId, phone, participant, news } }),
            DelaySeconds: Math.min(900, delaySeconds),
          })),
        }),
        { abortSignal },
      ),
    );
    if (result.Failed?.length)
      throw new Error(`SendMessageBatch: ${result.Failed.length} expiry check(s) not accepted`);
  },
  async scheduleExpiry(key, delaySeconds, deadline, news) {
    const { instanceId, phone, participant } = key;
    await deadline.run('SQS SendMessage', (abortSignal) =>
      sqs.send(
        new SendMessageCommand({
          QueueUrl: expiryQueueUrl,
          MessageBody: JSON.stringify({ expire: { instanceId, phone, participant, news } }),
          DelaySeconds: Math.min(900, delaySeconds),
        }),
        { abortSignal },
      ),
    );
  },
};

const PresenceMessage = v.object({
  id: v.string(),
  time: v.pipe(v.string(), v.isoTimestamp()),
  source: v.literal(EVENT_SOURCE),
  detail: v.looseObject({
    instanceId: v.string(),
    phone: v.string(),
    status: v.picklist(PRESENCE_STATUSES),
    lastSeen: v.optional(v.nullable(v.number())),
    receivedAt: v.optional(v.unknown()),
  }),
});

/**
 * The event's ordering time: the receiver's `receivedAt` (milliseconds), when it is one this event can
 * carry (at most a minute before EventBridge's `time`, and before that second ends); else EventBridge's
 * `time` (whole seconds: events of other publishers, replays of archives from before `receivedAt`).
 */
export function orderingTime(eventTime: number, receivedAt: unknown): number {
  return typeof receivedAt === 'number' &&
    Number.isSafeInteger(receivedAt) &&
    receivedAt >= eventTime - 60_000 &&
    receivedAt < eventTime + 1_000
    ? receivedAt
    : eventTime;
}
const ExpiryMessage = v.object({
  expire: v.object({
    instanceId: v.string(),
    phone: v.string(),
    participant: v.optional(v.string()),
    news: v.optional(v.number()),
  }),
});

type Parsed =
  | { readonly kind: 'presence'; readonly input: PresenceInput }
  | { readonly kind: 'expiry'; readonly key: ChatKey; readonly news?: number };

/** What a record asks for; throws (the record is retried, then dead-lettered) when it is not readable. */
function parseRecord(record: SQSRecord): Parsed {
  const body = JSON.parse(record.body) as unknown;
  if (v.is(ExpiryMessage, body)) {
    const { instanceId, phone, participant, news } = body.expire;
    return {
      kind: 'expiry',
      key: { instanceId, phone, ...(participant !== undefined && { participant }) },
      ...(news !== undefined && { news }),
    };
  }
  const event = v.parse(PresenceMessage, body);
  const participant = participantOf(event.detail);
  return {
    kind: 'presence',
    input: {
      id: event.id,
      time: orderingTime(Date.parse(event.time), event.detail.receivedAt),
      instanceId: event.detail.instanceId,
      phone: event.detail.phone,
      ...(participant !== undefined && { participant }),
      status: event.detail.status,
      ...(event.detail.lastSeen !== undefined && { lastSeen: event.detail.lastSeen }),
    },
  };
}

const stepOf = (parsed: Parsed): Step =>
  parsed.kind === 'presence'
    ? { kind: 'presence', input: parsed.input }
    : { kind: 'expiry', ...(parsed.news !== undefined && { news: parsed.news }) };

/** The chat a record is about (records of one chat run one after the other). */
function chatOf(parsed: Parsed | undefined, record: SQSRecord): string {
  if (parsed === undefined) return `unreadable\u0000${record.messageId}`;
  const key = parsed.kind === 'expiry' ? parsed.key : parsed.input;
  return `${key.instanceId}\u0000${chatKeyOf(key)}`;
}

const QUIET_OUTCOMES = new Set(['applied', 'expired', 'nothing-to-expire', 'rescheduled']);

/**
 * Seconds until a failed expiry check is tried again, by how often it was received: soon at first, so
 * one transient failure costs seconds, not the queue's visibility timeout (minutes); then every 5
 * minutes, so an outage longer than an hour still reaches the dead-letter queue, and an activity that
 * ended during a shorter one is published within 5 minutes of the return (see MAX_RECEIVES).
 */
export { EXPIRY_RETRY_SECONDS } from './settings.ts';

/** Brings a failed expiry check back early; SQS's own timeout applies when this call fails. */
async function retryExpirySoon(record: SQSRecord, deadline: Deadline): Promise<void> {
  const receives = Math.max(1, Number(record.attributes?.ApproximateReceiveCount) || 1);
  const seconds = EXPIRY_RETRY_SECONDS[Math.min(receives, EXPIRY_RETRY_SECONDS.length) - 1];
  try {
    await deadline.run(
      'SQS ChangeMessageVisibility',
      (abortSignal) =>
        sqs.send(
          new ChangeMessageVisibilityCommand({
            QueueUrl: expiryQueueUrl,
            ReceiptHandle: record.receiptHandle,
            VisibilityTimeout: seconds,
          }),
          { abortSignal },
        ),
      1_000,
    );
  } catch (error) {
    console.warn({
      msg: "failed expiry check not brought forward: retried after the queue's visibility timeout",
      messageId: record.messageId,
      error: errorName(error),
    });
  }
}

export async function handler(
  event: SQSEvent,
  context?: Pick<Context, 'getRemainingTimeInMillis'>,
): Promise<SQSBatchResponse> {
  const deadline = invocationDeadline(context, 2_000, 60_000);
  // The last calls of a failing batch (bringing expiry checks back early) may use part of the reserve.
  const lastCalls = invocationDeadline(context, 500, 60_000);
  const chats = new Map<string, { record: SQSRecord; parsed?: Parsed; error?: unknown }[]>();
  for (const record of event.Records) {
    let entry: { record: SQSRecord; parsed?: Parsed; error?: unknown };
    try {
      entry = { record, parsed: parseRecord(record) };
    } catch (error) {
      entry = { record, error };
    }
    const chat = chatOf(entry.parsed, record);
    chats.set(chat, [...(chats.get(chat) ?? []), entry]);
  }
  const failures: string[] = [];
  const fail = (record: SQSRecord, error: unknown, msg: string) => {
    failures.push(record.messageId);
    console.error({
      msg,
      messageId: record.messageId,
      error: errorName(error),
    });
  };
  const work: { chat: ChatWork; records: SQSRecord[]; kinds: Parsed['kind'][] }[] = [];
  for (const entries of chats.values()) {
    const readable: { record: SQSRecord; parsed: Parsed }[] = [];
    for (const { record, parsed, error } of entries) {
      if (parsed === undefined)
        fail(record, error, 'presence state message unreadable; retried by SQS, then dead-lettered');
      else if (!isStorableChat(parsed.kind === 'expiry' ? parsed.key : parsed.input))
        // Never a real chat, and never storable: dropped (logged), not retried into the dead-letter queue.
        console.info({
          msg: 'presence event not applied',
          outcome: 'unstorable',
          messageId: record.messageId,
        });
      else readable.push({ record, parsed });
    }
    const first = readable[0]?.parsed;
    if (first === undefined) continue;
    work.push({
      chat: {
        key: first.kind === 'expiry' ? first.key : first.input,
        steps: readable.map((r) => stepOf(r.parsed)),
      },
      records: readable.map((r) => r.record),
      kinds: readable.map((r) => r.parsed.kind),
    });
  }
  const results = await processChats(
    work.map((w) => w.chat),
    deps,
    deadline,
  );
  const expiryRetries: SQSRecord[] = [];
  work.forEach(({ records, kinds }, c) => {
    const result = results[c] as (typeof results)[number];
    records.forEach((record, i) => {
      const outcome = result.outcomes[i];
      if (outcome !== undefined) {
        if (!QUIET_OUTCOMES.has(outcome))
          console.info({ msg: 'presence event not applied', outcome, messageId: record.messageId });
      } else if (i === result.failed?.index) {
        fail(record, result.failed.error, 'presence state update failed; retried by SQS');
        if (kinds[i] === 'expiry') expiryRetries.push(record);
      } else {
        // After a failure, the chat's later records wait for it: applied now, they would overtake it.
        failures.push(record.messageId);
      }
    });
  });
  await Promise.all(expiryRetries.map((record) => retryExpirySoon(record, lastCalls)));
  if (failures.length > 0) {
    // Straight to stdout: Lambda's JSON log format would wrap console output, which CloudWatch would not read as EMF.
    process.stdout.write(
      `${JSON.stringify({
        _aws: {
          Timestamp: Date.now(),
          CloudWatchMetrics: [
            {
              Namespace: metricsNamespace,
              Dimensions: [[]],
              Metrics: [{ Name: STATE_FAILURES_METRIC, Unit: 'Count' }],
            },
          ],
        },
        level: 'WARN',
        msg: 'presence state records handed back for a retry',
        [STATE_FAILURES_METRIC]: failures.length,
      })}\n`,
    );
  }
  return { batchItemFailures: failures.map((itemIdentifier) => ({ itemIdentifier })) };
}
