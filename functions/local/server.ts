/**
 * `npm start`: the receiver on your machine. The same route as the deployed API, through the same API
 * Gateway v2 adapter and core as the Lambda, so it answers exactly as the Lambda does.
 *
 *   POST http://127.0.0.1:3000/instances/{instanceId}/presence?secret=...
 *
 * The secret of each instance is derived from the master exactly as in AWS
 * (functions/shared/secrets/webhook-secret.ts): any instance id works, with its own secret.
 *
 * Environment:
 *   PORT              port on 127.0.0.1 (default 3000; 0 picks a free one)
 *   ZAPI_INSTANCE_ID  instance id whose URL is printed at start (default LOCAL)
 *   WEBHOOK_SECRET    the master secret; when unset one is generated and the local URL printed once
 *   EVENT_BUS_NAME    publish to this bus through the AWS SDK (region, credentials and
 *                     AWS_ENDPOINT_URL_EVENTBRIDGE from the standard environment); unset = dry run:
 *                     each event it would publish is printed to stdout as one JSON line
 *   MAX_BODY_BYTES    body limit (default 16384)
 *
 * The live feed's local twin, on the same port: the events this server accepts go through an in-memory
 * presence store (the deployed store's derivation code, functions/local/local-store.ts) to AppSync Events'
 * WebSocket protocol at ws://127.0.0.1:3000/event/realtime (functions/local/feed-twin.ts, running the
 * feed's shipped onSubscribe handler), with the snapshot route `GET /instances/{instanceId}/presence`.
 * Agents use local tokens (functions/local/local-tokens.ts); the one printed at start sees instance LOCAL.
 * http://127.0.0.1:3000/ is the live view: the example agent page (examples/agent-page/) on the browser
 * client, with a token that sees every instance.
 *
 * Before reading a body the server checks the route, the instance, the secret and Content-Length, and
 * the bodies it reads at once share one byte budget: unauthenticated or oversized requests cost no memory.
 * Events (dry run) go to stdout, one JSON line each; access lines and notices go to stderr.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { subscribeHandlerCode } from '../../lib/appsync-code.ts';
import { participantOf } from '../presence-store/presence-state.ts';
import { readSnapshot } from '../presence-store/snapshot.ts';
import { type ApiGatewayWebhookEvent, createApiGatewayHandler } from '../presence-webhook/adapter.ts';
import { RECEIVER_DEFAULTS } from '../presence-webhook/env.ts';
import { createPublisher, type Publish } from '../presence-webhook/publisher.ts';
import { authenticate, responseBody } from '../presence-webhook/receive.ts';
import { createSecretVerifier } from '../presence-webhook/secret.ts';
import { ALL_INSTANCES_GROUP } from '../shared/access/agent-access.ts';
import { deadlineAt } from '../shared/aws/deadline.ts';
import { DETAIL_TYPES, EVENT_SOURCE } from '../shared/contract/presence-contract.ts';
import {
  instanceWebhookUrl,
  MASTER_SECRET_COMMAND,
  masterSecretDefect,
} from '../shared/secrets/webhook-secret.ts';
import { agentPage } from './agent-page.ts';
import { loadAppSyncHandlers } from './appsync-runtime.ts';
import { createFeedTwin, REALTIME_PATH } from './feed-twin.ts';
import { createLocalStore } from './local-store.ts';
import { issueLocalToken, verifyLocalToken } from './local-tokens.ts';

export const DEFAULT_PORT = 3000;
export const DEFAULT_INSTANCE_ID = 'LOCAL';
/** The deployed route, as API Gateway names it. */
const ROUTE = /^\/instances\/([^/?#]+)\/presence$/;
/** The snapshot route (GET, the same path). */
const SNAPSHOT_ROUTE = ROUTE;
/** The Host headers the page and the snapshot route answer: this machine's loopback names, any port. */
const LOCAL_HOST = /^(?:127\.0\.0\.1|localhost|\[::1\])(?::\d{1,5})?$/i;
/** How long a request may take to arrive whole (a body trickled byte by byte is cut off here). */
const REQUEST_TIMEOUT_MS = 10_000;

export interface LocalServerOptions {
  readonly port?: number;
  /** The instance whose URL is printed at start. @default LOCAL */
  readonly instanceId?: string;
  /** The master secret. @default - generated */
  readonly secret?: string;
  /** Publish to this bus; unset = dry run. */
  readonly eventBusName?: string;
  readonly maxBodyBytes?: number;
  /** Bytes of request bodies held in memory at once, across requests. @default 64 x maxBodyBytes */
  readonly maxInFlightBodyBytes?: number;
  /** Where dry-run events go (one JSON line each). @default stdout */
  readonly out?: (line: string) => void;
  /** Where access lines and notices go. @default stderr */
  readonly err?: (line: string) => void;
  /** EventBridge client for a real bus. @default new EventBridgeClient() (standard environment) */
  readonly eventBridge?: EventBridgeClient;
  /** The local store's and views' activity expiry. @default 25 s */
  readonly activityExpiryMs?: number;
  /** How often the twin sends `ka` on a feed connection. @default 60_000 */
  readonly feedKeepAliveMs?: number;
  /** How long a request (headers and body) may take to arrive whole. @default 10_000 */
  readonly requestTimeoutMs?: number;
}

export interface LocalServer {
  /** `http://127.0.0.1:PORT` */
  readonly baseUrl: string;
  readonly port: number;
  readonly secretGenerated: boolean;
  /** `{baseUrl}/instances/{id}/presence` for the printed instance (no secret). */
  readonly webhookUrl: string;
  /** `ws://127.0.0.1:PORT/event/realtime`: the live feed's twin. */
  readonly realtimeUrl: string;
  /** `127.0.0.1:PORT`: the host a feed connection names. */
  readonly httpDomain: string;
  /** `{baseUrl}/instances/{instanceId}/presence`: the snapshot route. */
  readonly snapshotUrl: string;
  /** A local agent token that may see the printed instance only. */
  readonly agentToken: string;
  /** A local agent token whose groups are these (`zapi-presence-all` sees every instance). */
  issueToken(groups: readonly string[], ttlSeconds?: number): string;
  /** Feed connections open now. */
  feedConnections(): number;
  /** Drops every feed connection (their clients reconnect and fetch the snapshot again). */
  dropFeedConnections(): void;
  close(): Promise<void>;
}

/** Where a generated master is left for `npm run send` (readable by you only). */
export function localStateFile(port: number): string {
  return join(tmpdir(), `zapi-presence-local-${port}.json`);
}

/** The master `npm start` generated on that port, if it is running with one. */
export function readLocalMaster(port: number): string | undefined {
  try {
    const state = JSON.parse(readFileSync(localStateFile(port), 'utf8')) as { master?: unknown };
    return typeof state.master === 'string' ? state.master : undefined;
  } catch {
    return undefined;
  }
}

/** A dry-run publisher: prints the PutEvents entry it would send. */
export function dryRunPublisher(out: (line: string) => void): Publish {
  return async (status, detail, _deadline, source = EVENT_SOURCE) => {
    const eventId = `dry-run-${randomUUID()}`;
    out(
      JSON.stringify({
        eventId,
        EventBusName: '(dry run)',
        Source: source,
        DetailType: DETAIL_TYPES[status],
        Detail: JSON.parse(detail) as unknown,
      }),
    );
    return { eventId };
  };
}

/**
 * On your machine, a failed publish says why on stderr: missing credentials or region, an unknown bus,
 * access denied (the SDK's own words). The HTTP answer stays the plain 503 the Lambda gives.
 */
function explained(publish: Publish, err: (line: string) => void): Publish {
  return async (status, detail, deadline, source) => {
    try {
      return await publish(status, detail, deadline, source);
    } catch (error) {
      const cause = error instanceof Error && error.cause instanceof Error ? error.cause : undefined;
      if (cause) {
        const hint = /credential/i.test(`${cause.name} ${cause.message}`)
          ? ' (set AWS credentials: AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)'
          : /region/i.test(cause.message)
            ? ' (set AWS_REGION)'
            : '';
        err(`${new Date().toISOString()} publish failed: ${cause.name}: ${cause.message}${hint}`);
      }
      throw error;
    }
  };
}

const TEXT_TYPES = /^(?:text\/|application\/(?:[\w.+-]+\+)?(?:json|xml|javascript|x-www-form-urlencoded))/i;

/** Reads a body of at most `limit` bytes; 'too-large' (and the rest is not read) past it. */
/** The request went away (or was cut off) before its body arrived: nobody to answer. */
class BodyAborted extends Error {
  constructor() {
    super('the request body did not arrive');
    this.name = 'BodyAborted';
  }
}

/**
 * Reads a body of at most `limit` bytes within REQUEST_TIMEOUT_MS of its start; 'too-large' (and the
 * rest is not read) past the limit. A body that trickles or stops is cut off there.
 */
function readBody(request: IncomingMessage, limit: number, timeoutMs: number): Promise<Buffer | 'too-large'> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const timer = setTimeout(() => {
      request.destroy();
      reject(new BodyAborted());
    }, timeoutMs);
    request.once('close', () => clearTimeout(timer));
    const onData = (chunk: Buffer) => {
      size += chunk.byteLength;
      if (size > limit) {
        clearTimeout(timer);
        request.off('data', onData);
        request.pause();
        resolve('too-large');
        return;
      }
      chunks.push(chunk);
    };
    request.on('data', onData);
    request.on('end', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks));
    });
    request.on('error', () => {
      clearTimeout(timer);
      reject(new BodyAborted());
    });
  });
}

