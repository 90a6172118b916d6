/**
 * Lambda entry point: wires the SDK clients (created once per container) into the receiver core.
 *
 * Clients use the SDK's default configuration chain (region, credentials, `AWS_ENDPOINT_URL_*`), with
 * short timeouts and few attempts so a sick dependency is answered with a 503 well inside the function
 * timeout instead of a hung request. Worst case: the secret read, 2 attempts x 1.5 s (within an hour of
 * a rotation, plus the previous version's read, cut at 1.5 s); each PutEvents call, 2 attempts x 2 s; an
 * entry retry starts only with 5.5 s left, and a call that could run into the last second is aborted,
 * so a 503 goes out before the 10 s timeout (tested against stand-ins that hang or stall mid-answer).
 */
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { SSMClient } from '@aws-sdk/client-ssm';
import { createApiGatewayHandler } from './adapter.ts';
import { readReceiverEnv } from './env.ts';
import { createInternalErrorLogger, createMetricsLogger } from './metrics.ts';
import { createPublisher } from './publisher.ts';
import { createSecretVerifier } from './secret.ts';
import { secretParameterLoader } from './secret-parameter.ts';

const config = readReceiverEnv(process.env);

// throwOnRequestTimeout: without it the SDK's request timeout only logs a warning. socketTimeout: the
// request timeout stops at the response headers; a body that stalls after them is bounded by this.
const ssm = new SSMClient({
  maxAttempts: 2,
  requestHandler: {
    connectionTimeout: 1_000,
    requestTimeout: 1_500,
    throwOnRequestTimeout: true,
    socketTimeout: 1_500,
  },
});
const eventBridge = new EventBridgeClient({
  maxAttempts: 2,
  requestHandler: {
    connectionTimeout: 1_000,
    requestTimeout: 2_000,
    throwOnRequestTimeout: true,
    socketTimeout: 2_000,
  },
});

const verifySecret = createSecretVerifier({
  ttlMs: config.secretCacheSeconds * 1_000,
  load: secretParameterLoader(ssm, config.secretParameterName),
});

export const handler = createApiGatewayHandler(
  {
    instanceIds: config.instanceIds,
    maxBodyBytes: config.maxBodyBytes,
    verifySecret,
    publish: createPublisher({ client: eventBridge, eventBusName: config.eventBusName }),
  },
  createMetricsLogger(config.metricsNamespace),
  createInternalErrorLogger(config.metricsNamespace),
);
