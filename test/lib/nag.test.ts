import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { buildApp, synth, type ValidationReport } from '../support/synth.ts';

const VARIANTS: ReadonlyArray<[string, Record<string, unknown>]> = [
  ['the default app', {}],
  ['-c instanceId', { instanceId: 'INST1,INST2' }],
  ['a Client-Token parameter', { clientTokenParameter: '/zapi/client-token' }],
  ['driftPolicy alert', { driftPolicy: 'alert' }],
  ['registerWebhook=false', { registerWebhook: 'false' }],
  ['debugEventLog=true', { debugEventLog: 'true' }],
  [
    'an imported bus (eventBusArn)',
    { eventBusArn: 'arn:aws:events:sa-east-1:123456789012:event-bus/shared' },
  ],
  ['an alarm e-mail', { alarmEmail: 'oncall@example.com.br' }],
  ['another token template', { instanceTokenParameter: '/org/zapi/{instanceId}/token' }],
  ['receiver concurrency reserved', { receiverReservedConcurrency: '10' }],
  ['subscriber accounts', { subscriberAccountIds: '210987654321,111122223333' }],
  ['encryptLogs=false', { encryptLogs: 'false', debugEventLog: 'true' }],
  ['a stage', { stage: 'staging', instanceId: 'INST1' }],
];

const TOKEN_WILDCARD =
  'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ssm:sa-east-1:123456789012:parameter/zapi/*/token]';
const FLEET_POLICIES = [
  'ZapiPresence/Default/Fleet/ReconcilerRole/DefaultPolicy',
  'ZapiPresence/Default/Fleet/RegistrarRole/DefaultPolicy',
];

const suppressed = (report: ValidationReport) => report.pluginReports.flatMap((p) => p.suppressedViolations);

// First in this file: jsii prints a deprecation once per process.
describe('cdk-nag without warnings', () => {
  it("prints no jsii deprecation warning for its own reads (EVB1 reads CfnEventBusPolicy's deprecated principal)", () => {
    const warn = vi.spyOn(console, 'warn');
    const before = process.env.JSII_DEPRECATED;
    const { report } = synth({ subscriberAccountIds: '210987654321' });
    // The packs did check the bus policy.
    expect(report.pluginReports.map((r) => r.pluginName).sort()).toEqual(['AwsSolutions', 'Serverless']);
    expect(warn.mock.calls.filter((args) => args.join(' ').includes('deprecated'))).toEqual([]);
    // Quiet only while the packs check: what the user set is back.
    expect(process.env.JSII_DEPRECATED).toBe(before);
  });
});

