/**
 * The pure presence-state derivation (functions/presence-store/presence-state.ts): every transition, the expiry,
 * the ordering rule (older dropped, duplicates ignored, same-second events in processing order) and
 * fast-check properties over arbitrary deliveries.
 */
import fc from 'fast-check';
import * as v from 'valibot';
import { describe, expect, it } from 'vitest';
import {
  type Activity,
  type Applied,
  activityExpiresAt,
  applyPresence,
  type ChatState,
  chatKeyOf,
  DEFAULT_EXPIRY_MS,
  type DerivedEvent,
  derivedDetail,
  derivedDetailType,
  EVENT_TIME_RESOLUTION_MS,
  expireActivity,
  isStorableChat,
  MAX_CHAT_ID_LENGTH,
  type PresenceInput,
  participantOf,
  stateView,
} from '../../../functions/presence-store/presence-state.ts';
import {
  DERIVED_DETAIL_TYPES,
  DERIVED_EVENT_SOURCE,
  type DerivedDetailType,
  derivedEventPattern,
  PRESENCE_STATUSES,
  type PresenceStatus,
} from '../../../functions/shared/contract/presence-contract.ts';
import { DERIVED_DETAIL_SCHEMAS } from '../../../functions/shared/contract/presence-derived-schemas.ts';

const INSTANCE = 'INSTANCEA';
const PHONE = '5511999999999';
const KEY = { instanceId: INSTANCE, phone: PHONE };
/** Whole seconds, as EventBridge stamps them. */
const T0 = Date.parse('2025-03-01T12:00:00Z');
const s = (seconds: number) => T0 + seconds * 1_000;
/**
 * The `sequence` of a chat's n-th derived event (n from 1) when its first derived event was at `first`:
 * a chat's numbering starts at the time (epoch ms) of its first derived event, then one more each.
 */
const seq = (first: number, n: number) => first + n - 1;
/** The presence a derived event's step leaves (its `current`). */
const AFTER = {
  on: { online: true, activity: null },
  off: { online: false, activity: null },
  typing: { online: true, activity: 'typing' },
  recording: { online: true, activity: 'recording' },
} as const;

let counter = 0;
function ev(
  status: PresenceStatus,
  time: number,
  extra: Partial<Pick<PresenceInput, 'id' | 'lastSeen'>> = {},
): PresenceInput {
  counter += 1;
  return { id: `event-${counter}`, time, ...KEY, status, ...extra };
}

function applied(result: Applied): { state: ChatState; derived: readonly DerivedEvent[] } {
  if (result.kind !== 'applied') throw new Error(`expected applied, got ${result.kind}`);
  return result;
}

/** Applies events in order (each must apply); the final state and every derived event. */
function run(events: readonly PresenceInput[], start?: ChatState) {
  let state = start;
  const derived: DerivedEvent[] = [];
  for (const event of events) {
    const result = applied(applyPresence(state, event));
    state = result.state;
    derived.push(...result.derived);
  }
  if (state === undefined) throw new Error('no event applied');
  return { state, derived };
}

const last = <T>(items: readonly T[]): T => items[items.length - 1] as T;

describe('applyPresence: the first event of a chat', () => {
  it('UNAVAILABLE: offline since then, nothing derived', () => {
    const e = ev('UNAVAILABLE', s(0));
    expect(applyPresence(undefined, e)).toEqual({
      kind: 'applied',
      derived: [],
      state: {
        ...KEY,
        status: 'UNAVAILABLE',
        statusSince: s(0),
        online: false,
        offlineSince: s(0),
        eventTime: s(0),
        lastEventId: e.id,
        recentEventIds: [e.id],
        sequence: 0,
      },
    });
  });

  it('AVAILABLE: came online', () => {
    const e = ev('AVAILABLE', s(0));
    expect(applyPresence(undefined, e)).toEqual({
      kind: 'applied',
      derived: [{ ...KEY, kind: 'came-online', at: s(0), sequence: seq(s(0), 1), current: AFTER.on }],
      state: {
        ...KEY,
        status: 'AVAILABLE',
        statusSince: s(0),
        online: true,
        onlineSince: s(0),
        eventTime: s(0),
        lastEventId: e.id,
        recentEventIds: [e.id],
        sequence: seq(s(0), 1),
      },
    });
  });

  it.each([
    ['COMPOSING', 'typing'],
    ['RECORDING', 'recording'],
  ] as const)('%s: the contact comes online, then the activity (%s) starts', (status, activity) => {
    const e = ev(status, s(0));
    expect(applyPresence(undefined, e)).toEqual({
      kind: 'applied',
      derived: [
        {
          ...KEY,
          kind: 'came-online',
          at: s(0),
          sequence: seq(s(0), 1),
          current: { online: true, activity },
        },
        {
          ...KEY,
          kind: 'activity-started',
          activity,
          at: s(0),
          sequence: seq(s(0), 2),
          current: { online: true, activity },
        },
      ],
      state: {
        ...KEY,
        status,
        statusSince: s(0),
        online: true,
        onlineSince: s(0),
        activity,
        activitySince: s(0),
        activityLastNews: s(0),
        eventTime: s(0),
        lastEventId: e.id,
        recentEventIds: [e.id],
        sequence: seq(s(0), 2),
      },
    });
  });

  it('PAUSED: online, no activity', () => {
    const { state, derived } = applied(applyPresence(undefined, ev('PAUSED', s(0))));
    expect(derived).toEqual([
      { ...KEY, kind: 'came-online', at: s(0), sequence: seq(s(0), 1), current: AFTER.on },
    ]);
    expect(state).toMatchObject({
      status: 'PAUSED',
      online: true,
      onlineSince: s(0),
      sequence: seq(s(0), 1),
    });
    expect(state.activity).toBeUndefined();
    expect(state.offlineSince).toBeUndefined();
  });
});

