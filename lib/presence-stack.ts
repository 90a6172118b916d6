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
import { WebhookRegistration } from './webhook-registration.ts';

export interface PresenceStackProps extends StackProps {
  readonly config: PresenceConfig;
}

export class PresenceStack extends Stack {
  readonly webhook: PresenceWebhook;
  readonly registration?: WebhookRegistration;
  readonly monitoring: PresenceMonitoring;
  readonly schemaRegistry?: PresenceSchemaRegistry;
  /** With `debugEventLog`: every presence event, as subscribers receive it, in a log group. */
  readonly debugEventLog?: DebugEventLog;

  constructor(scope: Construct, id: string, props: PresenceStackProps) {
    super(scope, id, props);
    const { config } = props;
    if (config.eventBusArn !== undefined) this.checkSameEnvironment(config.eventBusArn);

    this.webhook = new PresenceWebhook(this, 'Presence', {
      instanceIds: config.instanceIds,
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
    });

    this.monitoring = new PresenceMonitoring(this, 'Monitoring', {
      webhook: this.webhook,
      ...(config.alarmEmail !== undefined && { alarmEmail: config.alarmEmail }),
    });

    if (config.debugEventLog) {
      this.debugEventLog = new DebugEventLog(this, 'DebugEvents', {
        webhook: this.webhook,
        retention: config.logRetentionDays,
      });
    }

    if (config.schemaRegistry) this.schemaRegistry = new PresenceSchemaRegistry(this, 'Schemas');

    if (config.registerWebhook) {
      this.registration = new WebhookRegistration(this, 'WebhookRegistration', {
        webhook: this.webhook,
        instanceTokenParameterName: config.instanceTokenParameter,
        ...(config.clientTokenParameter !== undefined && {
          clientTokenParameterName: config.clientTokenParameter,
        }),
        zapiBaseUrl: config.zapiBaseUrl,
        logRetention: config.logRetentionDays,
      });
    }

    new CfnOutput(this, 'WebhookBaseUrl', {
      description:
        'Webhook base URL; Z-API is registered at {base}/instances/{instanceId}/presence plus the secret',
      value: this.webhook.baseUrl,
    });
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
