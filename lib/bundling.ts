/**
 * The Lambda code of this project's functions: one esbuild configuration, used at synth time in
 * this repository and at pack time for the published package.
 *
 * - Installed as a package, the compiled library finds the bundles built when the package was packed
 *   (`dist/bundles/<name>/index.mjs`): the consumer needs no esbuild and no Docker.
 * - In this repository (the library run from its TypeScript source), each synth bundles the current
 *   source with esbuild, so a bundle is never stale.
 * - Apps that skip bundling (unit tests: context `aws:cdk:bundling-stacks: []`) get a stub asset.
 *
 * Bundles: ESM, minified, Node 24, `mainFields: module, main`, the AWS SDK bundled in (a bundled,
 * tree-shaken SDK imports much faster than the runtime's copy; see BENCHMARKS.md), with two stand-ins
 * for SDK parts that can never run in Lambda (functions/shared/bundle/).
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Stack, Stage } from 'aws-cdk-lib';
import { Code } from 'aws-cdk-lib/aws-lambda';
import type { IConstruct } from 'constructs';

export {
  APPSYNC_ENTRIES,
  type AppSyncHandlerName,
  appSyncHandlerCode,
  appSyncOptions,
  buildAppSyncHandler,
} from './appsync-code.ts';

/** The functions and their entry points under functions/. */
export const FUNCTION_ENTRIES = {
  receiver: 'presence-webhook/handler.ts',
  feedPublisher: 'live-feed/publish-handler.ts',
  reconciler: 'fleet/sweep-handler.ts',
  registrar: 'fleet/deploy-handler.ts',
  state: 'presence-store/state-handler.ts',
  read: 'presence-store/read-handler.ts',
  canary: 'canary/handler.ts',
  canaryArrival: 'canary/arrival.ts',
} as const;
export type FunctionName = keyof typeof FUNCTION_ENTRIES;

/** The esbuild target matching the Lambda runtime (lib/presence-function.ts). */
export const ESBUILD_TARGET = 'node24';

/** Where a packed package keeps its bundles, relative to this module once compiled (dist/lib/). */
const PREBUILT = fileURLToPath(new URL('../bundles/', import.meta.url));
/** The repository root, when running from source. */
const SOURCE_ROOT = fileURLToPath(new URL('..', import.meta.url));

/** esbuild options for one function (shared with `npm run build`). */
export function esbuildOptions(name: FunctionName, outfile: string): Record<string, unknown> {
  const functions = join(SOURCE_ROOT, 'functions');
  return {
    entryPoints: [join(functions, FUNCTION_ENTRIES[name])],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: ESBUILD_TARGET,
    minify: true,
    sourcemap: false,
    mainFields: ['module', 'main'],
    alias: {
      '@aws-sdk/credential-provider-node': join(functions, 'shared/bundle/lambda-credentials.ts'),
      '@smithy/core/event-streams': join(functions, 'shared/bundle/no-event-streams.ts'),
    },
    logLevel: 'warning',
    legalComments: 'none',
  };
}

/**
 * What a bundle gets when a bundled CommonJS dependency calls require() for a Node built-in: an ESM
 * module has no `require`, and esbuild's own shim would throw "Dynamic require of ... is not supported".
 */
export const REQUIRE_BANNER =
  "import{createRequire as __cr}from'node:module';const require=__cr(import.meta.url);";

/** Bundles one function into `directory/index.mjs` (esbuild is a devDependency of this repository). */
export function buildBundle(name: FunctionName, directory: string): void {
  const esbuild = createRequire(import.meta.url)('esbuild') as {
    buildSync(options: Record<string, unknown>): { outputFiles: { text: string }[] };
  };
  mkdirSync(directory, { recursive: true });
  const outfile = join(directory, 'index.mjs');
  const options = esbuildOptions(name, outfile);
  // The banner only where a require() call needs it (88 bytes the receiver does not carry).
  const text = esbuild.buildSync({ ...options, write: false }).outputFiles[0]?.text ?? '';
  if (text.includes('Dynamic require of')) esbuild.buildSync({ ...options, banner: { js: REQUIRE_BANNER } });
  else writeFileSync(outfile, text);
}

/** The code of one function for this synth. */
export function functionCode(scope: IConstruct, name: FunctionName): Code {
  const prebuilt = join(PREBUILT, name);
  if (existsSync(join(prebuilt, 'index.mjs'))) return Code.fromAsset(prebuilt);
  if (!existsSync(join(SOURCE_ROOT, 'functions', FUNCTION_ENTRIES[name]))) {
    throw new Error(
      `zapi-presence-eventbridge: the bundle of the ${name} function is missing from ${prebuilt}; reinstall the package`,
    );
  }
  if (!Stack.of(scope).bundlingRequired) return Code.fromAsset(stubDirectory(name));
  // Next to the cloud assembly, where CDK's own bundling works too.
  const directory = join(Stage.of(scope)?.outdir ?? tmpdir(), 'bundling-temp-zapi-presence', name);
  buildBundle(name, directory);
  // Content-addressed: the same source gives the same asset.
  const hash = createHash('sha256')
    .update(readFileSync(join(directory, 'index.mjs')))
    .digest('hex');
  return Code.fromAsset(directory, { assetHash: hash });
}

function stubDirectory(name: FunctionName): string {
  const directory = join(tmpdir(), 'zapi-presence-bundles', `stub-${name}`);
  if (!existsSync(join(directory, 'index.mjs'))) {
    mkdirSync(directory, { recursive: true });
    writeFileSync(
      join(directory, 'index.mjs'),
      `// Stub: this app skipped bundling (aws:cdk:bundling-stacks).\nexport const handler = async () => { throw new Error('not bundled'); };\n`,
    );
  }
  return directory;
}
