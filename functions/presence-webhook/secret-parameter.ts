/**
 * Reads the webhook secret from SSM: the current version and, for an hour after a rotation, the
 * previous one (so callbacks Z-API still signs with the old value are not lost before `cdk deploy`
 * registers the new one).
 */
import { GetParameterCommand, type SSMClient } from '@aws-sdk/client-ssm';
import type { SecretValues } from './secret.ts';

/** How long the value before a rotation stays valid. */
export const PREVIOUS_SECRET_GRACE_MS = 60 * 60 * 1000;
/** When the previous version could not be read, how soon to try again. */
export const PREVIOUS_RETRY_MS = 30_000;
/** The previous version's read is given at most this long. */
export const PREVIOUS_READ_TIMEOUT_MS = 1_500;

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
    } catch (error) {
      const kind = error instanceof Error ? error.name : 'unknown';
      // Deleted from the history (permanent): the current value alone, cached as usual.
      if (kind === 'ParameterVersionNotFound') return { current: Parameter?.Value };
      // Anything else may pass: serve the current value alone and try again soon. Until then,
      // callbacks still carrying the old value get 401.
      console.warn({
        msg: 'could not read the previous version of the webhook secret; only the current one is accepted',
        parameter: `${name}:${version - 1}`,
        error: kind,
      });
      return { current: Parameter?.Value, ttlMs: PREVIOUS_RETRY_MS };
    }
  };
}
