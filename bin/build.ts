#!/usr/bin/env node
/**
 * `npm run build` (also run by `npm pack`): the package a consumer installs.
 *   dist/lib/, dist/functions/   the library, compiled, with .d.ts types (tsc -p tsconfig.build.json)
 *   dist/cjs/                    the same library for require() (Jest on Node 20, CommonJS tools), built
 *                                from the compiled ESM with aws-cdk-lib, constructs and valibot left out
 *   dist/bundles/<name>/         the Lambda bundles, built here so consumers need no esbuild
 */
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  APPSYNC_ENTRIES,
  type AppSyncHandlerName,
  buildAppSyncHandler,
  buildBundle,
  FUNCTION_ENTRIES,
  type FunctionName,
} from '../lib/bundling.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const dist = join(root, 'dist');
rmSync(dist, { recursive: true, force: true });
execFileSync(
  process.execPath,
  [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'tsconfig.build.json')],
  {
    stdio: 'inherit',
  },
);
for (const name of Object.keys(FUNCTION_ENTRIES) as FunctionName[])
  buildBundle(name, join(dist, 'bundles', name));
for (const name of Object.keys(APPSYNC_ENTRIES) as AppSyncHandlerName[])
  buildAppSyncHandler(name, join(dist, 'bundles', name));

// CommonJS: one file per entry point; `import.meta.url` becomes this file's URL, so the bundles are found
// next to it (dist/cjs/../bundles) as from dist/lib/.
const esbuild = createRequire(import.meta.url)('esbuild') as {
  buildSync(options: Record<string, unknown>): unknown;
};
for (const entry of ['index', 'testing']) {
  esbuild.buildSync({
    entryPoints: [join(dist, 'lib', `${entry}.js`)],
    outfile: join(dist, 'cjs', `${entry}.cjs`),
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    packages: 'external',
    banner: { js: "const __import_meta_url = require('node:url').pathToFileURL(__filename).href;" },
    define: { 'import.meta.url': '__import_meta_url' },
    logLevel: 'warning',
  });
}
console.log(`built ${dist}: lib, types and the ${Object.keys(FUNCTION_ENTRIES).length} Lambda bundles`);
