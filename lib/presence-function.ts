/**
 * The one place every Lambda of this project gets its defaults: newest Node.js runtime, arm64, JSON logs
 * into its own log group with retention (and, when given, a KMS key), its own role, and the code from
 * lib/bundling.ts (prebuilt in the package, bundled at synth in this repository).
 */
import { RemovalPolicy } from 'aws-cdk-lib';
import { Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import {
  ApplicationLogLevel,
  Architecture,
  type FunctionOptions,
  Function as LambdaFunction,
  LoggingFormat,
  Runtime,
  SystemLogLevel,
} from 'aws-cdk-lib/aws-lambda';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import { type FunctionName, functionCode } from './bundling.ts';

/** The newest Node.js runtime Lambda offers (lib/bundling.ts targets the same). */
export const NODE_RUNTIME = Runtime.NODEJS_24_X;

export interface PresenceFunctionProps
  extends Omit<
    FunctionOptions,
    'architecture' | 'logGroup' | 'logRetention' | 'loggingFormat' | 'role' | 'memorySize' | 'timeout'
  > {
  /** Which of this project's functions. */
  readonly function: FunctionName;
  readonly memorySize: number;
  readonly timeout: NonNullable<FunctionOptions['timeout']>;
  /** @default RetentionDays.ONE_YEAR */
  readonly logRetentionDays?: RetentionDays;
  /** Encrypts the function's log group. @default - CloudWatch Logs' own encryption */
  readonly logEncryptionKey?: IKey;
}

export class PresenceFunction extends LambdaFunction {
  /** The function's own log group (with retention). */
  readonly functionLogGroup: LogGroup;

  constructor(scope: Construct, id: string, props: PresenceFunctionProps) {
    const logGroup = new LogGroup(scope, `${id}Logs`, {
      retention: props.logRetentionDays ?? RetentionDays.ONE_YEAR,
      removalPolicy: RemovalPolicy.DESTROY,
      ...(props.logEncryptionKey !== undefined && { encryptionKey: props.logEncryptionKey }),
    });
    // Our own role: the function may write to its own log group and nothing else until granted more
    // (no AWSLambdaBasicExecutionRole with its account-wide logs:CreateLogGroup).
    const role = new Role(scope, `${id}Role`, {
      assumedBy: new ServicePrincipal('lambda.amazonaws.com'),
      description: `Execution role of ${id}`,
    });
    const { logRetentionDays: _retention, logEncryptionKey: _key, function: name, ...functionProps } = props;
    super(scope, id, {
      ...functionProps,
      code: functionCode(scope, name),
      handler: 'index.handler',
      runtime: NODE_RUNTIME,
      architecture: Architecture.ARM_64,
      role,
      logGroup,
      loggingFormat: LoggingFormat.JSON,
      applicationLogLevelV2: ApplicationLogLevel.INFO,
      systemLogLevelV2: SystemLogLevel.WARN,
    });
    this.functionLogGroup = logGroup;
    logGroup.grantWrite(role);
  }
}
