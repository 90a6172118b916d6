/**
 * This repository's own app: one stack holding a `ZapiPresence` built from the CDK context, and the
 * outputs an operator needs. No secret value ever reaches it: SSM parameters are referenced by name.
 */
import { Annotations, CfnOutput, Duration, Stack, type StackProps } from 'aws-cdk-lib';
import { UserPool } from 'aws-cdk-lib/aws-cognito';
import type { Construct } from 'constructs';
import type { PresenceConfig } from './config.ts';
import { ZapiPresence, type ZapiPresenceProps } from './zapi-presence.ts';

export interface PresenceStackProps extends StackProps {
  readonly config: PresenceConfig;
}

/** The construct's props for a validated config. */
export function presenceProps(config: PresenceConfig): ZapiPresenceProps {
  return {
    ...(config.instanceIds.length > 0 && { instanceIds: config.instanceIds }),
    registerWebhook: config.registerWebhook,
    instanceTokenParameterName: config.instanceTokenParameter,
    webhookSecretParameterName: config.webhookSecretParameter,
    ...(config.clientTokenParameter !== undefined && {
      clientTokenParameterName: config.clientTokenParameter,
    }),
    zapiBaseUrl: config.zapiBaseUrl,
    zapiAttemptTimeout: Duration.millis(config.zapiAttemptTimeoutMs),
    zapiMaxAttempts: config.zapiMaxAttempts,
    zapiRequestsPerSecond: config.zapiRequestsPerSecond,
    driftPolicy: config.driftPolicy,
    sweepInterval: Duration.minutes(config.sweepIntervalMinutes),
    reconcileConcurrency: config.reconcileConcurrency,
    dueWarningDays: config.dueWarningDays,
    ...(config.currentPaymentStatuses !== undefined && {
      currentPaymentStatuses: config.currentPaymentStatuses,
    }),
    registrationTimeout: Duration.seconds(config.registrationTimeoutSeconds),
    reconcilerTimeout: Duration.seconds(config.reconcilerTimeoutSeconds),
    ...(config.eventBusArn !== undefined && { eventBusArn: config.eventBusArn }),
    ...(config.eventBusName !== undefined && { eventBusName: config.eventBusName }),
    archiveRetention: Duration.days(config.archiveRetentionDays),
    ...(config.subscriberAccountIds.length > 0 && { subscriberAccountIds: config.subscriberAccountIds }),
    maxBodyBytes: config.maxBodyBytes,
    throttleRateLimit: config.throttleRateLimit,
    throttleBurstLimit: config.throttleBurstLimit,
    receiverMemorySize: config.receiverMemoryMb,
    receiverTimeout: Duration.seconds(config.receiverTimeoutSeconds),
    ...(config.receiverReservedConcurrency !== undefined && {
      receiverReservedConcurrency: config.receiverReservedConcurrency,
    }),
    sdkAttemptTimeout: Duration.millis(config.sdkAttemptTimeoutMs),
    sdkMaxAttempts: config.sdkMaxAttempts,
    secretCacheTtl: Duration.seconds(config.secretCacheSeconds),
    secretGracePeriod: Duration.minutes(config.secretGraceMinutes),
    logRetention: config.logRetentionDays,
    encryptLogs: config.encryptLogs,
    detailedMetrics: config.detailedMetrics,
    dashboard: config.dashboard,
    metricsNamespace: config.metricsNamespace,
    ...(config.alarmEmail !== undefined && { alarmEmail: config.alarmEmail }),
    alarmThresholds: config.alarmThresholds,
    schemaRegistry: config.schemaRegistry,
    debugEventLog: config.debugEventLog,
    presenceStore: config.presenceStore,
    canary: config.canary,
    ...(config.canary && { canaryInterval: Duration.minutes(config.canaryIntervalMinutes) }),
    ...(config.presenceStore && {
      activityExpiry: Duration.seconds(config.activityExpirySeconds),
      presenceIdleTtl: Duration.days(config.presenceIdleDays),
    }),
    ...(config.liveFeed !== undefined && {
      liveFeed: {
        ...(config.liveFeed.oidc !== undefined && { oidc: config.liveFeed.oidc }),
        allowedOrigins: config.liveFeed.allowedOrigins,
        ...(config.liveFeed.tokenMinutes !== undefined && {
          tokenValidity: Duration.minutes(config.liveFeed.tokenMinutes),
        }),
      },
    }),
  };
}

export class PresenceStack extends Stack {
  readonly presence: ZapiPresence;

