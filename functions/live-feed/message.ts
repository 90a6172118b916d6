/**
 * From a bus event to the message an agent's view receives (functions/shared/contract/live-feed-contract.ts):
 * a derived event of the presence store, validated against its schema and carried as validated, or a
 * COMPOSING/RECORDING callback reduced to the "activity goes on" news. Anything else is refused with a
 * reason, never sent half-checked.
 */
import * as v from 'valibot';
import { feedChannel, isInstanceId, RESERVED_INSTANCE } from '../shared/access/agent-access.ts';
import type { FeedMessage } from '../shared/contract/live-feed-contract.ts';
import {
  DERIVED_DETAIL_TYPES,
  DERIVED_EVENT_SOURCE,
  DETAIL_TYPES,
  type DerivedDetailType,
  EVENT_SOURCE,
  participantOf,
} from '../shared/contract/presence-contract.ts';
import { DERIVED_DETAIL_SCHEMAS } from '../shared/contract/presence-derived-schemas.ts';
import { FEED_LIMITS } from './settings.ts';

/** The part of an EventBridge event the feed reads. */
export interface BusEvent {
  readonly id?: unknown;
  readonly source?: unknown;
  readonly 'detail-type'?: unknown;
  readonly detail?: unknown;
}

export type FeedRefusal =
  | 'not-for-the-feed'
  | 'invalid-detail'
  | 'reserved-instance'
  | 'too-large'
  /** A chat the presence store cannot hold (an empty id, over 128 characters, holding `#`): no view shows it. */
  | 'unstorable-chat';

/** One AppSync event: its channel and its body (the message as a JSON string). */
export interface FeedEvent {
  readonly channel: string;
  readonly body: string;
}

export type FeedEncoding =
  | { readonly ok: true; readonly event: FeedEvent; readonly message: FeedMessage }
  | { readonly ok: false; readonly reason: FeedRefusal; readonly detail: string };

const DERIVED_TYPES = new Set<string>(Object.values(DERIVED_DETAIL_TYPES));
const NEWS_TYPES: ReadonlyMap<string, 'typing' | 'recording'> = new Map([
  [DETAIL_TYPES.COMPOSING, 'typing'],
  [DETAIL_TYPES.RECORDING, 'recording'],
]);
/** The longest chat id or member the store keeps (MAX_CHAT_ID_LENGTH there). */
const MAX_CHAT_ID = 128;

const NewsDetailSchema = v.looseObject({
  instanceId: v.string(),
  phone: v.string(),
  receivedAt: v.pipe(v.number(), v.integer(), v.minValue(0)),
});

/** A chat the store keeps a state for (its isStorableChat): the only chats a view can show. */
const storable = (phone: string, participant: string | undefined) =>
  phone !== '' &&
  phone.length <= MAX_CHAT_ID &&
  !phone.includes('#') &&
  (participant === undefined || (participant.length <= MAX_CHAT_ID && participant !== ''));

const refuse = (reason: FeedRefusal, detail: string): FeedEncoding => ({ ok: false, reason, detail });

/** Which field failed and what it should be: never the value it held (it may be anyone's text). */
function whatFailed(type: string, issues: readonly v.BaseIssue<unknown>[]): string {
  const issue = issues[0];
  if (issue === undefined) return `${type}: invalid`;
  return `${type}: ${v.getDotPath(issue) ?? 'detail'}: expected ${issue.expected ?? issue.type}`;
}

/** The feed message of a bus event, encoded for its instance's channel, or why it is refused. */
export function encodeFeedEvent(event: BusEvent): FeedEncoding {
  const id = typeof event.id === 'string' ? event.id : '';
  const type = typeof event['detail-type'] === 'string' ? event['detail-type'] : '';
  let message: FeedMessage;
  if (event.source === DERIVED_EVENT_SOURCE && DERIVED_TYPES.has(type)) {
    const parsed = v.safeParse(DERIVED_DETAIL_SCHEMAS[type as DerivedDetailType], event.detail);
    if (!parsed.success) return refuse('invalid-detail', whatFailed(type, parsed.issues));
    message = { kind: 'derived', id, type: type as DerivedDetailType, detail: parsed.output } as FeedMessage;
  } else if (event.source === EVENT_SOURCE && NEWS_TYPES.has(type)) {
    const parsed = v.safeParse(NewsDetailSchema, event.detail);
    if (!parsed.success) return refuse('invalid-detail', whatFailed(type, parsed.issues));
    const participant = participantOf(parsed.output);
    // The receiver takes any phone; the store never keeps a chat like this, so no view could use its news.
    if (!storable(parsed.output.phone, participant)) {
      return refuse('unstorable-chat', 'the presence store keeps no state for this chat');
    }
    message = {
      kind: 'news',
      id,
      instanceId: parsed.output.instanceId,
      phone: parsed.output.phone,
      ...(participant !== undefined && { participant }),
      activity: NEWS_TYPES.get(type) as 'typing' | 'recording',
      at: new Date(parsed.output.receivedAt).toISOString(),
    };
  } else {
    return refuse('not-for-the-feed', `source ${String(event.source)}, detail-type ${type || '(none)'}`);
  }
  const instanceId = message.kind === 'derived' ? message.detail.instanceId : message.instanceId;
  if (instanceId === RESERVED_INSTANCE)
    return refuse('reserved-instance', 'the canary never reaches the feed');
  if (!isInstanceId(instanceId)) return refuse('invalid-detail', 'instanceId is not a Z-API instance id');
  const body = JSON.stringify(message);
  const bytes = Buffer.byteLength(body, 'utf8');
  if (bytes > FEED_LIMITS.eventBytes) {
    return refuse('too-large', `${bytes} bytes; AppSync Events takes at most ${FEED_LIMITS.eventBytes}`);
  }
  return { ok: true, event: { channel: feedChannel(instanceId), body }, message };
}
