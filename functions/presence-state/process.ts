/**
 * The presence-state subscriber's core: one raw presence event, or one expiry check, in; the chat's
 * state updated and the derived events published. Dependencies are passed in.
 *
 * Exactly-once effects on the state, at-least-once derived events:
 * - the state is written with an optimistic version check (concurrent deliveries for one chat retry on
 *   the fresh state), together with the derived events it produced (`pending`, an outbox);
 * - the derived events are published after the write, then cleared; if publishing fails, the next
 *   delivery (a retry, or the chat's next event) publishes them first;
 * - an activity start or refresh schedules an expiry check on a delay queue first, so a failure there is
 *   retried before anything is written.
 */
import type { Deadline } from '../shared/deadline.ts';
import {
  applyPresence,
  type DerivedEvent,
  expireActivity,
  type PresenceInput,
} from '../shared/presence-state.ts';
import type { PresenceStore } from '../shared/presence-store.ts';

export interface StateDeps {
  readonly store: PresenceStore;
  /** Puts the derived events on the bus; throws when any was not accepted. */
  publish(events: readonly DerivedEvent[], deadline: Deadline): Promise<void>;
  /** Asks for an expiry check of the chat after `delaySeconds`. */
  scheduleExpiry(instanceId: string, phone: string, delaySeconds: number, deadline: Deadline): Promise<void>;
  readonly now: () => number;
  readonly expiryMs: number;
}

export type StateOutcome =
  | 'applied'
  | 'older'
  | 'duplicate'
  | 'expired'
  | 'nothing-to-expire'
  | 'unknown-chat';

const MAX_CONFLICTS = 5;

/** Publishes what an earlier delivery wrote but could not confirm published. */
async function flushPending(instanceId: string, phone: string, deps: StateDeps, deadline: Deadline) {
  const stored = await deps.store.get(instanceId, phone, deadline);
  if (stored && stored.pending.length > 0) {
    await deps.publish(stored.pending, deadline);
    await deps.store.clearPending(instanceId, phone, stored.version, deadline);
    return deps.store.get(instanceId, phone, deadline);
  }
  return stored;
}

export async function processPresence(
  input: PresenceInput,
  deps: StateDeps,
  deadline: Deadline,
): Promise<StateOutcome> {
  for (let attempt = 0; attempt < MAX_CONFLICTS; attempt++) {
    const stored = await flushPending(input.instanceId, input.phone, deps, deadline);
    const result = applyPresence(stored?.state, input);
    if (result.kind !== 'applied') return result.kind;
    if (result.state.activity !== undefined && result.state.activityLastNews === input.time) {
      // Counted from the news, plus a second: EventBridge times are whole seconds.
      await deps.scheduleExpiry(
        input.instanceId,
        input.phone,
        Math.ceil(deps.expiryMs / 1_000) + 2,
        deadline,
      );
    }
    if (!(await deps.store.put(result.state, result.derived, stored?.version, deadline))) continue;
    if (result.derived.length > 0) {
      await deps.publish(result.derived, deadline);
      await deps.store.clearPending(input.instanceId, input.phone, (stored?.version ?? 0) + 1, deadline);
    }
    return 'applied';
  }
  throw new Error(`chat state kept changing under ${MAX_CONFLICTS} attempts; retried with the message`);
}

export async function processExpiry(
  instanceId: string,
  phone: string,
  deps: StateDeps,
  deadline: Deadline,
): Promise<StateOutcome> {
  for (let attempt = 0; attempt < MAX_CONFLICTS; attempt++) {
    const stored = await flushPending(instanceId, phone, deps, deadline);
    if (stored === undefined) return 'unknown-chat';
    const expired = expireActivity(stored.state, deps.now(), deps.expiryMs);
    if (expired === undefined) return 'nothing-to-expire';
    if (!(await deps.store.put(expired.state, expired.derived, stored.version, deadline))) continue;
    await deps.publish(expired.derived, deadline);
    await deps.store.clearPending(instanceId, phone, stored.version + 1, deadline);
    return 'expired';
  }
  throw new Error(`chat state kept changing under ${MAX_CONFLICTS} attempts; retried with the message`);
}
