/**
 * Test helpers for your own subscribers: realistic presence events, exactly as EventBridge delivers
 * them to a target.
 *
 *   import { presenceEvent } from 'zapi-presence-eventbridge/testing';
 *   const event = presenceEvent('COMPOSING', { phone: '5511988887777' });
 *   await handler(event);
 */
import {
  CALLBACK_TYPE,
  DETAIL_TYPES,
  EVENT_SOURCE,
  type PresenceEvent,
  type PresenceEventDetail,
  type PresenceStatus,
} from '../functions/shared/presence-contract.ts';

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

/** A presence event for `status`, shaped like Z-API's documented callbacks and EventBridge's envelope. */
export function presenceEvent<S extends PresenceStatus>(
  status: S,
  overrides: PresenceEventOverrides = {},
): PresenceEvent<S> {
  sequence += 1;
  const detail = {
    type: CALLBACK_TYPE,
    phone: overrides.phone ?? '5544999999999',
    status,
    lastSeen: overrides.lastSeen === undefined ? null : overrides.lastSeen,
    instanceId: overrides.instanceId ?? '3C01A2B3C4D5E6F7A8B9C0D1E2F3A4B5',
    ...overrides.detail,
  } as PresenceEventDetail & { readonly status: S };
  return {
    version: '0',
    id: overrides.id ?? `00000000-0000-4000-8000-${String(sequence).padStart(12, '0')}`,
    'detail-type': DETAIL_TYPES[status],
    source: EVENT_SOURCE,
    account: overrides.account ?? '123456789012',
    time: overrides.time ?? new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
    region: overrides.region ?? 'sa-east-1',
    resources: [],
    detail,
  };
}
