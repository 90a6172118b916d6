/**
 * Puts one presence event on the bus and resolves only once EventBridge accepted it.
 *
 * The SDK retries whole-request failures (network, throttling, 5xx) itself; PutEvents can also answer
 * 200 with a failed entry (`FailedEntryCount` > 0), which the SDK does not retry. Retryable entry errors
 * are retried here a bounded number of times with jittered backoff; anything else fails at once.
 */
import {
  type EventBridgeClient,
  PutEventsCommand,
  type PutEventsCommandOutput,
} from '@aws-sdk/client-eventbridge';
import { DETAIL_TYPES, EVENT_SOURCE, type PresenceStatus } from '../shared/presence-contract.ts';
import { DependencyError, type Invocation } from './receive.ts';

const RETRYABLE_ENTRY_ERRORS = new Set([
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
  /**
   * Time kept back to answer: a call that could run past `remaining - reserveMs` is aborted then, so a
   * 503 is always answered before the function times out.
   * @default 1_000
   */
  readonly reserveMs?: number;
  /**
   * The longest one PutEvents call can take on the client's own timeouts (attempts x request timeout,
   * plus backoff). A retry starts only with this much time (plus the reserve) left; a call that starts
   * with less gets an abort signal. Warm calls have ample time and pay for no timer.
   * @default 4_500
   */
  readonly callBudgetMs?: number;
}

export type Publish = (
  status: PresenceStatus,
  detail: string,
  invocation?: Invocation,
) => Promise<{ readonly eventId: string }>;

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export function createPublisher(options: PublisherOptions): Publish {
  const maxAttempts = Math.max(1, options.maxEntryAttempts ?? 3);
  const base = options.backoffBaseMs ?? 50;
  const sleep = options.sleep ?? defaultSleep;
  const reserveMs = options.reserveMs ?? 1_000;
  const callBudgetMs = options.callBudgetMs ?? 4_500;

  return async function publish(status, detail, invocation = {}) {
    const remaining = invocation.remainingMs;
    const entry = {
      EventBusName: options.eventBusName,
      Source: EVENT_SOURCE,
      DetailType: DETAIL_TYPES[status],
      Detail: detail,
    };
    let lastCode = 'unknown';
    for (let attempt = 1; attempt <= maxAttempts; attempt++) {
      const left = remaining?.();
      if (left !== undefined && attempt > 1 && left < callBudgetMs + reserveMs) {
        lastCode += ' (no time left to retry)';
        break;
      }
      let response: PutEventsCommandOutput;
      try {
        const command = new PutEventsCommand({ Entries: [entry] });
        response =
          left === undefined || left >= callBudgetMs + reserveMs
            ? await options.client.send(command)
            : await options.client.send(command, {
                abortSignal: AbortSignal.timeout(Math.max(1, left - reserveMs)),
              });
      } catch (error) {
        throw new DependencyError('bus', `PutEvents failed: ${errorName(error)}`, { cause: error });
      }
      const result = response.Entries?.[0];
      if (!response.FailedEntryCount && result?.EventId) return { eventId: result.EventId };
      lastCode = result?.ErrorCode ?? 'NoEventId';
      if (!RETRYABLE_ENTRY_ERRORS.has(lastCode)) break;
      if (attempt < maxAttempts) await sleep(Math.round(base * 2 ** (attempt - 1) * (0.5 + Math.random())));
    }
    throw new DependencyError('bus', `PutEvents entry failed: ${lastCode}`);
  };
}

function errorName(error: unknown): string {
  return error instanceof Error ? error.name : 'UnknownError';
}