describe('applyPresence: activities', () => {
  it('a second COMPOSING refreshes the typing: no event, the start kept, the last news moved', () => {
    const first = run([ev('COMPOSING', s(0))]).state;
    const { state, derived } = applied(applyPresence(first, ev('COMPOSING', s(3))));
    expect(derived).toEqual([]);
    expect(state).toMatchObject({
      status: 'COMPOSING',
      statusSince: s(0),
      activity: 'typing',
      activitySince: s(0),
      activityLastNews: s(3),
      onlineSince: s(0),
      eventTime: s(3),
      sequence: seq(s(0), 2),
    });
  });

  it('typing switches to recording and back: a stop (switched) then a start each time', () => {
    const typing = run([ev('COMPOSING', s(0)), ev('COMPOSING', s(2))]).state;
    const toRecording = applied(applyPresence(typing, ev('RECORDING', s(5))));
    expect(toRecording.derived).toEqual([
      {
        ...KEY,
        kind: 'activity-stopped',
        activity: 'typing',
        reason: 'switched',
        startedAt: s(0),
        at: s(5),
        durationMs: 5_000,
        sequence: seq(s(0), 3),
        current: AFTER.recording,
      },
      {
        ...KEY,
        kind: 'activity-started',
        activity: 'recording',
        at: s(5),
        sequence: seq(s(0), 4),
        current: AFTER.recording,
      },
    ]);
    expect(toRecording.state).toMatchObject({
      status: 'RECORDING',
      statusSince: s(5),
      activity: 'recording',
      activitySince: s(5),
      activityLastNews: s(5),
      online: true,
      onlineSince: s(0),
      sequence: seq(s(0), 4),
    });
    const back = applied(applyPresence(toRecording.state, ev('COMPOSING', s(9))));
    expect(back.derived).toEqual([
      {
        ...KEY,
        kind: 'activity-stopped',
        activity: 'recording',
        reason: 'switched',
        startedAt: s(5),
        at: s(9),
        durationMs: 4_000,
        sequence: seq(s(0), 5),
        current: AFTER.typing,
      },
      {
        ...KEY,
        kind: 'activity-started',
        activity: 'typing',
        at: s(9),
        sequence: seq(s(0), 6),
        current: AFTER.typing,
      },
    ]);
    expect(back.state).toMatchObject({
      activity: 'typing',
      activitySince: s(9),
      activityLastNews: s(9),
      sequence: seq(s(0), 6),
    });
  });

  it.each(['PAUSED', 'AVAILABLE'] as const)(
    '%s ends the activity (reason paused), still online',
    (status) => {
      const recording = run([ev('AVAILABLE', s(0)), ev('RECORDING', s(4)), ev('RECORDING', s(6))]).state;
      const e = ev(status, s(10));
      const { state, derived } = applied(applyPresence(recording, e));
      expect(derived).toEqual([
        {
          ...KEY,
          kind: 'activity-stopped',
          activity: 'recording',
          reason: 'paused',
          startedAt: s(4),
          at: s(10),
          durationMs: 6_000,
          sequence: seq(s(0), 3),
          current: AFTER.on,
        },
      ]);
      expect(state).toEqual({
        ...KEY,
        status,
        statusSince: s(10),
        online: true,
        onlineSince: s(0),
        eventTime: s(10),
        lastEventId: e.id,
        recentEventIds: [e.id],
        sequence: seq(s(0), 3),
      });
    },
  );

  it('UNAVAILABLE ends the activity (reason unavailable) before the contact goes offline', () => {
    const typing = run([ev('AVAILABLE', s(0)), ev('COMPOSING', s(3))]).state;
    const e = ev('UNAVAILABLE', s(8));
    const { state, derived } = applied(applyPresence(typing, e));
    expect(derived).toEqual([
      {
        ...KEY,
        kind: 'activity-stopped',
        activity: 'typing',
        reason: 'unavailable',
        startedAt: s(3),
        at: s(8),
        durationMs: 5_000,
        sequence: seq(s(0), 3),
        current: AFTER.off,
      },
      {
        ...KEY,
        kind: 'went-offline',
        onlineSince: s(0),
        at: s(8),
        durationMs: 8_000,
        sequence: seq(s(0), 4),
        current: AFTER.off,
      },
    ]);
    expect(state).toEqual({
      ...KEY,
      status: 'UNAVAILABLE',
      statusSince: s(8),
      online: false,
      offlineSince: s(8),
      eventTime: s(8),
      lastEventId: e.id,
      recentEventIds: [e.id],
      sequence: seq(s(0), 4),
    });
  });

  it('PAUSED with no activity derives nothing', () => {
    const online = run([ev('AVAILABLE', s(0))]).state;
    const paused = applied(applyPresence(online, ev('PAUSED', s(1))));
    expect(paused.derived).toEqual([]);
    // Nothing derived: the sequence stays where it was.
    expect(paused.state.sequence).toBe(seq(s(0), 1));
  });
});

describe('applyPresence: online and offline', () => {
  it('went offline: the time online as the duration', () => {
    const online = run([ev('AVAILABLE', s(0)), ev('PAUSED', s(30))]).state;
    const { state, derived } = applied(applyPresence(online, ev('UNAVAILABLE', s(90))));
    expect(derived).toEqual([
      {
        ...KEY,
        kind: 'went-offline',
        onlineSince: s(0),
        at: s(90),
        durationMs: 90_000,
        sequence: seq(s(0), 2),
        current: AFTER.off,
      },
    ]);
    expect(state).toMatchObject({ online: false, offlineSince: s(90), sequence: seq(s(0), 2) });
    expect(state.onlineSince).toBeUndefined();
  });

  it('came online after being offline: offlineSince dropped, onlineSince set', () => {
    const offline = run([ev('AVAILABLE', s(0)), ev('UNAVAILABLE', s(5))]).state;
    const { state, derived } = applied(applyPresence(offline, ev('AVAILABLE', s(60))));
    expect(derived).toEqual([
      { ...KEY, kind: 'came-online', at: s(60), sequence: seq(s(0), 3), current: AFTER.on },
    ]);
    expect(state).toMatchObject({
      online: true,
      onlineSince: s(60),
      statusSince: s(60),
      sequence: seq(s(0), 3),
    });
    expect(state.offlineSince).toBeUndefined();
  });

  it('an activity while offline: the contact comes online first, then the activity starts', () => {
    const offline = run([ev('AVAILABLE', s(0)), ev('UNAVAILABLE', s(5))]).state;
    const { state, derived } = applied(applyPresence(offline, ev('RECORDING', s(60))));
    expect(derived).toEqual([
      { ...KEY, kind: 'came-online', at: s(60), sequence: seq(s(0), 3), current: AFTER.recording },
      {
        ...KEY,
        kind: 'activity-started',
        activity: 'recording',
        at: s(60),
        sequence: seq(s(0), 4),
        current: AFTER.recording,
      },
    ]);
    expect(state).toMatchObject({
      online: true,
      onlineSince: s(60),
      activity: 'recording',
      sequence: seq(s(0), 4),
    });
  });

  it('in order: an activity that stops, then came-online or went-offline, then an activity that starts', () => {
    // A state holding an activity while offline (not produced by applyPresence, but a valid ChatState):
    // a RECORDING stops the typing, brings the contact online and starts the recording, in that order.
    const offline = run([ev('UNAVAILABLE', s(0))]).state;
    const odd: ChatState = { ...offline, activity: 'typing', activitySince: s(1), activityLastNews: s(2) };
    expect(applied(applyPresence(odd, ev('RECORDING', s(4)))).derived).toEqual([
      {
        ...KEY,
        kind: 'activity-stopped',
        activity: 'typing',
        reason: 'switched',
        startedAt: s(1),
        at: s(4),
        durationMs: 3_000,
        sequence: seq(s(4), 1),
        current: AFTER.recording,
      },
      { ...KEY, kind: 'came-online', at: s(4), sequence: seq(s(4), 2), current: AFTER.recording },
      {
        ...KEY,
        kind: 'activity-started',
        activity: 'recording',
        at: s(4),
        sequence: seq(s(4), 3),
        current: AFTER.recording,
      },
    ]);
  });

  it('staying offline or online derives nothing and keeps the since times', () => {
    const offline = run([ev('UNAVAILABLE', s(0))]).state;
    const again = applied(applyPresence(offline, ev('UNAVAILABLE', s(20))));
    expect(again.derived).toEqual([]);
    expect(again.state).toMatchObject({
      offlineSince: s(0),
      statusSince: s(0),
      eventTime: s(20),
      sequence: 0,
    });

    const online = run([ev('AVAILABLE', s(0))]).state;
    const still = applied(applyPresence(online, ev('AVAILABLE', s(20))));
    expect(still.derived).toEqual([]);
    expect(still.state).toMatchObject({
      onlineSince: s(0),
      statusSince: s(0),
      eventTime: s(20),
      sequence: seq(s(0), 1),
    });
  });
});

