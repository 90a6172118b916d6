/**
 * Reads the webhook master secret from SSM: the current version and, for a grace window after a rotation,
 * the previous one (callbacks Z-API still sends with the old derived secret are accepted until the
 * reconciler has re-registered every instance). Shared by the receiver and the reconciler.
 */
import type { Deadline } from '../aws/deadline.ts';
import { getParameter, ParameterError, type SsmPort } from '../aws/ssm.ts';
import { masterSecretProblem } from './webhook-secret.ts';

export interface MasterSecret {
  readonly current: string;
  /** When the current version was stored (epoch ms), if SSM said. */
  readonly since?: number;
  /** The value before the last rotation, valid until `previousUntil` (epoch ms). */
  readonly previous?: string;
  readonly previousUntil?: number;
  /**
   * An earlier version could not be read (it may be valid): keep this answer only briefly, and answer a
   * candidate that does not match the current value with "cannot verify now" rather than "wrong".
   */
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
/** How far back the history is searched for the previous valid master. */
const MAX_VERSIONS_BACK = 5;

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
    // The most recent valid value before the current one: a version that was never a valid master
    // (a mistyped rotation) registered nothing, so the one before it is what Z-API may still call.
    for (let back = version - 1; back >= Math.max(1, version - MAX_VERSIONS_BACK); back--) {
      const previousName = `${name}:${back}`;
      try {
        const previous = await getParameter(
          options.ssm,
          previousName,
          deadline,
          options.previousReadCapMs ?? DEFAULT_PREVIOUS_READ_CAP_MS,
        );
        const value = previous.Value as string;
        if (masterSecretProblem(value, name) !== undefined) continue;
        return { current, ...since, previous: value, previousUntil: rotatedAt + options.graceMs };
      } catch (error) {
        // Deleted from the history: permanent, the current value alone.
        if (error instanceof ParameterError && error.code === 'not-found') return { current, ...since };
        options.warn?.({
          msg: 'could not read an earlier version of the webhook master secret: callbacks that do not match the current one are answered 503 for now',
          parameter: previousName,
          error: error instanceof ParameterError ? error.code : 'unknown',
        });
        return { current, ...since, incomplete: true };
      }
    }
    return { current, ...since };
  };
}