  constructor(scope: Construct, id: string, props: PresenceStackProps) {
    const { config, ...stackProps } = props;
    super(scope, id, stackProps);
    // The id 'Default' adds nothing to logical ids: resources keep the ids earlier versions of this app
    // deployed (a changed id would replace the bus and the API, and with it the webhook URL).
    const construct = presenceProps(config);
    const poolId = config.liveFeed?.userPoolId;
    this.presence = new ZapiPresence(this, 'Default', {
      ...construct,
      // An existing user pool for the agents (-c liveFeedUserPoolId=...), imported by id.
      ...(poolId !== undefined &&
        typeof construct.liveFeed === 'object' && {
          liveFeed: {
            ...construct.liveFeed,
            userPool: UserPool.fromUserPoolId(this, 'AgentUserPool', poolId),
          },
        }),
    });
    const presence = this.presence;

    new CfnOutput(this, 'WebhookBaseUrl', {
      description:
        'Webhook base URL; instance I is registered at {base}/instances/I/presence?secret=base64url(HMAC-SHA256(master, I))',
      value: presence.webhookBaseUrl,
    });
    new CfnOutput(this, 'EventBusName', { value: presence.eventBus.eventBusName });
    new CfnOutput(this, 'EventBusArn', { value: presence.eventBus.eventBusArn });
    if (presence.dashboard !== undefined) {
      new CfnOutput(this, 'DashboardName', { value: presence.dashboard.dashboardName });
    }
    new CfnOutput(this, 'AlarmTopicArn', {
      description: 'Every alarm notifies this SNS topic: subscribe e-mail, chat or paging to it',
      value: presence.alarmTopic.topicArn,
    });
    new CfnOutput(this, 'ReceiverLogGroup', {
      description: 'The receiver log: one line per webhook (aws logs tail --follow <this>)',
      value: presence.webhook.receiver.functionLogGroup.logGroupName,
    });
    new CfnOutput(this, 'AccessLogGroup', {
      description:
        'The API access log: one line per request with ip, status and latency (never the path or query)',
      value: presence.webhook.accessLogGroup.logGroupName,
    });
    if (presence.fleet) {
      new CfnOutput(this, 'ReconcilerLogGroup', {
        description: 'The reconciler log: a line per instance that needs attention, one per run',
        value: presence.fleet.reconciler.functionLogGroup.logGroupName,
      });
      new CfnOutput(this, 'RegistrationLogGroup', {
        description: 'The deploy-time registration log',
        value: presence.fleet.registrationHandler.functionLogGroup.logGroupName,
      });
    }
    if (presence.reconciler) {
      new CfnOutput(this, 'ReconcileFunctionName', {
        description:
          'The fleet reconciler: aws lambda invoke --function-name <this> --cli-binary-format raw-in-base64-out --payload \'{}\' (or {"instanceIds":["ID"]}, {"release":["ID"]}) out.json',
        value: presence.reconciler.functionName,
      });
    }
    if (presence.canary) {
      new CfnOutput(this, 'CanaryFunctionName', {
        description:
          'The canary: aws lambda invoke --function-name <this> out.json proves the path (API, receiver, secret, bus); out.json holds the status',
        value: presence.canary.canaryFunction.functionName,
      });
      new CfnOutput(this, 'CanaryLogGroup', {
        description: 'The canary log: one line per run naming the status it got',
        value: presence.canary.canaryFunction.functionLogGroup.logGroupName,
      });
    }
    if (presence.debugEventLog) {
      new CfnOutput(this, 'DebugEventLogGroup', {
        description: 'Watch events arrive: aws logs tail --follow <this name>',
        value: presence.debugEventLog.logGroup.logGroupName,
      });
    }
    if (presence.presenceStore) {
      new CfnOutput(this, 'PresenceTableName', {
        description:
          'One item per chat: partition key instanceId, sort key chat (the phone, or group#member)',
        value: presence.presenceStore.table.tableName,
      });
      new CfnOutput(this, 'PresenceReadUrl', {
        description: 'GET with SigV4 (IAM): replace {instanceId} and {phone}',
        value: `${presence.webhookBaseUrl}/instances/{instanceId}/chats/{phone}/presence`,
      });
    }
    const feed = presence.liveFeed;
    if (feed && config.liveFeed?.turnedStoreOn) {
      Annotations.of(this).addInfo(
        'liveFeed turned the presence store on (presenceStore=true): the feed carries its derived events and its snapshot reads its table',
      );
    }
    if (feed) {
      new CfnOutput(this, 'LiveFeedRealtimeUrl', {
        description:
          "An agent's browser connects here (with LiveFeedHttpDomain and its token): docs/live-feed.md",
        value: feed.realtimeUrl,
      });
      new CfnOutput(this, 'LiveFeedHttpDomain', { value: feed.httpDomain });
      new CfnOutput(this, 'LiveFeedSnapshotUrl', {
        description: "GET with an agent's token (Authorization header): replace {instanceId}",
        value: `${presence.webhookBaseUrl}/instances/{instanceId}/presence`,
      });
      new CfnOutput(this, 'LiveFeedIssuer', { value: feed.issuer });
      new CfnOutput(this, 'LiveFeedClientId', { value: feed.clientId });
      if (feed.userPool) {
        new CfnOutput(this, 'LiveFeedUserPoolId', {
          description:
            'Add agents and their groups here (aws cognito-idp admin-create-user, admin-add-user-to-group)',
          value: feed.userPool.userPoolId,
        });
      }
      new CfnOutput(this, 'LiveFeedDeadLetterQueueUrl', {
        description: 'Events agents did not get (LiveFeedDeadLetters alarms on it)',
        value: feed.deadLetters.queueUrl,
      });
      new CfnOutput(this, 'LiveFeedPublisherLogGroup', {
        value: feed.publisher.functionLogGroup.logGroupName,
      });
    }
    if (presence.schemaRegistry) {
      new CfnOutput(this, 'SchemaRegistryName', { value: presence.schemaRegistry.registry.attrRegistryName });
    }
  }

  /** The building blocks (shortcuts to `presence.*`). */
  get webhook() {
    return this.presence.webhook;
  }
  get fleet() {
    return this.presence.fleet;
  }
  get monitoring() {
    return this.presence.monitoring;
  }
  get schemaRegistry() {
    return this.presence.schemaRegistry;
  }
  get debugEventLog() {
    return this.presence.debugEventLog;
  }
}
