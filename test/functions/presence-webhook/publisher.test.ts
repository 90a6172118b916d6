import {
  EventBridgeClient,
  PutEventsCommand,
  type PutEventsCommandOutput,
  type PutEventsResultEntry,
} from '@aws-sdk/client-eventbridge';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  backoffMs,
  createPublisher,
  type PublisherOptions,
  RETRYABLE_ENTRY_ERRORS,
} from '../../../functions/presence-webhook/publisher.ts';
import { DependencyError } from '../../../functions/presence-webhook/receive.ts';
import { type Deadline, DeadlineExceeded, deadlineAt } from '../../../functions/shared/aws/deadline.ts';
import {
  DETAIL_TYPES,
  EVENT_SOURCE,
  PRESENCE_STATUSES,
} from '../../../functions/shared/contract/presence-contract.ts';

type Answer = { FailedEntryCount?: number; Entries?: PutEventsResultEntry[] } | Error;

const ok = (eventId: string): Answer => ({ FailedEntryCount: 0, Entries: [{ EventId: eventId }] });
const failedEntry = (code: string): Answer => ({
  FailedEntryCount: 1,
  Entries: [{ ErrorCode: code, ErrorMessage: `${code} happened` }],
});

/** A client whose send answers from a script (the last answer repeats) and records its calls. */
function fakeClient(...answers: Answer[]) {
  const calls: Array<{ command: PutEventsCommand; options: { abortSignal?: AbortSignal } | undefined }> = [];
  const send = vi.fn(async (command: PutEventsCommand, options?: { abortSignal?: AbortSignal }) => {
    calls.push({ command, options });
    const answer = answers.length > 1 ? answers.shift() : answers[0];
    if (answer instanceof Error) throw answer;
    return { $metadata: {}, ...answer } as PutEventsCommandOutput;
  });
  return { client: { send } as unknown as PublisherOptions['client'], send, calls };
}

/** A deadline with scripted time left (the last value repeats) whose run calls fn with a fresh signal. */
function fakeDeadline(...remaining: number[]) {
  const signals: AbortSignal[] = [];
  const run = vi.fn((_what: string, fn: (signal: AbortSignal) => Promise<unknown>, _capMs?: number) => {
    const signal = new AbortController().signal;
    signals.push(signal);
    return fn(signal);
  });
  const remainingMs = vi.fn(() =>
    remaining.length > 1 ? (remaining.shift() as number) : (remaining[0] ?? 0),
  );
  const deadline = { at: 0, remainingMs, run, within: () => deadline, reserve: () => deadline };
  return { deadline: deadline as unknown as Deadline, run, remainingMs, signals };
}

/** A sleep that records its pauses and returns at once. */
function recordingSleep() {
  const pauses: number[] = [];
  const sleep = vi.fn(async (ms: number) => {
    pauses.push(ms);
  });
  return { sleep, pauses };
}

const ample = () => fakeDeadline(60_000).deadline;

describe('backoffMs', () => {
  it.each([
    // base, attempt, random, expected = round(base * 2^(attempt-1) * (0.5 + random))
    [50, 1, 0, 25],
    [50, 1, 0.5, 50],
    [50, 1, 0.999, 75],
    [50, 2, 0, 50],
    [50, 2, 0.5, 100],
    [50, 3, 0.5, 200],
    [50, 3, 0.999, 300],
    [100, 2, 0.25, 150],
    [10, 1, 0.33, 8],
    [10, 1, 0.36, 9],
    [0, 5, 0.7, 0],
  ])('backoffMs(%s, %s, () => %s) is %s', (base, attempt, r, expected) => {
    expect(backoffMs(base, attempt, () => r)).toBe(expected);
  });

  it('uses Math.random by default', () => {
    vi.spyOn(Math, 'random').mockReturnValue(0.25);
    expect(backoffMs(100, 1)).toBe(75);
    expect(backoffMs(100, 3)).toBe(300);
  });

  it('stays within [0.5, 1.5) x base x 2^(attempt-1)', () => {
    for (let attempt = 1; attempt <= 4; attempt++) {
      for (const r of [0, 0.1, 0.5, 0.9, 0.9999]) {
        const pause = backoffMs(64, attempt, () => r);
        expect(pause).toBeGreaterThanOrEqual(32 * 2 ** (attempt - 1));
        expect(pause).toBeLessThanOrEqual(96 * 2 ** (attempt - 1));
      }
    }
  });
});

