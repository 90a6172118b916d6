/**
 * `npm start`: the receiver on your machine. The same route as the deployed API, through the same API
 * Gateway v2 adapter and core as the Lambda, so it answers exactly as the Lambda does.
 *
 *   POST http://127.0.0.1:3000/instances/{instanceId}/presence?secret=...
 *
 * Environment:
 *   PORT              port on 127.0.0.1 (default 3000; 0 picks a free one)
 *   ZAPI_INSTANCE_ID  instance id(s), comma-separated (default LOCAL)
 *   WEBHOOK_SECRET    the secret; when unset one is generated and the full local URL printed once
 *   EVENT_BUS_NAME    publish to this bus through the AWS SDK (region, credentials and
 *                     AWS_ENDPOINT_URL_EVENTBRIDGE from the standard environment); unset = dry run:
 *                     each event it would publish is printed to stdout as one JSON line
 *   MAX_BODY_BYTES    body limit (default 16384)
 *
 * Events (dry run) go to stdout, one JSON line each; access lines and notices go to stderr.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { type ApiGatewayWebhookEvent, createApiGatewayHandler } from '../presence-webhook/adapter.ts';
import { parseInstanceIds, RECEIVER_DEFAULTS } from '../presence-webhook/env.ts';
import { createPublisher, type Publish } from '../presence-webhook/publisher.ts';
import { createSecretVerifier, MIN_SECRET_LENGTH } from '../presence-webhook/secret.ts';
import { DETAIL_TYPES, EVENT_SOURCE } from '../shared/presence-contract.ts';

export const DEFAULT_PORT = 3000;
export const DEFAULT_INSTANCE_ID = 'LOCAL';
/** The deployed route, as API Gateway names it. */
const ROUTE = /^\/instances\/([^/?#]+)\/presence$/;
/** API Gateway's own payload limit; anything larger is refused before the core sees it. */
const MAX_PAYLOAD = 10 * 1024 * 1024;

export interface LocalServerOptions {
  readonly port?: number;
  readonly instanceIds?: readonly string[];
  /** @default - generated */
  readonly secret?: string;
  /** Publish to this bus; unset = dry run. */
  readonly eventBusName?: string;
  readonly maxBodyBytes?: number;
  /** Where dry-run events go (one JSON line each). @default stdout */
  readonly out?: (line: string) => void;
  /** Where access lines and notices go. @default stderr */
  readonly err?: (line: string) => void;
  /** EventBridge client for a real bus. @default new EventBridgeClient() (standard environment) */
  readonly eventBridge?: EventBridgeClient;
}

export interface LocalServer {
  /** `http://127.0.0.1:PORT` */
  readonly baseUrl: string;
  readonly port: number;
  readonly secretGenerated: boolean;
  /** `{baseUrl}/instances/{id}/presence` for the first instance (no secret). */
  readonly webhookUrl: string;
  close(): Promise<void>;
}

/** Where a generated secret is left for `npm run send` (readable by you only). */
export function localStateFile(port: number): string {
  return join(tmpdir(), `zapi-presence-local-${port}.json`);
}

/** A dry-run publisher: prints the PutEvents entry it would send. */
export function dryRunPublisher(out: (line: string) => void): Publish {
  return async (status, detail) => {
    const eventId = `dry-run-${randomUUID()}`;
    out(
      JSON.stringify({
        eventId,
        EventBusName: '(dry run)',
        Source: EVENT_SOURCE,
        DetailType: DETAIL_TYPES[status],
        Detail: JSON.parse(detail) as unknown,
      }),
    );
    return { eventId };
  };
}

const TEXT_TYPES = /^(?:text\/|application\/(?:[\w.+-]+\+)?(?:json|xml|javascript|x-www-form-urlencoded))/i;

function readBody(request: IncomingMessage): Promise<Buffer | 'too-large'> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    request.on('data', (chunk: Buffer) => {
      size += chunk.byteLength;
      if (size <= MAX_PAYLOAD) chunks.push(chunk);
    });
    request.on('end', () => resolve(size > MAX_PAYLOAD ? 'too-large' : Buffer.concat(chunks)));
    request.on('error', reject);
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
  const instanceIds = options.instanceIds?.length ? [...options.instanceIds] : [DEFAULT_INSTANCE_ID];
  const secretGenerated = options.secret === undefined;
  const secret = options.secret ?? randomBytes(24).toString('hex');
  if (secret.length < MIN_SECRET_LENGTH) {
    throw new Error(
      `WEBHOOK_SECRET must have at least ${MIN_SECRET_LENGTH} characters (the deployed receiver refuses shorter ones)`,
    );
  }

  const publish = options.eventBusName
    ? createPublisher({
        client: options.eventBridge ?? new EventBridgeClient({}),
        eventBusName: options.eventBusName,
      })
    : dryRunPublisher(out);

  const handle = createApiGatewayHandler(
    {
      instanceIds: new Set(instanceIds),
      maxBodyBytes: options.maxBodyBytes ?? RECEIVER_DEFAULTS.maxBodyBytes,
      // Same constant-time comparison as the Lambda, against the local secret instead of SSM.
      verifySecret: createSecretVerifier({ load: async () => secret, ttlMs: Number.MAX_SAFE_INTEGER }),
      publish,
    },
    () => {},
  );

  const server: Server = createServer((request, response) => {
    void serve(request, response).catch((error: unknown) => {
      // Never let one bad request take the server down; answer like API Gateway does for its own faults.
      err(`${new Date().toISOString()} internal error: ${error instanceof Error ? error.name : 'unknown'}`);
      if (!response.headersSent)
        send(response, 500, { 'content-type': 'application/json' }, '{"message":"Internal Server Error"}');
      else response.destroy();
    });
  });

  async function serve(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const started = performance.now();
    const path = (request.url ?? '/').split('?', 1)[0] ?? '/';
    const match = ROUTE.exec(path);
    const instanceId = match?.[1] === undefined ? undefined : safeDecode(match[1]);
    let status: number;
    let detail = '';
    if (request.method !== 'POST' || instanceId === undefined) {
      // What API Gateway answers for a route it does not have.
      status = 404;
      send(response, status, { 'content-type': 'application/json' }, '{"message":"Not Found"}');
      request.resume();
    } else {
      const body = await readBody(request);
      if (body === 'too-large') {
        status = 413;
        send(
          response,
          status,
          { 'content-type': 'application/json' },
          '{"message":"Request Entity Too Large"}',
        );
      } else {
        const result = await handle(toApiGatewayEvent(request, body, instanceId));
        status = result.statusCode ?? 200;
        send(response, status, result.headers, String(result.body ?? ''));
        const answer = JSON.parse(String(result.body ?? '{}')) as { error?: string };
        if (answer.error) detail = ` ${answer.error}`;
      }
    }
    // The access line names the route, never the query string (it holds the secret).
    const route =
      instanceId === undefined ? `${request.method} (no route)` : 'POST /instances/{instanceId}/presence';
    err(
      `${new Date().toISOString()} ${route} ${status}${detail} ${Math.round(performance.now() - started)}ms`,
    );
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? DEFAULT_PORT, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const baseUrl = `http://127.0.0.1:${port}`;
  const webhookUrl = `${baseUrl}/instances/${instanceIds[0]}/presence`;
  const stateFile = localStateFile(port);

  err(`Z-API chat-presence receiver listening on ${baseUrl}`);
  err(
    `instances: ${instanceIds.join(', ')} · ${options.eventBusName ? `publishing to bus ${options.eventBusName}` : 'dry run: events are printed to stdout'}`,
  );
  if (secretGenerated) {
    // A generated, local-only secret: shown once so you can point a sender at it.
    err(`webhook URL (generated secret): ${webhookUrl}?secret=${secret}`);
    writeFileSync(stateFile, JSON.stringify({ url: `${webhookUrl}?secret=${secret}` }), { mode: 0o600 });
  } else {
    err(`webhook URL: ${webhookUrl}?secret=<WEBHOOK_SECRET>`);
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
        server.close(() => resolve());
        server.closeIdleConnections();
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
  const instanceIds = parseInstanceIds(env.ZAPI_INSTANCE_ID);
  return {
    port,
    ...(instanceIds.length > 0 && { instanceIds }),
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