describe('cdk-nag (AwsSolutions, Serverless)', () => {
  it.each(VARIANTS)('has no unacknowledged finding with %s', (_name, context) => {
    const { report } = synth(context);
    expect(report.pluginReports.map((r) => r.pluginName).sort()).toEqual(['AwsSolutions', 'Serverless']);
    for (const plugin of report.pluginReports) {
      expect(plugin.violations, plugin.pluginName).toEqual([]);
      expect(plugin.conclusion, plugin.pluginName).toBe('success');
    }
  });

  describe('acknowledgements', () => {
    let report: ValidationReport;
    let withoutFleet: ValidationReport;

    beforeAll(() => {
      report = synth({
        instanceId: 'INST1',
        clientTokenParameter: '/zapi/client-token',
        debugEventLog: 'true',
      }).report;
      withoutFleet = synth({ registerWebhook: 'false' }).report;
    });

    it('each gives a reason and sits on the construct it excuses, never on the stack', () => {
      const all = suppressed(report);
      expect(all.length).toBeGreaterThan(0);
      for (const s of all) {
        expect(s.reason.trim().length, s.ruleName).toBeGreaterThanOrEqual(30);
        expect(s.reason, s.ruleName).not.toContain(s.ruleName);
        expect(s.acknowledgedAt, s.ruleName).toMatch(/^ZapiPresence\/.+/);
        expect(s.violatingConstructs.length, s.ruleName).toBeGreaterThan(0);
        for (const construct of s.violatingConstructs) {
          expect(construct.constructPath.startsWith(`${s.acknowledgedAt}/`), construct.constructPath).toBe(
            true,
          );
        }
      }
    });

    it('excuses the token wildcard on the fleet functions’ default policies only', () => {
      const token = suppressed(report).filter((s) => s.ruleName === TOKEN_WILDCARD);
      expect(token.map((s) => s.acknowledgedAt).sort()).toEqual(FLEET_POLICIES);
      for (const s of token) {
        expect(s.violatingConstructs.map((c) => c.constructPath)).toEqual([`${s.acknowledgedAt}/Resource`]);
        expect(s.reason).toContain('/zapi/{instanceId}/token');
      }
      expect(suppressed(withoutFleet).filter((s) => s.ruleName.startsWith('AwsSolutions-IAM5'))).toEqual([]);
    });

    it('excuses no other wildcard than the token and the provider framework’s handler qualifier', () => {
      const iam5 = suppressed(report).filter((s) => s.ruleName.startsWith('AwsSolutions-IAM5'));
      expect(iam5.map((s) => `${s.acknowledgedAt} ${s.ruleName}`).sort()).toEqual(
        [
          ...FLEET_POLICIES.map((path) => `${path} ${TOKEN_WILDCARD}`),
          // ssm:DescribeParameters takes no resource-level permission: "*" on that one statement only.
          'ZapiPresence/Default/Fleet/ReconcilerListTokens AwsSolutions-IAM5[Resource::*]',
          'ZapiPresence/Default/Fleet/RegistrarListTokens AwsSolutions-IAM5[Resource::*]',
          expect.stringMatching(
            /^ZapiPresence\/Default\/Fleet\/Provider\/framework-onEvent AwsSolutions-IAM5\[Resource::<FleetRegistrar[0-9A-F]{8}\.Arn>:\*\]$/,
          ),
        ].sort(),
      );
    });

    it('excuses CDK’s provider framework on its own function only', () => {
      const framework = suppressed(report).filter((s) => s.acknowledgedAt.includes('Provider'));
      expect(new Set(framework.map((s) => s.acknowledgedAt))).toEqual(
        new Set(['ZapiPresence/Default/Fleet/Provider/framework-onEvent']),
      );
      expect(framework.map((s) => s.ruleName.replace(/\[.*$/, '')).sort()).toEqual([
        'AwsSolutions-IAM4',
        'AwsSolutions-IAM5',
        'Serverless-LambdaDLQ',
        'Serverless-LambdaDefaultMemorySize',
        'Serverless-LambdaTracing',
      ]);
    });

    it('still flags any other wildcard added to a fleet function', () => {
      const { app, stack, outdir } = buildApp({});
      const fleet = stack.fleet;
      if (!fleet) throw new Error('no fleet');
      fleet.reconciler.addToRolePolicy(
        new PolicyStatement({
          actions: ['ssm:GetParameter'],
          resources: [stack.formatArn({ service: 'ssm', resource: 'parameter', resourceName: 'other/*' })],
        }),
      );
      expect(() => app.synth()).toThrow(/AwsSolutions-IAM5\[Resource::.*parameter\/other\/\*\]/);
      const failed = JSON.parse(
        readFileSync(join(outdir, 'validation-report.json'), 'utf8'),
      ) as ValidationReport;
      const violations = failed.pluginReports.flatMap((p) => p.violations);
      expect(violations.map((v) => v.ruleName)).toEqual([
        'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ssm:sa-east-1:123456789012:parameter/other/*]',
      ]);
      expect(violations[0]?.violatingConstructs.map((c) => c.constructPath)).toEqual([
        'ZapiPresence/Default/Fleet/ReconcilerRole/DefaultPolicy/Resource',
      ]);
    });
  });
});
