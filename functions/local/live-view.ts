/**
 * `npm start`'s live view: every chat's current presence at http://127.0.0.1:3000/, as it changes,
 * pushed with server-sent events. The state comes from the same derivation code as the deployed
 * presence-state subscriber (functions/presence-store/presence-state.ts), kept in memory, with typing and
 * recording that stop by themselves after the expiry window.
 *
 *   GET /          the page
 *   GET /events    text/event-stream: `state` (a chat's state) and `derived` (a derived event) messages
 *   GET /state     every chat's state, as JSON
 *
 * Limits, so a bad client or a flood of callbacks cannot grow the process: a client that does not read
 * (over 1 MiB waiting for it) is dropped; at most 20 clients at once (a new one takes the place of the
 * longest-connected, whose page reconnects); at most 10,000 chats
 * (the least recently changed leave); and only `Host: 127.0.0.1`, `localhost` or `[::1]` (with any port)
 * is served, so a page on another site cannot read it through DNS rebinding (421).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  activityExpiresAt,
  applyPresence,
  type ChatKey,
  type ChatState,
  chatKeyOf,
  DEFAULT_EXPIRY_MS,
  type DerivedEvent,
  derivedDetail,
  derivedDetailType,
  expireActivity,
  isStorableChat,
  type PresenceInput,
  stateView,
} from '../presence-store/presence-state.ts';

/** Bytes a client may leave unread before it is dropped. */
export const MAX_UNREAD_BYTES = 1024 * 1024;
/** Chats a new client is sent at once (the most recently changed). */
export const SNAPSHOT_CHATS = 2_000;
export const MAX_CLIENTS = 20;
export const MAX_CHATS = 10_000;

/** The Host headers the live view answers: this machine's loopback names, any port. */
const LOCAL_HOST = /^(?:127\.0\.0\.1|localhost|\[::1\])(?::\d{1,5})?$/i;

export interface LiveViewOptions {
  readonly expiryMs?: number;
  /** @default MAX_CLIENTS */
  readonly maxClients?: number;
  /** @default MAX_CHATS */
  readonly maxChats?: number;
  /** @default Date.now */
  readonly now?: () => number;
}

export interface LiveView {
  /** Feeds one accepted presence event. */
  apply(input: PresenceInput): void;
  /** Answers GET /, /events and /state; false for any other request. */
  serve(request: IncomingMessage, response: ServerResponse): boolean;
  readonly chats: ReadonlyMap<string, ChatState>;
  /** Event-stream clients connected now. */
  clientCount(): number;
  close(): void;
}

