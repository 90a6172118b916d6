/**
 * The live view's state (functions/local/live-view.ts) without a browser: the same derivation as the
 * deployed subscriber, the same chats refused, and typing that stops by itself at the end of its window
 * (local events carry milliseconds, so no whole-second allowance). test/browser/ drives the page.
 */
import { createServer } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createLiveView } from '../../../functions/local/live-view.ts';
import type { PresenceInput } from '../../../functions/presence-store/presence-state.ts';

const T0 = Date.parse('2026-11-25T12:00:00.000Z');
let counter = 0;
const input = (phone: string, status: PresenceInput['status'], time: number, participant?: string) => {
  counter += 1;
  return {
    id: `e-${counter}`,
    time,
    instanceId: 'LOCAL',
    phone,
    ...(participant !== undefined && { participant }),
    status,
  } satisfies PresenceInput;
};

afterEach(() => {
  vi.useRealTimers();
});

describe('live view state', () => {
  it('keeps a state per chat and per group member; a phone holding `#` is refused, as the deployed subscriber refuses it', () => {
    const view = createLiveView({ now: () => T0 });
    view.apply(input('1203-group', 'COMPOSING', T0, '5511888'));
    view.apply(input('1203-group#5511888', 'AVAILABLE', T0 + 1_000));
    view.apply(input('', 'AVAILABLE', T0 + 1_000));
    expect([...view.chats.values()].map((c) => [c.phone, c.participant, c.status])).toEqual([
      ['1203-group', '5511888', 'COMPOSING'],
    ]);
    view.close();
  });

  it('ends a typing with no news after the window exactly (milliseconds: no allowance), with reason expired', () => {
    vi.useFakeTimers({ now: T0 });
    const view = createLiveView({ expiryMs: 25_000 });
    view.apply(input('5511999', 'COMPOSING', T0));
    vi.advanceTimersByTime(24_999);
    expect([...view.chats.values()][0]?.activity).toBe('typing');
    vi.advanceTimersByTime(1);
    expect([...view.chats.values()][0]?.activity).toBeUndefined();
    view.close();
  });
});

describe('live view limits', () => {
  /** A server answering only with the live view, on 127.0.0.1. */
  async function serveView(view: ReturnType<typeof createLiveView>) {
    const server = createServer((request, response) => {
      if (!view.serve(request, response)) {
        response.writeHead(404);
        response.end();
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    return { server, port };
  }

  /** A raw client that asks for /events and then never reads. */
  function lazyClient(port: number, host = `127.0.0.1:${port}`) {
    const socket = connect(port, '127.0.0.1');
    socket.write(`GET /events HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
    let closed = false;
    socket.on('close', () => {
      closed = true;
    });
    socket.on('error', () => {});
    socket.pause();
    return { socket, closed: () => closed };
  }

  it('answers only loopback Host headers (no DNS rebinding): 421 for another name', async () => {
    const view = createLiveView();
    const { server, port } = await serveView(view);
    try {
      for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`, 'LOCALHOST']) {
        const status = await rawStatus(port, '/state', host);
        expect(status, host).toBe(200);
      }
      for (const host of ['attacker.example.com', `evil.localhost.example:${port}`, '127.0.0.1.nip.io', '']) {
        expect(await rawStatus(port, '/state', host), host).toBe(421);
        expect(await rawStatus(port, '/', host), host).toBe(421);
      }
    } finally {
      view.close();
      server.close();
    }
  });

  it('serves at most maxClients event streams: a new one takes the place of the longest-connected (idle connections never lock the page out)', async () => {
    const view = createLiveView({ maxClients: 2 });
    const { server, port } = await serveView(view);
    const a = lazyClient(port);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const b = lazyClient(port);
    try {
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(view.clientCount()).toBe(2);
      expect(await rawStatus(port, '/events', `127.0.0.1:${port}`)).toBe(200);
      await new Promise((resolve) => setTimeout(resolve, 100));
      // The oldest (a) left for it; the newest has gone again (rawStatus reads its status and hangs up).
      expect(view.clientCount()).toBe(1);
      a.socket.resume();
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(a.closed()).toBe(true);
      expect(b.closed()).toBe(false);
    } finally {
      a.socket.destroy();
      b.socket.destroy();
      view.close();
      server.closeAllConnections();
      server.close();
    }
  });

  it('drops clients that do not read: 10 of them and 30,000 callbacks stay within 50 MB of the baseline', async () => {
    const view = createLiveView();
    const { server, port } = await serveView(view);
    const clients = Array.from({ length: 10 }, () => lazyClient(port));
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(view.clientCount()).toBe(10);
    // What the process holds (heap and buffers), after a full collection: not the worker's RSS, which
    // other tests move.
    v8.setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const held = () => {
      gc();
      const m = process.memoryUsage();
      return m.heapUsed + m.external + m.arrayBuffers;
    };
    const baseline = held();
    try {
      for (let i = 0; i < 30_000; i++) {
        const status = (['AVAILABLE', 'COMPOSING', 'PAUSED', 'UNAVAILABLE'] as const)[i % 4] ?? 'AVAILABLE';
        view.apply(input(`55119${String(i % 3_000).padStart(8, '0')}`, status, T0 + i * 10));
        if (i % 1_000 === 0) await new Promise((resolve) => setImmediate(resolve));
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
      const grown = (held() - baseline) / 1024 / 1024;
      expect(grown).toBeLessThan(50);
      // Every one of them dropped by the server (a paused client does not even see it yet).
      expect(view.clientCount()).toBe(0);
      expect(view.chats.size).toBe(3_000);
    } finally {
      for (const c of clients) c.socket.destroy();
      view.close();
      server.closeAllConnections();
      server.close();
    }
  }, 60_000);

  it('keeps at most maxChats chats, the least recently changed leaving first', () => {
    const view = createLiveView({ maxChats: 3, now: () => T0 });
    for (const phone of ['551', '552', '553', '554']) view.apply(input(phone, 'AVAILABLE', T0));
    view.apply(input('552', 'COMPOSING', T0 + 1));
    view.apply(input('555', 'AVAILABLE', T0 + 2));
    expect([...view.chats.values()].map((c) => c.phone)).toEqual(['554', '552', '555']);
    view.close();
  });
});

/** The status of a GET with the given Host header (raw, so any Host can be sent). */
function rawStatus(port: number, path: string, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    socket.write(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
    let head = '';
    socket.on('data', (chunk: Buffer) => {
      head += chunk.toString();
      const match = /^HTTP\/1\.1 (\d{3})/.exec(head);
      if (match) {
        resolve(Number(match[1]));
        socket.destroy();
      }
    });
    socket.on('error', reject);
  });
}
