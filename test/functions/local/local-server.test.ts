/**
 * `npm start` and `npm run send`: the local server on an ephemeral port, real HTTP requests, and
 * publishing through the real SDK to an EventBridge stand-in on 127.0.0.1.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HELP, send } from '../../../functions/local/send.ts';
import {
  type LocalServer,
  localStateFile,
  optionsFromEnv,
  startLocalServer,
} from '../../../functions/local/server.ts';
import { createApiGatewayHandler } from '../../../functions/presence-webhook/adapter.ts';
import { createSecretVerifier } from '../../../functions/presence-webhook/secret.ts';
import {
  DETAIL_TYPES,
  EVENT_SOURCE,
  PRESENCE_STATUSES,
} from '../../../functions/shared/contract/presence-contract.ts';
import { deriveInstanceSecret } from '../../../functions/shared/secrets/webhook-secret.ts';
import { type AwsStandIn, standInEnvironment, startAwsStandIn } from '../../support/aws-standin.ts';

const MASTER = 'local-test-master-0123456789abcdefghijkl';
const INSTANCE = 'LOCALTEST';
/** The URL secret of INSTANCE, derived from the master as everywhere else. */
const SECRET = deriveInstanceSecret(MASTER, INSTANCE);

/** Entries with their detail parsed (its receivedAt is the server's clock). */
const parsedDetails = (entries: ReadonlyArray<{ Detail?: string }>) =>
  entries.map((entry) => ({ ...entry, Detail: JSON.parse(entry.Detail ?? '{}') as unknown }));

function post(
  url: string,
  body: string,
  headers: Record<string, string> = { 'content-type': 'application/json' },
) {
  return fetch(url, { method: 'POST', headers, body });
}

const callback = (patch: Record<string, unknown> = {}) =>
  JSON.stringify({
    type: 'PresenceChatCallback',
    phone: '5544999999999',
    status: 'COMPOSING',
    lastSeen: null,
    instanceId: INSTANCE,
    ...patch,
  });

