/**
 * `npm start`'s presence store, in memory: every chat's state from the same derivation code as the
 * deployed store (functions/presence-store/presence-state.ts), its derived events numbered the same way,
 * typing and recording that stop by themselves after the expiry window, and `list()` for the twin's
 * snapshot route. Each derived event, and each COMPOSING/RECORDING (the feed's news), goes to `publish`
 * as the deployed publisher encodes it (functions/live-feed/message.ts).
 *
 * At most `maxChats` chats (the least recently changed leave), so a flood of callbacks cannot grow the
 * process.
 */
import { randomUUID } from 'node:crypto';
import { type BusEvent, encodeFeedEvent, type FeedEvent } from '../live-feed/message.ts';
import {
  activityExpiresAt,
  applyPresence,
  type ChatKey,
  type ChatState,
  chatKeyOf,
  DEFAULT_EXPIRY_MS,
  type DerivedEvent,
  derivedDetail,
  derivedDetailType,
  expireActivity,
  isStorableChat,
  type PresenceInput,
} from '../presence-store/presence-state.ts';
import type { PresenceStore, StoredChat } from '../presence-store/store.ts';
import { DERIVED_EVENT_SOURCE, DETAIL_TYPES, EVENT_SOURCE } from '../shared/contract/presence-contract.ts';

export const MAX_CHATS = 10_000;

export interface LocalStoreOptions {
  readonly expiryMs?: number;
  /** @default MAX_CHATS */
  readonly maxChats?: number;
  /** @default Date.now */
  readonly now?: () => number;
  /** Where each feed event goes (the twin's channels). */
  readonly publish: (event: FeedEvent) => void;
}

export interface LocalStore extends Required<Pick<PresenceStore, 'list'>> {
  /** Feeds one accepted presence event (its time in epoch ms: the receiver's stamp). */
  apply(input: PresenceInput): void;
  readonly chats: ReadonlyMap<string, ChatState>;
  /** Instances with at least one chat, in the order first seen. */
  instances(): string[];
  close(): void;
}

export function createLocalStore(options: LocalStoreOptions): LocalStore {
  const expiryMs = options.expiryMs ?? DEFAULT_EXPIRY_MS;
  const now = options.now ?? Date.now;
  const maxChats = options.maxChats ?? MAX_CHATS;
  const chats = new Map<string, ChatState>();
  const timers = new Map<string, ReturnType<typeof setTimeout>>();
  const keyOf = (key: ChatKey) => `${key.instanceId}\u0000${chatKeyOf(key)}`;

  const send = (event: BusEvent) => {
    const encoded = encodeFeedEvent(event);
    if (encoded.ok) options.publish(encoded.event);
  };
  const announce = (derived: readonly DerivedEvent[]) => {
    for (const event of derived) {
      send({
        id: `local-${randomUUID()}`,
        source: DERIVED_EVENT_SOURCE,
        'detail-type': derivedDetailType(event),
        detail: derivedDetail(event),
      });
    }
  };
  /** Keeps a chat's state, the most recently changed last; the least recently changed leave past the cap. */
  const keep = (key: string, state: ChatState) => {
    chats.delete(key);
    chats.set(key, state);
    while (chats.size > maxChats) {
      const oldest = chats.keys().next().value as string;
      chats.delete(oldest);
      clearTimeout(timers.get(oldest));
      timers.delete(oldest);
    }
  };
  // Local events carry their time in milliseconds: no whole-second allowance (resolution 0).
  function scheduleExpiry(key: string, state: ChatState): void {
    clearTimeout(timers.get(key));
    timers.delete(key);
    const expiresAt = activityExpiresAt(state, expiryMs, 0);
    if (expiresAt === undefined) return;
    const timer = setTimeout(
      () => {
        timers.delete(key);
        const current = chats.get(key);
        if (current === undefined) return;
        const expired = expireActivity(current, now(), expiryMs, 0);
        // A timer can fire a millisecond before the clock reaches its instant: not yet, so again.
        if (expired === undefined) return scheduleExpiry(key, current);
        keep(key, expired.state);
        announce(expired.derived);
      },
      Math.max(0, expiresAt - now()),
    );
    timer.unref();
    timers.set(key, timer);
  }

  return {
    chats,
    apply(input) {
      // As the deployed store: a chat that could not have a state there has none here either.
      if (!isStorableChat(input)) return;
      const key = keyOf(input);
      const result = applyPresence(chats.get(key), input, expiryMs, 0);
      if (result.kind !== 'applied') return;
      keep(key, result.state);
      scheduleExpiry(key, result.state);
      announce(result.derived);
      // The feed's news: the activity goes on (a view keeps "typing…" up).
      if (input.status === 'COMPOSING' || input.status === 'RECORDING') {
        send({
          id: input.id,
          source: EVENT_SOURCE,
          'detail-type': DETAIL_TYPES[input.status],
          detail: {
            instanceId: input.instanceId,
            phone: input.phone,
            ...(input.participant !== undefined && { participant: input.participant }),
            receivedAt: input.time,
          },
        });
      }
    },
    instances() {
      return [...new Set([...chats.values()].map((state) => state.instanceId))];
    },
    async list(instanceId, limit, after) {
      const keys = [...chats.entries()]
        .filter(([, state]) => state.instanceId === instanceId)
        .map(([, state]) => [chatKeyOf(state), state] as const)
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      const start = after === undefined ? 0 : keys.findIndex(([chat]) => chat > after);
      const page = start < 0 ? [] : keys.slice(start, start + limit);
      const more = start >= 0 && start + limit < keys.length;
      const stored: StoredChat[] = page.map(([, state]) => ({ state, version: 1, pending: [] }));
      const last = page.at(-1)?.[0];
      return { chats: stored, ...(more && last !== undefined && { next: last }) };
    },
    close() {
      for (const timer of timers.values()) clearTimeout(timer);
      timers.clear();
    },
  };
}