describe('applyPresence: lastSeen', () => {
  it('absent until a callback carries one; kept when the next has none; updated; null kept as null', () => {
    const none = run([ev('AVAILABLE', s(0))]).state;
    expect('lastSeen' in none).toBe(false);
    const number = run([ev('UNAVAILABLE', s(1), { lastSeen: 1_740_830_000 })], none).state;
    expect(number.lastSeen).toBe(1_740_830_000);
    const kept = run([ev('AVAILABLE', s(2))], number).state;
    expect(kept.lastSeen).toBe(1_740_830_000);
    const updated = run([ev('UNAVAILABLE', s(3), { lastSeen: 1_740_830_999 })], kept).state;
    expect(updated.lastSeen).toBe(1_740_830_999);
    const cleared = run([ev('AVAILABLE', s(4), { lastSeen: null })], updated).state;
    expect(cleared.lastSeen).toBeNull();
    const stillNull = run([ev('PAUSED', s(5))], cleared).state;
    expect(stillNull.lastSeen).toBeNull();
    expect('lastSeen' in stillNull).toBe(true);
  });
});

describe('expireActivity', () => {
  const typing = run([ev('AVAILABLE', s(0)), ev('COMPOSING', s(2)), ev('COMPOSING', s(7))]).state;

  // EventBridge's whole-second times: the last news may have come up to a second after its `time`.
  const window = DEFAULT_EXPIRY_MS + EVENT_TIME_RESOLUTION_MS;

  it('nothing to expire before lastNews + expiryMs + the second of EventBridge times', () => {
    expect(EVENT_TIME_RESOLUTION_MS).toBe(1_000);
    expect(activityExpiresAt(typing)).toBe(s(7) + window);
    expect(expireActivity(typing, s(7) + window - 1)).toBeUndefined();
    expect(expireActivity(typing, s(7) + DEFAULT_EXPIRY_MS)).toBeUndefined();
    expect(expireActivity(typing, s(7) + 10_999, 10_000)).toBeUndefined();
    expect(expireActivity(typing, s(2) + window)).toBeUndefined();
    // With millisecond times (the local live view): no allowance.
    expect(expireActivity(typing, s(7) + DEFAULT_EXPIRY_MS - 1, DEFAULT_EXPIRY_MS, 0)).toBeUndefined();
    expect(expireActivity(typing, s(7) + DEFAULT_EXPIRY_MS, DEFAULT_EXPIRY_MS, 0)).toBeDefined();
    expect(activityExpiresAt(run([ev('PAUSED', s(0))]).state)).toBeUndefined();
  });

  it('expires exactly at lastNews + expiryMs + 1 s, dated at the last news (duration to it)', () => {
    const result = expireActivity(typing, s(7) + window);
    expect(result?.derived).toEqual([
      {
        ...KEY,
        kind: 'activity-stopped',
        activity: 'typing',
        reason: 'expired',
        startedAt: s(2),
        at: s(7),
        durationMs: 5_000,
        sequence: seq(s(0), 3),
        current: AFTER.on,
      },
    ]);
    const { activity: _a, activitySince: _s, activityLastNews: _n, ...rest } = typing;
    expect(typing.sequence).toBe(seq(s(0), 2));
    // The expiry is numbered after the chat's last derived event, and the state remembers it.
    expect(result?.state).toEqual({ ...rest, sequence: seq(s(0), 3) });
    // A custom window.
    expect(expireActivity(typing, s(7) + 11_000, 10_000)?.derived[0]).toMatchObject({ reason: 'expired' });
  });

  it('a lone COMPOSING expires with a zero duration', () => {
    const once = run([ev('RECORDING', s(0))]).state;
    expect(expireActivity(once, s(100))?.derived).toEqual([
      {
        ...KEY,
        kind: 'activity-stopped',
        activity: 'recording',
        reason: 'expired',
        startedAt: s(0),
        at: s(0),
        durationMs: 0,
        sequence: seq(s(0), 3),
        current: AFTER.on,
      },
    ]);
  });

  it('nothing to expire without an activity (never, paused, already expired)', () => {
    expect(expireActivity(run([ev('AVAILABLE', s(0))]).state, s(1_000))).toBeUndefined();
    expect(expireActivity(run([ev('COMPOSING', s(0)), ev('PAUSED', s(1))]).state, s(1_000))).toBeUndefined();
    const expired = expireActivity(typing, s(1_000))?.state as ChatState;
    expect(expireActivity(expired, s(2_000))).toBeUndefined();
  });

  it('after an expiry the next COMPOSING starts a new activity; PAUSED stops nothing', () => {
    const expired = expireActivity(typing, s(100))?.state as ChatState;
    expect(applied(applyPresence(expired, ev('PAUSED', s(101)))).derived).toEqual([]);
    expect(applied(applyPresence(expired, ev('COMPOSING', s(101)))).derived).toEqual([
      {
        ...KEY,
        kind: 'activity-started',
        activity: 'typing',
        at: s(101),
        sequence: seq(s(0), 4),
        current: AFTER.typing,
      },
    ]);
  });
});

