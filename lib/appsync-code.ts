/**
 * The code of the AppSync Events handlers (APPSYNC_JS, not Lambda): bundled by esbuild at pack time into
 * dist/bundles/<name>/, or from the current source in this repository. No aws-cdk-lib here, so `npm start`
 * (the local twin) runs the very code a deploy ships without loading the CDK.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GROUPS_CLAIM_PATTERN, GROUPS_CLAIM_PLACEHOLDER } from '../functions/live-feed/settings.ts';

/** Where a packed package keeps its bundles, relative to this module once compiled (dist/lib/). */
const PREBUILT = fileURLToPath(new URL('../bundles/', import.meta.url));
/** The repository root, when running from source. */
const SOURCE_ROOT = fileURLToPath(new URL('..', import.meta.url));

/**
 * The AppSync Events handlers (APPSYNC_JS, not Lambda), under functions/: one ESM file each, bundled
 * without `@aws-appsync/*` (the runtime provides it), not minified (AppSync shows the code; 32 KB at most).
 */
export const APPSYNC_ENTRIES = {
  feedSubscribe: 'live-feed/subscribe-handler.ts',
} as const;
export type AppSyncHandlerName = keyof typeof APPSYNC_ENTRIES;

/** esbuild options for one AppSync handler (shared with `npm run build`). */
export function appSyncOptions(name: AppSyncHandlerName, outfile: string): Record<string, unknown> {
  return {
    entryPoints: [join(SOURCE_ROOT, 'functions', APPSYNC_ENTRIES[name])],
    outfile,
    bundle: true,
    platform: 'neutral',
    format: 'esm',
    target: 'es2020',
    external: ['@aws-appsync/*'],
    minify: false,
    sourcemap: false,
    treeShaking: true,
    legalComments: 'none',
    logLevel: 'warning',
  };
}

/** Bundles one AppSync handler into `directory/index.mjs`. */
export function buildAppSyncHandler(name: AppSyncHandlerName, directory: string): void {
  const esbuild = createRequire(import.meta.url)('esbuild') as {
    buildSync(options: Record<string, unknown>): unknown;
  };
  mkdirSync(directory, { recursive: true });
  esbuild.buildSync(appSyncOptions(name, join(directory, 'index.mjs')));
}

/**
 * The code of one AppSync handler for this synth: the packed bundle, or (in this repository) the current
 * source bundled now (a few milliseconds, so even apps that skip bundling get the real code).
 */
export function appSyncHandlerCode(name: AppSyncHandlerName): string {
  const prebuilt = join(PREBUILT, name, 'index.mjs');
  if (existsSync(prebuilt)) return readFileSync(prebuilt, 'utf8');
  if (!existsSync(join(SOURCE_ROOT, 'functions', APPSYNC_ENTRIES[name]))) {
    throw new Error(
      `zapi-presence-eventbridge: the ${name} handler is missing from ${prebuilt}; reinstall the package`,
    );
  }
  const directory = join(tmpdir(), 'zapi-presence-bundles', `appsync-${process.pid}`, name);
  buildAppSyncHandler(name, directory);
  return readFileSync(join(directory, 'index.mjs'), 'utf8');
}

/** The live feed's onSubscribe handler as deployed: the bundle with the groups claim written in. */
export function subscribeHandlerCode(groupsClaim: string): string {
  if (!GROUPS_CLAIM_PATTERN.test(groupsClaim))
    throw new Error(`LiveFeed: "${groupsClaim}" is not a claim name`);
  const code = appSyncHandlerCode('feedSubscribe');
  const marker = JSON.stringify(GROUPS_CLAIM_PLACEHOLDER);
  const parts = code.split(marker);
  if (parts.length !== 2)
    throw new Error('LiveFeed: the onSubscribe bundle does not hold its claim marker once');
  return parts.join(JSON.stringify(groupsClaim));
}
