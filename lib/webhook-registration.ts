/**
 * L3 construct: on every deploy, a custom resource per instance makes Z-API call this deployment's
 * webhook URL (reading the instance token and the webhook secret from SSM at run time).
 */
import { type CfnResource, CustomResource, Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import { Grant } from 'aws-cdk-lib/aws-iam';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { type IStringParameter, StringParameter } from 'aws-cdk-lib/aws-ssm';
import { Provider } from 'aws-cdk-lib/custom-resources';
import { Construct } from 'constructs';
import { REGISTRATION_PROPERTIES } from '../functions/register-webhook/properties.ts';
import { PresenceFunction } from './presence-function.ts';
import type { PresenceWebhook } from './presence-webhook.ts';

export interface WebhookRegistrationProps {
  /** The receiver whose URL and secret are registered. */
  readonly webhook: PresenceWebhook;
  /**
   * SSM SecureString holding an instance's token; `{instanceId}` is replaced by each instance id.
   * @default '/zapi/{instanceId}/token'
   */
  readonly instanceTokenParameterName?: string;
  /**
   * SSM SecureString holding the account security token, sent as `Client-Token`.
   * @default - no Client-Token header
   */
  readonly clientTokenParameterName?: string;
  /**
   * Z-API API base URL (Z-API-compatible hosts exist).
   * @default 'https://api.z-api.io'
   */
  readonly zapiBaseUrl?: string;
  /**
   * How long CloudFormation waits for one registration before failing it.
   * @default Duration.minutes(5)
   */
  readonly serviceTimeout?: Duration;
  /**
   * A value that differs on every deploy, so registration is re-asserted each time.
   * @default - the synthesis time
   */
  readonly deployNonce?: string;
  /** @default RetentionDays.ONE_MONTH */
  readonly logRetention?: RetentionDays;
}

/** Where each instance's token lives unless configured otherwise. */
export const DEFAULT_TOKEN_PARAMETER = '/zapi/{instanceId}/token';

/** The token parameter of one instance: `{instanceId}` in the template replaced by its id. */
export function instanceTokenParameterName(template: string, instanceId: string): string {
  return template.replaceAll('{instanceId}', instanceId);
}

export class WebhookRegistration extends Construct {
  readonly handler: PresenceFunction;
  readonly provider: Provider;
  /** One custom resource per instance, by instance id. */
  readonly registrations: ReadonlyMap<string, CustomResource>;

  constructor(scope: Construct, id: string, props: WebhookRegistrationProps) {
    super(scope, id);
    const { webhook } = props;
    const tokenTemplate = props.instanceTokenParameterName ?? DEFAULT_TOKEN_PARAMETER;
    if (!tokenTemplate.includes('{instanceId}') && webhook.instanceIds.length > 1) {
      throw new Error(
        'WebhookRegistration: instanceTokenParameterName must contain {instanceId} when several instances are configured',
      );
    }
    if (props.zapiBaseUrl !== undefined && !/^https:\/\/[^/?#]+(\/[^?#]*)?$/.test(props.zapiBaseUrl)) {
      throw new Error(`WebhookRegistration: zapiBaseUrl must be an https:// URL, got "${props.zapiBaseUrl}"`);
    }

    this.handler = new PresenceFunction(this, 'Handler', {
      entry: 'register-webhook/handler.ts',
      description: 'Registers the chat-presence webhook URL with Z-API',
      memorySize: 256,
      // Two Z-API calls with retries and SSM reads; the handler stops retrying 10 s before this.
      timeout: Duration.minutes(2),
      ...(props.logRetention !== undefined && { logRetentionDays: props.logRetention }),
      ...(props.zapiBaseUrl !== undefined && { environment: { ZAPI_BASE_URL: props.zapiBaseUrl } }),
    });
    Validations.of(this.handler).acknowledge({
      id: 'Serverless::Serverless-LambdaDLQ',
      reason:
        'Invoked synchronously by the custom-resource provider framework, which reports failures to CloudFormation.',
    });
    Validations.of(this.handler).acknowledge({
      id: 'Serverless::Serverless-LambdaTracing',
      reason: 'Runs once per deploy; its outcome is reported to CloudFormation and logged.',
    });

    const parameters: IStringParameter[] = [webhook.webhookSecretParameter];
    const parameter = (name: string, key: string) => {
      const p = StringParameter.fromSecureStringParameterAttributes(this, key, { parameterName: name });
      parameters.push(p);
      return p;
    };
    const clientToken = props.clientTokenParameterName
      ? parameter(props.clientTokenParameterName, 'ClientToken')
      : undefined;

    this.provider = new Provider(this, 'Provider', {
      onEventHandler: this.handler,
      logGroup: new LogGroup(this, 'ProviderLogs', {
        retention: props.logRetention ?? RetentionDays.ONE_MONTH,
        removalPolicy: RemovalPolicy.DESTROY,
      }),
    });
    acknowledgeProviderFramework(this.provider, this.handler);

    const nonce = props.deployNonce ?? new Date().toISOString();
    const registrations = new Map<string, CustomResource>();
    const P = REGISTRATION_PROPERTIES;
    const tokenNames = new Set<string>();
    for (const instanceId of webhook.instanceIds) {
      const tokenName = instanceTokenParameterName(tokenTemplate, instanceId);
      const token = tokenNames.has(tokenName) ? undefined : parameter(tokenName, `Token${instanceId}`);
      tokenNames.add(tokenName);
      const resource = new CustomResource(this, `Instance${instanceId}`, {
        serviceToken: this.provider.serviceToken,
        resourceType: 'Custom::ZapiPresenceWebhook',
        serviceTimeout: props.serviceTimeout ?? Duration.minutes(5),
        properties: {
          [P.instanceId]: instanceId,
          [P.webhookUrl]: webhook.webhookUrl(instanceId),
          [P.instanceTokenParameter]: token?.parameterName ?? tokenName,
          [P.webhookSecretParameter]: webhook.webhookSecretParameter.parameterName,
          ...(clientToken && { [P.clientTokenParameter]: clientToken.parameterName }),
          [P.deployNonce]: nonce,
        },
      });
      // Register only once the endpoint exists and serves.
      resource.node.addDependency(webhook.stage, webhook.receiver);
      registrations.set(instanceId, resource);
    }
    this.registrations = registrations;

    // Exactly one action on exactly these parameters; decryption happens inside SSM.
    Grant.addToPrincipal({
      grantee: this.handler,
      actions: ['ssm:GetParameter'],
      resourceArns: parameters.map((p) => p.parameterArn),
    });
  }
}

/** The provider framework's own Lambda is CDK's: acknowledge what we cannot change, on that function only. */
function acknowledgeProviderFramework(provider: Provider, handler: PresenceFunction): void {
  const framework = provider.node.findChild('framework-onEvent');
  const handlerId = Stack.of(handler).getLogicalId(handler.node.defaultChild as CfnResource);
  const acks: Array<[string, string]> = [
    [
      'AwsSolutions::AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
      'CDK provider framework function: aws-cdk-lib gives its role the basic execution policy for its own logs.',
    ],
    [
      `AwsSolutions::AwsSolutions-IAM5[Resource::<${handlerId}.Arn>:*]`,
      'CDK provider framework may invoke any version or alias of the one registration handler; the wildcard is the qualifier only.',
    ],
    ['Serverless::Serverless-LambdaDLQ', 'CDK provider framework, invoked synchronously by CloudFormation.'],
    [
      'Serverless::Serverless-LambdaTracing',
      'CDK provider framework: runs once per deploy and reports to CloudFormation.',
    ],
    [
      'Serverless::Serverless-LambdaDefaultMemorySize',
      'CDK provider framework: aws-cdk-lib sets its memory.',
    ],
  ];
  for (const [id, reason] of acks) Validations.of(framework).acknowledge({ id, reason });
}