describe('applyPresence: ordering', () => {
  it('a duplicate delivery (same id as the last applied) is ignored, whatever it carries', () => {
    const e = ev('COMPOSING', s(5));
    const state = run([ev('AVAILABLE', s(0)), e]).state;
    expect(applyPresence(state, e)).toEqual({ kind: 'duplicate' });
    expect(applyPresence(state, { ...e, time: s(9), status: 'UNAVAILABLE' })).toEqual({ kind: 'duplicate' });
  });

  it('an event older than the newest applied is dropped', () => {
    const state = run([ev('COMPOSING', s(10))]).state;
    expect(applyPresence(state, ev('UNAVAILABLE', s(9)))).toEqual({ kind: 'older' });
    expect(applyPresence(state, ev('AVAILABLE', s(10) - 1))).toEqual({ kind: 'older' });
  });

  it('events of the same second apply in processing order', () => {
    const composing = ev('COMPOSING', s(1));
    const paused = ev('PAUSED', s(1));
    const a = run([ev('AVAILABLE', s(0)), composing, paused]);
    expect(a.state).toMatchObject({ status: 'PAUSED', eventTime: s(1), lastEventId: paused.id });
    expect(a.state.activity).toBeUndefined();
    expect(a.derived.map((d) => d.kind)).toEqual(['came-online', 'activity-started', 'activity-stopped']);

    const b = run([ev('AVAILABLE', s(0)), paused, composing]);
    expect(b.state).toMatchObject({ status: 'COMPOSING', activity: 'typing', lastEventId: composing.id });
    expect(b.derived.map((d) => d.kind)).toEqual(['came-online', 'activity-started']);
  });

  // EventBridge (and the SQS queue behind it) deliver at least once and times are whole seconds: COMPOSING
  // then PAUSED in one second, with COMPOSING redelivered afterwards, must not start the typing again.
  it('a redelivered event of the same second (not the last applied) is a duplicate', () => {
    const composing = ev('COMPOSING', s(1));
    const paused = ev('PAUSED', s(1));
    const { state } = run([ev('AVAILABLE', s(0)), composing, paused]);
    expect(state.lastEventId).toBe(paused.id);
    expect(applyPresence(state, composing)).toEqual({ kind: 'duplicate' });
    expect(applyPresence(state, paused)).toEqual({ kind: 'duplicate' });
    // A new event of that second still applies.
    const again = applied(applyPresence(state, ev('COMPOSING', s(1))));
    expect(again.derived.map((d) => d.kind)).toEqual(['activity-started']);
  });

  it('recentEventIds: the ids applied at eventTime; a later time resets it, the same second appends', () => {
    const a = ev('AVAILABLE', s(0));
    const b = ev('COMPOSING', s(1));
    const c = ev('PAUSED', s(1));
    const d = ev('COMPOSING', s(1));
    const e = ev('PAUSED', s(2));
    const first = run([a]).state;
    expect(first.recentEventIds).toEqual([a.id]);
    const second = run([b], first).state;
    expect(second.recentEventIds).toEqual([b.id]);
    const third = run([c, d], second).state;
    expect(third.recentEventIds).toEqual([b.id, c.id, d.id]);
    expect(third).toMatchObject({ eventTime: s(1), lastEventId: d.id });
    const later = run([e], third).state;
    expect(later.recentEventIds).toEqual([e.id]);
    // An id of an earlier second is older, not a duplicate.
    expect(applyPresence(later, b)).toEqual({ kind: 'older' });
  });

  it('recentEventIds keeps the last 20 ids of the second', () => {
    const events = Array.from({ length: 25 }, (_, i) => ev(i % 2 === 0 ? 'COMPOSING' : 'PAUSED', s(3)));
    const { state } = run([ev('AVAILABLE', s(0)), ...events]);
    expect(state.recentEventIds).toEqual(events.slice(-20).map((e) => e.id));
    for (const event of events.slice(-20)) expect(applyPresence(state, event)).toEqual({ kind: 'duplicate' });
  });

  it('a state stored without recentEventIds: the last id still counts, the same second appends to it', () => {
    const composing = ev('COMPOSING', s(1));
    const { recentEventIds: _r, ...legacy } = run([ev('AVAILABLE', s(0)), composing]).state;
    expect(applyPresence(legacy, composing)).toEqual({ kind: 'duplicate' });
    const paused = ev('PAUSED', s(1));
    const next = applied(applyPresence(legacy, paused)).state;
    expect(next.recentEventIds).toEqual([composing.id, paused.id]);
    expect(applyPresence(next, composing)).toEqual({ kind: 'duplicate' });
    const later = ev('AVAILABLE', s(2));
    expect(applied(applyPresence(legacy, later)).state.recentEventIds).toEqual([later.id]);
  });
});

describe('derived event details and the state view', () => {
  it('detail-types, ISO times next to the durations, and every detail valid against its schema', () => {
    const { derived } = run([
      ev('COMPOSING', s(0)),
      ev('RECORDING', s(2)),
      ev('PAUSED', s(3)),
      ev('UNAVAILABLE', s(4)),
    ]);
    expect(derived.map(derivedDetailType)).toEqual([
      DERIVED_DETAIL_TYPES.cameOnline,
      DERIVED_DETAIL_TYPES.activityStarted,
      DERIVED_DETAIL_TYPES.activityStopped,
      DERIVED_DETAIL_TYPES.activityStarted,
      DERIVED_DETAIL_TYPES.activityStopped,
      DERIVED_DETAIL_TYPES.wentOffline,
    ]);
    expect(derived.map(derivedDetail)).toEqual([
      { ...KEY, at: '2025-03-01T12:00:00.000Z', sequence: seq(s(0), 1), current: AFTER.typing },
      {
        ...KEY,
        activity: 'typing',
        at: '2025-03-01T12:00:00.000Z',
        sequence: seq(s(0), 2),
        current: AFTER.typing,
      },
      {
        ...KEY,
        activity: 'typing',
        reason: 'switched',
        startedAt: '2025-03-01T12:00:00.000Z',
        at: '2025-03-01T12:00:02.000Z',
        durationMs: 2_000,
        sequence: seq(s(0), 3),
        current: AFTER.recording,
      },
      {
        ...KEY,
        activity: 'recording',
        at: '2025-03-01T12:00:02.000Z',
        sequence: seq(s(0), 4),
        current: AFTER.recording,
      },
      {
        ...KEY,
        activity: 'recording',
        reason: 'paused',
        startedAt: '2025-03-01T12:00:02.000Z',
        at: '2025-03-01T12:00:03.000Z',
        durationMs: 1_000,
        sequence: seq(s(0), 5),
        current: AFTER.on,
      },
      {
        ...KEY,
        onlineSince: '2025-03-01T12:00:00.000Z',
        at: '2025-03-01T12:00:04.000Z',
        durationMs: 4_000,
        sequence: seq(s(0), 6),
        current: AFTER.off,
      },
    ]);
    for (const [i, detail] of derived.map(derivedDetail).entries()) {
      const schema =
        DERIVED_DETAIL_SCHEMAS[derivedDetailType(derived[i] as DerivedEvent) as DerivedDetailType];
      expect(v.safeParse(schema, detail).issues).toBeUndefined();
    }
    expect(DERIVED_EVENT_SOURCE).toBe('zapi.chat-presence.state');
    expect(derivedEventPattern()).toEqual({
      source: [DERIVED_EVENT_SOURCE],
      'detail-type': Object.values(DERIVED_DETAIL_TYPES),
    });
  });

  it('stateView: ISO times, activity null when none, lastSeen only when known', () => {
    const typing = run([ev('COMPOSING', s(0), { lastSeen: null }), ev('COMPOSING', s(4))]).state;
    expect(stateView(typing)).toEqual({
      ...KEY,
      status: 'COMPOSING',
      statusSince: '2025-03-01T12:00:00.000Z',
      online: true,
      onlineSince: '2025-03-01T12:00:00.000Z',
      activity: 'typing',
      activitySince: '2025-03-01T12:00:00.000Z',
      lastSeen: null,
      updatedAt: '2025-03-01T12:00:04.000Z',
    });
    const offline = run([ev('UNAVAILABLE', s(9))]).state;
    expect(stateView(offline)).toEqual({
      ...KEY,
      status: 'UNAVAILABLE',
      statusSince: '2025-03-01T12:00:09.000Z',
      online: false,
      offlineSince: '2025-03-01T12:00:09.000Z',
      activity: null,
      updatedAt: '2025-03-01T12:00:09.000Z',
    });
  });
});

