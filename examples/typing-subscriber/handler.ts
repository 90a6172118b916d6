/**
 * A subscriber: a Lambda target of `presence.onStatus('Typing', ['COMPOSING'], ...)`. The event type
 * comes from the package, so `detail.status` is known to be 'COMPOSING' here.
 */
import type { PresenceEvent } from 'zapi-presence-eventbridge';

export interface TypingNotice {
  readonly chat: string;
  readonly instance: string;
  readonly at: string;
}

/** What your code does with the event: here, a notice for an agent dashboard. */
export function typingNotice(event: PresenceEvent<'COMPOSING'>): TypingNotice {
  return { chat: event.detail.phone, instance: event.detail.instanceId, at: event.time };
}

export async function handler(event: PresenceEvent<'COMPOSING'>): Promise<TypingNotice> {
  const notice = typingNotice(event);
  console.info({ msg: 'contact typing', ...notice });
  return notice;
}