describe('RETRYABLE_ENTRY_ERRORS', () => {
  it('is exactly the transient entry errors', () => {
    expect([...RETRYABLE_ENTRY_ERRORS].sort()).toEqual([
      'InternalException',
      'InternalFailure',
      'ServiceUnavailable',
      'ThrottlingException',
    ]);
  });
});

describe('createPublisher', () => {
  const eventBridge = mockClient(EventBridgeClient);
  beforeEach(() => eventBridge.reset());
  afterEach(() => eventBridge.reset());

  it('puts one entry with the contract source and the status detail-type (real SDK client, mocked)', async () => {
    eventBridge.on(PutEventsCommand).resolves({ FailedEntryCount: 0, Entries: [{ EventId: 'e-1' }] });
    const publish = createPublisher({
      client: new EventBridgeClient({ region: 'us-east-1' }),
      eventBusName: 'bus',
      sleep: recordingSleep().sleep,
    });
    await expect(publish('RECORDING', '{"a":1}', ample())).resolves.toEqual({ eventId: 'e-1' });
    const calls = eventBridge.commandCalls(PutEventsCommand);
    expect(calls).toHaveLength(1);
    expect(calls[0]?.args[0].input).toEqual({
      Entries: [
        { EventBusName: 'bus', Source: EVENT_SOURCE, DetailType: DETAIL_TYPES.RECORDING, Detail: '{"a":1}' },
      ],
    });
  });

  it.each(PRESENCE_STATUSES)('uses the detail-type of %s', async (status) => {
    const { client, calls } = fakeClient(ok('e'));
    const publish = createPublisher({
      client,
      eventBusName: 'arn:aws:events:us-east-1:123456789012:event-bus/presence',
    });
    await publish(status, '{"status":1}', ample());
    expect(calls[0]?.command).toBeInstanceOf(PutEventsCommand);
    expect(calls[0]?.command.input).toEqual({
      Entries: [
        {
          EventBusName: 'arn:aws:events:us-east-1:123456789012:event-bus/presence',
          Source: EVENT_SOURCE,
          DetailType: DETAIL_TYPES[status],
          Detail: '{"status":1}',
        },
      ],
    });
  });

  it('runs every call through deadline.run, without a cap by default, handing its signal to the SDK', async () => {
    const { client, calls } = fakeClient(failedEntry('ThrottlingException'), ok('e-2'));
    const { deadline, run, signals } = fakeDeadline(60_000);
    const publish = createPublisher({ client, eventBusName: 'bus', sleep: recordingSleep().sleep });
    await expect(publish('PAUSED', '{}', deadline)).resolves.toEqual({ eventId: 'e-2' });
    expect(run).toHaveBeenCalledTimes(2);
    for (const call of run.mock.calls) {
      expect(call[0]).toBe('EventBridge PutEvents');
      expect(call[1]).toBeTypeOf('function');
      expect(call[2]).toBeUndefined();
    }
    expect(calls).toHaveLength(2);
    expect(calls[0]?.options).toEqual({ abortSignal: signals[0] });
    expect(calls[0]?.options?.abortSignal).toBe(signals[0]);
    expect(calls[1]?.options?.abortSignal).toBe(signals[1]);
  });

  it('caps every call at callCapMs when given', async () => {
    const { client } = fakeClient(failedEntry('InternalFailure'), ok('e-2'));
    const { deadline, run } = fakeDeadline(60_000);
    const publish = createPublisher({
      client,
      eventBusName: 'bus',
      sleep: recordingSleep().sleep,
      callCapMs: 1_234,
    });
    await expect(publish('PAUSED', '{}', deadline)).resolves.toEqual({ eventId: 'e-2' });
    expect(run.mock.calls.map((call) => [call[0], call[2]])).toEqual([
      ['EventBridge PutEvents', 1_234],
      ['EventBridge PutEvents', 1_234],
    ]);
  });

  it('accepts an entry with an EventId and no FailedEntryCount', async () => {
    const { client } = fakeClient({ Entries: [{ EventId: 'e-9' }] });
    const publish = createPublisher({ client, eventBusName: 'bus' });
    await expect(publish('PAUSED', '{}', ample())).resolves.toEqual({ eventId: 'e-9' });
  });

  describe('2xx only with an EventId and FailedEntryCount 0', () => {
    it.each([
      [
        'FailedEntryCount 1 and an EventId but no ErrorCode',
        { FailedEntryCount: 1, Entries: [{ EventId: 'e' }] },
      ],
      ['FailedEntryCount 0 and no EventId', { FailedEntryCount: 0, Entries: [{}] }],
      ['no FailedEntryCount and no EventId', { Entries: [{}] }],
      ['no FailedEntryCount and an empty EventId', { Entries: [{ EventId: '' }] }],
      ['no entries at all', { FailedEntryCount: 0 }],
      ['an empty entry list', { FailedEntryCount: 0, Entries: [] }],
      ['an empty answer', {}],
    ])('fails with NoEventId, without a retry, for %s', async (_case, answer) => {
      const { client, send } = fakeClient(answer);
      const { sleep } = recordingSleep();
      const publish = createPublisher({ client, eventBusName: 'bus', sleep });
      const error = await publish('PAUSED', '{}', ample()).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(DependencyError);
      expect(error).toMatchObject({ dependency: 'bus', message: 'PutEvents entry failed: NoEventId' });
      expect(send).toHaveBeenCalledOnce();
      expect(sleep).not.toHaveBeenCalled();
    });

    it('fails with the entry code when FailedEntryCount says so, even with an EventId', async () => {
      const { client } = fakeClient({
        FailedEntryCount: 1,
        Entries: [{ EventId: 'e', ErrorCode: 'AccessDeniedException' }],
      });
      const publish = createPublisher({ client, eventBusName: 'bus' });
      await expect(publish('PAUSED', '{}', ample())).rejects.toThrow(
        'PutEvents entry failed: AccessDeniedException',
      );
    });
  });

  it('retries a retryable failed entry with exact backoff, then succeeds', async () => {
    const { client, send } = fakeClient(
      failedEntry('ThrottlingException'),
      failedEntry('InternalFailure'),
      ok('e-3'),
    );
    const { sleep, pauses } = recordingSleep();
    const publish = createPublisher({ client, eventBusName: 'bus', sleep, random: () => 0.5 });
    await expect(publish('PAUSED', '{}', ample())).resolves.toEqual({ eventId: 'e-3' });
    expect(send).toHaveBeenCalledTimes(3);
    // Defaults: base 50 ms, doubling: 50 x 1 x (0.5 + 0.5), then 50 x 2 x (0.5 + 0.5).
    expect(pauses).toEqual([50, 100]);
  });

  it('backs off from the base it is given, with the random it is given', async () => {
    const { client } = fakeClient(failedEntry('ServiceUnavailable'));
    const { sleep, pauses } = recordingSleep();
    const random = vi.fn(() => 0);
    const publish = createPublisher({
      client,
      eventBusName: 'bus',
      sleep,
      random,
      backoffBaseMs: 10,
      maxEntryAttempts: 4,
    });
    await expect(publish('PAUSED', '{}', ample())).rejects.toThrow(
      'PutEvents entry failed: ServiceUnavailable',
    );
    expect(pauses).toEqual([5, 10, 20]);
    expect(random).toHaveBeenCalledTimes(3);
  });

  it('uses Math.random for the jitter by default', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0);
    const { client } = fakeClient(failedEntry('InternalException'), ok('e'));
    const { sleep, pauses } = recordingSleep();
    const publish = createPublisher({ client, eventBusName: 'bus', sleep });
    await publish('PAUSED', '{}', ample());
    expect(pauses).toEqual([25]);
  });

  it('sleeps for real by default', async () => {
    vi.useFakeTimers();
    try {
      const { client, send } = fakeClient(failedEntry('ThrottlingException'), ok('e-2'));
      const publish = createPublisher({ client, eventBusName: 'bus', random: () => 0.5, backoffBaseMs: 20 });
      const result = publish('PAUSED', '{}', ample());
      await vi.advanceTimersByTimeAsync(19);
      expect(send).toHaveBeenCalledTimes(1);
      await vi.advanceTimersByTimeAsync(1);
      expect(send).toHaveBeenCalledTimes(2);
      await expect(result).resolves.toEqual({ eventId: 'e-2' });
    } finally {
      vi.useRealTimers();
    }
  });

  it.each([...RETRYABLE_ENTRY_ERRORS])('retries %s', async (code) => {
    const { client, send } = fakeClient(failedEntry(code), ok('e'));
    const publish = createPublisher({ client, eventBusName: 'bus', sleep: recordingSleep().sleep });
    await expect(publish('PAUSED', '{}', ample())).resolves.toEqual({ eventId: 'e' });
    expect(send).toHaveBeenCalledTimes(2);
  });

  it.each([
    'AccessDeniedException',
    'ValidationException',
    'MalformedDetail',
    'InvalidArgument',
    'throttlingexception',
  ])('does not retry %s', async (code) => {
    const { client, send } = fakeClient(failedEntry(code), ok('never'));
    const { sleep } = recordingSleep();
    const publish = createPublisher({ client, eventBusName: 'bus', sleep });
    const error = await publish('PAUSED', '{}', ample()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DependencyError);
    // A code EventBridge does not use is the answer's text: not shown.
    const shown = code === 'throttlingexception' ? 'UnexpectedError' : code;
    expect(error).toMatchObject({ dependency: 'bus', message: `PutEvents entry failed: ${shown}` });
    expect(send).toHaveBeenCalledOnce();
    expect(sleep).not.toHaveBeenCalled();
  });

  it('gives up after 3 attempts by default, naming the last code', async () => {
    const { client, send } = fakeClient(
      failedEntry('ThrottlingException'),
      failedEntry('ThrottlingException'),
      failedEntry('InternalFailure'),
      ok('too-late'),
    );
    const { sleep, pauses } = recordingSleep();
    const publish = createPublisher({ client, eventBusName: 'bus', sleep, random: () => 0 });
    await expect(publish('PAUSED', '{}', ample())).rejects.toThrow(
      new DependencyError('bus', 'PutEvents entry failed: InternalFailure'),
    );
    expect(send).toHaveBeenCalledTimes(3);
    expect(pauses).toEqual([25, 50]);
  });

  it.each([
    [1, 1],
    [2, 2],
    [5, 5],
    [0, 1],
    [-3, 1],
  ])('with maxEntryAttempts %s makes %s attempt(s)', async (maxEntryAttempts, attempts) => {
    const { client, send } = fakeClient(failedEntry('ThrottlingException'));
    const { sleep } = recordingSleep();
    const publish = createPublisher({ client, eventBusName: 'bus', sleep, maxEntryAttempts });
    await expect(publish('PAUSED', '{}', ample())).rejects.toThrow(
      'PutEvents entry failed: ThrottlingException',
    );
    expect(send).toHaveBeenCalledTimes(attempts);
    expect(sleep).toHaveBeenCalledTimes(attempts - 1);
  });

  describe('time left for a retry', () => {
    // Defaults: minRetryMs 500; with random 0.5 the first pause is 50 ms.
    it('retries when the time left after the pause is exactly minRetryMs', async () => {
      const { client, send } = fakeClient(failedEntry('InternalFailure'), ok('e'));
      const { deadline, remainingMs } = fakeDeadline(550);
      const { sleep, pauses } = recordingSleep();
      const publish = createPublisher({ client, eventBusName: 'bus', sleep, random: () => 0.5 });
      await expect(publish('PAUSED', '{}', deadline)).resolves.toEqual({ eventId: 'e' });
      expect(send).toHaveBeenCalledTimes(2);
      expect(pauses).toEqual([50]);
      expect(remainingMs).toHaveBeenCalledTimes(1);
    });

    it('stops when the time left after the pause is under minRetryMs', async () => {
      const { client, send } = fakeClient(failedEntry('InternalFailure'), ok('e'));
      const { deadline } = fakeDeadline(549);
      const { sleep } = recordingSleep();
      const publish = createPublisher({ client, eventBusName: 'bus', sleep, random: () => 0.5 });
      await expect(publish('PAUSED', '{}', deadline)).rejects.toThrow(
        new DependencyError('bus', 'PutEvents entry failed: InternalFailure (no time left to retry)'),
      );
      expect(send).toHaveBeenCalledOnce();
      expect(sleep).not.toHaveBeenCalled();
    });

    it('reads the time left before each retry, against the pause of that retry', async () => {
      // Pauses with base 100 and random 0.5: 100, then 200. minRetryMs 1000.
      const { client, send } = fakeClient(failedEntry('ThrottlingException'));
      const { deadline, remainingMs } = fakeDeadline(1_100, 1_199);
      const { sleep, pauses } = recordingSleep();
      const publish = createPublisher({
        client,
        eventBusName: 'bus',
        sleep,
        random: () => 0.5,
        backoffBaseMs: 100,
        minRetryMs: 1_000,
      });
      await expect(publish('PAUSED', '{}', deadline)).rejects.toThrow(
        'PutEvents entry failed: ThrottlingException (no time left to retry)',
      );
      expect(send).toHaveBeenCalledTimes(2);
      expect(pauses).toEqual([100]);
      expect(remainingMs).toHaveBeenCalledTimes(2);
    });

    it('honours a minRetryMs of its own', async () => {
      const { client, send } = fakeClient(failedEntry('InternalFailure'), ok('e'));
      const { deadline } = fakeDeadline(60);
      const publish = createPublisher({
        client,
        eventBusName: 'bus',
        sleep: recordingSleep().sleep,
        random: () => 0.5,
        minRetryMs: 10,
      });
      await expect(publish('PAUSED', '{}', deadline)).resolves.toEqual({ eventId: 'e' });
      expect(send).toHaveBeenCalledTimes(2);
    });

    it('does not look at the clock for a first attempt that succeeds', async () => {
      const { client } = fakeClient(ok('e'));
      const { deadline, remainingMs } = fakeDeadline(0);
      const { sleep } = recordingSleep();
      const publish = createPublisher({ client, eventBusName: 'bus', sleep });
      await expect(publish('PAUSED', '{}', deadline)).resolves.toEqual({ eventId: 'e' });
      expect(remainingMs).not.toHaveBeenCalled();
      expect(sleep).not.toHaveBeenCalled();
    });
  });

  describe('whole-request failures', () => {
    it('turns an SDK error into a DependencyError naming it, with the error as cause, without a retry', async () => {
      const sdkError = Object.assign(new Error('socket hang up'), { name: 'TimeoutError' });
      const { client, send } = fakeClient(sdkError, ok('never'));
      const publish = createPublisher({ client, eventBusName: 'bus', sleep: recordingSleep().sleep });
      const error = await publish('PAUSED', '{}', ample()).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(DependencyError);
      expect(error).toMatchObject({ dependency: 'bus', message: 'PutEvents failed: TimeoutError' });
      expect((error as Error).cause).toBe(sdkError);
      expect(send).toHaveBeenCalledOnce();
    });

    it('shows neither an entry ErrorCode nor an error name it does not know (remote text)', async () => {
      const remote = 'REMOTE TEXT anything-the-server-wants';
      const { client } = fakeClient(failedEntry(remote));
      const publish = createPublisher({ client, eventBusName: 'bus' });
      const error = await publish('PAUSED', '{}', ample()).catch((e: unknown) => e);
      expect(error).toMatchObject({ message: 'PutEvents entry failed: UnexpectedError' });
      const thrown = Object.assign(new Error('x'), { name: remote });
      const failing = createPublisher({
        client: { send: vi.fn(() => Promise.reject(thrown)) } as unknown as PublisherOptions['client'],
        eventBusName: 'bus',
      });
      expect(await failing('PAUSED', '{}', ample()).catch((e: unknown) => e)).toMatchObject({
        message: 'PutEvents failed: UnexpectedError',
      });
    });

    it('names a thrown non-Error UnexpectedError', async () => {
      const client = {
        send: vi.fn(() => Promise.reject('just a string')),
      } as unknown as PublisherOptions['client'];
      const publish = createPublisher({ client, eventBusName: 'bus' });
      const error = await publish('PAUSED', '{}', ample()).catch((e: unknown) => e);
      expect(error).toMatchObject({ dependency: 'bus', message: 'PutEvents failed: UnexpectedError' });
      expect((error as Error).cause).toBe('just a string');
    });

    it('turns a refusal of the deadline itself into a DependencyError', async () => {
      const { client, send } = fakeClient(ok('never'));
      const publish = createPublisher({ client, eventBusName: 'bus' });
      const error = await publish('PAUSED', '{}', deadlineAt(Date.now() - 1)).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(DependencyError);
      expect(error).toMatchObject({ dependency: 'bus', message: 'PutEvents failed: DeadlineExceeded' });
      expect((error as Error).cause).toBeInstanceOf(DeadlineExceeded);
      expect(send).not.toHaveBeenCalled();
    });
  });
});