describe('sequence', () => {
  it('the first derived event of a chat takes its time (epoch ms); each next one is one more; the state keeps the last; an expiry continues it', () => {
    const steps = run([
      ev('UNAVAILABLE', s(0)), // nothing derived: the state's sequence stays 0
      ev('COMPOSING', s(1)), // came-online s(1), activity-started s(1) + 1
      ev('COMPOSING', s(2)), // refresh: nothing
      ev('RECORDING', s(3)), // activity-stopped s(1) + 2, activity-started s(1) + 3
    ]);
    expect(steps.derived.map((d) => [d.kind, d.sequence])).toEqual([
      ['came-online', s(1)],
      ['activity-started', s(1) + 1],
      ['activity-stopped', s(1) + 2],
      ['activity-started', s(1) + 3],
    ]);
    expect(steps.state.sequence).toBe(s(1) + 3);
    const expired = expireActivity(steps.state, s(100));
    expect(expired?.derived.map((d) => [d.kind, d.sequence])).toEqual([['activity-stopped', s(1) + 4]]);
    expect(expired?.state.sequence).toBe(s(1) + 4);
    const next = applied(applyPresence(expired?.state, ev('UNAVAILABLE', s(101))));
    expect(next.derived.map((d) => [d.kind, d.sequence])).toEqual([['went-offline', s(1) + 5]]);
    expect(next.state.sequence).toBe(s(1) + 5);
  });

  it('a state stored before sequences (none, or 0): numbering starts at the time of its first derived event', () => {
    const { sequence: _q, ...legacy } = run([ev('AVAILABLE', s(0))]).state;
    expect(applied(applyPresence(legacy, ev('UNAVAILABLE', s(5)))).derived).toEqual([
      {
        ...KEY,
        kind: 'went-offline',
        onlineSince: s(0),
        at: s(5),
        durationMs: 5_000,
        sequence: s(5),
        current: AFTER.off,
      },
    ]);
    expect(applied(applyPresence({ ...legacy, sequence: 0 }, ev('UNAVAILABLE', s(5)))).derived).toEqual([
      {
        ...KEY,
        kind: 'went-offline',
        onlineSince: s(0),
        at: s(5),
        durationMs: 5_000,
        sequence: s(5),
        current: AFTER.off,
      },
    ]);
    // An expiry is dated at the activity's last news: numbered from there.
    const typing = { ...legacy, activity: 'typing' as const, activitySince: s(0), activityLastNews: s(3) };
    expect(expireActivity(typing, s(100))?.derived[0]?.sequence).toBe(s(3));
    expect(expireActivity(typing, s(100))?.state.sequence).toBe(s(3));
    // Several events of one change: numbered from the first one's time, one more each.
    const offline = { ...run([ev('UNAVAILABLE', s(0))]).state, sequence: 0 };
    expect(
      applied(applyPresence(offline, ev('COMPOSING', s(7)))).derived.map((d) => [d.kind, d.sequence]),
    ).toEqual([
      ['came-online', s(7)],
      ['activity-started', s(7) + 1],
    ]);
  });

  it('a chat whose state is gone (the table item deleted after IDLE_DAYS) comes back numbered above its old numbers', () => {
    const before = run([ev('AVAILABLE', s(0)), ev('UNAVAILABLE', s(1)), ev('AVAILABLE', s(2))]);
    expect(before.derived.map((d) => d.sequence)).toEqual([s(0), s(0) + 1, s(0) + 2]);
    // Thirty days later, with no state: the numbering starts again from that time.
    const later = s(30 * 86_400);
    const again = run([ev('COMPOSING', later)]);
    expect(again.derived.map((d) => d.sequence)).toEqual([later, later + 1]);
    expect(Math.min(...again.derived.map((d) => d.sequence))).toBeGreaterThan(before.state.sequence ?? 0);
  });

  it('an older or duplicate delivery numbers nothing', () => {
    const e = ev('COMPOSING', s(5));
    const { state } = run([ev('AVAILABLE', s(0)), e]);
    expect(applyPresence(state, e)).toEqual({ kind: 'duplicate' });
    expect(applyPresence(state, ev('UNAVAILABLE', s(4)))).toEqual({ kind: 'older' });
    expect(applied(applyPresence(state, ev('PAUSED', s(6)))).derived).toEqual([
      {
        ...KEY,
        kind: 'activity-stopped',
        activity: 'typing',
        reason: 'paused',
        startedAt: s(5),
        at: s(6),
        durationMs: 1_000,
        sequence: seq(s(0), 3),
        current: AFTER.on,
      },
    ]);
  });
});

