/**
 * The live feed's wire contract: what a subscriber of `/presence/{instanceId}` receives, and what the
 * snapshot route (`GET /instances/{instanceId}/presence`) answers. Types and a few constants only, so the
 * browser client (functions/live-feed/client.ts) imports it without pulling in valibot.
 *
 * Two kinds of message, each one AppSync event (a JSON string):
 * - `derived`: a derived event of the presence store, as the bus carried it. Apply by `detail.sequence`
 *   (per chat, and per member in a group): ignore one at or below the highest seen; `detail.current` is
 *   the chat's whole presence once it is applied.
 * - `news`: a COMPOSING or RECORDING callback, which the store turns into no derived event while an
 *   activity lasts. It carries no sequence and changes no state: it only says the activity the chat shows
 *   is still going on, so a view keeps "typing…" up for {@link FEED_ACTIVITY_EXPIRY_MS} after it.
 */
import type { DerivedDetailType } from './presence-contract.ts';
import type { ChatStateEventDetail } from './presence-derived-schemas.ts';

/** A view clears a typing or recording this long after its last news, even when no stop arrives. */
export const FEED_ACTIVITY_EXPIRY_MS = 25_000;

export type FeedActivity = 'typing' | 'recording';

/** A derived event on the feed. */
export interface FeedDerivedMessage<T extends DerivedDetailType = DerivedDetailType> {
  readonly kind: 'derived';
  /** The EventBridge event id: a duplicate delivery repeats it. */
  readonly id: string;
  readonly type: T;
  readonly detail: ChatStateEventDetail<T>;
}

/** A COMPOSING or RECORDING callback: the chat's activity goes on. */
export interface FeedNewsMessage {
  readonly kind: 'news';
  /** The EventBridge event id of the raw presence event. */
  readonly id: string;
  readonly instanceId: string;
  readonly phone: string;
  readonly participant?: string;
  readonly activity: FeedActivity;
  /** When API Gateway received the callback (ISO 8601). */
  readonly at: string;
}

export type FeedMessage = FeedDerivedMessage | FeedNewsMessage;

/** One chat (or group member) in a snapshot. */
export interface SnapshotChat {
  readonly phone: string;
  readonly participant?: string;
  readonly online: boolean;
  readonly activity: FeedActivity | null;
  /** When the current activity started (ISO 8601), while one lasts. */
  readonly activitySince?: string;
  /** Its last COMPOSING or RECORDING (ISO 8601): the view's expiry counts from here. */
  readonly activityLastNews?: string;
  /** The sequence of the chat's last derived event: the feed's events above it are news to this view. */
  readonly sequence: number;
  /** The newest callback applied (ISO 8601). */
  readonly updatedAt: string;
}

/** `GET /instances/{instanceId}/presence`: one page of the instance's chats. */
export interface Snapshot {
  readonly instanceId: string;
  /** The server's time when the page was read (ISO 8601). */
  readonly at: string;
  readonly chats: readonly SnapshotChat[];
  /** Pass as `?cursor=` for the next page; absent on the last. */
  readonly nextCursor?: string;
}

/** Chats per snapshot page: the default, and the most a caller may ask for with `?limit=`. */
export const SNAPSHOT_PAGE = { default: 500, max: 1_000 } as const;
