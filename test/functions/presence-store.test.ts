/**
 * The presence table (functions/shared/presence-store.ts) against a real DynamoDB emulator (dynalite on
 * 127.0.0.1), and the state subscriber's core (functions/presence-state/process.ts) end to end on it with
 * fake publish and scheduleExpiry: ordering, duplicates, expiry, the outbox and concurrent writers.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  CreateTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  GetItemCommand,
} from '@aws-sdk/client-dynamodb';
import dynalite from 'dynalite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { processExpiry, processPresence, type StateDeps } from '../../functions/presence-state/process.ts';
import { type Deadline, deadlineAt } from '../../functions/shared/deadline.ts';
import type { PresenceStatus } from '../../functions/shared/presence-contract.ts';
import {
  applyPresence,
  type ChatState,
  type DerivedEvent,
  type PresenceInput,
} from '../../functions/shared/presence-state.ts';
import {
  dynamoStore,
  type PresenceStore,
  type StoredChat,
  TABLE_ATTRIBUTES,
} from '../../functions/shared/presence-store.ts';

const TABLE = 'presence';
const T0 = Date.parse('2025-03-01T12:00:00Z');
const s = (seconds: number) => T0 + seconds * 1_000;
const TTL_SECONDS = 30 * 86_400;

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
  store = dynamoStore(client, TABLE, { ttlSeconds: TTL_SECONDS });
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

const rawItem = async (instanceId: string, phone: string) =>
  (
    await client.send(
      new GetItemCommand({
        TableName: TABLE,
        Key: { instanceId: { S: instanceId }, phone: { S: phone } },
        ConsistentRead: true,
      }),
    )
  ).Item;

function fullState(chat: { instanceId: string; phone: string }): ChatState {
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
  };
}

/** `recentEventIds` is stored as a string set, which DynamoDB need not return in order: sorted. */
function sortIds<T extends StoredChat | undefined>(chat: T): T {
  if (chat?.state.recentEventIds === undefined) return chat;
  return { ...chat, state: { ...chat.state, recentEventIds: [...chat.state.recentEventIds].sort() } };
}

