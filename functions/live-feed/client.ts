/// <reference lib="dom" />
/**
 * The live feed's browser client (`zapi-presence-eventbridge/client`): an agent's view of the presence of
 * the chats of some instances, kept current. No framework and no dependency: AppSync Events' WebSocket
 * protocol is small, and the clients that exist either weigh far more (Amplify) or cannot reach the local
 * twin (`ws://`).
 *
 *   const feed = connectPresenceFeed({ realtimeUrl, httpDomain, snapshotUrl, token: () => myToken(), instanceIds: [ID],
 *     onChange: (chat) => render(chat), onState: (state) => showConnection(state) });
 *
 * What it does:
 * - connects with the agent's token (AppSync's `aws-appsync-event-ws` protocol), subscribes to
 *   `/presence/{instanceId}` for each instance, then fetches each instance's snapshot (every page);
 * - applies derived events by `sequence`, per chat: one at or below the highest seen is stale or a
 *   duplicate and is dropped; the event's `current` is the chat's whole presence, so a late or lost event
 *   before it changes nothing;
 * - fetches the snapshot again after a reconnect, and when a chat's sequence jumps (an event was lost);
 * - clears typing or recording {@link FEED_ACTIVITY_EXPIRY_MS} after its last news, even if no stop comes
 *   (the feed's `news` messages, one per COMPOSING/RECORDING, keep a long activity up);
 * - reconnects with backoff when the socket closes or its keep-alives stop, asking `token()` again each
 *   time (give it a function that refreshes the agent's token), and reports its state.
 */
import {
  FEED_ACTIVITY_EXPIRY_MS,
  type FeedActivity,
  type FeedMessage,
  type Snapshot,
  type SnapshotChat,
} from '../shared/contract/live-feed-contract.ts';

export type { FeedMessage, Snapshot, SnapshotChat } from '../shared/contract/live-feed-contract.ts';

/** `connecting` (first time), `live` (connected, every instance subscribed or refused), `reconnecting`, `closed`. */
export type FeedConnectionState = 'connecting' | 'live' | 'reconnecting' | 'closed';

/** One chat (or one member of a group chat) as the view shows it. */
export interface ChatPresence {
  readonly instanceId: string;
  readonly phone: string;
  readonly participant?: string;
  readonly online: boolean;
  readonly activity: FeedActivity | null;
  /** The sequence of the last derived event applied (0: none yet). */
  readonly sequence: number;
  /** When the shown activity stops by itself, unless news comes (epoch ms). */
  readonly activityExpiresAt?: number;
  /** The time of the last change applied (ISO 8601). */
  readonly updatedAt?: string;
}

/** Why an instance is not shown. */
export interface FeedProblem {
  /** The instance, or absent for the connection as a whole. */
  readonly instanceId?: string;
  /**
   * `Unauthorized`: the token's groups do not name the instance; `snapshot-403`; `snapshot-<status>`,
   * `snapshot-failed`, `snapshot-unreadable` (retried); `subscribe-failed`; for the connection,
   * `connection-UnauthorizedException` (a bad or expired token: the client asks `token()` again),
   * `token-failed` (the token provider threw or did not answer in 10 s).
   */
  readonly reason: string;
}

/** The parts of a WebSocket this client uses (the browser's, or `ws` in Node). */
export interface FeedSocket {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: unknown) => void) | null;
  onerror: ((event: unknown) => void) | null;
}

