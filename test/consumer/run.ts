/**
 * `npm run consumer [-- --only lowest|newest]`: the packed library where its users are. For the lowest
 * aws-cdk-lib this package's peer range allows and for the newest published one (both asked of the npm
 * registry now, installed from it as a user's `npm install` would), every app of docs/library.md is built
 * into a real `cdk init` app and synthesized by the CDK CLI under cdk-nag (test/support/cdk-init-app.ts).
 * Each must synthesize with no unacknowledged finding. .ci/run runs it; it needs the npm registry.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  cdkInit,
  cdkSynth,
  installFromRegistry,
  type Packed,
  pack,
  ROOT,
  toolEnv,
  writeFiles,
} from '../support/cdk-init-app.ts';
import { docApps, initFilesOf } from '../support/doc-snippets.ts';

const args = process.argv.slice(2);
const only = args.includes('--only') ? args[args.indexOf('--only') + 1] : undefined;
if (only !== undefined && only !== 'lowest' && only !== 'newest')
  throw new Error(`--only ${only}: "lowest" or "newest"`);

const { peerDependencies = {} } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  peerDependencies?: Record<string, string>;
};

class Refused extends Error {}

/** What the npm registry answers to `npm view <spec> version --json`, as a list. */
function registryVersions(spec: string): string[] {
  let out: string;
  try {
    out = execFileSync('npm', ['view', spec, 'version', '--json'], {
      encoding: 'utf8',
      env: toolEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 120_000,
    });
  } catch (error) {
    const said = String((error as { stderr?: string }).stderr ?? error)
      .trim()
      .split('\n')
      .slice(-5)
      .join('\n');
    throw new Refused(`could not ask the npm registry for ${spec} (npm view ${spec} version):\n${said}`);
  }
  const parsed = JSON.parse(out || '[]') as string | string[];
  return (Array.isArray(parsed) ? parsed : [parsed]).filter((v) => /^\d+\.\d+\.\d+$/.test(v));
}

const byVersion = (a: string, b: string) => {
  const [x, y] = [a, b].map((v) => v.split('.').map(Number)) as [number[], number[]];
  return (x[0] ?? 0) - (y[0] ?? 0) || (x[1] ?? 0) - (y[1] ?? 0) || (x[2] ?? 0) - (y[2] ?? 0);
};

/** The versions to test: the lowest the peer range allows, and the newest published (within the range). */
function versionsToTest(): Array<{ label: string; awsCdkLib: string; constructs: string }> {
  const cdkRange = peerDependencies['aws-cdk-lib'];
  const constructsRange = peerDependencies.constructs;
  if (cdkRange === undefined || constructsRange === undefined)
    throw new Refused('package.json declares no aws-cdk-lib or constructs peer dependency');
  const inRange = registryVersions(`aws-cdk-lib@${cdkRange}`).sort(byVersion);
  const [latest] = registryVersions('aws-cdk-lib@latest');
  const lowest = inRange[0];
  if (lowest === undefined)
    throw new Refused(`the npm registry has no aws-cdk-lib in the peer range ${cdkRange}`);
  if (latest === undefined || !inRange.includes(latest))
    throw new Refused(
      `the newest aws-cdk-lib (${latest ?? 'none'}) is outside this package's peer range ${cdkRange}: widen peerDependencies once it is tested`,
    );
  const lowestConstructs = registryVersions(`constructs@${constructsRange}`).sort(byVersion)[0];
  if (lowestConstructs === undefined)
    throw new Refused(`the npm registry has no constructs in the peer range ${constructsRange}`);
  return [
    { label: 'lowest', awsCdkLib: lowest, constructs: lowestConstructs },
    { label: 'newest', awsCdkLib: latest, constructs: constructsRange },
  ].filter((v) => only === undefined || v.label === only);
}

function main(): number {
  const started = Date.now();
  const work = mkdtempSync(join(tmpdir(), 'zapi-consumer-'));
  const failures: string[] = [];
  let passed = 0;
  try {
    const versions = versionsToTest();
    process.stdout.write(
      `consumer apps with aws-cdk-lib ${versions.map((v) => `${v.awsCdkLib} (${v.label})`).join(' and ')}\n`,
    );
    const packed: Packed = pack(work);
    const { apps } = docApps('docs/library.md', readFileSync(join(ROOT, 'docs/library.md'), 'utf8'));
    if (apps.length === 0) throw new Refused('docs/library.md shows no cdk init app');
    for (const version of versions) {
      const parent = join(work, `aws-cdk-lib-${version.awsCdkLib}`);
      // One install per version, shared by its apps (each app folder links it).
      let installed: string | undefined;
      for (const app of apps) {
        const name = `aws-cdk-lib ${version.awsCdkLib} (${version.label}), docs/library.md #${app.index + 1} (${app.bin})`;
        const dir = cdkInit(join(parent, `app${app.index}`), app.folder);
        if (installed === undefined) {
          process.stdout.write(
            `  npm install aws-cdk-lib@${version.awsCdkLib} constructs@${version.constructs} cdk-nag@^3 ...\n`,
          );
          try {
            installFromRegistry(dir, packed, version);
          } catch (error) {
            throw new Refused(`could not install the consumer app's packages: ${(error as Error).message}`);
          }
          installed = join(dir, 'node_modules');
        } else {
          symlinkSync(installed, join(dir, 'node_modules'), 'dir');
        }
        writeFiles(dir, initFilesOf(app));
        const synth = cdkSynth(dir);
        const problems = [
          ...(synth.status === 0
            ? []
            : [
                `cdk synth exited ${synth.status}:\n${synth.output.trim().split('\n').slice(-25).join('\n')}`,
              ]),
          ...(synth.nag.plugins.includes('AwsSolutions') && synth.nag.plugins.includes('Serverless')
            ? []
            : [`cdk-nag did not report (packs: ${synth.nag.plugins.join(', ') || 'none'})`]),
          ...synth.nag.violations.map((v) => `unacknowledged cdk-nag finding ${v}`),
        ];
        if (problems.length === 0) {
          passed++;
          process.stdout.write(`  ok    ${name}\n`);
        } else {
          failures.push(`${name}:\n    ${problems.join('\n    ')}`);
          process.stdout.write(`  FAIL  ${name}\n`);
        }
      }
    }
  } catch (error) {
    if (!(error instanceof Refused)) throw error;
    process.stderr.write(`consumer check could not run: ${error.message}\n`);
    return 2;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  for (const failure of failures) process.stderr.write(`FAILED ${failure}\n`);
  process.stdout.write(
    `consumer apps: ${passed} passed, ${failures.length} failed (${Math.round((Date.now() - started) / 1000)} s)\n`,
  );
  return failures.length === 0 ? 0 : 1;
}

process.exitCode = main();
