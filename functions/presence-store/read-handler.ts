/**
 * The presence store's two read routes on the webhook's HTTP API:
 * - `GET /instances/{instanceId}/presence` (JWT-authorized, with the live feed): the instance's snapshot
 *   for an agent's view (./snapshot.ts);
 * - `GET /instances/{instanceId}/chats/{phone}/presence` (IAM-authorized, for servers): a
 * chat's current presence from the presence table, as JSON; 404 for a chat never seen (or idle past
 * the horizon). For a group chat (`...-group`), every participant seen, or one with `?participant=`.
 * An activity whose expiry window has passed is shown ended, even if its expiry check is still on the
 * way.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { invocationDeadline } from '../shared/aws/deadline.ts';
import { errorName } from '../shared/aws/error-name.ts';
import { INSTANCE_ID_PATTERN } from '../shared/contract/presence-contract.ts';
import {
  type ChatState,
  DEFAULT_EXPIRY_MS,
  expireActivity,
  MAX_CHAT_ID_LENGTH as MAX_ID_LENGTH,
  stateView,
} from './presence-state.ts';
import { SNAPSHOT_ROUTE_KEY, STATE_ENV } from './settings.ts';
import { readSnapshot, type SnapshotRequest } from './snapshot.ts';
import { dynamoStore, isIdle, type PresenceStore, type StoredChat } from './store.ts';

/** WhatsApp groups have at most 1,024 members. */
const MAX_PARTICIPANTS = 1_024;

export interface ReadOptions {
  /** The activity expiry window (ACTIVITY_EXPIRY_SECONDS). */
  readonly expiryMs?: number;
  readonly now?: () => number;
}

const json = (statusCode: number, body: unknown): APIGatewayProxyStructuredResultV2 => ({
  statusCode,
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify(body),
});

/** The read core (the store is passed in). */
export async function readPresence(
  event: Pick<APIGatewayProxyEventV2, 'pathParameters' | 'queryStringParameters'>,
  store: PresenceStore,
  context?: Pick<Context, 'getRemainingTimeInMillis'>,
  options: ReadOptions = {},
): Promise<APIGatewayProxyStructuredResultV2> {
  const now = options.now ?? Date.now;
  const expiryMs = options.expiryMs ?? DEFAULT_EXPIRY_MS;
  const instanceId = event.pathParameters?.instanceId;
  const phone = event.pathParameters?.phone;
  const participant = event.queryStringParameters?.participant;
  if (instanceId === undefined || !INSTANCE_ID_PATTERN.test(instanceId)) {
    return json(400, {
      ok: false,
      error: 'invalid-instance',
      message: 'the URL does not name a Z-API instance',
    });
  }
  if (phone === undefined || phone === '' || phone.length > MAX_ID_LENGTH || phone.includes('#')) {
    return json(400, { ok: false, error: 'invalid-phone', message: 'the URL does not name a chat' });
  }
  if (participant !== undefined && (participant === '' || participant.length > MAX_ID_LENGTH)) {
    return json(400, {
      ok: false,
      error: 'invalid-participant',
      message: `participant must be 1 to ${MAX_ID_LENGTH} characters`,
    });
  }
  // What a reader sees: idle past the horizon is gone (DynamoDB deletes expired items late), an
  // activity past its window has ended.
  const current = (stored: StoredChat | undefined): ChatState | undefined => {
    if (stored === undefined || isIdle(stored, now())) return undefined;
    return expireActivity(stored.state, now(), expiryMs)?.state ?? stored.state;
  };
  const unknown = () =>
    json(404, { ok: false, error: 'unknown-chat', message: 'no presence seen for this chat' });
  try {
    const deadline = invocationDeadline(context, 1_000, 5_000);
    if (participant === undefined && phone.endsWith('-group')) {
      const members = (await store.participants(instanceId, phone, MAX_PARTICIPANTS, deadline))
        .map(current)
        .filter((state) => state !== undefined);
      // A group whose callbacks named no participant is kept as one chat.
      const whole =
        members.length === 0 ? current(await store.get({ instanceId, phone }, deadline)) : undefined;
      if (whole !== undefined) return json(200, stateView(whole));
      if (members.length === 0) return unknown();
      return json(200, { instanceId, phone, participants: members.map(stateView) });
    }
    const state = current(
      await store.get({ instanceId, phone, ...(participant !== undefined && { participant }) }, deadline),
    );
    return state === undefined ? unknown() : json(200, stateView(state));
  } catch (error) {
    console.error({ msg: 'presence read failed', error: errorName(error) });
    return json(503, {
      ok: false,
      error: 'store-unavailable',
      message: 'the presence table cannot be read right now; retry',
    });
  }
}

let store: PresenceStore | undefined;

export async function handler(
  event: APIGatewayProxyEventV2 & SnapshotRequest,
  context?: Context,
): Promise<APIGatewayProxyStructuredResultV2> {
  store ??= dynamoStore(
    new DynamoDBClient({
      maxAttempts: 2,
      requestHandler: { connectionTimeout: 1_000, requestTimeout: 2_000, throwOnRequestTimeout: true },
    }),
    process.env[STATE_ENV.tableName] ?? '',
    { ttlSeconds: 0 },
  );
  const expirySeconds = Number(process.env[STATE_ENV.expirySeconds]);
  const expiry =
    Number.isInteger(expirySeconds) && expirySeconds > 0 ? { expiryMs: expirySeconds * 1_000 } : {};
  if (event.routeKey === SNAPSHOT_ROUTE_KEY) {
    const groupsClaim = process.env[STATE_ENV.groupsClaim]?.trim();
    // Only a deployment with the live feed routes here, and it sets the claim.
    if (!groupsClaim)
      throw new Error(`environment variable ${STATE_ENV.groupsClaim} is required for the snapshot route`);
    return readSnapshot(event, store, invocationDeadline(context, 1_000, 5_000), { groupsClaim, ...expiry });
  }
  return readPresence(event, store, context, expiry);
}
