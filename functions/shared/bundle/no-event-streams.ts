/**
 * Stands in for `@smithy/core/event-streams` in the Lambda bundles only (an esbuild alias set in
 * lib/presence-function.ts). The SDK loads that module lazily, and only for operations with event-stream
 * payloads; EventBridge PutEvents and SSM GetParameter have none, so it never loads in our functions.
 * Should that ever change, the call fails loudly here instead of silently.
 */
function unavailable(): never {
  throw new Error(
    'event streams are not bundled in this function (functions/shared/bundle/no-event-streams.ts)',
  );
}

export const EventStreamSerde = unavailable;
export const eventStreamSerdeProvider = unavailable;