describe('group chats: one state per participant', () => {
  const GROUP = '120363000000000000-group';
  const member = (participant: string) => ({ instanceId: INSTANCE, phone: GROUP, participant });
  let groupCounter = 0;
  const gev = (participant: string, status: PresenceStatus, time: number): PresenceInput => {
    groupCounter += 1;
    return { id: `group-${groupCounter}`, time, ...member(participant), status };
  };

  it('isStorableChat: a Z-API instance, a chat id of 1 to 128 characters without #, a member of 1 to 128', () => {
    expect(isStorableChat(KEY)).toBe(true);
    expect(isStorableChat(member('5511'))).toBe(true);
    expect(isStorableChat({ ...KEY, phone: 'x'.repeat(MAX_CHAT_ID_LENGTH) })).toBe(true);
    expect(isStorableChat({ ...member('5'.repeat(MAX_CHAT_ID_LENGTH)) })).toBe(true);
    for (const bad of [
      { ...KEY, instanceId: '' },
      { ...KEY, instanceId: 'not an instance' },
      { ...KEY, instanceId: 'I'.repeat(65) },
      { ...KEY, phone: '' },
      { ...KEY, phone: 'x'.repeat(MAX_CHAT_ID_LENGTH + 1) },
      { ...KEY, phone: `${GROUP}#5511` },
      member(''),
      member('5'.repeat(MAX_CHAT_ID_LENGTH + 1)),
    ]) {
      expect(isStorableChat(bad), JSON.stringify(bad).slice(0, 80)).toBe(false);
    }
  });

  it('chatKeyOf: the phone, or phone#participant', () => {
    expect(chatKeyOf({ phone: PHONE })).toBe(PHONE);
    expect(chatKeyOf(KEY)).toBe(PHONE);
    expect(chatKeyOf({ phone: GROUP, participant: '5511888888888' })).toBe(`${GROUP}#5511888888888`);
  });

  it('participantOf: participantPhone, else participant, else participantLid; trimmed; blank or not a string is none', () => {
    expect(participantOf({ phone: PHONE })).toBeUndefined();
    expect(participantOf({ participantPhone: '5511', participant: '5522', participantLid: '99@lid' })).toBe(
      '5511',
    );
    expect(participantOf({ participant: '5522', participantLid: '99@lid' })).toBe('5522');
    expect(participantOf({ participantLid: '99@lid' })).toBe('99@lid');
    expect(participantOf({ participantPhone: '  5511 ' })).toBe('5511');
    expect(participantOf({ participantPhone: '   ', participant: '5522' })).toBe('5522');
    expect(participantOf({ participantPhone: '', participant: '', participantLid: ' ' })).toBeUndefined();
    expect(participantOf({ participantPhone: 5511, participant: null, participantLid: {} })).toBeUndefined();
  });

  it('A typing, B pausing then leaving: A’s typing goes on; every derived event and state names its participant', () => {
    const states = new Map<string, ChatState>();
    const derived: DerivedEvent[] = [];
    for (const event of [
      gev('A', 'COMPOSING', s(0)),
      gev('B', 'PAUSED', s(1)),
      gev('B', 'UNAVAILABLE', s(2)),
    ]) {
      const result = applied(applyPresence(states.get(chatKeyOf(event)), event));
      states.set(chatKeyOf(event), result.state);
      derived.push(...result.derived);
    }
    expect(derived).toEqual([
      { ...member('A'), kind: 'came-online', at: s(0), sequence: seq(s(0), 1), current: AFTER.typing },
      {
        ...member('A'),
        kind: 'activity-started',
        activity: 'typing',
        at: s(0),
        sequence: seq(s(0), 2),
        current: AFTER.typing,
      },
      { ...member('B'), kind: 'came-online', at: s(1), sequence: seq(s(1), 1), current: AFTER.on },
      {
        ...member('B'),
        kind: 'went-offline',
        onlineSince: s(1),
        at: s(2),
        durationMs: 1_000,
        sequence: seq(s(1), 2),
        current: AFTER.off,
      },
    ]);
    expect(states.get(`${GROUP}#A`)).toMatchObject({
      ...member('A'),
      status: 'COMPOSING',
      online: true,
      activity: 'typing',
      activitySince: s(0),
      sequence: seq(s(0), 2),
    });
    expect(states.get(`${GROUP}#B`)).toMatchObject({
      ...member('B'),
      status: 'UNAVAILABLE',
      online: false,
      sequence: seq(s(1), 2),
    });
    expect(states.get(`${GROUP}#B`)?.activity).toBeUndefined();
    // The expiry of A's typing names A too.
    expect(expireActivity(states.get(`${GROUP}#A`) as ChatState, s(26))?.derived).toEqual([
      {
        ...member('A'),
        kind: 'activity-stopped',
        activity: 'typing',
        reason: 'expired',
        startedAt: s(0),
        at: s(0),
        durationMs: 0,
        sequence: seq(s(0), 3),
        current: AFTER.on,
      },
    ]);
  });

  it('the derived detail and the state view carry the participant; the detail validates against its schema', () => {
    const { state, derived } = run([gev('C', 'RECORDING', s(0))]);
    expect(derived.map(derivedDetail)).toEqual([
      { ...member('C'), at: '2025-03-01T12:00:00.000Z', sequence: seq(s(0), 1), current: AFTER.recording },
      {
        ...member('C'),
        activity: 'recording',
        at: '2025-03-01T12:00:00.000Z',
        sequence: seq(s(0), 2),
        current: AFTER.recording,
      },
    ]);
    for (const event of derived) {
      const schema = DERIVED_DETAIL_SCHEMAS[derivedDetailType(event) as DerivedDetailType];
      expect(v.safeParse(schema, derivedDetail(event)).issues).toBeUndefined();
    }
    expect(stateView(state)).toEqual({
      ...member('C'),
      status: 'RECORDING',
      statusSince: '2025-03-01T12:00:00.000Z',
      online: true,
      onlineSince: '2025-03-01T12:00:00.000Z',
      activity: 'recording',
      activitySince: '2025-03-01T12:00:00.000Z',
      updatedAt: '2025-03-01T12:00:00.000Z',
    });
    // A direct chat's view has no participant field at all.
    expect('participant' in stateView(run([ev('AVAILABLE', s(0))]).state)).toBe(false);
  });
});

// --- Properties ----------------------------------------------------------------------------------

const statusArb = fc.constantFrom(...PRESENCE_STATUSES);
const lastSeenArb = fc.option(fc.integer({ min: 1_600_000_000, max: 1_900_000_000 }), { nil: undefined });
type Key = { instanceId: string; phone: string; participant?: string };
/** A second chat: another phone, the group the first chat is in, or a member of that group. */
const chatArb = fc.constantFrom<Key>(
  { instanceId: 'I1', phone: '5522' },
  { instanceId: 'I1', phone: '1203-group', participant: '5511' },
  { instanceId: 'I1', phone: '1203-group', participant: '5533' },
);

/** Events of one chat with distinct ids and non-decreasing whole-second times (gaps of 0 to 40 s). */
const sequenceArb = (
  chat: fc.Arbitrary<Key> = fc.constant({
    instanceId: INSTANCE,
    phone: PHONE,
  }),
) =>
  fc
    .tuple(
      chat,
      fc.array(
        fc.record({ status: statusArb, gap: fc.integer({ min: 0, max: 40 }), lastSeen: lastSeenArb }),
        { minLength: 1, maxLength: 25 },
      ),
    )
    .map(([key, steps]) => {
      let time = T0;
      return steps.map(({ status, gap, lastSeen }, i): PresenceInput => {
        time += gap * 1_000;
        return {
          id: `${chatKeyOf(key)}-${i}`,
          time,
          ...key,
          status,
          ...(lastSeen !== undefined && { lastSeen }),
        };
      });
    });

/** A sequence delivered shuffled, with duplicates injected. */
const deliveryArb = sequenceArb().chain((events) =>
  fc
    .array(fc.nat({ max: events.length - 1 }), { maxLength: 10 })
    .chain((dupes) => {
      const all = [...events, ...dupes.map((i) => events[i] as PresenceInput)];
      return fc.shuffledSubarray(all, { minLength: all.length, maxLength: all.length });
    })
    .map((delivery) => ({ events, delivery })),
);

type Step = { readonly event: PresenceInput } | { readonly expireAfterMs: number };

/** Deliveries of two chats interleaved, with expiry checks at random moments. */
const interleavedArb = fc
  .tuple(sequenceArb(fc.constant({ instanceId: 'I1', phone: '5511' })), sequenceArb(chatArb))
  .chain(([a, b]) => {
    const events = [...a, ...b.map((e) => ({ ...e, id: `b-${e.id}` }))];
    const steps: Step[] = events.map((event) => ({ event }));
    return fc
      .tuple(
        fc.array(fc.integer({ min: 0, max: 60_000 }), { maxLength: 8 }),
        fc.array(fc.nat({ max: events.length - 1 }), { maxLength: 6 }),
      )
      .chain(([expiries, dupes]) => {
        const all: Step[] = [
          ...steps,
          ...dupes.map((i) => steps[i] as Step),
          ...expiries.map((expireAfterMs) => ({ expireAfterMs })),
        ];
        return fc.shuffledSubarray(all, { minLength: all.length, maxLength: all.length });
      });
  });