describe('dynamoStore', () => {
  it('round-trips every ChatState field, and the pending derived events', async () => {
    const chat = newChat();
    const state = fullState(chat);
    const pending: DerivedEvent[] = [
      { ...chat, kind: 'activity-started', activity: 'typing', at: s(1) },
      { ...chat, kind: 'went-offline', onlineSince: s(0), at: s(2), durationMs: 2_000 },
    ];
    expect(await store.put(state, pending, undefined, deadline())).toBe(true);
    expect(sortIds(await store.get(chat.instanceId, chat.phone, deadline()))).toStrictEqual({
      state,
      version: 1,
      pending,
    });
  });

  it('recentEventIds: a string set (each id once); an empty list is no attribute', async () => {
    const chat = newChat();
    const state = { ...fullState(chat), recentEventIds: ['event-4', 'event-2', 'event-4', 'event-3'] };
    expect(await store.put(state, [], undefined, deadline())).toBe(true);
    const item = await rawItem(chat.instanceId, chat.phone);
    expect(Object.keys(item?.recentEventIds ?? {})).toEqual(['SS']);
    expect([...(item?.recentEventIds?.SS ?? [])].sort()).toEqual(['event-2', 'event-3', 'event-4']);
    expect(sortIds(await store.get(chat.instanceId, chat.phone, deadline()))?.state).toStrictEqual({
      ...state,
      recentEventIds: ['event-2', 'event-3', 'event-4'],
    });

    const none = { ...state, recentEventIds: [], lastEventId: 'event-5' };
    expect(await store.put(none, [], 1, deadline())).toBe(true);
    expect((await rawItem(chat.instanceId, chat.phone))?.recentEventIds).toBeUndefined();
    const { recentEventIds: _r, ...withoutIds } = none;
    expect((await store.get(chat.instanceId, chat.phone, deadline()))?.state).toStrictEqual(withoutIds);
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
    };
    expect(await store.put(base, [], undefined, deadline())).toBe(true);
    const absent = await store.get(chat.instanceId, chat.phone, deadline());
    expect(absent).toStrictEqual({ state: base, version: 1, pending: [] });
    expect(absent && 'lastSeen' in absent.state).toBe(false);
    expect(absent && 'activity' in absent.state).toBe(false);
    expect(absent && 'activitySince' in absent.state).toBe(false);
    expect(absent && 'onlineSince' in absent.state).toBe(false);
    const item = await rawItem(chat.instanceId, chat.phone);
    expect(item && Object.keys(item).sort()).toEqual(
      [
        'instanceId',
        'phone',
        'status',
        'statusSince',
        'online',
        'offlineSince',
        'eventTime',
        'lastEventId',
        'updatedAt',
        'version',
        'expiresAt',
      ].sort(),
    );

    const withNull = { ...base, lastSeen: null, lastEventId: 'e1' };
    expect(await store.put(withNull, [], 1, deadline())).toBe(true);
    expect((await store.get(chat.instanceId, chat.phone, deadline()))?.state).toStrictEqual(withNull);
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
      expect((await store.get(chat.instanceId, chat.phone, deadline()))?.state).toStrictEqual(withNumber);
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
        (await store.get(chat.instanceId, chat.phone, deadline()))?.state,
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
    expect(await store.get(chat.instanceId, chat.phone, deadline())).toBeUndefined();

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
    expect(sortIds(await store.get(chat.instanceId, chat.phone, deadline()))).toStrictEqual({
      state: second,
      version: 2,
      pending: [],
    });
  });

  it('clearPending removes the pending events of exactly that version', async () => {
    const chat = newChat();
    const state = fullState(chat);
    const pending: DerivedEvent[] = [{ ...chat, kind: 'came-online', at: s(0) }];
    await store.put(state, pending, undefined, deadline());
    await store.clearPending(chat.instanceId, chat.phone, 2, deadline()); // not this version
    expect((await store.get(chat.instanceId, chat.phone, deadline()))?.pending).toEqual(pending);

    const newer: DerivedEvent[] = [{ ...chat, kind: 'activity-started', activity: 'typing', at: s(1) }];
    await store.put(state, newer, 1, deadline());
    await store.clearPending(chat.instanceId, chat.phone, 1, deadline()); // an older version: kept
    expect((await store.get(chat.instanceId, chat.phone, deadline()))?.pending).toEqual(newer);

    const before = await rawItem(chat.instanceId, chat.phone);
    await store.clearPending(chat.instanceId, chat.phone, 2, deadline());
    const after = await rawItem(chat.instanceId, chat.phone);
    expect(after?.pending).toBeUndefined();
    const { pending: _p, ...rest } = before ?? {};
    expect(after).toEqual(rest);
    expect(sortIds(await store.get(chat.instanceId, chat.phone, deadline()))).toStrictEqual({
      state,
      version: 2,
      pending: [],
    });
  });

  it('clearPending of a chat never seen does nothing (creates no item)', async () => {
    const chat = newChat();
    await expect(store.clearPending(chat.instanceId, chat.phone, 1, deadline())).resolves.toBeUndefined();
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
  });

  it('rethrows errors other than a condition failure', async () => {
    const other = dynamoStore(client, 'no-such-table', { ttlSeconds: 60 });
    const chat = newChat();
    await expect(other.put(fullState(chat), [], undefined, deadline())).rejects.toMatchObject({
      name: 'ResourceNotFoundException',
    });
    await expect(other.clearPending(chat.instanceId, chat.phone, 1, deadline())).rejects.toMatchObject({
      name: 'ResourceNotFoundException',
    });
  });
});

// --- processPresence / processExpiry end to end ---------------------------------------------------

interface Harness {
  readonly deps: StateDeps;
  readonly published: DerivedEvent[];
  readonly publishCalls: DerivedEvent[][];
  readonly scheduled: Array<{ instanceId: string; phone: string; delaySeconds: number }>;
  /** Derived events of every successful put (what the outbox committed to publish). */
  readonly committed: DerivedEvent[];
  clock: number;
  failPublish: number;
  failSchedule: number;
  /** Puts refused because another writer got there first. */
  conflicts: number;
}

