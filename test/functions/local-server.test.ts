/**
 * `npm start` and `npm run send`: the local server on an ephemeral port, real HTTP requests, and
 * publishing through the real SDK to an EventBridge stand-in on 127.0.0.1.
 */
import { existsSync, readFileSync } from 'node:fs';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send } from '../../functions/local/send.ts';
import {
  type LocalServer,
  localStateFile,
  optionsFromEnv,
  startLocalServer,
} from '../../functions/local/server.ts';
import { createApiGatewayHandler } from '../../functions/presence-webhook/adapter.ts';
import { createSecretVerifier } from '../../functions/presence-webhook/secret.ts';
import { DETAIL_TYPES, EVENT_SOURCE, PRESENCE_STATUSES } from '../../functions/shared/presence-contract.ts';
import { type AwsStandIn, standInEnvironment, startAwsStandIn } from '../support/aws-standin.ts';

const SECRET = 'local-test-secret-0123456789';
const INSTANCE = 'LOCALTEST';

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
      instanceIds: [INSTANCE],
      secret: SECRET,
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
        Detail: JSON.parse(body),
      });
    },
  );

  it('answers bad requests exactly as the Lambda does', async () => {
    const lambda = createApiGatewayHandler(
      {
        instanceIds: new Set([INSTANCE]),
        maxBodyBytes: 16_384,
        verifySecret: createSecretVerifier({ load: async () => SECRET }),
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
    expect(codes).toEqual([401, 401, 404, 415, 413, 400, 400, 400]);
  });

  it('answers unknown routes like API Gateway', async () => {
    const response = await fetch(`${server.baseUrl}/instances/${INSTANCE}/presence?secret=${SECRET}`);
    expect(response.status).toBe(404);
    expect(await response.json()).toEqual({ message: 'Not Found' });
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

  it('never prints the configured secret, in access lines or notices', () => {
    expect(err.some((line) => line.includes('POST /instances/{instanceId}/presence 200'))).toBe(true);
    expect([...err, ...out].join('\n')).not.toContain(SECRET);
  });
});

describe('local server, publishing to a bus', () => {
  let standIn: AwsStandIn;
  let server: LocalServer;

  beforeAll(async () => {
    standIn = await startAwsStandIn();
    const eventBridge = new EventBridgeClient({
      region: 'sa-east-1',
      endpoint: standIn.url,
      credentials: { accessKeyId: 'AKIDSTANDIN', secretAccessKey: 'stand-in' },
    });
    server = await startLocalServer({
      port: 0,
      instanceIds: [INSTANCE, 'SECOND'],
      secret: SECRET,
      eventBusName: 'dev-bus',
      eventBridge,
      err: () => {},
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
    expect(standIn.events).toEqual([
      { EventBusName: 'dev-bus', Source: EVENT_SOURCE, DetailType: DETAIL_TYPES.RECORDING, Detail: body },
    ]);
  });

  it('answers 503 when the bus refuses the entry', async () => {
    standIn.failNextEntries('AccessDeniedException');
    const response = await post(`${server.webhookUrl}?secret=${SECRET}`, callback());
    expect(response.status).toBe(503);
    expect(await response.json()).toMatchObject({ error: 'bus-unavailable' });
  });
});

describe('npm run send', () => {
  let server: LocalServer;
  const out: string[] = [];

  beforeAll(async () => {
    // No secret configured: the server generates one and leaves it for the sender.
    server = await startLocalServer({
      port: 0,
      instanceIds: ['LOCAL'],
      out: (l) => out.push(l),
      err: () => {},
    });
  });
  afterAll(async () => {
    await server.close();
    expect(existsSync(localStateFile(server.port))).toBe(false);
  });

  it('posts the documented example to the local server, finding the generated secret', async () => {
    expect(JSON.parse(readFileSync(localStateFile(server.port), 'utf8'))).toEqual({
      url: expect.stringContaining('?secret='),
    });
    const printed: string[] = [];
    const result = await send(['composing'], { PORT: String(server.port) }, (l) => printed.push(l));
    expect(result.status).toBe(200);
    expect(JSON.parse(out.at(-1) ?? '')).toMatchObject({
      DetailType: DETAIL_TYPES.COMPOSING,
      Detail: { instanceId: 'LOCAL', phone: '5544999999999' },
    });
    expect(printed[0]).toBe(`POST ${server.webhookUrl}?secret=***`);
    expect(printed.at(-1)).toMatch(/^< 200 \{"ok":true/);
  });

  it('takes phone, instance, last-seen, URL and secret options and never prints the secret', async () => {
    const secret = JSON.parse(readFileSync(localStateFile(server.port), 'utf8')).url.split(
      'secret=',
    )[1] as string;
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
    expect(result.status).toBe(200);
    expect(JSON.parse(out.at(-1) ?? '').Detail).toEqual({
      type: 'PresenceChatCallback',
      phone: '120363019502650977-group',
      status: 'PAUSED',
      lastSeen: 1732540000,
      instanceId: 'LOCAL',
    });
    expect(printed.join('\n')).not.toContain(secret);
  });

  it('prints the answer of a refusal', async () => {
    const printed: string[] = [];
    const result = await send(
      ['AVAILABLE', '--url', `${server.webhookUrl}?secret=not-the-right-one-xx`],
      {},
      (l) => printed.push(l),
    );
    expect(result.status).toBe(401);
    expect(printed.at(-1)).toBe('< 401 {"ok":false,"error":"unauthorized","message":"wrong secret"}');
  });

  it('explains its usage for an unknown status', async () => {
    await expect(send(['TYPING'], {}, () => {})).rejects.toThrow(
      /usage: npm run send -- <UNAVAILABLE\|AVAILABLE\|COMPOSING\|RECORDING\|PAUSED>/,
    );
  });
});

describe('optionsFromEnv', () => {
  it('reads the documented variables', () => {
    expect(
      optionsFromEnv({
        PORT: '4000',
        ZAPI_INSTANCE_ID: 'A, B',
        WEBHOOK_SECRET: SECRET,
        EVENT_BUS_NAME: 'bus',
      }),
    ).toEqual({
      port: 4000,
      instanceIds: ['A', 'B'],
      secret: SECRET,
      eventBusName: 'bus',
    });
    expect(optionsFromEnv({})).toEqual({ port: 3000 });
    expect(() => optionsFromEnv({ PORT: 'x' })).toThrow('PORT must be a port number, got "x"');
  });

  it('refuses a secret the deployed receiver would refuse', async () => {
    await expect(startLocalServer({ port: 0, secret: 'short' })).rejects.toThrow(/at least 16 characters/);
  });
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
        WEBHOOK_SECRET: SECRET,
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
      expect(standIn.events).toEqual([
        {
          EventBusName: 'my-dev-bus',
          Source: EVENT_SOURCE,
          DetailType: DETAIL_TYPES.AVAILABLE,
          Detail: body,
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
        env: { ...process.env, PORT: '0', WEBHOOK_SECRET: SECRET, ZAPI_INSTANCE_ID: INSTANCE },
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
    },
    30_000,
  );
});
