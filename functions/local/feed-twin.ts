/**
 * The local twin of the live feed: AppSync Events' real-time WebSocket protocol at `/event/realtime` on
 * `npm start`'s server, so the browser client (and the example page) run locally exactly as against AWS.
 *
 * - Subprotocols `aws-appsync-event-ws` and `header-<base64url {"host", "Authorization"}>`; the token must
 *   be a local agent token (functions/local/local-tokens.ts) and `host` this server's.
 * - `connection_init` -> `connection_ack {connectionTimeoutMs}`, then `ka` every `keepAliveMs`.
 * - `subscribe {id, channel, authorization}` runs the feed's shipped onSubscribe handler (the deployed
 *   bundle, lib/appsync-code.ts) -> `subscribe_success {id}` or `subscribe_error {id, errors}`.
 * - `data {id, event}` (the event a JSON string), `unsubscribe` -> `unsubscribe_success`; `publish` is
 *   refused (only IAM publishes to the feed).
 *
 * Limits, as AppSync's or to keep a bad client from growing the process: 200 subscriptions a connection,
 * 1,000 connections, 256 KB a message, and a client that leaves over 1 MiB unread is dropped. Only a
 * loopback Host is served (421 otherwise), so no page on another site reaches it through DNS rebinding,
 * and only a loopback Origin or none (403 otherwise); a socket without a valid connection_init within 5 s
 * is closed.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { type WebSocket, WebSocketServer } from 'ws';
import { FEED_LIMITS, FEED_NAMESPACE } from '../live-feed/settings.ts';
import { AppSyncHandlerError, type AppSyncHandlers } from './appsync-runtime.ts';
import { LOCAL_ISSUER, verifyLocalToken } from './local-tokens.ts';

export const REALTIME_PATH = '/event/realtime';
const PROTOCOL = 'aws-appsync-event-ws';
const LOCAL_HOST = /^(?:127\.0\.0\.1|localhost|\[::1\])(?::\d{1,5})?$/i;
/** A page of this machine (any port), or no page at all (a script, a test): the Origins served. */
const LOCAL_ORIGIN = /^https?:\/\/(?:127\.0\.0\.1|localhost|\[::1\])(?::\d{1,5})?$/i;
/** A connection that has not sent a valid connection_init by then is closed. */
const INIT_TIMEOUT_MS = 5_000;
const MAX_UNREAD_BYTES = 1024 * 1024;
const CHANNEL = /^\/[A-Za-z0-9-]{1,50}(?:\/[A-Za-z0-9_*-]{1,128}){0,4}$/;

export interface FeedTwinOptions {
  /** The key local agent tokens are signed with. */
  readonly tokenKey: Buffer;
  /** The feed's onSubscribe handler, as shipped. */
  readonly handlers: AppSyncHandlers;
  /** The host agents must name (`127.0.0.1:PORT`), once the server listens. */
  readonly host: () => string;
  /** @default 60_000 */
  readonly keepAliveMs?: number;
  /** What connection_ack tells the client. @default 300_000 */
  readonly connectionTimeoutMs?: number;
  /** @default 1_000 */
  readonly maxConnections?: number;
}

export interface FeedTwin {
  /** Takes the upgrade of `/event/realtime`; false for any other path. */
  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): boolean;
  /** Sends an event (a JSON string) to every subscriber of `channel`; the number of deliveries. */
  publish(channel: string, event: string): number;
  connectionCount(): number;
  /** Drops every connection at once (as when AppSync's connections end): the clients reconnect. */
  dropConnections(): void;
  close(): Promise<void>;
}

interface Connection {
  readonly socket: WebSocket;
  readonly claims: Record<string, unknown> | undefined;
  readonly remote: string;
  initialized: boolean;
  readonly subscriptions: Map<string, string>;
  /** Subscriptions whose handler is still running (they count towards the limit). */
  readonly pending: Set<string>;
  keepAlive?: ReturnType<typeof setInterval>;
}

