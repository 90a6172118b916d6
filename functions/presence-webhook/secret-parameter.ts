/**
 * Reads the webhook secret from SSM: the current version and, for an hour after a rotation, the
 * previous one (so callbacks Z-API still signs with the old value are not lost before `cdk deploy`
 * registers the new one).
 */
import { GetParameterCommand, type SSMClient } from '@aws-sdk/client-ssm';
import type { SecretValues } from './secret.ts';

/** How long the value before a rotation stays valid. */
export const PREVIOUS_SECRET_GRACE_MS = 60 * 60 * 1000;

export function secretParameterLoader(
  ssm: Pick<SSMClient, 'send'>,
  name: string,
  now: () => number = Date.now,
): () => Promise<SecretValues> {
  return async () => {
    const { Parameter } = await ssm.send(new GetParameterCommand({ Name: name, WithDecryption: true }));
    const version = Parameter?.Version ?? 1;
    const rotatedAt = Parameter?.LastModifiedDate?.getTime();
    if (version <= 1 || rotatedAt === undefined || now() - rotatedAt >= PREVIOUS_SECRET_GRACE_MS) {
      return { current: Parameter?.Value };
    }
    try {
      const previous = await ssm.send(
        new GetParameterCommand({ Name: `${name}:${version - 1}`, WithDecryption: true }),
      );
      return {
        current: Parameter?.Value,
        ...(previous.Parameter?.Value !== undefined && { previous: previous.Parameter.Value }),
        previousUntil: rotatedAt + PREVIOUS_SECRET_GRACE_MS,
      };
    } catch {
      // The previous version may have been deleted from history: serve the current one alone.
      return { current: Parameter?.Value };
    }
  };
}
