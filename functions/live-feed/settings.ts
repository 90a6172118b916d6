/**
 * What lib/ and the live feed's code agree on: environment variable names, limits, metric names and
 * defaults. A leaf: it imports only shared leaves, so lib/ loads nothing of the feed's runtime.
 */
export { ALL_INSTANCES_GROUP, FEED_NAMESPACE } from '../shared/access/agent-access.ts';

export const FEED_ENV = {
  /** The Event API's HTTP domain (`{id}.appsync-api.{region}.amazonaws.com`): the publisher POSTs to `/event`. */
  httpDomain: 'FEED_HTTP_DOMAIN',
  /** The feed's dead-letter queue: events refused outright (too large, not a derived event) go here at once. */
  deadLettersUrl: 'FEED_DEAD_LETTERS_URL',
  metricsNamespace: 'METRICS_NAMESPACE',
} as const;

/** AppSync Events' own limits, which the publisher and the local twin keep. */
export const FEED_LIMITS = {
  /** Events in one publish request. */
  eventsPerPublish: 5,
  /** Bytes of one event (its JSON string, UTF-8). */
  eventBytes: 240 * 1024,
  /** Subscriptions one WebSocket connection may hold. */
  subscriptionsPerConnection: 200,
} as const;

export const FEED_METRICS = {
  /** An event the feed refused outright (its reason as the `Reason` dimension); it went to the dead letters. */
  refused: 'FeedRefused',
} as const;

export const FEED_DEFAULTS = {
  timeoutSeconds: 10,
  memoryMb: 256,
  /**
   * Lambda's retries of a failed invocation (about 1 and 2 minutes apart), then the dead-letter queue:
   * presence is stale within a minute, and a view corrects itself from the snapshot.
   */
  retryAttempts: 2,
  /** An event older than this is not published late (dead-lettered instead). */
  maxEventAgeMinutes: 10,
  /** Where a Cognito token lists its groups. */
  groupsClaim: 'cognito:groups',
  /** Lifetime of the access and ID tokens of the user pool the feed creates: how long a removed group still works. */
  tokenValidityMinutes: 60,
  /** The snapshot route's own throttle (requests a second, burst): apart from the webhook route's. */
  snapshotRateLimit: 20,
  snapshotBurstLimit: 40,
} as const;

/**
 * The onSubscribe handler's bundle holds this string where the groups claim goes; lib/ writes the
 * configured claim in its place (AppSync handlers have no environment).
 */
export const GROUPS_CLAIM_PLACEHOLDER = '__ZAPI_PRESENCE_GROUPS_CLAIM__';

/** A claim name the handler may read: what OIDC issuers use, namespaced URLs included. */
export const GROUPS_CLAIM_PATTERN = /^[A-Za-z0-9_:./-]{1,256}$/;
