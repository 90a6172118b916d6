/**
 * The runtime policy (lib/presence-function.ts): the functions stay on the runtime their bundles are built
 * for and tested on, and a runtime AWS adds later never turns a user's cdk-nag synth red.
 *
 * "AWS added a runtime" is simulated the way a newer aws-cdk-lib brings one: a new Runtime joins
 * Runtime.ALL, which cdk-nag's latest-runtime rules read. This file runs in a process of its own (vitest
 * forks a process per file), so the extra runtime stays here.
 */
import { Template } from 'aws-cdk-lib/assertions';
import { Runtime, RuntimeFamily } from 'aws-cdk-lib/aws-lambda';
import { describe, expect, it } from 'vitest';
import { ESBUILD_TARGET } from '../../lib/bundling.ts';
import { LATEST_RUNTIME_RULES, NODE_RUNTIME, RUNTIME_PIN_REASON } from '../../lib/presence-function.ts';
import { buildApp, synth } from '../support/synth.ts';

/** Every function of the app with every optional one on. */
const EVERYTHING = { instanceId: 'INST1', presenceStore: 'true', debugEventLog: 'true' };

describe('runtime policy', () => {
  it('builds the bundles for the runtime the functions run', () => {
    expect(NODE_RUNTIME.family).toBe(RuntimeFamily.NODEJS);
    expect(NODE_RUNTIME.name).toBe(`nodejs${ESBUILD_TARGET.replace(/^node/, '')}.x`);
  });

  it('runs every function of the construct on that runtime', () => {
    const template = Template.fromStack(buildApp(EVERYTHING, { nag: false }).stack);
    const runtimes = Object.entries(template.findResources('AWS::Lambda::Function'))
      .filter(([id]) => !id.includes('framework'))
      .map(([, f]) => (f as { Properties: { Runtime: string } }).Properties.Runtime);
    expect(runtimes.length).toBeGreaterThanOrEqual(7);
    expect(new Set(runtimes)).toEqual(new Set([NODE_RUNTIME.name]));
  });

  it('stays clean under cdk-nag when aws-cdk-lib knows a newer Node.js runtime', () => {
    // What the next aws-cdk-lib release does when AWS adds a runtime.
    const newer = new Runtime('nodejs98.x', RuntimeFamily.NODEJS);
    expect(Runtime.ALL).toContain(newer);
    const { report, template } = synth(EVERYTHING);
    for (const plugin of report.pluginReports) {
      expect(
        plugin.violations.map((v) => v.ruleName),
        plugin.pluginName,
      ).toEqual([]);
    }
    // The latest-runtime findings exist, and each is acknowledged on the one function it concerns.
    const suppressed = report.pluginReports.flatMap((p) => p.suppressedViolations);
    const latest = suppressed.filter((s) =>
      /^(AwsSolutions-L1|Serverless-LambdaLatestVersion)$/.test(s.ruleName),
    );
    const functions = Object.keys(template.findResources('AWS::Lambda::Function'));
    // Both rules, on every function (ours and CDK's provider framework).
    expect(latest.length).toBe(2 * functions.length);
    for (const s of latest) {
      expect(s.violatingConstructs.map((c) => c.constructPath)).toEqual([`${s.acknowledgedAt}/Resource`]);
      if (!s.acknowledgedAt.endsWith('framework-onEvent')) expect(s.reason).toBe(RUNTIME_PIN_REASON);
    }
    expect(LATEST_RUNTIME_RULES.map((id) => id.split('::')[1]).sort()).toEqual(
      [...new Set(latest.map((s) => s.ruleName))].sort(),
    );
  }, 60_000);
});
