/**
 * The one place every Lambda of this app gets its defaults: newest Node.js runtime, arm64, JSON logs
 * into a log group with retention, minified ESM bundled locally by esbuild with the AWS SDK inside.
 */
import { fileURLToPath } from 'node:url';
import { type Duration, RemovalPolicy } from 'aws-cdk-lib';
import { Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import {
  ApplicationLogLevel,
  Architecture,
  LoggingFormat,
  Runtime,
  SystemLogLevel,
} from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, type NodejsFunctionProps, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';

/** Root of this repository (for entry paths and the lock file). */
export const PROJECT_ROOT = fileURLToPath(new URL('..', import.meta.url));

/** Absolute path of a file under functions/. */
export function functionEntry(relative: string): string {
  return fileURLToPath(new URL(`../functions/${relative}`, import.meta.url));
}

/** The newest Node.js runtime Lambda offers (and the esbuild target that matches it). */
export const NODE_RUNTIME = Runtime.NODEJS_24_X;
export const ESBUILD_TARGET = 'node24';

export interface PresenceFunctionProps
  extends Omit<
    NodejsFunctionProps,
    'runtime' | 'architecture' | 'logGroup' | 'logRetention' | 'loggingFormat' | 'bundling' | 'role'
  > {
  /** Source file under functions/, e.g. `presence-webhook/handler.ts`. */
  readonly entry: string;
  readonly memorySize: number;
  readonly timeout: Duration;
  /** @default RetentionDays.ONE_MONTH */
  readonly logRetentionDays?: RetentionDays;
  /**
   * Bundle the AWS SDK's event-stream codec. Only operations with event-stream payloads (e.g. Bedrock
   * or Transcribe streaming, S3 SelectObjectContent) need it; without it such a call fails at run time.
   * @default false
   */
  readonly eventStreams?: boolean;
}

export class PresenceFunction extends NodejsFunction {
  /** The function's own log group (with retention). */
  readonly functionLogGroup: LogGroup;

  constructor(scope: Construct, id: string, props: PresenceFunctionProps) {
    const logGroup = new LogGroup(scope, `${id}Logs`, {
      retention: props.logRetentionDays ?? RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    // Our own role: the function may write to its own log group and nothing else until granted more
    // (no AWSLambdaBasicExecutionRole with its account-wide logs:CreateLogGroup).
    const role = new Role(scope, `${id}Role`, {
      assumedBy: new ServicePrincipal('lambda.amazonaws.com'),
      description: `Execution role of ${id}`,
    });
    const { logRetentionDays: _retention, eventStreams, ...functionProps } = props;
    super(scope, id, {
      ...functionProps,
      entry: functionEntry(props.entry),
      projectRoot: PROJECT_ROOT,
      depsLockFilePath: `${PROJECT_ROOT}package-lock.json`,
      runtime: NODE_RUNTIME,
      architecture: Architecture.ARM_64,
      role,
      logGroup,
      loggingFormat: LoggingFormat.JSON,
      applicationLogLevelV2: ApplicationLogLevel.INFO,
      systemLogLevelV2: SystemLogLevel.WARN,
      bundling: {
        format: OutputFormat.ESM,
        target: ESBUILD_TARGET,
        minify: true,
        sourceMap: false,
        mainFields: ['module', 'main'],
        // Bundle the AWS SDK too: a bundled, tree-shaken SDK imports much faster than the runtime's copy.
        externalModules: [],
        // Some bundled CommonJS dependencies call require() for Node built-ins.
        banner: "import{createRequire as __cr}from'node:module';const require=__cr(import.meta.url);",
        // Leave out what can never run in Lambda (see each stand-in's comment); measured in BENCHMARKS.md.
        esbuildArgs: {
          '--alias:@aws-sdk/credential-provider-node': functionEntry('shared/bundle/lambda-credentials.ts'),
          ...(eventStreams !== true && {
            '--alias:@smithy/core/event-streams': functionEntry('shared/bundle/no-event-streams.ts'),
          }),
        },
        forceDockerBundling: false,
      },
    });
    this.functionLogGroup = logGroup;
    logGroup.grantWrite(role);
  }
}
