/**
 * A stand-in for Z-API's instance API on 127.0.0.1: PUT update-webhook-chat-presence and GET me, with
 * scriptable failures (status codes, odd bodies, hangs).
 */
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

export type Scripted = { readonly status: number; readonly body: string } | 'hang';

export interface ZapiRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

export interface ZapiStandIn {
  readonly url: string;
  readonly requests: ZapiRequest[];
  /** The chat-presence webhook URL the instance holds, as GET me reports it. */
  presenceUrl: string;
  /** Answers for the next requests, in order, before the normal behaviour resumes. */
  script(...answers: Scripted[]): void;
  /** Forgets scripted answers and recorded requests. */
  reset(): void;
  /** When set, requests without this Client-Token get `{"error":"null not allowed"}`. */
  requireClientToken: string | undefined;
  close(): Promise<void>;
}

export async function startZapiStandIn(instanceId: string, token: string): Promise<ZapiStandIn> {
  const queue: Scripted[] = [];
  const requests: ZapiRequest[] = [];
  const state = { presenceUrl: '', requireClientToken: undefined as string | undefined };
  const prefix = `/instances/${instanceId}/token/${token}/`;

  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      requests.push({
        method: request.method ?? '',
        path: request.url ?? '',
        headers: request.headers,
        body,
      });
      const send = (status: number, payload: unknown) => {
        const text = typeof payload === 'string' ? payload : JSON.stringify(payload);
        response.writeHead(status, { 'content-type': 'application/json' });
        response.end(text);
      };
      const next = queue.shift();
      if (next === 'hang') return; // never answer
      if (next) return send(next.status, next.body);
      if (
        state.requireClientToken !== undefined &&
        request.headers['client-token'] !== state.requireClientToken
      ) {
        return send(400, { error: 'null not allowed' });
      }
      const url = request.url ?? '';
      if (!url.startsWith(prefix)) return send(404, { error: 'Instance not found' });
      const operation = url.slice(prefix.length);
      if (request.method === 'PUT' && operation === 'update-webhook-chat-presence') {
        const value = (JSON.parse(body) as { value?: unknown }).value;
        if (typeof value !== 'string') return send(400, { error: 'value is required' });
        state.presenceUrl = value;
        return send(200, { value: true });
      }
      if (request.method === 'GET' && operation === 'me') {
        return send(200, {
          id: instanceId,
          token,
          name: 'stand-in',
          connected: true,
          presenceChatCallbackUrl: state.presenceUrl,
        });
      }
      return send(405, { error: 'Method not allowed' });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    get presenceUrl() {
      return state.presenceUrl;
    },
    set presenceUrl(value: string) {
      state.presenceUrl = value;
    },
    get requireClientToken() {
      return state.requireClientToken;
    },
    set requireClientToken(value: string | undefined) {
      state.requireClientToken = value;
    },
    script: (...answers) => queue.push(...answers),
    reset: () => {
      queue.length = 0;
      requests.length = 0;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
