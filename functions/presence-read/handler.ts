/**
 * `GET /instances/{instanceId}/chats/{phone}/presence` (IAM-authorized on the webhook's HTTP API): a
 * chat's current presence from the presence table, as JSON; 404 for a chat never seen.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { invocationDeadline } from '../shared/deadline.ts';
import { INSTANCE_ID_PATTERN } from '../shared/presence-contract.ts';
import { stateView } from '../shared/presence-state.ts';
import { STATE_ENV } from '../shared/presence-state-settings.ts';
import { dynamoStore, type PresenceStore } from '../shared/presence-store.ts';

const json = (statusCode: number, body: unknown): APIGatewayProxyStructuredResultV2 => ({
  statusCode,
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify(body),
});

/** The read core (the store is passed in). */
export async function readPresence(
  event: Pick<APIGatewayProxyEventV2, 'pathParameters'>,
  store: PresenceStore,
  context?: Pick<Context, 'getRemainingTimeInMillis'>,
): Promise<APIGatewayProxyStructuredResultV2> {
  const instanceId = event.pathParameters?.instanceId;
  const phone = event.pathParameters?.phone;
  if (instanceId === undefined || !INSTANCE_ID_PATTERN.test(instanceId)) {
    return json(400, {
      ok: false,
      error: 'invalid-instance',
      message: 'the URL does not name a Z-API instance',
    });
  }
  if (phone === undefined || phone === '' || phone.length > 128) {
    return json(400, { ok: false, error: 'invalid-phone', message: 'the URL does not name a chat' });
  }
  try {
    const stored = await store.get(instanceId, phone, invocationDeadline(context, 1_000, 5_000));
    if (stored === undefined)
      return json(404, { ok: false, error: 'unknown-chat', message: 'no presence seen for this chat' });
    return json(200, stateView(stored.state));
  } catch (error) {
    console.error({ msg: 'presence read failed', error: error instanceof Error ? error.name : 'unknown' });
    return json(503, {
      ok: false,
      error: 'store-unavailable',
      message: 'the presence table cannot be read right now; retry',
    });
  }
}

let store: PresenceStore | undefined;

export async function handler(
  event: APIGatewayProxyEventV2,
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
  return readPresence(event, store, context);
}