/** node:http request -> the API Gateway HTTP API (payload v2) event the Lambda would get. */
export function toApiGatewayEvent(
  request: IncomingMessage,
  body: Buffer,
  instanceId: string,
): ApiGatewayWebhookEvent {
  const url = new URL(request.url ?? '/', 'http://localhost');
  const query: Record<string, string> = {};
  for (const [key, value] of url.searchParams) query[key] = key in query ? `${query[key]},${value}` : value;
  const headers: Record<string, string> = {};
  for (const [key, value] of Object.entries(request.headers)) {
    if (value !== undefined) headers[key.toLowerCase()] = Array.isArray(value) ? value.join(',') : value;
  }
  const contentType = headers['content-type'] ?? '';
  const asText = contentType === '' || TEXT_TYPES.test(contentType);
  return {
    pathParameters: { instanceId },
    queryStringParameters: query,
    headers,
    ...(body.byteLength > 0 && { body: asText ? body.toString('utf8') : body.toString('base64') }),
    isBase64Encoded: body.byteLength > 0 && !asText,
    requestContext: { requestId: randomUUID() },
  };
}

const JSON_HEADERS = { 'content-type': 'application/json' };

function send(
  response: ServerResponse,
  status: number,
  headers: Record<string, string | number | boolean> | undefined,
  body: string,
): void {
  response.writeHead(status, { 'content-length': Buffer.byteLength(body), ...headers });
  response.end(body);
}

