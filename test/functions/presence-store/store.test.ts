/**
 * The presence table (functions/presence-store/store.ts) against a real DynamoDB emulator (dynalite on
 * 127.0.0.1), and the state subscriber's core (functions/presence-store/process.ts) end to end on it with
 * fake publish and scheduleExpiry: ordering, duplicates, expiry, the outbox and concurrent writers.
 */

import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  DeleteItemCommand,
  DescribeTableCommand,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
} from '@aws-sdk/client-dynamodb';
import dynalite from 'dynalite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  applyPresence,
  type ChatKey,
  type ChatState,
  type DerivedEvent,
  type PresenceInput,
} from '../../../functions/presence-store/presence-state.ts';
import {
  type ExpiryRequest,
  processChats,
  processExpiry,
  processPresence,
  type StateDeps,
} from '../../../functions/presence-store/process.ts';
import {
  dynamoStore,
  type PresenceStore,
  type StoredChat,
  TABLE_ATTRIBUTES,
} from '../../../functions/presence-store/store.ts';
import { type Deadline, deadlineAt } from '../../../functions/shared/aws/deadline.ts';
import type { PresenceStatus } from '../../../functions/shared/contract/presence-contract.ts';
import { createPresenceTable } from '../../support/presence-table.ts';

const TABLE = 'presence';
const T0 = Date.parse('2025-03-01T12:00:00Z');
const s = (seconds: number) => T0 + seconds * 1_000;
/**
 * The `sequence` of a chat's n-th derived event (n from 1) when its first derived event was at `first`:
 * a chat's numbering starts at the time (epoch ms) of its first derived event, then one more each.
 */
const seq = (first: number, n: number) => first + n - 1;
/** The sequences of a chat's first `count` derived events, the first at `first`. */
const seqs = (first: number, count: number) => Array.from({ length: count }, (_, i) => seq(first, i + 1));
/** The presence a derived event's step leaves (its `current`). */
const AFTER = {
  on: { online: true, activity: null },
  off: { online: false, activity: null },
  typing: { online: true, activity: 'typing' },
  recording: { online: true, activity: 'recording' },
} as const;
const TTL_SECONDS = 30 * 86_400;
/** The store's clock (the TTL it writes): fixed, so `expiresAt` is exact. */
const STORE_NOW = Date.parse('2025-03-01T12:00:30.750Z');
/** The `expiresAt` (epoch ms) the store reads back for what it wrote. */
const EXPIRES_AT = (Math.floor(STORE_NOW / 1_000) + TTL_SECONDS) * 1_000;

let server: Server;
let client: DynamoDBClient;
let store: PresenceStore;

const deadline = (): Deadline => deadlineAt(Date.now() + 15_000);

