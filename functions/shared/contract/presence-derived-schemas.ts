/**
 * The `detail` of each derived event as a valibot schema, by detail-type: documentation, the JSON Schema
 * in docs/ and the schema registry. A module of its own so that the receiver's bundle, which imports the
 * contract, does not carry these schemas (esbuild keeps module-level calls it cannot prove pure).
 */
import * as v from 'valibot';
import {
  DERIVED_DETAIL_TYPES,
  type DERIVED_EVENT_SOURCE,
  type DerivedDetailType,
} from './presence-contract.ts';

const chatFields = {
  instanceId: v.pipe(v.string(), v.description('The Z-API instance.')),
  phone: v.pipe(v.string(), v.description('The chat: a phone number, a group id or an "@lid" id.')),
  participant: v.optional(
    v.pipe(
      v.string(),
      v.description(
        'In a group chat: the member it is about (participantPhone, else participant, else participantLid of the callback). Each member has a state of its own.',
      ),
    ),
  ),
  at: v.pipe(v.string(), v.isoTimestamp(), v.description('When it happened (ISO 8601, UTC).')),
  sequence: v.pipe(
    v.number(),
    v.integer(),
    v.minValue(1),
    v.description(
      "One more than the chat's previous derived event (a chat's first: its time in epoch milliseconds, so the numbers keep increasing after a chat idle past the TTL comes back). Delivery is at least once and unordered: a subscriber keeping its own presence per chat takes `current` from the event with the highest sequence it has seen, and ignores any event at or below it.",
    ),
  ),
  current: v.pipe(
    v.object({
      online: v.pipe(v.boolean(), v.description('In the chat (AVAILABLE, COMPOSING, RECORDING, PAUSED).')),
      activity: v.pipe(
        v.nullable(v.picklist(['typing', 'recording'])),
        v.description('typing or recording while one lasts, else null'),
      ),
    }),
    v.description(
      "The chat's presence once the change this event is part of is applied (all events of one change carry the same): the whole presence, so the event with the highest sequence tells it even when others arrive late, twice or never.",
    ),
  ),
};
const activity = v.pipe(
  v.picklist(['typing', 'recording']),
  v.description('typing (COMPOSING) or recording (RECORDING)'),
);

export const DERIVED_DETAIL_SCHEMAS = {
  [DERIVED_DETAIL_TYPES.activityStarted]: v.object({ ...chatFields, activity }),
  [DERIVED_DETAIL_TYPES.activityStopped]: v.object({
    ...chatFields,
    activity,
    reason: v.pipe(
      v.picklist(['paused', 'expired', 'unavailable', 'switched']),
      v.description(
        'paused: PAUSED or AVAILABLE arrived; expired: no news for the expiry window; unavailable: the contact left; switched: typing became recording or back',
      ),
    ),
    startedAt: v.pipe(v.string(), v.isoTimestamp(), v.description('When the activity started.')),
    durationMs: v.pipe(
      v.number(),
      v.description(
        'From the start to the stop; for an expired activity, to its last COMPOSING or RECORDING.',
      ),
    ),
  }),
  [DERIVED_DETAIL_TYPES.cameOnline]: v.object({ ...chatFields }),
  [DERIVED_DETAIL_TYPES.wentOffline]: v.object({
    ...chatFields,
    onlineSince: v.pipe(v.string(), v.isoTimestamp(), v.description('When the contact came online.')),
    durationMs: v.pipe(v.number(), v.description('How long the contact was online.')),
  }),
} as const;

/** The `detail` of a derived event of type `T`. */
export type ChatStateEventDetail<T extends DerivedDetailType = DerivedDetailType> = v.InferOutput<
  (typeof DERIVED_DETAIL_SCHEMAS)[T]
>;

/** A derived event as EventBridge delivers it to a target. */
export interface ChatStateEvent<T extends DerivedDetailType = DerivedDetailType> {
  readonly version: string;
  readonly id: string;
  readonly 'detail-type': T;
  readonly source: typeof DERIVED_EVENT_SOURCE;
  readonly account: string;
  readonly time: string;
  readonly region: string;
  readonly resources: readonly string[];
  readonly detail: ChatStateEventDetail<T>;
}
