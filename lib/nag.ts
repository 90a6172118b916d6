/**
 * Policy validation at every synth: cdk-nag (AwsSolutions and Serverless packs) and AWS Control Tower's
 * proactive controls through cfn-guard (its binary ships in the npm package and runs offline).
 *
 * A cdk-nag finding is acknowledged next to the one resource it concerns, with its reason. A Control
 * Tower rule can only be disabled for the whole app: every disabled rule is listed below with its reason.
 */

import { CfnGuardValidator } from '@cdklabs/cdk-validator-cfnguard';
import { type App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks, type NagPack, ServerlessChecks } from 'cdk-nag';

/**
 * Control Tower rules this project does not follow, and why; by rule file (the control id in the name:
 * ct-lambda-pr-3 is CT.LAMBDA.PR.3).
 */
export const DISABLED_GUARD_RULES: Readonly<Record<string, string>> = {
  // CT.LAMBDA.PR.3, lambda_inside_vpc_check
  'ct-lambda-pr-3':
    'The functions call public AWS APIs and Z-API on the internet; a VPC would add NAT gateways (about $35 a month each) and hold no private resource to protect.',
  // CT.APIGATEWAY.PR.5, api_gw_v2_authorization_type_configured_check
  'ct-apigateway-pr-5':
    'Z-API cannot send credentials or sign webhooks: the route is authenticated by the per-instance secret in its URL, checked in constant time by the receiver (docs/security.md).',
  // CT.CLOUDWATCH.PR.3, cloudwatch_log_group_encrypted_check
  'ct-cloudwatch-pr-3':
    'CloudWatch Logs encrypts every log group at rest with keys AWS manages; a customer-managed KMS key ($1 a month, billed through its 7-day deletion wait) is opt-in (encryptLogs), for teams whose policy asks for one.',
  // CT.LAMBDA.PR.2, lambda_function_public_access_prohibited_check
  'ct-lambda-pr-2':
    "False positive: the invoke permission's SourceArn is an intrinsic (the API's execute-api ARN) that the rule cannot evaluate.",
};

export function addPolicyValidation(app: App): void {
  Validations.of(app).addPlugins(
    ...nagPacks(app),
    new CfnGuardValidator({ disabledRules: Object.keys(DISABLED_GUARD_RULES) }),
  );
}

/** cdk-nag only (unit tests that do not need the cfn-guard run). */
export function addNagPacks(app: App): void {
  Validations.of(app).addPlugins(...nagPacks(app));
}

function nagPacks(app: App): NagPack[] {
  return [quietDeprecations(new AwsSolutionsChecks(app)), quietDeprecations(new ServerlessChecks(app))];
}

/**
 * cdk-nag's rules read deprecated L1 properties: 3.0.2's AwsSolutions-EVB1 (EventBusOpenAccess) reads
 * `CfnEventBusPolicy.principal`, so jsii printed "[WARNING] aws-cdk-lib.aws_events.CfnEventBusPolicy#principal
 * is deprecated" on every synth with subscriber accounts, although the policy is written with `statement`.
 * Those reads are cdk-nag's, not this app's: jsii's deprecation warnings are off (JSII_DEPRECATED=quiet)
 * while a pack checks the app, and only then.
 */
function quietDeprecations<T extends NagPack>(pack: T): T {
  const validate = pack.validate.bind(pack);
  pack.validate = (context) => {
    const before = process.env.JSII_DEPRECATED;
    process.env.JSII_DEPRECATED = 'quiet';
    try {
      return validate(context);
    } finally {
      if (before === undefined) delete process.env.JSII_DEPRECATED;
      else process.env.JSII_DEPRECATED = before;
    }
  };
  return pack;
}