beforeAll(async () => {
  server = dynalite({
    createTableMs: 0,
    deleteTableMs: 0,
    updateTableMs: 0,
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  client = new DynamoDBClient({
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    region: 'sa-east-1',
    credentials: { accessKeyId: 'AKIDDYNALITE', secretAccessKey: 'dynalite-secret' },
  });
  await createPresenceTable(client, TABLE);
  for (;;) {
    const { Table } = await client.send(new DescribeTableCommand({ TableName: TABLE }));
    if (Table?.TableStatus === 'ACTIVE') break;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  store = dynamoStore(client, TABLE, { ttlSeconds: TTL_SECONDS, now: () => STORE_NOW });
});

afterAll(async () => {
  client?.destroy();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
});

let chatCounter = 0;
/** A chat no other test touches. */
const newChat = () => {
  chatCounter += 1;
  return { instanceId: 'INSTANCEA', phone: `55119${String(chatCounter).padStart(8, '0')}` };
};
/** A group chat no other test touches. */
const newGroup = () => {
  chatCounter += 1;
  return `120363${String(chatCounter).padStart(12, '0')}-group`;
};
const GROUP = '120363999999999999-group';

/** The raw item of a chat (`chat`: the sort key, the phone or `group#participant`). */
const rawItem = async (instanceId: string, chat: string) =>
  (
    await client.send(
      new GetItemCommand({
        TableName: TABLE,
        Key: { instanceId: { S: instanceId }, chat: { S: chat } },
        ConsistentRead: true,
      }),
    )
  ).Item;

function fullState(chat: ChatKey): ChatState {
  return {
    ...chat,
    status: 'COMPOSING',
    statusSince: s(1),
    online: true,
    onlineSince: s(0),
    offlineSince: s(-60),
    activity: 'typing',
    activitySince: s(1),
    activityLastNews: s(4),
    lastSeen: 1_740_830_400_123,
    eventTime: s(4),
    lastEventId: 'event-4',
    recentEventIds: ['event-3', 'event-4'],
    sequence: 7,
  };
}

/** `recentEventIds` is stored as a string set, which DynamoDB need not return in order: sorted. */
function sortIds<T extends StoredChat | undefined>(chat: T): T {
  if (chat?.state.recentEventIds === undefined) return chat;
  return { ...chat, state: { ...chat.state, recentEventIds: [...chat.state.recentEventIds].sort() } };
}

describe('dynamoStore', () => {
  it('getMany: 100 keys a BatchGetItem, strongly consistent; what DynamoDB leaves unprocessed (throttling) is read alone, and each answer lands on its own key', async () => {
    const chats = Array.from({ length: 150 }, () => newChat());
    // Every third chat stored; the others have no item.
    const stored = chats.filter((_, i) => i % 3 === 0);
    for (const chat of stored) {
      expect(
        await store.put(
          { ...fullState(chat), sequence: Number(chat.phone.slice(-4)) },
          [],
          undefined,
          deadline(),
        ),
      ).toBe(true);
    }
    // biome-ignore lint/suspicious/noExplicitAny: the SDK commands' JSON, read as such
    const sent: Array<{ name: string; input: Record<string, any> }> = [];
    // A throttled table: each BatchGetItem answers for all but the first five keys it asked, which it
    // lists as unprocessed (what DynamoDB does under throttling).
    const throttled = dynamoStore(
      {
        send: async (
          // biome-ignore lint/suspicious/noExplicitAny: the SDK commands' JSON, read as such
          command: { constructor: { name: string }; input: Record<string, any> },
          options?: unknown,
        ) => {
          sent.push({ name: command.constructor.name, input: command.input });
          // biome-ignore lint/suspicious/noExplicitAny: the SDK commands' JSON, read as such
          const answer = (await client.send(command as never, options as never)) as Record<string, any>;
          if (command.constructor.name !== 'BatchGetItemCommand') return answer;
          const keys = command.input.RequestItems[TABLE].Keys as Array<Record<string, { S: string }>>;
          const held = new Set(keys.slice(0, 5).map((k) => k.chat?.S));
          return {
            ...answer,
            Responses: {
              [TABLE]: (answer.Responses?.[TABLE] ?? []).filter(
                (item: Record<string, { S: string }>) => !held.has(item.chat?.S),
              ),
            },
            UnprocessedKeys: { [TABLE]: { Keys: keys.slice(0, 5), ConsistentRead: true } },
          };
        },
      } as unknown as DynamoDBClient,
      TABLE,
      { ttlSeconds: TTL_SECONDS, now: () => STORE_NOW },
    );
    const many = await throttled.getMany?.(chats, deadline());
    const one = await Promise.all(chats.map((chat) => store.get(chat, deadline())));
    expect(many?.map(sortIds)).toEqual(one.map(sortIds));
    expect(many?.filter((x) => x !== undefined)).toHaveLength(stored.length);
    // Each stored chat's answer is its own (the sequence written from its phone).
    chats.forEach((chat, i) => {
      if (i % 3 === 0) expect(many?.[i]?.state.sequence).toBe(Number(chat.phone.slice(-4)));
    });
    const batches = sent.filter((c) => c.name === 'BatchGetItemCommand');
    expect(batches.map((c) => c.input.RequestItems[TABLE].Keys.length)).toEqual([100, 50]);
    for (const c of batches) expect(c.input.RequestItems[TABLE].ConsistentRead).toBe(true);
    const alone = sent.filter((c) => c.name === 'GetItemCommand');
    // The five held back of each batch, read one by one, strongly consistent.
    expect(alone.map((c) => c.input.Key.chat.S).sort()).toEqual(
      [...chats.slice(0, 5), ...chats.slice(100, 105)].map((c) => c.phone).sort(),
    );
    for (const c of alone) expect(c.input.ConsistentRead).toBe(true);
    expect(sent).toHaveLength(12);
  });

  it('round-trips every ChatState field, and the pending derived events', async () => {
    const chat = newChat();
    const state = fullState(chat);
    const pending: DerivedEvent[] = [
      { ...chat, kind: 'activity-started', activity: 'typing', at: s(1), sequence: 1, current: AFTER.typing },
      {
        ...chat,
        kind: 'went-offline',
        onlineSince: s(0),
        at: s(2),
        durationMs: 2_000,
        sequence: 2,
        current: AFTER.off,
      },
    ];
    expect(await store.put(state, pending, undefined, deadline())).toBe(true);
    expect(
      sortIds(await store.get({ instanceId: chat.instanceId, phone: chat.phone }, deadline())),
    ).toStrictEqual({
      state,
      version: 1,
      pending,
      expiresAt: EXPIRES_AT,
    });
    const item = await rawItem(chat.instanceId, chat.phone);
    expect(item?.chat).toEqual({ S: chat.phone });
    expect(item?.phone).toEqual({ S: chat.phone });
    expect(item?.sequence).toEqual({ N: '7' });
    expect(item?.participant).toBeUndefined();
  });

  it('recentEventIds: a string set (each id once); an empty list is no attribute', async () => {
    const chat = newChat();
    const state = { ...fullState(chat), recentEventIds: ['event-4', 'event-2', 'event-4', 'event-3'] };
    expect(await store.put(state, [], undefined, deadline())).toBe(true);
    const item = await rawItem(chat.instanceId, chat.phone);
    expect(Object.keys(item?.recentEventIds ?? {})).toEqual(['SS']);
    expect([...(item?.recentEventIds?.SS ?? [])].sort()).toEqual(['event-2', 'event-3', 'event-4']);
    expect(
      sortIds(await store.get({ instanceId: chat.instanceId, phone: chat.phone }, deadline()))?.state,
    ).toStrictEqual({
      ...state,
      recentEventIds: ['event-2', 'event-3', 'event-4'],
    });

    const none = { ...state, recentEventIds: [], lastEventId: 'event-5' };
    expect(await store.put(none, [], 1, deadline())).toBe(true);
    expect((await rawItem(chat.instanceId, chat.phone))?.recentEventIds).toBeUndefined();
    const { recentEventIds: _r, ...withoutIds } = none;
    expect(
      (await store.get({ instanceId: chat.instanceId, phone: chat.phone }, deadline()))?.state,
    ).toStrictEqual(withoutIds);
  });

  it('lastSeen: null stays null, a number stays that number, absent stays absent (as does no activity)', async () => {
    const chat = newChat();
    const base: ChatState = {
      ...chat,
      status: 'UNAVAILABLE',
      statusSince: s(0),
      online: false,
      offlineSince: s(0),
      eventTime: s(0),
      lastEventId: 'e0',
      sequence: 0,
    };
    expect(await store.put(base, [], undefined, deadline())).toBe(true);
    const absent = await store.get({ instanceId: chat.instanceId, phone: chat.phone }, deadline());
    expect(absent).toStrictEqual({ state: base, version: 1, pending: [], expiresAt: EXPIRES_AT });
    expect(absent && 'lastSeen' in absent.state).toBe(false);
    expect(absent && 'activity' in absent.state).toBe(false);
    expect(absent && 'activitySince' in absent.state).toBe(false);
    expect(absent && 'onlineSince' in absent.state).toBe(false);
    const item = await rawItem(chat.instanceId, chat.phone);
    expect(item && Object.keys(item).sort()).toEqual(
      [
        'instanceId',
        'chat',
        'phone',
        'status',
        'statusSince',
        'online',
        'offlineSince',
        'eventTime',
        'lastEventId',
        'updatedAt',
        'sequence',
        'version',
        'expiresAt',
      ].sort(),
    );

    const withNull = { ...base, lastSeen: null, lastEventId: 'e1' };
    expect(await store.put(withNull, [], 1, deadline())).toBe(true);
    expect(
      (await store.get({ instanceId: chat.instanceId, phone: chat.phone }, deadline()))?.state,
    ).toStrictEqual(withNull);
    expect((await rawItem(chat.instanceId, chat.phone))?.lastSeen).toEqual({ NULL: true });

    for (const [version, lastSeen] of [
      [2, 1_740_830_400],
      [3, 0],
      [4, 1_740_830_400.5],
      [5, 1e21],
      [6, 1.5e-7],
      [7, -1],
    ] as const) {
      const withNumber = { ...base, lastSeen, lastEventId: `e${version}` };
      expect(await store.put(withNumber, [], version, deadline())).toBe(true);
      expect(
        (await store.get({ instanceId: chat.instanceId, phone: chat.phone }, deadline()))?.state,
      ).toStrictEqual(withNumber);
    }
  });

  it('lastSeen: a number DynamoDB cannot hold (|x| >= 1e125, or non-zero |x| <= 1e-125) is stored as null', async () => {
    const chat = newChat();
    const base: ChatState = {
      ...chat,
      status: 'UNAVAILABLE',
      statusSince: s(0),
      online: false,
      offlineSince: s(0),
      eventTime: s(0),
      lastEventId: 'e0',
      sequence: 0,
    };
    let version = 0;
    const cases: Array<readonly [number, number | null]> = [
      [1e125, null],
      [-1e125, null],
      [1e300, null],
      [-1e300, null],
      [Number.MAX_VALUE, null],
      [1e-125, null],
      [-1e-125, null],
      [1e-130, null],
      [Number.MIN_VALUE, null],
      // In range: unchanged.
      [9.99e124, 9.99e124],
      [-9.99e124, -9.99e124],
      [1.5e-125, 1.5e-125],
      [-1.5e-125, -1.5e-125],
      [0, 0],
    ];
    for (const [lastSeen, expected] of cases) {
      const state = { ...base, lastSeen, lastEventId: `e${version + 1}` };
      const written = await store
        .put(state, [], version === 0 ? undefined : version, deadline())
        .catch((error: Error) => `${error.name}: ${error.message}`);
      expect(written, String(lastSeen)).toBe(true);
      version += 1;
      expect(
        (await store.get({ instanceId: chat.instanceId, phone: chat.phone }, deadline()))?.state,
        String(lastSeen),
      ).toStrictEqual({
        ...state,
        lastSeen: expected,
      });
      const raw = (await rawItem(chat.instanceId, chat.phone))?.lastSeen;
      if (expected === null) expect(raw, String(lastSeen)).toEqual({ NULL: true });
      else expect(Number(raw?.N), String(lastSeen)).toBe(expected);
    }
  });

  it('put: first only when absent, then only with the current version (false on conflict)', async () => {
    const chat = newChat();
    const state = fullState(chat);
    // Expecting a version of a chat that does not exist.
    expect(await store.put(state, [], 3, deadline())).toBe(false);
    expect(await store.get({ instanceId: chat.instanceId, phone: chat.phone }, deadline())).toBeUndefined();

    expect(await store.put(state, [], undefined, deadline())).toBe(true);
    expect(await store.put({ ...state, lastEventId: 'other' }, [], undefined, deadline())).toBe(false);

    const second = {
      ...state,
      status: 'PAUSED' as const,
      lastEventId: 'event-5',
      eventTime: s(5),
      recentEventIds: ['event-5'],
    };
    expect(await store.put(second, [], 1, deadline())).toBe(true);
    expect(await store.put({ ...state, lastEventId: 'stale' }, [], 1, deadline())).toBe(false);
    expect(await store.put({ ...state, lastEventId: 'ahead' }, [], 7, deadline())).toBe(false);
    expect(
      sortIds(await store.get({ instanceId: chat.instanceId, phone: chat.phone }, deadline())),
    ).toStrictEqual({
      state: second,
      version: 2,
      pending: [],
      expiresAt: EXPIRES_AT,
    });
  });

  it('clearPending removes the pending events of exactly that version', async () => {
    const chat = newChat();
    const state = fullState(chat);
    const pending: DerivedEvent[] = [
      { ...chat, kind: 'came-online', at: s(0), sequence: 1, current: AFTER.on },
    ];
    await store.put(state, pending, undefined, deadline());
    await store.clearPending({ instanceId: chat.instanceId, phone: chat.phone }, 2, deadline()); // not this version
    expect(
      (await store.get({ instanceId: chat.instanceId, phone: chat.phone }, deadline()))?.pending,
    ).toEqual(pending);

    const newer: DerivedEvent[] = [
      { ...chat, kind: 'activity-started', activity: 'typing', at: s(1), sequence: 2, current: AFTER.typing },
    ];
    await store.put(state, newer, 1, deadline());
    await store.clearPending({ instanceId: chat.instanceId, phone: chat.phone }, 1, deadline()); // an older version: kept
    expect(
      (await store.get({ instanceId: chat.instanceId, phone: chat.phone }, deadline()))?.pending,
    ).toEqual(newer);

    const before = await rawItem(chat.instanceId, chat.phone);
    await store.clearPending({ instanceId: chat.instanceId, phone: chat.phone }, 2, deadline());
    const after = await rawItem(chat.instanceId, chat.phone);
    expect(after?.pending).toBeUndefined();
    const { pending: _p, ...rest } = before ?? {};
    expect(after).toEqual(rest);
    expect(
      sortIds(await store.get({ instanceId: chat.instanceId, phone: chat.phone }, deadline())),
    ).toStrictEqual({
      state,
      version: 2,
      pending: [],
      expiresAt: EXPIRES_AT,
    });
  });

  it('clearPending of a chat never seen does nothing (creates no item)', async () => {
    const chat = newChat();
    await expect(
      store.clearPending({ instanceId: chat.instanceId, phone: chat.phone }, 1, deadline()),
    ).resolves.toBeUndefined();
    expect(await rawItem(chat.instanceId, chat.phone)).toBeUndefined();
  });

  it('writes the TTL attribute from the injected clock: whole seconds + ttlSeconds', async () => {
    const chat = newChat();
    const clocked = dynamoStore(client, TABLE, { ttlSeconds: 86_400, now: () => 1_740_830_400_999 });
    await clocked.put(fullState(chat), [], undefined, deadline());
    const item = await rawItem(chat.instanceId, chat.phone);
    expect(TABLE_ATTRIBUTES.ttl).toBe('expiresAt');
    expect(item?.[TABLE_ATTRIBUTES.ttl]).toEqual({ N: String(1_740_830_400 + 86_400) });
    expect(item?.updatedAt).toEqual({ N: String(s(4)) });
    expect(item?.version).toEqual({ N: '1' });
    // Read back in epoch milliseconds (readers compare it with their clock: DynamoDB deletes late).
    expect((await clocked.get(chat, deadline()))?.expiresAt).toBe((1_740_830_400 + 86_400) * 1_000);
  });

  it('rethrows errors other than a condition failure', async () => {
    const other = dynamoStore(client, 'no-such-table', { ttlSeconds: 60 });
    const chat = newChat();
    await expect(other.put(fullState(chat), [], undefined, deadline())).rejects.toMatchObject({
      name: 'ResourceNotFoundException',
    });
    await expect(
      other.clearPending({ instanceId: chat.instanceId, phone: chat.phone }, 1, deadline()),
    ).rejects.toMatchObject({
      name: 'ResourceNotFoundException',
    });
    await expect(other.participants(chat.instanceId, GROUP, 10, deadline())).rejects.toMatchObject({
      name: 'ResourceNotFoundException',
    });
  });

  it('a group participant: sort key `group#participant`, phone and participant kept as attributes', async () => {
    const group = newGroup();
    const key = { instanceId: 'INSTANCEA', phone: group, participant: '5511988887777' };
    const state = fullState(key);
    const pending: DerivedEvent[] = [
      { ...key, kind: 'activity-started', activity: 'typing', at: s(1), sequence: 7, current: AFTER.typing },
    ];
    expect(await store.put(state, pending, undefined, deadline())).toBe(true);
    const item = await rawItem(key.instanceId, `${group}#5511988887777`);
    expect(item?.chat).toEqual({ S: `${group}#5511988887777` });
    expect(item?.phone).toEqual({ S: group });
    expect(item?.participant).toEqual({ S: '5511988887777' });
    expect(sortIds(await store.get(key, deadline()))).toStrictEqual({
      state,
      version: 1,
      pending,
      expiresAt: EXPIRES_AT,
    });
    // The group itself (a callback that named no participant) is another item.
    expect(await store.get({ instanceId: key.instanceId, phone: group }, deadline())).toBeUndefined();
    await store.clearPending(key, 1, deadline());
    expect((await store.get(key, deadline()))?.pending).toEqual([]);
  });

  it('participants: the members of exactly that group (not the whole-group item, another group or instance), up to limit, across pages', async () => {
    const group = newGroup();
    const other = newGroup();
    const instanceId = 'INSTANCEP';
    const members = Array.from({ length: 150 }, (_, i) => `55119${String(i).padStart(8, '0')}`);
    for (const participant of members)
      expect(
        await store.put(fullState({ instanceId, phone: group, participant }), [], undefined, deadline()),
      ).toBe(true);
    await store.put(fullState({ instanceId, phone: group }), [], undefined, deadline());
    await store.put(
      fullState({ instanceId, phone: other, participant: members[0] as string }),
      [],
      undefined,
      deadline(),
    );
    await store.put(
      fullState({ instanceId: 'INSTANCEQ', phone: group, participant: 'x' }),
      [],
      undefined,
      deadline(),
    );
    await store.put(fullState({ instanceId, phone: '5511999990000' }), [], undefined, deadline());

    const all = await store.participants(instanceId, group, 1_024, deadline());
    expect(all.map((m) => m.state.participant).sort()).toEqual([...members].sort());
    for (const m of all) {
      expect(m.state).toMatchObject({ instanceId, phone: group, status: 'COMPOSING', sequence: 7 });
      expect(m).toMatchObject({ version: 1, pending: [], expiresAt: EXPIRES_AT });
    }
    // More than one page (100 a page), cut at the limit.
    expect(await store.participants(instanceId, group, 120, deadline())).toHaveLength(120);
    expect(await store.participants(instanceId, group, 3, deadline())).toHaveLength(3);
    expect(await store.participants(instanceId, newGroup(), 1_024, deadline())).toEqual([]);
  });

  it('an item written before sequences and groups (no `sequence`): read with sequence 0, no participant', async () => {
    const chat = newChat();
    await client.send(
      new PutItemCommand({
        TableName: TABLE,
        Item: {
          instanceId: { S: chat.instanceId },
          chat: { S: chat.phone },
          phone: { S: chat.phone },
          status: { S: 'AVAILABLE' },
          statusSince: { N: String(s(0)) },
          online: { BOOL: true },
          onlineSince: { N: String(s(0)) },
          eventTime: { N: String(s(0)) },
          lastEventId: { S: 'e0' },
          version: { N: '3' },
        },
      }),
    );
    expect(await store.get(chat, deadline())).toStrictEqual({
      state: {
        ...chat,
        status: 'AVAILABLE',
        statusSince: s(0),
        online: true,
        onlineSince: s(0),
        eventTime: s(0),
        lastEventId: 'e0',
        sequence: 0,
      },
      version: 3,
      pending: [],
    });
  });
});

// --- processPresence / processExpiry end to end ---------------------------------------------------

interface Harness {
  readonly deps: StateDeps;
  readonly published: DerivedEvent[];
  readonly publishCalls: DerivedEvent[][];
  /** Expiry checks asked for: the chat's key (only its key fields) and the delay. */
  readonly scheduled: Array<ChatKey & { delaySeconds: number }>;
  /** Derived events of every successful put (what the outbox committed to publish). */
  readonly committed: DerivedEvent[];
  clock: number;
  failPublish: number;
  /** Next publishes put the events on the bus, then fail (the answer lost): published again later. */
  failAfterPublish: number;
  failSchedule: number;
  /** Puts refused because another writer got there first. */
  conflicts: number;
  /** Writes of every kind (puts and outbox clears), as DynamoDB bills them. */
  writes: number;
}

function harness(options: { store?: PresenceStore; expiryMs?: number } = {}): Harness {
  const h: Harness = {
    published: [],
    publishCalls: [],
    scheduled: [],
    committed: [],
    clock: T0,
    failPublish: 0,
    failAfterPublish: 0,
    failSchedule: 0,
    conflicts: 0,
    writes: 0,
    deps: undefined as unknown as StateDeps,
  };
  const inner = options.store ?? store;
  const recording: PresenceStore = {
    get: (...args) => inner.get(...args),
    participants: (...args) => inner.participants(...args),
    clearPending: (...args) => {
      h.writes += 1;
      return inner.clearPending(...args);
    },
    async put(state, pending, expected, d) {
      h.writes += 1;
      const ok = await inner.put(state, pending, expected, d);
      if (ok) h.committed.push(...pending);
      else h.conflicts += 1;
      return ok;
    },
  };
  (h as { deps: StateDeps }).deps = {
    store: recording,
    expiryMs: options.expiryMs ?? 25_000,
    now: () => h.clock,
    async publish(events) {
      if (h.failPublish > 0) {
        h.failPublish -= 1;
        throw new Error('PutEvents: 1 derived event(s) not accepted');
      }
      h.publishCalls.push([...events]);
      h.published.push(...events);
      if (h.failAfterPublish > 0) {
        h.failAfterPublish -= 1;
        throw new Error('PutEvents: socket hang up');
      }
    },
    async scheduleExpiry(key, delaySeconds) {
      if (h.failSchedule > 0) {
        h.failSchedule -= 1;
        throw new Error('SQS down');
      }
      const { instanceId, phone, participant } = key;
      h.scheduled.push({
        instanceId,
        phone,
        ...(participant !== undefined && { participant }),
        delaySeconds,
      });
    },
  };
  return h;
}

/**
 * Once every delivery is done, the item's outbox is empty: what it held was published, then cleared (or
 * replaced by the chat's next write), so no later reader publishes it again.
 */
function expectOutboxCleared(published: readonly DerivedEvent[], stored: StoredChat | undefined): void {
  expect(stored).toBeDefined();
  expect(stored?.pending).toEqual([]);
  for (const event of stored?.pending ?? []) expect(published).toContainEqual(event);
}

let eventCounter = 0;
const presence = (
  chat: { instanceId: string; phone: string },
  status: PresenceStatus,
  time: number,
  extra: Partial<PresenceInput> = {},
): PresenceInput => {
  eventCounter += 1;
  return { id: `msg-${eventCounter}`, time, ...chat, status, ...extra };
};

const kinds = (events: readonly DerivedEvent[]) =>
  events.map(
    (e) => `${e.kind}${'activity' in e ? `:${e.activity}` : ''}${'reason' in e ? `:${e.reason}` : ''}`,
  );

describe('processPresence and processExpiry on dynalite', () => {
  it('in order: the state follows, the derived events are published once and cleared', async () => {
    const chat = newChat();
    const h = harness();
    for (const [status, at] of [
      ['AVAILABLE', s(0)],
      ['COMPOSING', s(2)],
      ['PAUSED', s(5)],
      ['UNAVAILABLE', s(9)],
    ] as const) {
      expect(await processPresence(presence(chat, status, at), h.deps, deadline())).toBe('applied');
    }
    expect(kinds(h.published)).toEqual([
      'came-online',
      'activity-started:typing',
      'activity-stopped:typing:paused',
      'went-offline',
    ]);
    expect(h.published.map((e) => e.sequence)).toEqual(seqs(s(0), 4));
    const stored = await store.get({ instanceId: chat.instanceId, phone: chat.phone }, deadline());
    expect(stored).toMatchObject({
      version: 4,
      state: { status: 'UNAVAILABLE', online: false, sequence: seq(s(0), 4) },
    });
    expect(h.committed).toEqual(h.published);
  });

  it('out-of-order and duplicate deliveries: older dropped, duplicates ignored, nothing republished', async () => {
    const chat = newChat();
    const h = harness();
    const e1 = presence(chat, 'AVAILABLE', s(0));
    const e2 = presence(chat, 'COMPOSING', s(2));
    const e3 = presence(chat, 'PAUSED', s(5));
    expect(await processPresence(e1, h.deps, deadline())).toBe('applied');
    expect(await processPresence(e3, h.deps, deadline())).toBe('applied');
    expect(await processPresence(e2, h.deps, deadline())).toBe('older');
    expect(await processPresence(e3, h.deps, deadline())).toBe('duplicate');
    expect(await processPresence(e1, h.deps, deadline())).toBe('older');
    expect(kinds(h.published)).toEqual(['came-online']);
    expect(h.scheduled).toEqual([]);
    const stored = await store.get({ instanceId: chat.instanceId, phone: chat.phone }, deadline());
    expect(stored).toMatchObject({ version: 2, state: { status: 'PAUSED', lastEventId: e3.id } });
  });

  it('a redelivered event of the same second is a duplicate (recentEventIds persisted): nothing re-applied', async () => {
    const chat = newChat();
    const h = harness();
    const e1 = presence(chat, 'AVAILABLE', s(0));
    const composing = presence(chat, 'COMPOSING', s(1));
    const paused = presence(chat, 'PAUSED', s(1));
    for (const e of [e1, composing, paused])
      expect(await processPresence(e, h.deps, deadline())).toBe('applied');
    const before = await store.get({ instanceId: chat.instanceId, phone: chat.phone }, deadline());
    expect(before?.state).toMatchObject({ lastEventId: paused.id, eventTime: s(1) });
    expect([...(before?.state.recentEventIds ?? [])].sort()).toEqual([composing.id, paused.id].sort());
    expect([...((await rawItem(chat.instanceId, chat.phone))?.recentEventIds?.SS ?? [])].sort()).toEqual(
      [composing.id, paused.id].sort(),
    );
    const published = h.published.length;
    const scheduled = h.scheduled.length;

    expect(await processPresence(composing, h.deps, deadline())).toBe('duplicate');
    expect(await processPresence(paused, h.deps, deadline())).toBe('duplicate');
    expect(h.published).toHaveLength(published);
    expect(h.scheduled).toHaveLength(scheduled);
    expect(await store.get({ instanceId: chat.instanceId, phone: chat.phone }, deadline())).toEqual(before);
    expect(kinds(h.published)).toEqual([
      'came-online',
      'activity-started:typing',
      'activity-stopped:typing:paused',
    ]);
  });

  it('a late expiry check never merges two bursts: news after the window ends the old activity first', async () => {
    // COMPOSING at T, again at T+100 s with the first check not yet run (a backlog), PAUSED at T+110 s.
    const chat = newChat();
    const key = { instanceId: chat.instanceId, phone: chat.phone };
    const h = harness();
    expect(await processPresence(presence(chat, 'COMPOSING', s(0)), h.deps, deadline())).toBe('applied');
    h.clock = s(100);
    expect(await processPresence(presence(chat, 'COMPOSING', s(100)), h.deps, deadline())).toBe('applied');
    h.clock = s(110);
    expect(await processPresence(presence(chat, 'PAUSED', s(110)), h.deps, deadline())).toBe('applied');
    // The first burst's check runs late: nothing left to expire.
    h.clock = s(120);
    expect(await processExpiry(key, h.deps, deadline(), s(0))).toBe('nothing-to-expire');
    expect(kinds(h.published)).toEqual([
      'came-online',
      'activity-started:typing',
      'activity-stopped:typing:expired',
      'activity-started:typing',
      'activity-stopped:typing:paused',
    ]);
    const stops = h.published.filter((e) => e.kind === 'activity-stopped');
    expect(stops.map((e) => ('durationMs' in e ? e.durationMs : -1))).toEqual([0, 10_000]);
    expect(stops.map((e) => e.at)).toEqual([s(0), s(110)]);
    expect(h.published.map((e) => e.sequence)).toEqual(seqs(s(0), 5));
  });

  it('an activity with no news expires after 25 s and the second of its EventBridge time (the injected now), once; a check 1 ms early reschedules', async () => {
    const chat = newChat();
    const h = harness();
    await processPresence(presence(chat, 'COMPOSING', s(0)), h.deps, deadline());
    h.clock = s(0) + 25_999;
    expect(await processExpiry({ instanceId: chat.instanceId, phone: chat.phone }, h.deps, deadline())).toBe(
      'rescheduled',
    );
    // Past the 25 s already: ceil(-0.999 s) + 2 s.
    expect(h.scheduled).toEqual([
      { ...chat, delaySeconds: 27 },
      { ...chat, delaySeconds: 2 },
    ]);
    expect(h.published).toHaveLength(2);
    h.clock = s(0) + 26_000;
    expect(await processExpiry({ instanceId: chat.instanceId, phone: chat.phone }, h.deps, deadline())).toBe(
      'expired',
    );
    expect(h.published.slice(2)).toEqual([
      {
        ...chat,
        kind: 'activity-stopped',
        activity: 'typing',
        reason: 'expired',
        startedAt: s(0),
        at: s(0),
        durationMs: 0,
        sequence: seq(s(0), 3),
        current: AFTER.on,
      },
    ]);
    const stored = await store.get({ instanceId: chat.instanceId, phone: chat.phone }, deadline());
    expectOutboxCleared(h.published, stored);
    expect(stored?.state.activity).toBeUndefined();
    expect(stored?.state.sequence).toBe(seq(s(0), 3));
    h.clock = s(0) + 90_000;
    expect(await processExpiry({ instanceId: chat.instanceId, phone: chat.phone }, h.deps, deadline())).toBe(
      'nothing-to-expire',
    );
    expect(h.published).toHaveLength(3);
    expect(h.scheduled).toHaveLength(2);
  });

  it('an expiry check of a chat never seen: unknown-chat', async () => {
    const chat = newChat();
    const h = harness();
    expect(await processExpiry({ instanceId: chat.instanceId, phone: chat.phone }, h.deps, deadline())).toBe(
      'unknown-chat',
    );
    expect(h.published).toEqual([]);
  });

  it('a refreshed COMPOSING postpones the expiry: the first check, early now, reschedules to the end of the window', async () => {
    const chat = newChat();
    const h = harness();
    await processPresence(presence(chat, 'COMPOSING', s(0)), h.deps, deadline());
    h.clock = s(10);
    await processPresence(presence(chat, 'COMPOSING', s(10)), h.deps, deadline());
    // The first check arrives (scheduled at +27 s from the first COMPOSING).
    h.clock = s(27);
    expect(await processExpiry({ instanceId: chat.instanceId, phone: chat.phone }, h.deps, deadline())).toBe(
      'rescheduled',
    );
    expect(h.published).toHaveLength(2);
    // The window ends at s(35): 8 s left, plus 2.
    expect(h.scheduled).toEqual([
      { ...chat, delaySeconds: 27 },
      { ...chat, delaySeconds: 27 },
      { ...chat, delaySeconds: 10 },
    ]);
    // The second one.
    h.clock = s(37);
    expect(await processExpiry({ instanceId: chat.instanceId, phone: chat.phone }, h.deps, deadline())).toBe(
      'expired',
    );
    expect(h.published[2]).toMatchObject({
      kind: 'activity-stopped',
      reason: 'expired',
      startedAt: s(0),
      at: s(10),
      durationMs: 10_000,
      sequence: seq(s(0), 3),
    });
    // The rescheduled check (due at s(37) too) finds nothing left.
    expect(await processExpiry({ instanceId: chat.instanceId, phone: chat.phone }, h.deps, deadline())).toBe(
      'nothing-to-expire',
    );
    expect(h.published).toHaveLength(3);
    expect(h.scheduled).toHaveLength(3);
  });

  it('a check that carries its news: superseded by a newer COMPOSING it stops at once (the newer one has its own); for its own news it reschedules', async () => {
    const chat = newChat();
    const h = harness();
    const key = { instanceId: chat.instanceId, phone: chat.phone };
    await processPresence(presence(chat, 'COMPOSING', s(0)), h.deps, deadline());
    h.clock = s(10);
    await processPresence(presence(chat, 'COMPOSING', s(10)), h.deps, deadline());
    expect(h.scheduled).toHaveLength(2);
    // The first COMPOSING's check, at s(27): the window of s(10) still runs, but that one scheduled its own.
    h.clock = s(27);
    expect(await processExpiry(key, h.deps, deadline(), s(0))).toBe('nothing-to-expire');
    expect(h.scheduled).toHaveLength(2);
    // The check of s(10) itself, arriving early (a clock ahead): checked again when its window ends.
    h.clock = s(30);
    expect(await processExpiry(key, h.deps, deadline(), s(10))).toBe('rescheduled');
    expect(h.scheduled.at(-1)).toEqual({ ...chat, delaySeconds: 7 });
    expect(h.published).toHaveLength(2);
    h.clock = s(37);
    expect(await processExpiry(key, h.deps, deadline(), s(10))).toBe('expired');
    expect(h.published[2]).toMatchObject({ kind: 'activity-stopped', reason: 'expired', at: s(10) });
  });

  it('a published outbox is cleared by a write of its own (alone); a step that derives nothing publishes nothing and clears nothing', async () => {
    const chat = newChat();
    const h = harness();
    await processPresence(presence(chat, 'AVAILABLE', s(0)), h.deps, deadline());
    expect([h.publishCalls.length, h.writes]).toEqual([1, 2]); // came-online: the put, then the clear
    expect((await store.get(chat, deadline()))?.pending).toEqual([]);
    await processPresence(presence(chat, 'PAUSED', s(1)), h.deps, deadline());
    expect([h.publishCalls.length, h.writes]).toEqual([1, 3]);
    expect((await store.get(chat, deadline()))?.pending).toEqual([]);
  });

  it('an outbox left by a failed publish is published and cleared before the next step, with no conflict and no re-read', async () => {
    const chat = newChat();
    const h = harness();
    h.failPublish = 1;
    await expect(processPresence(presence(chat, 'AVAILABLE', s(0)), h.deps, deadline())).rejects.toThrow();
    expect(await processPresence(presence(chat, 'UNAVAILABLE', s(5)), h.deps, deadline())).toBe('applied');
    expect(h.publishCalls.map(kinds)).toEqual([['came-online'], ['went-offline']]);
    expect(h.conflicts).toBe(0);
    expectOutboxCleared(h.published, await store.get(chat, deadline()));
  });

  it('gives up after 5 conflicting writes in a row (the message is retried by SQS), for an event and a check alike', async () => {
    const chat = newChat();
    let puts = 0;
    const h = harness({
      store: {
        get: (...args) => store.get(...args),
        participants: (...args) => store.participants(...args),
        clearPending: (...args) => store.clearPending(...args),
        async put() {
          puts += 1;
          return false;
        },
      },
    });
    await expect(processPresence(presence(chat, 'COMPOSING', s(0)), h.deps, deadline())).rejects.toThrow(
      'chat state kept changing under 5 attempts; retried with the message',
    );
    expect(puts).toBe(5);
    expect(h.published).toEqual([]);
    // A chat with a typing past its window, whose expiry write keeps losing.
    await processPresence(presence(chat, 'COMPOSING', s(0)), harness().deps, deadline());
    h.clock = s(60);
    puts = 0;
    await expect(processExpiry(chat, h.deps, deadline())).rejects.toThrow(
      'chat state kept changing under 5 attempts; retried with the message',
    );
    expect(puts).toBe(5);
  });

  it('an item is idle from its expiresAt exactly: a millisecond before, it is the chat’s state', async () => {
    const chat = newChat();
    const h = harness();
    await processPresence(presence(chat, 'AVAILABLE', s(0)), h.deps, deadline());
    h.clock = EXPIRES_AT - 1;
    expect(await processPresence(presence(chat, 'AVAILABLE', EXPIRES_AT - 1), h.deps, deadline())).toBe(
      'applied',
    );
    expect(kinds(h.published)).toEqual(['came-online']);
    h.clock = EXPIRES_AT;
    expect(await processPresence(presence(chat, 'AVAILABLE', EXPIRES_AT), h.deps, deadline())).toBe(
      'applied',
    );
    expect(kinds(h.published)).toEqual(['came-online', 'came-online']);
  });

  it('outbox: publish fails once → state written with pending; the retry publishes them once and clears', async () => {
    const chat = newChat();
    const h = harness();
    const e1 = presence(chat, 'COMPOSING', s(0));
    h.failPublish = 1;
    await expect(processPresence(e1, h.deps, deadline())).rejects.toThrow('not accepted');
    const written = await store.get({ instanceId: chat.instanceId, phone: chat.phone }, deadline());
    expect(written?.state).toMatchObject({ status: 'COMPOSING', activity: 'typing', lastEventId: e1.id });
    expect(kinds(written?.pending ?? [])).toEqual(['came-online', 'activity-started:typing']);
    expect(h.published).toEqual([]);

    // SQS redelivers the same message.
    expect(await processPresence(e1, h.deps, deadline())).toBe('duplicate');
    expect(h.published).toEqual(written?.pending);
    expect(h.publishCalls).toHaveLength(1);
    expectOutboxCleared(
      h.published,
      await store.get({ instanceId: chat.instanceId, phone: chat.phone }, deadline()),
    );

    // And again: nothing more.
    expect(await processPresence(e1, h.deps, deadline())).toBe('duplicate');
    expect(h.publishCalls).toHaveLength(1);
  });

  it('outbox: the chat’s next event publishes the earlier pending events first, then applies with its own', async () => {
    const chat = newChat();
    const h = harness();
    h.failPublish = 1;
    await expect(processPresence(presence(chat, 'AVAILABLE', s(0)), h.deps, deadline())).rejects.toThrow();
    expect(
      kinds((await store.get({ instanceId: chat.instanceId, phone: chat.phone }, deadline()))?.pending ?? []),
    ).toEqual(['came-online']);
    expect(await processPresence(presence(chat, 'RECORDING', s(3)), h.deps, deadline())).toBe('applied');
    expect(kinds(h.published)).toEqual(['came-online', 'activity-started:recording']);
    // Published apart: the earlier outbox first, then this event's own (its write held only those).
    expect(h.publishCalls.map(kinds)).toEqual([['came-online'], ['activity-started:recording']]);
    expect(kinds(h.committed)).toEqual(['came-online', 'activity-started:recording']);
    expectOutboxCleared(
      h.published,
      await store.get({ instanceId: chat.instanceId, phone: chat.phone }, deadline()),
    );
  });

  it('outbox: publish failing on consecutive events: the next event is not applied until the earlier pending events are published; pending never holds more than one step', async () => {
    const chat = newChat();
    const h = harness();
    h.failPublish = 2;
    const e1 = presence(chat, 'AVAILABLE', s(0));
    const e2 = presence(chat, 'COMPOSING', s(1));
    await expect(processPresence(e1, h.deps, deadline())).rejects.toThrow('not accepted');
    // e2 first tries to publish e1's pending events: that fails too, and e2 is not applied (retried).
    await expect(processPresence(e2, h.deps, deadline())).rejects.toThrow('not accepted');
    const written = await store.get({ instanceId: chat.instanceId, phone: chat.phone }, deadline());
    expect(written).toMatchObject({ version: 1, state: { status: 'AVAILABLE', lastEventId: e1.id } });
    expect(kinds(written?.pending ?? [])).toEqual(['came-online']);
    expect(h.published).toEqual([]);
    // Not even its expiry check: nothing of e2 happened.
    expect(h.scheduled).toEqual([]);
    // SQS retries e2: the outbox goes first, then e2 applies.
    expect(await processPresence(e2, h.deps, deadline())).toBe('applied');
    expect(h.scheduled).toEqual([{ ...chat, delaySeconds: 28 }]);
    expect(await processPresence(presence(chat, 'PAUSED', s(2)), h.deps, deadline())).toBe('applied');
    expect(h.publishCalls.map(kinds)).toEqual([
      ['came-online'],
      ['activity-started:typing'],
      ['activity-stopped:typing:paused'],
    ]);
    expect(h.published.map((e) => e.sequence)).toEqual(seqs(s(0), 3));
    expect(await store.get({ instanceId: chat.instanceId, phone: chat.phone }, deadline())).toMatchObject({
      version: 3,
      state: { status: 'PAUSED' },
    });
  });

  it('outbox: an expiry check publishes the pending events of a failed publish first, then expires', async () => {
    const chat = newChat();
    const h = harness();
    h.failPublish = 1;
    await expect(processPresence(presence(chat, 'RECORDING', s(0)), h.deps, deadline())).rejects.toThrow();
    h.clock = s(30);
    expect(await processExpiry({ instanceId: chat.instanceId, phone: chat.phone }, h.deps, deadline())).toBe(
      'expired',
    );
    expect(kinds(h.published)).toEqual([
      'came-online',
      'activity-started:recording',
      'activity-stopped:recording:expired',
    ]);
    expect(h.publishCalls.map(kinds)).toEqual([
      ['came-online', 'activity-started:recording'],
      ['activity-stopped:recording:expired'],
    ]);
    expect(h.published.map((e) => e.sequence)).toEqual(seqs(s(0), 3));
    const stored = await store.get({ instanceId: chat.instanceId, phone: chat.phone }, deadline());
    expectOutboxCleared(h.published, stored);
    expect(stored?.state.activity).toBeUndefined();
  });

  it('outbox: an expiry whose publish fails is published by the retried check, once', async () => {
    const chat = newChat();
    const h = harness();
    await processPresence(presence(chat, 'RECORDING', s(0)), h.deps, deadline());
    h.clock = s(30);
    h.failPublish = 1;
    await expect(
      processExpiry({ instanceId: chat.instanceId, phone: chat.phone }, h.deps, deadline()),
    ).rejects.toThrow();
    const written = await store.get({ instanceId: chat.instanceId, phone: chat.phone }, deadline());
    expect(written?.state.activity).toBeUndefined();
    expect(kinds(written?.pending ?? [])).toEqual(['activity-stopped:recording:expired']);
    expect(await processExpiry({ instanceId: chat.instanceId, phone: chat.phone }, h.deps, deadline())).toBe(
      'nothing-to-expire',
    );
    expect(kinds(h.published)).toEqual([
      'came-online',
      'activity-started:recording',
      'activity-stopped:recording:expired',
    ]);
    expectOutboxCleared(
      h.published,
      await store.get({ instanceId: chat.instanceId, phone: chat.phone }, deadline()),
    );
  });

  it('schedules the expiry check first: when it fails nothing is written', async () => {
    const chat = newChat();
    const h = harness();
    h.failSchedule = 1;
    const e1 = presence(chat, 'COMPOSING', s(0));
    await expect(processPresence(e1, h.deps, deadline())).rejects.toThrow('SQS down');
    expect(await store.get({ instanceId: chat.instanceId, phone: chat.phone }, deadline())).toBeUndefined();
    expect(await processPresence(e1, h.deps, deadline())).toBe('applied');
    expect(h.scheduled).toHaveLength(1);
  });

  it('scheduleExpiry: processed at once, Math.ceil(expiryMs / 1000) + 2 seconds when an activity starts or refreshes, not otherwise', async () => {
    for (const [expiryMs, delaySeconds] of [
      [25_000, 27],
      [10_000, 12],
      [25_500, 28],
    ] as const) {
      const chat = newChat();
      const h = harness({ expiryMs });
      const steps: Array<[PresenceStatus, number, boolean]> = [
        ['AVAILABLE', s(0), false],
        ['COMPOSING', s(1), true], // starts
        ['COMPOSING', s(2), true], // refreshes
        ['RECORDING', s(3), true], // switches: starts another
        ['RECORDING', s(3), true], // same second, another event: refreshes
        ['PAUSED', s(4), false],
        ['PAUSED', s(5), false],
        ['COMPOSING', s(6), true],
        ['UNAVAILABLE', s(7), false],
        ['UNAVAILABLE', s(8), false],
        ['AVAILABLE', s(9), false],
      ];
      for (const [status, at, schedules] of steps) {
        const before = h.scheduled.length;
        h.clock = at;
        await processPresence(presence(chat, status, at), h.deps, deadline());
        expect(h.scheduled.length - before, `${status} at ${at - T0}`).toBe(schedules ? 1 : 0);
      }
      // Older and duplicate deliveries, and expiry checks, schedule nothing.
      const before = h.scheduled.length;
      await processPresence(presence(chat, 'COMPOSING', s(1)), h.deps, deadline());
      h.clock = s(100);
      await processExpiry({ instanceId: chat.instanceId, phone: chat.phone }, h.deps, deadline());
      expect(h.scheduled.length).toBe(before);
      expect(h.scheduled).toEqual(Array.from({ length: 5 }, () => ({ ...chat, delaySeconds })));
    }
  });

  it('scheduleExpiry: counted from the news, not from when it is processed: max(1, ceil((news + expiry − now) / 1000) + 2)', async () => {
    for (const [expiryMs, lateMs, delaySeconds] of [
      [25_000, 0, 27],
      [25_000, 400, 27], // 24.6 s left: 25 + 2
      [25_000, 10_000, 17],
      [25_500, 10_000, 18],
      [25_000, 24_000, 3],
      [25_000, 25_000, 2],
      [25_000, 26_500, 1], // -1.5 s: ceil = -1, + 2
      [25_000, 40_000, 1], // long past: at least one second
      [25_000, -3_000, 30], // processed before its own time (a clock behind)
    ] as const) {
      const chat = newChat();
      const h = harness({ expiryMs });
      h.clock = s(5) + lateMs;
      expect(await processPresence(presence(chat, 'RECORDING', s(5)), h.deps, deadline())).toBe('applied');
      expect(h.scheduled, `${expiryMs} ${lateMs}`).toEqual([{ ...chat, delaySeconds }]);
    }
  });

  /** Every get waits until `parties` gets have been made, so concurrent writers read the same version. */
  function barrierStore(parties: number): PresenceStore {
    let arrived = 0;
    let release: () => void = () => {};
    const all = new Promise<void>((resolve) => {
      release = resolve;
    });
    return {
      ...store,
      async get(key, d) {
        const result = await store.get(key, d);
        if (arrived < parties) {
          arrived += 1;
          if (arrived === parties) release();
          await all;
        }
        return result;
      },
    };
  }

  it('two events of one chat processed concurrently: the newer wins, no derived event lost (conflict retry)', async () => {
    for (let round = 0; round < 6; round++) {
      const chat = newChat();
      const h = harness({ store: barrierStore(2) });
      const older = presence(chat, 'AVAILABLE', s(0));
      const newer = presence(chat, 'COMPOSING', s(1));
      const pair = round % 2 === 0 ? [older, newer] : [newer, older];
      const outcomes = await Promise.all(pair.map((e) => processPresence(e, h.deps, deadline())));
      expect(outcomes).toContain('applied');
      expect(h.conflicts).toBe(1);
      const stored = await store.get({ instanceId: chat.instanceId, phone: chat.phone }, deadline());
      expect(stored?.state).toMatchObject({ status: 'COMPOSING', lastEventId: newer.id, activity: 'typing' });
      expectOutboxCleared(h.published, stored);
      // Every derived event a successful write committed was published (at least once).
      for (const event of h.committed) expect(h.published).toContainEqual(event);
      expect(kinds(h.committed)).toEqual(expect.arrayContaining(['came-online', 'activity-started:typing']));
      // The stored state is the newer event applied over the older one, or alone (the older dropped).
      const alone = applyPresence(undefined, newer) as { state: ChatState };
      const inOrder = applyPresence(
        (applyPresence(undefined, older) as { state: ChatState }).state,
        newer,
      ) as {
        state: ChatState;
      };
      expect([inOrder.state, alone.state]).toContainEqual(stored?.state);
    }
  });

  it('concurrent events without a barrier (real races on dynalite): the newest state, nothing lost', async () => {
    for (let round = 0; round < 5; round++) {
      const chat = newChat();
      const h = harness();
      const events = [presence(chat, 'COMPOSING', s(0)), presence(chat, 'PAUSED', s(4))];
      await Promise.all(events.map((e) => processPresence(e, h.deps, deadline())));
      const stored = await store.get({ instanceId: chat.instanceId, phone: chat.phone }, deadline());
      expect(stored?.state.lastEventId).toBe(events[1]?.id);
      expectOutboxCleared(h.published, stored);
      for (const event of h.committed) expect(h.published).toContainEqual(event);
    }
  });

  it('a concurrent writer holding a publish: the other writer publishes its pending events before applying its own', async () => {
    const chat = newChat();
    // Writer A commits, then stalls in publish; writer B reads A's version with its pending events.
    let releaseA: () => void = () => {};
    const aPublishing = new Promise<void>((resolve) => {
      releaseA = resolve;
    });
    const a = harness();
    const slowA: StateDeps = {
      ...a.deps,
      async publish(events, d) {
        await aPublishing;
        return a.deps.publish(events, d);
      },
    };
    const b = harness();
    const e1 = presence(chat, 'AVAILABLE', s(0));
    const e2 = presence(chat, 'UNAVAILABLE', s(3));
    const first = processPresence(e1, slowA, deadline());
    // Wait until A has written.
    for (;;) {
      if ((await store.get({ instanceId: chat.instanceId, phone: chat.phone }, deadline())) !== undefined)
        break;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    expect(await processPresence(e2, b.deps, deadline())).toBe('applied');
    expect(kinds(b.published)).toEqual(['came-online', 'went-offline']);
    expect(b.publishCalls.map(kinds)).toEqual([['came-online'], ['went-offline']]);
    expect(kinds(b.committed)).toEqual(['went-offline']);
    releaseA();
    expect(await first).toBe('applied');
    // At least once: A publishes its own events too, late.
    for (const event of a.committed) expect(a.published).toContainEqual(event);
    const stored = await store.get({ instanceId: chat.instanceId, phone: chat.phone }, deadline());
    // A's late clear of its own version must not remove anything of B's version.
    expect(stored).toMatchObject({ version: 2, state: { status: 'UNAVAILABLE' } });
  });

  it('gives up after repeated conflicts (the message is retried by SQS)', async () => {
    const chat = newChat();
    const h = harness({
      store: { ...store, put: async () => false },
    });
    await expect(processPresence(presence(chat, 'AVAILABLE', s(0)), h.deps, deadline())).rejects.toThrow(
      /kept changing/,
    );
    expect(h.published).toEqual([]);
  });

  // The receiver's contract accepts any finite lastSeen, but DynamoDB numbers stop at ~1e126 (and 1e-130):
  // such a value is stored as null, so the event still applies (instead of failing on every delivery).
  it('a lastSeen the contract accepts but DynamoDB cannot hold (1e300) is stored as null: the event applies', async () => {
    const chat = newChat();
    const h = harness();
    const outcome = await processPresence(
      presence(chat, 'AVAILABLE', s(0), { lastSeen: 1e300 }),
      h.deps,
      deadline(),
    ).catch((error: Error) => `${error.name}: ${error.message}`);
    expect(outcome).toBe('applied');
    expect(kinds(h.published)).toEqual(['came-online']);
    expect(
      (await store.get({ instanceId: chat.instanceId, phone: chat.phone }, deadline()))?.state,
    ).toMatchObject({
      status: 'AVAILABLE',
      lastSeen: null,
    });
    expect((await rawItem(chat.instanceId, chat.phone))?.lastSeen).toEqual({ NULL: true });
  });

  // A writer that read a version and then lost the race to a concurrent writer whose publish failed must
  // carry that writer's pending events along, not overwrite them: otherwise the subscribers would get
  // "typing stopped" but never "typing started".
  it('pending events of a concurrent writer whose publish failed are published before the other writer applies, not overwritten', async () => {
    const chat = newChat();
    const e1 = presence(chat, 'AVAILABLE', s(0));
    const e3 = presence(chat, 'COMPOSING', s(1));
    const e2 = presence(chat, 'PAUSED', s(2));
    // W1 commits e1 and fails to publish: v1 holds pending [came-online].
    const w1 = harness();
    w1.failPublish = 1;
    await expect(processPresence(e1, w1.deps, deadline())).rejects.toThrow();
    // W2 (e2) publishes v1's pending and reads v1 again; before it writes, W3 (e3) publishes v1's
    // pending too (it does not know W2 did: another process), commits v2 and fails to publish.
    const w3 = harness();
    const w3Publish = w3.deps.publish;
    let w3Publishes = 0;
    (w3 as { deps: StateDeps }).deps = {
      ...w3.deps,
      publish(events, d) {
        w3Publishes += 1;
        if (w3Publishes === 2) w3.failPublish = 1;
        return w3Publish(events, d);
      },
    };
    let hook: (() => Promise<unknown>) | undefined = () =>
      processPresence(e3, w3.deps, deadline()).catch((error: Error) => error.message);
    const hooked: PresenceStore = {
      ...store,
      async put(...args) {
        const run = hook;
        hook = undefined;
        if (run !== undefined) expect(await run()).toMatch(/not accepted/);
        return store.put(...args);
      },
    };
    const w2 = harness({ store: hooked });
    expect(await processPresence(e2, w2.deps, deadline())).toBe('applied');
    expect(hook).toBeUndefined();
    expect(w2.conflicts).toBe(1);
    // W3's write held its own events only (v1's were published by then).
    expect(kinds(w3.committed)).toEqual(['activity-started:typing']);
    // W2 publishes v1's pending, then (after the conflict) v2's, then writes and publishes its own.
    expect(w2.publishCalls.map(kinds)).toEqual([
      ['came-online'],
      ['activity-started:typing'],
      ['activity-stopped:typing:paused'],
    ]);
    expect(kinds(w2.committed)).toEqual(['activity-stopped:typing:paused']);
    expect(w2.published.map((e) => e.sequence)).toEqual(seqs(s(0), 3));
    expect(await store.get({ instanceId: chat.instanceId, phone: chat.phone }, deadline())).toMatchObject({
      version: 3,
      state: { status: 'PAUSED', lastEventId: e2.id },
    });
    // SQS redelivers e3 (its publish failed): older now, nothing left to publish.
    expect(await processPresence(e3, w3.deps, deadline())).toBe('older');
    const published = [...w1.published, ...w2.published, ...w3.published];
    for (const event of [...w1.committed, ...w2.committed, ...w3.committed])
      expect(published).toContainEqual(event);
  });

  it('sequence: per chat, from the time of its first derived event, one more per derived event (expiries included); an event published again keeps its sequence', async () => {
    const chat = newChat();
    const other = newChat();
    const h = harness();
    const e2 = presence(chat, 'COMPOSING', s(1));
    expect(await processPresence(presence(chat, 'AVAILABLE', s(0)), h.deps, deadline())).toBe('applied');
    expect(await processPresence(presence(other, 'RECORDING', s(0)), h.deps, deadline())).toBe('applied');
    // Accepted by the bus, but the answer is lost: the retry publishes it again, as it was.
    h.failAfterPublish = 1;
    await expect(processPresence(e2, h.deps, deadline())).rejects.toThrow('socket hang up');
    expect(await processPresence(e2, h.deps, deadline())).toBe('duplicate');
    expect(await processPresence(presence(chat, 'PAUSED', s(3)), h.deps, deadline())).toBe('applied');
    expect(await processPresence(presence(chat, 'COMPOSING', s(5)), h.deps, deadline())).toBe('applied');
    h.clock = s(31);
    expect(await processExpiry(chat, h.deps, deadline())).toBe('expired');
    expect(await processExpiry(other, h.deps, deadline())).toBe('expired');
    expect(await processPresence(presence(chat, 'UNAVAILABLE', s(31)), h.deps, deadline())).toBe('applied');

    const ofChat = h.published.filter((e) => e.phone === chat.phone);
    expect(ofChat.map((e) => [kinds([e])[0], e.sequence])).toEqual([
      ['came-online', seq(s(0), 1)],
      ['activity-started:typing', seq(s(0), 2)],
      ['activity-started:typing', seq(s(0), 2)], // published again: the same event
      ['activity-stopped:typing:paused', seq(s(0), 3)],
      ['activity-started:typing', seq(s(0), 4)],
      ['activity-stopped:typing:expired', seq(s(0), 5)],
      ['went-offline', seq(s(0), 6)],
    ]);
    expect(ofChat[2]).toEqual(ofChat[1]);
    expect(
      h.published.filter((e) => e.phone === other.phone).map((e) => [kinds([e])[0], e.sequence]),
    ).toEqual([
      ['came-online', seq(s(0), 1)],
      ['activity-started:recording', seq(s(0), 2)],
      ['activity-stopped:recording:expired', seq(s(0), 3)],
    ]);
    expect((await store.get(chat, deadline()))?.state.sequence).toBe(seq(s(0), 6));
    expect((await rawItem(chat.instanceId, chat.phone))?.sequence).toEqual({ N: String(seq(s(0), 6)) });
  });

  it('EventBridge down for 2,000 consecutive COMPOSING/PAUSED events: pending never holds more than one step; after recovery all of it is published once, in sequence', async () => {
    const chat = newChat();
    const h = harness();
    const events = Array.from({ length: 2_000 }, (_, i) =>
      presence(chat, i % 2 === 0 ? 'COMPOSING' : 'PAUSED', s(i)),
    );
    h.failPublish = Number.POSITIVE_INFINITY;
    let most = 0;
    for (const event of events) {
      h.clock = event.time;
      await expect(processPresence(event, h.deps, deadline())).rejects.toThrow('not accepted');
      const pending = JSON.parse(
        (await rawItem(chat.instanceId, chat.phone))?.pending?.S ?? '[]',
      ) as unknown[];
      most = Math.max(most, pending.length);
      expect(pending.length).toBeLessThanOrEqual(4);
    }
    // Only the first event was applied; every later one waits (SQS retries it) behind the outbox.
    expect(most).toBe(2);
    expect(await store.get(chat, deadline())).toMatchObject({
      version: 1,
      state: { status: 'COMPOSING', lastEventId: events[0]?.id, sequence: seq(s(0), 2) },
    });
    expect(kinds((await store.get(chat, deadline()))?.pending ?? [])).toEqual([
      'came-online',
      'activity-started:typing',
    ]);
    expect(h.published).toEqual([]);

    // EventBridge is back; SQS delivers the events again, in order.
    h.failPublish = 0;
    for (const event of events) {
      h.clock = event.time;
      expect(await processPresence(event, h.deps, deadline())).toBe(
        event === events[0] ? 'duplicate' : 'applied',
      );
    }
    // came-online, then a start and a stop per pair: 1 + 2,000 events, each published once, in order.
    expect(h.published).toHaveLength(2_001);
    expect(h.published.map((e) => e.sequence)).toEqual(seqs(s(0), 2_001));
    expect(kinds(h.published.slice(0, 4))).toEqual([
      'came-online',
      'activity-started:typing',
      'activity-stopped:typing:paused',
      'activity-started:typing',
    ]);
    expect(h.committed).toEqual(h.published);
    expect(await store.get(chat, deadline())).toMatchObject({
      version: 2_000,
      state: { status: 'PAUSED', sequence: seq(s(0), 2_001) },
    });
  }, 120_000);

  it('an early expiry check reschedules itself for the rest of the window; the rescheduled one expires it', async () => {
    const chat = newChat();
    const h = harness();
    await processPresence(presence(chat, 'COMPOSING', s(0)), h.deps, deadline());
    const before = await store.get(chat, deadline());
    // 15 s of the window left (a clock ahead, or a delay cut short): 15 + 2.
    h.clock = s(10);
    expect(await processExpiry(chat, h.deps, deadline())).toBe('rescheduled');
    expect(h.scheduled).toEqual([
      { ...chat, delaySeconds: 27 },
      { ...chat, delaySeconds: 17 },
    ]);
    // Nothing written, nothing published.
    expect(await store.get(chat, deadline())).toEqual(before);
    expect(h.published).toHaveLength(2);
    // 0.5 s left.
    h.clock = s(24) + 500;
    expect(await processExpiry(chat, h.deps, deadline())).toBe('rescheduled');
    expect(h.scheduled.at(-1)).toEqual({ ...chat, delaySeconds: 3 });
    // The rescheduled check, when it comes.
    h.clock = s(27) + 500;
    expect(await processExpiry(chat, h.deps, deadline())).toBe('expired');
    expect(h.published.at(-1)).toEqual({
      ...chat,
      kind: 'activity-stopped',
      activity: 'typing',
      reason: 'expired',
      startedAt: s(0),
      at: s(0),
      durationMs: 0,
      sequence: seq(s(0), 3),
      current: AFTER.on,
    });
    // Nothing running any more: checks stop, none scheduled.
    expect(await processExpiry(chat, h.deps, deadline())).toBe('nothing-to-expire');
    expect(h.scheduled).toHaveLength(3);
  });

  it('an early expiry check of a group participant reschedules with the participant', async () => {
    const group = newGroup();
    const member = { instanceId: 'INSTANCEA', phone: group, participant: '5511977776666' };
    const h = harness();
    await processPresence(presence(member, 'RECORDING', s(0)), h.deps, deadline());
    h.clock = s(20);
    expect(await processExpiry(member, h.deps, deadline())).toBe('rescheduled');
    expect(h.scheduled).toEqual([
      { ...member, delaySeconds: 27 },
      { ...member, delaySeconds: 7 },
    ]);
    // The group itself is another chat.
    expect(await processExpiry({ instanceId: 'INSTANCEA', phone: group }, h.deps, deadline())).toBe(
      'unknown-chat',
    );
    h.clock = s(26);
    expect(await processExpiry(member, h.deps, deadline())).toBe('expired');
    expect(h.published.at(-1)).toMatchObject({ ...member, kind: 'activity-stopped', sequence: seq(s(0), 3) });
  });

  it('group: A typing, B pausing then leaving: A’s typing goes on; one item per participant', async () => {
    const group = newGroup();
    const a = { instanceId: 'INSTANCEA', phone: group, participant: '5511911110000' };
    const b = { instanceId: 'INSTANCEA', phone: group, participant: '5511922220000' };
    const h = harness();
    for (const [who, status, at] of [
      [a, 'COMPOSING', s(0)],
      [b, 'PAUSED', s(1)],
      [b, 'UNAVAILABLE', s(2)],
    ] as const) {
      h.clock = at;
      expect(await processPresence(presence(who, status, at), h.deps, deadline())).toBe('applied');
    }
    expect(h.published).toEqual([
      { ...a, kind: 'came-online', at: s(0), sequence: seq(s(0), 1), current: AFTER.typing },
      {
        ...a,
        kind: 'activity-started',
        activity: 'typing',
        at: s(0),
        sequence: seq(s(0), 2),
        current: AFTER.typing,
      },
      { ...b, kind: 'came-online', at: s(1), sequence: seq(s(1), 1), current: AFTER.on },
      {
        ...b,
        kind: 'went-offline',
        onlineSince: s(1),
        at: s(2),
        durationMs: 1_000,
        sequence: seq(s(1), 2),
        current: AFTER.off,
      },
    ]);
    expect(h.scheduled).toEqual([{ ...a, delaySeconds: 27 }]);
    expect((await store.get(a, deadline()))?.state).toMatchObject({ ...a, activity: 'typing', online: true });
    expect((await store.get(b, deadline()))?.state).toMatchObject({ ...b, online: false });
    expect((await store.get(b, deadline()))?.state.activity).toBeUndefined();
    expect((await rawItem('INSTANCEA', `${group}#${a.participant}`))?.participant).toEqual({
      S: a.participant,
    });
    expect(await store.get({ instanceId: 'INSTANCEA', phone: group }, deadline())).toBeUndefined();
    const members = await store.participants('INSTANCEA', group, 10, deadline());
    expect(members.map((m) => m.state.participant).sort()).toEqual([a.participant, b.participant].sort());
  });
});

// --- Fixed defects, found while testing the refactor ----------------------------------------------

describe('the write path: a read, a write and a clear a step, calls shared by a batch', () => {
  it('the process dies between the write and PutEvents: a new process (nothing in memory) publishes the outbox before it applies anything; a duplicate at most, never a loss', async () => {
    const chat = newChat();
    const first = harness();
    const e1 = presence(chat, 'COMPOSING', s(0));
    first.failPublish = 1; // the write is done, PutEvents never is
    await expect(processPresence(e1, first.deps, deadline())).rejects.toThrow();
    expect(first.published).toEqual([]);
    // The retry runs in another container.
    const second = harness();
    expect(await processPresence(e1, second.deps, deadline())).toBe('duplicate');
    expect(kinds(second.published)).toEqual(['came-online', 'activity-started:typing']);
    // PutEvents accepted but its answer lost: the retry publishes the same events again (same sequence).
    const third = second;
    third.failAfterPublish = 1;
    const e2 = presence(chat, 'PAUSED', s(2));
    await expect(processPresence(e2, third.deps, deadline())).rejects.toThrow('socket hang up');
    expect(await processPresence(e2, third.deps, deadline())).toBe('duplicate');
    expect(kinds(third.published.slice(2))).toEqual([
      'activity-stopped:typing:paused',
      'activity-stopped:typing:paused',
    ]);
    expect(third.published[2]).toEqual(third.published[3]);
    // The retry cleared the outbox it published: another container publishes only its own step.
    expect((await store.get(chat, deadline()))?.pending).toEqual([]);
    const fourth = harness();
    expect(await processPresence(presence(chat, 'UNAVAILABLE', s(3)), fourth.deps, deadline())).toBe(
      'applied',
    );
    expect(fourth.publishCalls.map(kinds)).toEqual([['went-offline']]);
    const all = [...first.published, ...second.published, ...fourth.published];
    for (const event of [...first.committed, ...second.committed, ...fourth.committed])
      expect(all).toContainEqual(event);
  });

  it('a batch: one BatchGetItem for its chats, one SendMessageBatch and one PutEvents a round, and a chat’s later records start from its own write (no re-read)', async () => {
    const calls: string[] = [];
    const counting = dynamoStore(
      {
        send: (command: { constructor: { name: string } }, options?: unknown) => {
          calls.push(command.constructor.name);
          return client.send(command as never, options as never);
        },
      } as unknown as DynamoDBClient,
      TABLE,
      { ttlSeconds: TTL_SECONDS, now: () => STORE_NOW },
    );
    const h = harness();
    const checks: ExpiryRequest[][] = [];
    const deps: StateDeps = {
      ...h.deps,
      store: counting,
      async scheduleExpiries(list) {
        checks.push([...list]);
      },
    };
    const chats = [newChat(), newChat(), newChat()];
    const results = await processChats(
      chats.map((chat) => ({
        key: chat,
        steps: [
          { kind: 'presence', input: presence(chat, 'AVAILABLE', s(0)) },
          { kind: 'presence', input: presence(chat, 'COMPOSING', s(1)) },
          { kind: 'presence', input: presence(chat, 'COMPOSING', s(1)) },
        ] as const,
      })),
      deps,
      deadline(),
    );
    expect(results).toEqual(chats.map(() => ({ outcomes: ['applied', 'applied', 'applied'] })));
    expect(calls).toEqual(['BatchGetItemCommand', ...Array(9).fill('PutItemCommand')]);
    // Round 1: came-online of the 3 chats in one call; round 2: their activity-started; round 3: nothing.
    expect(h.publishCalls.map(kinds)).toEqual([
      ['came-online', 'came-online', 'came-online'],
      ['activity-started:typing', 'activity-started:typing', 'activity-started:typing'],
    ]);
    expect(checks.map((list) => list.length)).toEqual([3, 3]);
    for (const chat of chats) {
      const stored = await store.get(chat, deadline());
      expect(stored).toMatchObject({ version: 3, state: { status: 'COMPOSING', activity: 'typing' } });
    }
  });

  it('a batch: a chat whose write conflicts is read again and retried alone; one whose publish fails stops there (its later records not tried), the others go on', async () => {
    const h = harness();
    const [a, b] = [newChat(), newChat()];
    // Another process wrote chat a after this batch read it.
    let raced = false;
    const racing: PresenceStore = {
      ...store,
      async put(state, pending, expected, d) {
        if (!raced && state.phone === a.phone) {
          raced = true;
          await store.put({ ...state, lastEventId: 'other', eventTime: s(0) - 1 }, [], expected, d);
        }
        return store.put(state, pending, expected, d);
      },
    };
    let publishes = 0;
    const deps: StateDeps = {
      ...h.deps,
      store: racing,
      async publish(events, d) {
        publishes += 1;
        if (events.some((e) => e.phone === b.phone && e.kind === 'came-online'))
          throw new Error('PutEvents down');
        return h.deps.publish(events, d);
      },
    };
    const results = await processChats(
      [
        { key: a, steps: [{ kind: 'presence', input: presence(a, 'UNAVAILABLE', s(0)) }] },
        {
          key: b,
          steps: [
            { kind: 'presence', input: presence(b, 'AVAILABLE', s(0)) },
            { kind: 'presence', input: presence(b, 'UNAVAILABLE', s(1)) },
          ],
        },
      ],
      deps,
      deadline(),
    );
    expect(results[0]).toEqual({ outcomes: ['applied'] });
    expect(results[1]?.outcomes).toEqual([]);
    expect(results[1]?.failed).toMatchObject({ index: 0, error: new Error('PutEvents down') });
    expect(publishes).toBeGreaterThan(0);
    expect((await store.get(a, deadline()))?.version).toBe(2);
    expect((await store.get(b, deadline()))?.state.status).toBe('AVAILABLE'); // the second not applied
  });
});

describe('replays and chats that come back', () => {
  // A replay (EventBridge archive) used to update the state without publishing and without an
  // activity: a replayed PAUSED that the live stream had lost then dropped an announced typing with no
  // Activity Stopped, and subscribers kept it for ever. A replay is now applied like any event: what it
  // changes is news the subscribers missed too.
  it('a replayed PAUSED the live stream lost stops the announced typing (published), and the typing’s check then has nothing to do', async () => {
    const chat = newChat();
    const h = harness();
    expect(await processPresence(presence(chat, 'COMPOSING', s(0)), h.deps, deadline())).toBe('applied');
    h.clock = s(600); // the replay runs ten minutes later
    expect(await processPresence(presence(chat, 'PAUSED', s(3)), h.deps, deadline())).toBe('applied');
    expect(kinds(h.published)).toEqual([
      'came-online',
      'activity-started:typing',
      'activity-stopped:typing:paused',
    ]);
    expect(h.published[2]).toMatchObject({ at: s(3), durationMs: 3_000, current: AFTER.on });
    expect(await processExpiry(chat, h.deps, deadline(), s(0))).toBe('nothing-to-expire');
    expect(h.published).toHaveLength(3);
  });

  it('a replayed COMPOSING of a chat the table has not seen: announced as it happened, and its check, a second later, ends it', async () => {
    const chat = newChat();
    const h = harness();
    h.clock = s(600);
    expect(await processPresence(presence(chat, 'COMPOSING', s(0)), h.deps, deadline())).toBe('applied');
    expect(kinds(h.published)).toEqual(['came-online', 'activity-started:typing']);
    // Its window is long over: the check comes at once (SQS's shortest delay that is not none).
    expect(h.scheduled).toEqual([{ ...chat, delaySeconds: 1 }]);
    h.clock = s(601);
    expect(await processExpiry(chat, h.deps, deadline(), s(0))).toBe('expired');
    expect(h.published.at(-1)).toEqual({
      ...chat,
      kind: 'activity-stopped',
      activity: 'typing',
      reason: 'expired',
      startedAt: s(0),
      at: s(0),
      durationMs: 0,
      sequence: seq(s(0), 3),
      current: AFTER.on,
    });
    // An older replayed event changes nothing.
    expect(await processPresence(presence(chat, 'UNAVAILABLE', s(0) - 1_000), h.deps, deadline())).toBe(
      'older',
    );
  });

  // DynamoDB deletes an item past its TTL up to days late. The writer used to treat such an item as a
  // live state while the read route answered 404: no Came Online, and a Went Offline counting the whole
  // idle month. Both now see a chat idle past the horizon as a chat never seen.
  it('an item past its TTL, not deleted yet: a chat never seen, as the read route says (written over, numbered above)', async () => {
    const chat = newChat();
    let clock = s(0);
    // A store whose TTL runs from the harness's clock.
    const h = harness({ store: dynamoStore(client, TABLE, { ttlSeconds: TTL_SECONDS, now: () => clock }) });
    const tick = (ms: number) => {
      clock = ms;
      h.clock = ms;
    };
    tick(s(0));
    expect(await processPresence(presence(chat, 'AVAILABLE', s(0)), h.deps, deadline())).toBe('applied');
    const expiresAt = (await store.get(chat, deadline()))?.expiresAt as number;
    expect(expiresAt).toBe(s(0) + TTL_SECONDS * 1_000);
    const back = expiresAt + 1_000;
    tick(back);
    // An expiry check for it finds no chat.
    expect(await processExpiry(chat, h.deps, deadline())).toBe('unknown-chat');
    expect(await processPresence(presence(chat, 'AVAILABLE', back), h.deps, deadline())).toBe('applied');
    tick(back + 5_000);
    expect(await processPresence(presence(chat, 'UNAVAILABLE', back + 5_000), h.deps, deadline())).toBe(
      'applied',
    );
    expect(h.published.slice(1)).toEqual([
      { ...chat, kind: 'came-online', at: back, sequence: back, current: AFTER.on },
      {
        ...chat,
        kind: 'went-offline',
        onlineSince: back,
        at: back + 5_000,
        durationMs: 5_000,
        sequence: back + 1,
        current: AFTER.off,
      },
    ]);
    // The same item, written over with the next version.
    expect((await store.get(chat, deadline()))?.version).toBe(3);
  });

  // When DynamoDB's TTL deletes an idle chat (IDLE_DAYS), its numbering used to start again at 1; a
  // subscriber that follows the schema ("keep the highest sequence seen per chat and ignore any event at
  // or below it") then dropped the chat's events. A chat's numbering now starts at the time of its
  // first derived event.
  it('a chat that comes back after its item expired is numbered above what subscribers saw', async () => {
    const chat = newChat();
    const h = harness();
    for (const [status, at] of [
      ['AVAILABLE', s(0)],
      ['UNAVAILABLE', s(1)],
      ['AVAILABLE', s(2)],
      ['UNAVAILABLE', s(3)],
    ] as const)
      expect(await processPresence(presence(chat, status, at), h.deps, deadline())).toBe('applied');
    expect(h.published.map((e) => e.sequence)).toEqual(seqs(s(0), 4));
    const highest = Math.max(...h.published.map((e) => e.sequence));
    // What the TTL does, 30 days later.
    await client.send(
      new DeleteItemCommand({
        TableName: TABLE,
        Key: { instanceId: { S: chat.instanceId }, chat: { S: chat.phone } },
      }),
    );
    expect(await store.get(chat, deadline())).toBeUndefined();
    h.clock = s(31 * 86_400);
    expect(await processPresence(presence(chat, 'COMPOSING', h.clock), h.deps, deadline())).toBe('applied');
    expect(h.published.slice(4)).toEqual([
      { ...chat, kind: 'came-online', at: h.clock, sequence: h.clock, current: AFTER.typing },
      {
        ...chat,
        kind: 'activity-started',
        activity: 'typing',
        at: h.clock,
        sequence: h.clock + 1,
        current: AFTER.typing,
      },
    ]);
    expect(h.published[4]?.sequence).toBeGreaterThan(highest);
    expect((await store.get(chat, deadline()))?.state.sequence).toBe(h.clock + 1);
  });
});

// Issue 19's review: with the outbox-clearing write gone, a container that had not published an outbox
// itself published it again (most steps twice once a few containers were warm), a month-old outbox of an
// idle item came out first, and a version that started again at 1 after the TTL hid a pending outbox.
describe('exactly once in practice: across containers, idle items and versions that start again', () => {
  /** A dynamoStore on the test table whose DynamoDB calls are listed by command. */
  const countingStore = (calls: string[], now: () => number = () => STORE_NOW) =>
    dynamoStore(
      {
        send: (command: { constructor: { name: string } }, options?: unknown) => {
          calls.push(command.constructor.name.replace('Command', ''));
          return client.send(command as never, options as never);
        },
      } as unknown as DynamoDBClient,
      TABLE,
      { ttlSeconds: TTL_SECONDS, now },
    );

  it('two containers alternating the records of one chat (alone and in batches) publish each derived event exactly once', async () => {
    const chat = newChat();
    const containers = [harness(), harness()] as const;
    const steps: Array<readonly [PresenceStatus | 'expiry', number]> = [
      ['AVAILABLE', s(0)],
      ['COMPOSING', s(2)],
      ['PAUSED', s(4)],
      ['COMPOSING', s(6)],
      ['expiry', s(40)],
      ['RECORDING', s(50)],
      ['PAUSED', s(52)],
      ['UNAVAILABLE', s(53)],
      ['AVAILABLE', s(60)],
      ['COMPOSING', s(61)],
      ['UNAVAILABLE', s(62)],
    ];
    let turn = 0;
    for (let i = 0; i < steps.length; ) {
      // Alone, then two records in one batch, in turn.
      const take = turn % 2 === 0 ? 1 : 2;
      const h = containers[turn % 2] as Harness;
      const batch = steps.slice(i, i + take);
      h.clock = (batch.at(-1) as readonly [unknown, number])[1];
      const [result] = await processChats(
        [
          {
            key: chat,
            steps: batch.map(([status, at]) =>
              status === 'expiry'
                ? { kind: 'expiry' as const, news: s(6) }
                : { kind: 'presence' as const, input: presence(chat, status, at) },
            ),
          },
        ],
        h.deps,
        deadline(),
      );
      expect(result?.failed).toBeUndefined();
      i += take;
      turn += 1;
    }
    const published = containers.flatMap((h) => h.published);
    const committed = containers.flatMap((h) => h.committed);
    const bySequence = (events: readonly DerivedEvent[]) =>
      [...events].sort((a, b) => a.sequence - b.sequence);
    expect(bySequence(published)).toEqual(bySequence(committed));
    expect(new Set(published.map((e) => e.sequence)).size).toBe(published.length);
    expect(kinds(bySequence(published))).toContain('activity-stopped:typing:expired');
    expectOutboxCleared(published, await store.get(chat, deadline()));
  });

  it('an expiry check in another container publishes the stop alone: no stale came-online or activity-started', async () => {
    const chat = newChat();
    const a = harness();
    const b = harness();
    expect(await processPresence(presence(chat, 'COMPOSING', s(0)), a.deps, deadline())).toBe('applied');
    b.clock = s(27);
    expect(await processExpiry(chat, b.deps, deadline(), s(0))).toBe('expired');
    expect(a.publishCalls.map(kinds)).toEqual([['came-online', 'activity-started:typing']]);
    expect(b.publishCalls.map(kinds)).toEqual([['activity-stopped:typing:expired']]);
  });

  it('the outbox of an idle item (past its TTL, not deleted yet) is never published: the chat is one never seen', async () => {
    const chat = newChat();
    let clock = s(0);
    const idleStore = dynamoStore(client, TABLE, { ttlSeconds: TTL_SECONDS, now: () => clock });
    // The process died between the write and PutEvents: the item keeps its outbox.
    const a = harness({ store: idleStore });
    a.clock = s(0);
    a.failPublish = 1;
    await expect(processPresence(presence(chat, 'AVAILABLE', s(0)), a.deps, deadline())).rejects.toThrow();
    const left = await idleStore.get(chat, deadline());
    expect(kinds(left?.pending ?? [])).toEqual(['came-online']);
    // 31 days later, a fresh container: an expiry check, then the chat's next callback.
    const back = (left?.expiresAt as number) + 86_400_000;
    clock = back;
    const b = harness({ store: idleStore });
    b.clock = back;
    expect(await processExpiry(chat, b.deps, deadline())).toBe('unknown-chat');
    expect(b.published).toEqual([]);
    expect(await processPresence(presence(chat, 'UNAVAILABLE', back), b.deps, deadline())).toBe('applied');
    expect(await processPresence(presence(chat, 'AVAILABLE', back + 1_000), b.deps, deadline())).toBe(
      'applied',
    );
    expect(b.publishCalls.map(kinds)).toEqual([['came-online']]);
    expect(b.published[0]).toMatchObject({ at: back + 1_000, sequence: back + 1_000 });
    expectOutboxCleared(b.published, await idleStore.get(chat, deadline()));
  });

  it('versions that start again after the item was deleted: a pending outbox of the new version is published, and a late clear of the old one leaves it', async () => {
    const chat = newChat();
    let clock = s(0);
    const clocked = dynamoStore(client, TABLE, { ttlSeconds: TTL_SECONDS, now: () => clock });
    const h = harness({ store: clocked });
    h.clock = clock;
    expect(await processPresence(presence(chat, 'AVAILABLE', s(0)), h.deps, deadline())).toBe('applied');
    const old = await store.get(chat, deadline());
    expect(old).toMatchObject({ version: 1, pending: [] });
    // What the TTL does (or an operator's DeleteItem).
    await client.send(
      new DeleteItemCommand({
        TableName: TABLE,
        Key: { instanceId: { S: chat.instanceId }, chat: { S: chat.phone } },
      }),
    );
    clock = s(31 * 86_400);
    h.clock = clock;
    const again = presence(chat, 'AVAILABLE', h.clock);
    h.failPublish = 1;
    await expect(processPresence(again, h.deps, deadline())).rejects.toThrow();
    const fresh = await store.get(chat, deadline());
    expect(fresh?.version).toBe(1);
    expect(kinds(fresh?.pending ?? [])).toEqual(['came-online']);
    // A clear meant for the old version 1 (its sequence) does not touch the new version 1.
    await store.clearPending(chat, 1, deadline(), old?.state.sequence);
    expect((await store.get(chat, deadline()))?.pending).toEqual(fresh?.pending);
    // The same container retries: it publishes the new version's outbox (it never published it).
    expect(await processPresence(again, h.deps, deadline())).toBe('duplicate');
    expect(h.publishCalls.map(kinds)).toEqual([['came-online'], ['came-online']]);
    expect(h.published[1]).toMatchObject({ at: h.clock, sequence: h.clock });
    expectOutboxCleared(h.published, await store.get(chat, deadline()));
  });

  it('a batch clears only the last outbox of a chat (its next write replaces the others), and clears beside the round’s writes when a record writes nothing', async () => {
    const calls: string[] = [];
    const h = harness();
    const deps: StateDeps = { ...h.deps, store: countingStore(calls) };
    const chat = newChat();
    const duplicate = presence(chat, 'UNAVAILABLE', s(2));
    const [result] = await processChats(
      [
        {
          key: chat,
          steps: [
            { kind: 'presence', input: presence(chat, 'AVAILABLE', s(0)) },
            { kind: 'presence', input: presence(chat, 'PAUSED', s(1)) }, // derives nothing
            { kind: 'presence', input: duplicate },
            { kind: 'presence', input: duplicate },
          ],
        },
      ],
      deps,
      deadline(),
    );
    expect(result).toEqual({ outcomes: ['applied', 'applied', 'applied', 'duplicate'] });
    // Round 1 publishes came-online, round 2's write replaces it (derives nothing: no clear); round 3
    // publishes went-offline, round 4 writes nothing: its clear.
    expect(calls).toEqual(['GetItem', 'PutItem', 'PutItem', 'PutItem', 'UpdateItem']);
    expect(h.publishCalls.map(kinds)).toEqual([['came-online'], ['went-offline']]);
    expectOutboxCleared(h.published, await store.get(chat, deadline()));
  });

  it('a clear that fails fails no record (reported): the next reader publishes the outbox again, a duplicate, never a loss', async () => {
    const chat = newChat();
    const reported: unknown[] = [];
    const a = harness({
      store: {
        ...store,
        clearPending: async () => {
          throw new Error('ProvisionedThroughputExceededException');
        },
      },
    });
    const deps: StateDeps = { ...a.deps, clearFailed: (_key, error) => reported.push(error) };
    expect(await processPresence(presence(chat, 'AVAILABLE', s(0)), deps, deadline())).toBe('applied');
    expect(reported).toEqual([new Error('ProvisionedThroughputExceededException')]);
    const b = harness();
    expect(await processPresence(presence(chat, 'UNAVAILABLE', s(1)), b.deps, deadline())).toBe('applied');
    expect(b.publishCalls.map(kinds)).toEqual([['came-online'], ['went-offline']]);
    expectOutboxCleared(b.published, await store.get(chat, deadline()));
  });
});
