/**
 * API Gateway HTTP API (payload v2) <-> the receiver core. Shared by the Lambda handler and the local
 * server, so both answer identically.
 */
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { invocationDeadline, type RemainingTime } from '../shared/aws/deadline.ts';
import { errorName } from '../shared/aws/error-name.ts';
import {
  type Outcome,
  type ReceiveDeps,
  receiveWebhook,
  responseBody,
  type WebhookRequest,
} from './receive.ts';

export type OutcomeLogger = (outcome: Outcome, context: { requestId: string; durationMs: number }) => void;

/** Called for a bug (an error that is not a dependency failure); the answer is a bare 500. */
export type InternalErrorLogger = (context: { requestId: string; error: string }) => void;

const logInternalToConsole: InternalErrorLogger = ({ requestId, error }) =>
  console.error({ msg: 'unexpected error', requestId, error });

/** The part of Lambda's context the adapter uses. */
export type InvocationContext = RemainingTime;

export interface DeadlineSettings {
  /** Kept back from the time left, to answer and log after a dependency was cut off. @default 1_000 */
  readonly reserveMs?: number;
  /** The time allowed when there is no Lambda context (the local server). @default 10_000 */
  readonly fallbackMs?: number;
}

export interface ApiGatewayWebhookEvent {
  readonly pathParameters?: APIGatewayProxyEventV2['pathParameters'];
  readonly queryStringParameters?: APIGatewayProxyEventV2['queryStringParameters'];
  readonly headers?: APIGatewayProxyEventV2['headers'];
  readonly body?: string;
  readonly isBase64Encoded?: boolean;
  readonly requestContext?: { readonly requestId?: string; readonly timeEpoch?: number };
}

/** Reads what the core needs from an HTTP API event. Header names arrive lower-cased from HTTP APIs. */
export function toWebhookRequest(event: ApiGatewayWebhookEvent): WebhookRequest {
  return {
    instanceId: event.pathParameters?.instanceId,
    secret: event.queryStringParameters?.secret,
    contentType: headerValue(event.headers, 'content-type'),
    body: event.body,
    isBase64Encoded: event.isBase64Encoded === true,
    // API Gateway's request time (epoch ms): when the callback reached us, whatever the Lambda's start.
    ...(Number.isSafeInteger(event.requestContext?.timeEpoch) && {
      receivedAt: event.requestContext?.timeEpoch as number,
    }),
  };
}

function headerValue(headers: ApiGatewayWebhookEvent['headers'], name: string): string | undefined {
  if (!headers) return undefined;
  const direct = headers[name];
  if (direct !== undefined) return direct;
  for (const [key, value] of Object.entries(headers)) if (key.toLowerCase() === name) return value;
  return undefined;
}

const INTERNAL_ERROR = JSON.stringify({ ok: false, error: 'internal', message: 'internal error' });

export function toHttpResponse(outcome: Outcome): APIGatewayProxyStructuredResultV2 {
  return {
    statusCode: outcome.statusCode,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(responseBody(outcome)),
  };
}

export function createApiGatewayHandler(
  deps: ReceiveDeps,
  logOutcome: OutcomeLogger,
  logInternalError: InternalErrorLogger = logInternalToConsole,
  settings: DeadlineSettings = {},
  now: () => number = performance.now.bind(performance),
): (
  event: ApiGatewayWebhookEvent,
  context?: InvocationContext,
) => Promise<APIGatewayProxyStructuredResultV2> {
  return async function handle(event, context) {
    const started = now();
    const requestId = event.requestContext?.requestId ?? '-';
    // One deadline for the whole invocation; every remote call below carries it.
    const deadline = invocationDeadline(context, settings.reserveMs ?? 1_000, settings.fallbackMs ?? 10_000);
    try {
      const outcome = await receiveWebhook(toWebhookRequest(event), deps, deadline);
      logOutcome(outcome, { requestId, durationMs: now() - started });
      return toHttpResponse(outcome);
    } catch (error) {
      // A bug, not a dependency failure: name it in the log, never in the answer.
      logInternalError({ requestId, error: errorName(error) });
      return { statusCode: 500, headers: { 'content-type': 'application/json' }, body: INTERNAL_ERROR };
    }
  };
}
