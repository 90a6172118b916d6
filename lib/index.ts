/**
 * zapi-presence-eventbridge: Z-API WhatsApp chat-presence webhooks -> Amazon EventBridge, as one CDK
 * construct, and the event contract for subscribers.
 *
 *   import { ZapiPresence } from 'zapi-presence-eventbridge';
 *   const presence = new ZapiPresence(this, 'Presence', { instanceIds: ['ID'] });
 *   presence.onStatus('Typing', ['COMPOSING'], { targets: [new SqsQueue(queue)] });
 *
 * Test helpers for your subscribers: `zapi-presence-eventbridge/testing`. The live feed's browser client:
 * `zapi-presence-eventbridge/client`.
 */

export { DRIFT_POLICIES, type DriftPolicy } from '../functions/fleet/settings.ts';
export { ALL_INSTANCES_GROUP, FEED_NAMESPACE } from '../functions/live-feed/settings.ts';
export {
  FEED_ACTIVITY_EXPIRY_MS,
  type FeedDerivedMessage,
  type FeedMessage,
  type FeedNewsMessage,
  type Snapshot,
  type SnapshotChat,
} from '../functions/shared/contract/live-feed-contract.ts';
export {
  CALLBACK_TYPE,
  CANARY_EVENT_SOURCE,
  CANARY_INSTANCE_ID,
  DERIVED_DETAIL_TYPES,
  DERIVED_EVENT_SOURCE,
  DETAIL_TYPE_PREFIX,
  DETAIL_TYPES,
  type DerivedDetailType,
  type DetailType,
  derivedEventPattern,
  detailTypeFor,
  EVENT_SOURCE,
  INSTANCE_ID_PATTERN,
  PRESENCE_STATUSES,
  type PresenceCallback,
  PresenceCallbackSchema,
  PresenceDetailSchema,
  type PresenceEvent,
  type PresenceEventDetail,
  type PresenceStatus,
  presenceEventPattern,
  STATUS_DESCRIPTIONS,
} from '../functions/shared/contract/presence-contract.ts';
export {
  type ChatStateEvent,
  type ChatStateEventDetail,
  DERIVED_DETAIL_SCHEMAS,
} from '../functions/shared/contract/presence-derived-schemas.ts';
export { LiveFeed, type LiveFeedOidc, type LiveFeedProps } from './live-feed.ts';
export { ALARM_NAMES, type AlarmName } from './monitoring.ts';
export { PresenceSubscriberBus, type PresenceSubscriberBusProps } from './presence-subscriber-bus.ts';
export {
  PresenceSubscription,
  type PresenceSubscriptionOptions,
  type PresenceSubscriptionProps,
} from './presence-subscription.ts';
export { type LiveFeedOptions, ZapiPresence, type ZapiPresenceProps } from './zapi-presence.ts';