describe('local server, dry run', () => {
  let server: LocalServer;
  const out: string[] = [];
  const err: string[] = [];

  beforeAll(async () => {
    server = await startLocalServer({
      port: 0,
      instanceId: INSTANCE,
      secret: MASTER,
      out: (l) => out.push(l),
      err: (l) => err.push(l),
    });
  });
  afterAll(async () => {
    await server.close();
  });

  it.each(PRESENCE_STATUSES)(
    'accepts %s and prints the event it would publish as one JSON line',
    async (status) => {
      out.length = 0;
      const body = callback({ status, isGroup: true });
      const response = await post(`${server.webhookUrl}?secret=${SECRET}`, body);
      expect(response.status).toBe(200);
      const answer = (await response.json()) as { ok: boolean; eventId: string };
      expect(answer.ok).toBe(true);
      expect(out).toHaveLength(1);
      expect(JSON.parse(out[0] ?? '')).toEqual({
        eventId: answer.eventId,
        EventBusName: '(dry run)',
        Source: EVENT_SOURCE,
        DetailType: DETAIL_TYPES[status],
        // Stamped with the time the server received it.
        Detail: { ...JSON.parse(body), receivedAt: expect.any(Number) },
      });
    },
  );

  it("serves any instance with its own derived secret, and refuses one instance's secret for another", async () => {
    const other = 'SECONDINSTANCE';
    const ok = await post(
      `${server.baseUrl}/instances/${other}/presence?secret=${deriveInstanceSecret(MASTER, other)}`,
      callback({ instanceId: other }),
    );
    expect(ok.status).toBe(200);
    const crossed = await post(
      `${server.baseUrl}/instances/${other}/presence?secret=${SECRET}`,
      callback({ instanceId: other }),
    );
    expect(crossed.status).toBe(401);
    const master = await post(`${server.webhookUrl}?secret=${MASTER}`, callback());
    expect(master.status).toBe(401);
  });

  it('answers bad requests exactly as the Lambda does', async () => {
    const lambda = createApiGatewayHandler(
      {
        maxBodyBytes: 16_384,
        verifySecret: createSecretVerifier({ load: async () => ({ current: MASTER }) }),
        publish: async () => ({ eventId: 'never' }),
      },
      () => {},
    );
    const cases: Array<{ query: string; instance: string; body: string; contentType: string }> = [
      { query: '', instance: INSTANCE, body: callback(), contentType: 'application/json' },
      {
        query: `?secret=wrong-secret-value-123`,
        instance: INSTANCE,
        body: callback(),
        contentType: 'application/json',
      },
      { query: `?secret=${SECRET}`, instance: 'OTHER', body: callback(), contentType: 'application/json' },
      { query: `?secret=${SECRET}`, instance: INSTANCE, body: callback(), contentType: 'text/plain' },
      {
        query: `?secret=${SECRET}`,
        instance: INSTANCE,
        body: callback({ pad: 'x'.repeat(20_000) }),
        contentType: 'application/json',
      },
      { query: `?secret=${SECRET}`, instance: INSTANCE, body: '{"type":', contentType: 'application/json' },
      {
        query: `?secret=${SECRET}`,
        instance: INSTANCE,
        body: callback({ status: 'TYPING', phone: '' }),
        contentType: 'application/json',
      },
      {
        query: `?secret=${SECRET}`,
        instance: INSTANCE,
        body: callback({ instanceId: 'OTHER' }),
        contentType: 'application/json',
      },
    ];
    const codes: number[] = [];
    for (const c of cases) {
      const response = await post(`${server.baseUrl}/instances/${c.instance}/presence${c.query}`, c.body, {
        'content-type': c.contentType,
      });
      const expected = await lambda({
        pathParameters: { instanceId: c.instance },
        queryStringParameters: Object.fromEntries(new URLSearchParams(c.query)),
        headers: { 'content-type': c.contentType },
        body: c.body,
        isBase64Encoded: false,
      });
      expect(response.status).toBe(expected.statusCode);
      expect(await response.text()).toBe(expected.body);
      codes.push(response.status);
    }
    expect(codes).toEqual([401, 401, 401, 415, 413, 400, 400, 400]);
  });

  it('answers unknown routes like API Gateway (a GET of the webhook path is the snapshot route: no agent token, 401)', async () => {
    const response = await fetch(`${server.baseUrl}/instances/${INSTANCE}/presence?secret=${SECRET}`);
    expect(response.status).toBe(401);
    expect(await response.json()).toEqual({ message: 'Unauthorized' });
    const elsewhere = await fetch(`${server.baseUrl}/elsewhere`);
    expect(elsewhere.status).toBe(404);
    expect(await elsewhere.json()).toEqual({ message: 'Not Found' });
    expect((await post(`${server.baseUrl}/elsewhere`, '{}')).status).toBe(404);
  });

  it('survives hostile paths and aborted requests', async () => {
    expect((await post(`${server.baseUrl}/instances/%E0/presence?secret=${SECRET}`, callback())).status).toBe(
      404,
    );
    expect(
      (await post(`${server.baseUrl}/instances/a%2Fb/presence?secret=${SECRET}`, callback())).status,
    ).toBe(404);
    const { request } = await import('node:http');
    await new Promise<void>((resolve) => {
      const req = request(`${server.webhookUrl}?secret=${SECRET}`, {
        method: 'POST',
        headers: { 'content-length': '1000' },
      });
      req.on('error', () => resolve());
      req.write('{"type":');
      setTimeout(() => {
        req.destroy();
        resolve();
      }, 50);
    });
    expect((await post(`${server.webhookUrl}?secret=${SECRET}`, callback())).status).toBe(200);
  });

  it('never prints the configured master or a derived secret, in access lines or notices', () => {
    expect(err.some((line) => line.includes('POST /instances/{instanceId}/presence 200'))).toBe(true);
    expect([...err, ...out].join('\n')).not.toContain(SECRET);
    expect([...err, ...out].join('\n')).not.toContain(MASTER);
  });
});

