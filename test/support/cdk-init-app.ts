/**
 * Real `cdk init app --language typescript` apps with the packed package installed, as a user makes
 * them: `cdk init` (this repository's aws-cdk CLI, `--generate-only`: no install, no network) in a
 * folder named after the app, the documentation's snippets written over the two files it made
 * (bin/NAME.ts, lib/NAME-stack.ts), and `cdk synth` run by the CLI through the app's own cdk.json
 * (`npx tsc && npx tsx bin/NAME.ts`), with cdk-nag's AwsSolutions and Serverless packs on every synth.
 *
 * Two ways to install what the app needs:
 * - linked (test/package.test.ts, offline): the tarball unpacked, its dependencies and the tools linked
 *   from this repository's node_modules;
 * - from the npm registry (test/consumer/run.ts, CI): a given aws-cdk-lib, as a user's `npm install`.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const REPO_MODULES = join(ROOT, 'node_modules');
const CDK_CLI = join(REPO_MODULES, 'aws-cdk/bin/cdk');

/** The packed package: `npm pack` of this repository. */
export interface Packed {
  readonly tarball: string;
  readonly manifest: { dependencies?: Record<string, string>; peerDependencies?: Record<string, string> };
}

/** `npm pack` into `destination` (runs the build). */
export function pack(destination: string): Packed & { files: string[] } {
  const output = execFileSync('npm', ['pack', '--json', '--pack-destination', destination], {
    cwd: ROOT,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const [info] = JSON.parse(output.slice(output.indexOf('['))) as Array<{
    filename: string;
    files: Array<{ path: string }>;
  }>;
  if (!info) throw new Error('npm pack said nothing');
  const tarball = join(destination, info.filename);
  return {
    tarball,
    files: info.files.map((f) => f.path).sort(),
    manifest: JSON.parse(
      execFileSync('tar', ['xzOf', tarball, 'package/package.json'], { encoding: 'utf8' }),
    ),
  };
}

/** An environment for the tools: no AWS credentials, no update checks, no notices over the network. */
export function toolEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '/tmp',
    CDK_DISABLE_VERSION_CHECK: '1',
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    ...(process.env.npm_config_cache !== undefined && { npm_config_cache: process.env.npm_config_cache }),
    ...extra,
  };
}

/** `cdk init app --language typescript` in `parent/folder` (generated only: nothing installed). */
export function cdkInit(parent: string, folder: string): string {
  const dir = join(parent, folder);
  mkdirSync(dir, { recursive: true });
  execFileSync(process.execPath, [CDK_CLI, 'init', 'app', '--language', 'typescript', '--generate-only'], {
    cwd: dir,
    env: toolEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  for (const file of ['cdk.json', `bin/${folder}.ts`, `lib/${folder}-stack.ts`, 'tsconfig.json'])
    if (!existsSync(join(dir, file))) throw new Error(`cdk init made no ${file} in ${dir}`);
  return dir;
}

/** The devDependencies `cdk init` wrote that running the app needs (the compiler, the runner, types). */
export function initTools(dir: string): Record<string, string> {
  const { devDependencies = {} } = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
    devDependencies?: Record<string, string>;
  };
  const wanted = ['typescript', 'tsx', '@types/node', '@types/jest'];
  return Object.fromEntries(Object.entries(devDependencies).filter(([name]) => wanted.includes(name)));
}

/** Unpacks the tarball as node_modules/<name> of the app. */
function unpack(dir: string, packed: Packed): void {
  const target = join(dir, 'node_modules', 'zapi-presence-eventbridge');
  mkdirSync(target, { recursive: true });
  execFileSync('tar', ['xzf', packed.tarball, '-C', target, '--strip-components=1']);
}

/**
 * Offline: the package unpacked, exactly its declared dependencies and peers, cdk-nag and the tools
 * linked from this repository's node_modules. `@types/jest` (cdk init's tsconfig names it; this
 * repository tests with vitest) is a stub declaring the globals of cdk init's own test file.
 */
export function installLinked(dir: string, packed: Packed): void {
  unpack(dir, packed);
  const modules = join(dir, 'node_modules');
  const linked = [
    ...Object.keys(packed.manifest.dependencies ?? {}),
    ...Object.keys(packed.manifest.peerDependencies ?? {}),
    'cdk-nag',
    'typescript',
    'tsx',
    '@types/node',
  ];
  for (const name of linked) {
    mkdirSync(dirname(join(modules, name)), { recursive: true });
    symlinkSync(join(REPO_MODULES, name), join(modules, name), 'dir');
  }
  mkdirSync(join(modules, '.bin'), { recursive: true });
  symlinkSync(join(REPO_MODULES, 'typescript/bin/tsc'), join(modules, '.bin/tsc'));
  symlinkSync(join(REPO_MODULES, 'tsx/dist/cli.mjs'), join(modules, '.bin/tsx'));
  mkdirSync(join(modules, '@types/jest'), { recursive: true });
  writeFileSync(
    join(modules, '@types/jest/package.json'),
    '{ "name": "@types/jest", "types": "index.d.ts" }\n',
  );
  writeFileSync(
    join(modules, '@types/jest/index.d.ts'),
    'declare function test(name: string, fn: () => unknown): void;\ndeclare function describe(name: string, fn: () => unknown): void;\ndeclare function it(name: string, fn: () => unknown): void;\ndeclare const expect: (value: unknown) => any;\n',
  );
}

/**
 * From the npm registry, as a user installs it: the given aws-cdk-lib, constructs and cdk-nag (v3, as
 * docs/library.md says), the tools cdk init wrote, and the tarball. Throws with npm's last lines.
 */
export function installFromRegistry(
  dir: string,
  packed: Packed,
  versions: { awsCdkLib: string; constructs: string },
): void {
  const specs = [
    `aws-cdk-lib@${versions.awsCdkLib}`,
    `constructs@${versions.constructs}`,
    'cdk-nag@^3',
    ...Object.entries(initTools(dir)).map(([name, range]) => `${name}@${range}`),
    packed.tarball,
  ];
  const run = spawnSync('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', ...specs], {
    cwd: dir,
    env: toolEnv(),
    encoding: 'utf8',
    timeout: 600_000,
  });
  if (run.status !== 0) {
    const said = `${run.stdout ?? ''}\n${run.stderr ?? ''}`.trim().split('\n').slice(-15).join('\n');
    throw new Error(`npm install ${specs.slice(0, 3).join(' ')} ... failed in ${dir}:\n${said}`);
  }
}