const decodeHeader = (protocol: string): { host?: unknown; Authorization?: unknown } | undefined => {
  try {
    return JSON.parse(Buffer.from(protocol.slice('header-'.length), 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
};

export function createFeedTwin(options: FeedTwinOptions): FeedTwin {
  const keepAliveMs = options.keepAliveMs ?? 60_000;
  const connectionTimeoutMs = options.connectionTimeoutMs ?? 300_000;
  const maxConnections = options.maxConnections ?? 1_000;
  const connections = new Set<Connection>();
  const server = new WebSocketServer({
    noServer: true,
    maxPayload: 256 * 1024,
    handleProtocols: (protocols) => (protocols.has(PROTOCOL) ? PROTOCOL : false),
  });

  const authorize = (auth: { host?: unknown; Authorization?: unknown } | undefined) =>
    auth !== undefined && auth.host === options.host()
      ? verifyLocalToken(options.tokenKey, auth.Authorization)
      : undefined;

  const send = (connection: Connection, message: unknown) => {
    if (connection.socket.readyState !== connection.socket.OPEN) return;
    if (connection.socket.bufferedAmount > MAX_UNREAD_BYTES) {
      connection.socket.terminate();
      return;
    }
    connection.socket.send(JSON.stringify(message));
  };
  const errors = (errorType: string, message: string) => [{ errorType, message }];

  async function subscribe(connection: Connection, message: Record<string, unknown>): Promise<void> {
    const id = message.id;
    if (typeof id !== 'string' || id === '' || id.length > 128) {
      return void send(connection, {
        type: 'error',
        errors: errors('BadRequestException', 'subscribe needs an id'),
      });
    }
    const channel = message.channel;
    const claims = authorize(
      message.authorization as { host?: unknown; Authorization?: unknown } | undefined,
    );
    if (claims === undefined) {
      return void send(connection, {
        type: 'subscribe_error',
        id,
        errors: errors('UnauthorizedException', 'the authorization is not valid'),
      });
    }
    if (typeof channel !== 'string' || !CHANNEL.test(channel)) {
      return void send(connection, {
        type: 'subscribe_error',
        id,
        errors: errors('BadRequestException', 'Invalid Channel Format'),
      });
    }
    if (connection.subscriptions.has(id) || connection.pending.has(id)) {
      return void send(connection, {
        type: 'subscribe_error',
        id,
        errors: errors('BadRequestException', 'the id is in use'),
      });
    }
    if (connection.subscriptions.size + connection.pending.size >= FEED_LIMITS.subscriptionsPerConnection) {
      return void send(connection, {
        type: 'subscribe_error',
        id,
        errors: errors(
          'LimitExceededException',
          `at most ${FEED_LIMITS.subscriptionsPerConnection} subscriptions a connection`,
        ),
      });
    }
    const segments = channel.split('/').slice(1);
    if (segments[0] !== FEED_NAMESPACE) {
      return void send(connection, {
        type: 'subscribe_error',
        id,
        errors: errors('BadRequestException', 'no such channel namespace'),
      });
    }
    const groups = claims['cognito:groups'];
    connection.pending.add(id);
    try {
      await options.handlers.subscribe({
        identity: {
          sub: claims.sub,
          issuer: LOCAL_ISSUER,
          username: claims.username,
          claims,
          groups: Array.isArray(groups) ? groups : null,
          sourceIp: [connection.remote],
          defaultAuthStrategy: 'ALLOW',
        },
        info: {
          channel: { path: channel, segments },
          channelNamespace: { name: segments[0] },
          operation: 'SUBSCRIBE',
        },
      });
    } catch (error) {
      const type = error instanceof AppSyncHandlerError ? error.errorType : 'HandlerError';
      return void send(connection, {
        type: 'subscribe_error',
        id,
        errors: errors(type, 'the subscription was refused'),
      });
    } finally {
      connection.pending.delete(id);
    }
    if (connection.socket.readyState !== connection.socket.OPEN) return;
    connection.subscriptions.set(id, channel);
    send(connection, { type: 'subscribe_success', id });
  }

  function onMessage(connection: Connection, raw: string): void {
    let message: Record<string, unknown>;
    try {
      message = JSON.parse(raw) as Record<string, unknown>;
      if (typeof message !== 'object' || message === null) throw new Error('not an object');
    } catch {
      return void send(connection, {
        type: 'error',
        errors: errors('BadRequestException', 'the message is not JSON'),
      });
    }
    if (message.type === 'connection_init') {
      if (connection.claims === undefined) {
        send(connection, {
          type: 'connection_error',
          errors: errors('UnauthorizedException', 'the connection authorization is not valid'),
        });
        connection.socket.close(4401, 'unauthorized');
        return;
      }
      if (connection.initialized) return;
      connection.initialized = true;
      send(connection, { type: 'connection_ack', connectionTimeoutMs });
      connection.keepAlive = setInterval(() => send(connection, { type: 'ka' }), keepAliveMs);
      connection.keepAlive.unref();
      return;
    }
    if (!connection.initialized) {
      return void send(connection, {
        type: 'error',
        errors: errors('BadRequestException', 'send connection_init first'),
      });
    }
    switch (message.type) {
      case 'subscribe':
        void subscribe(connection, message);
        return;
      case 'unsubscribe': {
        const id = String(message.id ?? '');
        if (connection.subscriptions.delete(id)) send(connection, { type: 'unsubscribe_success', id });
        else
          send(connection, {
            type: 'unsubscribe_error',
            id,
            errors: errors('BadRequestException', 'no such subscription'),
          });
        return;
      }
      case 'publish':
        // Only the feed's publisher (IAM) may publish; agents' tokens never can.
        return void send(connection, {
          type: 'publish_error',
          id: String(message.id ?? ''),
          errors: errors('UnauthorizedException', 'publishing to the live feed needs IAM'),
        });
      default:
        return void send(connection, {
          type: 'error',
          errors: errors('BadRequestException', 'unknown message type'),
        });
    }
  }

  return {
    handleUpgrade(request, socket, head) {
      if ((request.url ?? '').split('?')[0] !== REALTIME_PATH) return false;
      const refuse = (status: string) => {
        socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      };
      if (!LOCAL_HOST.test(request.headers.host ?? '')) {
        refuse('421 Misdirected Request');
        return true;
      }
      // A page on another site may open sockets to 127.0.0.1 (WebSockets have no CORS): only this
      // machine's pages, or no page at all, are served.
      const origin = request.headers.origin;
      if (origin !== undefined && !LOCAL_ORIGIN.test(origin)) {
        refuse('403 Forbidden');
        return true;
      }
      if (connections.size >= maxConnections) {
        refuse('503 Service Unavailable');
        return true;
      }
      const offered = String(request.headers['sec-websocket-protocol'] ?? '')
        .split(',')
        .map((p) => p.trim());
      if (!offered.includes(PROTOCOL)) {
        refuse('400 Bad Request');
        return true;
      }
      const header = offered.find((p) => p.startsWith('header-'));
      server.handleUpgrade(request, socket, head, (ws) => {
        const connection: Connection = {
          socket: ws,
          claims: authorize(header === undefined ? undefined : decodeHeader(header)),
          remote: request.socket.remoteAddress ?? '127.0.0.1',
          initialized: false,
          subscriptions: new Map(),
          pending: new Set(),
        };
        connections.add(connection);
        // A socket that never authenticates must not hold a place.
        const init = setTimeout(() => {
          if (!connection.initialized) ws.terminate();
        }, INIT_TIMEOUT_MS);
        init.unref();
        ws.on('message', (data, isBinary) => {
          if (isBinary)
            return void send(connection, {
              type: 'error',
              errors: errors('BadRequestException', 'text messages only'),
            });
          onMessage(connection, data.toString());
        });
        ws.on('close', () => {
          clearTimeout(init);
          if (connection.keepAlive !== undefined) clearInterval(connection.keepAlive);
          connections.delete(connection);
        });
        ws.on('error', () => ws.terminate());
      });
      return true;
    },
    publish(channel, event) {
      let deliveries = 0;
      for (const connection of connections) {
        for (const [id, subscribed] of connection.subscriptions) {
          if (subscribed !== channel) continue;
          send(connection, { type: 'data', id, event });
          deliveries += 1;
        }
      }
      return deliveries;
    },
    connectionCount: () => connections.size,
    dropConnections() {
      for (const connection of connections) connection.socket.terminate();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const connection of connections) {
          if (connection.keepAlive !== undefined) clearInterval(connection.keepAlive);
          connection.socket.terminate();
        }
        connections.clear();
        server.close(() => resolve());
      }),
  };
}
