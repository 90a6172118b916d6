/**
 * Lambda entry point: wires the SDK clients (created once per container) into the receiver core.
 *
 * Time bounds: every invocation gets one deadline (the time Lambda says is left, minus 1 s to answer),
 * and every remote call carries it: the master secret's read (the previous version's read is also cut
 * at 1.5 s) and each PutEvents call. A dependency that hangs, trickles or resets is cut off there and
 * answered with a 503 that is counted, before the function's timeout. Each call is also capped at what
 * its SDK attempts could take (`SDK_ATTEMPT_TIMEOUT_MS` x `SDK_MAX_ATTEMPTS`, plus 0.5 s), so a
 * trickling answer costs no more than a hung one.
 */
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { SSMClient } from '@aws-sdk/client-ssm';
import { requestHandlerSettings } from '../shared/aws/sdk-settings.ts';
import { masterSecretReader } from '../shared/secrets/master-secret.ts';
import { createApiGatewayHandler } from './adapter.ts';
import { readReceiverEnv } from './env.ts';
import { createInternalErrorLogger, createMetricsLogger } from './metrics.ts';
import { createPublisher } from './publisher.ts';
import { createSecretVerifier } from './secret.ts';

const config = readReceiverEnv(process.env);

const requestHandler = requestHandlerSettings(config.sdkAttemptTimeoutMs);
const ssm = new SSMClient({ maxAttempts: config.sdkMaxAttempts, requestHandler });
const eventBridge = new EventBridgeClient({ maxAttempts: config.sdkMaxAttempts, requestHandler });
// One call, the SDK's attempts included, never takes longer than its attempts could: an answer that
// trickles in defeats the SDK's idle timeout, and this cuts it (the invocation's deadline still applies).
const callCapMs = config.sdkAttemptTimeoutMs * config.sdkMaxAttempts + 500;

const verifySecret = createSecretVerifier({
  ttlMs: config.secretCacheSeconds * 1_000,
  // A rotated-away master stops working within the grace window even if the new value cannot be read.
  maxStaleMs: config.secretGraceSeconds * 1_000,
  load: masterSecretReader({
    ssm,
    parameterName: config.secretParameterName,
    graceMs: config.secretGraceSeconds * 1_000,
    readCapMs: callCapMs,
    warn: (record) => console.warn(record),
  }),
});

export const handler = createApiGatewayHandler(
  {
    maxBodyBytes: config.maxBodyBytes,
    verifySecret,
    publish: createPublisher({ client: eventBridge, eventBusName: config.eventBusName, callCapMs }),
  },
  createMetricsLogger(config.metricsNamespace, undefined, undefined, config.detailedMetrics),
  createInternalErrorLogger(config.metricsNamespace),
);
