/**
 * The presence table: one item per chat (partition key `instanceId`, sort key `phone`) holding its
 * state (functions/shared/presence-state.ts) as plain attributes, so it can be read directly, plus an
 * optimistic-concurrency `version`, the derived events not yet published (`pending`, an outbox) and a
 * TTL (`expiresAt`, epoch seconds) for chats idle past the horizon. Every call carries the deadline.
 */
import {
  type AttributeValue,
  ConditionalCheckFailedException,
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import type { Deadline } from './deadline.ts';
import type { PresenceStatus } from './presence-contract.ts';
import type { Activity, ChatState, DerivedEvent } from './presence-state.ts';

export interface StoredChat {
  readonly state: ChatState;
  readonly version: number;
  /** Derived events written with the state and not yet confirmed published. */
  readonly pending: readonly DerivedEvent[];
}

export interface PresenceStore {
  get(instanceId: string, phone: string, deadline: Deadline): Promise<StoredChat | undefined>;
  /** Writes a new version; false when another writer got there first (`expectedVersion` changed). */
  put(
    state: ChatState,
    pending: readonly DerivedEvent[],
    expectedVersion: number | undefined,
    deadline: Deadline,
  ): Promise<boolean>;
  /** Drops the pending events of exactly this version (a newer version keeps its own). */
  clearPending(instanceId: string, phone: string, version: number, deadline: Deadline): Promise<void>;
}

/** Attribute names, for readers of the table. */
export const TABLE_ATTRIBUTES = {
  partitionKey: 'instanceId',
  sortKey: 'phone',
  ttl: 'expiresAt',
} as const;

const n = (value: number): AttributeValue => ({ N: String(value) });
const s = (value: string): AttributeValue => ({ S: value });

function toItem(state: ChatState, version: number, pending: readonly DerivedEvent[], expiresAt: number) {
  const item: Record<string, AttributeValue> = {
    instanceId: s(state.instanceId),
    phone: s(state.phone),
    status: s(state.status),
    statusSince: n(state.statusSince),
    online: { BOOL: state.online },
    eventTime: n(state.eventTime),
    lastEventId: s(state.lastEventId),
    ...(state.recentEventIds !== undefined &&
      state.recentEventIds.length > 0 && { recentEventIds: { SS: [...new Set(state.recentEventIds)] } }),
    updatedAt: n(state.eventTime),
    version: n(version),
    expiresAt: n(expiresAt),
  };
  if (state.onlineSince !== undefined) item.onlineSince = n(state.onlineSince);
  if (state.offlineSince !== undefined) item.offlineSince = n(state.offlineSince);
  if (state.activity !== undefined) item.activity = s(state.activity);
  if (state.activitySince !== undefined) item.activitySince = n(state.activitySince);
  if (state.activityLastNews !== undefined) item.activityLastNews = n(state.activityLastNews);
  if (state.lastSeen !== undefined) {
    // DynamoDB numbers stop near 1e126: a lastSeen beyond any time is kept as null.
    const x = state.lastSeen;
    const storable = x !== null && Math.abs(x) < 1e125 && (x === 0 || Math.abs(x) > 1e-125);
    item.lastSeen = storable ? n(x) : { NULL: true };
  }
  if (pending.length > 0) item.pending = s(JSON.stringify(pending));
  return item;
}

function fromItem(item: Record<string, AttributeValue>): StoredChat {
  const num = (key: string) => (item[key]?.N === undefined ? undefined : Number(item[key]?.N));
  const state: ChatState = {
    instanceId: item.instanceId?.S as string,
    phone: item.phone?.S as string,
    status: item.status?.S as PresenceStatus,
    statusSince: num('statusSince') as number,
    online: item.online?.BOOL === true,
    ...(num('onlineSince') !== undefined && { onlineSince: num('onlineSince') }),
    ...(num('offlineSince') !== undefined && { offlineSince: num('offlineSince') }),
    ...(item.activity?.S !== undefined && { activity: item.activity.S as Activity }),
    ...(num('activitySince') !== undefined && { activitySince: num('activitySince') }),
    ...(num('activityLastNews') !== undefined && { activityLastNews: num('activityLastNews') }),
    ...(item.lastSeen !== undefined && { lastSeen: item.lastSeen.NULL ? null : Number(item.lastSeen.N) }),
    eventTime: num('eventTime') as number,
    lastEventId: item.lastEventId?.S as string,
    ...(item.recentEventIds?.SS !== undefined && { recentEventIds: item.recentEventIds.SS }),
  };
  const pending = item.pending?.S === undefined ? [] : (JSON.parse(item.pending.S) as DerivedEvent[]);
  return { state, version: num('version') ?? 0, pending };
}

export function dynamoStore(
  client: Pick<DynamoDBClient, 'send'>,
  tableName: string,
  options: { readonly ttlSeconds: number; readonly now?: () => number },
): PresenceStore {
  const now = options.now ?? Date.now;
  const key = (instanceId: string, phone: string) => ({ instanceId: s(instanceId), phone: s(phone) });
  return {
    async get(instanceId, phone, deadline) {
      const { Item } = await deadline.run('DynamoDB GetItem', (abortSignal) =>
        client.send(
          new GetItemCommand({ TableName: tableName, Key: key(instanceId, phone), ConsistentRead: true }),
          { abortSignal },
        ),
      );
      return Item === undefined ? undefined : fromItem(Item);
    },
    async put(state, pending, expectedVersion, deadline) {
      const version = (expectedVersion ?? 0) + 1;
      const expiresAt = Math.floor(now() / 1000) + options.ttlSeconds;
      try {
        await deadline.run('DynamoDB PutItem', (abortSignal) =>
          client.send(
            new PutItemCommand({
              TableName: tableName,
              Item: toItem(state, version, pending, expiresAt),
              ...(expectedVersion === undefined
                ? { ConditionExpression: 'attribute_not_exists(instanceId)' }
                : {
                    ConditionExpression: 'version = :expected',
                    ExpressionAttributeValues: { ':expected': n(expectedVersion) },
                  }),
            }),
            { abortSignal },
          ),
        );
        return true;
      } catch (error) {
        if (
          error instanceof ConditionalCheckFailedException ||
          (error as Error)?.name === 'ConditionalCheckFailedException'
        )
          return false;
        throw error;
      }
    },
    async clearPending(instanceId, phone, version, deadline) {
      try {
        await deadline.run('DynamoDB UpdateItem', (abortSignal) =>
          client.send(
            new UpdateItemCommand({
              TableName: tableName,
              Key: key(instanceId, phone),
              UpdateExpression: 'REMOVE pending',
              ConditionExpression: 'version = :version',
              ExpressionAttributeValues: { ':version': n(version) },
            }),
            { abortSignal },
          ),
        );
      } catch (error) {
        if ((error as Error)?.name === 'ConditionalCheckFailedException') return; // a newer version owns it
        throw error;
      }
    },
  };
}
