/**
 * `npm start`'s in-memory presence store (functions/local/local-store.ts): the feed events it publishes
 * (derived events and the COMPOSING/RECORDING news, as the deployed publisher encodes them), its snapshot
 * pages, and an expiry that still comes when the timer fires a little before the clock reaches its instant.
 */
import { describe, expect, it } from 'vitest';
import type { FeedEvent } from '../../../functions/live-feed/message.ts';
import { createLocalStore } from '../../../functions/local/local-store.ts';
import { deadlineAt } from '../../../functions/shared/aws/deadline.ts';

const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('the local store', () => {
  it('publishes derived events and news for a typing chat, then the stop when its window passes', async () => {
    const published: FeedEvent[] = [];
    const store = createLocalStore({ expiryMs: 200, publish: (event) => published.push(event) });
    store.apply({ id: 'e1', time: Date.now(), instanceId: 'LOCAL', phone: '5511', status: 'COMPOSING' });
    const kinds = () =>
      published.map((e) => JSON.parse(e.body)).map((m) => (m.kind === 'news' ? 'news' : m.type));
    expect(kinds()).toEqual(['Z-API Chat Came Online', 'Z-API Chat Activity Started', 'news']);
    await wait(400);
    expect(kinds().at(-1)).toBe('Z-API Chat Activity Stopped');
    expect(published.every((e) => e.channel === '/presence/LOCAL')).toBe(true);
    store.close();
  });

  it('still stops the activity when the timer fires before its clock reaches the instant', async () => {
    const published: FeedEvent[] = [];
    // The clock falls 30 ms behind the timers after the callback: the first firing is "too early".
    let behind = 0;
    const store = createLocalStore({
      expiryMs: 100,
      now: () => Date.now() - behind,
      publish: (e) => published.push(e),
    });
    store.apply({ id: 'e1', time: Date.now(), instanceId: 'LOCAL', phone: '5512', status: 'RECORDING' });
    behind = 30;
    await wait(400);
    expect(published.map((e) => JSON.parse(e.body).type)).toContain('Z-API Chat Activity Stopped');
    store.close();
  });

  it('lists an instance’s chats in key order, a page at a time', async () => {
    const store = createLocalStore({ publish: () => {} });
    for (const phone of ['3', '1', '2'])
      store.apply({ id: phone, time: Date.now(), instanceId: 'A', phone, status: 'AVAILABLE' });
    store.apply({ id: 'x', time: Date.now(), instanceId: 'B', phone: '9', status: 'AVAILABLE' });
    const first = await store.list('A', 2, undefined, deadlineAt(Date.now() + 1_000));
    expect(first.chats.map((c) => c.state.phone)).toEqual(['1', '2']);
    const second = await store.list('A', 2, first.next, deadlineAt(Date.now() + 1_000));
    expect(second).toEqual({
      chats: [expect.objectContaining({ state: expect.objectContaining({ phone: '3' }) })],
    });
    expect(store.instances()).toEqual(['A', 'B']);
    store.close();
  });
});
