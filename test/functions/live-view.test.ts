/**
 * The live view's state (functions/local/live-view.ts) without a browser: the same derivation as the
 * deployed subscriber, the same chats refused, and typing that stops by itself at the end of its window
 * (local events carry milliseconds, so no whole-second allowance). test/browser/ drives the page.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createLiveView } from '../../functions/local/live-view.ts';
import type { PresenceInput } from '../../functions/shared/presence/presence-state.ts';

const T0 = Date.parse('2026-11-25T12:00:00.000Z');
let counter = 0;
const input = (phone: string, status: PresenceInput['status'], time: number, participant?: string) => {
  counter += 1;
  return {
    id: `e-${counter}`,
    time,
    instanceId: 'LOCAL',
    phone,
    ...(participant !== undefined && { participant }),
    status,
  } satisfies PresenceInput;
};

afterEach(() => {
  vi.useRealTimers();
});

describe('live view state', () => {
  it('keeps a state per chat and per group member; a phone holding `#` is refused, as the deployed subscriber refuses it', () => {
    const view = createLiveView({ now: () => T0 });
    view.apply(input('1203-group', 'COMPOSING', T0, '5511888'));
    view.apply(input('1203-group#5511888', 'AVAILABLE', T0 + 1_000));
    view.apply(input('', 'AVAILABLE', T0 + 1_000));
    expect([...view.chats.values()].map((c) => [c.phone, c.participant, c.status])).toEqual([
      ['1203-group', '5511888', 'COMPOSING'],
    ]);
    view.close();
  });

  it('ends a typing with no news after the window exactly (milliseconds: no allowance), with reason expired', () => {
    vi.useFakeTimers({ now: T0 });
    const view = createLiveView({ expiryMs: 25_000 });
    view.apply(input('5511999', 'COMPOSING', T0));
    vi.advanceTimersByTime(24_999);
    expect([...view.chats.values()][0]?.activity).toBe('typing');
    vi.advanceTimersByTime(1);
    expect([...view.chats.values()][0]?.activity).toBeUndefined();
    view.close();
  });
});
