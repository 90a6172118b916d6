/** What lib/ and the presence-state functions agree on. A leaf: no imports. */
export const STATE_ENV = {
  tableName: 'PRESENCE_TABLE',
  eventBusName: 'EVENT_BUS_NAME',
  expiryQueueUrl: 'EXPIRY_QUEUE_URL',
  expirySeconds: 'ACTIVITY_EXPIRY_SECONDS',
  idleDays: 'IDLE_DAYS',
} as const;

export const STATE_DEFAULTS = {
  /** A typing or recording activity with no news for this long ends by itself (WhatsApp's rule). */
  expirySeconds: 25,
  /** Chats idle this long leave the table (DynamoDB TTL). */
  idleDays: 30,
} as const;

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
