/**
 * The presence-state subscriber's core: one raw presence event, or one expiry check, in; the chat's
 * state updated and the derived events published. Dependencies are passed in.
 *
 * Exactly-once effects on the state, at-least-once derived events:
 * - the state is written with an optimistic version check (concurrent deliveries for one chat retry on
 *   the fresh state), together with the derived events it produced (`pending`, an outbox);
 * - the derived events are published after the write, then cleared (only if no newer version took
 *   over). If publishing fails they stay pending, and the chat's next delivery (the retry, its next
 *   event or its expiry check) publishes them **before** it applies anything: the outbox never holds
 *   more than one step's events, and nothing is lost; an event may be published twice (its `sequence`
 *   tells a subscriber);
 * - an activity start or refresh schedules an expiry check on a delay queue first, so a failure there is
 *   retried before anything is written; a check that comes early schedules the next one.
 */
import type { Deadline } from '../shared/aws/deadline.ts';
import {
  applyPresence,
  type ChatKey,
  type ChatState,
  type DerivedEvent,
  EVENT_TIME_RESOLUTION_MS,
  expireActivity,
  type PresenceInput,
} from '../shared/presence/presence-state.ts';
import { isIdle, type PresenceStore } from '../shared/presence/presence-store.ts';

export interface StateDeps {
  readonly store: PresenceStore;
  /** Puts the derived events on the bus; throws when any was not accepted. */
  publish(events: readonly DerivedEvent[], deadline: Deadline): Promise<void>;
  /**
   * Asks for an expiry check of the chat after `delaySeconds`, for the activity's news of time `news`
   * (handed back to processExpiry).
   */
  scheduleExpiry(key: ChatKey, delaySeconds: number, deadline: Deadline, news?: number): Promise<void>;
  readonly now: () => number;
  readonly expiryMs: number;
}

export type StateOutcome =
  | 'applied'
  | 'older'
  | 'duplicate'
  | 'expired'
  | 'nothing-to-expire'
  | 'rescheduled'
  | 'unknown-chat';

const MAX_CONFLICTS = 5;

/**
 * Until the activity of news `lastNews` is over (the window and EventBridge's whole second, see
 * EVENT_TIME_RESOLUTION_MS), plus a second to spare, so the check does not come early for its own news.
 */
function expiryDelaySeconds(lastNews: number, deps: StateDeps): number {
  const over = lastNews + deps.expiryMs + EVENT_TIME_RESOLUTION_MS;
  return Math.max(1, Math.ceil((over - deps.now()) / 1_000) + 1);
}

/** A chat as the writer sees it: `state` and its item's `version`, or neither (never seen). */
type Current =
  | { readonly state: ChatState; readonly version: number }
  | { readonly state?: undefined; readonly version?: number };

/**
 * Reads the chat, with what an earlier delivery wrote but could not confirm published (its outbox)
 * published and cleared first: nothing new is applied behind it, so it never holds more than one step.
 * The clear keeps the item's version: a writer that slipped in meanwhile makes the caller's conditional
 * write fail, and the caller starts over.
 * `state` is undefined for a chat never seen, and for one idle past the TTL whose item DynamoDB has not
 * deleted yet (it deletes late): the writer sees what the read route sees; `version` is the item's all
 * the same, for the conditional write.
 */
async function readFlushed(key: ChatKey, deps: StateDeps, deadline: Deadline): Promise<Current> {
  const stored = await deps.store.get(key, deadline);
  if (stored === undefined) return {};
  if (stored.pending.length > 0) {
    await deps.publish(stored.pending, deadline);
    await deps.store.clearPending(stored.state, stored.version, deadline);
  }
  return isIdle(stored, deps.now())
    ? { version: stored.version }
    : { state: stored.state, version: stored.version };
}

/**
 * Applies one raw presence event. A replayed one (an EventBridge archive replay) is applied like any
 * other: it is dropped when older than the chat's state, so what it changes is news the subscribers
 * missed too, and its derived events are published; an activity it starts whose window has passed
 * ends with the expiry check, a second later.
 */
export async function processPresence(
  input: PresenceInput,
  deps: StateDeps,
  deadline: Deadline,
): Promise<StateOutcome> {
  for (let attempt = 0; attempt < MAX_CONFLICTS; attempt++) {
    const stored = await readFlushed(input, deps, deadline);
    const result = applyPresence(stored.state, input, deps.expiryMs);
    if (result.kind !== 'applied') return result.kind;
    const { state, derived } = result;
    // An activity is current only right after its own news (COMPOSING or RECORDING): this event's.
    if (state.activity !== undefined) {
      await deps.scheduleExpiry(input, expiryDelaySeconds(input.time, deps), deadline, input.time);
    }
    if (!(await deps.store.put(state, derived, stored.version, deadline))) continue;
    if (derived.length > 0) {
      await deps.publish(derived, deadline);
      await deps.store.clearPending(input, (stored.version ?? 0) + 1, deadline);
    }
    return 'applied';
  }
  throw new Error(`chat state kept changing under ${MAX_CONFLICTS} attempts; retried with the message`);
}

/**
 * An expiry check. `news`: the time of the COMPOSING or RECORDING it was scheduled for (absent in
 * checks written before it was carried: those are treated as early).
 */
export async function processExpiry(
  key: ChatKey,
  deps: StateDeps,
  deadline: Deadline,
  news?: number,
): Promise<StateOutcome> {
  for (let attempt = 0; attempt < MAX_CONFLICTS; attempt++) {
    const stored = await readFlushed(key, deps, deadline);
    if (stored.state === undefined) return 'unknown-chat';
    const expired = expireActivity(stored.state, deps.now(), deps.expiryMs);
    if (expired === undefined) {
      const lastNews = stored.state.activityLastNews;
      // No activity, or a newer COMPOSING or RECORDING since, which scheduled a check of its own. (A
      // check without its news, from before it was carried, is taken as early.)
      if (lastNews === undefined || lastNews > (news ?? Number.POSITIVE_INFINITY)) return 'nothing-to-expire';
      // Early for this very news (a clock ahead, a shorter delay): check again when the window ends.
      await deps.scheduleExpiry(key, expiryDelaySeconds(lastNews, deps), deadline, lastNews);
      return 'rescheduled';
    }
    if (!(await deps.store.put(expired.state, expired.derived, stored.version, deadline))) continue;
    await deps.publish(expired.derived, deadline);
    await deps.store.clearPending(key, stored.version + 1, deadline);
    return 'expired';
  }
  throw new Error(`chat state kept changing under ${MAX_CONFLICTS} attempts; retried with the message`);
}
