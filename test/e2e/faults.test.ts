// Faults: the service worker stopped mid-queue (CDP), the offscreen document closed mid-queue, WebGPU on and off,
// and broken or missing images skipped with a logged reason.
import type { Page, Worker } from 'playwright-core';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { sameCaption, toyHeldout } from './harness.mjs';
import { MARKER, env, launch, type Ext } from './env';

const truth = Object.fromEntries(toyHeldout().map((h) => [h.file, h.caption]));

/** Every eligible gallery image labelled with its true caption. */
async function expectGalleryLabelled(page: Page): Promise<number> {
  await page.waitForFunction(
    () => [...document.querySelectorAll('figure[data-kind=missing] img, figure[data-kind=file-name] img')].every((im) => im.hasAttribute('data-alt-text-generated')),
    null,
    { timeout: 170_000, polling: 250 },
  );
  const rows = await page.$$eval('figure[data-kind=missing] img, figure[data-kind=file-name] img', (ims) => ims.map((im) => [im.getAttribute('data-file')!, im.getAttribute('aria-label')!]));
  for (const [file, label] of rows) expect(sameCaption(label.slice(MARKER.length), truth[file]), `${file}: ${label}`).toBe(true);
  return rows.length;
}

const hooks = (sw: Worker) => (name: string) =>
  sw.evaluate((n) => (globalThis as unknown as { altTextTest: Record<string, () => Promise<unknown>> }).altTextTest[n](), name);

describe('faults', () => {
  let ext: Ext | undefined;
  afterEach(async () => {
    await ext?.close();
    ext = undefined;
  });
  afterAll(async () => {
    await ext?.close();
  });

  it('a broken image and a 404 are skipped, each with a logged reason', async () => {
    ext = await launch();
    const page = await ext.context.newPage();
    const logs: string[] = [];
    page.on('console', (m) => logs.push(m.text()));
    await page.goto(`${env.origin}/fixtures/basic.html`);
    await expect.poll(() => logs.filter((l) => l.startsWith('[alt-text] skipped')).length, { timeout: 60_000 }).toBeGreaterThanOrEqual(2);
    expect(logs).toContain(`[alt-text] skipped ${env.origin}/broken.png: broken image (it did not load)`);
    expect(logs).toContain(`[alt-text] skipped ${env.origin}/missing.png: broken image (it did not load)`);
    expect(await page.locator('[data-test=broken]').getAttribute('aria-label')).toBeNull();
  });

  it('the service worker stopped mid-queue (CDP): no request is lost', async () => {
    ext = await launch();
    const page = await ext.context.newPage();
    await page.goto(`${env.origin}/fixtures/gallery.html?n=24`);
    await page.waitForFunction(() => document.querySelectorAll('[data-alt-text-generated]').length >= 2, null, { timeout: 120_000 });
    const remaining = await page.evaluate(() => document.querySelectorAll('figure[data-kind=missing] img:not([data-alt-text-generated])').length);
    expect(remaining).toBeGreaterThan(0);
    // Stop the worker the way Chrome does when it idles: through CDP, from one of the extension's own pages.
    const extPage = await ext.context.newPage();
    await extPage.goto(`chrome-extension://${ext.extensionId}/src/options/index.html`);
    const cdp = await ext.context.newCDPSession(extPage);
    const stopped = new Promise<void>((resolve) =>
      cdp.on('ServiceWorker.workerVersionUpdated', (e) => {
        if (e.versions.some((v) => v.scriptURL.includes(ext!.extensionId) && v.runningStatus === 'stopped')) resolve();
      }),
    );
    await cdp.send('ServiceWorker.enable');
    await cdp.send('ServiceWorker.stopAllWorkers');
    await stopped;
    await extPage.close();
    expect(await expectGalleryLabelled(page)).toBe(16);
  });

  it('the offscreen document closed mid-queue is recreated, and the queue finishes', async () => {
    ext = await launch();
    const page = await ext.context.newPage();
    await page.goto(`${env.origin}/fixtures/gallery.html?n=24`);
    await page.waitForFunction(() => document.querySelectorAll('[data-alt-text-generated]').length >= 2, null, { timeout: 120_000 });
    const call = hooks(ext.serviceWorker());
    const createdBefore = (await call('offscreenCreations')) as number;
    await call('closeOffscreen');
    expect(await expectGalleryLabelled(page)).toBe(16);
    expect(await call('offscreenExists')).toBe(true);
    expect(await call('offscreenCreations')).toBe(createdBefore + 1);
  });

  it.each([
    { webgpu: false, backend: 'wasm' },
    { webgpu: true, backend: 'webgpu' },
  ])('WebGPU flag $webgpu: the $backend backend is used and reported, with the same caption', async ({ webgpu, backend }) => {
    ext = await launch({ webgpu });
    const page = await ext.context.newPage();
    await page.goto(`${env.origin}/fixtures/basic.html`);
    await page.waitForFunction(() => !!document.querySelector('[data-test="no-alt"][data-alt-text-generated]'), null, { timeout: 170_000 });
    const status = (await hooks(ext.serviceWorker())('currentStatus')) as { backend: string; backendReason: string; state: string };
    expect(status.state).toBe('ready');
    expect(status.backend).toBe(backend);
    expect(status.backendReason).not.toBe('');
    const label = await page.locator('[data-test="no-alt"]').getAttribute('aria-label');
    expect(sameCaption(label!.slice(MARKER.length), env.expected['no-alt']), `${label} vs true ${env.expected['no-alt']}`).toBe(true);
  });
});
