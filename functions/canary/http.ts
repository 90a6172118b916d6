/**
 * The canary's one HTTP call: a POST on a fresh connection (no keep-alive: a socket kept across a frozen
 * Lambda container could be stale and fail the run), no redirect followed, cut at the deadline (or the
 * request cap, whichever comes first) whatever the endpoint does: hang, trickle or reset.
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { type Deadline, DeadlineExceeded } from '../shared/aws/deadline.ts';
import { type HttpAnswer, NoAnswer } from './probe.ts';

/** Longest answer body kept: the receiver's answers are under 1 KB. */
const MAX_ANSWER_BYTES = 64 * 1024;

function send(url: string, body: string, signal: AbortSignal): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    const request = (target.protocol === 'https:' ? httpsRequest : httpRequest)(
      target,
      {
        method: 'POST',
        agent: false,
        signal,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          'user-agent': 'zapi-presence-canary',
        },
      },
      (response) => {
        const chunks: Buffer[] = [];
        let size = 0;
        response.on('data', (chunk: Buffer) => {
          if (size < MAX_ANSWER_BYTES) chunks.push(chunk);
          size += chunk.length;
        });
        response.on('end', () =>
          resolve({
            status: response.statusCode ?? 0,
            body: Buffer.concat(chunks).toString('utf8').slice(0, MAX_ANSWER_BYTES),
          }),
        );
        response.on('error', reject);
      },
    );
    request.on('error', reject);
    request.end(body);
  });
}

export function createPost(requestCapMs: number) {
  return async function post(url: string, body: string, deadline: Deadline): Promise<HttpAnswer> {
    try {
      return await deadline.run('webhook POST', (signal) => send(url, body, signal), requestCapMs);
    } catch (error) {
      // Never the error itself: a network error may carry the URL, and the URL carries the secret.
      throw new NoAnswer(error instanceof DeadlineExceeded ? 'timeout' : 'network');
    }
  };
}
