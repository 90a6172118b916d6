/**
 * The presence-state subscriber's core: one raw presence event, or one expiry check, in; the chat's
 * state updated and the derived events published. Dependencies are passed in.
 *
 * Exactly-once effects on the state, at-least-once derived events (a repeat after a failure, or when
 * two containers work on one chat at once: 0.3 % of them at a team's pace, BENCHMARKS.md):
 * - the state is written with an optimistic version check (concurrent deliveries for one chat retry on
 *   the fresh state), together with the derived events it produced (`pending`, an outbox);
 * - the derived events are published after the write, then the outbox is cleared, only if the item still
 *   holds that very outbox (its `version` and `sequence`: neither repeats, even after the TTL deleted
 *   the item and versions start again). The clear is skipped when the chat's next record in the same
 *   batch writes anyway (that write replaces the outbox); the clears of a round go out side by side.
 *   An outbox a reader finds still pending (a publish that failed or whose answer was lost, a process
 *   that died, a clear that failed) is published **before** anything is applied behind it, then cleared
 *   or replaced: the outbox never holds more than one step's events, and nothing is lost; an event is
 *   published twice only then (its `sequence` tells a subscriber). The outbox of an item idle past the
 *   TTL is never published: that chat is one never seen;
 * - an activity start or refresh schedules an expiry check on a delay queue first, so a failure there is
 *   retried before anything is written; a check that comes early schedules the next one.
 *
 * Records of a batch run in rounds: the first record of every chat, then the second, and so on. Each
 * round reads the chats it does not know yet in one call (BatchGetItem), sends its expiry checks in one
 * call and publishes in as few as it can (10 entries a call); a chat's later records start from the
 * item its earlier one wrote, without reading it again.
 */
import type { Deadline } from '../shared/aws/deadline.ts';
import {
  applyPresence,
  type ChatKey,
  type ChatState,
  chatKeyOf,
  type DerivedEvent,
  EVENT_TIME_RESOLUTION_MS,
  expireActivity,
  type PresenceInput,
} from './presence-state.ts';
import { isIdle, type PresenceStore, type StoredChat } from './store.ts';

export interface StateDeps {
  readonly store: PresenceStore;
  /**
   * Puts the derived events on the bus; throws when none could be, or resolves to the positions of the
   * events not accepted (none: all were).
   */
  // biome-ignore lint/suspicious/noConfusingVoidType: a publisher that reports nothing (void) accepted all
  publish(events: readonly DerivedEvent[], deadline: Deadline): Promise<void | readonly number[]>;
  /**
   * Asks for an expiry check of the chat after `delaySeconds`, for the activity's news of time `news`
   * (handed back to processExpiry).
   */
  scheduleExpiry(key: ChatKey, delaySeconds: number, deadline: Deadline, news?: number): Promise<void>;
  /** Several checks in one call (at most 10); throws when any was not accepted. */
  scheduleExpiries?(checks: readonly ExpiryRequest[], deadline: Deadline): Promise<void>;
  readonly now: () => number;
  readonly expiryMs: number;
  /**
   * Told when clearing a published outbox failed: nothing is lost (the outbox is published again by the
   * chat's next reader, a duplicate), so the record does not fail; the handler logs it.
   */
  clearFailed?(key: ChatKey, error: unknown): void;
}

export interface ExpiryRequest {
  readonly key: ChatKey;
  readonly delaySeconds: number;
  readonly news: number;
}

export type StateOutcome =
  | 'applied'
  | 'older'
  | 'duplicate'
  | 'expired'
  | 'nothing-to-expire'
  | 'rescheduled'
  | 'unknown-chat';

const MAX_CONFLICTS = 5;

/** One record for a chat: a raw presence event, or an expiry check (with the news it is for). */
export type Step =
  | { readonly kind: 'presence'; readonly input: PresenceInput }
  | { readonly kind: 'expiry'; readonly news?: number };

/** One chat's records of a batch, in the order they are to apply. */
export interface ChatWork {
  readonly key: ChatKey;
  readonly steps: readonly Step[];
}

/**
 * What became of a chat's records: an outcome for each of the first ones; `error` (with the index of
 * the record that failed) when one failed. The records after it were not tried: they would overtake it.
 */
