/**
 * The live feed's snapshot route (functions/presence-store/snapshot.ts) on dynalite: the per-instance rule
 * (the same as the feed's), pages over an instance of 1,000 chats that hold every chat once and nothing of
 * another instance, cursors bound to their instance, an activity past its window shown ended with the
 * item's own sequence, idle chats left out, and a table that fails answered 503 without its error.
 */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { ChatState } from '../../../functions/presence-store/presence-state.ts';
import {
  encodeCursor,
  readSnapshot,
  type SnapshotRequest,
} from '../../../functions/presence-store/snapshot.ts';
import { dynamoStore, type PresenceStore } from '../../../functions/presence-store/store.ts';
import { type Deadline, deadlineAt } from '../../../functions/shared/aws/deadline.ts';
import type { Snapshot } from '../../../functions/shared/contract/live-feed-contract.ts';
import { CANARY_INSTANCE_ID } from '../../../functions/shared/contract/presence-contract.ts';
import { type DynaliteTable, startPresenceTable } from '../../support/presence-table.ts';

const A = '3C01A2B3C4D5E6F7A8B9C0D1E2F3A4B5';
const B = '9F8E7D6C5B4A39281706F5E4D3C2B1A0';
const TABLE = 'snapshot';
const NOW = Date.parse('2026-12-07T12:00:00.000Z');
const deadline = (): Deadline => deadlineAt(Date.now() + 15_000);

let table: DynaliteTable;
let client: DynamoDBClient;
let store: PresenceStore;

const state = (instanceId: string, phone: string, patch: Partial<ChatState> = {}): ChatState => ({
  instanceId,
  phone,
  status: 'AVAILABLE',
  statusSince: NOW - 60_000,
  online: true,
  onlineSince: NOW - 60_000,
  eventTime: NOW - 60_000,
  lastEventId: `e-${phone}`,
  sequence: 3,
  ...patch,
});

const request = (
  instanceId: string,
  claim: unknown,
  query: Record<string, string> = {},
): SnapshotRequest => ({
  pathParameters: { instanceId },
  queryStringParameters: query,
  requestContext: { authorizer: { jwt: { claims: { sub: 'agent', 'cognito:groups': claim } } } },
});
const read = (req: SnapshotRequest, on: Pick<PresenceStore, 'list'> = store) =>
  readSnapshot(req, on, deadline(), { groupsClaim: 'cognito:groups', now: () => NOW });
const body = (result: { body?: string }) => JSON.parse(String(result.body)) as Snapshot & { error?: string };

beforeAll(async () => {
  table = await startPresenceTable(TABLE);
  client = table.client;
  store = dynamoStore(client, TABLE, { ttlSeconds: 86_400, now: () => NOW });
  // Instance A: 1,000 chats (one typing, one a group member); instance B: 5 chats.
  const writes: Promise<boolean>[] = [];
  for (let i = 0; i < 1_000; i += 1) {
    const phone = `55119${String(i).padStart(8, '0')}`;
    writes.push(store.put(state(A, phone, { sequence: i + 1 }), [], undefined, deadline()));
  }
  for (let i = 0; i < 5; i += 1) writes.push(store.put(state(B, `55219${i}`), [], undefined, deadline()));
  await Promise.all(writes);
}, 120_000);

afterAll(() => table?.close());

