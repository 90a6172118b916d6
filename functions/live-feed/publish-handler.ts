/**
 * The feed's publisher Lambda: EventBridge invokes it (asynchronously) with one event of a rule on the
 * bus (a derived event of the presence store, or a COMPOSING/RECORDING callback), and it publishes that
 * event to its instance's channel on AppSync Events, signed with the function's role (no API key).
 *
 * - Published: done.
 * - Refused outright (not a feed event, an invalid detail, over AppSync's 240 KB): counted (FeedRefused,
 *   by reason) and sent to the feed's dead-letter queue at once; retrying could not help.
 * - Not published in time (AppSync down, throttling, failed entries): the invocation fails, Lambda retries
 *   it twice, then its on-failure destination is the same dead-letter queue (alarmed: LiveFeedDeadLetters).
 *
 * Logs carry the outcome, the instance and the message kind; never the chat or the payload.
 */
import { createHash, createHmac } from 'node:crypto';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { SignatureV4 } from '@smithy/signature-v4';
import type { Context } from 'aws-lambda';
import { type Deadline, invocationDeadline } from '../shared/aws/deadline.ts';
import { errorName } from '../shared/aws/error-name.ts';
import { requestHandlerSettings } from '../shared/aws/sdk-settings.ts';
import { defaultProvider } from '../shared/bundle/lambda-credentials.ts';
import { requiredEnv } from '../shared/env.ts';
import { DEFAULT_METRICS_NAMESPACE } from '../shared/metrics.ts';
import { type BusEvent, encodeFeedEvent, type FeedRefusal } from './message.ts';
import { createFeedPublisher, type PublishFeed, type SendPublish } from './publisher.ts';
import { FEED_ENV, FEED_METRICS } from './settings.ts';

export interface FeedHandlerDeps {
  readonly publish: PublishFeed;
  /** Puts a refused event on the dead-letter queue. */
  readonly deadLetter: (body: string, deadline: Deadline) => Promise<void>;
  readonly metricsNamespace: string;
  /** One log or metric line (EMF lines go straight to stdout). @default process.stdout */
  readonly write?: (line: string) => void;
}

export type FeedOutcome =
  | { readonly outcome: 'published'; readonly requests: number }
  | { readonly outcome: 'refused'; readonly reason: FeedRefusal }
  | { readonly outcome: 'skipped'; readonly reason: FeedRefusal };

/** Thrown when an event could not be published in time: Lambda retries the invocation, then dead-letters it. */
export class FeedNotPublished extends Error {
  constructor(codes: readonly string[]) {
    super(
      `the event was not published to the live feed (${[...new Set(codes)].join(', ')}); Lambda retries it`,
    );
    this.name = 'FeedNotPublished';
  }
}

export function createFeedHandler(deps: FeedHandlerDeps) {
  const write = deps.write ?? ((line: string) => process.stdout.write(`${line}\n`));
  return async (event: BusEvent, deadline: Deadline): Promise<FeedOutcome> => {
    const encoded = encodeFeedEvent(event);
    // News of a chat the store never keeps: nothing was lost (the callback is on the bus), nobody could
    // show it. Skipped with a line, not dead-lettered: anyone with one instance's URL could otherwise
    // raise LiveFeedDeadLetters at will.
    if (!encoded.ok && encoded.reason === 'unstorable-chat') {
      write(JSON.stringify({ level: 'INFO', msg: 'live feed news skipped', reason: encoded.reason }));
      return { outcome: 'skipped', reason: encoded.reason };
    }
    if (!encoded.ok) {
      // Straight to stdout as EMF (Lambda's JSON log format would wrap console output).
      write(
        JSON.stringify({
          _aws: {
            Timestamp: Date.now(),
            CloudWatchMetrics: [
              {
                Namespace: deps.metricsNamespace,
                Dimensions: [['Reason']],
                Metrics: [{ Name: FEED_METRICS.refused, Unit: 'Count' }],
              },
            ],
          },
          level: 'WARN',
          msg: 'live feed event refused',
          Reason: encoded.reason,
          why: encoded.detail,
          [FEED_METRICS.refused]: 1,
        }),
      );
      await deps.deadLetter(
        JSON.stringify({ refused: encoded.reason, why: encoded.detail, event }),
        deadline,
      );
      return { outcome: 'refused', reason: encoded.reason };
    }
    const outcome = await deps.publish([encoded.event], deadline);
    const instanceId = encoded.event.channel.split('/')[2];
    if (outcome.unpublished.length > 0) {
      const codes = outcome.unpublished.map((u) => u.code);
      write(
        JSON.stringify({
          level: 'WARN',
          msg: 'live feed publish failed',
          instanceId,
          kind: encoded.message.kind,
          codes,
          requests: outcome.requests,
        }),
      );
      throw new FeedNotPublished(codes);
    }
    return { outcome: 'published', requests: outcome.requests };
  };
}