export function createLiveView(options: LiveViewOptions = {}): LiveView {
  const expiryMs = options.expiryMs ?? DEFAULT_EXPIRY_MS;
  const now = options.now ?? Date.now;
  const chats = new Map<string, ChatState>();
  const timers = new Map<string, ReturnType<typeof setTimeout>>();
  const clients = new Set<ServerResponse>();
  const keyOf = (key: ChatKey) => `${key.instanceId}\u0000${chatKeyOf(key)}`;

  const maxClients = options.maxClients ?? MAX_CLIENTS;
  const maxChats = options.maxChats ?? MAX_CHATS;

  const push = (type: string, data: unknown) => {
    const message = `event: ${type}\ndata: ${JSON.stringify(data)}\n\n`;
    for (const client of clients) {
      // Backpressure: a client that does not read is dropped, not buffered for.
      if (client.writableLength > MAX_UNREAD_BYTES) {
        clients.delete(client);
        client.destroy();
        continue;
      }
      client.write(message);
    }
  };
  /** Keeps a chat's state, the most recently changed last; the least recently changed leave past the cap. */
  const keep = (key: string, state: ChatState) => {
    chats.delete(key);
    chats.set(key, state);
    while (chats.size > maxChats) {
      const oldest = chats.keys().next().value as string;
      chats.delete(oldest);
      clearTimeout(timers.get(oldest));
      timers.delete(oldest);
    }
  };
  const announce = (state: ChatState, derived: readonly DerivedEvent[]) => {
    for (const event of derived)
      push('derived', { detailType: derivedDetailType(event), detail: derivedDetail(event) });
    push('state', stateView(state));
  };

  // Local events carry their time in milliseconds: no whole-second allowance (resolution 0).
  function scheduleExpiry(key: string, state: ChatState): void {
    clearTimeout(timers.get(key));
    timers.delete(key);
    const expiresAt = activityExpiresAt(state, expiryMs, 0);
    if (expiresAt === undefined) return;
    const timer = setTimeout(
      () => {
        timers.delete(key);
        const current = chats.get(key);
        const expired = current === undefined ? undefined : expireActivity(current, now(), expiryMs, 0);
        if (expired === undefined) return;
        keep(key, expired.state);
        announce(expired.state, expired.derived);
      },
      Math.max(0, expiresAt - now()),
    );
    timer.unref();
    timers.set(key, timer);
  }

  return {
    chats,
    clientCount: () => clients.size,
    apply(input) {
      // As the deployed subscriber: a chat that could not have a state there has none here either.
      if (!isStorableChat(input)) return;
      const key = keyOf(input);
      const result = applyPresence(chats.get(key), input, expiryMs, 0);
      if (result.kind !== 'applied') return;
      keep(key, result.state);
      scheduleExpiry(key, result.state);
      announce(result.state, result.derived);
    },
    serve(request, response) {
      if (request.method !== 'GET') return false;
      const path = (request.url ?? '/').split('?', 1)[0];
      if (path !== '/' && path !== '/state' && path !== '/events') return false;
      if (!LOCAL_HOST.test(request.headers.host ?? '')) {
        response.writeHead(421, { 'content-type': 'text/plain' });
        response.end('the live view answers only http://127.0.0.1 or http://localhost\n');
        return true;
      }
      if (path === '/') {
        response.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
        response.end(PAGE);
        return true;
      }
      if (path === '/state') {
        response.writeHead(200, { 'content-type': 'application/json' });
        response.end(JSON.stringify([...chats.values()].map(stateView)));
        return true;
      }
      if (path === '/events') {
        // Full: the longest-connected client leaves (its page reconnects), so idle connections can
        // never lock the page out.
        while (clients.size >= maxClients) {
          const oldest = clients.values().next().value as ServerResponse;
          clients.delete(oldest);
          oldest.destroy();
        }
        response.writeHead(200, {
          'content-type': 'text/event-stream',
          'cache-control': 'no-store',
          connection: 'keep-alive',
        });
        response.write(`retry: 1000\n\n`);
        for (const state of [...chats.values()].slice(-SNAPSHOT_CHATS))
          response.write(`event: state\ndata: ${JSON.stringify(stateView(state))}\n\n`);
        clients.add(response);
        request.on('close', () => clients.delete(response));
        return true;
      }
      return false;
    },
    close() {
      for (const timer of timers.values()) clearTimeout(timer);
      for (const client of clients) client.end();
      clients.clear();
    },
  };
}

