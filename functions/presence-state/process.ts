/**
 * The presence-state subscriber's core: one raw presence event, or one expiry check, in; the chat's
 * state updated and the derived events published. Dependencies are passed in.
 *
 * Exactly-once effects on the state, at-least-once derived events:
 * - the state is written with an optimistic version check (concurrent deliveries for one chat retry on
 *   the fresh state), together with the derived events it produced (`pending`, an outbox);
 * - the derived events are published after the write, then cleared (only if no newer version took
 *   over); if publishing fails, they stay pending and the next delivery (a retry, or the chat's next
 *   event or expiry check) publishes them with its own: never lost, possibly published twice;
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
import type { PresenceStore, StoredChat } from '../shared/presence-store.ts';

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

/** Publishes what an earlier delivery wrote but could not confirm published, then clears it. */
async function flushPending(
  stored: StoredChat | undefined,
  deps: StateDeps,
  deadline: Deadline,
): Promise<void> {
  if (stored === undefined || stored.pending.length === 0) return;
  await deps.publish(stored.pending, deadline);
  await deps.store.clearPending(stored.state.instanceId, stored.state.phone, stored.version, deadline);
}

export async function processPresence(
  input: PresenceInput,
  deps: StateDeps,
  deadline: Deadline,
): Promise<StateOutcome> {
  for (let attempt = 0; attempt < MAX_CONFLICTS; attempt++) {
    const stored = await deps.store.get(input.instanceId, input.phone, deadline);
    const result = applyPresence(stored?.state, input);
    if (result.kind !== 'applied') {
      // A retry of a message whose derived events were written but not published: publish them now.
      await flushPending(stored, deps, deadline);
      return result.kind;
    }
    if (result.state.activity !== undefined && result.state.activityLastNews === input.time) {
      // Counted from the news, plus a second: EventBridge times are whole seconds.
      await deps.scheduleExpiry(
        input.instanceId,
        input.phone,
        Math.ceil(deps.expiryMs / 1_000) + 2,
        deadline,
      );
    }
    // What is still pending from earlier deliveries stays pending with this one's events: nothing is
    // dropped until it is confirmed published.
    const pending = [...(stored?.pending ?? []), ...result.derived];
    if (!(await deps.store.put(result.state, pending, stored?.version, deadline))) continue;
    if (pending.length > 0) {
      await deps.publish(pending, deadline);
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
    const stored = await deps.store.get(instanceId, phone, deadline);
    if (stored === undefined) return 'unknown-chat';
    const expired = expireActivity(stored.state, deps.now(), deps.expiryMs);
    if (expired === undefined) {
      await flushPending(stored, deps, deadline);
      return 'nothing-to-expire';
    }
    const pending = [...stored.pending, ...expired.derived];
    if (!(await deps.store.put(expired.state, pending, stored.version, deadline))) continue;
    await deps.publish(pending, deadline);
    await deps.store.clearPending(instanceId, phone, stored.version + 1, deadline);
    return 'expired';
  }
  throw new Error(`chat state kept changing under ${MAX_CONFLICTS} attempts; retried with the message`);
}
