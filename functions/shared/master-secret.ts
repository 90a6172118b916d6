/**
 * Reads the webhook master secret from SSM: the current version and, for a grace window after a rotation,
 * the previous one (callbacks Z-API still sends with the old derived secret are accepted until the
 * reconciler has re-registered every instance). Shared by the receiver and the reconciler.
 */
import type { Deadline } from './deadline.ts';
import { getParameter, ParameterError, type SsmPort } from './ssm.ts';
import { masterSecretProblem } from './webhook-secret.ts';

export interface MasterSecret {
  readonly current: string;
  /** When the current version was stored (epoch ms), if SSM said. */
  readonly since?: number;
  /** The value before the last rotation, valid until `previousUntil` (epoch ms). */
  readonly previous?: string;
  readonly previousUntil?: number;
  /** The previous version could not be read (it may be valid): keep this answer only briefly. */
  readonly incomplete?: boolean;
}

export interface MasterSecretReaderOptions {
  readonly ssm: SsmPort;
  readonly parameterName: string;
  /** How long the previous version stays valid after a rotation (0 = not at all). */
  readonly graceMs: number;
  /** Cap of the current version's read (the deadline still applies). @default no cap */
  readonly readCapMs?: number;
  /** Cap of the previous version's read: a slow history read must not cost the answer. @default 1_500 */
  readonly previousReadCapMs?: number;
  /** @default Date.now */
  readonly now?: () => number;
  /** Told when the previous version could not be read (the name, never a value). */
  readonly warn?: (record: Record<string, unknown>) => void;
}

export const DEFAULT_PREVIOUS_READ_CAP_MS = 1_500;

/** Reads the master (and, after a rotation, the previous one); throws {@link ParameterError}. */
export function masterSecretReader(
  options: MasterSecretReaderOptions,
): (deadline: Deadline) => Promise<MasterSecret> {
  const now = options.now ?? Date.now;
  const name = options.parameterName;
  return async (deadline) => {
    const parameter = await getParameter(options.ssm, name, deadline, options.readCapMs);
    const current = parameter.Value as string;
    const problem = masterSecretProblem(current, name);
    if (problem !== undefined) throw new ParameterError(problem, 'invalid', name);

    const version = parameter.Version ?? 1;
    const rotatedAt = parameter.LastModifiedDate?.getTime();
    const since = rotatedAt === undefined ? {} : { since: rotatedAt };
    if (version <= 1 || rotatedAt === undefined || now() - rotatedAt >= options.graceMs) {
      return { current, ...since };
    }
    const previousName = `${name}:${version - 1}`;
    try {
      const previous = await getParameter(
        options.ssm,
        previousName,
        deadline,
        options.previousReadCapMs ?? DEFAULT_PREVIOUS_READ_CAP_MS,
      );
      const value = previous.Value as string;
      // A previous value that was never a valid master was never used to register anything.
      if (masterSecretProblem(value, name) !== undefined) return { current, ...since };
      return { current, ...since, previous: value, previousUntil: rotatedAt + options.graceMs };
    } catch (error) {
      // Deleted from the history: permanent, the current value alone.
      if (error instanceof ParameterError && error.code === 'not-found') return { current, ...since };
      options.warn?.({
        msg: 'could not read the previous version of the webhook master secret; only the current one is accepted for now',
        parameter: previousName,
        error: error instanceof ParameterError ? error.code : 'unknown',
      });
      return { current, ...since, incomplete: true };
    }
  };
}
