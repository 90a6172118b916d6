#!/usr/bin/env node
/**
 * `npm run build` (also run by `npm pack`): the package a consumer installs.
 *   dist/lib/, dist/functions/   the library, compiled, with .d.ts types (tsc -p tsconfig.build.json)
 *   dist/bundles/<name>/         the three Lambda bundles, built here so consumers need no esbuild
 */
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildBundle, FUNCTION_ENTRIES, type FunctionName } from '../lib/bundling.ts';

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
console.log(`built ${dist}: lib, types and the ${Object.keys(FUNCTION_ENTRIES).length} Lambda bundles`);
