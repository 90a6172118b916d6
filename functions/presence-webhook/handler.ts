/**
 * Lambda entry point: wires the SDK clients (created once per container) into the receiver core.
 *
 * Clients use the SDK's default configuration chain (region, credentials, `AWS_ENDPOINT_URL_*`), with
 * short timeouts and few attempts so a sick dependency is answered with a 503 well inside the function
 * timeout instead of a hung request. Worst case: secret read 2 x 1.5 s, then PutEvents calls of at most
 * 2 x 2 s each, a retry started only with 3.5 s left and every call aborted 1 s before the timeout (10 s).
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

const ssm = new SSMClient({
  maxAttempts: 2,
  requestHandler: { connectionTimeout: 1_000, requestTimeout: 1_500 },
});
const eventBridge = new EventBridgeClient({
  maxAttempts: 2,
  requestHandler: { connectionTimeout: 1_000, requestTimeout: 2_000 },
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