/** Sends headers (and optionally part of a body) and resolves with the status as soon as one arrives. */
function headersOnly(
  url: string,
  headers: Record<string, string>,
  partialBody = '',
): { status: Promise<number>; finish(rest: string): void; abort(): void } {
  const req = httpRequest(url, { method: 'POST', headers });
  const status = new Promise<number>((resolve, reject) => {
    req.on('response', (response) => {
      response.resume();
      resolve(response.statusCode ?? 0);
    });
    req.on('error', reject);
  });
  req.flushHeaders();
  if (partialBody) req.write(partialBody);
  return {
    status,
    finish: (rest) => req.end(rest),
    abort: () => req.destroy(),
  };
}

describe('local server, before reading a body', () => {
  let server: LocalServer;
  const MAX = 1_000;
  const errLines: string[] = [];

  beforeAll(async () => {
    server = await startLocalServer({
      port: 0,
      instanceId: INSTANCE,
      secret: MASTER,
      maxBodyBytes: MAX,
      maxInFlightBodyBytes: 2 * MAX,
      requestTimeoutMs: 1_500,
      out: () => {},
      err: (line) => errLines.push(line),
    });
  });
  afterAll(async () => {
    await server.close();
  });

  it('refuses an unauthenticated request without waiting for its (endless) body', async () => {
    const pending = headersOnly(`${server.webhookUrl}?secret=wrong`, {
      'content-type': 'application/json',
      'content-length': String(50 * 1024 * 1024),
    });
    expect(await pending.status).toBe(401);
    pending.abort();
  });

  it('refuses a declared Content-Length over the limit with 413 before reading it', async () => {
    const pending = headersOnly(`${server.webhookUrl}?secret=${SECRET}`, {
      'content-type': 'application/json',
      'content-length': String(MAX + 1),
    });
    expect(await pending.status).toBe(413);
    pending.abort();
  });

  it('accepts a body of exactly the limit', async () => {
    const base = callback();
    const body = callback({ pad: 'x'.repeat(MAX - Buffer.byteLength(base) - ',"pad":""'.length) });
    expect(Buffer.byteLength(body)).toBe(MAX);
    expect((await post(`${server.webhookUrl}?secret=${SECRET}`, body)).status).toBe(200);
  });

  it('cuts a chunked body (no Content-Length) at the limit with 413', async () => {
    const pending = headersOnly(
      `${server.webhookUrl}?secret=${SECRET}`,
      { 'content-type': 'application/json', 'transfer-encoding': 'chunked' },
      'x'.repeat(MAX + 10),
    );
    expect(await pending.status).toBe(413);
    pending.abort();
  });

  it('cuts off bodies that stop arriving, freeing their share of the budget, without an internal error', async () => {
    const body = callback({ pad: 'z'.repeat(600) });
    const headers = { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) };
    const stalled = [1, 2].map(() =>
      headersOnly(`${server.webhookUrl}?secret=${SECRET}`, headers, body.slice(0, 10)),
    );
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect((await post(`${server.webhookUrl}?secret=${SECRET}`, body)).status).toBe(503);
    for (const s of stalled) await s.status.catch(() => 0);
    expect((await post(`${server.webhookUrl}?secret=${SECRET}`, body)).status).toBe(200);
    expect(errLines.some((l) => l.includes('internal error'))).toBe(false);
  }, 10_000);

  it('caps the body bytes held at once across requests (503 busy), and frees them when done', async () => {
    const body = callback({ pad: 'y'.repeat(600) });
    const length = String(Buffer.byteLength(body));
    const headers = { 'content-type': 'application/json', 'content-length': length };
    const first = headersOnly(`${server.webhookUrl}?secret=${SECRET}`, headers, body.slice(0, 10));
    const second = headersOnly(`${server.webhookUrl}?secret=${SECRET}`, headers, body.slice(0, 10));
    await new Promise((resolve) => setTimeout(resolve, 100));
    const third = await post(`${server.webhookUrl}?secret=${SECRET}`, body);
    expect(third.status).toBe(503);
    expect(third.headers.get('retry-after')).toBe('1');
    expect(await third.json()).toMatchObject({ error: 'busy' });
    first.finish(body.slice(10));
    second.finish(body.slice(10));
    expect(await first.status).toBe(200);
    expect(await second.status).toBe(200);
    expect((await post(`${server.webhookUrl}?secret=${SECRET}`, body)).status).toBe(200);
  });
});

