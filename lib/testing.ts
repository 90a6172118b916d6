/**
 * Test helpers for your own subscribers: realistic presence events and derived (chat state) events,
 * exactly as EventBridge delivers them to a target.
 *
 *   import { chatStateEvent, presenceEvent } from 'zapi-presence-eventbridge/testing';
 *   await handler(presenceEvent('COMPOSING', { phone: '5511988887777' }));
 *   await handler(chatStateEvent('Z-API Chat Activity Stopped', { detail: { reason: 'expired' } }));
 */
import {
  CALLBACK_TYPE,
  DERIVED_DETAIL_TYPES,
  DERIVED_EVENT_SOURCE,
  DETAIL_TYPES,
  type DerivedDetailType,
  EVENT_SOURCE,
  type PresenceEvent,
  type PresenceEventDetail,
  type PresenceStatus,
} from '../functions/shared/contract/presence-contract.ts';
import type {
  ChatStateEvent,
  ChatStateEventDetail,
} from '../functions/shared/contract/presence-derived-schemas.ts';

export interface PresenceEventOverrides {
  /** Fields of `detail` (the callback) to change or add. */
  readonly detail?: Partial<PresenceEventDetail> & Record<string, unknown>;
  readonly id?: string;
  readonly time?: string;
  readonly account?: string;
  readonly region?: string;
  readonly phone?: string;
  readonly instanceId?: string;
  readonly lastSeen?: number | null;
}

let sequence = 0;

const SAMPLE_INSTANCE_ID = '3C01A2B3C4D5E6F7A8B9C0D1E2F3A4B5';
const SAMPLE_PHONE = '5544999999999';

function envelope(overrides: EnvelopeOverrides) {
  sequence += 1;
  return {
    version: '0',
    id: overrides.id ?? `00000000-0000-4000-8000-${String(sequence).padStart(12, '0')}`,
    account: overrides.account ?? '123456789012',
    time: overrides.time ?? new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
    region: overrides.region ?? 'sa-east-1',
    resources: [] as string[],
  };
}

interface EnvelopeOverrides {
  readonly id?: string;
  readonly time?: string;
  readonly account?: string;
  readonly region?: string;
}

/** A presence event for `status`, shaped like Z-API's documented callbacks and EventBridge's envelope. */
export function presenceEvent<S extends PresenceStatus>(
  status: S,
  overrides: PresenceEventOverrides = {},
): PresenceEvent<S> {
  const { id, account, time, region, resources } = envelope(overrides);
  const detail = {
    type: CALLBACK_TYPE,
    phone: overrides.phone ?? SAMPLE_PHONE,
    status,
    lastSeen: overrides.lastSeen === undefined ? null : overrides.lastSeen,
    instanceId: overrides.instanceId ?? SAMPLE_INSTANCE_ID,
    // The receiver's stamp: within the event's second, as on the bus.
    receivedAt: Date.parse(time),
    ...overrides.detail,
  } as PresenceEventDetail & { readonly status: S };
  return {
    version: '0',
    id,
    'detail-type': DETAIL_TYPES[status],
    source: EVENT_SOURCE,
    account,
    time,
    region,
    resources,
    detail,
  };
}

export interface ChatStateEventOverrides<T extends DerivedDetailType> extends EnvelopeOverrides {
  /** The chat (as `presenceEvent`'s). */
  readonly phone?: string;
  readonly instanceId?: string;
  /** A member of a group chat (`phone` is then the group id). */
  readonly participant?: string;
  /** Fields of `detail` to change. */
  readonly detail?: Partial<ChatStateEventDetail<T>>;
}

/**
 * A derived event of the presence store (`presenceStore: true`), with a plausible detail for its type:
 * an activity of typing, stopped after 4 s because it paused; online for 90 s; `sequence` 2; `current`
 * the presence each leaves (typing: online and typing; offline: neither). For a
 * member of a group chat, pass `{ phone: 'GROUP-group', participant: 'PHONE' }`.
 */
export function chatStateEvent<T extends DerivedDetailType>(
  detailType: T,
  overrides: ChatStateEventOverrides<T> = {},
): ChatStateEvent<T> {
  const base = envelope(overrides);
  // Detail times are ISO 8601 with milliseconds, as the presence store writes them.
  const before = (ms: number) => new Date(Date.parse(base.time) - ms).toISOString();
  const at = before(0);
  const chat = {
    instanceId: overrides.instanceId ?? SAMPLE_INSTANCE_ID,
    phone: overrides.phone ?? SAMPLE_PHONE,
    ...(overrides.participant !== undefined && { participant: overrides.participant }),
    at,
    sequence: 2,
  };
  const samples: { readonly [K in DerivedDetailType]: ChatStateEventDetail<K> } = {
    [DERIVED_DETAIL_TYPES.activityStarted]: {
      ...chat,
      activity: 'typing',
      current: { online: true, activity: 'typing' },
    },
    [DERIVED_DETAIL_TYPES.activityStopped]: {
      ...chat,
      activity: 'typing',
      reason: 'paused',
      startedAt: before(4_000),
      durationMs: 4_000,
      current: { online: true, activity: null },
    },
    [DERIVED_DETAIL_TYPES.cameOnline]: { ...chat, current: { online: true, activity: null } },
    [DERIVED_DETAIL_TYPES.wentOffline]: {
      ...chat,
      onlineSince: before(90_000),
      durationMs: 90_000,
      current: { online: false, activity: null },
    },
  };
  if (!Object.hasOwn(samples, detailType)) {
    throw new Error(
      `chatStateEvent: unknown derived event "${String(detailType)}"; use one of ${Object.values(DERIVED_DETAIL_TYPES).join(', ')}`,
    );
  }
  return {
    ...base,
    'detail-type': detailType,
    source: DERIVED_EVENT_SOURCE,
    detail: { ...samples[detailType], ...overrides.detail } as ChatStateEventDetail<T>,
  };
}