function safeDecode(segment: string): string | undefined {
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}

export async function startLocalServer(options: LocalServerOptions = {}): Promise<LocalServer> {
  const out = options.out ?? ((line) => process.stdout.write(`${line}\n`));
  const err = options.err ?? ((line) => process.stderr.write(`${line}\n`));
  const printedInstance = options.instanceId ?? DEFAULT_INSTANCE_ID;
  const secretGenerated = options.secret === undefined;
  const master = options.secret ?? randomBytes(32).toString('hex');
  const defect = masterSecretDefect(master);
  if (defect !== undefined) {
    throw new Error(
      `WEBHOOK_SECRET ${defect} (the deployed receiver refuses it too); make one: export WEBHOOK_SECRET=$(${MASTER_SECRET_COMMAND})`,
    );
  }
  const maxBodyBytes = options.maxBodyBytes ?? RECEIVER_DEFAULTS.maxBodyBytes;
  const maxInFlight = options.maxInFlightBodyBytes ?? 64 * maxBodyBytes;
  const requestTimeoutMs = options.requestTimeoutMs ?? REQUEST_TIMEOUT_MS;
  let inFlight = 0;

  // The live feed's twin: local agent tokens signed by a key of this process only, and the feed's own
  // onSubscribe handler, as a deploy ships it.
  const tokenKey = randomBytes(32);
  const handlers = await loadAppSyncHandlers(subscribeHandlerCode('cognito:groups'));
  let host = '127.0.0.1';
  const twin = createFeedTwin({
    tokenKey,
    handlers,
    host: () => host,
    ...(options.feedKeepAliveMs !== undefined && { keepAliveMs: options.feedKeepAliveMs }),
  });
  const store = createLocalStore({
    ...(options.activityExpiryMs !== undefined && { expiryMs: options.activityExpiryMs }),
    publish: (event) => void twin.publish(event.channel, event.body),
  });
  const issueToken = (groups: readonly string[], ttlSeconds = 12 * 3_600) =>
    issueLocalToken(tokenKey, { sub: `local-agent-${groups.join('+')}`, groups }, ttlSeconds);
  const published = options.eventBusName
    ? explained(
        createPublisher({
          client: options.eventBridge ?? new EventBridgeClient({}),
          eventBusName: options.eventBusName,
        }),
        err,
      )
    : dryRunPublisher(out);
  // What was published also feeds the local store and the feed; the canary's callbacks do not (as on
  // AWS, where no rule on the presence source sees them).
  const publish: Publish = async (status, detail, deadline, source = EVENT_SOURCE) => {
    const result = await published(status, detail, deadline, source);
    if (source !== EVENT_SOURCE) return result;
    const callback = JSON.parse(detail) as Record<string, unknown> & {
      instanceId: string;
      phone: string;
      lastSeen?: number | null;
      receivedAt: number;
    };
    const participant = participantOf(callback);
    store.apply({
      id: result.eventId,
      // Ordered by the receiver's stamp, as the deployed store is.
      time: callback.receivedAt,
      instanceId: callback.instanceId,
      phone: callback.phone,
      ...(participant !== undefined && { participant }),
      status,
      ...(callback.lastSeen !== undefined && { lastSeen: callback.lastSeen }),
    });
    return result;
  };

  // Same derivation and constant-time comparison as the Lambda, with the local master instead of SSM.
  const verifySecret = createSecretVerifier({ load: async () => ({ current: master }), ttlMs: 2 ** 31 });
  const handle = createApiGatewayHandler({ maxBodyBytes, verifySecret, publish }, (outcome) => {
    // What the Lambda writes to its log: here the cause of a 503 (missing credentials or region, an
    // unreachable bus), so a failed publish never goes unexplained.
    if (outcome.kind === 'failed') err(`${new Date().toISOString()} ${outcome.reason}: ${outcome.cause}`);
  });

  // Whole requests within REQUEST_TIMEOUT_MS, checked every second (Node's default check is every 30 s).
  const server: Server = createServer(
    {
      requestTimeout: REQUEST_TIMEOUT_MS,
      headersTimeout: REQUEST_TIMEOUT_MS,
      connectionsCheckingInterval: 1_000,
    },
    (request, response) => {
      void serve(request, response).catch((error: unknown) => {
        if (error instanceof BodyAborted) {
          if (!response.headersSent && !response.destroyed) response.destroy();
          return;
        }
        // Never let one bad request take the server down; answer like API Gateway does for its own faults.
        err(`${new Date().toISOString()} internal error: ${error instanceof Error ? error.name : 'unknown'}`);
        if (!response.headersSent) send(response, 500, JSON_HEADERS, '{"message":"Internal Server Error"}');
        else response.destroy();
      });
    },
  );

  /**
   * The page (GET /, /agent-page.js) and the snapshot route (GET /instances/{instanceId}/presence, with a
   * local agent token; OPTIONS for a page on another origin, as the deployed API's CORS answers). Only a
   * loopback Host is served (421 otherwise): no page on another site reads it through DNS rebinding.
   */
  async function serveFeed(request: IncomingMessage, response: ServerResponse): Promise<number | undefined> {
    const url = new URL(request.url ?? '/', 'http://localhost');
    const snapshot = SNAPSHOT_ROUTE.exec(url.pathname);
    const page =
      request.method === 'GET' &&
      (url.pathname === '/' || url.pathname === '/agent' || url.pathname === '/agent-page.js');
    if (!page && snapshot === null) return undefined;
    if (!LOCAL_HOST.test(request.headers.host ?? '')) {
      send(
        response,
        421,
        { 'content-type': 'text/plain' },
        'the local server answers only http://127.0.0.1 or http://localhost\n',
      );
      return 421;
    }
    if (url.pathname === '/') {
      const instanceIds = [...new Set([printedInstance, ...store.instances()])];
      send(
        response,
        200,
        { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' },
        agentPage.html({
          realtimeUrl: `ws://${host}${REALTIME_PATH}`,
          httpDomain: host,
          snapshotUrl: `http://${host}/instances/{instanceId}/presence`,
          instanceIds,
          token: issueToken([ALL_INSTANCES_GROUP]),
          ...(options.activityExpiryMs !== undefined && { activityExpiryMs: options.activityExpiryMs }),
        }),
      );
      return 200;
    }
    if (url.pathname === '/agent') {
      send(
        response,
        200,
        { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' },
        agentPage.blank(),
      );
      return 200;
    }
    if (url.pathname === '/agent-page.js') {
      send(
        response,
        200,
        { 'content-type': 'text/javascript; charset=utf-8', 'cache-control': 'no-store' },
        agentPage.script(),
      );
      return 200;
    }
    const cors = { 'access-control-allow-origin': '*', vary: 'origin' };
    if (request.method === 'OPTIONS') {
      send(
        response,
        204,
        {
          ...cors,
          'access-control-allow-methods': 'GET',
          'access-control-allow-headers': 'authorization',
          'access-control-max-age': '3600',
        },
        '',
      );
      return 204;
    }
    // As API Gateway's JWT authorizer: no valid token, 401 before the route; an array claim flattened to "[a b]".
    const claims = verifyLocalToken(tokenKey, request.headers.authorization);
    if (claims === undefined) {
      send(response, 401, { ...JSON_HEADERS, ...cors }, '{"message":"Unauthorized"}');
      return 401;
    }
    const flattened = Object.fromEntries(
      Object.entries(claims).map(([key, value]) => [
        key,
        Array.isArray(value) ? `[${value.join(' ')}]` : value,
      ]),
    );
    const result = await readSnapshot(
      {
        headers: { authorization: request.headers.authorization },
        pathParameters: { instanceId: safeDecode(snapshot?.[1] ?? '') ?? '' },
        queryStringParameters: Object.fromEntries(url.searchParams),
        requestContext: { authorizer: { jwt: { claims: flattened } } },
      },
      store,
      deadlineAt(Date.now() + 5_000),
      {
        groupsClaim: 'cognito:groups',
        headers: cors,
        ...(options.activityExpiryMs !== undefined && { expiryMs: options.activityExpiryMs }),
      },
    );
    send(response, result.statusCode ?? 200, result.headers, String(result.body ?? ''));
    return result.statusCode ?? 200;
  }

  /** Answers without reading the body, and closes the connection so the unread body is dropped. */
  function refuse(request: IncomingMessage, response: ServerResponse, status: number, body: string): void {
    send(response, status, { ...JSON_HEADERS, connection: 'close' }, body);
    request.resume();
  }

  async function serve(request: IncomingMessage, response: ServerResponse): Promise<number> {
    const started = performance.now();
    const path = (request.url ?? '/').split('?', 1)[0] ?? '/';
    const match = ROUTE.exec(path);
    const instanceId = match?.[1] === undefined ? undefined : safeDecode(match[1]);
    let status = 500;
    let detail = '';
    const answered = (code: number, answer: string) => {
      status = code;
      const error = (JSON.parse(answer) as { error?: string }).error;
      if (error) detail = ` ${error}`;
    };

    if (request.method === 'GET' || request.method === 'OPTIONS') {
      const served = await serveFeed(request, response);
      // The live view and the snapshot route: no access line per page or snapshot.
      if (served !== undefined) return served;
    }
    if (request.method !== 'POST' || instanceId === undefined) {
      // What API Gateway answers for a route it does not have.
      status = 404;
      refuse(request, response, status, '{"message":"Not Found"}');
    } else {
      // Who is calling, before a byte of the body is read.
      const secret = new URL(request.url ?? '/', 'http://localhost').searchParams.get('secret') ?? undefined;
      const refusal = await authenticate(
        instanceId,
        secret,
        { verifySecret },
        deadlineAt(Date.now() + 5_000),
      );
      const declared = Number(request.headers['content-length'] ?? Number.NaN);
      if (refusal !== undefined) {
        const answer = JSON.stringify(responseBody(refusal));
        answered(refusal.statusCode, answer);
        refuse(request, response, refusal.statusCode, answer);
      } else if (declared > maxBodyBytes) {
        const answer = JSON.stringify({
          ok: false,
          error: 'payload-too-large',
          message: `body is ${declared} bytes; the limit is ${maxBodyBytes}`,
        });
        answered(413, answer);
        refuse(request, response, 413, answer);
      } else {
        // Room for this body in the shared budget (its declared size, or the limit when chunked).
        const reserve = Number.isFinite(declared) ? declared : maxBodyBytes;
        if (inFlight + reserve > maxInFlight) {
          status = 503;
          detail = ' busy';
          response.setHeader('retry-after', '1');
          refuse(
            request,
            response,
            503,
            '{"ok":false,"error":"busy","message":"too many bodies in flight; retry"}',
          );
        } else {
          inFlight += reserve;
          try {
            const body = await readBody(request, maxBodyBytes, requestTimeoutMs);
            if (body === 'too-large') {
              const answer = JSON.stringify({
                ok: false,
                error: 'payload-too-large',
                message: `body is over the limit of ${maxBodyBytes} bytes`,
              });
              answered(413, answer);
              refuse(request, response, 413, answer);
            } else {
              const result = await handle(toApiGatewayEvent(request, body, instanceId));
              const answer = String(result.body ?? '');
              answered(result.statusCode ?? 200, answer);
              send(response, result.statusCode ?? 200, result.headers, answer);
            }
          } finally {
            inFlight -= reserve;
          }
        }
      }
    }
    // The access line names the route, never the query string (it holds the secret).
    const route =
      instanceId === undefined ? `${request.method} (no route)` : 'POST /instances/{instanceId}/presence';
    err(
      `${new Date().toISOString()} ${route} ${status}${detail} ${Math.round(performance.now() - started)}ms`,
    );
    return status;
  }

  // The feed's WebSocket: only /event/realtime; any other upgrade is refused.
  server.on('upgrade', (request, socket, head) => {
    if (!twin.handleUpgrade(request, socket, head)) socket.destroy();
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? DEFAULT_PORT, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const baseUrl = `http://127.0.0.1:${port}`;
  const webhookUrl = `${baseUrl}/instances/${printedInstance}/presence`;
  const stateFile = localStateFile(port);
  host = `127.0.0.1:${port}`;
  const agentToken = issueToken([printedInstance]);

  err(`Z-API chat-presence receiver listening on ${baseUrl}`);
  err(`live view of every chat's presence: ${baseUrl}/`);
  err(`live feed: ws://${host}${REALTIME_PATH}  token for ${printedInstance}: ${agentToken}`);
  err(
    `agent page as against AWS: ${baseUrl}/agent (HTTP domain ${host}, snapshot URL ${baseUrl}/instances/{instanceId}/presence, instances ${printedInstance}, the token above)`,
  );
  err(
    `any instance id, each with its own secret · ${options.eventBusName ? `publishing to bus ${options.eventBusName}` : 'dry run: events are printed to stdout'}`,
  );
  if (secretGenerated) {
    // A generated, local-only master: the URL is shown once so you can point a sender at it.
    err(
      `webhook URL of ${printedInstance} (generated master): ${instanceWebhookUrl(baseUrl, printedInstance, master)}`,
    );
    writeFileSync(stateFile, JSON.stringify({ master }), { mode: 0o600 });
  } else {
    err(
      `webhook URL of ${printedInstance}: ${webhookUrl}?secret=<derived from WEBHOOK_SECRET: npm run webhook-url>`,
    );
  }

  let closed: Promise<void> | undefined;
  return {
    baseUrl,
    port,
    secretGenerated,
    webhookUrl,
    realtimeUrl: `ws://${host}${REALTIME_PATH}`,
    httpDomain: host,
    snapshotUrl: `${baseUrl}/instances/{instanceId}/presence`,
    agentToken,
    issueToken,
    feedConnections: () => twin.connectionCount(),
    dropFeedConnections: () => twin.dropConnections(),
    close: () => {
      closed ??= (async () => {
        if (secretGenerated) rmSync(stateFile, { force: true });
        store.close();
        await twin.close();
        handlers.close();
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        });
      })();
      return closed;
    },
  };
}

/** Reads the server's settings from the environment, with one clear message per bad value. */
export function optionsFromEnv(env: NodeJS.ProcessEnv): LocalServerOptions {
  const port = env.PORT?.trim() ? Number(env.PORT) : DEFAULT_PORT;
  if (!Number.isInteger(port) || port < 0 || port > 65_535)
    throw new Error(`PORT must be a port number, got "${env.PORT}"`);
  const maxBodyBytes = env.MAX_BODY_BYTES?.trim() ? Number(env.MAX_BODY_BYTES) : undefined;
  if (maxBodyBytes !== undefined && (!Number.isInteger(maxBodyBytes) || maxBodyBytes <= 0)) {
    throw new Error(`MAX_BODY_BYTES must be a positive whole number, got "${env.MAX_BODY_BYTES}"`);
  }
  const instanceId = env.ZAPI_INSTANCE_ID?.split(',')[0]?.trim();
  return {
    port,
    ...(instanceId && { instanceId }),
    ...(env.WEBHOOK_SECRET ? { secret: env.WEBHOOK_SECRET } : {}),
    ...(env.EVENT_BUS_NAME?.trim() ? { eventBusName: env.EVENT_BUS_NAME.trim() } : {}),
    ...(maxBodyBytes !== undefined && { maxBodyBytes }),
  };
}

async function main(): Promise<void> {
  let server: LocalServer;
  try {
    server = await startLocalServer(optionsFromEnv(process.env));
  } catch (error) {
    const code = (error as { code?: string }).code;
    const hint = code === 'EADDRINUSE' ? ' (port in use: set PORT=another)' : '';
    process.stderr.write(`cannot start: ${error instanceof Error ? error.message : String(error)}${hint}\n`);
    process.exit(1);
  }
  const stop = (signal: string) => {
    process.stderr.write(`${signal}: shutting down\n`);
    void server.close().then(() => process.exit(0));
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) void main();
