/**
 * test/support/chromium.ts, the switch every browser test goes through: without Chromium the browser
 * tests skip with their notice whatever CI says (a user's CI sets CI=true), and fail only when
 * REQUIRE_BROWSER_TESTS asks for them (this project's .ci/run does).
 *
 * The end-to-end cases run the agent page's browser test in a child vitest, as `npm test` would under CI.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { DEFAULT_CHROMIUM_PATH, lookUpChromium } from '../support/chromium.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const MISSING = '/nonexistent/zapi-presence/chromium';

describe('lookUpChromium', () => {
  it('finds nothing at a CHROMIUM_PATH that does not exist, and does not require it under CI=true', () => {
    const found = lookUpChromium({ CI: 'true', CHROMIUM_PATH: MISSING });
    expect(found).toMatchObject({ path: undefined, lookedAt: MISSING, required: false });
    expect(found.notice).toContain(`no Chromium at ${MISSING}`);
    expect(found.notice).toContain('CHROMIUM_PATH');
  });

  it('requires it only when REQUIRE_BROWSER_TESTS says so', () => {
    for (const value of ['1', 'true', 'yes'])
      expect(lookUpChromium({ CHROMIUM_PATH: MISSING, REQUIRE_BROWSER_TESTS: value }).required).toBe(true);
    for (const value of ['', '0', 'false'])
      expect(lookUpChromium({ CI: '1', CHROMIUM_PATH: MISSING, REQUIRE_BROWSER_TESTS: value }).required).toBe(
        false,
      );
  });

  it('uses CHROMIUM_PATH when it exists, and Debian’s path otherwise', () => {
    expect(lookUpChromium({ CHROMIUM_PATH: process.execPath }).path).toBe(process.execPath);
    expect(lookUpChromium({}).lookedAt).toBe(DEFAULT_CHROMIUM_PATH);
  });
});

/** Runs the agent page's browser test in a child vitest with this environment. */
function browserTestRun(extra: Record<string, string>) {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  if (!('REQUIRE_BROWSER_TESTS' in extra)) delete env.REQUIRE_BROWSER_TESTS;
  const run = spawnSync(
    process.execPath,
    [
      fileURLToPath(new URL('vitest.mjs', new URL('../../node_modules/vitest/', import.meta.url))),
      'run',
      'test/browser/agent-page.test.ts',
    ],
    { cwd: ROOT, env, encoding: 'utf8', timeout: 120_000 },
  );
  return { status: run.status, output: `${run.stdout}\n${run.stderr}` };
}

describe('npm test without Chromium', () => {
  it('passes under CI=true: the browser test skips with its notice', () => {
    const { status, output } = browserTestRun({ CI: 'true', CHROMIUM_PATH: MISSING });
    expect(output).toContain(`browser tests skipped: no Chromium at ${MISSING}`);
    expect(output).toMatch(/skipped/);
    expect(status, output).toBe(0);
  }, 120_000);

  it('fails when REQUIRE_BROWSER_TESTS asks for the browser tests (as .ci/run does)', () => {
    const { status, output } = browserTestRun({
      CI: 'true',
      CHROMIUM_PATH: MISSING,
      REQUIRE_BROWSER_TESTS: '1',
    });
    expect(status).not.toBe(0);
    expect(output).toContain(`REQUIRE_BROWSER_TESTS is set but there is no Chromium at ${MISSING}`);
  }, 120_000);
});