/** Writes the app's files (bin/NAME.ts, lib/NAME-stack.ts) over what cdk init made. */
export function writeFiles(dir: string, files: ReadonlyMap<string, string>): void {
  for (const [path, code] of files) {
    mkdirSync(join(dir, dirname(path)), { recursive: true });
    writeFileSync(join(dir, path), code);
  }
}

/**
 * Loaded (NODE_OPTIONS=--require) into the processes `cdk synth` starts; in the app's own (the one that
 * runs bin/*.ts) it registers cdk-nag's packs on every App and, after each synth, writes what they
 * reported to nag-report.json next to the app. Resolved from the app's folder: the app's own aws-cdk-lib.
 */
const NAG_PRELOAD = `'use strict';
if (process.argv.some((arg) => /[\\\\/]?bin[\\\\/][\\w.-]+\\.ts$/.test(arg))) {
  const { readFileSync, writeFileSync } = require('node:fs');
  const { join } = require('node:path');
  const { App, Validations } = require('aws-cdk-lib');
  const { AwsSolutionsChecks, ServerlessChecks } = require('cdk-nag');
  const synth = App.prototype.synth;
  const checked = new WeakSet();
  App.prototype.synth = function (options) {
    if (!checked.has(this)) {
      Validations.of(this).addPlugins(new AwsSolutionsChecks(this), new ServerlessChecks(this));
      checked.add(this);
    }
    let assembly;
    try {
      assembly = synth.call(this, options);
    } finally {
      let report = { pluginReports: [] };
      try {
        report = JSON.parse(readFileSync(join(this.outdir, 'validation-report.json'), 'utf8'));
      } catch {}
      writeFileSync(join(__dirname, 'nag-report.json'), JSON.stringify(report));
    }
    return assembly;
  };
}
`;

export interface SynthResult {
  readonly status: number | null;
  readonly output: string;
  /** cdk-nag's packs that reported, and every finding they did not see acknowledged. */
  readonly nag: { plugins: string[]; violations: string[] };
}

/** `cdk synth -q` in the app's folder, as a user runs it, with cdk-nag on. */
export function cdkSynth(dir: string): SynthResult {
  writeFileSync(join(dir, 'nag-preload.cjs'), NAG_PRELOAD);
  rmSync(join(dir, 'nag-report.json'), { force: true });
  const run = spawnSync(process.execPath, [CDK_CLI, 'synth', '-q', '--no-notices'], {
    cwd: dir,
    env: toolEnv({ NODE_OPTIONS: `--require ${join(dir, 'nag-preload.cjs')}` }),
    encoding: 'utf8',
    timeout: 300_000,
  });
  let nag: SynthResult['nag'] = { plugins: [], violations: ['cdk-nag wrote no report'] };
  try {
    const report = JSON.parse(readFileSync(join(dir, 'nag-report.json'), 'utf8')) as {
      pluginReports: Array<{
        pluginName: string;
        violations: Array<{ ruleName: string; violatingConstructs: Array<{ constructPath: string }> }>;
      }>;
    };
    nag = {
      plugins: report.pluginReports.map((p) => p.pluginName).sort(),
      violations: report.pluginReports.flatMap((p) =>
        p.violations.map(
          (v) => `${v.ruleName}: ${v.violatingConstructs.map((c) => c.constructPath).join(', ')}`,
        ),
      ),
    };
  } catch {}
  return { status: run.status, output: `${run.stdout ?? ''}${run.stderr ?? ''}`, nag };
}
