/**
 * The snapshot route's answers, exactly, over a store stand-in (snapshot.test.ts runs it on dynalite):
 * every refusal's status, headers and body; where the agent's groups come from (the verified token in
 * the Authorization header, `Bearer` or not, before API Gateway's flattened claim); the cursor's edges;
 * a chat as the snapshot shows it (a member, an activity, one that expired); the limit's edges; a store
 * that fails, logged by its error's name only.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { ChatState } from '../../../functions/presence-store/presence-state.ts';
import {
  agentGroups,
  encodeCursor,
  readSnapshot,
  type SnapshotRequest,
  snapshotChat,
} from '../../../functions/presence-store/snapshot.ts';
import type { PresenceStore, StoredChat } from '../../../functions/presence-store/store.ts';
import { deadlineAt } from '../../../functions/shared/aws/deadline.ts';

const A = '3C01A2B3C4D5E6F7A8B9C0D1E2F3A4B5';
const NOW = Date.parse('2026-12-08T12:00:00.000Z');
const CLAIM = 'cognito:groups';

const jwt = (claims: Record<string, unknown>) =>
  `eyJhbGciOiJSUzI1NiJ9.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.c2lnbmF0dXJl`;

const state = (patch: Partial<ChatState> = {}): ChatState => ({
  instanceId: A,
  phone: '5511999990000',
  status: 'AVAILABLE',
  statusSince: NOW - 60_000,
  online: true,
  onlineSince: NOW - 60_000,
  eventTime: NOW - 30_000,
  lastEventId: 'e-1',
  sequence: 4,
  ...patch,
});

type Listed = Awaited<ReturnType<NonNullable<PresenceStore['list']>>>;
function storeOf(page: Listed | Error) {
  const calls: unknown[][] = [];
  return {
    calls,
    store: {
      async list(...args: unknown[]) {
        calls.push(args.slice(0, 3));
        if (page instanceof Error) throw page;
        return page;
      },
    } as Pick<PresenceStore, 'list'>,
  };
}

const request = (patch: Partial<SnapshotRequest> = {}, groups: unknown = [A]): SnapshotRequest => ({
  pathParameters: { instanceId: A },
  requestContext: { authorizer: { jwt: { claims: { [CLAIM]: groups } } } },
  ...patch,
});
const read = (req: SnapshotRequest, on: Pick<PresenceStore, 'list'>, expiryMs?: number) =>
  readSnapshot(req, on, deadlineAt(Date.now() + 5_000), {
    groupsClaim: CLAIM,
    now: () => NOW,
    headers: { 'access-control-allow-origin': 'https://agents.example.com' },
    ...(expiryMs !== undefined && { expiryMs }),
  });
const HEADERS = {
  'content-type': 'application/json',
  'cache-control': 'no-store',
  'access-control-allow-origin': 'https://agents.example.com',
};

afterEach(() => vi.restoreAllMocks());

describe('agentGroups', () => {
  it('reads the groups from the token in the Authorization header, with or without Bearer', () => {
    for (const header of [`Bearer ${jwt({ [CLAIM]: [A, 'Team X'] })}`, jwt({ [CLAIM]: [A, 'Team X'] })]) {
      expect(agentGroups({ headers: { authorization: header } }, CLAIM)).toEqual([A, 'Team X']);
      expect(agentGroups({ headers: { Authorization: header } }, CLAIM)).toEqual([A, 'Team X']);
    }
    // The token wins over API Gateway's flattened claim, which splits "Team X" in two.
    expect(
      agentGroups(
        {
          headers: { authorization: `Bearer ${jwt({ [CLAIM]: ['Team X'] })}` },
          requestContext: { authorizer: { jwt: { claims: { [CLAIM]: '[Team X]' } } } },
        },
        CLAIM,
      ),
    ).toEqual(['Team X']);
    // Only its own claim.
    expect(agentGroups({ headers: { authorization: jwt({ groups: [A] }) } }, CLAIM)).toEqual([]);
  });

  it('falls back to the authorizer’s claim when the header holds no readable token', () => {
    const flattened = { requestContext: { authorizer: { jwt: { claims: { [CLAIM]: `[${A} other]` } } } } };
    for (const headers of [
      undefined,
      {},
      { authorization: 'Bearer' },
      { authorization: 'Bearer not-a-jwt' },
      { authorization: 'Bearer a.!!!.c' },
      { authorization: `Bearer a.${Buffer.from('"just a string"').toString('base64url')}.c` },
      { authorization: `Bearer a.${Buffer.from('null').toString('base64url')}.c` },
      { authorization: `Bearer a.${Buffer.from('7').toString('base64url')}.c` },
    ]) {
      expect(
        agentGroups({ ...(headers && { headers }), ...flattened }, CLAIM),
        JSON.stringify(headers),
      ).toEqual([A, 'other']);
    }
    expect(agentGroups({}, CLAIM)).toEqual([]);
    expect(agentGroups({ requestContext: {} }, CLAIM)).toEqual([]);
    expect(agentGroups({ requestContext: { authorizer: {} } }, CLAIM)).toEqual([]);
    expect(agentGroups({ requestContext: { authorizer: { jwt: {} } } }, CLAIM)).toEqual([]);
  });
});

describe('snapshotChat', () => {
  it('shows a member, an activity with its start and last news, and ISO times', () => {
    expect(
      snapshotChat(
        state({
          phone: '120363000000000000-group',
          participant: '5511977776666',
          activity: 'typing',
          activitySince: NOW - 5_000,
          activityLastNews: NOW - 1_000,
        }),
        9,
      ),
    ).toStrictEqual({
      phone: '120363000000000000-group',
      participant: '5511977776666',
      online: true,
      activity: 'typing',
      activitySince: '2026-12-08T11:59:55.000Z',
      activityLastNews: '2026-12-08T11:59:59.000Z',
      sequence: 9,
      updatedAt: '2026-12-08T11:59:30.000Z',
    });
  });

  it('leaves out what the chat has not: no member, no activity (and an activity’s times without one)', () => {
    expect(snapshotChat(state({ activitySince: NOW, activityLastNews: NOW }), 0)).toStrictEqual({
      phone: '5511999990000',
      online: true,
      activity: null,
      sequence: 0,
      updatedAt: '2026-12-08T11:59:30.000Z',
    });
    expect(snapshotChat(state({ activity: 'recording' }), 1)).toStrictEqual({
      phone: '5511999990000',
      online: true,
      activity: 'recording',
      sequence: 1,
      updatedAt: '2026-12-08T11:59:30.000Z',
    });
  });
});

describe('readSnapshot answers', () => {
  const page: Listed = { chats: [{ state: state(), version: 1, pending: [] } as StoredChat] };

  it('200: the page, its time, the chats, no cursor on the last page; the store asked for the limit', async () => {
    const { store, calls } = storeOf(page);
    const answer = await read(request(), store);
    expect(answer).toStrictEqual({
      statusCode: 200,
      headers: HEADERS,
      body: JSON.stringify({
        instanceId: A,
        at: '2026-12-08T12:00:00.000Z',
        chats: [snapshotChat(state(), 4)],
      }),
    });
    expect(calls).toEqual([[A, 500, undefined]]);
  });

  it('a cursor to the next page, bound to the instance; one given back starts after its chat', async () => {
    const { store, calls } = storeOf({ chats: [], next: '5511999990000' });
    const answer = await read(request({ queryStringParameters: { limit: '1000' } }), store);
    const body = JSON.parse(String(answer.body));
    expect(body.nextCursor).toBe(encodeCursor(A, '5511999990000'));
    expect(JSON.parse(Buffer.from(body.nextCursor, 'base64url').toString('utf8'))).toEqual({
      i: A,
      c: '5511999990000',
    });
    await read(request({ queryStringParameters: { cursor: body.nextCursor, limit: '1' } }), store);
    expect(calls).toEqual([
      [A, 1000, undefined],
      [A, 1, '5511999990000'],
    ]);
  });

  it('an activity past its window is shown ended, with the item’s own sequence', async () => {
    const typing = state({ activity: 'typing', activitySince: NOW - 40_000, activityLastNews: NOW - 30_000 });
    const { store } = storeOf({ chats: [{ state: typing, version: 2, pending: [] } as StoredChat] });
    const ended = JSON.parse(String((await read(request(), store, 10_000)).body)).chats[0];
    expect(ended.activity).toBeNull();
    expect(ended.sequence).toBe(4);
    // With the default window (25 s) a news 20 s old still shows typing.
    const recent = state({ activity: 'typing', activitySince: NOW - 40_000, activityLastNews: NOW - 20_000 });
    const { store: s2 } = storeOf({ chats: [{ state: recent, version: 2, pending: [] } as StoredChat] });
    expect(JSON.parse(String((await read(request(), s2)).body)).chats[0].activity).toBe('typing');
  });

  const refusals: Array<[string, SnapshotRequest, number, unknown]> = [
    [
      'no instance in the path',
      request({ pathParameters: {} }),
      400,
      { ok: false, error: 'invalid-instance', message: 'the URL does not name a Z-API instance' },
    ],
    [
      'no path parameters at all',
      request({ pathParameters: undefined }),
      400,
      { ok: false, error: 'invalid-instance', message: 'the URL does not name a Z-API instance' },
    ],
    [
      'another instance',
      request({}, ['9F8E7D6C5B4A39281706F5E4D3C2B1A0']),
      403,
      {
        ok: false,
        error: 'forbidden-instance',
        message: "your token's cognito:groups does not include this instance or zapi-presence-all",
      },
    ],
    ...['0', '1001', '1.5', 'ten', '', '-1'].map((limit): [string, SnapshotRequest, number, unknown] => [
      `limit ${JSON.stringify(limit)}`,
      request({ queryStringParameters: { limit } }),
      400,
      { ok: false, error: 'invalid-limit', message: 'limit must be a whole number from 1 to 1000' },
    ]),
    ...[
      '',
      'x'.repeat(1_025),
      'abc=',
      'a b',
      encodeCursor('9F8E7D6C5B4A39281706F5E4D3C2B1A0', '5511'),
      encodeCursor(A, ''),
      Buffer.from(JSON.stringify({ i: A, c: 7 })).toString('base64url'),
      Buffer.from('not json').toString('base64url'),
      `${encodeCursor(A, '5511')}!`,
      `!${encodeCursor(A, '5511')}`,
    ].map((cursor): [string, SnapshotRequest, number, unknown] => [
      `cursor ${JSON.stringify(cursor.slice(0, 20))}`,
      request({ queryStringParameters: { cursor } }),
      400,
      {
        ok: false,
        error: 'invalid-cursor',
        message: 'cursor is not one this route gave for this instance',
      },
    ]),
  ];
  it.each(refusals)('refuses %s', async (_what, req, status, body) => {
    const { store, calls } = storeOf(page);
    expect(await read(req, store)).toStrictEqual({
      statusCode: status,
      headers: HEADERS,
      body: JSON.stringify(body),
    });
    expect(calls).toEqual([]);
  });

  it('takes a cursor of exactly 1,024 characters as a cursor, and the limit 1 and 1,000', async () => {
    const long = encodeCursor(A, 'c'.repeat(721));
    expect(long).toHaveLength(1_024);
    const { store, calls } = storeOf(page);
    for (const query of [{ cursor: long }, { limit: '1' }, { limit: '1000' }]) {
      expect((await read(request({ queryStringParameters: query }), store)).statusCode).toBe(200);
    }
    expect(calls).toEqual([
      [A, 500, 'c'.repeat(721)],
      [A, 1, undefined],
      [A, 1000, undefined],
    ]);
  });

  it('503 when the table fails, logging the error’s name only', async () => {
    const logged = vi.spyOn(console, 'error').mockImplementation(() => {});
    const failure = Object.assign(new Error('secret detail arn:aws:dynamodb:...'), {
      name: 'ProvisionedThroughputExceededException',
    });
    const { store } = storeOf(failure);
    expect(await read(request(), store)).toStrictEqual({
      statusCode: 503,
      headers: HEADERS,
      body: JSON.stringify({
        ok: false,
        error: 'store-unavailable',
        message: 'the presence table cannot be read right now; retry',
      }),
    });
    expect(logged).toHaveBeenCalledWith({
      msg: 'presence snapshot failed',
      instanceId: A,
      error: 'ProvisionedThroughputExceededException',
    });
  });

  it('a store that cannot list is a bug, said so', async () => {
    await expect(read(request(), {})).rejects.toThrow('this presence store cannot list an instance');
  });
});