/** SHA-256 and HMAC-SHA-256 from node:crypto, in the shape the SigV4 signer takes. */
export class NodeSha256 {
  private readonly hash;
  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    this.hash = secret === undefined ? createHash('sha256') : createHmac('sha256', bytes(secret));
  }
  update(data: string | ArrayBuffer | ArrayBufferView): void {
    this.hash.update(bytes(data));
  }
  digest(): Promise<Uint8Array> {
    return Promise.resolve(new Uint8Array(this.hash.digest()));
  }
}

function bytes(data: string | ArrayBuffer | ArrayBufferView): string | Uint8Array {
  if (typeof data === 'string') return data;
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return new Uint8Array(data);
}

/** AppSync's answer to a publish of 5 events is a few hundred bytes; a larger one is not read. */
const MAX_ANSWER_BYTES = 64 * 1024;

/** The body as text, or '' (unreadable: the events are sent again) when it is over `cap` bytes. */
export async function readCapped(response: Response, cap: number): Promise<string> {
  const reader = response.body?.getReader();
  if (reader === undefined) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > cap) {
      await reader.cancel();
      return '';
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** The publish endpoint: `https://{domain}/event`, or a full URL (a stand-in in tests). */
export function publishUrl(domainOrUrl: string): URL {
  const base = /^https?:\/\//.test(domainOrUrl) ? domainOrUrl : `https://${domainOrUrl}`;
  return new URL('/event', base);
}

/** A SendPublish that signs each request with SigV4 (service `appsync`) and POSTs it with fetch. */
export function signedSend(
  url: URL,
  signer: Pick<SignatureV4, 'sign'>,
  fetchFn: typeof fetch = fetch,
): SendPublish {
  return async (request, signal) => {
    const body = JSON.stringify({ channel: request.channel, events: request.events });
    const signed = await signer.sign({
      method: 'POST',
      protocol: url.protocol,
      hostname: url.hostname,
      ...(url.port !== '' && { port: Number(url.port) }),
      path: url.pathname,
      query: {},
      headers: { host: url.host, 'content-type': 'application/json' },
      body,
    });
    const response = await fetchFn(url, {
      method: 'POST',
      headers: signed.headers as Record<string, string>,
      body,
      signal,
      // A redirect would carry the signed request (its security token) elsewhere: AppSync never sends one.
      redirect: 'error',
    });
    const text = await readCapped(response, MAX_ANSWER_BYTES);
    const retryAfter = Number(response.headers.get('retry-after'));
    return {
      status: response.status,
      body: text,
      ...(Number.isFinite(retryAfter) &&
        retryAfter > 0 && { retryAfterMs: Math.min(retryAfter, 30) * 1_000 }),
    };
  };
}

let handle: ReturnType<typeof createFeedHandler> | undefined;

function wired(): ReturnType<typeof createFeedHandler> {
  const env = process.env;
  const url = publishUrl(requiredEnv(env, FEED_ENV.httpDomain));
  const deadLettersUrl = requiredEnv(env, FEED_ENV.deadLettersUrl);
  const signer = new SignatureV4({
    service: 'appsync',
    region: requiredEnv(env, 'AWS_REGION'),
    credentials: defaultProvider(),
    sha256: NodeSha256,
  });
  const sqs = new SQSClient({ maxAttempts: 2, requestHandler: requestHandlerSettings(2_000) });
  return createFeedHandler({
    publish: createFeedPublisher({ send: signedSend(url, signer) }),
    deadLetter: async (body, deadline) => {
      await deadline.run('SQS SendMessage', (abortSignal) =>
        sqs.send(new SendMessageCommand({ QueueUrl: deadLettersUrl, MessageBody: body }), { abortSignal }),
      );
    },
    metricsNamespace: env[FEED_ENV.metricsNamespace]?.trim() || DEFAULT_METRICS_NAMESPACE,
  });
}

export async function handler(event: BusEvent, context?: Context): Promise<FeedOutcome> {
  handle ??= wired();
  try {
    return await handle(event, invocationDeadline(context, 500, 8_000));
  } catch (error) {
    if (!(error instanceof FeedNotPublished)) {
      process.stdout.write(
        `${JSON.stringify({ level: 'ERROR', msg: 'live feed handler failed', error: errorName(error) })}\n`,
      );
    }
    throw error;
  }
}
