/**
 * The warm path's baseline: one bare PutEvents call, nothing else. The bench bundles this file with
 * esbuild's default settings (see test/bench/warm.ts); the client gets the receiver's SDK settings
 * (attempts, timeouts), so the ratio is what the receiver adds, not a difference in configuration.
 */
import { EventBridgeClient, PutEventsCommand, type PutEventsRequestEntry } from '@aws-sdk/client-eventbridge';
import { RECEIVER_DEFAULTS } from '../../functions/presence-webhook/settings.ts';
import { requestHandlerSettings } from '../../functions/shared/aws/sdk-settings.ts';

const client = new EventBridgeClient({
  maxAttempts: RECEIVER_DEFAULTS.sdkMaxAttempts,
  requestHandler: requestHandlerSettings(RECEIVER_DEFAULTS.sdkAttemptTimeoutMs),
});

export async function putEvents(entry: PutEventsRequestEntry): Promise<string> {
  const response = await client.send(new PutEventsCommand({ Entries: [entry] }));
  const eventId = response.Entries?.[0]?.EventId;
  if (response.FailedEntryCount || !eventId) throw new Error('PutEvents entry failed');
  return eventId;
}
