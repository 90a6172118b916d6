/** What lib/ and the presence-state functions agree on. A leaf: no imports. */
export const STATE_ENV = {
  tableName: 'PRESENCE_TABLE',
  eventBusName: 'EVENT_BUS_NAME',
  expiryQueueUrl: 'EXPIRY_QUEUE_URL',
  expirySeconds: 'ACTIVITY_EXPIRY_SECONDS',
  idleDays: 'IDLE_DAYS',
  metricsNamespace: 'METRICS_NAMESPACE',
  /** The read function, with the live feed: the JWT claim that lists an agent's groups. */
  groupsClaim: 'AGENT_GROUPS_CLAIM',
} as const;

/** The snapshot route, as API Gateway names it in `routeKey` (with the live feed). */
export const SNAPSHOT_ROUTE_KEY = 'GET /instances/{instanceId}/presence';

/**
 * Records a batch handed back for a retry (batch item failures), one EMF datapoint per failing batch,
 * written only then: what the alarm on a failing state function watches (its Lambda `Errors` stay at
 * zero, since it reports failures instead of throwing).
 */
export const STATE_FAILURES_METRIC = 'StateRecordFailures';

export const STATE_DEFAULTS = {
  /** A typing or recording activity with no news for this long ends by itself (WhatsApp's rule). */
  expirySeconds: 25,
  /** Chats idle this long leave the table (DynamoDB TTL). */
  idleDays: 30,
} as const;

/**
 * How often a presence event or an expiry check is received before it is dead-lettered. With a failed
 * expiry check back after 5, 15, 60, 180 s and then every 300 s (EXPIRY_RETRY_SECONDS), and a failed
 * presence event after the queue's 3-minute visibility timeout, 20 receives span about 79 and 57 minutes:
 * an activity that ends while EventBridge is down (an outage of 15 minutes and more) is published within
 * 5 minutes of its return, without waiting for the chat's next callback.
 */
export const MAX_RECEIVES = 20;

/** Seconds until a failed expiry check is tried again, by receive count; the last repeats. */
export const EXPIRY_RETRY_SECONDS = [5, 15, 60, 180, 300] as const;

/** The oldest message either queue may hold (s) before the backlog alarm fires: derived events are late. */
export const BACKLOG_ALARM_SECONDS = 600;

/** Attribute names, for readers of the table (sort key: the chat's phone, or `group#participant`). */
export const TABLE_ATTRIBUTES = {
  partitionKey: 'instanceId',
  sortKey: 'chat',
  ttl: 'expiresAt',
} as const;

/** An expiry check on the delay queue. */
export interface ExpiryCheck {
  readonly expire: {
    readonly instanceId: string;
    readonly phone: string;
    readonly participant?: string;
    /** The time of the COMPOSING or RECORDING the check is for (epoch ms). */
    readonly news?: number;
  };
}
