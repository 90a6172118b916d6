/** Builds the app as bin/app.ts does, for infrastructure tests. */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { loadConfig } from '../../lib/config.ts';
import { addNagPacks } from '../../lib/nag.ts';
import { PresenceStack } from '../../lib/presence-stack.ts';

export interface SynthOptions {
  /** Bundle the Lambdas with esbuild (slow); unit tests skip it. */
  readonly bundle?: boolean;
  /** Run the cdk-nag packs (default true). */
  readonly nag?: boolean;
}

export function buildApp(context: Record<string, unknown>, options: SynthOptions = {}) {
  const outdir = mkdtempSync(join(tmpdir(), 'cdk-test-'));
  const app = new App({
    outdir,
    context: {
      ...(options.bundle ? {} : { 'aws:cdk:bundling-stacks': [] }),
      '@aws-cdk/core:strictCfnValidateErrors': true,
      ...context,
    },
  });
  const config = loadConfig((key) => app.node.tryGetContext(key));
  const stack = new PresenceStack(app, 'ZapiPresence', {
    config,
    env: { account: '123456789012', region: 'sa-east-1' },
  });
  if (options.nag !== false) addNagPacks(app);
  return { app, stack, outdir };
}

export function synth(context: Record<string, unknown>, options: SynthOptions = {}) {
  const { app, stack } = buildApp(context, options);
  const assembly = app.synth();
  const template = Template.fromStack(stack);
  const report = JSON.parse(
    readFileSync(join(assembly.directory, 'validation-report.json'), 'utf8'),
  ) as ValidationReport;
  return { app, stack, assembly, template, report };
}

export interface ValidationReport {
  readonly pluginReports: ReadonlyArray<{
    readonly pluginName: string;
    readonly conclusion: string;
    readonly violations: ReadonlyArray<{
      readonly ruleName: string;
      readonly violatingConstructs: ReadonlyArray<{ constructPath: string }>;
    }>;
    readonly suppressedViolations: ReadonlyArray<{
      readonly ruleName: string;
      readonly reason: string;
      readonly acknowledgedAt: string;
      readonly violatingConstructs: ReadonlyArray<{ constructPath: string }>;
    }>;
  }>;
}
