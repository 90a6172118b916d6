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
 * http://127.0.0.1:3000/ is a live view of every chat's presence (functions/local/live-view.ts), fed by
 * the events this server accepts, with the same derivation code as the deployed presence store.
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
import { participantOf } from '../presence-store/presence-state.ts';
import { type ApiGatewayWebhookEvent, createApiGatewayHandler } from '../presence-webhook/adapter.ts';
import { RECEIVER_DEFAULTS } from '../presence-webhook/env.ts';
import { createPublisher, type Publish } from '../presence-webhook/publisher.ts';
import { authenticate, responseBody } from '../presence-webhook/receive.ts';
import { createSecretVerifier } from '../presence-webhook/secret.ts';
import { deadlineAt } from '../shared/aws/deadline.ts';
import { DETAIL_TYPES, EVENT_SOURCE } from '../shared/contract/presence-contract.ts';
import {
  instanceWebhookUrl,
  MASTER_SECRET_COMMAND,
  masterSecretDefect,
} from '../shared/secrets/webhook-secret.ts';
import { createLiveView } from './live-view.ts';

export const DEFAULT_PORT = 3000;
export const DEFAULT_INSTANCE_ID = 'LOCAL';
/** The deployed route, as API Gateway names it. */
const ROUTE = /^\/instances\/([^/?#]+)\/presence$/;
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
  /** The live view's activity expiry. @default 25 s */
  readonly activityExpiryMs?: number;
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

  const liveView = createLiveView({
    ...(options.activityExpiryMs !== undefined && { expiryMs: options.activityExpiryMs }),
  });
  const published = options.eventBusName
    ? explained(
        createPublisher({
          client: options.eventBridge ?? new EventBridgeClient({}),
          eventBusName: options.eventBusName,
        }),
        err,
      )
    : dryRunPublisher(out);
  // What was published also feeds the live view; the canary's callbacks do not (as on AWS, where no
  // rule on the presence source sees them).
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
    liveView.apply({
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

    if (request.method === 'GET' && liveView.serve(request, response)) {
      // The live view (the page, its event stream, the state as JSON): no access line per poll.
      return 200;
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

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? DEFAULT_PORT, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const baseUrl = `http://127.0.0.1:${port}`;
  const webhookUrl = `${baseUrl}/instances/${printedInstance}/presence`;
  const stateFile = localStateFile(port);

  err(`Z-API chat-presence receiver listening on ${baseUrl}`);
  err(`live view of every chat's presence: ${baseUrl}/`);
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
    close: () => {
      closed ??= new Promise<void>((resolve) => {
        if (secretGenerated) rmSync(stateFile, { force: true });
        liveView.close();
        server.close(() => resolve());
        server.closeAllConnections();
      });
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
