/** The SDK client settings every function's SSM and EventBridge clients share. */

/**
 * A request handler whose every attempt ends within `attemptTimeoutMs`: connecting, waiting and idle.
 * `throwOnRequestTimeout`: without it the SDK's request timeout only logs a warning.
 */
export function requestHandlerSettings(attemptTimeoutMs: number) {
  return {
    connectionTimeout: Math.min(1_000, attemptTimeoutMs),
    requestTimeout: attemptTimeoutMs,
    throwOnRequestTimeout: true,
    socketTimeout: attemptTimeoutMs,
  };
}
