/**
 * Presence that means something: the current state of each chat (instance, phone; in a group, each
 * participant of it: instance, group, participant) and the events derived from its changes. Pure: no clock, no I/O. The deployed state subscriber
 * (functions/presence-state) and the local live view (`npm start`) both run exactly this.
 *
 * The state follows the raw statuses:
 *   online     AVAILABLE, COMPOSING, RECORDING, PAUSED (in the chat); UNAVAILABLE is offline
 *   activity   COMPOSING is typing, RECORDING is recording; anything else ends an activity
 * and a typing or recording activity with no news for `expiryMs` (25 s by default, WhatsApp's own
 * rule) ends by itself: a contact who closes the app may never send PAUSED.
 *
 * Ordering: EventBridge guarantees neither order nor exactly-once delivery. Each event has an ordering
 * time: the receiver's `receivedAt` (epoch milliseconds, API Gateway's request time), or EventBridge's
 * `time` (whole seconds) for an event without one (another publisher, an archive from before it). An
 * event is **older** than the state when its time is earlier than the newest event the state has
 * applied: it is dropped, so an older event never overwrites a newer state, even within one second.
 * Events of the same millisecond apply in the order they are processed; a duplicate delivery (an event
 * id applied at that time already) changes nothing.
 */
import {
  DERIVED_DETAIL_TYPES,
  INSTANCE_ID_PATTERN,
  type PresenceStatus,
} from '../shared/contract/presence-contract.ts';

/** Moved to the contract (the live feed reads it too); kept here for the store's callers. */
export { participantOf } from '../shared/contract/presence-contract.ts';

export type Activity = 'typing' | 'recording';
export type StopReason = 'paused' | 'expired' | 'unavailable' | 'switched';

/**
 * Whose presence: a chat (`phone`: a phone number or an `@lid` id), or one participant of a group chat
 * (`phone`: the group id; `participant`: the member, from the callback's `participantPhone`,
 * `participant` or `participantLid`). Each participant of a group has a state of its own, as in
 * WhatsApp, where presence is per person.
 */
export interface ChatKey {
  readonly instanceId: string;
  readonly phone: string;
  readonly participant?: string;
}

/** The chat key as one string: `phone`, or `phone#participant` (the presence table's sort key). */
export function chatKeyOf(key: Pick<ChatKey, 'phone' | 'participant'>): string {
  return key.participant === undefined ? key.phone : `${key.phone}#${key.participant}`;
}

/** A chat id or participant longer than this is not a WhatsApp id (and could not be a table key). */
export const MAX_CHAT_ID_LENGTH = 128;

/**
 * Whether a chat can have a state: a Z-API instance id, a chat id of 1 to 128 characters without `#`
 * (it separates a group from its member in the table's sort key; no WhatsApp id holds one) and a member
 * of at most 128. Anything else never comes from Z-API through the receiver.
 */
export function isStorableChat(key: ChatKey): boolean {
  return (
    INSTANCE_ID_PATTERN.test(key.instanceId) &&
    key.phone.length > 0 &&
    key.phone.length <= MAX_CHAT_ID_LENGTH &&
    !key.phone.includes('#') &&
    (key.participant === undefined ||
      (key.participant.length > 0 && key.participant.length <= MAX_CHAT_ID_LENGTH))
  );
}

/** The state of one chat. Times are epoch milliseconds. */
export interface ChatState extends ChatKey {
  /** The last raw status applied. */
  readonly status: PresenceStatus;
  /** Since when the last raw status holds. */
  readonly statusSince: number;
  readonly online: boolean;
  /** Since when the contact is online (set while online). */
  readonly onlineSince?: number;
  /** When the contact went offline (set while offline, once seen online). */
  readonly offlineSince?: number;
  /** The current activity, if any. */
  readonly activity?: Activity;
  readonly activitySince?: number;
  /** The last COMPOSING or RECORDING of the current activity (the expiry counts from it). */
  readonly activityLastNews?: number;
  /** `lastSeen` of the last callback that carried one (Z-API's number, as sent). */
  readonly lastSeen?: number | null;
  /** The time of the newest event applied: the ordering key. */
  readonly eventTime: number;
  /** The id of the last event applied. */
  readonly lastEventId: string;
  /** The ids applied at `eventTime` (drops a duplicate delivery of the same second). */
  readonly recentEventIds?: readonly string[];
  /** The `sequence` of the last derived event of this chat (0: none yet). */
  readonly sequence?: number;
}