describe('properties', () => {
  it('(a) in-order events never throw and the final status is the last event’s', () => {
    fc.assert(
      fc.property(sequenceArb(), (events) => {
        const { state } = run(events);
        expect(state.status).toBe(last(events).status);
        expect(state.eventTime).toBe(last(events).time);
        expect(state.lastEventId).toBe(last(events).id);
        expect(state.online).toBe(last(events).status !== 'UNAVAILABLE');
        expect(state.recentEventIds).toEqual(
          events
            .filter((e) => e.time === last(events).time)
            .map((e) => e.id)
            .slice(-20),
        );
      }),
    );
  });

  it('(b) shuffled delivery with duplicates: eventTime never moves backward, nothing older is applied, no id applied twice', () => {
    fc.assert(
      fc.property(deliveryArb, ({ delivery }) => {
        let state: ChatState | undefined;
        let newestApplied = Number.NEGATIVE_INFINITY;
        const appliedIds = new Set<string>();
        for (const event of delivery) {
          const result = applyPresence(state, event);
          if (result.kind === 'applied') {
            expect(appliedIds.has(event.id)).toBe(false);
            appliedIds.add(event.id);
            expect(event.time).toBeGreaterThanOrEqual(newestApplied);
            if (state !== undefined) expect(result.state.eventTime).toBeGreaterThanOrEqual(state.eventTime);
            expect(result.state.eventTime).toBe(event.time);
            newestApplied = Math.max(newestApplied, event.time);
            state = result.state;
          } else if (result.kind === 'older') {
            expect(event.time).toBeLessThan(newestApplied);
          } else {
            // A duplicate: an event already applied, the last one or one of the newest second.
            expect(appliedIds.has(event.id)).toBe(true);
            expect(
              event.id === state?.lastEventId ||
                (event.time === state?.eventTime && state.recentEventIds?.includes(event.id)),
            ).toBe(true);
          }
        }
        expect(state?.eventTime).toBe(newestApplied);
      }),
    );
  });

  /** Runs interleaved steps over two chats; every derived event in order, per chat. */
  function simulate(steps: readonly Step[]) {
    return simulateAll(steps).derived;
  }

  /** The derived events of the steps, and every chat's final state. */
  function simulateAll(steps: readonly Step[]) {
    const states = new Map<string, ChatState>();
    const derived: DerivedEvent[] = [];
    for (const step of steps) {
      if ('event' in step) {
        const chat = `${step.event.instanceId}/${chatKeyOf(step.event)}`;
        const result = applyPresence(states.get(chat), step.event);
        if (result.kind === 'applied') {
          states.set(chat, result.state);
          derived.push(...result.derived);
        }
      } else {
        for (const [chat, state] of states) {
          const expired = expireActivity(state, state.eventTime + step.expireAfterMs);
          if (expired) {
            states.set(chat, expired.state);
            derived.push(...expired.derived);
          }
        }
      }
    }
    return { derived, states };
  }

  it('(c) every activity-stopped follows an activity-started of the same activity for that chat; durations >= 0', () => {
    fc.assert(
      fc.property(interleavedArb, (steps) => {
        const open = new Map<string, { activity: Activity; at: number }>();
        for (const event of simulate(steps)) {
          const chat = `${event.instanceId}/${chatKeyOf(event)}`;
          if (event.kind === 'activity-started') {
            expect(open.get(chat)).toBeUndefined();
            open.set(chat, { activity: event.activity, at: event.at });
          } else if (event.kind === 'activity-stopped') {
            expect(open.get(chat)).toEqual({ activity: event.activity, at: event.startedAt });
            expect(event.durationMs).toBeGreaterThanOrEqual(0);
            expect(event.durationMs).toBe(event.at - event.startedAt);
            open.delete(chat);
          } else if (event.kind === 'went-offline') {
            expect(event.durationMs).toBeGreaterThanOrEqual(0);
            expect(event.durationMs).toBe(event.at - event.onlineSince);
          }
        }
      }),
    );
  });

  it('(d) the detail of every derived event validates against its schema, with exactly its fields', () => {
    const pattern = derivedEventPattern();
    fc.assert(
      fc.property(interleavedArb, (steps) => {
        for (const event of simulate(steps)) {
          const type = derivedDetailType(event) as DerivedDetailType;
          expect(pattern['detail-type']).toContain(type);
          const schema = DERIVED_DETAIL_SCHEMAS[type];
          const detail = derivedDetail(event);
          const result = v.safeParse(schema, detail);
          expect(result.issues).toBeUndefined();
          // `participant` only for a member of a group chat.
          const fields = Object.keys(schema.entries).filter(
            (field) => field !== 'participant' || event.participant !== undefined,
          );
          expect(Object.keys(detail).sort()).toEqual(fields.sort());
          expect(detail.participant).toBe(event.participant);
          expect(JSON.parse(JSON.stringify(detail))).toEqual(detail);
        }
      }),
    );
  });

  it('(f) per chat, the derived events (expiries included) are numbered from the first one’s time (epoch ms), one more each, with no gap or repeat', () => {
    fc.assert(
      fc.property(interleavedArb, (steps) => {
        const last = new Map<string, number>();
        for (const event of simulate(steps)) {
          const chat = `${event.instanceId}/${chatKeyOf(event)}`;
          const previous = last.get(chat);
          expect(event.sequence).toBe(previous === undefined ? event.at : previous + 1);
          expect(Number.isSafeInteger(event.sequence)).toBe(true);
          last.set(chat, event.sequence);
        }
      }),
    );
  });

  it('within one second, ordered by receivedAt: any delivery order gives the state, the read and the highest-sequence current of Z-API’s order (property)', () => {
    const statusArb = fc.constantFrom(...PRESENCE_STATUSES);
    fc.assert(
      fc.property(
        fc.option(statusArb, { nil: undefined }),
        fc.array(statusArb, { minLength: 2, maxLength: 4 }),
        fc.uniqueArray(fc.integer({ min: 0, max: 999 }), { minLength: 4, maxLength: 4 }),
        fc.array(fc.nat(), { minLength: 4, maxLength: 4 }),
        (before, statuses, offsets, shuffle) => {
          const ms = [...offsets].sort((a, b) => a - b);
          // An earlier state (or none), then Z-API's callbacks within one second, each time its receivedAt.
          const start =
            before === undefined ? undefined : applied(applyPresence(undefined, ev(before, s(0))));
          const callbacks = statuses.map((status, i) => ev(status, s(10) + (ms[i] as number)));
          const order = callbacks
            .map((c, i) => ({ c, key: shuffle[i] as number }))
            .sort((a, b) => a.key - b.key);
          const outcome = (delivery: readonly PresenceInput[]) => {
            let state = start?.state;
            const derived: DerivedEvent[] = [...(start?.derived ?? [])];
            for (const event of delivery) {
              const result = applyPresence(state, event);
              if (result.kind !== 'applied') continue;
              state = result.state;
              derived.push(...result.derived);
            }
            const highest = derived.reduce<DerivedEvent | undefined>(
              (best, d) => (best === undefined || d.sequence > best.sequence ? d : best),
              undefined,
            );
            const view = state === undefined ? undefined : stateView(state);
            return {
              state: { status: state?.status, online: state?.online, activity: state?.activity },
              read: { status: view?.status, online: view?.online, activity: view?.activity },
              current: highest?.current ?? { online: false, activity: null },
            };
          };
          expect(outcome(order.map((o) => o.c))).toEqual(outcome(callbacks));
        },
      ),
      { numRuns: 2_000 },
    );
  });

  it('news after the activity window ends the old activity first (a late check never merges two bursts)', () => {
    const first = applied(applyPresence(undefined, ev('COMPOSING', s(0))));
    // Within the window (25 s + the second of EventBridge time): the same activity goes on.
    const within = applied(applyPresence(first.state, ev('COMPOSING', s(25))));
    expect(within.derived).toEqual([]);
    expect(within.state.activitySince).toBe(s(0));
    // Past it: Activity Stopped (expired, dated at the last news), then a new start.
    const late = applied(applyPresence(within.state, ev('COMPOSING', s(100))));
    expect(late.derived.map((d) => `${d.kind}${'reason' in d ? `:${d.reason}` : ''}`)).toEqual([
      'activity-stopped:expired',
      'activity-started',
    ]);
    expect(late.derived[0]).toMatchObject({
      at: s(25),
      startedAt: s(0),
      durationMs: 25_000,
      current: { online: true, activity: null },
    });
    expect(late.derived[1]).toMatchObject({ at: s(100), current: { online: true, activity: 'typing' } });
    expect(late.derived.map((d) => d.sequence)).toEqual([
      (first.state.sequence ?? 0) + 1,
      (first.state.sequence ?? 0) + 2,
    ]);
    expect(late.state).toMatchObject({ activity: 'typing', activitySince: s(100), activityLastNews: s(100) });
    // The late check of the first burst then changes nothing.
    expect(expireActivity(late.state, s(101))).toBeUndefined();
    // A PAUSED after the window reports the expired activity only, not a 110-second one.
    const paused = applied(applyPresence(within.state, ev('PAUSED', s(110))));
    expect(paused.derived).toEqual([
      expect.objectContaining({ kind: 'activity-stopped', reason: 'expired', durationMs: 25_000 }),
    ]);
    // UNAVAILABLE after the window: the expired stop, then went offline.
    const gone = applied(applyPresence(within.state, ev('UNAVAILABLE', s(110))));
    expect(gone.derived.map((d) => d.kind)).toEqual(['activity-stopped', 'went-offline']);
    // With another expiry (the live view's 0 resolution), the window moves with it.
    expect(
      applied(applyPresence(first.state, ev('COMPOSING', s(11)), 10_000, 0)).derived.map((d) => d.kind),
    ).toEqual(['activity-stopped', 'activity-started']);
  });

  it('(g) every derived event carries the presence its change leaves; every event of one change the same', () => {
    fc.assert(
      fc.property(deliveryArb, ({ delivery }) => {
        let state: ChatState | undefined;
        for (const event of delivery) {
          const result = applyPresence(state, event);
          if (result.kind !== 'applied') continue;
          // News after the activity's window first ends it (its own change: the presence before the news,
          // without the activity); the news's events then carry what the news leaves.
          const [first, ...rest] = result.derived;
          const late = first?.kind === 'activity-stopped' && first.reason === 'expired';
          if (late) expect(first.current).toEqual({ online: state?.online, activity: null });
          for (const derived of late ? rest : result.derived) {
            expect(derived.current).toEqual({
              online: result.state.online,
              activity: result.state.activity ?? null,
            });
          }
          state = result.state;
          const expired = expireActivity(state, state.eventTime + 60_000);
          if (expired !== undefined && event.id.endsWith('0')) {
            expect(expired.derived.map((d) => d.current)).toEqual([{ online: state.online, activity: null }]);
            state = expired.state;
          }
        }
      }),
    );
  });

  it('(h) a subscriber that keeps the `current` of the highest sequence it saw ends at the chat’s presence, whatever order, repeats or losses of earlier events it gets', () => {
    fc.assert(
      fc.property(
        interleavedArb.chain((steps) => {
          const { derived, states } = simulateAll(steps);
          return fc
            .tuple(
              fc.shuffledSubarray(derived, { minLength: derived.length, maxLength: derived.length }),
              fc.array(fc.nat({ max: Math.max(0, derived.length - 1) }), { maxLength: 6 }),
              fc.array(fc.boolean(), { minLength: derived.length, maxLength: derived.length }),
            )
            .map(([shuffled, repeats, kept]) => ({ derived, states, shuffled, repeats, kept }));
        }),
        ({ derived, states, shuffled, repeats, kept }) => {
          // The last derived event of each chat is delivered (at least once); any other may be lost.
          const lastOf = new Map(derived.map((d) => [`${d.instanceId}/${chatKeyOf(d)}`, d]));
          const delivered = [
            ...shuffled.filter((d, i) => kept[i] || lastOf.get(`${d.instanceId}/${chatKeyOf(d)}`) === d),
            ...repeats.flatMap((i) => (shuffled[i] === undefined ? [] : [shuffled[i]])),
          ];
          const seen = new Map<string, { sequence: number; current: DerivedEvent['current'] }>();
          for (const d of delivered) {
            const chat = `${d.instanceId}/${chatKeyOf(d)}`;
            if ((seen.get(chat)?.sequence ?? 0) >= d.sequence) continue;
            seen.set(chat, { sequence: d.sequence, current: d.current });
          }
          for (const [chat, last] of lastOf) {
            const state = states.get(chat) as ChatState;
            expect(seen.get(chat)?.current).toEqual({
              online: state.online,
              activity: state.activity ?? null,
            });
            expect(seen.get(chat)?.sequence).toBe(last.sequence);
          }
        },
      ),
    );
  });

  it('(e) within one change: stops, then came-online or went-offline, then starts', () => {
    const rank = { 'activity-stopped': 0, 'came-online': 1, 'went-offline': 1, 'activity-started': 2 };
    fc.assert(
      fc.property(deliveryArb, ({ delivery }) => {
        let state: ChatState | undefined;
        for (const event of delivery) {
          const result = applyPresence(state, event);
          if (result.kind !== 'applied') continue;
          const ranks = result.derived.map((d) => rank[d.kind]);
          expect(ranks).toEqual([...ranks].sort((x, y) => x - y));
          expect(new Set(result.derived.map((d) => d.kind)).size).toBe(result.derived.length);
          state = result.state;
        }
      }),
    );
  });
});
