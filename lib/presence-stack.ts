/**
 * The stack: composes the constructs from a validated config and declares the outputs. No secret value
 * ever reaches it: SSM parameters are referenced by name and read at runtime.
 */
import { Arn, ArnFormat, CfnOutput, Duration, Stack, type StackProps, Token } from 'aws-cdk-lib';
import { EventBus } from 'aws-cdk-lib/aws-events';
import type { Construct } from 'constructs';
import { ConfigError, type PresenceConfig } from './config.ts';
import { DebugEventLog } from './debug-event-log.ts';
import { PresenceMonitoring } from './monitoring.ts';
import { PresenceSchemaRegistry } from './presence-schema.ts';
import { PresenceWebhook } from './presence-webhook.ts';
import { WebhookFleet } from './webhook-fleet.ts';

export interface PresenceStackProps extends StackProps {
  readonly config: PresenceConfig;
}

export class PresenceStack extends Stack {
  readonly webhook: PresenceWebhook;
  /** The fleet reconciler and deploy-time registration (unless `registerWebhook` is false). */
  readonly fleet?: WebhookFleet;
  readonly monitoring: PresenceMonitoring;
  readonly schemaRegistry?: PresenceSchemaRegistry;
  /** With `debugEventLog`: every presence event, as subscribers receive it, in a log group. */
  readonly debugEventLog?: DebugEventLog;

  constructor(scope: Construct, id: string, props: PresenceStackProps) {
    super(scope, id, props);
    const { config } = props;
    if (config.eventBusArn !== undefined) this.checkSameEnvironment(config.eventBusArn);

    this.webhook = new PresenceWebhook(this, 'Presence', {
      ...(config.eventBusArn !== undefined && {
        eventBus: EventBus.fromEventBusArn(this, 'ImportedBus', config.eventBusArn),
      }),
      ...(config.eventBusName !== undefined && { eventBusName: config.eventBusName }),
      webhookSecretParameterName: config.webhookSecretParameter,
      throttleRateLimit: config.throttleRateLimit,
      throttleBurstLimit: config.throttleBurstLimit,
      maxBodyBytes: config.maxBodyBytes,
      archiveRetention: Duration.days(config.archiveRetentionDays),
      logRetention: config.logRetentionDays,
      metricsNamespace: config.metricsNamespace,
      ...(config.receiverReservedConcurrency !== undefined && {
        receiverReservedConcurrency: config.receiverReservedConcurrency,
      }),
      receiverTimeout: Duration.seconds(config.receiverTimeoutSeconds),
      receiverMemorySize: config.receiverMemoryMb,
      sdkAttemptTimeoutMs: config.sdkAttemptTimeoutMs,
      sdkMaxAttempts: config.sdkMaxAttempts,
      secretCacheTtl: Duration.seconds(config.secretCacheSeconds),
      secretGracePeriod: Duration.minutes(config.secretGraceMinutes),
    });

    if (config.registerWebhook) {
      this.fleet = new WebhookFleet(this, 'Fleet', {
        webhook: this.webhook,
        instanceTokenParameterName: config.instanceTokenParameter,
        ...(config.clientTokenParameter !== undefined && {
          clientTokenParameterName: config.clientTokenParameter,
        }),
        requiredInstanceIds: config.instanceIds,
        zapiBaseUrl: config.zapiBaseUrl,
        zapiAttemptTimeoutMs: config.zapiAttemptTimeoutMs,
        zapiMaxAttempts: config.zapiMaxAttempts,
        driftPolicy: config.driftPolicy,
        sweepInterval: Duration.minutes(config.sweepIntervalMinutes),
        concurrency: config.reconcileConcurrency,
        ...(config.currentPaymentStatuses !== undefined && {
          currentPaymentStatuses: config.currentPaymentStatuses,
        }),
        reconcilerTimeout: Duration.seconds(config.reconcilerTimeoutSeconds),
        dueWarningDays: config.dueWarningDays,
        registrationTimeout: Duration.seconds(config.registrationTimeoutSeconds),
        logRetention: config.logRetentionDays,
      });
    }

    this.monitoring = new PresenceMonitoring(this, 'Monitoring', {
      webhook: this.webhook,
      ...(this.fleet && { fleet: this.fleet }),
      ...(config.alarmEmail !== undefined && { alarmEmail: config.alarmEmail }),
      alarmThresholds: config.alarmThresholds,
    });

    if (config.debugEventLog) {
      this.debugEventLog = new DebugEventLog(this, 'DebugEvents', {
        webhook: this.webhook,
        retention: config.logRetentionDays,
      });
    }

    if (config.schemaRegistry) this.schemaRegistry = new PresenceSchemaRegistry(this, 'Schemas');

    new CfnOutput(this, 'WebhookBaseUrl', {
      description:
        'Webhook base URL; instance I is registered at {base}/instances/I/presence?secret=base64url(HMAC-SHA256(master, I))',
      value: this.webhook.baseUrl,
    });
    new CfnOutput(this, 'AlarmTopicArn', {
      description: 'Every alarm notifies this SNS topic: subscribe e-mail, chat or paging to it',
      value: this.monitoring.alarmTopic.topicArn,
    });
    if (this.fleet) {
      new CfnOutput(this, 'ReconcileFunctionName', {
        description:
          'The fleet reconciler: aws lambda invoke --function-name <this> --payload \'{}\' (or {"instanceIds":["ID"]}, {"release":["ID"]}) out.json',
        value: this.fleet.reconciler.functionName,
      });
    }
    new CfnOutput(this, 'EventBusName', { value: this.webhook.eventBus.eventBusName });
    new CfnOutput(this, 'EventBusArn', { value: this.webhook.eventBus.eventBusArn });
    new CfnOutput(this, 'DashboardName', { value: this.monitoring.dashboard.dashboardName });
    if (this.debugEventLog) {
      new CfnOutput(this, 'DebugEventLogGroup', {
        description: 'Watch events arrive: aws logs tail --follow <this name>',
        value: this.debugEventLog.logGroup.logGroupName,
      });
    }
    if (this.schemaRegistry) {
      new CfnOutput(this, 'SchemaRegistryName', { value: this.schemaRegistry.registry.attrRegistryName });
    }
  }

  /** The receiver publishes in its own region, and the archive must live in the bus's account. */
  private checkSameEnvironment(eventBusArn: string): void {
    const { region, account } = Arn.split(eventBusArn, ArnFormat.SLASH_RESOURCE_NAME);
    const problems: string[] = [];
    if (!Token.isUnresolved(this.region) && region !== this.region)
      problems.push(`region ${region} (the stack deploys to ${this.region})`);
    if (!Token.isUnresolved(this.account) && account !== this.account)
      problems.push(`account ${account} (the stack deploys to ${this.account})`);
    if (problems.length > 0) {
      throw new ConfigError([
        `eventBusArn: the bus is in ${problems.join(' and ')}; use a bus in the same account and region. Example: -c eventBusArn=arn:aws:events:${this.region}:${Token.isUnresolved(this.account) ? 'ACCOUNT' : this.account}:event-bus/NAME`,
      ]);
    }
  }
}
