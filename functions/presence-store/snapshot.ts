/**
 * `GET /instances/{instanceId}/presence` (JWT-authorized: the live feed's agents): every chat of an
 * instance with its current presence and the sequence of its last derived event, a page at a time. The
 * agent's view starts from it, then applies the feed's events above each chat's sequence
 * (functions/live-feed/client.ts).
 *
 * The same rule as the feed's subscriptions (functions/shared/access/agent-access.ts): the token's groups
 * must name the instance or `zapi-presence-all`; otherwise 403, whether or not the instance has chats.
 */
import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { groupsFromClaim, isInstanceId, mayReadInstance } from '../shared/access/agent-access.ts';
import type { Deadline } from '../shared/aws/deadline.ts';
import { errorName } from '../shared/aws/error-name.ts';
import { SNAPSHOT_PAGE, type Snapshot, type SnapshotChat } from '../shared/contract/live-feed-contract.ts';
import { type ChatState, DEFAULT_EXPIRY_MS, expireActivity } from './presence-state.ts';
import { isIdle, type PresenceStore, type StoredChat } from './store.ts';

/** The part of API Gateway's event (payload 2.0, JWT authorizer) the snapshot reads. */
export interface SnapshotRequest {
  readonly headers?: Record<string, string | undefined>;
  readonly pathParameters?: Record<string, string | undefined>;
  readonly queryStringParameters?: Record<string, string | undefined>;
  readonly requestContext?: {
    readonly authorizer?: { readonly jwt?: { readonly claims?: Record<string, unknown> } };
  };
}

export interface SnapshotOptions {
  /** The claim that lists the agent's groups. */
  readonly groupsClaim: string;
  readonly expiryMs?: number;
  readonly now?: () => number;
  /** Answer headers added to every answer (CORS). */
  readonly headers?: Record<string, string>;
}

const MAX_CURSOR_LENGTH = 1_024;

/**
 * The agent's groups. API Gateway's JWT authorizer has verified the token, but it hands its claims over
 * flattened: an array claim becomes `"[a b]"`, so a group named `Team X` would read as two, `Team` and `X`,
 * and `["zapi-presence-all,x"]` as `zapi-presence-all`. So the groups are read from the verified token
 * itself (its payload, in the Authorization header), as AppSync reads them; the flattened claim only
 * when the header cannot be read.
 */
export function agentGroups(request: SnapshotRequest, claim: string): string[] {
  const header = request.headers?.authorization ?? request.headers?.Authorization;
  const token = header?.startsWith('Bearer ') ? header.slice(7) : header;
  const payload = token?.split('.')[1];
  if (payload !== undefined) {
    try {
      const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<
        string,
        unknown
      >;
      if (typeof claims === 'object' && claims !== null) return groupsFromClaim(claims[claim]);
    } catch {
      // Not a JWT payload: the authorizer's claims below.
    }
  }
  return groupsFromClaim(request.requestContext?.authorizer?.jwt?.claims?.[claim]);
}

/** The opaque cursor of the page after `chat` (base64url of the chat key, bound to its instance). */
export function encodeCursor(instanceId: string, chat: string): string {
  return Buffer.from(JSON.stringify({ i: instanceId, c: chat }), 'utf8').toString('base64url');
}

function decodeCursor(instanceId: string, cursor: string): string | undefined {
  if (cursor.length === 0 || cursor.length > MAX_CURSOR_LENGTH || !/^[A-Za-z0-9_-]+$/.test(cursor))
    return undefined;
  try {
    const parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as {
      i?: unknown;
      c?: unknown;
    };
    // A cursor of another instance is no cursor here: a page never starts in someone else's chats.
    return parsed.i === instanceId && typeof parsed.c === 'string' && parsed.c !== '' ? parsed.c : undefined;
  } catch {
    return undefined;
  }
}

const iso = (ms: number) => new Date(ms).toISOString();

/** One chat as a snapshot shows it: an activity past its window has ended, whatever the item says. */
export function snapshotChat(state: ChatState, sequence: number): SnapshotChat {
  return {
    phone: state.phone,
    ...(state.participant !== undefined && { participant: state.participant }),
    online: state.online,
    activity: state.activity ?? null,
    ...(state.activity !== undefined &&
      state.activitySince !== undefined && { activitySince: iso(state.activitySince) }),
    ...(state.activity !== undefined &&
      state.activityLastNews !== undefined && { activityLastNews: iso(state.activityLastNews) }),
    sequence,
    updatedAt: iso(state.eventTime),
  };
}

export async function readSnapshot(
  request: SnapshotRequest,
  store: Pick<PresenceStore, 'list'>,
  deadline: Deadline,
  options: SnapshotOptions,
): Promise<APIGatewayProxyStructuredResultV2> {
  const now = options.now ?? Date.now;
  const expiryMs = options.expiryMs ?? DEFAULT_EXPIRY_MS;
  const json = (statusCode: number, body: unknown): APIGatewayProxyStructuredResultV2 => ({
    statusCode,
    headers: { 'content-type': 'application/json', 'cache-control': 'no-store', ...options.headers },
    body: JSON.stringify(body),
  });
  const instanceId = request.pathParameters?.instanceId;
  if (!isInstanceId(instanceId)) {
    return json(400, {
      ok: false,
      error: 'invalid-instance',
      message: 'the URL does not name a Z-API instance',
    });
  }
  const groups = agentGroups(request, options.groupsClaim);
  if (!mayReadInstance(groups, instanceId)) {
    return json(403, {
      ok: false,
      error: 'forbidden-instance',
      message: `your token's ${options.groupsClaim} does not include this instance or zapi-presence-all`,
    });
  }
  const query = request.queryStringParameters ?? {};
  const limit = query.limit === undefined ? SNAPSHOT_PAGE.default : Number(query.limit);
  if (!Number.isInteger(limit) || limit < 1 || limit > SNAPSHOT_PAGE.max) {
    return json(400, {
      ok: false,
      error: 'invalid-limit',
      message: `limit must be a whole number from 1 to ${SNAPSHOT_PAGE.max}`,
    });
  }
  const after = query.cursor === undefined ? undefined : decodeCursor(instanceId, query.cursor);
  if (query.cursor !== undefined && after === undefined) {
    return json(400, {
      ok: false,
      error: 'invalid-cursor',
      message: 'cursor is not one this route gave for this instance',
    });
  }
  if (store.list === undefined) throw new Error('this presence store cannot list an instance');
  try {
    const page = await store.list(instanceId, limit, after, deadline);
    const at = now();
    const chats = page.chats
      .filter((stored: StoredChat) => !isIdle(stored, at))
      .map((stored) => {
        const state = expireActivity(stored.state, at, expiryMs)?.state ?? stored.state;
        // The item's own sequence: the feed's next event (the stop, if the activity just expired) is above it.
        return snapshotChat(state, stored.state.sequence ?? 0);
      });
    const snapshot: Snapshot = {
      instanceId,
      at: iso(at),
      chats,
      ...(page.next !== undefined && { nextCursor: encodeCursor(instanceId, page.next) }),
    };
    return json(200, snapshot);
  } catch (error) {
    console.error({ msg: 'presence snapshot failed', instanceId, error: errorName(error) });
    return json(503, {
      ok: false,
      error: 'store-unavailable',
      message: 'the presence table cannot be read right now; retry',
    });
  }
}