function harness(options: { store?: PresenceStore; expiryMs?: number } = {}): Harness {
  const h: Harness = {
    published: [],
    publishCalls: [],
    scheduled: [],
    committed: [],
    clock: T0,
    failPublish: 0,
    failSchedule: 0,
    conflicts: 0,
    deps: undefined as unknown as StateDeps,
  };
  const inner = options.store ?? store;
  const recording: PresenceStore = {
    get: (...args) => inner.get(...args),
    clearPending: (...args) => inner.clearPending(...args),
    async put(state, pending, expected, d) {
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
    },
    async scheduleExpiry(instanceId, phone, delaySeconds) {
      if (h.failSchedule > 0) {
        h.failSchedule -= 1;
        throw new Error('SQS down');
      }
      h.scheduled.push({ instanceId, phone, delaySeconds });
    },
  };
  return h;
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
    const stored = await store.get(chat.instanceId, chat.phone, deadline());
    expect(stored).toMatchObject({
      version: 4,
      pending: [],
      state: { status: 'UNAVAILABLE', online: false },
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
    const stored = await store.get(chat.instanceId, chat.phone, deadline());
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
    const before = await store.get(chat.instanceId, chat.phone, deadline());
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
    expect(await store.get(chat.instanceId, chat.phone, deadline())).toEqual(before);
    expect(kinds(h.published)).toEqual([
      'came-online',
      'activity-started:typing',
      'activity-stopped:typing:paused',
    ]);
  });

  it('an activity with no news expires after 25 s (the injected now), once', async () => {
    const chat = newChat();
    const h = harness();
    await processPresence(presence(chat, 'COMPOSING', s(0)), h.deps, deadline());
    h.clock = s(0) + 24_999;
    expect(await processExpiry(chat.instanceId, chat.phone, h.deps, deadline())).toBe('nothing-to-expire');
    h.clock = s(0) + 25_000;
    expect(await processExpiry(chat.instanceId, chat.phone, h.deps, deadline())).toBe('expired');
    expect(h.published.slice(2)).toEqual([
      {
        ...chat,
        kind: 'activity-stopped',
        activity: 'typing',
        reason: 'expired',
        startedAt: s(0),
        at: s(0),
        durationMs: 0,
      },
    ]);
    const stored = await store.get(chat.instanceId, chat.phone, deadline());
    expect(stored?.pending).toEqual([]);
    expect(stored?.state.activity).toBeUndefined();
    h.clock = s(0) + 90_000;
    expect(await processExpiry(chat.instanceId, chat.phone, h.deps, deadline())).toBe('nothing-to-expire');
    expect(h.published).toHaveLength(3);
    expect(h.scheduled).toHaveLength(1);
  });

  it('an expiry check of a chat never seen: unknown-chat', async () => {
    const chat = newChat();
    const h = harness();
    expect(await processExpiry(chat.instanceId, chat.phone, h.deps, deadline())).toBe('unknown-chat');
    expect(h.published).toEqual([]);
  });

  it('a refreshed COMPOSING postpones the expiry: the early check does nothing', async () => {
    const chat = newChat();
    const h = harness();
    await processPresence(presence(chat, 'COMPOSING', s(0)), h.deps, deadline());
    await processPresence(presence(chat, 'COMPOSING', s(10)), h.deps, deadline());
    // The first check arrives (scheduled at +27 s from the first COMPOSING).
    h.clock = s(27);
    expect(await processExpiry(chat.instanceId, chat.phone, h.deps, deadline())).toBe('nothing-to-expire');
    expect(h.published).toHaveLength(2);
    // The second one.
    h.clock = s(37);
    expect(await processExpiry(chat.instanceId, chat.phone, h.deps, deadline())).toBe('expired');
    expect(h.published[2]).toMatchObject({
      kind: 'activity-stopped',
      reason: 'expired',
      startedAt: s(0),
      at: s(10),
      durationMs: 10_000,
    });
  });

  it('outbox: publish fails once → state written with pending; the retry publishes them once and clears', async () => {
    const chat = newChat();
    const h = harness();
    const e1 = presence(chat, 'COMPOSING', s(0));
    h.failPublish = 1;
    await expect(processPresence(e1, h.deps, deadline())).rejects.toThrow('not accepted');
    const written = await store.get(chat.instanceId, chat.phone, deadline());
    expect(written?.state).toMatchObject({ status: 'COMPOSING', activity: 'typing', lastEventId: e1.id });
    expect(kinds(written?.pending ?? [])).toEqual(['came-online', 'activity-started:typing']);
    expect(h.published).toEqual([]);

    // SQS redelivers the same message.
    expect(await processPresence(e1, h.deps, deadline())).toBe('duplicate');
    expect(h.published).toEqual(written?.pending);
    expect(h.publishCalls).toHaveLength(1);
    expect((await store.get(chat.instanceId, chat.phone, deadline()))?.pending).toEqual([]);

    // And again: nothing more.
    expect(await processPresence(e1, h.deps, deadline())).toBe('duplicate');
    expect(h.publishCalls).toHaveLength(1);
  });

  it('outbox: the chat’s next event carries the earlier pending events and publishes them, first', async () => {
    const chat = newChat();
    const h = harness();
    h.failPublish = 1;
    await expect(processPresence(presence(chat, 'AVAILABLE', s(0)), h.deps, deadline())).rejects.toThrow();
    expect(kinds((await store.get(chat.instanceId, chat.phone, deadline()))?.pending ?? [])).toEqual([
      'came-online',
    ]);
    expect(await processPresence(presence(chat, 'RECORDING', s(3)), h.deps, deadline())).toBe('applied');
    expect(kinds(h.published)).toEqual(['came-online', 'activity-started:recording']);
    expect((await store.get(chat.instanceId, chat.phone, deadline()))?.pending).toEqual([]);
  });

  it('outbox: publish failing on consecutive events: the pending events accumulate, in order, until one succeeds', async () => {
    const chat = newChat();
    const h = harness();
    h.failPublish = 2;
    await expect(processPresence(presence(chat, 'AVAILABLE', s(0)), h.deps, deadline())).rejects.toThrow();
    await expect(processPresence(presence(chat, 'COMPOSING', s(1)), h.deps, deadline())).rejects.toThrow();
    const written = await store.get(chat.instanceId, chat.phone, deadline());
    expect(kinds(written?.pending ?? [])).toEqual(['came-online', 'activity-started:typing']);
    expect(h.published).toEqual([]);
    expect(await processPresence(presence(chat, 'PAUSED', s(2)), h.deps, deadline())).toBe('applied');
    expect(kinds(h.published)).toEqual([
      'came-online',
      'activity-started:typing',
      'activity-stopped:typing:paused',
    ]);
    expect(await store.get(chat.instanceId, chat.phone, deadline())).toMatchObject({
      version: 3,
      pending: [],
      state: { status: 'PAUSED' },
    });
  });

  it('outbox: an expiry carries the pending events of a failed publish and publishes them, first', async () => {
    const chat = newChat();
    const h = harness();
    h.failPublish = 1;
    await expect(processPresence(presence(chat, 'RECORDING', s(0)), h.deps, deadline())).rejects.toThrow();
    h.clock = s(30);
    expect(await processExpiry(chat.instanceId, chat.phone, h.deps, deadline())).toBe('expired');
    expect(kinds(h.published)).toEqual([
      'came-online',
      'activity-started:recording',
      'activity-stopped:recording:expired',
    ]);
    const stored = await store.get(chat.instanceId, chat.phone, deadline());
    expect(stored?.pending).toEqual([]);
    expect(stored?.state.activity).toBeUndefined();
  });

  it('outbox: an expiry whose publish fails is published by the retried check, once', async () => {
    const chat = newChat();
    const h = harness();
    await processPresence(presence(chat, 'RECORDING', s(0)), h.deps, deadline());
    h.clock = s(30);
    h.failPublish = 1;
    await expect(processExpiry(chat.instanceId, chat.phone, h.deps, deadline())).rejects.toThrow();
    const written = await store.get(chat.instanceId, chat.phone, deadline());
    expect(written?.state.activity).toBeUndefined();
    expect(kinds(written?.pending ?? [])).toEqual(['activity-stopped:recording:expired']);
    expect(await processExpiry(chat.instanceId, chat.phone, h.deps, deadline())).toBe('nothing-to-expire');
    expect(kinds(h.published)).toEqual([
      'came-online',
      'activity-started:recording',
      'activity-stopped:recording:expired',
    ]);
    expect((await store.get(chat.instanceId, chat.phone, deadline()))?.pending).toEqual([]);
  });

  it('schedules the expiry check first: when it fails nothing is written', async () => {
    const chat = newChat();
    const h = harness();
    h.failSchedule = 1;
    const e1 = presence(chat, 'COMPOSING', s(0));
    await expect(processPresence(e1, h.deps, deadline())).rejects.toThrow('SQS down');
    expect(await store.get(chat.instanceId, chat.phone, deadline())).toBeUndefined();
    expect(await processPresence(e1, h.deps, deadline())).toBe('applied');
    expect(h.scheduled).toHaveLength(1);
  });

  it('scheduleExpiry: Math.ceil(expiryMs / 1000) + 2 seconds when an activity starts or refreshes, not otherwise', async () => {
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
        await processPresence(presence(chat, status, at), h.deps, deadline());
        expect(h.scheduled.length - before, `${status} at ${at - T0}`).toBe(schedules ? 1 : 0);
      }
      // Older and duplicate deliveries, and expiry checks, schedule nothing.
      const before = h.scheduled.length;
      await processPresence(presence(chat, 'COMPOSING', s(1)), h.deps, deadline());
      h.clock = s(100);
      await processExpiry(chat.instanceId, chat.phone, h.deps, deadline());
      expect(h.scheduled.length).toBe(before);
      expect(h.scheduled.every((call) => call.delaySeconds === delaySeconds)).toBe(true);
      expect(
        h.scheduled.every((call) => call.instanceId === chat.instanceId && call.phone === chat.phone),
      ).toBe(true);
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
      async get(instanceId, phone, d) {
        const result = await store.get(instanceId, phone, d);
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
      const stored = await store.get(chat.instanceId, chat.phone, deadline());
      expect(stored?.state).toMatchObject({ status: 'COMPOSING', lastEventId: newer.id, activity: 'typing' });
      expect(stored?.pending).toEqual([]);
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
      const stored = await store.get(chat.instanceId, chat.phone, deadline());
      expect(stored?.state.lastEventId).toBe(events[1]?.id);
      expect(stored?.pending).toEqual([]);
      for (const event of h.committed) expect(h.published).toContainEqual(event);
    }
  });

  it('a concurrent writer holding a publish: the other writer carries its pending events along and publishes them', async () => {
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
      if ((await store.get(chat.instanceId, chat.phone, deadline())) !== undefined) break;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    expect(await processPresence(e2, b.deps, deadline())).toBe('applied');
    expect(kinds(b.published)).toEqual(['came-online', 'went-offline']);
    releaseA();
    expect(await first).toBe('applied');
    // At least once: A publishes its own events too, late.
    for (const event of a.committed) expect(a.published).toContainEqual(event);
    const stored = await store.get(chat.instanceId, chat.phone, deadline());
    // A's late clear of its own version must not remove anything of B's version.
    expect(stored).toMatchObject({ version: 2, pending: [], state: { status: 'UNAVAILABLE' } });
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
    expect((await store.get(chat.instanceId, chat.phone, deadline()))?.state).toMatchObject({
      status: 'AVAILABLE',
      lastSeen: null,
    });
    expect((await rawItem(chat.instanceId, chat.phone))?.lastSeen).toEqual({ NULL: true });
  });

  // A writer that read a version and then lost the race to a concurrent writer whose publish failed must
  // carry that writer's pending events along, not overwrite them: otherwise the subscribers would get
  // "typing stopped" but never "typing started".
  it('pending events of a concurrent writer whose publish failed are carried along, not overwritten', async () => {
    const chat = newChat();
    const e1 = presence(chat, 'AVAILABLE', s(0));
    const e3 = presence(chat, 'COMPOSING', s(1));
    const e2 = presence(chat, 'PAUSED', s(2));
    // W1 commits e1 and fails to publish: v1 holds pending [came-online].
    const w1 = harness();
    w1.failPublish = 1;
    await expect(processPresence(e1, w1.deps, deadline())).rejects.toThrow();
    // W2 (e2) reads v1; before it writes, W3 (e3) commits v2 (carrying v1's pending) and fails to publish.
    const w3 = harness();
    w3.failPublish = 1;
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
    expect(kinds(w3.committed)).toEqual(['came-online', 'activity-started:typing']);
    // W2's write holds everything still pending, then its own events; all of it published, in order.
    expect(kinds(w2.published)).toEqual([
      'came-online',
      'activity-started:typing',
      'activity-stopped:typing:paused',
    ]);
    expect(await store.get(chat.instanceId, chat.phone, deadline())).toMatchObject({
      version: 3,
      pending: [],
      state: { status: 'PAUSED', lastEventId: e2.id },
    });
    // SQS redelivers e3 (its publish failed): older now, nothing left to publish.
    expect(await processPresence(e3, w3.deps, deadline())).toBe('older');
    const published = [...w1.published, ...w2.published, ...w3.published];
    for (const event of [...w1.committed, ...w2.committed, ...w3.committed])
      expect(published).toContainEqual(event);
  });
});
