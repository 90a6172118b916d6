/**
 * `zapi-presence-eventbridge/testing`: the events it builds are what the contract says EventBridge
 * delivers, so a subscriber tested with them meets the real thing.
 */
import * as v from 'valibot';
import { describe, expect, it } from 'vitest';
import {
  DERIVED_DETAIL_SCHEMAS,
  DERIVED_DETAIL_TYPES,
  type DerivedDetailType,
  derivedEventPattern,
  PRESENCE_STATUSES,
  PresenceDetailSchema,
  presenceEventPattern,
} from 'zapi-presence-eventbridge';
import { chatStateEvent, presenceEvent } from 'zapi-presence-eventbridge/testing';

/** Whether an EventBridge pattern of `source` and `detail-type` lists (or a prefix) matches the event. */
function matches(
  pattern: { source: string[]; 'detail-type': (string | { prefix: string })[] },
  event: { source: string; 'detail-type': string },
): boolean {
  return (
    pattern.source.includes(event.source) &&
    pattern['detail-type'].some((t) =>
      typeof t === 'string' ? t === event['detail-type'] : event['detail-type'].startsWith(t.prefix),
    )
  );
}

const ENVELOPE_KEYS = [
  'account',
  'detail',
  'detail-type',
  'id',
  'region',
  'resources',
  'source',
  'time',
  'version',
];

describe('presenceEvent', () => {
  it.each(PRESENCE_STATUSES)('builds a %s event the contract accepts and its rule matches', (status) => {
    const event = presenceEvent(status);
    expect(Object.keys(event).sort()).toEqual(ENVELOPE_KEYS);
    expect(v.safeParse(PresenceDetailSchema, event.detail).success).toBe(true);
    expect(event.detail.status).toBe(status);
    expect(matches(presenceEventPattern([status]), event)).toBe(true);
    expect(matches(presenceEventPattern(PRESENCE_STATUSES.filter((s) => s !== status)), event)).toBe(false);
    expect(event.time).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/);
  });

  it('takes overrides, and gives every event its own id', () => {
    const event = presenceEvent('PAUSED', {
      phone: '120363019502650977-group',
      instanceId: 'INST1',
      lastSeen: 1_700_000_000,
      time: '2026-11-25T12:00:00Z',
      detail: { participantPhone: '5511988887777' },
    });
    expect(event.detail).toEqual({
      type: 'PresenceChatCallback',
      phone: '120363019502650977-group',
      status: 'PAUSED',
      lastSeen: 1_700_000_000,
      instanceId: 'INST1',
      receivedAt: Date.parse('2026-11-25T12:00:00Z'),
      participantPhone: '5511988887777',
    });
    expect(event.time).toBe('2026-11-25T12:00:00Z');
    expect(presenceEvent('PAUSED').id).not.toBe(presenceEvent('PAUSED').id);
  });
});

describe('chatStateEvent', () => {
  const types = Object.values(DERIVED_DETAIL_TYPES) as DerivedDetailType[];

  it.each(types)('builds a "%s" event its schema accepts and its rule matches', (type) => {
    const event = chatStateEvent(type);
    expect(Object.keys(event).sort()).toEqual(ENVELOPE_KEYS);
    const parsed = v.safeParse(DERIVED_DETAIL_SCHEMAS[type], event.detail);
    expect(parsed.issues).toBeUndefined();
    expect(matches(derivedEventPattern([type]), event)).toBe(true);
    expect(matches(derivedEventPattern(types.filter((t) => t !== type)), event)).toBe(false);
    // Never mistaken for raw presence.
    expect(matches(presenceEventPattern(), event)).toBe(false);
    expect(event.detail.at).toBe(new Date(event.time).toISOString());
  });

  it('gives consistent times: a stop after its start, offline after online', () => {
    const stopped = chatStateEvent(DERIVED_DETAIL_TYPES.activityStopped, { time: '2026-11-25T12:00:10Z' });
    expect(Date.parse(stopped.detail.at) - Date.parse(stopped.detail.startedAt)).toBe(
      stopped.detail.durationMs,
    );
    const offline = chatStateEvent(DERIVED_DETAIL_TYPES.wentOffline, { time: '2026-11-25T12:00:10Z' });
    expect(Date.parse(offline.detail.at) - Date.parse(offline.detail.onlineSince)).toBe(
      offline.detail.durationMs,
    );
  });

  it('takes overrides of the detail and the envelope', () => {
    const event = chatStateEvent(DERIVED_DETAIL_TYPES.activityStopped, {
      id: 'e1',
      account: '210987654321',
      detail: { reason: 'expired', activity: 'recording', phone: '5511977776666' },
    });
    expect(event.id).toBe('e1');
    expect(event.account).toBe('210987654321');
    expect(event.detail).toMatchObject({ reason: 'expired', activity: 'recording', phone: '5511977776666' });
    expect(
      v.safeParse(DERIVED_DETAIL_SCHEMAS[DERIVED_DETAIL_TYPES.activityStopped], event.detail).success,
    ).toBe(true);
  });

  it('refuses names inherited from Object.prototype', () => {
    for (const name of ['toString', 'constructor', '__proto__'])
      expect(() => chatStateEvent(name as never)).toThrow(`chatStateEvent: unknown derived event "${name}"`);
  });

  it('builds a group member’s event, still valid against its schema', () => {
    const event = chatStateEvent(DERIVED_DETAIL_TYPES.activityStarted, {
      phone: '120363019502650977-group',
      participant: '5544988887777',
      instanceId: 'INST1',
    });
    expect(event.detail.instanceId).toBe('INST1');
    expect(event.detail).toMatchObject({
      phone: '120363019502650977-group',
      participant: '5544988887777',
      sequence: 2,
    });
    expect(
      v.safeParse(DERIVED_DETAIL_SCHEMAS[DERIVED_DETAIL_TYPES.activityStarted], event.detail).success,
    ).toBe(true);
  });

  it('names the derived events it knows when given another', () => {
    expect(() => chatStateEvent('Z-API Chat Typing' as never)).toThrow(
      'chatStateEvent: unknown derived event "Z-API Chat Typing"; use one of Z-API Chat Activity Started, Z-API Chat Activity Stopped, Z-API Chat Came Online, Z-API Chat Went Offline',
    );
  });
});
