/// <reference lib="dom" />
/**
 * The example agent page (examples/agent-page/) on the browser client, in headless Chromium against
 * `npm start`'s twin of the live feed, as agents would use it: each fills in the form with its own token.
 * Two agents with different instances each see only their own chats, typing shows within a second of the
 * callback and clears by itself, a dropped connection comes back and fetches the snapshot again, and a
 * hostile chat name arrives byte-exact and is shown as text. Screenshots go to test-results/.
 *
 * Chromium is optional (test/support/chromium.ts decides): without it the test skips with its notice,
 * and fails only when REQUIRE_BROWSER_TESTS asks for it (.ci/run does, and installs Chromium).
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
const MASTER = 'agent-page-master-0123456789abcdefghijklm';
const A = '3C01A2B3C4D5E6F7A8B9C0D1E2F3A4B5';
const B = '9F8E7D6C5B4A39281706F5E4D3C2B1A0';
const HOSTILE = `<img src=x onerror="window.pwned=1">"</script><b>x</b> 😀 & ção`;
const available = browserTestsEnabled();

describe.skipIf(!available)('the agent page in headless Chromium', () => {
  let server: LocalServer;
  let browser: Browser;
  let agentA: Page;
  let agentB: Page;
  const post = (status: string, instance: string, phone: string) =>
    send(
      [status, '--url', server.baseUrl, '--instance', instance, '--phone', phone],
      { WEBHOOK_SECRET: MASTER },
      () => {},
    );

  /** Opens the page as an agent does against AWS: the form, filled in with the outputs and a token. */
  async function signIn(token: string, instances: string[]): Promise<Page> {
    const page = await browser.newPage({ viewport: { width: 900, height: 600 } });
    await page.goto(`${server.baseUrl}/agent`);
    await page.fill('input[name=realtimeUrl]', server.realtimeUrl);
    await page.fill('input[name=httpDomain]', server.httpDomain);
    await page.fill('input[name=snapshotUrl]', server.snapshotUrl);
    await page.fill('input[name=instances]', instances.join(','));
    await page.fill('input[name=token]', token);
    await page.click('button[type=submit]');
    await page.waitForFunction(() => document.getElementById('connection')?.dataset.state === 'live');
    return page;
  }
  const row = (page: Page, instance: string, phone: string) =>
    page.locator(`li[data-chat="${instance}/${phone.replace(/["\\]/g, '\\$&')}"]`);
  const shows = (page: Page, instance: string, phone: string, text: string, timeout = 5_000) =>
    row(page, instance, phone).locator('.what', { hasText: text }).waitFor({ timeout });

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    server = await startLocalServer({
      port: 0,
      secret: MASTER,
      activityExpiryMs: 2_000,
      out: () => {},
      err: () => {},
    });
    browser = await chromium.launch({ executablePath: chromiumPath as string, args: [...CHROMIUM_ARGS] });
    agentA = await signIn(server.issueToken([A]), [A]);
    agentB = await signIn(server.issueToken([B]), [B]);
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it('shows each agent its own instance only, typing within a second of the callback', async () => {
    const started = Date.now();
    await Promise.all([post('COMPOSING', A, '5511900000001'), post('COMPOSING', B, '5511900000002')]);
    await Promise.all([
      shows(agentA, A, '5511900000001', 'is typing…', 1_000),
      shows(agentB, B, '5511900000002', 'is typing…', 1_000),
    ]);
    expect(Date.now() - started).toBeLessThan(1_500);
    await agentA.screenshot({ path: join(ARTIFACTS, 'agent-page-typing.png') });
    expect(await agentA.locator(`li[data-chat^="${B}/"]`).count()).toBe(0);
    expect(await agentB.locator(`li[data-chat^="${A}/"]`).count()).toBe(0);
  });

  it('clears typing by itself when it stops', async () => {
    await post('COMPOSING', A, '5511900000003');
    await shows(agentA, A, '5511900000003', 'is typing…');
    await shows(agentA, A, '5511900000003', 'online', 6_000);
  });

  it('after a dropped connection, reconnects and fetches the snapshot again, with what it missed', async () => {
    const fetched = () => agentA.evaluate(() => window.zapiPresenceFeed?.snapshotsFetched ?? 0);
    const before = await fetched();
    server.dropFeedConnections();
    await post('RECORDING', A, '5511900000004');
    await agentA.waitForFunction(
      () => document.getElementById('connection')?.dataset.state === 'live',
      undefined,
      { timeout: 10_000 },
    );
    await shows(agentA, A, '5511900000004', 'is recording audio…', 10_000);
    expect(await fetched()).toBeGreaterThan(before);
  });

  it('shows a hostile chat name byte-exact, as text', async () => {
    await post('AVAILABLE', A, HOSTILE);
    const chat = row(agentA, A, HOSTILE).locator('.chat');
    await chat.waitFor({ timeout: 5_000 });
    expect(await chat.textContent()).toBe(HOSTILE);
    expect(await agentA.evaluate(() => (window as { pwned?: number }).pwned)).toBeUndefined();
    expect(await agentA.locator('#chats img, #chats b').count()).toBe(0);
    await agentA.screenshot({ path: join(ARTIFACTS, 'agent-page-hostile.png') });
  });

  it('tells an agent an instance it may not see, and shows none of its chats', async () => {
    await post('AVAILABLE', B, '5511900000005');
    const page = await signIn(server.issueToken([A]), [A, B]);
    await page
      .locator('#problems', { hasText: `instance ${B}: your account may not see it` })
      .waitFor({ timeout: 5_000 });
    expect(await page.locator(`li[data-chat^="${B}/"]`).count()).toBe(0);
    await page.close();
  });

  it('the live view at / sees every instance with its all-instances token', async () => {
    const page = await browser.newPage();
    await page.goto(`${server.baseUrl}/`);
    await page.waitForFunction(() => document.getElementById('connection')?.dataset.state === 'live');
    await shows(page, A, '5511900000001', 'online');
    await shows(page, B, '5511900000002', 'online');
    await page.close();
  });

  it('fits a 390 px wide phone screen: nothing wider than the viewport', async () => {
    const page = await browser.newPage({ viewport: { width: 390, height: 700 } });
    await page.goto(`${server.baseUrl}/`);
    await page.waitForFunction(() => document.querySelectorAll('#chats li').length > 0);
    const overflow = await page.evaluate(
      () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
    );
    expect(overflow).toBeLessThanOrEqual(0);
    await page.close();
  });
});
