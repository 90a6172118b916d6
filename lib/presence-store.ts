/**
 * L3 construct (optional, `presenceStore`): current presence per chat, derived events, and a read API.
 *
 *   bus ──rule (every status)──▶ events queue ──▶ state function ──▶ DynamoDB table (a chat per item)
 *                                                     │   ▲                 │
 *                         derived events ◀────────────┘   └── expiry queue ◀┘ (delay: 25 s + 2 s)
 *   GET /instances/{instanceId}/chats/{phone}/presence (IAM) ──▶ read function ──▶ table
 *
 * The receiver path is untouched: the store subscribes to the bus like any other subscriber.
 */
import { Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import { HttpMethod, type HttpRoute } from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpIamAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import { AttributeType, Billing, TableV2 } from 'aws-cdk-lib/aws-dynamodb';
import { SqsQueue } from 'aws-cdk-lib/aws-events-targets';
import { Grant } from 'aws-cdk-lib/aws-iam';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import { CfnEventSourceMapping } from 'aws-cdk-lib/aws-lambda';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import type { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import {
  MAX_RECEIVES,
  STATE_DEFAULTS,
  STATE_ENV,
  TABLE_ATTRIBUTES,
} from '../functions/presence-store/settings.ts';
import { DERIVED_EVENT_SOURCE } from '../functions/shared/contract/presence-contract.ts';
import { deadLetterQueue } from './dead-letter-queue.ts';
import { PresenceFunction } from './presence-function.ts';
import type { PresenceSubscription } from './presence-subscription.ts';
import type { PresenceWebhook } from './presence-webhook.ts';

export interface PresenceStoreProps {
  readonly webhook: PresenceWebhook;
  /**
   * A typing or recording activity with no news for this long ends by itself (5 to 120 seconds).
   * @default Duration.seconds(25)
   */
  readonly activityExpiry?: Duration;
  /**
   * Chats idle this long leave the table (DynamoDB TTL).
   * @default Duration.days(30)
   */
  readonly idleTtl?: Duration;
  readonly logRetention?: RetentionDays;
  readonly logEncryptionKey?: IKey;
}

/** The state function's timeout (the queues' visibility timeout is six times it). */
const STATE_TIMEOUT = Duration.seconds(30);
/**
 * How long the events queue's source waits to fill a batch: at most this much is added to a derived
 * event's latency, and a busy stream is processed ten callbacks an invocation (see BENCHMARKS.md).
 */
export const BATCHING_WINDOW = Duration.seconds(1);

/** The read route (IAM-authorized). */
export const PRESENCE_READ_ROUTE = '/instances/{instanceId}/chats/{phone}/presence';

export class PresenceStore extends Construct {
  /** One item per chat: partition key `instanceId`, sort key `chat` (the phone, or `group#member`) (docs/presence-state.md). */
  readonly table: TableV2;
  readonly stateFunction: PresenceFunction;
  readonly readFunction: PresenceFunction;
  /** Presence events waiting for the state function. */
  readonly eventsQueue: Queue;
  /** Expiry checks, delayed. */
  readonly expiryQueue: Queue;
  /** Records the state function could not process after its retries (both queues). */
  readonly deadLetters: Queue;
  readonly subscription: PresenceSubscription;
  readonly readRoute: HttpRoute;
  readonly activityExpiry: Duration;

  constructor(scope: Construct, id: string, props: PresenceStoreProps) {
    super(scope, id);
    const { webhook } = props;
    this.activityExpiry = props.activityExpiry ?? Duration.seconds(STATE_DEFAULTS.expirySeconds);
    const idleTtl = props.idleTtl ?? Duration.days(STATE_DEFAULTS.idleDays);
    const expirySeconds = this.activityExpiry.toSeconds();
    if (!Number.isInteger(expirySeconds) || expirySeconds < 5 || expirySeconds > 120) {
      throw new Error(
        `PresenceStore: activityExpiry must be whole seconds from 5 to 120, got ${expirySeconds}`,
      );
    }
    const idleDays = idleTtl.toDays({ integral: false });
    if (!Number.isInteger(idleDays) || idleDays < 1 || idleDays > 3_650) {
      throw new Error(`PresenceStore: idleTtl must be whole days from 1 to 3650, got ${idleDays}`);
    }

    this.table = new TableV2(this, 'Table', {
      partitionKey: { name: TABLE_ATTRIBUTES.partitionKey, type: AttributeType.STRING },
      // The chat: its phone, or `group#participant` (functions/presence-store/presence-state.ts chatKeyOf).
      sortKey: { name: TABLE_ATTRIBUTES.sortKey, type: AttributeType.STRING },
      billing: Billing.onDemand(),
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      timeToLiveAttribute: TABLE_ATTRIBUTES.ttl,
      // Derived state: rebuilt from the events as they come (or replayed from the archive).
      removalPolicy: RemovalPolicy.DESTROY,
    });

    this.deadLetters = deadLetterQueue(this, 'DeadLetters', 'the presence-state queues');
    const queue = (queueId: string, delay?: Duration) =>
      new Queue(this, queueId, {
        encryption: QueueEncryption.SQS_MANAGED,
        enforceSSL: true,
        // Six times the state function's timeout, as AWS advises for SQS sources (batches, retries).
        visibilityTimeout: Duration.seconds(STATE_TIMEOUT.toSeconds() * 6),
        ...(delay !== undefined && { deliveryDelay: delay }),
        // Retries that span an outage of EventBridge or DynamoDB (see MAX_RECEIVES), then the dead letters.
        deadLetterQueue: { queue: this.deadLetters, maxReceiveCount: MAX_RECEIVES },
      });
    this.eventsQueue = queue('Events');
    this.expiryQueue = queue('Expiry');

    const logs = {
      ...(props.logRetention !== undefined && { logRetentionDays: props.logRetention }),
      ...(props.logEncryptionKey !== undefined && { logEncryptionKey: props.logEncryptionKey }),
    };
    this.stateFunction = new PresenceFunction(this, 'State', {
      function: 'state',
      description: "Z-API chat presence: keeps each chat's state and publishes the derived events",
      memorySize: 256,
      timeout: STATE_TIMEOUT,
      ...logs,
      environment: {
        [STATE_ENV.tableName]: this.table.tableName,
        [STATE_ENV.eventBusName]: webhook.eventBus.eventBusArn,
        [STATE_ENV.expiryQueueUrl]: this.expiryQueue.queueUrl,
        [STATE_ENV.expirySeconds]: String(expirySeconds),
        [STATE_ENV.idleDays]: String(idleDays),
        [STATE_ENV.metricsNamespace]: webhook.metricsNamespace,
      },
    });
    for (const source of [this.eventsQueue, this.expiryQueue]) {
      this.stateFunction.addEventSource(
        new SqsEventSource(source, {
          batchSize: 10,
          reportBatchItemFailures: true,
          maxConcurrency: 20,
          // Presence events wait up to BATCHING_WINDOW to fill a batch of 10 (one invocation for up to ten
          // callbacks); expiry checks come delayed already and go at once.
          ...(source === this.eventsQueue && { maxBatchingWindow: BATCHING_WINDOW }),
        }),
      );
    }
    for (const mapping of this.stateFunction.node
      .findAll()
      .filter((c) => c instanceof CfnEventSourceMapping)) {
      Validations.of(mapping).acknowledge({
        id: 'Serverless::Serverless-LambdaEventSourceMappingDestination',
        reason:
          "An SQS source keeps a failed record in its queue; the queue's redrive policy moves it to the dead-letter queue after 20 receives (alarmed). SQS mappings take no on-failure destination.",
      });
    }
    // Exactly what the state function does: read (one or a batch), write items and clear a published
    // outbox (UpdateItem); publish; schedule expiries.
    this.table.grant(
      this.stateFunction,
      'dynamodb:GetItem',
      'dynamodb:BatchGetItem',
      'dynamodb:PutItem',
      'dynamodb:UpdateItem',
    );
    // Derived events only: it can never put raw presence (which its own rule would feed back to it).
    Grant.addToPrincipal({
      grantee: this.stateFunction,
      actions: ['events:PutEvents'],
      resourceArns: [webhook.eventBus.eventBusArn],
      conditions: { StringEquals: { 'events:source': DERIVED_EVENT_SOURCE } },
    });
    this.expiryQueue.grantSendMessages(this.stateFunction);
    Validations.of(this.stateFunction).acknowledge({
      id: 'Serverless::Serverless-LambdaDLQ',
      reason:
        'Invoked by SQS event source mappings: failed records return to their queue and, after 20 receives, go to the dead-letter queue (with an alarm).',
    });
    Validations.of(this.stateFunction).acknowledge({
      id: 'Serverless::Serverless-LambdaTracing',
      reason: 'Each record is logged when it fails; X-Ray would add cost and a wildcard xray:Put* grant.',
    });

    this.subscription = webhook.onStatus('PresenceState', [], {
      targets: [new SqsQueue(this.eventsQueue)],
      description: 'Z-API chat presence: every event to the presence store',
    });

    this.readFunction = new PresenceFunction(this, 'Read', {
      function: 'read',
      description: "Z-API chat presence: GET a chat's current presence",
      memorySize: 256,
      timeout: Duration.seconds(5),
      ...logs,
      environment: {
        [STATE_ENV.tableName]: this.table.tableName,
        [STATE_ENV.expirySeconds]: String(expirySeconds),
      },
    });
    // One chat (GetItem), or the participants of a group (Query).
    this.table.grant(this.readFunction, 'dynamodb:GetItem', 'dynamodb:Query');
    Validations.of(this.readFunction).acknowledge({
      id: 'Serverless::Serverless-LambdaDLQ',
      reason: 'Invoked synchronously by API Gateway; a failure is answered to the caller.',
    });
    Validations.of(this.readFunction).acknowledge({
      id: 'Serverless::Serverless-LambdaTracing',
      reason: 'One short synchronous read; API access logs carry its latency.',
    });
    const [route] = webhook.httpApi.addRoutes({
      path: PRESENCE_READ_ROUTE,
      methods: [HttpMethod.GET],
      integration: new HttpLambdaIntegration('Read', this.readFunction),
      authorizer: new HttpIamAuthorizer(),
    });
    if (!route) throw new Error('PresenceStore: the read route was not created');
    this.readRoute = route;
  }
}
