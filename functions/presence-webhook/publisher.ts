/**
 * Puts one presence event on the bus and resolves only once EventBridge accepted it.
 *
 * Every PutEvents call carries the invocation's deadline: the call is cut off there whatever the bus does
 * (hangs, or answers its headers and trickles the body), so the caller can still answer 503 in time.
 * The SDK retries whole-request failures (network, throttling, 5xx) itself; PutEvents can also answer
 * 200 with a failed entry (`FailedEntryCount` > 0), which the SDK does not retry. Retryable entry errors
 * are retried here a bounded number of times with jittered backoff, while time is left; anything else
 * fails at once.
 */
import {
  type EventBridgeClient,
  PutEventsCommand,
  type PutEventsCommandOutput,
} from '@aws-sdk/client-eventbridge';
import type { Deadline } from '../shared/aws/deadline.ts';
import { errorName, knownName } from '../shared/aws/error-name.ts';
import { DETAIL_TYPES, EVENT_SOURCE, type PresenceStatus } from '../shared/contract/presence-contract.ts';
import { DependencyError, type EventSource } from './receive.ts';

export const RETRYABLE_ENTRY_ERRORS: ReadonlySet<string> = new Set([
  'InternalFailure',
  'InternalException',
  'ThrottlingException',
  'ServiceUnavailable',
]);

export interface PublisherOptions {
  readonly client: Pick<EventBridgeClient, 'send'>;
  /** Name or ARN of the bus. */
  readonly eventBusName: string;
  /** Attempts for a failed entry, the first included. @default 3 */
  readonly maxEntryAttempts?: number;
  /** @default 50 */
  readonly backoffBaseMs?: number;
  readonly sleep?: (ms: number) => Promise<void>;
  /** An entry retry starts only with at least this much time left before the deadline. @default 500 */
  readonly minRetryMs?: number;
  /** @default Math.random */
  readonly random?: () => number;
  /**
   * The longest one PutEvents call may take, retries of the SDK included (the deadline still applies):
   * an answer that trickles in keeps the SDK's idle timeout from firing, and this cuts it.
   * @default - the deadline only
   */
  readonly callCapMs?: number;
}

export type Publish = (
  status: PresenceStatus,
  detail: string,
  deadline: Deadline,
  /** @default EVENT_SOURCE */
  source?: EventSource,
) => Promise<{ readonly eventId: string }>;

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Jittered exponential backoff: base x 2^(attempt-1) x [0.5, 1.5). */
export function backoffMs(base: number, attempt: number, random: () => number = Math.random): number {
  return Math.round(base * 2 ** (attempt - 1) * (0.5 + random()));
}

export function createPublisher(options: PublisherOptions): Publish {
  const maxAttempts = Math.max(1, options.maxEntryAttempts ?? 3);
  const base = options.backoffBaseMs ?? 50;
  const sleep = options.sleep ?? defaultSleep;
  const minRetryMs = options.minRetryMs ?? 500;
  const random = options.random ?? Math.random;

  return async function publish(status, detail, deadline, source = EVENT_SOURCE) {
    const entry = {
      EventBusName: options.eventBusName,
      Source: source,
      DetailType: DETAIL_TYPES[status],
      Detail: detail,
    };
    // Stryker disable next-line StringLiteral: equivalent, always replaced before it is read.
    let lastCode = 'unknown';
    for (let attempt = 1; attempt <= maxAttempts; attempt++) {
      if (attempt > 1) {
        const pause = backoffMs(base, attempt - 1, random);
        if (deadline.remainingMs() - pause < minRetryMs) {
          lastCode += ' (no time left to retry)';
          break;
        }
        await sleep(pause);
      }
      let response: PutEventsCommandOutput;
      try {
        response = await deadline.run(
          'EventBridge PutEvents',
          (abortSignal) => options.client.send(new PutEventsCommand({ Entries: [entry] }), { abortSignal }),
          options.callCapMs,
        );
      } catch (error) {
        throw new DependencyError('bus', `PutEvents failed: ${errorName(error)}`, { cause: error });
      }
      const result = response.Entries?.[0];
      if (!response.FailedEntryCount && result?.EventId) return { eventId: result.EventId };
      const code = result?.ErrorCode ?? 'NoEventId';
      // The entry's code is the answer's text: shown only when known.
      lastCode = knownName(code);
      if (!RETRYABLE_ENTRY_ERRORS.has(code)) break;
    }
    throw new DependencyError('bus', `PutEvents entry failed: ${lastCode}`);
  };
}
