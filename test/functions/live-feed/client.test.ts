/**
 * The browser client (functions/live-feed/client.ts), in Node:
 * - against a scripted socket and snapshot, the rules of a view: by sequence per chat (stale, duplicate
 *   and reordered events dropped), a gap fetches the snapshot again, typing clears 25 s after the last
 *   news (here a shorter window) and news keeps it up, a keep-alive that stops reconnects;
 * - against the local twin (the same protocol as AppSync Events), with `ws`: snapshot then live, a
 *   reconnect fetches the snapshot again, a group removed takes the instance away, an expired token is
 *   replaced by a fresh one, 1,000 chats in pages.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import {
  type ChatPresence,
  connectPresenceFeed,
  type FeedConnectionState,
  type FeedProblem,
  type FeedSocket,
  type PresenceFeedOptions,
} from '../../../functions/live-feed/client.ts';
import { send } from '../../../functions/local/send.ts';
import { type LocalServer, startLocalServer } from '../../../functions/local/server.ts';
import type { FeedMessage, Snapshot } from '../../../functions/shared/contract/live-feed-contract.ts';
import { DERIVED_DETAIL_TYPES } from '../../../functions/shared/contract/presence-contract.ts';

const A = '3C01A2B3C4D5E6F7A8B9C0D1E2F3A4B5';
const B = '9F8E7D6C5B4A39281706F5E4D3C2B1A0';
const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
async function until(check: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const started = Date.now();
  while (!check()) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await wait(10);
  }
}

/** A socket the test drives: it answers connection_init and subscribe as AppSync does, and records sends. */
class ScriptedSocket implements FeedSocket {
  static last: ScriptedSocket | undefined;
  readyState = 0;
  sent: Array<Record<string, unknown>> = [];
  onopen: ((event: unknown) => void) | null = null;
  onmessage: ((event: { data: unknown }) => void) | null = null;
  onclose: ((event: unknown) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;
  constructor(
    readonly url: string,
    readonly protocols: string[],
  ) {
    ScriptedSocket.last = this;
    setTimeout(() => {
      this.readyState = 1;
      this.onopen?.({});
    }, 0);
  }
  send(data: string) {
    const message = JSON.parse(data) as Record<string, unknown>;
    this.sent.push(message);
    if (message.type === 'connection_init')
      this.deliver({ type: 'connection_ack', connectionTimeoutMs: 300_000 });
    if (message.type === 'subscribe') this.deliver({ type: 'subscribe_success', id: message.id });
  }
  close() {
    if (this.readyState === 3) return;
    this.readyState = 3;
    setTimeout(() => this.onclose?.({}), 0);
  }
  deliver(message: unknown) {
    setTimeout(() => this.onmessage?.({ data: JSON.stringify(message) }), 0);
  }
  /** A feed message on the subscription of `instanceId`. */
  event(instanceId: string, message: FeedMessage) {
    const subscription = this.sent.find(
      (m) => m.type === 'subscribe' && m.channel === `/presence/${instanceId}`,
    );
    this.deliver({ type: 'data', id: subscription?.id, event: JSON.stringify(message) });
  }
}

const at = (ms: number) => new Date(ms).toISOString();
function derived(
  phone: string,
  sequence: number,
  current: { online: boolean; activity: 'typing' | 'recording' | null },
  when = Date.now(),
  instanceId = A,
): FeedMessage {
  const type =
    current.activity !== null ? DERIVED_DETAIL_TYPES.activityStarted : DERIVED_DETAIL_TYPES.cameOnline;
  return {
    kind: 'derived',
    id: `e-${phone}-${sequence}`,
    type,
    detail: {
      instanceId,
      phone,
      at: at(when),
      sequence,
      current,
      ...(current.activity !== null && { activity: current.activity }),
    } as never,
  };
}
const news = (phone: string, activity: 'typing' | 'recording', when = Date.now()): FeedMessage => ({
  kind: 'news',
  id: `n-${phone}-${when}`,
  instanceId: A,
  phone,
  activity,
  at: at(when),
});

describe('the client, against a scripted socket', () => {
  let snapshots: Record<string, Snapshot>;
  let fetched: string[];
  let changes: ChatPresence[];
  let states: FeedConnectionState[];
  const fakeFetch = (async (url: URL | string) => {
    const instanceId = decodeURIComponent(new URL(String(url)).pathname.split('/')[2] ?? '');
    fetched.push(instanceId);
    const snapshot = snapshots[instanceId] ?? { instanceId, at: at(Date.now()), chats: [] };
    return new Response(JSON.stringify(snapshot), { status: 200 });
  }) as typeof fetch;
  const connect = (extra: Partial<PresenceFeedOptions> = {}) =>
    connectPresenceFeed({
      realtimeUrl: 'wss://example.appsync-realtime-api.sa-east-1.amazonaws.com/event/realtime',
      httpDomain: 'example.appsync-api.sa-east-1.amazonaws.com',
      snapshotUrl: 'https://api.example.com/instances/{instanceId}/presence',
      token: () => 'agent-token',
      instanceIds: [A],
      webSocket: ScriptedSocket,
      fetch: fakeFetch,
      onChange: (chat) => changes.push(chat),
      onState: (state) => states.push(state),
      ...extra,
    });
  beforeEach(() => {
    snapshots = {};
    fetched = [];
    changes = [];
    states = [];
  });

  it('connects with the token in the header subprotocol, subscribes, then fetches the snapshot', async () => {
    snapshots[A] = {
      instanceId: A,
      at: at(Date.now()),
      chats: [{ phone: '5511', online: true, activity: null, sequence: 4, updatedAt: at(Date.now()) }],
    };
    const feed = connect();
    await until(() => feed.snapshotsFetched === 1);
    const socket = ScriptedSocket.last as ScriptedSocket;
    expect(socket.protocols[0]).toBe('aws-appsync-event-ws');
    const header = JSON.parse(Buffer.from((socket.protocols[1] as string).slice(7), 'base64url').toString());
    expect(header).toEqual({
      host: 'example.appsync-api.sa-east-1.amazonaws.com',
      Authorization: 'agent-token',
    });
    expect(socket.sent.map((m) => m.type)).toEqual(['connection_init', 'subscribe']);
    expect(socket.sent[1]).toMatchObject({
      channel: `/presence/${A}`,
      authorization: { host: 'example.appsync-api.sa-east-1.amazonaws.com', Authorization: 'agent-token' },
    });
    expect(states).toEqual(['connecting', 'live']);
    expect(feed.chats()).toEqual([
      expect.objectContaining({ phone: '5511', online: true, activity: null, sequence: 4 }),
    ]);
    feed.close();
    expect(socket.sent.at(-1)).toMatchObject({ type: 'unsubscribe' });
    expect(states.at(-1)).toBe('closed');
  });

  it('applies by sequence: a stale, duplicate or reordered event changes nothing', async () => {
    const feed = connect();
    await until(() => feed.state === 'live');
    const socket = ScriptedSocket.last as ScriptedSocket;
    socket.event(A, derived('5511', 10, { online: true, activity: 'typing' }));
    socket.event(A, derived('5511', 11, { online: true, activity: null }));
    socket.event(A, derived('5511', 10, { online: true, activity: 'typing' })); // duplicate, late
    socket.event(A, derived('5511', 9, { online: false, activity: null })); // older
    await wait(30);
    expect(feed.chats()).toEqual([
      expect.objectContaining({ phone: '5511', online: true, activity: null, sequence: 11 }),
    ]);
    expect(changes.map((c) => c.sequence)).toEqual([10, 11]);
    feed.close();
  });

  it('any arrival order of a chat’s events ends with the highest sequence’s presence (property)', async () => {
    const events = [
      derived('5512', 100, { online: true, activity: null }),
      derived('5512', 101, { online: true, activity: 'typing' }),
      derived('5512', 102, { online: true, activity: 'recording' }),
      derived('5512', 103, { online: false, activity: null }),
    ];
    const orders = [
      [0, 1, 2, 3],
      [3, 2, 1, 0],
      [1, 3, 0, 2],
      [2, 0, 3, 1, 3, 3],
    ];
    for (const order of orders) {
      const feed = connect();
      await until(() => feed.state === 'live');
      for (const i of order) (ScriptedSocket.last as ScriptedSocket).event(A, events[i] as FeedMessage);
      await wait(30);
      expect(feed.chats(), String(order)).toEqual([
        expect.objectContaining({ online: false, activity: null, sequence: 103 }),
      ]);
      feed.close();
    }
  });

  it('fetches the snapshot again when a chat’s sequence jumps (an event was lost)', async () => {
    const feed = connect();
    await until(() => feed.snapshotsFetched === 1);
    const socket = ScriptedSocket.last as ScriptedSocket;
    socket.event(A, derived('5513', 20, { online: true, activity: null }));
    socket.event(A, derived('5513', 21, { online: true, activity: 'typing' }));
    await wait(400);
    expect(fetched).toEqual([A]);
    socket.event(A, derived('5513', 24, { online: false, activity: null }));
    await until(() => fetched.length === 2, 10_000, 'the refetch');
    expect(feed.chats()[0]).toMatchObject({ online: false, sequence: 24 });
    feed.close();
  });

  it('clears typing by itself after the window since the last news; news keeps it up; the stop is not needed', async () => {
    const feed = connect({ activityExpiryMs: 400 });
    await until(() => feed.state === 'live');
    const socket = ScriptedSocket.last as ScriptedSocket;
    socket.event(A, derived('5514', 30, { online: true, activity: 'typing' }));
    await wait(250);
    socket.event(A, news('5514', 'typing'));
    await wait(250);
    expect(feed.chats()[0]?.activity).toBe('typing'); // 500 ms after the start, 250 after the news
    await wait(300);
    expect(feed.chats()[0]).toMatchObject({ activity: null, online: true, sequence: 30 });
    // News never starts an activity (only a derived event does), nor one of another kind.
    socket.event(A, news('5514', 'typing'));
    socket.event(A, news('5599', 'recording'));
    await wait(30);
    expect(feed.chats().map((c) => [c.phone, c.activity])).toEqual([['5514', null]]);
    feed.close();
  });

  it('reconnects when the keep-alives stop, and fetches the snapshot again', async () => {
    const feed = connect({ reconnect: { initialMs: 20, maxMs: 40 } });
    await until(() => feed.snapshotsFetched === 1);
    const first = ScriptedSocket.last as ScriptedSocket;
    first.deliver({ type: 'connection_ack', connectionTimeoutMs: 100 });
    await until(() => ScriptedSocket.last !== first, 10_000, 'a new socket');
    await until(() => feed.snapshotsFetched === 2 && feed.state === 'live', 10_000, 'the second snapshot');
    expect(first.sent.filter((m) => m.type === 'subscribe')).toHaveLength(1);
    expect(states, JSON.stringify(states)).toEqual(['connecting', 'live', 'reconnecting', 'live']);
    feed.close();
  });

  it('shows a hostile chat name as the same string', async () => {
    const hostile = `"><img src=x onerror=alert(1)></script>\\ 😀\n`;
    const feed = connect();
    await until(() => feed.state === 'live');
    (ScriptedSocket.last as ScriptedSocket).event(A, derived(hostile, 1, { online: true, activity: null }));
    await until(() => feed.chats().length === 1);
    expect(feed.chats()[0]?.phone).toBe(hostile);
    feed.close();
  });
});

describe('the client, against the local twin', () => {
  const MASTER = 'client-master-0123456789abcdefghijklmnopqrst';
  let server: LocalServer;
  const post = (status: string, instance: string, phone: string) =>
    send(
      [status, '--url', server.baseUrl, '--instance', instance, '--phone', phone],
      { WEBHOOK_SECRET: MASTER },
      () => {},
    );
  const feedOn = (token: () => string, instanceIds: string[], extra: Partial<PresenceFeedOptions> = {}) => {
    const problems: FeedProblem[] = [];
    const feed = connectPresenceFeed({
      realtimeUrl: server.realtimeUrl,
      httpDomain: server.httpDomain,
      snapshotUrl: server.snapshotUrl,
      token,
      instanceIds,
      webSocket: WebSocket as unknown as PresenceFeedOptions['webSocket'],
      onProblem: (problem) => problems.push(problem),
      reconnect: { initialMs: 20, maxMs: 100 },
      ...extra,
    });
    return { feed, problems };
  };
  beforeAll(async () => {
    server = await startLocalServer({
      port: 0,
      secret: MASTER,
      out: () => {},
      err: () => {},
      activityExpiryMs: 1_000,
    });
  });
  afterAll(() => server.close());

  it('starts from the snapshot, then follows the feed', async () => {
    await post('AVAILABLE', A, '5521000000001');
    const { feed } = feedOn(() => server.issueToken([A]), [A]);
    await until(() => feed.snapshotsFetched === 1 && feed.chats().length === 1, 10_000, 'the snapshot');
    expect(feed.chats()[0]).toMatchObject({ phone: '5521000000001', online: true, activity: null });
    await post('COMPOSING', A, '5521000000001');
    await until(() => feed.chats()[0]?.activity === 'typing', 10_000, 'typing');
    // The twin's store expires it after 1 s; the stop arrives and the view follows.
    await until(() => feed.chats()[0]?.activity === null, 10_000, 'the stop');
    feed.close();
  });

  it('fetches the snapshot again after a reconnect, and catches up on what it missed', async () => {
    const { feed } = feedOn(() => server.issueToken([B]), [B], { reconnect: { initialMs: 400, maxMs: 400 } });
    await until(() => feed.state === 'live' && feed.snapshotsFetched === 1);
    // The connections drop (AppSync's end, a network blip); a callback arrives while this view is away.
    server.dropFeedConnections();
    await until(() => feed.state === 'reconnecting', 10_000, 'reconnecting');
    await post('RECORDING', B, '5521000000002');
    await until(() => feed.state === 'live' && feed.snapshotsFetched === 2, 10_000, 'the reconnect');
    expect(feed.chats(B)).toEqual([
      expect.objectContaining({ phone: '5521000000002', activity: 'recording' }),
    ]);
    feed.close();
  });

  it('an agent whose group is removed loses the instance at its next token', async () => {
    let groups = [A, B];
    const { feed, problems } = feedOn(() => server.issueToken(groups), [A, B]);
    await post('AVAILABLE', A, '5521000000003');
    await until(() => feed.state === 'live' && feed.chats(A).length >= 1, 10_000, 'A shown');
    groups = [B];
    // The next connection (a token refresh, a reconnect) carries the new groups.
    await server.close();
    server = await startLocalServer({
      port: Number(new URL(server.baseUrl).port),
      secret: MASTER,
      out: () => {},
      err: () => {},
    });
    await until(
      () => problems.some((p) => p.instanceId === A && p.reason === 'Unauthorized'),
      5_000,
      'A refused',
    );
    expect(feed.chats(A)).toEqual([]);
    expect(problems.some((p) => p.instanceId === B)).toBe(false);
    feed.close();
  });

  it('replaces an expired token by asking for a fresh one', async () => {
    let calls = 0;
    const { feed } = feedOn(() => {
      calls += 1;
      return calls === 1 ? server.issueToken([A], -1) : server.issueToken([A]);
    }, [A]);
    await until(() => feed.state === 'live', 10_000, 'live with the fresh token');
    expect(calls).toBeGreaterThanOrEqual(2);
    feed.close();
  });

  it('reads an instance of 1,000 chats, page by page', async () => {
    const C = 'C0FFEE00C0FFEE00C0FFEE00C0FFEE00';
    for (let i = 0; i < 1_000; i += 50) {
      await Promise.all(
        Array.from({ length: 50 }, (_, j) => post('AVAILABLE', C, `5531${String(i + j).padStart(6, '0')}`)),
      );
    }
    const { feed } = feedOn(() => server.issueToken([C]), [C]);
    await until(() => feed.snapshotsFetched === 1, 10_000, 'the snapshot');
    expect(feed.chats(C)).toHaveLength(1_000);
    feed.close();
  }, 60_000);
});

describe('the client, against what goes wrong', () => {
  const base = (extra: Partial<PresenceFeedOptions> = {}) =>
    connectPresenceFeed({
      realtimeUrl: 'wss://example/event/realtime',
      httpDomain: 'example',
      snapshotUrl: 'https://api.example.com/instances/{instanceId}/presence',
      token: () => 'agent-token',
      instanceIds: [A],
      webSocket: ScriptedSocket,
      fetch: (async () =>
        new Response(
          JSON.stringify({ instanceId: A, at: new Date().toISOString(), chats: [] }),
        )) as typeof fetch,
      ...extra,
    });

  it('times typing on this machine’s clock: a browser minutes fast or slow still shows it, and clears it after the window', async () => {
    for (const skew of [60_000, -300_000]) {
      const feed = base({ activityExpiryMs: 300, now: () => Date.now() + skew });
      await until(() => feed.state === 'live');
      (ScriptedSocket.last as ScriptedSocket).event(
        A,
        derived('5561', 5, { online: true, activity: 'typing' }),
      );
      await wait(100);
      expect(feed.chats()[0]?.activity, `skew ${skew}`).toBe('typing');
      await wait(400);
      expect(feed.chats()[0]?.activity, `skew ${skew}`).toBe(null);
      feed.close();
    }
  });

  it('ignores a malformed event before it changes anything', async () => {
    const feed = base();
    await until(() => feed.state === 'live');
    const socket = ScriptedSocket.last as ScriptedSocket;
    socket.event(A, derived('5562', 3, { online: true, activity: null }));
    const subscription = socket.sent.find((m) => m.type === 'subscribe')?.id;
    for (const event of [
      '{not json',
      '{"kind":"derived","detail":{"instanceId":"x"}}',
      JSON.stringify({
        kind: 'derived',
        id: 'x',
        type: 'T',
        detail: { instanceId: A, phone: '5562', at: 'now', sequence: 9, current: null },
      }),
    ]) {
      socket.deliver({ type: 'data', id: subscription, event });
    }
    await wait(50);
    expect(feed.chats()).toEqual([expect.objectContaining({ phone: '5562', sequence: 3, online: true })]);
    feed.close();
  });

  it('says so when the token provider throws or never answers, and tries again', async () => {
    const problems: FeedProblem[] = [];
    let calls = 0;
    const feed = base({
      token: () => {
        calls += 1;
        if (calls === 1) throw new Error('signed out');
        if (calls === 2) return new Promise<string>(() => {});
        return 'agent-token';
      },
      requestTimeoutMs: 200,
      reconnect: { initialMs: 20, maxMs: 40 },
      onProblem: (p) => problems.push(p),
    });
    await until(() => feed.state === 'live', 5_000, 'live on the third token');
    expect(problems.filter((p) => p.reason === 'token-failed')).toHaveLength(2);
    feed.close();
  });

  it('retries a snapshot that failed or could not be read, waiting a 429’s Retry-After', async () => {
    const answers = [
      new Response('busy', { status: 429, headers: { 'retry-after': '0' } }),
      new Response('<html>oops</html>', { status: 200 }),
      new Response('{"chats":"no"}', { status: 200 }),
      new Response(
        JSON.stringify({
          instanceId: A,
          at: new Date().toISOString(),
          chats: [
            { phone: '5563', online: true, activity: null, sequence: 2, updatedAt: new Date().toISOString() },
          ],
        }),
      ),
    ];
    const problems: FeedProblem[] = [];
    const feed = base({
      fetch: (async () => answers.shift() as Response) as typeof fetch,
      reconnect: { initialMs: 10, maxMs: 20 },
      onProblem: (p) => problems.push(p),
    });
    await until(() => feed.snapshotsFetched === 1, 5_000, 'the snapshot');
    expect(problems.map((p) => p.reason)).toEqual(['snapshot-429', 'snapshot-failed', 'snapshot-unreadable']);
    expect(feed.chats()).toEqual([expect.objectContaining({ phone: '5563' })]);
    feed.close();
  });

  it('keeps backing off when connections are cut as soon as they are up (no reconnect storm)', async () => {
    let sockets = 0;
    class CutSocket extends ScriptedSocket {
      constructor(url: string, protocols: string[]) {
        super(url, protocols);
        sockets += 1;
      }
      override deliver(message: unknown) {
        super.deliver(message);
        if ((message as { type?: string }).type === 'subscribe_success') setTimeout(() => this.close(), 5);
      }
    }
    const feed = base({ webSocket: CutSocket, reconnect: { initialMs: 100, maxMs: 10_000 } });
    await wait(2_000);
    feed.close();
    // 100, 200, 400, 800 ms: about 5 connections in 2 s (without the fix: one every 50-100 ms, about 25).
    expect(sockets).toBeLessThanOrEqual(7);
  });

  it('reports a refused connection (an expired token) and starts again', async () => {
    class RefusingSocket extends ScriptedSocket {
      override send(data: string) {
        const message = JSON.parse(data) as Record<string, unknown>;
        this.sent.push(message);
        if (message.type === 'connection_init')
          this.deliver({ type: 'connection_error', errors: [{ errorType: 'UnauthorizedException' }] });
      }
    }
    const problems: FeedProblem[] = [];
    const feed = base({
      webSocket: RefusingSocket,
      reconnect: { initialMs: 10, maxMs: 20 },
      onProblem: (p) => problems.push(p),
    });
    await until(() => problems.length >= 2, 5_000, 'two refusals');
    expect(problems[0]).toEqual({ reason: 'connection-UnauthorizedException' });
    feed.close();
  });

  it('refuses to start without a WebSocket, saying what to pass', () => {
    const original = (globalThis as { WebSocket?: unknown }).WebSocket;
    (globalThis as { WebSocket?: unknown }).WebSocket = undefined;
    try {
      expect(() =>
        connectPresenceFeed({
          realtimeUrl: 'wss://x',
          httpDomain: 'x',
          snapshotUrl: 'https://x/{instanceId}',
          token: () => 't',
          instanceIds: [A],
        }),
      ).toThrow(/pass webSocket, e\.g\. the `ws` package/);
    } finally {
      (globalThis as { WebSocket?: unknown }).WebSocket = original;
    }
  });
});
