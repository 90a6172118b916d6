/**
 * Provider-framework onEvent handler: CloudFormation custom resource -> registration core.
 * Returns `{ PhysicalResourceId, Data }` or throws; the framework answers CloudFormation. The event is
 * never logged (its ResponseURL is a presigned URL).
 */
import { SSMClient } from '@aws-sdk/client-ssm';
import type { CloudFormationCustomResourceEvent, Context } from 'aws-lambda';
import { REGISTRATION_PROPERTIES } from './properties.ts';
import { deregister, RegistrationError, type RegistrationProps, register } from './registration.ts';
import { parameterReader } from './ssm.ts';
import { DEFAULT_ZAPI_BASE_URL, ZapiClient } from './zapi.ts';

/** Time kept back from the Lambda timeout so a failure is still reported. */
const SAFETY_MARGIN_MS = 10_000;

const ssm = new SSMClient({
  maxAttempts: 3,
  requestHandler: {
    connectionTimeout: 2_000,
    requestTimeout: 5_000,
    throwOnRequestTimeout: true,
    socketTimeout: 5_000,
  },
});
const readParameter = parameterReader(ssm);
const baseUrl = process.env.ZAPI_BASE_URL?.trim() || DEFAULT_ZAPI_BASE_URL;
/** Per-attempt timeout of a Z-API call (ms); 5 s unless set. */
const attemptTimeoutMs =
  Number(process.env.ZAPI_ATTEMPT_TIMEOUT_MS) > 0 ? Number(process.env.ZAPI_ATTEMPT_TIMEOUT_MS) : 5_000;

export interface OnEventResponse {
  readonly PhysicalResourceId: string;
  readonly Data?: Record<string, string>;
}

function propsOf(event: CloudFormationCustomResourceEvent): RegistrationProps {
  const raw = event.ResourceProperties as Record<string, unknown>;
  const text = (key: string, required: boolean): string | undefined => {
    const value = raw[key];
    if (typeof value === 'string' && value !== '') return value;
    if (required) throw new RegistrationError(`resource property ${key} is missing`);
    return undefined;
  };
  const P = REGISTRATION_PROPERTIES;
  const clientTokenParameter = text(P.clientTokenParameter, false);
  return {
    instanceId: text(P.instanceId, true) as string,
    webhookUrl: text(P.webhookUrl, true) as string,
    instanceTokenParameter: text(P.instanceTokenParameter, true) as string,
    webhookSecretParameter: text(P.webhookSecretParameter, true) as string,
    ...(clientTokenParameter !== undefined && { clientTokenParameter }),
  };
}

/**
 * An Update whose new properties carry an older deploy nonce than the old ones is CloudFormation
 * rolling back (the nonce is the synthesis time in ISO 8601, so strings compare in time order).
 */
export function isRollback(event: CloudFormationCustomResourceEvent): boolean {
  if (event.RequestType !== 'Update') return false;
  const next = (event.ResourceProperties as Record<string, unknown>)[REGISTRATION_PROPERTIES.deployNonce];
  const previous = (event.OldResourceProperties as Record<string, unknown>)[
    REGISTRATION_PROPERTIES.deployNonce
  ];
  return typeof next === 'string' && typeof previous === 'string' && next < previous;
}

export async function handler(
  event: CloudFormationCustomResourceEvent,
  context?: Pick<Context, 'getRemainingTimeInMillis'>,
): Promise<OnEventResponse> {
  const deadline =
    typeof context?.getRemainingTimeInMillis === 'function'
      ? Date.now() + context.getRemainingTimeInMillis() - SAFETY_MARGIN_MS
      : undefined;
  const deps = {
    readParameter,
    zapi: (credentials: ConstructorParameters<typeof ZapiClient>[0], extraSecrets: readonly string[]) =>
      new ZapiClient(credentials, {
        baseUrl,
        attemptTimeoutMs,
        redact: extraSecrets,
        ...(deadline !== undefined && { deadline }),
      }),
    log: console,
  };

  if (event.RequestType === 'Delete') {
    try {
      await deregister(propsOf(event), deps);
    } catch (error) {
      console.warn({ msg: 'delete: ignored', error: error instanceof Error ? error.name : 'unknown' });
    }
    return { PhysicalResourceId: event.PhysicalResourceId };
  }

  const props = propsOf(event);
  if (isRollback(event)) {
    // CloudFormation is rolling back a failed deploy by re-sending the previous properties. Tokens and
    // secret are read from SSM, not from the properties, so a failure here would most likely repeat the
    // one that caused the rollback and leave the stack in UPDATE_ROLLBACK_FAILED: try, never fail.
    try {
      await register(props, deps);
    } catch (error) {
      console.warn({
        msg: 'rollback: could not re-register the previous webhook URL; check the Z-API panel',
        instanceId: props.instanceId,
        error: error instanceof Error ? error.message : 'unknown',
      });
    }
  } else {
    await register(props, deps);
  }
  return {
    PhysicalResourceId: `zapi-chat-presence:${props.instanceId}`,
    Data: { WebhookUrl: props.webhookUrl },
  };
}
