/**
 * A stand-in for Z-API's instance API on 127.0.0.1 holding many instances: GET me and PUT
 * update-webhook-chat-presence (and, to prove they are never called, every other update-webhook-*),
 * with per-instance behaviour: drifted URLs, instances that are down, one requiring a Client-Token,
 * disconnected sessions, and misbehaviours (hang, trickle, reset, an answer that echoes the URL back).
 */
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ZapiRequest {
  readonly method: string;
  readonly instanceId: string;
  readonly operation: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

/** How one instance answers. */
export type Behaviour =
  | 'normal'
  | 'hang' // never answers
  | 'trickle' // 200 headers, then one byte every `trickleEveryMs`
  | 'reset' // destroys the connection
  | { readonly status: number; readonly body: string; readonly headers?: Record<string, string> }; // this answer, every time

export interface StandInInstance {
  token: string;
  /** The chat-presence URL GET me reports ('' = none). */
  presenceUrl: string;
  /** Other webhooks: must never change. */
  readonly otherUrls: Record<string, string>;
  connected: boolean;
  /** Epoch ms. */
  due: number;
  paymentStatus: string;
  /** Requests without this Client-Token get `{"error":"null not allowed"}`. */
  requireClientToken?: string;
  behaviour: Behaviour;
  /** Answers for the next requests, in order, before `behaviour` resumes. */
  readonly script: Behaviour[];
  /** After a successful PUT, GET me keeps reporting this URL instead (Z-API not applying it). */
  ignorePuts?: boolean;
  /** GET me reports the stored URL in another (equivalent or not) shape. */
  reportAs?: (url: string) => string;
}

/** An account-wide request rate limit: a token bucket of `perSecond` (burst `perSecond`), 429 beyond it. */
export interface StandInRateLimit {
  readonly perSecond: number;
  /** How the 429 says when to come back. @default 'seconds' */
  readonly retryAfter?: 'seconds' | 'date' | 'none';
}

export interface ZapiStandIn {
  readonly url: string;
  readonly requests: ZapiRequest[];
  readonly instances: Map<string, StandInInstance>;
  /** Adds an instance with sensible defaults (connected, paid, due in a year, no URL). */
  add(instanceId: string, token: string, patch?: Partial<StandInInstance>): StandInInstance;
  get(instanceId: string): StandInInstance;
  /** Delay before every answer. */
  latencyMs: number;
  trickleEveryMs: number;
  /** Largest number of requests in flight at once so far. */
  readonly maxInFlight: number;
  /** Requests answered 429 by the rate limit so far. */
  readonly rateLimited: number;
  /** Limit every request (any instance) to this rate; undefined = no limit. */
  rateLimit: StandInRateLimit | undefined;
  /**
   * Until this time (epoch ms), every request is answered 429 with `Retry-After: stormRetryAfter`, whoever
   * sends it (a global Retry-After storm); undefined = none.
   */
  stormUntil: number | undefined;
  /** The storm's Retry-After (seconds). @default '1' */
  stormRetryAfter: string;
  reset(): void;
  close(): Promise<void>;
}

const PATH = /^\/instances\/([^/]+)\/token\/([^/]+)\/([^/?]+)$/;

export async function startZapiStandIn(): Promise<ZapiStandIn> {
  const instances = new Map<string, StandInInstance>();
  const requests: ZapiRequest[] = [];
  const timers = new Set<ReturnType<typeof setInterval>>();
  const state = {
    latencyMs: 0,
    trickleEveryMs: 100,
    inFlight: 0,
    maxInFlight: 0,
    rateLimited: 0,
    rateLimit: undefined as StandInRateLimit | undefined,
    stormUntil: undefined as number | undefined,
    stormRetryAfter: '1',
    bucket: 0,
    bucketAt: 0,
  };
  /** Takes a token from the bucket; false when it is empty. */
  const admit = (): boolean => {
    const limit = state.rateLimit;
    if (limit === undefined) return true;
    const now = performance.now();
    state.bucket = Math.min(
      limit.perSecond,
      state.bucket + ((now - state.bucketAt) * limit.perSecond) / 1_000,
    );
    state.bucketAt = now;
    if (state.bucket >= 1) {
      state.bucket -= 1;
      return true;
    }
    return false;
  };

  const server = createServer((request, response) => {
    state.inFlight++;
    state.maxInFlight = Math.max(state.maxInFlight, state.inFlight);
    response.on('close', () => state.inFlight--);
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', async () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const match = PATH.exec(request.url ?? '');
      const instanceId = match ? decodeURIComponent(match[1] as string) : '';
      const operation = match?.[3] ?? '';
      requests.push({ method: request.method ?? '', instanceId, operation, headers: request.headers, body });
      if (state.stormUntil !== undefined && Date.now() < state.stormUntil) {
        state.rateLimited++;
        response.writeHead(429, { 'content-type': 'application/json', 'retry-after': state.stormRetryAfter });
        response.end(JSON.stringify({ error: 'Too many requests' }));
        return;
      }
      if (!admit()) {
        state.rateLimited++;
        const limit = state.rateLimit as StandInRateLimit;
        // Whole seconds, as HTTP has them: the next token comes within one.
        const headers: Record<string, string> =
          limit.retryAfter === 'none'
            ? {}
            : limit.retryAfter === 'date'
              ? {
                  'retry-after': new Date(
                    Math.ceil((Date.now() + 1_000 / limit.perSecond) / 1_000) * 1_000,
                  ).toUTCString(),
                }
              : { 'retry-after': '1' };
        response.writeHead(429, { 'content-type': 'application/json', ...headers });
        response.end(JSON.stringify({ error: 'Too many requests' }));
        return;
      }
      if (state.latencyMs > 0) await new Promise((resolve) => setTimeout(resolve, state.latencyMs));
      const send = (status: number, payload: unknown) => {
        const text = typeof payload === 'string' ? payload : JSON.stringify(payload);
        response.writeHead(status, { 'content-type': 'application/json' });
        response.end(text);
      };
      const instance = instances.get(instanceId);
      if (!match || !instance || decodeURIComponent(match[2] as string) !== instance.token) {
        return send(400, { error: 'Instance not found' });
      }
      const behaviour = instance.script.shift() ?? instance.behaviour;
      if (behaviour !== 'normal') return misbehave(response, behaviour);
      if (
        instance.requireClientToken !== undefined &&
        request.headers['client-token'] !== instance.requireClientToken
      ) {
        return send(400, { error: 'null not allowed' });
      }
      if (request.method === 'PUT' && operation.startsWith('update-webhook-')) {
        const value = (JSON.parse(body || '{}') as { value?: unknown }).value;
        if (typeof value !== 'string') return send(400, { error: 'value is required' });
        if (operation === 'update-webhook-chat-presence') {
          if (!instance.ignorePuts) instance.presenceUrl = value;
        } else {
          instance.otherUrls[operation] = value;
        }
        return send(200, { value: true });
      }
      if (request.method === 'GET' && operation === 'me') {
        return send(200, {
          id: instanceId,
          token: instance.token,
          name: 'stand-in',
          due: instance.due,
          connected: instance.connected,
          paymentStatus: instance.paymentStatus,
          created: '2026-01-01T00:00:00.000Z',
          presenceChatCallbackUrl:
            instance.reportAs && instance.presenceUrl
              ? instance.reportAs(instance.presenceUrl)
              : instance.presenceUrl,
          ...instance.otherUrls,
        });
      }
      return send(405, { error: 'Method not allowed' });
    });
  });

  function misbehave(response: ServerResponse, behaviour: Exclude<Behaviour, 'normal'>): void {
    if (behaviour === 'hang') return;
    if (behaviour === 'reset') {
      response.socket?.destroy();
      return;
    }
    if (behaviour === 'trickle') {
      response.writeHead(200, { 'content-type': 'application/json', 'content-length': 100_000 });
      response.write('{');
      const timer = setInterval(() => response.write(' '), state.trickleEveryMs);
      timers.add(timer);
      response.on('close', () => {
        clearInterval(timer);
        timers.delete(timer);
      });
      return;
    }
    response.writeHead(behaviour.status, { 'content-type': 'application/json', ...behaviour.headers });
    response.end(behaviour.body);
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    instances,
    add(instanceId, token, patch = {}) {
      const instance: StandInInstance = {
        token,
        presenceUrl: '',
        otherUrls: {
          receivedCallbackUrl: 'https://crm.example.com/received',
          deliveryCallbackUrl: 'https://crm.example.com/delivery',
        },
        connected: true,
        due: Date.now() + 365 * 86_400_000,
        paymentStatus: 'PAID',
        behaviour: 'normal',
        script: [],
        ...patch,
      };
      instances.set(instanceId, instance);
      return instance;
    },
    get(instanceId) {
      const instance = instances.get(instanceId);
      if (!instance) throw new Error(`no stand-in instance ${instanceId}`);
      return instance;
    },
    get latencyMs() {
      return state.latencyMs;
    },
    set latencyMs(value: number) {
      state.latencyMs = value;
    },
    get trickleEveryMs() {
      return state.trickleEveryMs;
    },
    set trickleEveryMs(value: number) {
      state.trickleEveryMs = value;
    },
    get maxInFlight() {
      return state.maxInFlight;
    },
    get rateLimited() {
      return state.rateLimited;
    },
    get rateLimit() {
      return state.rateLimit;
    },
    get stormUntil() {
      return state.stormUntil;
    },
    set stormUntil(value: number | undefined) {
      state.stormUntil = value;
    },
    get stormRetryAfter() {
      return state.stormRetryAfter;
    },
    set stormRetryAfter(value: string) {
      state.stormRetryAfter = value;
    },
    set rateLimit(value: StandInRateLimit | undefined) {
      state.rateLimit = value;
      state.bucket = value?.perSecond ?? 0;
      state.bucketAt = performance.now();
    },
    reset() {
      requests.length = 0;
      state.maxInFlight = 0;
      state.rateLimited = 0;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const timer of timers) clearInterval(timer);
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
