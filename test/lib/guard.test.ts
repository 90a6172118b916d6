/**
 * Policy validation as bin/app.ts registers it (`addPolicyValidation`): cdk-nag's packs and AWS Control
 * Tower's proactive controls through cfn-guard. cfn-guard runs a bundled binary over 237 rules (a few
 * seconds per synth), so each app is synthesized once.
 *
 * CDK leaves a plugin out of validation-report.json when it passed with nothing acknowledged; each run of
 * the cfn-guard plugin is therefore recorded here too, to prove it ran and what it returned.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, parse } from 'node:path';
import { CfnGuardValidator } from '@cdklabs/cdk-validator-cfnguard';
import { type PolicyValidationPluginReportBeta1, Validations } from 'aws-cdk-lib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addPolicyValidation, DISABLED_GUARD_RULES } from '../../lib/nag.ts';
import { buildApp, type ValidationReport } from '../support/synth.ts';

const GUARD = 'cdk-validator-cfnguard';
const RULES_DIR = join(
  dirname(createRequire(import.meta.url).resolve('@cdklabs/cdk-validator-cfnguard')),
  '..',
  'rules/control-tower/cfn-guard',
);

function guardFiles(directory: string): string[] {
  return readdirSync(directory).flatMap((name) => {
    const path = join(directory, name);
    return statSync(path).isDirectory() ? guardFiles(path) : name.endsWith('.guard') ? [path] : [];
  });
}

/** Every bundled Control Tower rule: file name (`ct-lambda-pr-3`) -> rule name in its report (`lambda_inside_vpc_check`). */
const RULES = new Map(
  guardFiles(RULES_DIR).map((path) => {
    const header = /^# Rule (?:Identifier|Name):\s*\n#\s+(\S+)/m.exec(readFileSync(path, 'utf8'));
    if (!header) throw new Error(`no rule name in ${path}`);
    return [parse(path).name, header[1] as string];
  }),
);

/** How the plugin names a rule file in its `ruleIds` (`ct-lambda-pr-3` -> `lambdapr3`). */
const ruleId = (file: string) => file.replace('ct-', '').replace(/-/g, '');

interface GuardRun {
  readonly ruleIds: readonly string[];
  readonly result: PolicyValidationPluginReportBeta1;
}
const guardRuns: GuardRun[] = [];
const originalValidate = CfnGuardValidator.prototype.validate;

interface Validated {
  readonly error: unknown;
  readonly report: ValidationReport;
  /** The cfn-guard plugin's runs during this synth (one per synth: it validates every template at once). */
  readonly guard: readonly GuardRun[];
}

/** The app as bin/app.ts builds it, with its policy validation; synthesizes and returns what each plugin said. */
function validate(context: Record<string, unknown>, register = addPolicyValidation): Validated {
  const { app, outdir } = buildApp(context, { nag: false });
  register(app);
  const from = guardRuns.length;
  let error: unknown;
  try {
    app.synth();
  } catch (caught) {
    error = caught;
  }
  const report = JSON.parse(readFileSync(join(outdir, 'validation-report.json'), 'utf8')) as ValidationReport;
  return { error, report, guard: guardRuns.slice(from) };
}

const unacknowledged = (report: ValidationReport) =>
  report.pluginReports.flatMap((p) =>
    p.violations.flatMap((v) =>
      v.violatingConstructs.map((c) => `${p.pluginName} ${v.ruleName} ${c.constructPath}`),
    ),
  );

beforeAll(() => {
  CfnGuardValidator.prototype.validate = function (this: CfnGuardValidator, context) {
    const result = originalValidate.call(this, context);
    guardRuns.push({ ruleIds: [...(this.ruleIds ?? [])], result });
    return result;
  };
});

afterAll(() => {
  CfnGuardValidator.prototype.validate = originalValidate;
});

describe('addPolicyValidation: cdk-nag and Control Tower (cfn-guard)', () => {
  const variants: Record<string, Validated> = {};

  beforeAll(() => {
    variants['the default app'] = validate({});
    variants['debug events, a Client-Token, a subscriber account and an alarm e-mail'] = validate({
      instanceId: 'INST1',
      debugEventLog: 'true',
      clientTokenParameter: '/zapi/client-token',
      subscriberAccountIds: '210987654321',
      alarmEmail: 'oncall@example.com.br',
    });
    variants['the live feed (AppSync Events, Cognito, the presence store)'] = validate({
      instanceId: 'INST1',
      liveFeed: 'true',
    });
  }, 300_000);

  it.each([
    'the default app',
    'debug events, a Client-Token, a subscriber account and an alarm e-mail',
    'the live feed (AppSync Events, Cognito, the presence store)',
  ])('has no unacknowledged finding from any plugin with %s', (name) => {
    const { error, report, guard } = variants[name] as Validated;
    expect(error).toBeUndefined();
    expect(unacknowledged(report)).toEqual([]);
    // cfn-guard ran once, over every enabled rule: it passed, or (with the debug log, kept a week on
    // purpose) found only the acknowledged retention rule on that one log group.
    expect(guard).toHaveLength(1);
    expect(guard[0]?.result.violations).toEqual([]);
    const suppressed = report.pluginReports
      .filter((p) => p.pluginName === 'cdk-validator-cfnguard')
      .flatMap((p) => p.suppressedViolations.map((v) => v.ruleName));
    expect(suppressed).toEqual(
      name.startsWith('debug events') ? ['cloudwatch_log_group_retention_period_check'] : [],
    );
    expect(guard[0]?.ruleIds.length).toBe(RULES.size - Object.keys(DISABLED_GUARD_RULES).length);
    // cdk-nag's packs are in the report with their acknowledgements.
    expect(report.pluginReports.map((p) => p.pluginName)).toEqual(
      expect.arrayContaining(['AwsSolutions', 'Serverless']),
    );
    for (const plugin of report.pluginReports) expect(plugin.conclusion, plugin.pluginName).toBe('success');
  });

  it('disables exactly the Control Tower rules of DISABLED_GUARD_RULES, each with its reason', () => {
    const disabled = Object.keys(DISABLED_GUARD_RULES);
    expect(disabled.length).toBeGreaterThan(0);
    for (const [file, reason] of Object.entries(DISABLED_GUARD_RULES)) {
      // A bundled rule file (a misspelt name would disable nothing).
      expect(RULES.has(file), file).toBe(true);
      expect(reason.trim().length, file).toBeGreaterThanOrEqual(40);
      expect(reason, file).not.toContain(file);
    }
    const enabled = [...RULES.keys()].filter((file) => !disabled.includes(file)).map(ruleId);
    const { guard } = variants['the default app'] as Validated;
    expect([...(guard[0]?.ruleIds ?? [])].sort()).toEqual(enabled.sort());
  });
});