/** A raw presence event, as the state needs it. */
export interface PresenceInput extends ChatKey {
  readonly id: string;
  /** EventBridge `time`, epoch ms. */
  readonly time: number;
  readonly status: PresenceStatus;
  readonly lastSeen?: number | null;
}

/** The chat's presence right after a derived event's step: what a subscriber's own state becomes. */
export interface CurrentPresence {
  readonly online: boolean;
  readonly activity: Activity | null;
}

/**
 * Every derived event carries the chat's `sequence`, one more than the chat's previous derived event
 * (the first: its time in epoch milliseconds), and `current`, the chat's presence once the step that
 * produced it is applied (every event of one step carries the same).
 * Derived events are published at least once and EventBridge does not keep order, so a subscriber that
 * keeps its own per-chat presence takes `current` from the event with the highest sequence it has
 * seen: a late or repeated event never turns it back, and one that went missing in between changes
 * nothing (the next one carries the whole presence).
 */
type Derived = ChatKey & { readonly sequence: number; readonly current: CurrentPresence };

export type DerivedEvent =
  | (Derived & { readonly kind: 'activity-started'; readonly activity: Activity; readonly at: number })
  | (Derived & {
      readonly kind: 'activity-stopped';
      readonly activity: Activity;
      readonly reason: StopReason;
      readonly startedAt: number;
      readonly at: number;
      readonly durationMs: number;
    })
  | (Derived & { readonly kind: 'came-online'; readonly at: number })
  | (Derived & {
      readonly kind: 'went-offline';
      readonly onlineSince: number;
      readonly at: number;
      readonly durationMs: number;
    });

/** A derived event before its sequence number and the step's outcome are given. */
type Draft = DerivedEvent extends infer E
  ? E extends DerivedEvent
    ? Omit<E, 'sequence' | 'current'>
    : never
  : never;

/**
 * Numbers the drafts after the chat's last sequence, each with the presence the step leaves (`after`).
 * A chat's first derived event takes its time in epoch milliseconds: so a chat that left the table (idle
 * past the TTL) and comes back still continues above every number it had (it would have needed more
 * derived events than milliseconds went by).
 */
function numbered(
  state: ChatState | undefined,
  drafts: readonly Draft[],
  after: Pick<ChatState, 'online' | 'activity'>,
): DerivedEvent[] {
  const last = state?.sequence || (drafts[0]?.at ?? 1) - 1;
  const current: CurrentPresence = { online: after.online, activity: after.activity ?? null };
  return drafts.map((draft, index) => ({ ...draft, sequence: last + index + 1, current }) as DerivedEvent);
}

const keyOf = (key: ChatKey): ChatKey => ({
  instanceId: key.instanceId,
  phone: key.phone,
  ...(key.participant !== undefined && { participant: key.participant }),
});

export type Applied =
  | { readonly kind: 'applied'; readonly state: ChatState; readonly derived: readonly DerivedEvent[] }
  | { readonly kind: 'older' | 'duplicate' };

export const DEFAULT_EXPIRY_MS = 25_000;

/**
 * EventBridge's `time` has whole seconds: an event happened up to a second after its `time`. So an
 * activity is over only `expiryMs` plus this after its last news's `time`: never sooner than
 * `expiryMs` after the real last COMPOSING or RECORDING. (The local live view stamps milliseconds: 0.)
 */
export const EVENT_TIME_RESOLUTION_MS = 1_000;

