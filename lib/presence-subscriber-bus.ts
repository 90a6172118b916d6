/**
 * The subscriber side of a cross-account subscription, in the way EventBridge documents it ("Sending and
 * receiving events between AWS accounts"):
 *
 *   account that deploys ZapiPresence (the sender)          subscriber account (the receiver)
 *   ----------------------------------------------          ---------------------------------
 *   presence.forwardTo('Helpdesk', <this bus's ARN>, [...])  new PresenceSubscriberBus(this, 'Presence', {
 *     a rule on the presence bus, created by its owner,        sourceEventBusArn: <the presence bus's ARN> })
 *     whose target is this bus, named by its full ARN, and     a bus whose policy lets the sender account's
 *     a role that may PutEvents to exactly this bus            rules on the presence bus PutEvents to it
 *                                                            subscriberBus.onStatus('Recording', ['RECORDING'],
 *                                                              { targets: [new SqsQueue(queue)] })
 *                                                              rules on this account's own bus, with targets
 *                                                              of this account
 *
 * Every non-bus target stays in the account of the rule that sends to it. Deploy the subscriber's stack
 * first: EventBridge checks the receiving bus's policy when the sender's rule gets its target.
 */
import { Arn, ArnFormat, Stack, Token } from 'aws-cdk-lib';
import { EventBus } from 'aws-cdk-lib/aws-events';
import { AccountPrincipal, PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import type { DerivedDetailType, PresenceStatus } from '../functions/shared/contract/presence-contract.ts';
import { PresenceSubscription, type PresenceSubscriptionOptions } from './presence-subscription.ts';

/** A full event bus ARN, and its parts. */
export const EVENT_BUS_ARN =
  /^arn:(aws[a-z-]*):events:([a-z0-9-]+):(\d{12}):event-bus\/([A-Za-z0-9._\-/]{1,256})$/;

export interface PresenceSubscriberBusProps {
  /**
   * The full ARN of the presence bus in the account that deploys ZapiPresence (its `eventBus.eventBusArn`;
   * the app's `EventBusArn` output), e.g. `arn:aws:events:sa-east-1:123456789012:event-bus/zapi-presence`.
   */
  readonly sourceEventBusArn: string;
  /**
   * Name of the bus to create in this account. The sending account names it in `forwardTo`, so give one.
   * @default - generated (read it from `eventBus.eventBusArn` after the deploy)
   */
  readonly eventBusName?: string;
}

export class PresenceSubscriberBus extends Construct {
  /** This account's bus, which receives the presence events the source account forwards. */
  readonly eventBus: EventBus;
  /** The account that deploys ZapiPresence and forwards to this bus. */
  readonly sourceAccount: string;
  /** Subscriptions made with {@link onStatus} and {@link onDerived}, in order. */
  readonly subscriptions: PresenceSubscription[] = [];

  constructor(scope: Construct, id: string, props: PresenceSubscriberBusProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const source = EVENT_BUS_ARN.exec(props.sourceEventBusArn);
    if (Token.isUnresolved(props.sourceEventBusArn) || source === null) {
      throw new Error(
        `PresenceSubscriberBus ${id}: sourceEventBusArn must be the presence bus's full ARN, e.g. arn:aws:events:sa-east-1:123456789012:event-bus/zapi-presence; got "${props.sourceEventBusArn}"`,
      );
    }
    const [, partition, region, account, busName] = source as unknown as [
      string,
      string,
      string,
      string,
      string,
    ];
    if (!Token.isUnresolved(stack.account) && stack.account === account) {
      throw new Error(
        `PresenceSubscriberBus ${id}: the presence bus is in this stack's account (${account}); subscribe to it directly with presence.onStatus, or a PresenceSubscription on EventBus.fromEventBusArn`,
      );
    }
    this.sourceAccount = account;
    this.eventBus = new EventBus(this, 'Bus', {
      ...(props.eventBusName !== undefined && { eventBusName: props.eventBusName }),
      description: `Z-API chat presence, forwarded from ${props.sourceEventBusArn}`,
    });
    // Exactly what the forwarding needs: the source account's PutEvents to this bus, from rules on the
    // presence bus only (EventBridge's documented example policy for events from specific rules).
    this.eventBus.addToResourcePolicy(
      new PolicyStatement({
        sid: `zapi-presence-from-${account}`,
        principals: [new AccountPrincipal(account)],
        actions: ['events:PutEvents'],
        resources: [this.eventBus.eventBusArn],
        conditions: {
          ArnLike: {
            'aws:SourceArn': Arn.format(
              {
                partition,
                service: 'events',
                region,
                account,
                resource: 'rule',
                resourceName: `${busName}/*`,
                arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
              },
              stack,
            ),
          },
        },
      }),
    );
  }

  /**
   * Subscribes targets of this account to forwarded presence events (every status the source forwards
   * when the list is empty), with the same dead-letter queue, retry policy and maximum event age as
   * `ZapiPresence.onStatus`.
   */
  onStatus(
    id: string,
    statuses: readonly PresenceStatus[],
    options: PresenceSubscriptionOptions = {},
  ): PresenceSubscription {
    const subscription = new PresenceSubscription(this, id, {
      ...options,
      eventBus: this.eventBus,
      statuses,
    });
    this.subscriptions.push(subscription);
    return subscription;
  }

  /** The same for forwarded derived events of the presence store (`ZapiPresence.onDerived`). */
  onDerived(
    id: string,
    detailTypes: readonly DerivedDetailType[],
    options: PresenceSubscriptionOptions = {},
  ): PresenceSubscription {
    const subscription = new PresenceSubscription(this, id, {
      ...options,
      eventBus: this.eventBus,
      statuses: [],
      derivedEvents: detailTypes,
    });
    this.subscriptions.push(subscription);
    return subscription;
  }
}
