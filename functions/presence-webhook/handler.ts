/**
 * Lambda entry point: wires the SDK clients (created once per container) into the receiver core.
 *
 * Time bounds: every invocation gets one deadline (the time Lambda says is left, minus 1 s to answer),
 * and every remote call carries it: the master secret's read (the previous version's read is also cut
 * at 1.5 s) and each PutEvents call. A dependency that hangs, trickles or resets is cut off there and
 * answered with a 503 that is counted, before the function's timeout. The SDK's own per-attempt timeouts
 * (`SDK_ATTEMPT_TIMEOUT_MS`, `SDK_MAX_ATTEMPTS`) only decide how many tries fit inside it.
 */
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { SSMClient } from '@aws-sdk/client-ssm';
import { masterSecretReader } from '../shared/master-secret.ts';
import { createApiGatewayHandler } from './adapter.ts';
import { readReceiverEnv } from './env.ts';
import { createInternalErrorLogger, createMetricsLogger } from './metrics.ts';
import { createPublisher } from './publisher.ts';
import { createSecretVerifier } from './secret.ts';

const config = readReceiverEnv(process.env);

// throwOnRequestTimeout: without it the SDK's request timeout only logs a warning.
const requestHandler = {
  connectionTimeout: Math.min(1_000, config.sdkAttemptTimeoutMs),
  requestTimeout: config.sdkAttemptTimeoutMs,
  throwOnRequestTimeout: true,
  socketTimeout: config.sdkAttemptTimeoutMs,
};
const ssm = new SSMClient({ maxAttempts: config.sdkMaxAttempts, requestHandler });
const eventBridge = new EventBridgeClient({ maxAttempts: config.sdkMaxAttempts, requestHandler });

const verifySecret = createSecretVerifier({
  ttlMs: config.secretCacheSeconds * 1_000,
  load: masterSecretReader({
    ssm,
    parameterName: config.secretParameterName,
    graceMs: config.secretGraceSeconds * 1_000,
    warn: (record) => console.warn(record),
  }),
});

export const handler = createApiGatewayHandler(
  {
    maxBodyBytes: config.maxBodyBytes,
    verifySecret,
    publish: createPublisher({ client: eventBridge, eventBusName: config.eventBusName }),
  },
  createMetricsLogger(config.metricsNamespace),
  createInternalErrorLogger(config.metricsNamespace),
);
