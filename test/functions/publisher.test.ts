import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { createPublisher } from '../../functions/presence-webhook/publisher.ts';
import { DependencyError } from '../../functions/presence-webhook/receive.ts';
import { DETAIL_TYPES, EVENT_SOURCE } from '../../functions/shared/presence-contract.ts';

const eventBridge = mockClient(EventBridgeClient);
const noSleep = async () => {};

describe('createPublisher', () => {
  beforeEach(() => eventBridge.reset());

  it('puts one entry with the contract source and the status detail-type', async () => {
    eventBridge.on(PutEventsCommand).resolves({ FailedEntryCount: 0, Entries: [{ EventId: 'e-1' }] });
    const publish = createPublisher({
      client: new EventBridgeClient({}),
      eventBusName: 'bus',
      sleep: noSleep,
    });
    await expect(publish('RECORDING', '{"a":1}')).resolves.toEqual({ eventId: 'e-1' });
    expect(eventBridge.commandCalls(PutEventsCommand)[0]?.args[0].input).toEqual({
      Entries: [
        { EventBusName: 'bus', Source: EVENT_SOURCE, DetailType: DETAIL_TYPES.RECORDING, Detail: '{"a":1}' },
      ],
    });
  });

  it('retries a retryable failed entry, then succeeds', async () => {
    eventBridge
      .on(PutEventsCommand)
      .resolvesOnce({ FailedEntryCount: 1, Entries: [{ ErrorCode: 'ThrottlingException' }] })
      .resolvesOnce({ FailedEntryCount: 1, Entries: [{ ErrorCode: 'InternalFailure' }] })
      .resolves({ FailedEntryCount: 0, Entries: [{ EventId: 'e-3' }] });
    const publish = createPublisher({
      client: new EventBridgeClient({}),
      eventBusName: 'bus',
      sleep: noSleep,
    });
    await expect(publish('PAUSED', '{}')).resolves.toEqual({ eventId: 'e-3' });
    expect(eventBridge.commandCalls(PutEventsCommand)).toHaveLength(3);
  });

  it('gives up after the bounded number of attempts', async () => {
    eventBridge
      .on(PutEventsCommand)
      .resolves({ FailedEntryCount: 1, Entries: [{ ErrorCode: 'ThrottlingException' }] });
    const publish = createPublisher({
      client: new EventBridgeClient({}),
      eventBusName: 'bus',
      maxEntryAttempts: 3,
      sleep: noSleep,
    });
    await expect(publish('PAUSED', '{}')).rejects.toThrow(
      new DependencyError('bus', 'PutEvents entry failed: ThrottlingException'),
    );
    expect(eventBridge.commandCalls(PutEventsCommand)).toHaveLength(3);
  });

  it('does not retry an entry error that cannot succeed', async () => {
    eventBridge
      .on(PutEventsCommand)
      .resolves({ FailedEntryCount: 1, Entries: [{ ErrorCode: 'AccessDeniedException' }] });
    const publish = createPublisher({
      client: new EventBridgeClient({}),
      eventBusName: 'bus',
      sleep: noSleep,
    });
    await expect(publish('PAUSED', '{}')).rejects.toThrow(/AccessDeniedException/);
    expect(eventBridge.commandCalls(PutEventsCommand)).toHaveLength(1);
  });

  it('turns an SDK error into a DependencyError', async () => {
    eventBridge
      .on(PutEventsCommand)
      .rejects(Object.assign(new Error('socket hang up'), { name: 'TimeoutError' }));
    const publish = createPublisher({
      client: new EventBridgeClient({}),
      eventBusName: 'bus',
      sleep: noSleep,
    });
    await expect(publish('PAUSED', '{}')).rejects.toThrow('PutEvents failed: TimeoutError');
  });
});

describe('publish deadline', () => {
  beforeEach(() => eventBridge.reset());

  it('pays for no abort timer when the invocation has ample time', async () => {
    eventBridge.on(PutEventsCommand).resolves({ FailedEntryCount: 0, Entries: [{ EventId: 'e' }] });
    const publish = createPublisher({
      client: new EventBridgeClient({}),
      eventBusName: 'bus',
      sleep: noSleep,
    });
    await publish('COMPOSING', '{}', { remainingMs: () => 9_900 });
    const [call] = eventBridge.commandCalls(PutEventsCommand);
    expect(call && (call.args as unknown[]).length).toBe(1);
  });

  it('aborts a call that could outlast the invocation, and retries only with time left', async () => {
    eventBridge
      .on(PutEventsCommand)
      .resolves({ FailedEntryCount: 1, Entries: [{ ErrorCode: 'InternalFailure' }] });
    const publish = createPublisher({
      client: new EventBridgeClient({}),
      eventBusName: 'bus',
      sleep: noSleep,
    });
    const left = [5_200, 4_000];
    await expect(publish('COMPOSING', '{}', { remainingMs: () => left.shift() ?? 0 })).rejects.toThrow(
      'PutEvents entry failed: InternalFailure (no time left to retry)',
    );
    const calls = eventBridge.commandCalls(PutEventsCommand);
    expect(calls).toHaveLength(1);
    const [call] = calls;
    expect(call && (call.args as unknown[])[1]).toEqual({ abortSignal: expect.any(AbortSignal) });
  });
});
