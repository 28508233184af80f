/**
 * The engine frame's Worker shim (src/sandbox/module-workers.ts) in Chromium: a module worker starts as a classic one
 * that imports the module, the messages posted before the module listens reach it, in order, and the boot script's
 * blob: URL is revoked once the worker has it.
 *
 * Run: npx vitest run --project browser test/browser/module-workers.test.ts
 */
import { rmSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { REPO } from '../captioner/helpers/packs';
import type { StaticServer } from '../captioner/helpers/static-server';
import { buildTestPage, launchChromium, openReadyPage, serveTestPage } from './launch';

const OUT = resolve(REPO, '.tmp/browser-module-workers');
const BROWSER_TMP = resolve(REPO, '.tmp/chromium-tmp-workers');
let server: StaticServer;
let browser: Browser;
let page: Page;

beforeAll(async () => {
  await buildTestPage('module-workers-page.html', OUT);
  server = await serveTestPage(OUT);
  browser = await launchChromium(BROWSER_TMP);
  page = await openReadyPage(browser, `${server.url}/page/module-workers-page.html`);
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await server?.close();
  rmSync(BROWSER_TMP, { recursive: true, force: true });
});

it('a module worker runs as a classic one, and what was posted before its module listened reaches it in order', async () => {
  const got = await page.evaluate(() =>
    (window as unknown as { echoAfterPause(ms: number, m: string[]): Promise<unknown> }).echoAfterPause(300, ['a', 'b', 'c']),
  );
  // and the boot script's blob: URL was revoked at once (it still ran: the worker had resolved it)
  expect(got).toEqual({ classic: true, echoed: ['a', 'b', 'c'], bootUrlsLeft: 0 });
});
