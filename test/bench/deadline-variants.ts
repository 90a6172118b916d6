/**
 * What the deadline on each remote call costs: one PutEvents call three ways, with one client in one
 * bundle (built with the project's esbuild options), so the variants differ only in the deadline.
 *   plain     client.send(command)
 *   signal    client.send(command, { abortSignal }) with a fresh AbortController (the SDK's listeners)
 *   deadline  deadline.run(...), as the receiver's publisher calls it: signal, timer and cut-off
 */
import { EventBridgeClient, PutEventsCommand, type PutEventsRequestEntry } from '@aws-sdk/client-eventbridge';
import { RECEIVER_DEFAULTS } from '../../functions/presence-webhook/settings.ts';
import { deadlineAt } from '../../functions/shared/aws/deadline.ts';
import { requestHandlerSettings } from '../../functions/shared/aws/sdk-settings.ts';

const client = new EventBridgeClient({
  maxAttempts: RECEIVER_DEFAULTS.sdkMaxAttempts,
  requestHandler: requestHandlerSettings(RECEIVER_DEFAULTS.sdkAttemptTimeoutMs),
});
const capMs = RECEIVER_DEFAULTS.sdkAttemptTimeoutMs * RECEIVER_DEFAULTS.sdkMaxAttempts + 500;

export const variants = {
  plain: (entry: PutEventsRequestEntry) => client.send(new PutEventsCommand({ Entries: [entry] })),
  signal: (entry: PutEventsRequestEntry) =>
    client.send(new PutEventsCommand({ Entries: [entry] }), { abortSignal: new AbortController().signal }),
  deadline: (entry: PutEventsRequestEntry) =>
    deadlineAt(Date.now() + 9_000).run(
      'EventBridge PutEvents',
      (abortSignal) => client.send(new PutEventsCommand({ Entries: [entry] }), { abortSignal }),
      capMs,
    ),
};
