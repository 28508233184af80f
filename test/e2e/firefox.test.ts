// The Firefox build in Debian's firefox-esr (WebDriver BiDi, puppeteer-core): the same fixture page and the same toy
// model as the Chrome suite. Every eligible image gets its true caption and the never-touch list stays untouched;
// "Describe this image" through the menu API; the popup and options pages load without errors; switching off reverts
// every label; nothing is fetched beyond the page's images and the pack.
import { createServer } from 'node:http';
import { join } from 'node:path';
import type { Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { buildFixtures } from './fixtures.mjs';
import { ROOT, TMP, buildExtension, sameCaption, startServer, toyHeldout, toyTemplateCatalogueEnv } from './harness.mjs';
import { MARKER, outerHtmlByTestId } from './env';
import { FIREFOX_OWN, firstRunPage, goToOwnPage, launchFirefox, startRecordingProxy, type FirefoxWithExtension } from './firefox.mjs';

const ELIGIBLE = ['no-alt', 'space-alt', 'file-alt', 'stop-alt', 'empty-title', 'input-image', 'role-img'];
const packDir = join(ROOT, 'packs/toy');

const snapshot = (page: Page) => page.evaluate(outerHtmlByTestId);

const labelCount = (page: Page) => page.evaluate(() => document.querySelectorAll('[data-alt-text-generated]').length);

/** In one of the extension's pages: the extension's API (Firefox's own `browser`, promise-based). */
type Api = {
  storage: { local: { get(k: string): Promise<Record<string, unknown>>; set(v: object): Promise<void> } };
  tabs: { query(q: object): Promise<{ id: number; url: string }[]> };
  runtime: {
    getBackgroundPage(): Promise<Window & { altTextTest: Record<string, (...a: unknown[]) => Promise<unknown>> }>;
  };
};

/** Settings changed from one of the extension's pages, as the options page would. */
const setSettings = (ui: Page, patch: Record<string, unknown>) =>
  ui.evaluate(async (p) => {
    const api = (globalThis as unknown as { browser: Api }).browser;
    const got = await api.storage.local.get('settings');
    await api.storage.local.set({ settings: { ...((got.settings as object) ?? {}), ...p } });
  }, patch);

let server: Awaited<ReturnType<typeof startServer>>;
let fx: ReturnType<typeof buildFixtures>;
let packUrl: string;
let extDir: string;

beforeAll(async () => {
  server = await startServer({ staticDirs: { '/packs/': join(ROOT, 'packs'), '/heldout/': join(packDir, 'heldout') } });
  fx = buildFixtures(toyHeldout(packDir), { packDir, otherOrigin: server.otherOrigin });
  Object.assign(server.routes, fx.routes);
  packUrl = `${server.origin}/packs/toy/`;
  // No preconfigured pack: the extension opens its first-run page, which the tests then drive (see firstRunPage).
  extDir = await buildExtension({
    outDir: join(TMP, 'ext-firefox-e2e'),
    packUrl: '',
    testHooks: true,
    // No keep-alive grace (release builds keep the model 5 minutes after the last work): the event page's unloading,
    // and the engine coming back after it, are seen within a test.
    env: { ...toyTemplateCatalogueEnv(), TARGET_BROWSER: 'firefox', KEEP_ALIVE_GRACE_MS: '0' },
  });
}, 120_000);

afterAll(async () => {
  await server?.close();
});

describe('Firefox: the same extension in firefox-esr', () => {
  let proxy: Awaited<ReturnType<typeof startRecordingProxy>>;
  let ff: FirefoxWithExtension;
  let ui: Page;
  let page: Page;
  let before: Record<string, string>;

  beforeAll(async () => {
    proxy = await startRecordingProxy();
    ff = await launchFirefox(extDir, { proxyPort: proxy.port });
    ui = await firstRunPage(ff);
    page = ff.track(await ff.browser.newPage());
    // The page as its author wrote it, then the model chosen as the options page would.
    await setSettings(ui, { enabled: false });
    await page.goto(`${server.origin}/fixtures/basic.html`, { waitUntil: 'load' });
    before = await snapshot(page);
    await setSettings(ui, { enabled: true, model: { kind: 'url', url: packUrl } });
    await page.waitForFunction(
      (n) => document.querySelectorAll('[data-alt-text-generated]').length >= n,
      { timeout: 120_000 },
      ELIGIBLE.length,
    );
  }, 240_000);

  afterAll(async () => {
    await ff?.close();
    await proxy?.close();
  });

  it('every eligible image gets the toy caption, marked as generated', async () => {
    for (const id of ELIGIBLE) {
      const el = await page.$(`[data-test="${id}"]`);
      const [label, marker] = await el!.evaluate((e) => [e.getAttribute('aria-label'), e.getAttribute('data-alt-text-generated')]);
      expect(label, id).toMatch(new RegExp(`^${MARKER}`));
      expect(sameCaption(label!.slice(MARKER.length), fx.expected[id]), `${id}: ${label} vs ${fx.expected[id]}`).toBe(true);
      expect(marker).toBe('toy');
    }
  });

  it('decorative, named, hidden, tiny and broken images stay byte-for-byte untouched', async () => {
    const after = await snapshot(page);
    for (const id of fx.untouchedIds) expect(after[id], id).toBe(before[id]);
  });

  it('"Describe this image" through the menu API: the panel announces the caption, even for a named image', async () => {
    await page.bringToFront();
    const src = await page.$eval('[data-test="named-alt"]', (el) => (el as HTMLImageElement).currentSrc);
    const pageUrl = page.url();
    const text = await ui.evaluate(
      async (srcUrl, url) => {
        const api = (globalThis as unknown as { browser: Api }).browser;
        const tab = (await api.tabs.query({})).find((t) => t.url === url)!;
        const hooks = (await api.runtime.getBackgroundPage()).altTextTest;
        if (!(await hooks.onMenuClick({ menuItemId: 'describe-image', srcUrl, frameId: 0 }, { id: tab.id }))) return 'not opened';
        // The panel's shadow root is closed to the page (and to BiDi): the content script reports its live region.
        for (let i = 0; i < 300; i += 1) {
          const said = (await hooks.panelText(tab.id)) as string | null;
          if (said && !/…$/.test(said)) return said;
          await new Promise((r) => setTimeout(r, 200));
        }
        return 'no caption';
      },
      src,
      pageUrl,
    );
    expect(sameCaption(text, fx.truth['named-alt']), `${text} vs ${fx.truth['named-alt']}`).toBe(true);
  });

  it('the popup and the options page load without errors, and the popup says the model is ready', async () => {
    await goToOwnPage(ui, `${ff.base}src/popup/index.html`);
    await ui.waitForFunction(() => /Ready/.test(document.body.innerText), { timeout: 30_000 });
    // Host permissions granted: nothing asks for them.
    expect(await ui.$eval('#access', (el) => (el as HTMLElement).hidden)).toBe(true);
    await goToOwnPage(ui, `${ff.base}src/options/index.html`);
    await ui.waitForFunction(() => document.querySelector('#marker') !== null);
    expect(ff.errors).toEqual([]);
  });

  it('switching off removes every label; switching back on restores them', async () => {
    await setSettings(ui, { enabled: false });
    await page.waitForFunction(() => document.querySelectorAll('[data-alt-text-generated]').length === 0);
    expect(await snapshot(page)).toEqual(before);
    await setSettings(ui, { enabled: true });
    await page.waitForFunction(
      (n) => document.querySelectorAll('[data-alt-text-generated]').length >= n,
      { timeout: 60_000 },
      ELIGIBLE.length,
    );
    expect(await labelCount(page)).toBeGreaterThanOrEqual(ELIGIBLE.length);
  });

  it('nothing is fetched beyond the page, its images and the pack: no request left the machine', async () => {
    // A positive control first: a request for another host does reach the recording proxy.
    await page.evaluate(() => fetch('https://audit-check.example/ping').catch(() => undefined));
    await expect.poll(() => proxy.log.some((line) => line.startsWith('CONNECT audit-check.example:443'))).toBe(true);
    // Every non-loopback request went to the proxy; only the control and Firefox's own service may be there.
    expect(proxy.log.filter((line) => !FIREFOX_OWN.test(line) && !line.startsWith('CONNECT audit-check.example:'))).toEqual([]);
    const pack = server.log.filter((r) => r.path.startsWith('/packs/')).map((r) => r.path);
    expect(pack.length).toBeGreaterThan(0);
    expect(pack.filter((p) => !p.startsWith('/packs/toy/'))).toEqual([]);
  });
});

describe("Firefox: site access not granted yet (MV3 host permissions are the user's to give)", () => {
  let ff: FirefoxWithExtension;
  afterAll(async () => {
    await ff?.close();
  });

  it('the first-run page and the popup say so and offer to ask; no page is touched until the user allows it', async () => {
    ff = await launchFirefox(extDir, { grantSites: false, prefs: { 'extensions.webextOptionalPermissionPrompts': false } });
    const ui = await firstRunPage(ff);
    await ui.waitForFunction(() => !(document.querySelector('#access') as HTMLElement).hidden, { timeout: 10_000 });
    expect(await ui.$eval('#access button', (b) => b.textContent)).toMatch(/Allow on all websites/);
    await setSettings(ui, { model: { kind: 'url', url: packUrl } });
    await goToOwnPage(ui, `${ff.base}src/popup/index.html`);
    await ui.waitForFunction(() => !(document.querySelector('#access') as HTMLElement).hidden, { timeout: 10_000 });
    expect(await ui.$eval('#access', (el) => (el as HTMLElement).innerText)).toMatch(
      /Not allowed to read websites yet: nothing is labelled/,
    );
    // The content script cannot run: the page stays as its author wrote it. (Nor can the model be downloaded from a
    // site without the permission: the loopback server sends no CORS headers.)
    const page = ff.track(await ff.browser.newPage());
    await page.goto(`${server.origin}/fixtures/basic.html`, { waitUntil: 'load' });
    await new Promise((r) => setTimeout(r, 3000));
    expect(await labelCount(page)).toBe(0);

    // The user presses Allow (Firefox's prompt answered yes by a pref): the part hides and the outcome is announced.
    // Pages load the content script from then on (Firefox does not add it to pages already open: this one reloads).
    await ui.bringToFront();
    await ui.click('#allow');
    await ui.waitForFunction(() => (document.querySelector('#access') as HTMLElement).hidden, { timeout: 10_000 });
    expect(await ui.$eval('#access-status', (el) => el.textContent)).toMatch(/^Allowed on all websites/);
    await page.bringToFront();
    await page.reload({ waitUntil: 'load' });
    await page.waitForFunction(
      (n) => document.querySelectorAll('[data-alt-text-generated]').length >= n,
      { timeout: 60_000 },
      ELIGIBLE.length,
    );
    expect(ff.errors).toEqual([]);
  });
});

describe('Firefox: the event page unloads when idle, and the engine with it', () => {
  let ff: FirefoxWithExtension;
  afterAll(async () => {
    await ff?.close();
  });

  it('with a 2.5 s idle timeout and a pack that takes 6 s to answer, a page is labelled in full, and again after the engine went away', async () => {
    // Firefox's timeout is 30 s, and a full-size model takes longer than that to download and open. Here the pack's
    // first file answers after 6 s, with no progress meanwhile: only the engine page's beats (offscreen/keep-alive.ts)
    // keep the event page, and the engine framed in it, while it waits.
    const slow = createServer((req, res) => {
      setTimeout(
        () => {
          void fetch(`${server.origin}${req.url}`).then(async (r) => {
            res.writeHead(r.status, { 'content-type': r.headers.get('content-type') ?? 'application/octet-stream' });
            res.end(Buffer.from(await r.arrayBuffer()));
          });
        },
        req.url!.endsWith('/pack.json') ? 6000 : 0,
      );
    });
    await new Promise<void>((r) => slow.listen(0, '127.0.0.1', r));
    onTestFinished(() => new Promise<void>((r) => slow.close(() => r())));
    const slowPack = `http://127.0.0.1:${(slow.address() as { port: number }).port}/packs/toy/`;
    ff = await launchFirefox(extDir, { prefs: { 'extensions.background.idle.timeout': 2500 } });
    const ui = await firstRunPage(ff);
    await setSettings(ui, { model: { kind: 'url', url: slowPack } });
    /**
     * When the event page now running started (asking wakes it, if it was unloaded); and its stored captions are
     * forgotten, so that the next round's labels come from the engine, not from the cache.
     */
    const eventPageStarted = () =>
      ui.evaluate(async () => {
        const bg = await (globalThis as unknown as { browser: Api }).browser.runtime.getBackgroundPage();
        await bg.altTextTest.clearCaptionCache();
        return bg.performance.timeOrigin;
      });
    const gallery = `${server.origin}/fixtures/gallery.html?n=24`;
    const started: number[] = [];
    for (const round of [1, 2]) {
      const page = ff.track(await ff.browser.newPage());
      await page.goto(gallery, { waitUntil: 'load' });
      const want = await page.$$eval('figure[data-kind=missing] img, figure[data-kind=file-name] img', (els) => els.length);
      await page.waitForFunction((n) => document.querySelectorAll('img[data-alt-text-generated]').length >= n, { timeout: 120_000 }, want);
      const wrong = await page.$$eval('img[data-alt-text-generated]', (els) =>
        els.filter((e) => !e.getAttribute('aria-label')!.startsWith('Appears to be: ')).map((e) => e.outerHTML),
      );
      expect(wrong, `round ${round}`).toEqual([]);
      await page.close();
      started.push(await eventPageStarted());
      // Idle long enough for the event page to be unloaded before the next round.
      await new Promise((r) => setTimeout(r, 6000));
    }
    // Round 2 ran on an event page (and an engine) started afresh: the first had been unloaded, with its engine.
    expect(started[1]).toBeGreaterThan(started[0]);
    expect(ff.errors).toEqual([]);
  });
});