const ACTIVITY_OF: Partial<Record<PresenceStatus, Activity>> = {
  COMPOSING: 'typing',
  RECORDING: 'recording',
};

/**
 * Applies one raw event to a chat's state (undefined: never seen).
 *
 * News that comes after the chat's activity window has passed (its expiry check runs late: a backlog, an
 * outage) first ends that activity, as the check would have: Activity Stopped, reason `expired`, dated
 * at its last news. Then the news applies (a COMPOSING starts a new activity): two bursts are never
 * merged into one, and the late check then finds nothing to expire.
 */
export function applyPresence(
  current: ChatState | undefined,
  input: PresenceInput,
  expiryMs: number = DEFAULT_EXPIRY_MS,
  resolutionMs: number = EVENT_TIME_RESOLUTION_MS,
): Applied {
  if (current !== undefined) {
    if (input.id === current.lastEventId) return { kind: 'duplicate' };
    if (input.time < current.eventTime) return { kind: 'older' };
    if (input.time === current.eventTime && current.recentEventIds?.includes(input.id))
      return { kind: 'duplicate' };
  }
  const ended =
    current === undefined ? undefined : expireActivity(current, input.time, expiryMs, resolutionMs);
  const state = ended?.state ?? current;
  const at = input.time;
  const key = keyOf(input);
  const derived: Draft[] = [];
  const online = input.status !== 'UNAVAILABLE';
  const activity = ACTIVITY_OF[input.status];

  // In order: an activity that stops, then coming online or going offline, then an activity that starts.
  let activitySince = state?.activitySince;
  let activityLastNews = state?.activityLastNews;
  const previous = state?.activity;
  if (previous !== undefined && previous !== activity) {
    const reason: StopReason =
      activity !== undefined ? 'switched' : input.status === 'UNAVAILABLE' ? 'unavailable' : 'paused';
    const startedAt = state?.activitySince ?? at;
    derived.push({
      ...key,
      kind: 'activity-stopped',
      activity: previous,
      reason,
      startedAt,
      at,
      durationMs: Math.max(0, at - startedAt),
    });
    activitySince = undefined;
    activityLastNews = undefined;
  }
  const starts: Draft[] = [];
  if (activity !== undefined) {
    if (previous !== activity) {
      starts.push({ ...key, kind: 'activity-started', activity, at });
      activitySince = at;
    }
    activityLastNews = at;
  }

  const wasOnline = state?.online === true;
  let onlineSince = state?.onlineSince;
  let offlineSince = state?.offlineSince;
  if (online && !wasOnline) {
    derived.push({ ...key, kind: 'came-online', at });
    onlineSince = at;
    offlineSince = undefined;
  } else if (!online && wasOnline) {
    const since = state?.onlineSince ?? at;
    derived.push({
      ...key,
      kind: 'went-offline',
      onlineSince: since,
      at,
      durationMs: Math.max(0, at - since),
    });
    onlineSince = undefined;
    offlineSince = at;
  } else if (!online && state === undefined) {
    offlineSince = at;
  }
  derived.push(...starts);
  const events = [
    ...(ended?.derived ?? []),
    ...numbered(state, derived, { online, ...(activity !== undefined && { activity }) }),
  ];

  const next: ChatState = {
    ...key,
    status: input.status,
    statusSince: state?.status === input.status ? state.statusSince : at,
    online,
    ...(onlineSince !== undefined && { onlineSince }),
    ...(offlineSince !== undefined && { offlineSince }),
    ...(activity !== undefined && {
      activity,
      activitySince: activitySince ?? at,
      activityLastNews: activityLastNews ?? at,
    }),
    ...(input.lastSeen !== undefined
      ? { lastSeen: input.lastSeen }
      : state?.lastSeen !== undefined && { lastSeen: state.lastSeen }),
    eventTime: Math.max(at, state?.eventTime ?? at),
    lastEventId: input.id,
    // A few ids per second per chat at most; bounded all the same.
    recentEventIds:
      state !== undefined && at === state.eventTime
        ? [...(state.recentEventIds ?? [state.lastEventId]), input.id].slice(-20)
        : [input.id],
    sequence: events.at(-1)?.sequence ?? state?.sequence ?? 0,
  };
  return { kind: 'applied', state: next, derived: events };
}