describe('GET /instances/{instanceId}/presence', () => {
  it('pages through 1,000 chats: each once, in order, none of another instance', async () => {
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const result = await read(request(A, [A], { limit: '300', ...(cursor !== undefined && { cursor }) }));
      expect(result.statusCode).toBe(200);
      const page = body(result);
      expect(page.instanceId).toBe(A);
      expect(page.at).toBe(new Date(NOW).toISOString());
      seen.push(...page.chats.map((c) => c.phone));
      cursor = page.nextCursor;
      pages += 1;
    } while (cursor !== undefined && pages < 10);
    expect(seen).toHaveLength(1_000);
    expect(new Set(seen).size).toBe(1_000);
    expect(seen).toEqual([...seen].sort());
    expect(seen.every((phone) => phone.startsWith('55119'))).toBe(true);
    expect(pages).toBeLessThanOrEqual(5);
  });

  it('answers each chat with its presence and the sequence of its last derived event', async () => {
    const page = body(await read(request(B, [B])));
    expect(page.chats).toHaveLength(5);
    expect(page.chats[0]).toEqual({
      phone: '552190',
      online: true,
      activity: null,
      sequence: 3,
      updatedAt: new Date(NOW - 60_000).toISOString(),
    });
    expect(page.nextCursor).toBeUndefined();
  });

  it('shows an activity past its window as ended, with the item’s own sequence (the stop on the feed is above it)', async () => {
    const C = 'C0FFEE00C0FFEE00C0FFEE00C0FFEE00';
    await store.put(
      state(C, 'typing-now', {
        status: 'COMPOSING',
        activity: 'typing',
        activitySince: NOW - 5_000,
        activityLastNews: NOW - 2_000,
        sequence: 8,
      }),
      [],
      undefined,
      deadline(),
    );
    await store.put(
      state(C, 'typing-long-ago', {
        status: 'COMPOSING',
        activity: 'typing',
        activitySince: NOW - 90_000,
        activityLastNews: NOW - 60_000,
        sequence: 4,
      }),
      [],
      undefined,
      deadline(),
    );
    const chats = body(await read(request(C, ['zapi-presence-all']))).chats;
    expect(chats).toEqual([
      expect.objectContaining({ phone: 'typing-long-ago', activity: null, sequence: 4 }),
      expect.objectContaining({
        phone: 'typing-now',
        activity: 'typing',
        activitySince: new Date(NOW - 5_000).toISOString(),
        activityLastNews: new Date(NOW - 2_000).toISOString(),
        sequence: 8,
      }),
    ]);
    expect(chats[0]).not.toHaveProperty('activityLastNews');
  });

  it('leaves out a chat idle past the TTL (DynamoDB deletes it late)', async () => {
    const D = 'D0D0D0D0D0D0D0D0D0D0D0D0D0D0D0D0';
    const old = dynamoStore(client, TABLE, { ttlSeconds: 60, now: () => NOW - 120_000 });
    await old.put(state(D, 'gone'), [], undefined, deadline());
    await store.put(state(D, 'here'), [], undefined, deadline());
    expect(body(await read(request(D, [D]))).chats.map((c) => c.phone)).toEqual(['here']);
  });

  it.each([
    ['another instance', [B]],
    ['no groups', undefined],
    ['an empty list', []],
    ['a group that only starts like it', [`${A}0`]],
  ])('refuses a token with %s: 403, whether the instance has chats or not', async (_what, claim) => {
    const result = await read(request(A, claim));
    expect(result.statusCode).toBe(403);
    expect(body(result)).toMatchObject({ ok: false, error: 'forbidden-instance' });
    expect(String(result.body)).not.toContain('55119');
  });

  it('reads the groups as API Gateway flattens them ("[a b]") and as a JSON array in a string', async () => {
    for (const claim of [`[other ${A}]`, `["other","${A}"]`, A]) {
      expect((await read(request(A, claim, { limit: '1' }))).statusCode, claim).toBe(200);
    }
  });

  it('never serves the canary instance', async () => {
    expect(
      (await read(request(CANARY_INSTANCE_ID, ['zapi-presence-all', CANARY_INSTANCE_ID]))).statusCode,
    ).toBe(403);
  });

  it.each([
    [{ limit: '0' }, 'invalid-limit'],
    [{ limit: '1001' }, 'invalid-limit'],
    [{ limit: '2.5' }, 'invalid-limit'],
    [{ cursor: 'not base64!' }, 'invalid-cursor'],
    [{ cursor: Buffer.from('{"c":1}').toString('base64url') }, 'invalid-cursor'],
    [{ cursor: encodeCursor(B, '552190') }, 'invalid-cursor'],
    [{ cursor: 'x'.repeat(2_000) }, 'invalid-cursor'],
  ])('refuses %j with a 400 naming it', async (query, error) => {
    const result = await read(request(A, [A], query));
    expect(result.statusCode).toBe(400);
    expect(body(result).error).toBe(error);
  });

  it('refuses an id that is not an instance', async () => {
    for (const id of ['a.b', 'A'.repeat(65), '']) {
      expect((await read(request(id, ['zapi-presence-all']))).statusCode).toBe(400);
    }
  });

  it('answers 503, without the error, when the table cannot be read', async () => {
    const errors = vi.spyOn(console, 'error').mockImplementation(() => {});
    const failing: Pick<PresenceStore, 'list'> = {
      list: async () => {
        throw Object.assign(
          new Error('arn:aws:dynamodb:sa-east-1:123456789012:table/secret-name is throttled'),
          {
            name: 'ProvisionedThroughputExceededException',
          },
        );
      },
    };
    const result = await read(request(A, [A]), failing);
    expect(result.statusCode).toBe(503);
    expect(String(result.body)).not.toContain('secret-name');
    expect(JSON.stringify(errors.mock.calls)).not.toContain('secret-name');
  });
});

describe('the agent’s groups, as the snapshot reads them', () => {
  const token = (claims: Record<string, unknown>) =>
    `e30.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.sig`;
  const withToken = (instanceId: string, groups: unknown) => ({
    headers: { authorization: `Bearer ${token({ 'cognito:groups': groups })}` },
    pathParameters: { instanceId },
    // What API Gateway's authorizer passes along: the same claim, flattened.
    requestContext: {
      authorizer: {
        jwt: { claims: { 'cognito:groups': Array.isArray(groups) ? `[${groups.join(' ')}]` : groups } },
      },
    },
  });

  it('reads the token’s own array, as AppSync does: a group with a space or a comma is one group', async () => {
    expect((await read(withToken(A, ['Team X']))).statusCode).toBe(403);
    expect((await read(withToken(A, [`Team ${A}`]))).statusCode).toBe(403);
    expect((await read(withToken(A, ['zapi-presence-all,x']))).statusCode).toBe(403);
    expect((await read(withToken(A, ['other', A]))).statusCode).toBe(200);
  });

  it('falls back to the authorizer’s claims when the header holds no readable token', async () => {
    const request = { ...withToken(A, [A]), headers: { authorization: 'not-a-jwt' } };
    expect((await read(request)).statusCode).toBe(200);
  });
});