export interface ChatResult {
  readonly outcomes: readonly StateOutcome[];
  readonly failed?: { readonly index: number; readonly error: unknown };
}

const chatIdOf = (key: ChatKey) => `${key.instanceId}\u0000${chatKeyOf(key)}`;

/** A chat in the middle of its records: what its item holds, when known. */
interface Job {
  readonly chat: string;
  readonly key: ChatKey;
  readonly steps: readonly Step[];
  readonly outcomes: StateOutcome[];
  index: number;
  attempts: number;
  /** The item as last read or written (null: no item); undefined: to be read. */
  stored: StoredChat | null | undefined;
  failed?: { index: number; error: unknown };
  // Set by a round:
  outcome?: StateOutcome;
  write?: { state: ChatState; derived: readonly DerivedEvent[] };
  schedule?: ExpiryRequest;
  /**
   * The outbox of `stored` is on the bus and still on the item: cleared by the job's next write (which
   * replaces it) or, when there is none, by a clear of its own (conditional on this version and sequence).
   */
  published?: { readonly version: number; readonly sequence: number };
}

/**
 * Runs `each` over groups of jobs whose items (events, checks) fit `limit` per call, a job never split
 * (a job with more items is a group of its own); a group that throws fails each of its jobs, one that
 * names the positions of items not accepted fails the jobs they belong to.
 */
async function grouped<T>(
  jobs: readonly Job[],
  itemsOf: (job: Job) => readonly T[],
  limit: number,
  // biome-ignore lint/suspicious/noConfusingVoidType: as StateDeps.publish
  each: (items: T[]) => Promise<void | readonly number[]>,
): Promise<void> {
  const groups: { jobs: Job[]; items: T[] }[] = [];
  for (const job of jobs) {
    const items = itemsOf(job);
    if (items.length === 0) continue;
    const last = groups.at(-1);
    if (last !== undefined && last.items.length + items.length <= limit) {
      last.jobs.push(job);
      last.items.push(...items);
    } else groups.push({ jobs: [job], items: [...items] });
  }
  await Promise.all(
    groups.map(async (group) => {
      try {
        const refused = await each(group.items);
        if (refused === undefined || refused.length === 0) return;
        let end = 0;
        for (const job of group.jobs) {
          const start = end;
          end += itemsOf(job).length;
          const count = refused.filter((i) => i >= start && i < end).length;
          if (count > 0) fail(job, new Error(`PutEvents: ${count} derived event(s) not accepted`));
        }
      } catch (error) {
        for (const job of group.jobs) fail(job, error);
      }
    }),
  );
}

function fail(job: Job, error: unknown): void {
  job.failed ??= { index: job.index, error };
}

/**
 * Until the activity of news `lastNews` is over (the window and EventBridge's whole second, see
 * EVENT_TIME_RESOLUTION_MS), plus a second to spare, so the check does not come early for its own news.
 */
function expiryDelaySeconds(lastNews: number, deps: StateDeps): number {
  const over = lastNews + deps.expiryMs + EVENT_TIME_RESOLUTION_MS;
  return Math.max(1, Math.ceil((over - deps.now()) / 1_000) + 1);
}

/**
 * What a job's current record does to the chat's state (pure). `state` is undefined for a chat never
 * seen, and for one idle past the TTL whose item DynamoDB has not deleted yet (it deletes late): the
 * writer sees what the read route sees.
 *
 * An applied presence event with an activity schedules its expiry check (an activity is current only
 * right after its own news: this event's). An expiry check: `news` is the time of the COMPOSING or
 * RECORDING it was scheduled for (absent in checks written before it was carried: treated as early).
 */