describe('local server, publishing to a bus', () => {
  let standIn: AwsStandIn;
  let server: LocalServer;
  const errors: string[] = [];

  beforeAll(async () => {
    standIn = await startAwsStandIn();
    const eventBridge = new EventBridgeClient({
      region: 'sa-east-1',
      endpoint: standIn.url,
      credentials: { accessKeyId: 'AKIDSTANDIN', secretAccessKey: 'stand-in' },
    });
    server = await startLocalServer({
      port: 0,
      instanceId: INSTANCE,
      secret: MASTER,
      eventBusName: 'dev-bus',
      eventBridge,
      err: (l) => errors.push(l),
    });
  });
  afterAll(async () => {
    await server.close();
    await standIn.close();
  });

  it('puts the event on the bus through the real SDK (AWS JSON 1.1)', async () => {
    const body = callback({ status: 'RECORDING' });
    const response = await post(`${server.webhookUrl}?secret=${SECRET}`, body);
    expect(response.status).toBe(200);
    expect(standIn.calls).toEqual(['AWSEvents.PutEvents']);
    expect(parsedDetails(standIn.events)).toEqual([
      {
        EventBusName: 'dev-bus',
        Source: EVENT_SOURCE,
        DetailType: DETAIL_TYPES.RECORDING,
        Detail: { ...JSON.parse(body), receivedAt: expect.any(Number) },
      },
    ]);
  });

  it('answers 503 when the bus refuses the entry, printing the cause on stderr', async () => {
    standIn.failNextEntries('AccessDeniedException');
    const response = await post(`${server.webhookUrl}?secret=${SECRET}`, callback());
    expect(response.status).toBe(503);
    expect(await response.json()).toMatchObject({ error: 'bus-unavailable' });
    expect(
      errors.some((l) => l.includes('bus-unavailable: PutEvents entry failed: AccessDeniedException')),
    ).toBe(true);
  });
});

/** A port on 127.0.0.1 that nothing listens on (one just closed). */
async function closedPort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

