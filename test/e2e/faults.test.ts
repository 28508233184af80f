// Faults: the service worker stopped mid-queue (CDP), the offscreen document closed or crashed mid-queue, WebGPU on
// and off, the WebGPU device lost mid-run, the browser restarted with captions pending, and broken or missing images
// skipped with a logged reason. In each case the queue finishes after recovery, or a request fails with a named reason.
import type { Page, Worker } from 'playwright-core';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { collectEngineLog } from './engine-log.mjs';
import { sameCaption, toyHeldout } from './harness.mjs';
import { MARKER, env, launch, sendToTarget, stopWorker, type Ext } from './env';

const truth = Object.fromEntries(toyHeldout().map((h) => [h.file, h.caption]));

/** Every eligible gallery image labelled with its true caption. */
async function expectGalleryLabelled(page: Page): Promise<number> {
  await page.waitForFunction(
    () =>
      [...document.querySelectorAll('figure[data-kind=missing] img, figure[data-kind=file-name] img')].every((im) =>
        im.hasAttribute('data-alt-text-generated'),
      ),
    null,
    { timeout: 170_000, polling: 250 },
  );
  const rows = await page.$$eval('figure[data-kind=missing] img, figure[data-kind=file-name] img', (ims) =>
    ims.map((im) => [im.getAttribute('data-file')!, im.getAttribute('aria-label')!]),
  );
  for (const [file, label] of rows) expect(sameCaption(label.slice(MARKER.length), truth[file]), `${file}: ${label}`).toBe(true);
  return rows.length;
}

const hooks = (sw: Worker) => (name: string) =>
  sw.evaluate((n) => (globalThis as unknown as { altTextTest: Record<string, () => Promise<unknown>> }).altTextTest[n](), name);

const waitForSome = (page: Page, n = 2) =>
  page.waitForFunction((k) => document.querySelectorAll('[data-alt-text-generated]').length >= k, n, { timeout: 150_000, polling: 200 });

/** Send a CDP command to one target of the browser; resolves with the target's type. */
const cdpToTarget = async (cdpUrl: string, match: (url: string) => boolean, method: string, params: object = {}): Promise<string> =>
  (await sendToTarget(cdpUrl, match, method, params)).type;

