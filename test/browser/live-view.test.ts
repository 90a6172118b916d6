/// <reference lib="dom" />
/**
 * `npm start`'s live view in a real headless browser (Debian's chromium, driven by playwright-core):
 * callbacks sent to the local server show up on the page as they happen, typing stops by itself after
 * the expiry window, and a screenshot of each moment is left in test-results/.
 *
 * Chromium comes from Debian (`apt-get install chromium`; .ci/run installs it). Whether the test runs,
 * skips or fails without it is test/support/chromium.ts's decision (CHROMIUM_PATH, REQUIRE_BROWSER_TESTS).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send } from '../../functions/local/send.ts';
import { type LocalServer, startLocalServer } from '../../functions/local/server.ts';
import { browserTestsEnabled, CHROMIUM_ARGS, chromiumPath } from '../support/chromium.ts';

const ARTIFACTS = fileURLToPath(new URL('../../test-results/', import.meta.url));
const MASTER = 'live-view-master-0123456789abcdefghijklmn';
const available = browserTestsEnabled();

describe.skipIf(!available)('live view in headless Chromium', () => {
  let server: LocalServer;
  let browser: Browser;
  let page: Page;
  const post = (status: string, phone: string) =>
    send(
      [status, '--url', server.baseUrl, '--instance', 'LIVE1', '--phone', phone],
      { WEBHOOK_SECRET: MASTER },
      () => {},
    );

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    server = await startLocalServer({
      port: 0,
      secret: MASTER,
      activityExpiryMs: 2_000,
      out: () => {},
      err: () => {},
    });
    browser = await chromium.launch({
      executablePath: chromiumPath as string,
      args: [...CHROMIUM_ARGS],
    });
    page = await browser.newPage({ viewport: { width: 900, height: 600 } });
    await page.goto(`${server.baseUrl}/`);
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  /** Waits until the text a person sees (innerText: rendered, hidden elements left out) does or does not show `text`. */
  const waitForShown = (text: string, shown: boolean, timeout: number) =>
    page.waitForFunction(
      // biome-ignore lint/performance/useDomNodeTextContent: what is on screen is the point, not the DOM text
      ([t, s]) => document.body.innerText.includes(t as string) === s,
      [text, shown] as const,
      { timeout },
    );

  const chat = (phone: string) => page.locator(`li[data-chat="LIVE1/${phone}"] .what`);

  it('shows nothing before the first callback', async () => {
    expect(await page.locator('#empty').textContent()).toBe('No presence yet.');
  });

  it('shows a contact typing as soon as the callback is accepted', async () => {
    expect((await post('COMPOSING', '5511988887777'))?.status).toBe(200);
    await waitForShown('is typing…', true, 5_000);
    expect(await chat('5511988887777').textContent()).toBe('is typing…');
    await page.screenshot({ path: join(ARTIFACTS, 'live-view-typing.png') });
  });

  it('ends the typing by itself after the expiry window, and says why', async () => {
    await waitForShown('is typing…', false, 6_000);
    // A cue that it ended, not a badge that just vanishes.
    expect(await chat('5511988887777').textContent()).toMatch(/^stopped typing \d+ s ago$/);
    await page.screenshot({ path: join(ARTIFACTS, 'live-view-stopped.png') });
    expect(await page.locator('#log').textContent()).toContain(
      'Z-API Chat Activity Stopped · 5511988887777 (expired)',
    );
  });

  it('follows recording, and a contact leaving', async () => {
    await post('RECORDING', '5511977776666');
    await waitForShown('is recording audio…', true, 5_000);
    await page.screenshot({ path: join(ARTIFACTS, 'live-view-recording.png') });
    await post('UNAVAILABLE', '5511977776666');
    await page.waitForFunction(
      () =>
        document
          .querySelector('li[data-chat="LIVE1/5511977776666"] .what')
          ?.textContent?.startsWith('offline'),
      undefined,
      { timeout: 5_000 },
    );
    expect(await page.locator('#log').textContent()).toContain(
      'Z-API Chat Activity Stopped · 5511977776666 (unavailable)',
    );
    await page.screenshot({ path: join(ARTIFACTS, 'live-view-offline.png') });
  });

  it('shows when an offline contact was last seen', async () => {
    await send(
      [
        'UNAVAILABLE',
        '--url',
        server.baseUrl,
        '--instance',
        'LIVE1',
        '--phone',
        '5511966665555',
        '--last-seen',
        '1764072000',
      ],
      { WEBHOOK_SECRET: MASTER },
      () => {},
    );
    await page.waitForFunction(
      () =>
        document
          .querySelector('li[data-chat="LIVE1/5511966665555"] .what')
          ?.textContent?.includes('last seen'),
      undefined,
      { timeout: 5_000 },
    );
  });

  it('fits a 390 px wide phone screen: nothing wider than the viewport', async () => {
    await page.setViewportSize({ width: 390, height: 700 });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow).toBeLessThanOrEqual(0);
    await page.screenshot({ path: join(ARTIFACTS, 'live-view-390.png') });
    await page.setViewportSize({ width: 900, height: 600 });
  });
});