describe('npm run send', () => {
  let server: LocalServer;
  const out: string[] = [];

  beforeAll(async () => {
    // No secret configured: the server generates one and leaves it for the sender.
    server = await startLocalServer({ port: 0, out: (l) => out.push(l), err: () => {} });
  });
  afterAll(async () => {
    await server.close();
    expect(existsSync(localStateFile(server.port))).toBe(false);
  });

  it('posts the documented example to the local server, deriving the secret from the generated master', async () => {
    expect(JSON.parse(readFileSync(localStateFile(server.port), 'utf8'))).toEqual({
      master: expect.stringMatching(/^[0-9a-f]{64}$/),
    });
    const printed: string[] = [];
    const result = await send(['composing'], { PORT: String(server.port) }, (l) => printed.push(l));
    expect(result?.status).toBe(200);
    expect(JSON.parse(out.at(-1) ?? '')).toMatchObject({
      DetailType: DETAIL_TYPES.COMPOSING,
      Detail: { instanceId: 'LOCAL', phone: '5544999999999' },
    });
    expect(printed[0]).toBe(`POST ${server.webhookUrl}?secret=***`);
    expect(printed.at(-1)).toMatch(/^< 200 \{"ok":true/);
  });

  it('takes phone, instance, last-seen, URL and master options and never prints a secret', async () => {
    const secret = JSON.parse(readFileSync(localStateFile(server.port), 'utf8')).master as string;
    const printed: string[] = [];
    const result = await send(
      [
        'PAUSED',
        '--url',
        server.baseUrl,
        '--secret',
        secret,
        '--phone',
        '120363019502650977-group',
        '--instance',
        'LOCAL',
        '--last-seen',
        '1732540000',
      ],
      {},
      (l) => printed.push(l),
    );
    expect(result?.status).toBe(200);
    expect(JSON.parse(out.at(-1) ?? '').Detail).toEqual({
      type: 'PresenceChatCallback',
      phone: '120363019502650977-group',
      status: 'PAUSED',
      lastSeen: 1732540000,
      instanceId: 'LOCAL',
      receivedAt: expect.any(Number),
    });
    expect(printed.join('\n')).not.toContain(secret);
    expect(printed.join('\n')).not.toContain(deriveInstanceSecret(secret, 'LOCAL'));
  });

  it('uses the generated master for a base URL on loopback (it is the local server), never for another host', async () => {
    const printed: string[] = [];
    const result = await send(['COMPOSING', '--url', server.baseUrl], {}, (l) => printed.push(l));
    expect(result?.status).toBe(200);
    expect(printed[0]).toBe(`POST ${server.webhookUrl}?secret=***`);
    const localhost = server.baseUrl.replace('127.0.0.1', 'localhost');
    expect((await send(['COMPOSING', '--url', localhost], {}, () => {}))?.status).toBe(200);
    // Another host name (127.0.0.2 stands in for one, and stays on this machine): no secret is sent,
    // and the request fails (nothing listens there).
    const elsewhere: string[] = [];
    await expect(
      send(['COMPOSING', '--url', 'http://127.0.0.2:1'], {}, (l) => elsewhere.push(l)),
    ).rejects.toThrow();
    expect(elsewhere[0]).toBe('POST http://127.0.0.2:1/instances/LOCAL/presence (no secret)');
  });

  it('sends a group member’s presence with --participant (isGroup, participantPhone, as group callbacks carry it)', async () => {
    const result = await send(
      ['COMPOSING', '--phone', '120363019502650977-group', '--participant', '5511977776666'],
      { PORT: String(server.port) },
      () => {},
    );
    expect(result?.status).toBe(200);
    expect(JSON.parse(out.at(-1) ?? '').Detail).toEqual({
      type: 'PresenceChatCallback',
      phone: '120363019502650977-group',
      status: 'COMPOSING',
      lastSeen: null,
      instanceId: 'LOCAL',
      receivedAt: expect.any(Number),
      isGroup: true,
      participantPhone: '5511977776666',
    });
  });

  it('takes the instance from a full webhook URL that carries its secret', async () => {
    const master = JSON.parse(readFileSync(localStateFile(server.port), 'utf8')).master as string;
    const url = `${server.baseUrl}/instances/FROMURL/presence?secret=${deriveInstanceSecret(master, 'FROMURL')}`;
    const result = await send(['AVAILABLE', '--url', url], {}, () => {});
    expect(result?.status).toBe(200);
    expect(JSON.parse(out.at(-1) ?? '').Detail).toMatchObject({ instanceId: 'FROMURL' });
  });

  it('prints the answer of a refusal to a short test secret as the server wrote it (README: ?secret=wrong)', async () => {
    const printed: string[] = [];
    const result = await send(['AVAILABLE', '--url', `${server.webhookUrl}?secret=wrong`], {}, (l) =>
      printed.push(l),
    );
    expect(result?.status).toBe(401);
    expect(printed.at(-1)).toBe(
      '< 401 {"ok":false,"error":"unauthorized","message":"wrong secret for this instance"}',
    );
    // The README's example shows exactly that answer.
    expect(readFileSync(new URL('../../../README.md', import.meta.url), 'utf8')).toContain(
      `\n${printed.at(-1)}\n`,
    );
  });

  it('prints the answer of a refusal', async () => {
    const printed: string[] = [];
    const result = await send(
      ['AVAILABLE', '--url', `${server.webhookUrl}?secret=not-the-right-one-xx`],
      {},
      (l) => printed.push(l),
    );
    expect(result?.status).toBe(401);
    expect(printed.at(-1)).toBe(
      '< 401 {"ok":false,"error":"unauthorized","message":"wrong secret for this instance"}',
    );
  });

  it('never prints the secret a server echoes back, and follows no redirect', async () => {
    const { createServer } = await import('node:http');
    const echo = createServer((request, response) => {
      request.resume();
      if (request.url?.includes('redirect')) {
        response.writeHead(307, { location: `http://127.0.0.1:9/elsewhere${request.url}` });
        response.end();
        return;
      }
      response.writeHead(400, { 'content-type': 'application/json' });
      response.end(
        JSON.stringify({
          error: `unknown route ${request.url}`,
          again: decodeURIComponent(request.url ?? ''),
        }),
      );
    });
    await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
    const { port } = echo.address() as { port: number };
    try {
      const secret = deriveInstanceSecret(MASTER, 'ECHO1');
      for (const path of ['echo', 'redirect']) {
        const printed: string[] = [];
        const result = await send(
          [
            'AVAILABLE',
            '--url',
            `http://127.0.0.1:${port}/${path}/instances/ECHO1/presence?secret=${secret}`,
          ],
          {},
          (l) => printed.push(l),
        );
        expect(result?.status).toBe(path === 'echo' ? 400 : 307);
        expect(printed.join('\n')).not.toContain(secret);
        if (path === 'redirect') expect(printed.at(-1)).toContain('redirect not followed');
      }
    } finally {
      await new Promise<void>((resolve) => echo.close(() => resolve()));
    }
  });

  it('prints its options for --help and -h, and sends nothing', async () => {
    for (const flag of ['--help', '-h']) {
      const printed: string[] = [];
      // No URL answers on this port: a request would fail the test.
      await expect(send([flag], { PORT: '1' }, (line) => printed.push(line))).resolves.toBeUndefined();
      expect(printed).toEqual([HELP]);
      expect(HELP).toMatch(/^usage: npm run send -- </);
      for (const option of ['--url', '--instance', '--secret', '--phone', '--last-seen', '--help'])
        expect(HELP).toContain(option);
    }
  });

  it('names an unknown option and gives the usage', async () => {
    await expect(send(['COMPOSING', '--instanse', 'A'], {}, () => {})).rejects.toThrow(
      /Unknown option '--instanse'[\s\S]*\nusage: npm run send -- </,
    );
  });

  it('names an unknown status, or a missing one, and explains its usage', async () => {
    await expect(send(['TYPING'], {}, () => {})).rejects.toThrow(
      /^unknown status TYPING\nusage: npm run send -- <UNAVAILABLE\|AVAILABLE\|COMPOSING\|RECORDING\|PAUSED>/,
    );
    await expect(send([], {}, () => {})).rejects.toThrow(/^no status given\nusage: npm run send -- </);
    // Any case is fine for a known status.
    const closed = await closedPort();
    await expect(send(['composing', '--url', `http://127.0.0.1:${closed}`], {}, () => {})).rejects.toThrow(
      new RegExp(`^POST to 127\\.0\\.0\\.1:${closed} failed: ECONNREFUSED$`),
    );
    // fetch refuses some ports itself.
    await expect(send(['composing', '--url', 'http://127.0.0.1:1'], {}, () => {})).rejects.toThrow(
      /^POST to 127\.0\.0\.1:1 failed: bad port$/,
    );
  });

  it('never shows the secret when the request fails, and refuses credentials in --url', async () => {
    const master = 'aaaaaaaaaaaaaaaaB1c2D3e4F5g6H7i8j9K0lmnopqrstuvw';
    const derived = deriveInstanceSecret(master, 'INST1');
    const printed: string[] = [];
    const closed = await closedPort();
    const error = await send(
      ['COMPOSING', '--url', `http://127.0.0.1:${closed}/instances/INST1/presence`],
      { WEBHOOK_SECRET: master },
      (l) => printed.push(l),
    ).catch((e: unknown) => e);
    expect((error as Error).message).toBe(`POST to 127.0.0.1:${closed} failed: ECONNREFUSED`);
    expect(`${(error as Error).message} ${printed.join(' ')}`).not.toContain(derived);
    await expect(
      send(['COMPOSING', '--url', 'https://user:pw@127.0.0.1:9/instances/INST1/presence'], {}, () => {}),
    ).rejects.toThrow(/^--url must not carry a user name or password/);
  });
});

describe('optionsFromEnv', () => {
  it('reads the documented variables', () => {
    expect(
      optionsFromEnv({
        PORT: '4000',
        ZAPI_INSTANCE_ID: 'A',
        WEBHOOK_SECRET: MASTER,
        EVENT_BUS_NAME: 'bus',
      }),
    ).toEqual({
      port: 4000,
      instanceId: 'A',
      secret: MASTER,
      eventBusName: 'bus',
    });
    expect(optionsFromEnv({})).toEqual({ port: 3000 });
    expect(() => optionsFromEnv({ PORT: 'x' })).toThrow('PORT must be a port number, got "x"');
  });

  it.each(['short', `${'a'.repeat(40)}+/`])(
    'refuses a master the deployed receiver would refuse (%s)',
    async (bad) => {
      const error = (await startLocalServer({ port: 0, secret: bad }).catch((e: unknown) => e)) as Error;
      expect(error.message).toMatch(/^WEBHOOK_SECRET (holds|is)/);
      expect(error.message).toContain('openssl rand -hex 32');
      expect(error.message).not.toContain(bad);
    },
  );
});

describe('npm start as a process', () => {
  it('publishes through the SDK configured by the standard environment (AWS_ENDPOINT_URL_EVENTBRIDGE)', async () => {
    const standIn = await startAwsStandIn();
    const { spawn } = await import('node:child_process');
    const child = spawn(process.execPath, ['--import', 'tsx', 'functions/local/server.ts'], {
      env: {
        PATH: process.env.PATH ?? '',
        ...standInEnvironment(standIn.url),
        PORT: '0',
        WEBHOOK_SECRET: MASTER,
        ZAPI_INSTANCE_ID: INSTANCE,
        EVENT_BUS_NAME: 'my-dev-bus',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      const baseUrl = await new Promise<string>((resolve, reject) => {
        let output = '';
        child.stderr.on('data', (chunk: Buffer) => {
          output += chunk.toString();
          const match = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(output);
          if (match?.[1]) resolve(match[1]);
        });
        child.once('exit', (code) => reject(new Error(`exited ${code}: ${output}`)));
      });
      const body = callback({ status: 'AVAILABLE' });
      const response = await post(`${baseUrl}/instances/${INSTANCE}/presence?secret=${SECRET}`, body);
      expect(response.status).toBe(200);
      expect(parsedDetails(standIn.events)).toEqual([
        {
          EventBusName: 'my-dev-bus',
          Source: EVENT_SOURCE,
          DetailType: DETAIL_TYPES.AVAILABLE,
          Detail: { ...JSON.parse(body), receivedAt: expect.any(Number) },
        },
      ]);
    } finally {
      child.kill('SIGTERM');
      await standIn.close();
    }
  }, 30_000);

  it.each(['SIGINT', 'SIGTERM'] as const)(
    'shuts down cleanly on %s, printing no configured secret',
    async (signal) => {
      const { spawn } = await import('node:child_process');
      const child = spawn(process.execPath, ['--import', 'tsx', 'functions/local/server.ts'], {
        env: { ...process.env, PORT: '0', WEBHOOK_SECRET: MASTER, ZAPI_INSTANCE_ID: INSTANCE },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
      const listening = new Promise<string>((resolve, reject) => {
        child.stderr.on('data', (chunk: Buffer) => {
          output += chunk.toString();
          const match = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(output);
          if (match?.[1]) resolve(match[1]);
        });
        child.once('exit', (code) => reject(new Error(`exited ${code}: ${output}`)));
      });
      const baseUrl = await listening;
      const response = await post(`${baseUrl}/instances/${INSTANCE}/presence?secret=${SECRET}`, callback());
      expect(response.status).toBe(200);
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      child.kill(signal);
      expect(await exited).toBe(0);
      expect(output).toContain(`${signal}: shutting down`);
      expect(output).toContain('"DetailType":"Z-API Chat Presence COMPOSING"');
      expect(output).not.toContain(SECRET);
      expect(output).not.toContain(MASTER);
    },
    30_000,
  );
});
