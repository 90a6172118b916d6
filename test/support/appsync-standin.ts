/**
 * A stand-in for AppSync Events' HTTP publish API (`POST /event`) on 127.0.0.1. It checks each request's
 * SigV4 signature (service `appsync`) by signing it again with the credentials it was given, keeps
 * AppSync's limits (5 events a request, 240 KB an event, a `/namespace/...` channel), and records what it
 * accepted per channel. Scriptable: answer a status (with Retry-After), fail some entries in a 200 answer,
 * never answer, or reset the connection.
 */
import { createHash, createHmac } from 'node:crypto';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignatureV4 } from '@smithy/signature-v4';

export const STANDIN_CREDENTIALS = {
  accessKeyId: 'AKIDSTANDIN0000000001',
  secretAccessKey: 'stand-in-secret-key-0123456789abcdefghij',
};

export type PublishBehaviour =
  | { readonly kind: 'status'; readonly status: number; readonly retryAfter?: string }
  | { readonly kind: 'fail-entries'; readonly indexes: readonly number[]; readonly code?: string }
  | { readonly kind: 'hang' }
  | { readonly kind: 'reset' };

export interface AcceptedEvent {
  readonly channel: string;
  readonly body: string;
}

export interface AppSyncStandIn {
  /** `http://127.0.0.1:PORT` (the publisher takes a full URL in place of the domain). */
  readonly url: string;
  /** Events accepted, in order. */
  readonly accepted: AcceptedEvent[];
  /** Every request: its channel, event count and what was answered. */
  readonly requests: Array<{ channel: string; events: number; status: number; signed: boolean }>;
  /** The next requests behave so, one behaviour a request; then every request is accepted. */
  script(...behaviours: PublishBehaviour[]): void;
  /** Every request behaves so until cleared (undefined). */
  always: PublishBehaviour | undefined;
  close(): Promise<void>;
}

const bytes = (data: string | ArrayBuffer | ArrayBufferView): string | Uint8Array =>
  typeof data === 'string'
    ? data
    : ArrayBuffer.isView(data)
      ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
      : new Uint8Array(data);

class Sha256 {
  private readonly hash;
  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    this.hash = secret === undefined ? createHash('sha256') : createHmac('sha256', bytes(secret));
  }
  update(data: string | ArrayBuffer | ArrayBufferView) {
    this.hash.update(bytes(data));
  }
  digest() {
    return Promise.resolve(new Uint8Array(this.hash.digest()));
  }
}

const read = (request: IncomingMessage) =>
  new Promise<string>((resolve) => {
    const chunks: Buffer[] = [];
    request.on('data', (c: Buffer) => chunks.push(c));
    request.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });

export async function startAppSyncStandIn(region = 'sa-east-1'): Promise<AppSyncStandIn> {
  const accepted: AcceptedEvent[] = [];
  const requests: AppSyncStandIn['requests'] = [];
  const queue: PublishBehaviour[] = [];
  const signer = new SignatureV4({
    service: 'appsync',
    region,
    credentials: STANDIN_CREDENTIALS,
    sha256: Sha256,
  });
  const state: { always: PublishBehaviour | undefined } = { always: undefined };

  const server = createServer(async (request, response) => {
    const body = await read(request);
    const headers = Object.fromEntries(
      Object.entries(request.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(',') : (v ?? '')]),
    );
    const date = headers['x-amz-date'] ?? '';
    // Sign the same request again, at the time it says it was signed: the signatures must agree.
    const when = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(date);
    const again = when
      ? await signer.sign(
          {
            method: request.method ?? 'POST',
            protocol: 'http:',
            hostname: '127.0.0.1',
            path: (request.url ?? '/').split('?')[0] ?? '/',
            query: {},
            headers: { host: headers.host ?? '', 'content-type': headers['content-type'] ?? '' },
            body,
          },
          {
            signingDate: new Date(`${when[1]}-${when[2]}-${when[3]}T${when[4]}:${when[5]}:${when[6]}Z`),
          },
        )
      : undefined;
    const signed =
      again !== undefined &&
      headers.authorization !== undefined &&
      headers.authorization === (again.headers as Record<string, string>).authorization &&
      headers.authorization.includes('/appsync/aws4_request');
    let parsed: { channel?: unknown; events?: unknown } = {};
    try {
      parsed = JSON.parse(body) as typeof parsed;
    } catch {}
    const channel = typeof parsed.channel === 'string' ? parsed.channel : '';
    const events = Array.isArray(parsed.events) ? (parsed.events as unknown[]) : [];
    const answer = (status: number, payload: unknown, extra: Record<string, string> = {}) => {
      requests.push({ channel, events: events.length, status, signed });
      response.writeHead(status, { 'content-type': 'application/json', ...extra });
      response.end(JSON.stringify(payload));
    };
    if (request.method !== 'POST' || request.url !== '/event')
      return answer(404, { errors: [{ errorType: 'NotFound' }] });
    if (!signed)
      return answer(401, { errors: [{ errorType: 'UnauthorizedException', message: 'bad signature' }] });
    if (
      !/^\/[A-Za-z0-9-]+(\/[A-Za-z0-9_-]+){1,4}$/.test(channel) ||
      events.length === 0 ||
      events.length > 5
    ) {
      return answer(400, { errors: [{ errorType: 'BadRequestException', message: 'Invalid request' }] });
    }
    const behaviour = queue.shift() ?? state.always;
    if (behaviour?.kind === 'hang') {
      requests.push({ channel, events: events.length, status: 0, signed });
      return;
    }
    if (behaviour?.kind === 'reset') {
      requests.push({ channel, events: events.length, status: -1, signed });
      request.socket.destroy();
      return;
    }
    if (behaviour?.kind === 'status') {
      return answer(
        behaviour.status,
        { errors: [{ errorType: 'Error', message: `status ${behaviour.status}` }] },
        behaviour.retryAfter !== undefined ? { 'retry-after': behaviour.retryAfter } : {},
      );
    }
    const failing = new Set(behaviour?.kind === 'fail-entries' ? behaviour.indexes : []);
    const successful: unknown[] = [];
    const failed: unknown[] = [];
    events.forEach((event, index) => {
      const tooLarge = typeof event !== 'string' || Buffer.byteLength(event) > 240 * 1024;
      if (failing.has(index) || tooLarge) {
        failed.push({
          identifier: `id-${index}`,
          index,
          code: tooLarge
            ? 'EventTooLarge'
            : behaviour?.kind === 'fail-entries'
              ? (behaviour.code ?? 'InternalFailure')
              : '',
          message: 'failed',
        });
      } else {
        accepted.push({ channel, body: event as string });
        successful.push({ identifier: `id-${index}`, index });
      }
    });
    answer(200, { failed, successful });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    accepted,
    requests,
    script: (...behaviours) => queue.push(...behaviours),
    get always() {
      return state.always;
    },
    set always(value) {
      state.always = value;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
