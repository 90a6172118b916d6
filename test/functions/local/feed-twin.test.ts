/**
 * The live feed's local twin (functions/local/feed-twin.ts) spoken to with a raw WebSocket client (`ws`),
 * not the project's client: AppSync Events' protocol message by message, the shipped onSubscribe rule for
 * every case, tokens that are malformed, expired, of another issuer or for another host, publishing
 * refused, AppSync's limits, hostile text arriving byte-exact, 50 agents on one channel and a reconnect
 * storm.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { base64Url, realtimeProtocols } from '../../../functions/live-feed/client.ts';
import { issueLocalToken } from '../../../functions/local/local-tokens.ts';
import { send } from '../../../functions/local/send.ts';
import { type LocalServer, startLocalServer } from '../../../functions/local/server.ts';

const MASTER = 'twin-master-0123456789abcdefghijklmnopqrstu';
const A = '3C01A2B3C4D5E6F7A8B9C0D1E2F3A4B5';
const B = '9F8E7D6C5B4A39281706F5E4D3C2B1A0';
const HOSTILE = `"q" \\ </script><img src=x onerror=alert(1)> 😀\n`;

let server: LocalServer;

beforeAll(async () => {
  server = await startLocalServer({
    port: 0,
    secret: MASTER,
    out: () => {},
    err: () => {},
    feedKeepAliveMs: 200,
  });
});
afterAll(() => server.close());

type Message = {
  type: string;
  id?: string;
  event?: string;
  errors?: Array<{ errorType: string }>;
  connectionTimeoutMs?: number;
};

/** A raw connection that records every message. */
async function open(token: string, protocols = realtimeProtocols(server.httpDomain, token)) {
  const socket = new WebSocket(server.realtimeUrl, protocols);
  const messages: Message[] = [];
  socket.on('message', (data) => messages.push(JSON.parse(data.toString()) as Message));
  const closed = new Promise<number>((resolve) => socket.on('close', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('error', reject);
  });
  const next = async (type: string, id?: string, timeoutMs = 2_000): Promise<Message> => {
    const started = Date.now();
    for (;;) {
      const found = messages.findIndex((m) => m.type === type && (id === undefined || m.id === id));
      if (found >= 0) return messages.splice(found, 1)[0] as Message;
      if (Date.now() - started > timeoutMs) throw new Error(`no ${type} (got ${JSON.stringify(messages)})`);
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  const sendJson = (message: unknown) => socket.send(JSON.stringify(message));
  const subscribe = (id: string, channel: string, as = token) =>
    sendJson({
      type: 'subscribe',
      id,
      channel,
      authorization: { host: server.httpDomain, Authorization: as },
    });
  return { socket, messages, next, send: sendJson, subscribe, closed };
}

async function ready(token: string) {
  const connection = await open(token);
  connection.send({ type: 'connection_init' });
  await connection.next('connection_ack');
  return connection;
}

const post = (status: string, instance: string, phone: string) =>
  send(
    [status, '--url', server.baseUrl, '--instance', instance, '--phone', phone],
    { WEBHOOK_SECRET: MASTER },
    () => {},
  );

describe('the twin, to a raw WebSocket client', () => {
  it('speaks the protocol: subprotocol, connection_init -> connection_ack with its timeout, then ka', async () => {
    const c = await open(server.issueToken([A]));
    expect(c.socket.protocol).toBe('aws-appsync-event-ws');
    c.send({ type: 'connection_init' });
    expect(await c.next('connection_ack')).toEqual({ type: 'connection_ack', connectionTimeoutMs: 300_000 });
    expect(await c.next('ka', undefined, 1_000)).toEqual({ type: 'ka' });
    c.socket.close();
  });

  it('subscribes to an instance of the token, delivers data with the event as a JSON string, byte-exact, and unsubscribes', async () => {
    const c = await ready(server.issueToken([A]));
    c.subscribe('sub-1', `/presence/${A}`);
    expect(await c.next('subscribe_success', 'sub-1')).toEqual({ type: 'subscribe_success', id: 'sub-1' });
    await post('COMPOSING', A, HOSTILE);
    const data = await c.next('data', 'sub-1');
    expect(typeof data.event).toBe('string');
    const message = JSON.parse(data.event as string);
    expect(message).toMatchObject({ kind: 'derived', detail: { instanceId: A, phone: HOSTILE } });
    c.send({ type: 'unsubscribe', id: 'sub-1' });
    expect(await c.next('unsubscribe_success', 'sub-1')).toEqual({
      type: 'unsubscribe_success',
      id: 'sub-1',
    });
    c.messages.length = 0;
    await post('PAUSED', A, HOSTILE);
    await new Promise((r) => setTimeout(r, 150));
    expect(c.messages.filter((m) => m.type === 'data')).toEqual([]);
    c.send({ type: 'unsubscribe', id: 'sub-1' });
    expect((await c.next('unsubscribe_error', 'sub-1')).errors?.[0]?.errorType).toBe('BadRequestException');
    c.socket.close();
  });

  it.each([
    ['another instance', `/presence/${B}`, [A], 'Unauthorized'],
    ['a token with no groups', `/presence/${A}`, [], 'Unauthorized'],
    ['a wildcard', '/presence/*', ['zapi-presence-all'], 'Unauthorized'],
    ['a deeper path', `/presence/${A}/more`, [A], 'Unauthorized'],
    ['another namespace', `/other/${A}`, ['zapi-presence-all'], 'BadRequestException'],
    ['everything', '/*', ['zapi-presence-all'], 'BadRequestException'],
    ['a malformed channel', 'presence', ['zapi-presence-all'], 'BadRequestException'],
  ])('refuses %s with subscribe_error', async (_what, channel, groups, errorType) => {
    const c = await ready(server.issueToken(groups));
    c.subscribe('s', channel);
    expect((await c.next('subscribe_error', 's')).errors?.[0]?.errorType).toBe(errorType);
    c.socket.close();
  });

  it('lets the all-instances group subscribe to any instance', async () => {
    const c = await ready(server.issueToken(['zapi-presence-all']));
    c.subscribe('a', `/presence/${A}`);
    c.subscribe('b', `/presence/${B}`);
    await c.next('subscribe_success', 'a');
    await c.next('subscribe_success', 'b');
    c.socket.close();
  });

  it('refuses publishing: only IAM publishes to the feed', async () => {
    const c = await ready(server.issueToken(['zapi-presence-all']));
    c.send({
      type: 'publish',
      id: 'p',
      channel: `/presence/${A}`,
      events: ['{"forged":true}'],
      authorization: { host: server.httpDomain, Authorization: server.agentToken },
    });
    expect((await c.next('publish_error', 'p')).errors?.[0]?.errorType).toBe('UnauthorizedException');
    c.socket.close();
  });

  it.each([
    ['a malformed token', 'not.a.token'],
    ['an expired token', issueLocalToken(randomBytes(32), { sub: 'x', groups: [A] }, -10)],
    ['a token of another issuer (another key)', issueLocalToken(randomBytes(32), { sub: 'x', groups: [A] })],
    ['no token', ''],
  ])('answers %s with connection_error and closes', async (_what, token) => {
    const c = await open(token);
    c.send({ type: 'connection_init' });
    expect((await c.next('connection_error')).errors?.[0]?.errorType).toBe('UnauthorizedException');
    expect(await c.closed).toBe(4401);
  });

  it('refuses a subscription whose own authorization is expired or for another host', async () => {
    const c = await ready(server.issueToken([A]));
    c.subscribe('old', `/presence/${A}`, issueLocalToken(randomBytes(32), { sub: 'x', groups: [A] }, -1));
    expect((await c.next('subscribe_error', 'old')).errors?.[0]?.errorType).toBe('UnauthorizedException');
    c.send({
      type: 'subscribe',
      id: 'host',
      channel: `/presence/${A}`,
      authorization: { host: 'evil.example', Authorization: server.issueToken([A]) },
    });
    expect((await c.next('subscribe_error', 'host')).errors?.[0]?.errorType).toBe('UnauthorizedException');
    c.socket.close();
  });

  it('refuses a connection that names another host in its header', async () => {
    const token = server.issueToken([A]);
    const c = await open(token, [
      'aws-appsync-event-ws',
      `header-${base64Url(JSON.stringify({ host: 'evil.example', Authorization: token }))}`,
    ]);
    c.send({ type: 'connection_init' });
    expect((await c.next('connection_error')).errors?.[0]?.errorType).toBe('UnauthorizedException');
  });

  it('refuses an upgrade without the protocol, and one with a Host that is not loopback (DNS rebinding)', async () => {
    await expect(
      new Promise((resolve, reject) => {
        const socket = new WebSocket(server.realtimeUrl, ['graphql-ws']);
        socket.once('open', resolve);
        socket.once('error', reject);
      }),
    ).rejects.toThrow(/400/);
    await expect(
      new Promise((resolve, reject) => {
        const socket = new WebSocket(
          server.realtimeUrl,
          realtimeProtocols(server.httpDomain, server.agentToken),
          {
            headers: { host: 'attacker.example' },
          },
        );
        socket.once('open', resolve);
        socket.once('error', reject);
      }),
    ).rejects.toThrow(/421/);
  });

  it('refuses a page of another site (Origin), serves this machine’s pages and scripts without one', async () => {
    const upgrade = (origin?: string) =>
      new Promise((resolve, reject) => {
        const socket = new WebSocket(
          server.realtimeUrl,
          realtimeProtocols(server.httpDomain, server.agentToken),
          {
            ...(origin !== undefined && { origin }),
          },
        );
        socket.once('open', () => {
          socket.close();
          resolve('open');
        });
        socket.once('error', reject);
      });
    await expect(upgrade('https://evil.example')).rejects.toThrow(/403/);
    await expect(upgrade('null')).rejects.toThrow(/403/);
    await expect(upgrade(server.baseUrl)).resolves.toBe('open');
    await expect(upgrade('http://localhost:5173')).resolves.toBe('open');
    await expect(upgrade()).resolves.toBe('open');
  });

  it('closes a socket that never sends a valid connection_init, so idle sockets cannot fill it', async () => {
    const c = await open('');
    expect(await c.closed).toBe(1006);
  }, 10_000);

  it('answers what it cannot read, and anything before connection_init, with an error', async () => {
    const c = await open(server.agentToken);
    c.send({ type: 'subscribe', id: 'early', channel: '/presence/LOCAL' });
    expect((await c.next('error')).errors?.[0]?.errorType).toBe('BadRequestException');
    c.send({ type: 'connection_init' });
    await c.next('connection_ack');
    c.socket.send('{not json');
    expect((await c.next('error')).errors?.[0]?.errorType).toBe('BadRequestException');
    c.send({ type: 'nonsense' });
    expect((await c.next('error')).errors?.[0]?.errorType).toBe('BadRequestException');
    c.send({ type: 'subscribe', channel: '/presence/LOCAL' });
    expect((await c.next('error')).errors?.[0]?.errorType).toBe('BadRequestException');
    c.socket.close();
  });

  it('keeps AppSync’s 200 subscriptions a connection, and refuses an id in use', async () => {
    const c = await ready(server.issueToken([A]));
    for (let i = 0; i < 201; i += 1) c.subscribe(`s${i}`, `/presence/${A}`);
    for (let i = 0; i < 200; i += 1) await c.next('subscribe_success', `s${i}`);
    expect((await c.next('subscribe_error', 's200')).errors?.[0]?.errorType).toBe('LimitExceededException');
    c.subscribe('s0', `/presence/${A}`);
    expect((await c.next('subscribe_error', 's0')).errors?.[0]?.errorType).toBe('BadRequestException');
    c.socket.close();
  });

  it('delivers every event to 50 agents on one channel', async () => {
    const agents = await Promise.all(Array.from({ length: 50 }, () => ready(server.issueToken([B]))));
    for (const [i, agent] of agents.entries()) agent.subscribe(`a${i}`, `/presence/${B}`);
    await Promise.all(agents.map((agent, i) => agent.next('subscribe_success', `a${i}`)));
    await post('RECORDING', B, '5511977776666');
    const got = await Promise.all(agents.map((agent, i) => agent.next('data', `a${i}`)));
    expect(new Set(got.map((m) => m.event)).size).toBe(1);
    for (const agent of agents) agent.socket.close();
  });

  it('survives a reconnect storm: 100 connections dropped at once and 100 more opened at once, then a new one works', async () => {
    const storm = await Promise.all(Array.from({ length: 100 }, () => ready(server.agentToken)));
    for (const c of storm) c.socket.terminate();
    const again = await Promise.all(Array.from({ length: 100 }, () => ready(server.agentToken)));
    for (const c of again) c.socket.close();
    await new Promise((r) => setTimeout(r, 100));
    expect(server.feedConnections()).toBe(0);
    const c = await ready(server.agentToken);
    c.subscribe('after', '/presence/LOCAL');
    await c.next('subscribe_success', 'after');
    c.socket.close();
  });
});
