/**
 * The presence table: one item per chat (partition key `instanceId`, sort key `chat`: the phone, or
 * `group#participant` for a member of a group chat; see chatKeyOf) holding its state (functions/presence-store/presence-state.ts) as plain attributes, so it can be read directly, plus an
 * optimistic-concurrency `version`, the derived events not yet published (`pending`, an outbox) and a
 * TTL (`expiresAt`, epoch seconds) for chats idle past the horizon. Every call carries the deadline.
 */
import {
  type AttributeValue,
  BatchGetItemCommand,
  ConditionalCheckFailedException,
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import type { Deadline } from '../shared/aws/deadline.ts';
import type { PresenceStatus } from '../shared/contract/presence-contract.ts';
import {
  type Activity,
  type ChatKey,
  type ChatState,
  chatKeyOf,
  type DerivedEvent,
} from './presence-state.ts';

export interface StoredChat {
  readonly state: ChatState;
  readonly version: number;
  /** Derived events written with the state and not yet confirmed published. */
  readonly pending: readonly DerivedEvent[];
  /** When the item's TTL runs out (epoch ms): DynamoDB deletes expired items late, readers check it. */
  readonly expiresAt?: number;
}

export interface PresenceStore {
  get(key: ChatKey, deadline: Deadline): Promise<StoredChat | undefined>;
  /** Several chats at once (distinct keys), in the order asked; strongly consistent like `get`. */
  getMany?(keys: readonly ChatKey[], deadline: Deadline): Promise<(StoredChat | undefined)[]>;
  /** Every participant of a group chat seen so far (at most `limit`). */
  participants(
    instanceId: string,
    group: string,
    limit: number,
    deadline: Deadline,
  ): Promise<readonly StoredChat[]>;
  /**
   * One page of the instance's chats (every chat and group member), in key order, starting after the
   * chat key `after`: at most `limit` items, and the key to start the next page after, if any. Eventually
   * consistent (a snapshot: the live feed corrects it).
   */
  list?(
    instanceId: string,
    limit: number,
    after: string | undefined,
    deadline: Deadline,
  ): Promise<{ readonly chats: readonly StoredChat[]; readonly next?: string }>;
  /** Writes a new version; false when another writer got there first (`expectedVersion` changed). */
  put(
    state: ChatState,
    pending: readonly DerivedEvent[],
    expectedVersion: number | undefined,
    deadline: Deadline,
  ): Promise<boolean>;
  /**
   * Drops the pending events of exactly this version (a newer version keeps its own) and, when given,
   * this `sequence` (the state's, the outbox's last event's): versions start again at 1 when the TTL
   * deletes an item, sequences never do.
   */
  clearPending(key: ChatKey, version: number, deadline: Deadline, sequence?: number): Promise<void>;
}

export { TABLE_ATTRIBUTES } from './settings.ts';

/**
 * An item past its TTL (`expiresAt`) is a chat idle past the horizon: gone, for the writer and the
 * reader alike, whenever DynamoDB gets round to deleting it (up to days late).
 */
export function isIdle(stored: StoredChat, now: number): boolean {
  return stored.expiresAt !== undefined && stored.expiresAt <= now;
}

const n = (value: number): AttributeValue => ({ N: String(value) });
const s = (value: string): AttributeValue => ({ S: value });

function toItem(state: ChatState, version: number, pending: readonly DerivedEvent[], expiresAt: number) {
  const item: Record<string, AttributeValue> = {
    instanceId: s(state.instanceId),
    chat: s(chatKeyOf(state)),
    phone: s(state.phone),
    ...(state.participant !== undefined && { participant: s(state.participant) }),
    status: s(state.status),
    statusSince: n(state.statusSince),
    online: { BOOL: state.online },
    eventTime: n(state.eventTime),
    lastEventId: s(state.lastEventId),
    ...(state.recentEventIds !== undefined &&
      state.recentEventIds.length > 0 && { recentEventIds: { SS: [...new Set(state.recentEventIds)] } }),
    updatedAt: n(state.eventTime),
    sequence: n(state.sequence ?? 0),
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
    ...(item.participant?.S !== undefined && { participant: item.participant.S }),
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
    sequence: num('sequence') ?? 0,
  };
  const pending = item.pending?.S === undefined ? [] : (JSON.parse(item.pending.S) as DerivedEvent[]);
  const expiresAt = num('expiresAt');
  return {
    state,
    version: num('version') ?? 0,
    pending,
    ...(expiresAt !== undefined && { expiresAt: expiresAt * 1_000 }),
  };
}

export function dynamoStore(
  client: Pick<DynamoDBClient, 'send'>,
  tableName: string,
  options: { readonly ttlSeconds: number; readonly now?: () => number },
): PresenceStore {
  const now = options.now ?? Date.now;
  const itemKey = (key: ChatKey) => ({ instanceId: s(key.instanceId), chat: s(chatKeyOf(key)) });
  const get = async (key: ChatKey, deadline: Deadline) => {
    const { Item } = await deadline.run('DynamoDB GetItem', (abortSignal) =>
      client.send(new GetItemCommand({ TableName: tableName, Key: itemKey(key), ConsistentRead: true }), {
        abortSignal,
      }),
    );
    return Item === undefined ? undefined : fromItem(Item);
  };
  return {
    get,
    async getMany(keys, deadline) {
      const found = new Map<string, StoredChat>();
      const idOf = (instanceId: string | undefined, chat: string | undefined) => `${instanceId}\u0000${chat}`;
      // BatchGetItem takes up to 100 keys; what it leaves unprocessed (throttling) is read one by one,
      // with the SDK's retries and backoff.
      const left: ChatKey[] = [];
      for (let i = 0; i < keys.length; i += 100) {
        const chunk = keys.slice(i, i + 100);
        const { Responses, UnprocessedKeys } = await deadline.run('DynamoDB BatchGetItem', (abortSignal) =>
          client.send(
            new BatchGetItemCommand({
              RequestItems: { [tableName]: { Keys: chunk.map(itemKey), ConsistentRead: true } },
            }),
            { abortSignal },
          ),
        );
        for (const item of Responses?.[tableName] ?? [])
          found.set(idOf(item.instanceId?.S, item.chat?.S), fromItem(item));
        const unprocessed = new Set(
          (UnprocessedKeys?.[tableName]?.Keys ?? []).map((key) => idOf(key.instanceId?.S, key.chat?.S)),
        );
        left.push(...chunk.filter((key) => unprocessed.has(idOf(key.instanceId, chatKeyOf(key)))));
      }
      const alone = await Promise.all(left.map((key) => get(key, deadline)));
      left.forEach((key, i) => {
        const item = alone[i];
        if (item !== undefined) found.set(idOf(key.instanceId, chatKeyOf(key)), item);
      });
      return keys.map((key) => found.get(idOf(key.instanceId, chatKeyOf(key))));
    },
    async participants(instanceId, group, limit, deadline) {
      const found: StoredChat[] = [];
      let start: Record<string, AttributeValue> | undefined;
      do {
        const page = await deadline.run('DynamoDB Query', (abortSignal) =>
          client.send(
            new QueryCommand({
              TableName: tableName,
              KeyConditionExpression: 'instanceId = :instance AND begins_with(chat, :group)',
              ExpressionAttributeValues: { ':instance': s(instanceId), ':group': s(`${group}#`) },
              Limit: Math.min(100, limit - found.length),
              ...(start !== undefined && { ExclusiveStartKey: start }),
            }),
            { abortSignal },
          ),
        );
        for (const item of page.Items ?? []) found.push(fromItem(item));
        start = page.LastEvaluatedKey;
      } while (start !== undefined && found.length < limit);
      return found;
    },
    async list(instanceId, limit, after, deadline) {
      const chats: StoredChat[] = [];
      let start: Record<string, AttributeValue> | undefined =
        after === undefined ? undefined : { instanceId: s(instanceId), chat: s(after) };
      // A page of DynamoDB holds at most 1 MB: keep reading until `limit` items or the end.
      do {
        const page = await deadline.run('DynamoDB Query', (abortSignal) =>
          client.send(
            new QueryCommand({
              TableName: tableName,
              KeyConditionExpression: 'instanceId = :instance',
              ExpressionAttributeValues: { ':instance': s(instanceId) },
              Limit: limit - chats.length,
              ...(start !== undefined && { ExclusiveStartKey: start }),
            }),
            { abortSignal },
          ),
        );
        for (const item of page.Items ?? []) chats.push(fromItem(item));
        start = page.LastEvaluatedKey;
      } while (start !== undefined && chats.length < limit);
      const last = start?.chat?.S;
      return { chats, ...(last !== undefined && { next: last }) };
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
    async clearPending(key, version, deadline, sequence) {
      try {
        await deadline.run('DynamoDB UpdateItem', (abortSignal) =>
          client.send(
            new UpdateItemCommand({
              TableName: tableName,
              Key: itemKey(key),
              UpdateExpression: 'REMOVE pending',
              ...(sequence === undefined
                ? {
                    ConditionExpression: 'version = :version',
                    ExpressionAttributeValues: { ':version': n(version) },
                  }
                : {
                    ConditionExpression: 'version = :version AND #sequence = :sequence',
                    ExpressionAttributeNames: { '#sequence': 'sequence' },
                    ExpressionAttributeValues: { ':version': n(version), ':sequence': n(sequence) },
                  }),
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
