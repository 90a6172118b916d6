/**
 * The canary's one HTTP call: a POST with Node's fetch, no redirect followed, cut at the deadline (or the
 * request cap, whichever comes first) whatever the endpoint does: hang, trickle or reset.
 */
import { type Deadline, DeadlineExceeded } from '../shared/aws/deadline.ts';
import { type HttpAnswer, NoAnswer } from './probe.ts';

/** Longest answer body read: the receiver's answers are under 1 KB. */
const MAX_ANSWER_BYTES = 64 * 1024;

export function createPost(requestCapMs: number) {
  return async function post(url: string, body: string, deadline: Deadline): Promise<HttpAnswer> {
    try {
      return await deadline.run(
        'webhook POST',
        async (signal) => {
          const response = await fetch(url, {
            method: 'POST',
            headers: { 'content-type': 'application/json', 'user-agent': 'zapi-presence-canary' },
            body,
            redirect: 'manual',
            signal,
          });
          const text = await response.text();
          return { status: response.status, body: text.slice(0, MAX_ANSWER_BYTES) };
        },
        requestCapMs,
      );
    } catch (error) {
      // Never the error itself: fetch's errors may carry the URL, and the URL carries the secret.
      throw new NoAnswer(error instanceof DeadlineExceeded ? 'timeout' : 'network');
    }
  };
}
