/** How to unit-test a subscriber with the package's test helper. */

import { describe, expect, it, vi } from 'vitest';
import { presenceEvent } from 'zapi-presence-eventbridge/testing';
import { handler } from './handler.ts';

describe('typing subscriber', () => {
  it('turns a COMPOSING event into a notice for the dashboard', async () => {
    vi.spyOn(console, 'info').mockImplementation(() => {});
    const event = presenceEvent('COMPOSING', { phone: '5511988887777', time: '2026-11-25T12:00:00Z' });
    expect(event['detail-type']).toBe('Z-API Chat Presence COMPOSING');
    await expect(handler(event)).resolves.toEqual({
      chat: '5511988887777',
      instance: event.detail.instanceId,
      at: '2026-11-25T12:00:00Z',
    });
  });

  it('keeps the extra fields group presence carries', () => {
    const event = presenceEvent('COMPOSING', {
      detail: { isGroup: true, participantPhone: '5511977776666' },
    });
    expect(event.detail).toMatchObject({
      isGroup: true,
      participantPhone: '5511977776666',
      status: 'COMPOSING',
    });
  });
});