/** The page: no dependencies, no build step. */
const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Z-API chat presence: live</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<style>
  body { font: 15px/1.4 system-ui, sans-serif; margin: 2rem; color: #1b1f23; background: #f6f8fa; }
  .chat, .instance { overflow-wrap: anywhere; }
  .stopped { color: #9a6700; }
  h1 { font-size: 1.3rem; margin: 0 0 .3rem; }
  p.hint { color: #57606a; margin: 0 0 1.2rem; }
  ul { list-style: none; padding: 0; margin: 0; max-width: 44rem; }
  li { background: #fff; border: 1px solid #d0d7de; border-radius: 8px; padding: .7rem 1rem; margin: 0 0 .5rem;
       display: flex; justify-content: space-between; gap: 1rem; }
  .chat { font-weight: 600; }
  .instance { color: #57606a; font-size: .85rem; }
  .what { text-align: right; }
  .typing, .recording { color: #0969da; font-weight: 600; }
  .online { color: #1a7f37; }
  .offline { color: #57606a; }
  #log { margin-top: 1.5rem; color: #57606a; font-size: .85rem; max-width: 44rem; }
  @media (max-width: 480px) { body { margin: 1rem; } li { flex-direction: column; gap: .2rem; } .what { text-align: left; } }
</style>
</head>
<body>
<h1>Z-API chat presence</h1>
<p class="hint">Live, from this receiver. Send one: <code>npm run send -- COMPOSING</code></p>
<ul id="chats"><li id="empty">No presence yet.</li></ul>
<div id="log"></div>
<script>
  const chats = new Map();
  const list = document.getElementById('chats');
  const log = document.getElementById('log');
  const ago = (iso) => {
    const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
    return s < 60 ? s + ' s' : s < 3600 ? Math.round(s / 60) + ' min' : Math.round(s / 3600) + ' h';
  };
  // The last activity that stopped, per chat: "stopped typing 3 s ago" for a minute after.
  const stopped = new Map();
  const MAX_LOG_LINES = 200;
  const keyOf = (c) => c.instanceId + '/' + c.phone + '#' + (c.participant || '');
  const seen = (lastSeen) => {
    // Z-API's lastSeen: epoch seconds or milliseconds.
    const ms = lastSeen < 1e12 ? lastSeen * 1000 : lastSeen;
    const d = new Date(ms);
    return Number.isFinite(ms) ? 'last seen ' + d.toLocaleString() : '';
  };
  function describe(c) {
    if (c.activity === 'typing') return ['typing', 'is typing…'];
    if (c.activity === 'recording') return ['recording', 'is recording audio…'];
    const end = stopped.get(keyOf(c));
    if (c.online && end && Date.now() - end.at < 60000)
      return ['stopped', 'stopped ' + (end.activity === 'recording' ? 'recording' : 'typing') + ' ' + ago(new Date(end.at).toISOString()) + ' ago'];
    if (c.online) return ['online', 'online ' + ago(c.onlineSince || c.statusSince)];
    const last = typeof c.lastSeen === 'number' ? ' · ' + seen(c.lastSeen) : '';
    return ['offline', (c.offlineSince ? 'offline for ' + ago(c.offlineSince) : 'offline') + last];
  }
  // One render a frame, whatever the rate of events; the 500 most recently changed chats are shown.
  let pending = false;
  function schedule() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => { pending = false; render(); });
  }
  const MAX_ROWS = 500;
  function render() {
    list.replaceChildren();
    if (chats.size === 0) { list.innerHTML = '<li id="empty">No presence yet.</li>'; return; }
    for (const c of [...chats.values()].slice(-MAX_ROWS).sort((a, b) => Date.parse(b.updatedAt) - Date.parse(a.updatedAt))) {
      const [kind, text] = describe(c);
      const li = document.createElement('li');
      li.dataset.chat = c.instanceId + '/' + c.phone + (c.participant ? '#' + c.participant : '');
      li.innerHTML = '<div><div class="chat"></div><div class="instance"></div></div><div class="what"></div>';
      li.querySelector('.chat').textContent = c.participant ? c.participant + ' in ' + c.phone : c.phone;
      li.querySelector('.instance').textContent = 'instance ' + c.instanceId;
      const what = li.querySelector('.what');
      what.textContent = text;
      what.className = 'what ' + kind;
      list.append(li);
    }
  }
  let events;
  let retryMs = 1000;
  function connect() {
    events = new EventSource('/events');
    events.addEventListener('open', () => { retryMs = 1000; });
    // A stream the server closed (it was full, or this page fell behind) comes back, with backoff.
    events.addEventListener('error', () => {
      if (events.readyState !== EventSource.CLOSED) return;
      setTimeout(connect, retryMs);
      retryMs = Math.min(30000, retryMs * 2);
    });
    events.addEventListener('state', onState);
    events.addEventListener('derived', onDerived);
  }
  function onState(e) {
    const c = JSON.parse(e.data);
    chats.delete(keyOf(c));
    chats.set(keyOf(c), c);
    // As the server: the 10,000 most recently changed chats.
    while (chats.size > 10000) {
      const oldest = chats.keys().next().value;
      chats.delete(oldest);
      stopped.delete(oldest);
    }
    schedule();
  }
  function onDerived(e) {
    const { detailType, detail } = JSON.parse(e.data);
    if (detailType === 'Z-API Chat Activity Stopped') stopped.set(keyOf(detail), { at: Date.now(), activity: detail.activity });
    const line = document.createElement('div');
    line.textContent = new Date().toLocaleTimeString() + ' ' + detailType + ' · ' +
      (detail.participant ? detail.participant + ' in ' : '') + detail.phone +
      (detail.reason ? ' (' + detail.reason + ')' : '');
    log.prepend(line);
    while (log.childElementCount > MAX_LOG_LINES) log.lastElementChild.remove();
  }
  connect();
  setInterval(schedule, 1000);
</script>
</body>
</html>
`;