function decide(job: Job, deps: StateDeps): void {
  const stored = job.stored ?? undefined;
  const state = stored === undefined || isIdle(stored, deps.now()) ? undefined : stored.state;
  const step = job.steps[job.index] as Step;
  job.write = undefined;
  job.schedule = undefined;
  if (step.kind === 'presence') {
    const result = applyPresence(state, step.input, deps.expiryMs);
    job.outcome = result.kind;
    if (result.kind !== 'applied') return;
    job.write = { state: result.state, derived: result.derived };
    if (result.state.activity !== undefined) {
      const news = step.input.time;
      job.schedule = { key: job.key, delaySeconds: expiryDelaySeconds(news, deps), news };
    }
    return;
  }
  if (state === undefined) {
    job.outcome = 'unknown-chat';
    return;
  }
  const expired = expireActivity(state, deps.now(), deps.expiryMs);
  if (expired !== undefined) {
    job.outcome = 'expired';
    job.write = expired;
    return;
  }
  const lastNews = state.activityLastNews;
  // No activity, or a newer COMPOSING or RECORDING since, which scheduled a check of its own.
  if (lastNews === undefined || lastNews > (step.news ?? Number.POSITIVE_INFINITY)) {
    job.outcome = 'nothing-to-expire';
    return;
  }
  // Early for this very news (a clock ahead, a shorter delay): check again when the window ends.
  job.outcome = 'rescheduled';
  job.schedule = { key: job.key, delaySeconds: expiryDelaySeconds(lastNews, deps), news: lastNews };
}

async function readAll(jobs: readonly Job[], deps: StateDeps, deadline: Deadline): Promise<void> {
  const unread = jobs.filter((job) => job.stored === undefined);
  if (unread.length === 0) return;
  try {
    const items =
      unread.length > 1 && deps.store.getMany !== undefined
        ? await deps.store.getMany(
            unread.map((job) => job.key),
            deadline,
          )
        : await Promise.all(unread.map((job) => deps.store.get(job.key, deadline)));
    unread.forEach((job, i) => {
      job.stored = items[i] ?? null;
    });
  } catch (error) {
    for (const job of unread) fail(job, error);
  }
}

/**
 * Publishes the outboxes the chats' items still hold (not cleared: an earlier publish failed, a process
 * died before it, a clear failed), before anything is applied behind them. Not that of an idle item (past
 * its TTL, not deleted yet): that chat is one never seen, its month-old events news to nobody.
 */
async function flushPending(jobs: readonly Job[], deps: StateDeps, deadline: Deadline): Promise<void> {
  const pending = jobs.filter(
    (job) =>
      job.stored &&
      job.stored.pending.length > 0 &&
      job.published?.version !== job.stored.version &&
      !isIdle(job.stored, deps.now()),
  );
  await grouped(
    pending,
    (job) => job.stored?.pending ?? [],
    10,
    (events) => deps.publish(events, deadline),
  );
  for (const job of pending) {
    if (job.failed === undefined && job.stored)
      job.published = { version: job.stored.version, sequence: job.stored.state.sequence ?? 0 };
  }
}

/** Clears the published outboxes of these jobs, side by side; a failure is reported, not fatal. */
function clearAll(jobs: readonly Job[], deps: StateDeps, deadline: Deadline): Promise<void>[] {
  return jobs.map(async (job) => {
    const published = job.published;
    if (published === undefined) return;
    job.published = undefined;
    try {
      await deps.store.clearPending(job.key, published.version, deadline, published.sequence);
    } catch (error) {
      deps.clearFailed?.(job.key, error);
    }
  });
}

async function scheduleAll(jobs: readonly Job[], deps: StateDeps, deadline: Deadline): Promise<void> {
  const { scheduleExpiries } = deps;
  await grouped(
    jobs,
    (job) => (job.schedule === undefined ? [] : [job.schedule]),
    scheduleExpiries === undefined ? 1 : 10,
    (checks) =>
      scheduleExpiries === undefined
        ? deps.scheduleExpiry(
            checks[0]?.key as ChatKey,
            checks[0]?.delaySeconds as number,
            deadline,
            checks[0]?.news,
          )
        : scheduleExpiries(checks, deadline),
  );
}

/**
 * One round: the current record of each job, up to MAX_CONFLICTS attempts for those that conflict. A
 * published outbox is cleared in the round that knows no write of the job replaces it: this one when the
 * job writes nothing now, has no next record or failed; else the next round's write replaces it.
 */
