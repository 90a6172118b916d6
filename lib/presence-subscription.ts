/**
 * A typed subscription to presence events: an EventBridge rule whose pattern comes from the contract
 * module (so it can never drift from what the receiver publishes), and whose every target gets a
 * dead-letter queue, an explicit retry policy and a maximum event age unless the caller set its own.
 *
 * Works from any stack or app that can reach the bus: pass `PresenceWebhook.eventBus`, or
 * `EventBus.fromEventBusArn(...)` from another app.
 */
import { Duration } from 'aws-cdk-lib';
import {
  type IEventBus,
  type IRule,
  type IRuleTarget,
  Rule,
  type RuleTargetConfig,
} from 'aws-cdk-lib/aws-events';
import { addToDeadLetterQueueResourcePolicy } from 'aws-cdk-lib/aws-events-targets';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import {
  type DerivedDetailType,
  derivedEventPattern,
  type PresenceStatus,
  presenceEventPattern,
} from '../functions/shared/contract/presence-contract.ts';
import { deadLetterQueue } from './dead-letter-queue.ts';

export interface PresenceSubscriptionOptions {
  /** Targets to deliver matching events to (more can be added with `addTarget`). */
  readonly targets?: readonly IRuleTarget[];
  /**
   * Only events from these instances.
   * @default - every instance
   */
  readonly instanceIds?: readonly string[];
  /**
   * Dead-letter queue for targets that do not bring their own.
   * @default - a new SQS queue (SSE, SSL enforced, 14-day retention)
   */
  readonly deadLetterQueue?: IQueue;
  /**
   * Retries for targets that do not set their own retry policy.
   * @default 8
   */
  readonly retryAttempts?: number;
  /**
   * Maximum event age for targets that do not set their own retry policy.
   * @default Duration.hours(2)
   */
  readonly maxEventAge?: Duration;
  readonly description?: string;
  /** @default - generated */
  readonly ruleName?: string;
  /** @default true */
  readonly enabled?: boolean;
}

export interface PresenceSubscriptionProps extends PresenceSubscriptionOptions {
  readonly eventBus: IEventBus;
  /** Statuses to receive; empty means every status. Must be empty with `derivedEvents`. */
  readonly statuses: readonly PresenceStatus[];
  /**
   * Receive derived events of the presence store (`source` `zapi.chat-presence.state`) instead of raw
   * presence: these detail-types, or every derived event when the list is empty.
   * @default - raw presence events
   */
  readonly derivedEvents?: readonly DerivedDetailType[];
}

export class PresenceSubscription extends Construct {
  readonly rule: Rule;
  /** Where events go that a target could not take after its retries. */
  readonly deadLetterQueue: IQueue;
  readonly statuses: readonly PresenceStatus[];
  /** The derived events received, for a subscription to derived events (empty list: every one). */
  readonly derivedEvents?: readonly DerivedDetailType[];
  private readonly retryAttempts: number;
  private readonly maxEventAge: Duration;

  constructor(scope: Construct, id: string, props: PresenceSubscriptionProps) {
    super(scope, id);
    const retryAttempts = props.retryAttempts ?? 8;
    if (!Number.isInteger(retryAttempts) || retryAttempts < 0 || retryAttempts > 185) {
      throw new Error(
        `PresenceSubscription ${id}: retryAttempts must be a whole number from 0 to 185, got ${retryAttempts}`,
      );
    }
    const maxEventAge = props.maxEventAge ?? Duration.hours(2);
    const ageSeconds = maxEventAge.toSeconds();
    if (ageSeconds < 60 || ageSeconds > 86_400) {
      throw new Error(
        `PresenceSubscription ${id}: maxEventAge must be between 1 minute and 24 hours, got ${maxEventAge.toHumanString()}`,
      );
    }
    this.retryAttempts = retryAttempts;
    this.maxEventAge = maxEventAge;
    this.statuses = [...new Set(props.statuses)];
    if (props.derivedEvents !== undefined && this.statuses.length > 0) {
      throw new Error(
        `PresenceSubscription ${id}: give statuses or derivedEvents, not both (one rule matches one source)`,
      );
    }
    if (props.derivedEvents !== undefined) this.derivedEvents = [...new Set(props.derivedEvents)];

    const pattern =
      this.derivedEvents === undefined
        ? presenceEventPattern(this.statuses)
        : derivedEventPattern(this.derivedEvents);
    const instanceIds = props.instanceIds ? [...new Set(props.instanceIds)] : [];
    this.rule = new Rule(this, 'Rule', {
      eventBus: props.eventBus,
      description: props.description ?? defaultDescription(this.statuses, this.derivedEvents),
      ...(props.ruleName !== undefined && { ruleName: props.ruleName }),
      ...(props.enabled !== undefined && { enabled: props.enabled }),
      eventPattern: {
        source: pattern.source,
        detailType: pattern['detail-type'] as string[],
        ...(instanceIds.length > 0 && { detail: { instanceId: instanceIds } }),
      },
    });

    if (props.deadLetterQueue) {
      this.deadLetterQueue = props.deadLetterQueue;
    } else {
      const queue = deadLetterQueue(this, 'DeadLetters', 'the subscription targets');
      this.deadLetterQueue = queue;
    }

    for (const target of props.targets ?? []) this.addTarget(target);
  }

  /** Adds a target, giving it the subscription's dead-letter queue and retry policy unless it has its own. */
  addTarget(target: IRuleTarget): this {
    this.rule.addTarget(withDeadLetters(target, this.deadLetterQueue, this.retryAttempts, this.maxEventAge));
    return this;
  }
}

function defaultDescription(
  statuses: readonly PresenceStatus[],
  derived: readonly DerivedDetailType[] | undefined,
): string {
  if (derived !== undefined) {
    return `Z-API chat state: ${derived.length === 0 ? 'every derived event' : derived.join(', ')}`;
  }
  return `Z-API chat presence: ${statuses.length === 0 ? 'every status' : statuses.join(', ')}`;
}

/** Wraps a target so its config carries a DLQ and a retry policy when the target did not set them. */
export function withDeadLetters(
  target: IRuleTarget,
  queue: IQueue,
  retryAttempts: number,
  maxEventAge: Duration,
): IRuleTarget {
  return {
    bind(rule: IRule, id?: string): RuleTargetConfig {
      const config = target.bind(rule, id);
      let deadLetterConfig = config.deadLetterConfig;
      if (deadLetterConfig === undefined) {
        addToDeadLetterQueueResourcePolicy(rule, queue);
        deadLetterConfig = { arn: queue.queueArn };
      }
      return {
        ...config,
        deadLetterConfig,
        retryPolicy: config.retryPolicy ?? {
          maximumRetryAttempts: retryAttempts,
          maximumEventAgeInSeconds: maxEventAge.toSeconds(),
        },
      };
    },
  };
}