export interface PresenceFeedOptions {
  /** `wss://{realtime domain}/event/realtime` (output LiveFeedRealtimeUrl), or the local twin's `ws://127.0.0.1:3000/event/realtime`. */
  readonly realtimeUrl: string;
  /** The Event API's HTTP domain (output LiveFeedHttpDomain): the `host` AppSync checks. Locally `127.0.0.1:3000`. */
  readonly httpDomain: string;
  /** The snapshot route: `https://{api}/instances/{instanceId}/presence` (output LiveFeedSnapshotUrl), `{instanceId}` replaced. */
  readonly snapshotUrl: string;
  /** The agent's token (an access or ID token), asked again for every connection, subscription and snapshot. */
  readonly token: () => string | Promise<string>;
  readonly instanceIds: readonly string[];
  /** A chat changed (a new presence, an activity that stopped by itself, a snapshot). */
  readonly onChange?: (chat: ChatPresence) => void;
  readonly onState?: (state: FeedConnectionState) => void;
  /** An instance cannot be shown (refused: its chats are dropped from the view; or its snapshot failed). */
  readonly onProblem?: (problem: FeedProblem) => void;
  /** @default FEED_ACTIVITY_EXPIRY_MS (25 s) */
  readonly activityExpiryMs?: number;
  /** Backoff of reconnects: from `initial` doubling to `max` (with jitter). @default { initialMs: 500, maxMs: 30_000 } */
  readonly reconnect?: { readonly initialMs?: number; readonly maxMs?: number };
  /** @default globalThis.WebSocket */
  readonly webSocket?: new (
    url: string,
    protocols: string[],
  ) => FeedSocket;
  /** @default globalThis.fetch */
  readonly fetch?: typeof fetch;
  /** @default Date.now */
  readonly now?: () => number;
  /** How long `token()`, a snapshot page or a connection's acknowledgement may take. @default 10_000 */
  readonly requestTimeoutMs?: number;
}

export interface PresenceFeed {
  /** Every chat known, of one instance or of all. */
  chats(instanceId?: string): ChatPresence[];
  readonly state: FeedConnectionState;
  /** Snapshots fetched so far (for a view that shows it, and for tests). */
  readonly snapshotsFetched: number;
  /** Unsubscribes and closes for good. */
  close(): void;
}

const OPEN = 1;
/** Keep-alive timeout when AppSync does not say (it sends `ka` about once a minute). */
const DEFAULT_CONNECTION_TIMEOUT_MS = 300_000;
/** A snapshot fetched again for a sequence gap waits this long, so one loss fetches it once. */
const GAP_REFETCH_DELAY_MS = 250;
/** How long a token, a snapshot page or a connection's acknowledgement may take. */
const REQUEST_TIMEOUT_MS = 10_000;
/** Attempts at one snapshot before the view waits for the next gap or reconnect. */
const SNAPSHOT_ATTEMPTS = 5;
/** A connection counts as stable (its backoff starts over) after this long. */
const STABLE_CONNECTION_MS = 60_000;
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Rejects after `ms` (a token provider that never answers must not hold the view). */
function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    promise,
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

const isString = (value: unknown): value is string => typeof value === 'string';
const isActivity = (value: unknown): value is FeedActivity | null =>
  value === null || value === 'typing' || value === 'recording';

function isSnapshot(value: unknown): value is Snapshot {
  const page = value as Snapshot | null;
  return (
    typeof page === 'object' &&
    page !== null &&
    Array.isArray(page.chats) &&
    (page.nextCursor === undefined || isString(page.nextCursor))
  );
}

function isSnapshotChat(value: unknown): value is SnapshotChat {
  const chat = value as SnapshotChat | null;
  return (
    typeof chat === 'object' &&
    chat !== null &&
    isString(chat.phone) &&
    (chat.participant === undefined || isString(chat.participant)) &&
    typeof chat.online === 'boolean' &&
    isActivity(chat.activity) &&
    Number.isSafeInteger(chat.sequence)
  );
}

/** A feed message as the client can apply it; anything else is ignored before it changes a chat. */
export function isFeedMessage(value: unknown): value is FeedMessage {
  const message = value as Record<string, unknown> | null;
  if (typeof message !== 'object' || message === null) return false;
  if (message.kind === 'news') {
    return (
      isString(message.instanceId) &&
      isString(message.phone) &&
      (message.participant === undefined || isString(message.participant)) &&
      (message.activity === 'typing' || message.activity === 'recording') &&
      isString(message.at)
    );
  }
  if (message.kind !== 'derived') return false;
  const detail = message.detail as Record<string, unknown> | null;
  const current = detail?.current as Record<string, unknown> | null | undefined;
  return (
    typeof detail === 'object' &&
    detail !== null &&
    isString(detail.instanceId) &&
    isString(detail.phone) &&
    (detail.participant === undefined || isString(detail.participant)) &&
    isString(detail.at) &&
    Number.isSafeInteger(detail.sequence) &&
    typeof current === 'object' &&
    current !== null &&
    typeof current.online === 'boolean' &&
    isActivity(current.activity)
  );
}

