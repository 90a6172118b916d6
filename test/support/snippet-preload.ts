/**
 * Loaded before a documentation snippet that builds a CDK app (test/docs-snippets.test.ts): every
 * `app.synth()` runs under cdk-nag, and fails the process on any finding or error annotation.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import { addNagPacks } from '../../lib/nag.ts';
import type { ValidationReport } from './synth.ts';

const synth = App.prototype.synth;
const checked = new WeakSet<App>();
App.prototype.synth = function (this: App, options) {
  if (!checked.has(this)) {
    addNagPacks(this);
    checked.add(this);
  }
  const assembly = synth.call(this, options);
  const problems: string[] = [];
  try {
    const report = JSON.parse(
      readFileSync(join(assembly.directory, 'validation-report.json'), 'utf8'),
    ) as ValidationReport;
    for (const plugin of report.pluginReports) {
      for (const v of plugin.violations) {
        problems.push(`${v.ruleName}: ${v.violatingConstructs.map((c) => c.constructPath).join(', ')}`);
      }
    }
  } catch {
    problems.push('no validation report was written');
  }
  for (const stack of assembly.stacks) {
    for (const message of stack.messages) {
      if (message.level === 'error') problems.push(`${message.id}: ${String(message.entry.data)}`);
    }
  }
  if (problems.length > 0) {
    process.stderr.write(`snippet synth problems:\n${problems.map((p) => `  - ${p}`).join('\n')}\n`);
    process.exit(3);
  }
  process.stdout.write('SNIPPET_SYNTH_OK\n');
  return assembly;
};
