/**
 * Opt-in debugging aid: every presence event, as subscribers receive it, in a CloudWatch log group.
 *
 *   npx cdk deploy -c instanceId=ID -c debugEventLog=true
 *   aws logs tail --follow /aws/events/ZapiPresence/presence
 *
 * The log group's resource policy comes from a grant (no custom resource, unlike the stock
 * CloudWatchLogGroup target, which installs a Lambda to write the policy).
 */
import { ArnFormat, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import type { IRuleTarget } from 'aws-cdk-lib/aws-events';
import { ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import type { PresenceSubscription } from './presence-subscription.ts';
import type { PresenceWebhook } from './presence-webhook.ts';

export interface DebugEventLogProps {
  readonly webhook: PresenceWebhook;
  readonly retention: RetentionDays;
  /** Retention of this log group, when it must differ from the others'. */
  readonly retentionOverride?: RetentionDays;
  /** @default - CloudWatch Logs' own encryption */
  readonly encryptionKey?: IKey;
  /** Must start with /aws/events/. @default `/aws/events/{stackName}/presence` */
  readonly logGroupName?: string;
}

export class DebugEventLog extends Construct {
  readonly logGroup: LogGroup;
  readonly subscription: PresenceSubscription;

  constructor(scope: Construct, id: string, props: DebugEventLogProps) {
    super(scope, id);
    const name = props.logGroupName ?? `/aws/events/${Stack.of(this).stackName}/presence`;
    if (!name.startsWith('/aws/events/'))
      throw new Error(`DebugEventLog: logGroupName must start with /aws/events/, got "${name}"`);
    this.logGroup = new LogGroup(this, 'Events', {
      logGroupName: name,
      retention: props.retentionOverride ?? props.retention,
      ...(props.encryptionKey !== undefined && { encryptionKey: props.encryptionKey }),
      removalPolicy: RemovalPolicy.DESTROY,
    });
    if (props.retentionOverride !== undefined) {
      Validations.of(this.logGroup).acknowledge({
        id: 'cdk-validator-cfnguard::cloudwatch_log_group_retention_period_check',
        reason:
          'A debugging aid that holds every event, phone numbers included (personal data under LGPD): kept a short time on purpose; the operational log groups keep a year.',
      });
    }
    // EventBridge writes through the log group's resource policy.
    this.logGroup.grantWrite(new ServicePrincipal('events.amazonaws.com'));
    this.logGroup.grantWrite(new ServicePrincipal('delivery.logs.amazonaws.com'));

    const logGroupTarget: IRuleTarget = {
      bind: () => ({
        arn: Stack.of(this).formatArn({
          service: 'logs',
          resource: 'log-group',
          arnFormat: ArnFormat.COLON_RESOURCE_NAME,
          resourceName: this.logGroup.logGroupName,
        }),
        targetResource: this.logGroup,
      }),
    };
    this.subscription = props.webhook.onStatus('DebugLog', [], {
      targets: [logGroupTarget],
      description: 'Debugging: every Z-API chat-presence event to a log group',
    });
  }
}
