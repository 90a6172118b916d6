/**
 * The one place every Lambda of this project gets its defaults: the Node.js runtime its bundles are built
 * for and tested on, arm64, JSON logs into its own log group with retention (and, when given, a KMS key),
 * its own role, and the code from lib/bundling.ts (prebuilt in the package, bundled at synth in this
 * repository).
 *
 * Runtime policy: the functions run NODE_RUNTIME, the runtime the shipped bundles were built for
 * (ESBUILD_TARGET) and tested on, whatever the user's aws-cdk-lib knows. When AWS adds a newer Node.js
 * runtime and the user's aws-cdk-lib learns it, cdk-nag's "latest runtime" rules (AwsSolutions-L1,
 * Serverless-LambdaLatestVersion) would flag these functions; each function acknowledges both, with the
 * reason, so a user's app never turns red because AWS added a runtime. A release of this package moves to
 * the newer runtime once its bundles are tested on it (docs/library.md, "Runtime").
 */
import { RemovalPolicy, Validations } from 'aws-cdk-lib';
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

/** The runtime the bundles are built for and tested on (lib/bundling.ts's ESBUILD_TARGET is the same). */
export const NODE_RUNTIME = Runtime.NODEJS_24_X;

/** Why a function keeps NODE_RUNTIME when the user's aws-cdk-lib knows a newer one. */
export const RUNTIME_PIN_REASON =
  `Pinned to ${NODE_RUNTIME.name}, the runtime this package's prebuilt bundles are built for and tested on; ` +
  'a runtime newer than that, which aws-cdk-lib may learn after this release, runs untested code. The ' +
  'package moves to the newer runtime in a release whose bundles were tested on it.';

/** The cdk-nag rules that flag a runtime older than the newest aws-cdk-lib knows. */
export const LATEST_RUNTIME_RULES = [
  'AwsSolutions::AwsSolutions-L1',
  'Serverless::Serverless-LambdaLatestVersion',
] as const;

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
    // On this function only: NODE_RUNTIME is a decision (see the file's comment), not an oversight.
    for (const id of LATEST_RUNTIME_RULES)
      Validations.of(this).acknowledge({ id, reason: RUNTIME_PIN_REASON });
  }
}