/** When the current activity is over without news (undefined: no activity). */
export function activityExpiresAt(
  state: ChatState,
  expiryMs: number = DEFAULT_EXPIRY_MS,
  resolutionMs: number = EVENT_TIME_RESOLUTION_MS,
): number | undefined {
  if (state.activity === undefined || state.activityLastNews === undefined) return undefined;
  return state.activityLastNews + expiryMs + resolutionMs;
}

/**
 * Ends an activity that had no news for `expiryMs` (see {@link activityExpiresAt}), as seen at `now`.
 * The stop is dated at the last news (the last evidence of the activity); undefined when there is
 * nothing to expire yet.
 */
export function expireActivity(
  state: ChatState,
  now: number,
  expiryMs: number = DEFAULT_EXPIRY_MS,
  resolutionMs: number = EVENT_TIME_RESOLUTION_MS,
): { readonly state: ChatState; readonly derived: readonly DerivedEvent[] } | undefined {
  const expiresAt = activityExpiresAt(state, expiryMs, resolutionMs);
  if (expiresAt === undefined || state.activity === undefined || state.activityLastNews === undefined)
    return undefined;
  if (now < expiresAt) return undefined;
  const startedAt = state.activitySince ?? state.activityLastNews;
  const { activity, activitySince: _since, activityLastNews: _news, ...rest } = state;
  const derived = numbered(
    state,
    [
      {
        ...keyOf(state),
        kind: 'activity-stopped',
        activity,
        reason: 'expired',
        startedAt,
        at: state.activityLastNews,
        durationMs: Math.max(0, state.activityLastNews - startedAt),
      },
    ],
    { online: state.online },
  );
  return { state: { ...rest, sequence: derived[0]?.sequence ?? 0 }, derived };
}

/** The `detail-type` of a derived event. */
export function derivedDetailType(event: DerivedEvent): string {
  switch (event.kind) {
    case 'activity-started':
      return DERIVED_DETAIL_TYPES.activityStarted;
    case 'activity-stopped':
      return DERIVED_DETAIL_TYPES.activityStopped;
    case 'came-online':
      return DERIVED_DETAIL_TYPES.cameOnline;
    case 'went-offline':
      return DERIVED_DETAIL_TYPES.wentOffline;
  }
}

/** The `detail` of a derived event: ISO times next to the durations. */
export function derivedDetail(event: DerivedEvent): Record<string, unknown> {
  const iso = (ms: number) => new Date(ms).toISOString();
  const { kind: _kind, ...fields } = event;
  const out: Record<string, unknown> = { ...fields, at: iso(event.at) };
  if ('startedAt' in event) out.startedAt = iso(event.startedAt);
  if ('onlineSince' in event) out.onlineSince = iso(event.onlineSince);
  return out;
}

/** The state as the read API and the live view show it. */
export function stateView(state: ChatState): Record<string, unknown> {
  const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());
  return {
    instanceId: state.instanceId,
    phone: state.phone,
    ...(state.participant !== undefined && { participant: state.participant }),
    status: state.status,
    statusSince: iso(state.statusSince),
    online: state.online,
    ...(state.onlineSince !== undefined && { onlineSince: iso(state.onlineSince) }),
    ...(state.offlineSince !== undefined && { offlineSince: iso(state.offlineSince) }),
    activity: state.activity ?? null,
    ...(state.activitySince !== undefined && { activitySince: iso(state.activitySince) }),
    ...(state.lastSeen !== undefined && { lastSeen: state.lastSeen }),
    updatedAt: iso(state.eventTime),
  };
}