describe('publish with a real deadline', () => {
  it('rejects DependencyError(bus) by the deadline when the bus never answers, aborting the call', async () => {
    let signal: AbortSignal | undefined;
    const send = vi.fn((_command: unknown, options?: { abortSignal?: AbortSignal }) => {
      signal = options?.abortSignal;
      return new Promise(() => {});
    });
    const publish = createPublisher({
      client: { send } as unknown as PublisherOptions['client'],
      eventBusName: 'bus',
    });
    const started = Date.now();
    const error = await publish('COMPOSING', '{}', deadlineAt(started + 40)).catch((e: unknown) => e);
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(error).toBeInstanceOf(DependencyError);
    expect(error).toMatchObject({ dependency: 'bus', message: 'PutEvents failed: DeadlineExceeded' });
    expect((error as Error).cause).toBeInstanceOf(DeadlineExceeded);
    expect((error as Error).cause).toMatchObject({ what: 'EventBridge PutEvents' });
    expect(signal).toBeInstanceOf(AbortSignal);
    expect(signal?.aborted).toBe(true);
    expect(signal?.reason).toBe((error as Error).cause);
  });

  it('cuts a call that never answers at callCapMs, well before a distant deadline', async () => {
    let signal: AbortSignal | undefined;
    const send = vi.fn((_command: unknown, options?: { abortSignal?: AbortSignal }) => {
      signal = options?.abortSignal;
      return new Promise(() => {});
    });
    const publish = createPublisher({
      client: { send } as unknown as PublisherOptions['client'],
      eventBusName: 'bus',
      callCapMs: 30,
    });
    const started = Date.now();
    const error = await publish('COMPOSING', '{}', deadlineAt(started + 60_000)).catch((e: unknown) => e);
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(error).toMatchObject({ dependency: 'bus', message: 'PutEvents failed: DeadlineExceeded' });
    expect((error as Error).cause).toMatchObject({ what: 'EventBridge PutEvents', afterMs: 30 });
    expect(signal?.aborted).toBe(true);
  });

  it('succeeds within the deadline, and the signal stays quiet', async () => {
    let signal: AbortSignal | undefined;
    const send = vi.fn(async (_command: unknown, options?: { abortSignal?: AbortSignal }) => {
      signal = options?.abortSignal;
      return { $metadata: {}, FailedEntryCount: 0, Entries: [{ EventId: 'e-1' }] };
    });
    const publish = createPublisher({
      client: { send } as unknown as PublisherOptions['client'],
      eventBusName: 'bus',
    });
    await expect(publish('COMPOSING', '{}', deadlineAt(Date.now() + 5_000))).resolves.toEqual({
      eventId: 'e-1',
    });
    expect(signal?.aborted).toBe(false);
  });
});
