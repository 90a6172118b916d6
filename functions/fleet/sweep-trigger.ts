/**
 * What an invocation of the reconciler asks for. Accepted inputs:
 *
 *   {}                                   reconcile the whole fleet (manual)
 *   {"instanceIds": ["ID", ...]}         reconcile just those (manual)
 *   {"release": ["ID", ...]}             clear those instances' URL where it is still ours (before
 *                                        removing an instance)
 *   an EventBridge Scheduled Event       the drift sweep (whole fleet)
 *   an SSM "Parameter Store Change"      a token created or changed: that instance; the master or the
 *                                        Client-Token created or changed: the whole fleet; a token
 *                                        deleted: reported (Z-API cannot be called without it)
 */
import * as v from 'valibot';
import { CANARY_INSTANCE_ID, INSTANCE_ID_PATTERN } from '../shared/contract/presence-contract.ts';
import type { RunRequest } from './reconcile.ts';

const InstanceIds = v.pipe(
  v.array(
    v.pipe(
      v.string('must be a string'),
      v.regex(INSTANCE_ID_PATTERN, 'must be a Z-API instance id'),
      v.check(
        (id) => id !== CANARY_INSTANCE_ID,
        `${CANARY_INSTANCE_ID} is the canary's instance id: it is never registered at Z-API`,
      ),
    ),
  ),
  v.minLength(1, 'must list at least one instance'),
  v.maxLength(10_000, 'lists too many instances'),
);

const ManualInput = v.union(
  [
    v.strictObject({}),
    v.strictObject({ instanceIds: InstanceIds }),
    v.strictObject({ release: InstanceIds }),
  ],
  'expected {}, {"instanceIds": [...]} or {"release": [...]}',
);

const ScheduledEvent = v.looseObject({
  source: v.literal('aws.events'),
  'detail-type': v.literal('Scheduled Event'),
});

const ParameterChange = v.looseObject({
  source: v.literal('aws.ssm'),
  'detail-type': v.literal('Parameter Store Change'),
  detail: v.looseObject({ name: v.string(), operation: v.string() }),
});

export type Trigger =
  | { readonly kind: 'run'; readonly request: RunRequest }
  | { readonly kind: 'removed'; readonly instanceId: string }
  | { readonly kind: 'ignored'; readonly reason: string };

export interface TriggerContext {
  /** The instance a token parameter name belongs to, if it is one. */
  tokenInstance(name: string): string | undefined;
  readonly masterSecretParameter: string;
  readonly clientTokenParameter: string | undefined;
}

/** Thrown for an input the reconciler does not understand; the message says what it accepts. */
export class InvalidInput extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidInput';
  }
}

export function triggerFor(event: unknown, context: TriggerContext): Trigger {
  if (v.is(ScheduledEvent, event)) {
    return { kind: 'run', request: { mode: 'reconcile', trigger: 'sweep' } };
  }
  if (v.is(ParameterChange, event)) {
    const { name, operation } = event.detail;
    if (name === context.masterSecretParameter || name === context.clientTokenParameter) {
      if (operation === 'Create' || operation === 'Update') {
        const waitForNewMaster = name === context.masterSecretParameter;
        return {
          kind: 'run',
          request: { mode: 'reconcile', trigger: 'change', ...(waitForNewMaster && { waitForNewMaster }) },
        };
      }
      return { kind: 'ignored', reason: `${operation} of ${name} changes no URL` };
    }
    const instanceId = context.tokenInstance(name);
    if (instanceId === undefined) return { kind: 'ignored', reason: `${name} is not a token parameter` };
    if (operation === 'Delete') return { kind: 'removed', instanceId };
    if (operation === 'Create' || operation === 'Update') {
      return { kind: 'run', request: { mode: 'reconcile', trigger: 'change', instanceIds: [instanceId] } };
    }
    return { kind: 'ignored', reason: `${operation} of ${name} changes no URL` };
  }
  // An invocation with no payload arrives as null; an array is never an input.
  const manual = Array.isArray(event) ? undefined : v.safeParse(ManualInput, event ?? {});
  if (manual === undefined || !manual.success) {
    const issue = manual?.issues[0];
    const path = issue ? v.getDotPath(issue) : null;
    throw new InvalidInput(
      `unrecognized input${path ? ` (${path}: ${issue?.message})` : ''}; expected {}, {"instanceIds": ["ID"]}, {"release": ["ID"]}, a scheduled event or an SSM Parameter Store Change event`,
    );
  }
  const input = manual.output as { instanceIds?: string[]; release?: string[] };
  if (input.release) {
    return { kind: 'run', request: { mode: 'release', trigger: 'manual', instanceIds: input.release } };
  }
  return {
    kind: 'run',
    request: {
      mode: 'reconcile',
      trigger: 'manual',
      ...(input.instanceIds && { instanceIds: input.instanceIds }),
    },
  };
}
