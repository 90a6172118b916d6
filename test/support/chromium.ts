/**
 * The one place that decides whether the browser tests run: every browser test imports this module.
 *
 * - Chromium is looked for at `CHROMIUM_PATH`, or at /usr/bin/chromium (Debian's `apt-get install
 *   chromium`; playwright-core downloads no browser).
 * - Without it the browser tests skip, with the notice below, whatever `CI` says: GitHub Actions, GitLab
 *   and CircleCI all set CI=true, and a user's CI without Chromium must stay green.
 * - `REQUIRE_BROWSER_TESTS=1` (this project's own CI, .ci/run, sets it) turns a missing Chromium into a
 *   failure instead.
 *
 *   import { browserTestsEnabled, CHROMIUM_ARGS, chromiumPath } from '../support/chromium.ts';
 *   describe.skipIf(!browserTestsEnabled())('my page in headless Chromium', () => { ... });
 */
import { existsSync } from 'node:fs';

export const DEFAULT_CHROMIUM_PATH = '/usr/bin/chromium';

export interface ChromiumLookup {
  /** Where Chromium was found, or undefined when it is not there. */
  readonly path: string | undefined;
  /** Where it was looked for (CHROMIUM_PATH, or the default). */
  readonly lookedAt: string;
  /** REQUIRE_BROWSER_TESTS is set: a missing Chromium fails the browser tests instead of skipping them. */
  readonly required: boolean;
  /** What a skipped browser test prints (and what a required one fails with). */
  readonly notice: string;
}

/** The decision, from an environment (the process's by default). */
export function lookUpChromium(env: NodeJS.ProcessEnv = process.env): ChromiumLookup {
  const lookedAt = env.CHROMIUM_PATH?.trim() || DEFAULT_CHROMIUM_PATH;
  const path = existsSync(lookedAt) ? lookedAt : undefined;
  const required = /^(1|true|yes)$/i.test(env.REQUIRE_BROWSER_TESTS?.trim() ?? '');
  const notice =
    `browser tests skipped: no Chromium at ${lookedAt} (optional: apt-get install chromium, or set ` +
    'CHROMIUM_PATH to its executable; REQUIRE_BROWSER_TESTS=1 makes a missing Chromium an error)';
  return { path, lookedAt, required, notice };
}

const lookup = lookUpChromium();

/** The Chromium this run uses, or undefined when the browser tests skip. */
export const chromiumPath: string | undefined = lookup.path;
/** Whether a missing Chromium fails the run (REQUIRE_BROWSER_TESTS). */
export const browserTestsRequired: boolean = lookup.required;
/** The notice a skipped browser test prints. */
export const browserSkipNotice: string = lookup.notice;

let noticed = false;

/**
 * Call at the top of a browser test file: true when Chromium is there. Without it, prints the notice
 * once and returns false, or throws when REQUIRE_BROWSER_TESTS is set.
 */
export function browserTestsEnabled(): boolean {
  if (chromiumPath !== undefined) return true;
  if (browserTestsRequired) {
    throw new Error(
      `REQUIRE_BROWSER_TESTS is set but there is no Chromium at ${lookup.lookedAt}: apt-get install chromium, or set CHROMIUM_PATH`,
    );
  }
  if (!noticed) process.stderr.write(`${browserSkipNotice}\n`);
  noticed = true;
  return false;
}

/**
 * Launch flags for Chromium on this kind of machine: headless, as root (no sandbox), and none of its
 * background connections (the network is closed; they would be refused at every start).
 */
export const CHROMIUM_ARGS: readonly string[] = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