describe('the disabled Control Tower rules', () => {
  let everyRule: Validated;

  beforeAll(() => {
    everyRule = validate({}, (app) => Validations.of(app).addPlugins(new CfnGuardValidator()));
  }, 300_000);

  it('are each needed: with every rule on, the default app fails exactly those, on these constructs', () => {
    expect(String(everyRule.error)).toMatch(/^ValidationFailed: /);
    expect(everyRule.guard).toHaveLength(1);
    expect(everyRule.guard[0]?.ruleIds).toHaveLength(RULES.size);
    const guard = everyRule.report.pluginReports.filter((p) => p.pluginName === GUARD);
    expect(guard).toHaveLength(1);
    const found = Object.fromEntries(
      (guard[0]?.violations ?? []).map((v) => [
        v.ruleName,
        v.violatingConstructs.map((c) => c.constructPath).sort(),
      ]),
    );
    expect(Object.keys(found).sort()).toEqual(
      Object.keys(DISABLED_GUARD_RULES)
        .map((file) => RULES.get(file))
        .sort(),
    );
    // Where each one applies: every function outside a VPC, the one route without an authorizer, and the
    // receiver's invoke permission (its SourceArn is an intrinsic the rule cannot evaluate).
    expect(found[RULES.get('ct-lambda-pr-3') as string]).toEqual(
      [
        'ZapiPresence/Default/Canary/Arrival/Resource',
        'ZapiPresence/Default/Canary/Function/Resource',
        'ZapiPresence/Default/Fleet/Provider/framework-onEvent/Resource',
        'ZapiPresence/Default/Fleet/Reconciler/Resource',
        'ZapiPresence/Default/Fleet/Registrar/Resource',
        'ZapiPresence/Default/Presence/Receiver/Resource',
      ].sort(),
    );
    expect(found[RULES.get('ct-apigateway-pr-5') as string]).toEqual([
      'ZapiPresence/Default/Presence/Api/POST--instances--{instanceId}--presence/Resource',
    ]);
    // Every log group: CloudWatch Logs' own encryption, no customer-managed key by default (encryptLogs).
    expect(found[RULES.get('ct-cloudwatch-pr-3') as string]).toEqual(
      [
        'Presence/ReceiverLogs',
        'Presence/AccessLogs',
        'Fleet/ReconcilerLogs',
        'Fleet/RegistrarLogs',
        'Fleet/ProviderLogs',
        'Canary/FunctionLogs',
        'Canary/ArrivalLogs',
      ]
        .map((path) => `ZapiPresence/Default/${path}/Resource`)
        .sort(),
    );
    expect(found[RULES.get('ct-lambda-pr-2') as string]).toEqual([
      'ZapiPresence/Default/Presence/Api/POST--instances--{instanceId}--presence/Receiver-Permission',
    ]);
  });
});

describe('the log-group encryption control (CT.CLOUDWATCH.PR.3)', () => {
  let encrypted: Validated;

  beforeAll(() => {
    encrypted = validate({ encryptLogs: 'true' }, (app) =>
      Validations.of(app).addPlugins(new CfnGuardValidator()),
    );
  }, 300_000);

  it('is disabled with its reason: by default every log group is encrypted by CloudWatch Logs, with no key of ours', () => {
    expect(RULES.get('ct-cloudwatch-pr-3')).toBe('cloudwatch_log_group_encrypted_check');
    expect(DISABLED_GUARD_RULES['ct-cloudwatch-pr-3']).toMatch(
      /CloudWatch Logs encrypts every log group at rest/,
    );
  });

  it('passes with encryptLogs=true: with every rule on, the key leaves no log group unencrypted', () => {
    const guard = encrypted.report.pluginReports.filter((p) => p.pluginName === GUARD);
    const rules = (guard[0]?.violations ?? []).map((v) => v.ruleName);
    expect(encrypted.guard).toHaveLength(1);
    expect(rules).not.toContain('cloudwatch_log_group_encrypted_check');
    // The rest of what it finds is exactly the other disabled rules.
    expect(rules.sort()).toEqual(
      Object.keys(DISABLED_GUARD_RULES)
        .filter((file) => file !== 'ct-cloudwatch-pr-3')
        .map((file) => RULES.get(file))
        .sort(),
    );
  });
});
