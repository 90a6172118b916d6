/**
 * bin/app.ts run the way `npx cdk synth` runs it (the CLI starts the app command with CDK_OUTDIR and
 * CDK_CONTEXT_JSON holding cdk.json's context), without esbuild bundling and without credentials: the stack
 * is environment-agnostic, as on a machine with no AWS profile.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { REGISTRATION_RESOURCE_TYPE } from '../../functions/fleet/settings.ts';
import type { ValidationReport } from '../support/synth.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  readonly outdir: string;
}

function runApp(context: Record<string, unknown>): Promise<Run> {
  const outdir = mkdtempSync(join(tmpdir(), 'cdk-app-'));
  const cdkJson = JSON.parse(readFileSync(join(ROOT, 'cdk.json'), 'utf8')) as {
    context: Record<string, unknown>;
  };
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    CDK_OUTDIR: outdir,
    CDK_CONTEXT_JSON: JSON.stringify({ ...cdkJson.context, 'aws:cdk:bundling-stacks': [], ...context }),
  };
  for (const name of ['CDK_DEFAULT_ACCOUNT', 'CDK_DEFAULT_REGION', 'AWS_REGION', 'AWS_DEFAULT_REGION'])
    delete env[name];
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', 'bin/app.ts'],
      { cwd: ROOT, env, timeout: 120_000 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
        resolve({ code, stdout, stderr, outdir });
      },
    );
  });
}

describe('bin/app.ts as `npx cdk synth` runs it', () => {
  let plain: Run;

  beforeAll(async () => {
    plain = await runApp({});
  }, 120_000);

  it('synthesizes with no context at all (no instanceId), cdk-nag clean', () => {
    expect(plain.stderr).not.toMatch(/Error/);
    expect(plain.code).toBe(0);
    const template = JSON.parse(readFileSync(join(plain.outdir, 'ZapiPresence.template.json'), 'utf8')) as {
      Resources: Record<string, { Type: string; Properties: Record<string, unknown> }>;
      Outputs: Record<string, unknown>;
    };
    const fleet = Object.values(template.Resources).filter((r) => r.Type === REGISTRATION_RESOURCE_TYPE);
    expect(fleet).toHaveLength(1);
    expect(fleet[0]?.Properties.RequiredInstanceIds).toBe('');
    expect(Object.keys(template.Outputs)).toEqual(
      expect.arrayContaining(['WebhookBaseUrl', 'AlarmTopicArn', 'ReconcileFunctionName']),
    );
    const report = JSON.parse(
      readFileSync(join(plain.outdir, 'validation-report.json'), 'utf8'),
    ) as ValidationReport;
    for (const plugin of report.pluginReports) expect(plugin.violations, plugin.pluginName).toEqual([]);
    // Without an account or region the acknowledged token wildcard is written with pseudo parameters.
    const token = report.pluginReports
      .flatMap((p) => p.suppressedViolations)
      .filter(
        (s) => s.ruleName.startsWith('AwsSolutions-IAM5[Resource::') && s.ruleName.includes('/*/token'),
      );
    expect(token.map((s) => s.ruleName)).toEqual([
      'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ssm:<AWS::Region>:<AWS::AccountId>:parameter/zapi/*/token]',
      'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ssm:<AWS::Region>:<AWS::AccountId>:parameter/zapi/*/token]',
    ]);
  });
});
