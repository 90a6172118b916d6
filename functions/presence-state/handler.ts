/**
 * The presence-state subscriber's Lambda: SQS batches from two queues, the presence events (an
 * `onStatus` rule of every status delivers them) and the expiry checks (a delay queue this function
 * feeds), through the core in ./process.ts. A record that fails is reported alone
 * (ReportBatchItemFailures) and retried by SQS; after its retries it lands in the dead-letter queue.
 */

import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import pMap from 'p-map';
import * as v from 'valibot';
import { type Deadline, invocationDeadline } from '../shared/deadline.ts';
import { DERIVED_EVENT_SOURCE, EVENT_SOURCE, PRESENCE_STATUSES } from '../shared/presence-contract.ts';
import { type DerivedEvent, derivedDetail, derivedDetailType } from '../shared/presence-state.ts';
import { STATE_DEFAULTS, STATE_ENV } from '../shared/presence-state-settings.ts';
import { dynamoStore } from '../shared/presence-store.ts';
import { processExpiry, processPresence, type StateDeps } from './process.ts';

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

const requestHandler = { connectionTimeout: 1_000, requestTimeout: 3_000, throwOnRequestTimeout: true };
const dynamo = new DynamoDBClient({ maxAttempts: 3, requestHandler });
const eventBridge = new EventBridgeClient({ maxAttempts: 3, requestHandler });
const sqs = new SQSClient({ maxAttempts: 3, requestHandler });

const deps: StateDeps = {
  store: dynamoStore(dynamo, tableName, { ttlSeconds: idleDays * 86_400 }),
  expiryMs,
  now: Date.now,
  async publish(events: readonly DerivedEvent[], deadline: Deadline) {
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
      if (result.FailedEntryCount)
        throw new Error(`PutEvents: ${result.FailedEntryCount} derived event(s) not accepted`);
    }
  },
  async scheduleExpiry(instanceId, phone, delaySeconds, deadline) {
    await deadline.run('SQS SendMessage', (abortSignal) =>
      sqs.send(
        new SendMessageCommand({
          QueueUrl: expiryQueueUrl,
          MessageBody: JSON.stringify({ expire: { instanceId, phone } }),
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
  }),
});
const ExpiryMessage = v.object({ expire: v.object({ instanceId: v.string(), phone: v.string() }) });

async function handleRecord(record: SQSRecord, deadline: Deadline): Promise<string> {
  const body = JSON.parse(record.body) as unknown;
  if (v.is(ExpiryMessage, body))
    return processExpiry(body.expire.instanceId, body.expire.phone, deps, deadline);
  const event = v.parse(PresenceMessage, body);
  return processPresence(
    {
      id: event.id,
      time: Date.parse(event.time),
      instanceId: event.detail.instanceId,
      phone: event.detail.phone,
      status: event.detail.status,
      ...(event.detail.lastSeen !== undefined && { lastSeen: event.detail.lastSeen }),
    },
    deps,
    deadline,
  );
}

/** The chat a record is about (records of one chat run one after the other). */
function chatOf(record: SQSRecord): string {
  try {
    const body = JSON.parse(record.body) as {
      expire?: { instanceId?: string; phone?: string };
      detail?: { instanceId?: string; phone?: string };
    };
    const key = body.expire ?? body.detail;
    return `${key?.instanceId}\u0000${key?.phone}`;
  } catch {
    return record.messageId;
  }
}

export async function handler(
  event: SQSEvent,
  context?: Pick<Context, 'getRemainingTimeInMillis'>,
): Promise<SQSBatchResponse> {
  const deadline = invocationDeadline(context, 2_000, 60_000);
  const chats = new Map<string, SQSRecord[]>();
  for (const record of event.Records)
    chats.set(chatOf(record), [...(chats.get(chatOf(record)) ?? []), record]);
  const failures: string[] = [];
  await pMap(
    [...chats.values()],
    async (records) => {
      for (const record of records) {
        try {
          const outcome = await handleRecord(record, deadline);
          if (outcome !== 'applied' && outcome !== 'expired' && outcome !== 'nothing-to-expire') {
            console.info({ msg: 'presence event not applied', outcome, messageId: record.messageId });
          }
        } catch (error) {
          failures.push(record.messageId);
          console.error({
            msg: 'presence state update failed; retried by SQS',
            messageId: record.messageId,
            error: error instanceof Error ? error.name : 'unknown',
          });
        }
      }
    },
    { concurrency: 8 },
  );
  return { batchItemFailures: failures.map((itemIdentifier) => ({ itemIdentifier })) };
}