const call0 = (sw: Worker, name: string) => hooks(sw)(name);

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
    const remaining = await page.evaluate(
      () => document.querySelectorAll('figure[data-kind=missing] img:not([data-alt-text-generated])').length,
    );
    expect(remaining).toBeGreaterThan(0);
    // Stop the worker the way Chrome does when it idles: through CDP, from one of the extension's own pages.
    const extPage = await ext.context.newPage();
    await extPage.goto(`chrome-extension://${ext.extensionId}/src/options/index.html`);
    await stopWorker(ext, extPage);
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

  it('the offscreen document navigated away mid-queue (listener gone, still listed) is recreated; the queue finishes', async () => {
    ext = await launch({ name: 'offscreen-gone' });
    const page = await ext.context.newPage();
    await page.goto(`${env.origin}/fixtures/gallery.html?n=24`);
    await waitForSome(page);
    const call = hooks(ext.serviceWorker());
    const createdBefore = (await call('offscreenCreations')) as number;
    await cdpToTarget(ext.cdpUrl!, (u) => u.includes(`${ext!.extensionId}/src/offscreen/`), 'Page.navigate', { url: 'about:blank' });
    expect(await expectGalleryLabelled(page)).toBe(16);
    expect(await call('offscreenExists')).toBe(true);
    expect(await call('offscreenCreations')).toBeGreaterThan(createdBefore);
  });

  it("the engine's process crashed (its sandboxed frame, CDP Page.crash): a new one starts, and every image is labelled", async () => {
    ext = await launch({ name: 'engine-crash' });
    const page = await ext.context.newPage();
    // The engine is up once one image has its label; its frame then crashes before the gallery asks for anything, so
    // every caption of the gallery goes first to a dead frame (a crash in mid-caption raced the toy model's speed).
    await page.goto(`${env.origin}/fixtures/basic.html`);
    await page.waitForFunction(() => !!document.querySelector('[data-alt-text-generated]'), null, { timeout: 170_000 });
    const call = hooks(ext.serviceWorker());
    const createdBefore = (await call('offscreenCreations')) as number;
    const inFrame = (u: string) => u.includes(`${ext!.extensionId}/src/sandbox/`);
    const log = await collectEngineLog(ext.cdpUrl!, ext.extensionId);
    // An out-of-process frame is a target of its own: crashing it crashes only the engine's process.
    expect(await cdpToTarget(ext.cdpUrl!, inFrame, 'Page.crash')).toBe('iframe');
    await page.goto(`${env.origin}/fixtures/gallery.html?n=24`);
    expect(await expectGalleryLabelled(page)).toBe(16);
    // The crash was noticed by the frame's heartbeat (a worker in its process, src/sandbox/heartbeat.ts), within its
    // few seconds, not by the frame's own silence of tens of seconds.
    const verdicts = log.lines().filter((l) => l.text.includes('A new engine will be started'));
    await log.stop();
    expect(verdicts.map((l) => l.text)).toEqual([expect.stringMatching(/heartbeat went silent/)]);
    // The extension lived on: the same offscreen document (never recreated), a new engine frame, the model ready.
    expect(await call('offscreenCreations')).toBe(createdBefore);
    expect(await call('offscreenExists')).toBe(true);
    expect(((await call('currentStatus')) as { state: string }).state).toBe('ready');
  });

  it('the offscreen renderer crashed mid-queue (CDP Page.crash): every pending image fails with a logged reason', async () => {
    // The offscreen document shares the extension's renderer process with the service worker: a crash takes both
    // down, and Chrome terminates the extension until it is reloaded. Nothing inside can recover, which is why the
    // model runs in a frame of its own (the test above); the document itself holds no model. What must hold is that
    // no request is silently lost: each pending image ends labelled or skipped with the reason in the console.
    ext = await launch({ name: 'offscreen-crash' });
    const page = await ext.context.newPage();
    const skipped = new Map<string, string>();
    page.on('console', (m) => {
      const hit = /^\[alt-text\] skipped (\S+): (.*)$/.exec(m.text());
      if (hit) skipped.set(hit[1], hit[2]);
    });
    // A long gallery (40 eligible images), so that many are still pending when the crash comes after the first two.
    await page.goto(`${env.origin}/fixtures/gallery.html?n=60`);
    await waitForSome(page);
    await cdpToTarget(ext.cdpUrl!, (u) => u.includes(`${ext!.extensionId}/src/offscreen/`), 'Page.crash');
    const eligible = () =>
      page.$$eval('figure[data-kind=missing] img, figure[data-kind=file-name] img', (ims) =>
        ims.map((im) => ({ src: (im as HTMLImageElement).currentSrc, labelled: im.hasAttribute('data-alt-text-generated') })),
      );
    await expect
      .poll(async () => (await eligible()).filter((im) => !im.labelled && !skipped.has(im.src)).length, { timeout: 60_000, interval: 500 })
      .toBe(0);
    const failed = (await eligible()).filter((im) => !im.labelled);
    expect(failed.length).toBeGreaterThan(0);
    for (const im of failed) expect(skipped.get(im.src), im.src).toMatch(/\S{6,}/);
  });

  it('the WebGPU device lost mid-run: the engine falls back to WASM, says why, and the queue finishes', async () => {
    ext = await launch({ webgpu: true, name: 'device-lost' });
    const page = await ext.context.newPage();
    await page.goto(`${env.origin}/fixtures/gallery.html?n=12`);
    await waitForSome(page);
    const sw = ext.serviceWorker();
    const call = hooks(sw);
    expect(((await call('currentStatus')) as { backend: string }).backend).toBe('webgpu');
    const lost = (await call('loseWebGpuDevice')) as { ok: boolean; value: { destroyed: boolean; reason: string } };
    expect(lost).toMatchObject({ ok: true, value: { destroyed: true } });
    expect(await expectGalleryLabelled(page)).toBe(8);
    const status = (await call('currentStatus')) as { backend: string; backendReason: string; state: string };
    expect(status.state).toBe('ready');
    expect(status.backend).toBe('wasm');
    expect(status.backendReason).toMatch(/WebGPU/);
  });

  it('the browser restarted with captions pending: the page reloads and its labels complete; describe completes', async () => {
    ext = await launch({ name: 'restart-before' });
    let page = await ext.context.newPage();
    await page.goto(`${env.origin}/fixtures/gallery.html?n=24&s=restart`);
    await waitForSome(page, 3);
    const before = await page.evaluate(
      () =>
        document.querySelectorAll(
          'figure[data-kind=missing] img[data-alt-text-generated], figure[data-kind=file-name] img[data-alt-text-generated]',
        ).length,
    );
    expect(before).toBeLessThan(16);
    // A describe request, from an extension page, in flight when the browser goes down.
    const src = await page.locator('figure[data-kind=missing] img:not([data-alt-text-generated])').last().getAttribute('src');
    const imageUrl = new URL(src!, env.origin).href;
    const file = new URL(imageUrl).pathname.split('/').pop()!;
    type Reply = { ok: boolean; value?: { text: string }; error?: { name: string; message: string } };
    const ask = (p: Page): Promise<Reply> =>
      p.evaluate(
        (url) => chrome.runtime.sendMessage({ type: 'ui-bg-caption', requestId: `restart-${Date.now()}`, source: { kind: 'url', url } }),
        imageUrl,
      );
    const opts = await ext.context.newPage();
    await opts.goto(`chrome-extension://${ext.extensionId}/src/options/index.html`);
    const pending = ask(opts).catch((err: Error): Reply => ({ ok: false, error: { name: 'Closed', message: err.message } }));
    const cached = (await call0(ext.serviceWorker(), 'cacheCount')) as number;
    await ext.close({ keepProfile: true });
    // The in-flight describe either finished before the close, with the true caption, or died with its page or the
    // engine going down; it is asked again below. Any other answer (a wrong caption, a permanent error) is a bug.
    const first = await pending;
    if (first.ok) expect(sameCaption(first.value!.text, truth[file]), `${first.value!.text} vs ${truth[file]}`).toBe(true);
    else
      expect(['Closed', 'AbortError', 'OffscreenUnavailableError', 'ContextInvalidatedError'], JSON.stringify(first)).toContain(
        first.error?.name,
      );

    ext = await ext.relaunch();
    const sw = ext.serviceWorker();
    // The captions made before the restart survived it.
    expect(await call0(sw, 'cacheCount')).toBeGreaterThanOrEqual(cached);
    page = ext.context.pages().find((p) => p.url().includes('gallery.html')) ?? (await ext.context.newPage());
    if (!page.url().includes('gallery.html')) await page.goto(`${env.origin}/fixtures/gallery.html?n=24&s=restart`);
    expect(await expectGalleryLabelled(page)).toBe(16);
    const opts2 = await ext.context.newPage();
    await opts2.goto(`chrome-extension://${ext.extensionId}/src/options/index.html`);
    const again = await ask(opts2);
    expect(again.ok, JSON.stringify(again)).toBe(true);
    expect(sameCaption(again.value!.text, truth[file]), `${again.value!.text} vs ${truth[file]}`).toBe(true);
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