async function round(jobs: Job[], deps: StateDeps, deadline: Deadline): Promise<void> {
  let active = jobs;
  while (active.length > 0) {
    await readAll(active, deps, deadline);
    await flushPending(
      active.filter((job) => job.failed === undefined),
      deps,
      deadline,
    );
    const live = active.filter((job) => job.failed === undefined);
    for (const job of live) decide(job, deps);
    await scheduleAll(live, deps, deadline);
    const writing = live.filter((job) => job.failed === undefined && job.write !== undefined);
    const conflicted: Job[] = [];
    await Promise.all([
      ...clearAll(
        active.filter((job) => job.published !== undefined && !writing.includes(job)),
        deps,
        deadline,
      ),
      ...writing.map(async (job) => {
        const write = job.write as NonNullable<Job['write']>;
        const version = job.stored?.version;
        try {
          if (await deps.store.put(write.state, write.derived, version, deadline)) {
            job.stored = { state: write.state, version: (version ?? 0) + 1, pending: write.derived };
            job.published = undefined; // replaced by this write
            return;
          }
        } catch (error) {
          fail(job, error);
          return;
        }
        job.published = undefined; // another writer replaced it
        job.attempts += 1;
        if (job.attempts >= MAX_CONFLICTS)
          fail(
            job,
            new Error(`chat state kept changing under ${MAX_CONFLICTS} attempts; retried with the message`),
          );
        else {
          job.stored = undefined; // read it again
          conflicted.push(job);
        }
      }),
    ]);
    const written = writing.filter((job) => job.failed === undefined && !conflicted.includes(job));
    await grouped(
      written,
      (job) => job.write?.derived ?? [],
      10,
      (events) => deps.publish(events, deadline),
    );
    for (const job of written) {
      if (job.failed === undefined && job.stored && job.stored.pending.length > 0)
        job.published = { version: job.stored.version, sequence: job.stored.state.sequence ?? 0 };
    }
    for (const job of live) {
      if (job.failed === undefined && !conflicted.includes(job)) {
        job.outcomes.push(job.outcome as StateOutcome);
        job.attempts = 0;
      }
    }
    active = conflicted;
  }
  // No later record of these jobs will write: their published outboxes are cleared now.
  await Promise.all(
    clearAll(
      jobs.filter((job) => job.failed !== undefined || job.index + 1 >= job.steps.length),
      deps,
      deadline,
    ),
  );
}

/**
 * Applies a batch's records, chat by chat in their order, the chats side by side (see the module's
 * comment). A chat's records stop at its first failure.
 */
export async function processChats(
  chats: readonly ChatWork[],
  deps: StateDeps,
  deadline: Deadline,
): Promise<ChatResult[]> {
  const jobs: Job[] = chats.map(({ key, steps }) => ({
    chat: chatIdOf(key),
    key,
    steps,
    outcomes: [],
    index: 0,
    attempts: 0,
    stored: undefined,
  }));
  for (;;) {
    const due = jobs.filter((job) => job.failed === undefined && job.index < job.steps.length);
    if (due.length === 0) break;
    await round(due, deps, deadline);
    for (const job of due) if (job.failed === undefined) job.index += 1;
  }
  return jobs.map((job) => ({
    outcomes: job.outcomes,
    ...(job.failed !== undefined && { failed: job.failed }),
  }));
}

async function one(key: ChatKey, step: Step, deps: StateDeps, deadline: Deadline): Promise<StateOutcome> {
  const [result] = await processChats([{ key, steps: [step] }], deps, deadline);
  if (result?.failed !== undefined) throw result.failed.error;
  return result?.outcomes[0] as StateOutcome;
}

/**
 * Applies one raw presence event. A replayed one (an EventBridge archive replay) is applied like any
 * other: it is dropped when older than the chat's state, so what it changes is news the subscribers
 * missed too, and its derived events are published; an activity it starts whose window has passed
 * ends with the expiry check, a second later.
 */
export function processPresence(
  input: PresenceInput,
  deps: StateDeps,
  deadline: Deadline,
): Promise<StateOutcome> {
  return one(input, { kind: 'presence', input }, deps, deadline);
}

/**
 * An expiry check. `news`: the time of the COMPOSING or RECORDING it was scheduled for (absent in
 * checks written before it was carried: those are treated as early).
 */
export function processExpiry(
  key: ChatKey,
  deps: StateDeps,
  deadline: Deadline,
  news?: number,
): Promise<StateOutcome> {
  return one(key, { kind: 'expiry', ...(news !== undefined && { news }) }, deps, deadline);
}