/** base64url of UTF-8 text, without padding (the `header-` subprotocol). */
export function base64Url(text: string): string {
  const bytes = new TextEncoder().encode(text);
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** The subprotocols that carry the authorization of a connection. */
export function realtimeProtocols(host: string, token: string): string[] {
  return ['aws-appsync-event-ws', `header-${base64Url(JSON.stringify({ host, Authorization: token }))}`];
}

const keyOf = (instanceId: string, phone: string, participant?: string) =>
  `${instanceId}\u0000${phone}\u0000${participant ?? ''}`;

interface Held {
  instanceId: string;
  phone: string;
  participant?: string;
  online: boolean;
  activity: FeedActivity | null;
  sequence: number;
  /** The server's time of the activity's last news (orders news; never compared with this clock). */
  newsAt?: number;
  /** When the shown activity stops by itself, on this machine's clock (epoch ms). */
  expiresAt?: number;
  updatedAt?: string;
  timer?: ReturnType<typeof setTimeout>;
}

export function connectPresenceFeed(options: PresenceFeedOptions): PresenceFeed {
  const expiryMs = options.activityExpiryMs ?? FEED_ACTIVITY_EXPIRY_MS;
  const now = options.now ?? Date.now;
  const Socket =
    options.webSocket ??
    (globalThis.WebSocket as unknown as new (
      url: string,
      protocols: string[],
    ) => FeedSocket);
  if (Socket === undefined) {
    throw new Error(
      'connectPresenceFeed: no WebSocket here (Node 20 has none): pass webSocket, e.g. the `ws` package',
    );
  }
  const fetchFn = options.fetch ?? globalThis.fetch.bind(globalThis);
  const initialBackoff = options.reconnect?.initialMs ?? 500;
  const maxBackoff = options.reconnect?.maxMs ?? 30_000;
  const instanceIds = [...new Set(options.instanceIds)];
  const requestTimeoutMs = options.requestTimeoutMs ?? REQUEST_TIMEOUT_MS;

  const chats = new Map<string, Held>();
  let state: FeedConnectionState = 'connecting';
  let socket: FeedSocket | undefined;
  let closed = false;
  let attempt = 0;
  let snapshotsFetched = 0;
  let watchdog: ReturnType<typeof setTimeout> | undefined;
  let reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  let connectionTimeoutMs = DEFAULT_CONNECTION_TIMEOUT_MS;
  /** Subscription id -> instance, for this connection. */
  let subscriptions = new Map<string, string>();
  /** Instances whose subscription AppSync answered (either way), for this connection. */
  let answered = new Set<string>();
  const gapTimers = new Map<string, ReturnType<typeof setTimeout>>();
  const retryTimers = new Set<ReturnType<typeof setTimeout>>();
  let stableTimer: ReturnType<typeof setTimeout> | undefined;
  /** A snapshot generation per instance: a snapshot older than a newer fetch is not applied. */
  const snapshotGeneration = new Map<string, number>();

  const setState = (next: FeedConnectionState) => {
    if (state === next) return;
    state = next;
    options.onState?.(next);
  };
  const view = (held: Held): ChatPresence => ({
    instanceId: held.instanceId,
    phone: held.phone,
    ...(held.participant !== undefined && { participant: held.participant }),
    online: held.online,
    activity: held.activity,
    sequence: held.sequence,
    ...(held.activity !== null && held.expiresAt !== undefined && { activityExpiresAt: held.expiresAt }),
    ...(held.updatedAt !== undefined && { updatedAt: held.updatedAt }),
  });
  const changed = (held: Held) => options.onChange?.(view(held));

  /**
   * Clears the activity when its window passes without news. The window is timed on this machine's clock
   * from when the news arrived (a browser whose clock is off by minutes still clears it after 25 s).
   */
  const arm = (held: Held) => {
    if (held.timer !== undefined) clearTimeout(held.timer);
    held.timer = undefined;
    if (held.activity === null || held.expiresAt === undefined) return;
    held.timer = setTimeout(
      () => {
        held.timer = undefined;
        if (held.activity === null || held.expiresAt === undefined) return;
        if (now() < held.expiresAt) return arm(held);
        held.activity = null;
        held.expiresAt = undefined;
        changed(held);
      },
      Math.min(MAX_TIMER_MS, Math.max(0, held.expiresAt - now())),
    );
  };

  const holder = (instanceId: string, phone: string, participant?: string): Held => {
    const key = keyOf(instanceId, phone, participant);
    let held = chats.get(key);
    if (held === undefined) {
      held = {
        instanceId,
        phone,
        ...(participant !== undefined && { participant }),
        online: false,
        activity: null,
        sequence: 0,
      };
      chats.set(key, held);
    }
    return held;
  };

  function apply(message: FeedMessage): void {
    if (message.kind === 'news') {
      if (!instanceIds.includes(message.instanceId)) return;
      const held = chats.get(keyOf(message.instanceId, message.phone, message.participant));
      // News only keeps an activity the chat shows up; it never starts one (the derived event does).
      const at = Date.parse(message.at);
      if (held === undefined || held.activity !== message.activity || !Number.isFinite(at)) return;
      if (held.newsAt === undefined || at > held.newsAt) {
        held.newsAt = at;
        held.expiresAt = now() + expiryMs;
        arm(held);
        changed(held);
      }
      return;
    }
    const { detail } = message;
    if (!instanceIds.includes(detail.instanceId)) return;
    const held = holder(detail.instanceId, detail.phone, detail.participant);
    // Stale or a duplicate: the view holds this sequence or a newer one.
    if (detail.sequence <= held.sequence) return;
    const gap = held.sequence > 0 && detail.sequence > held.sequence + 1;
    held.sequence = detail.sequence;
    held.online = detail.current.online;
    const activity = detail.current.activity;
    if (activity !== null) {
      // News now: the window runs from its arrival here.
      held.newsAt = Math.max(held.activity === activity ? (held.newsAt ?? 0) : 0, Date.parse(detail.at) || 0);
      held.expiresAt = now() + expiryMs;
    } else {
      held.newsAt = undefined;
      held.expiresAt = undefined;
    }
    held.activity = activity;
    held.updatedAt = detail.at;
    arm(held);
    changed(held);
    if (gap) refetchSoon(detail.instanceId);
  }

  /** `offsetMs`: this clock minus the server's, from the snapshot's `at` (so skew does not move the window). */
  function applySnapshotChat(instanceId: string, chat: SnapshotChat, offsetMs: number): void {
    const held = holder(instanceId, chat.phone, chat.participant);
    // The feed may already have carried something newer than this page.
    if (chat.sequence < held.sequence || (chat.sequence === held.sequence && held.sequence > 0)) return;
    held.sequence = chat.sequence;
    held.online = chat.online;
    held.activity = chat.activity;
    const news = Date.parse(chat.activityLastNews ?? chat.activitySince ?? '');
    if (chat.activity !== null) {
      held.newsAt = Number.isFinite(news) ? news : undefined;
      // The server's instant on this clock; never beyond a full window from now.
      const local = Number.isFinite(news) ? news + offsetMs + expiryMs : now() + expiryMs;
      held.expiresAt = Math.min(local, now() + expiryMs);
    } else {
      held.newsAt = undefined;
      held.expiresAt = undefined;
    }
    held.updatedAt = chat.updatedAt;
    arm(held);
    changed(held);
  }

  /** Fetches every page of an instance's snapshot; a failure is retried with backoff (429's Retry-After). */
  async function fetchSnapshot(instanceId: string, attemptNo = 1): Promise<void> {
    const generation = (snapshotGeneration.get(instanceId) ?? 0) + 1;
    snapshotGeneration.set(instanceId, generation);
    let cursor: string | undefined;
    let pages = 0;
    const retry = (reason: string, waitMs?: number) => {
      options.onProblem?.({ instanceId, reason });
      if (closed || attemptNo >= SNAPSHOT_ATTEMPTS || snapshotGeneration.get(instanceId) !== generation)
        return;
      const backoff = Math.min(maxBackoff, initialBackoff * 2 ** attemptNo);
      const delay = Math.max(waitMs ?? 0, backoff / 2 + Math.random() * (backoff / 2));
      const timer = setTimeout(() => {
        retryTimers.delete(timer);
        if (!closed && snapshotGeneration.get(instanceId) === generation)
          void fetchSnapshot(instanceId, attemptNo + 1);
      }, delay);
      retryTimers.add(timer);
    };
    do {
      const url = new URL(options.snapshotUrl.replace('{instanceId}', encodeURIComponent(instanceId)));
      if (cursor !== undefined) url.searchParams.set('cursor', cursor);
      let page: Snapshot;
      try {
        const token = await withTimeout(Promise.resolve(options.token()), requestTimeoutMs, 'token');
        const response = await fetchFn(url, {
          headers: { authorization: token },
          signal: AbortSignal.timeout(requestTimeoutMs),
        });
        if (!response.ok) {
          if (response.status === 403) {
            dropInstance(instanceId);
            options.onProblem?.({ instanceId, reason: 'snapshot-403' });
            return;
          }
          const retryAfter = Number(response.headers.get('retry-after'));
          return retry(
            `snapshot-${response.status}`,
            Number.isFinite(retryAfter) ? Math.min(retryAfter, 60) * 1_000 : undefined,
          );
        }
        page = (await response.json()) as Snapshot;
        if (!isSnapshot(page)) return retry('snapshot-unreadable');
      } catch {
        return retry('snapshot-failed');
      }
      if (closed || snapshotGeneration.get(instanceId) !== generation) return;
      const offsetMs = now() - (Date.parse(page.at) || now());
      for (const chat of page.chats) if (isSnapshotChat(chat)) applySnapshotChat(instanceId, chat, offsetMs);
      cursor = page.nextCursor;
      pages += 1;
    } while (cursor !== undefined && pages < 1_000);
    snapshotsFetched += 1;
  }

  function dropInstance(instanceId: string): void {
    for (const [key, held] of chats) {
      if (held.instanceId !== instanceId) continue;
      if (held.timer !== undefined) clearTimeout(held.timer);
      chats.delete(key);
    }
  }

  function refetchSoon(instanceId: string): void {
    if (gapTimers.has(instanceId)) return;
    gapTimers.set(
      instanceId,
      setTimeout(() => {
        gapTimers.delete(instanceId);
        if (!closed) void fetchSnapshot(instanceId);
      }, GAP_REFETCH_DELAY_MS),
    );
  }

  const feedWatchdog = () => {
    if (watchdog !== undefined) clearTimeout(watchdog);
    // No keep-alive (or anything) for the time AppSync said: the connection is gone; start again.
    watchdog = setTimeout(() => socket?.close(4000, 'keep-alive timeout'), connectionTimeoutMs);
  };

  function scheduleReconnect(): void {
    if (closed || reconnectTimer !== undefined) return;
    setState('reconnecting');
    const ceiling = Math.min(maxBackoff, initialBackoff * 2 ** attempt);
    attempt += 1;
    reconnectTimer = setTimeout(
      () => {
        reconnectTimer = undefined;
        void connect();
      },
      ceiling / 2 + Math.random() * (ceiling / 2),
    );
  }

  async function connect(): Promise<void> {
    if (closed) return;
    let token: string;
    try {
      token = await withTimeout(Promise.resolve(options.token()), requestTimeoutMs, 'token');
    } catch {
      options.onProblem?.({ reason: 'token-failed' });
      scheduleReconnect();
      return;
    }
    if (closed) return;
    subscriptions = new Map();
    answered = new Set();
    let acknowledged = false;
    const current = new (Socket as new (url: string, protocols: string[]) => FeedSocket)(
      options.realtimeUrl,
      realtimeProtocols(options.httpDomain, token),
    );
    socket = current;
    // The acknowledgement must come within the request timeout, as every later message within the
    // connection's own timeout: a socket that opens and says nothing is closed and started again.
    watchdog = setTimeout(() => current.close(4000, 'no connection_ack'), requestTimeoutMs);
    current.onopen = () => current.send(JSON.stringify({ type: 'connection_init' }));
    current.onerror = () => {};
    current.onclose = () => {
      if (socket !== current) return;
      if (watchdog !== undefined) clearTimeout(watchdog);
      if (stableTimer !== undefined) clearTimeout(stableTimer);
      stableTimer = undefined;
      socket = undefined;
      scheduleReconnect();
    };
    current.onmessage = (event) => {
      if (socket !== current) return;
      let message: {
        type?: string;
        id?: string;
        event?: unknown;
        connectionTimeoutMs?: number;
        errors?: Array<{ errorType?: string }>;
      };
      try {
        message = JSON.parse(String(event.data));
      } catch {
        return;
      }
      feedWatchdog();
      switch (message.type) {
        case 'connection_ack':
          if (typeof message.connectionTimeoutMs === 'number' && message.connectionTimeoutMs > 0)
            connectionTimeoutMs = message.connectionTimeoutMs;
          feedWatchdog();
          // Once a connection: a repeated ack changes the timeout only.
          if (!acknowledged) {
            acknowledged = true;
            void subscribeAll(current, token);
          }
          break;
        case 'subscribe_success': {
          const instanceId = subscriptions.get(message.id ?? '');
          if (instanceId === undefined) break;
          answered.add(instanceId);
          if (answered.size === instanceIds.length) {
            setState('live');
            // The backoff starts over only once a connection has lasted: one that is cut right after it
            // is up (a proxy, AppSync shedding load) keeps backing off instead of reconnecting at once.
            if (stableTimer !== undefined) clearTimeout(stableTimer);
            stableTimer = setTimeout(() => {
              stableTimer = undefined;
              attempt = 0;
            }, STABLE_CONNECTION_MS);
          }
          // Subscribed first, then the snapshot: nothing falls between the two.
          void fetchSnapshot(instanceId);
          break;
        }
        case 'subscribe_error': {
          const instanceId = subscriptions.get(message.id ?? '');
          if (instanceId === undefined) break;
          answered.add(instanceId);
          // Refused (a group removed, say): what the view showed of it goes.
          dropInstance(instanceId);
          options.onProblem?.({ instanceId, reason: message.errors?.[0]?.errorType ?? 'subscribe-failed' });
          if (answered.size === instanceIds.length) setState('live');
          break;
        }
        case 'data': {
          if (!subscriptions.has(message.id ?? '') || typeof message.event !== 'string') break;
          let parsed: unknown;
          try {
            parsed = JSON.parse(message.event);
          } catch {
            break;
          }
          // Checked before it changes anything: a malformed event leaves every chat as it was.
          if (isFeedMessage(parsed)) apply(parsed);
          break;
        }
        case 'connection_error':
          // A refused connection (an expired or bad token): said, then started again with a fresh token.
          options.onProblem?.({ reason: `connection-${message.errors?.[0]?.errorType ?? 'error'}` });
          current.close(4001, 'connection error');
          break;
        case 'error':
          current.close(4001, 'connection error');
          break;
        default:
          break;
      }
    };
  }

  async function subscribeAll(current: FeedSocket, token: string): Promise<void> {
    for (const instanceId of instanceIds) {
      const id = `${instanceId}-${Math.random().toString(36).slice(2)}-${now()}`;
      subscriptions.set(id, instanceId);
      if (current.readyState !== OPEN) return;
      current.send(
        JSON.stringify({
          type: 'subscribe',
          id,
          channel: `/presence/${instanceId}`,
          authorization: { host: options.httpDomain, Authorization: token },
        }),
      );
    }
    if (instanceIds.length === 0) setState('live');
  }

  options.onState?.(state);
  void connect();

  return {
    chats(instanceId) {
      return [...chats.values()]
        .filter((held) => instanceId === undefined || held.instanceId === instanceId)
        .map(view);
    },
    get state() {
      return state;
    },
    get snapshotsFetched() {
      return snapshotsFetched;
    },
    close() {
      if (closed) return;
      closed = true;
      if (reconnectTimer !== undefined) clearTimeout(reconnectTimer);
      if (watchdog !== undefined) clearTimeout(watchdog);
      if (stableTimer !== undefined) clearTimeout(stableTimer);
      for (const timer of retryTimers) clearTimeout(timer);
      for (const timer of gapTimers.values()) clearTimeout(timer);
      for (const held of chats.values()) if (held.timer !== undefined) clearTimeout(held.timer);
      const current = socket;
      socket = undefined;
      if (current !== undefined && current.readyState === OPEN) {
        for (const id of subscriptions.keys()) current.send(JSON.stringify({ type: 'unsubscribe', id }));
        current.close(1000, 'closed');
      } else current?.close();
      setState('closed');
    },
  };
}
