// The Firefox build in Debian's firefox-esr (WebDriver BiDi, puppeteer-core): the same fixture page and the same toy
// model as the Chrome suite. Every eligible image gets its true caption and the never-touch list stays untouched;
// "Describe this image" through the menu API; the popup and options pages load without errors; switching off reverts
// every label; nothing is fetched beyond the page's images and the pack.
import { join } from 'node:path';
import type { Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildFixtures } from './fixtures.mjs';
import { ROOT, TMP, buildExtension, sameCaption, startServer, toyHeldout, toyTemplateCatalogueEnv } from './harness.mjs';
import { MARKER } from './env';
import { FIREFOX_OWN, firstRunPage, goToOwnPage, launchFirefox, startRecordingProxy, type FirefoxWithExtension } from './firefox.mjs';

const ELIGIBLE = ['no-alt', 'space-alt', 'file-alt', 'stop-alt', 'empty-title', 'input-image', 'role-img'];
const packDir = join(ROOT, 'packs/toy');

/** outerHTML per data-test id (open shadow roots included). */
function snapshot(page: Page): Promise<Record<string, string>> {
  return page.evaluate(() => {
    const out: Record<string, string> = {};
    const walk = (root: Document | ShadowRoot) => {
      for (const el of root.querySelectorAll('[data-test]')) out[el.getAttribute('data-test')!] = el.outerHTML;
      for (const el of root.querySelectorAll('*')) if (el.shadowRoot) walk(el.shadowRoot);
    };
    walk(document);
    return out;
  });
}

const labelCount = (page: Page) => page.evaluate(() => document.querySelectorAll('[data-alt-text-generated]').length);

/** In one of the extension's pages: the extension's API (Firefox's own `browser`, promise-based). */
type Api = {
  storage: { local: { get(k: string): Promise<Record<string, unknown>>; set(v: object): Promise<void> } };
  tabs: { query(q: object): Promise<{ id: number; url: string }[]> };
  runtime: { getBackgroundPage(): Promise<Window & { altTextTest: Record<string, (...a: unknown[]) => Promise<unknown>> }> };
};

describe('Firefox: the same extension in firefox-esr', () => {
  let server: Awaited<ReturnType<typeof startServer>>;
  let proxy: Awaited<ReturnType<typeof startRecordingProxy>>;
  let ff: FirefoxWithExtension;
  let ui: Page;
  let page: Page;
  let fx: ReturnType<typeof buildFixtures>;
  let before: Record<string, string>;
  let packUrl: string;

  const setSettings = (patch: Record<string, unknown>) =>
    ui.evaluate(async (p) => {
      const api = (globalThis as unknown as { browser: Api }).browser;
      const got = await api.storage.local.get('settings');
      await api.storage.local.set({ settings: { ...((got.settings as object) ?? {}), ...p } });
    }, patch);

  beforeAll(async () => {
    server = await startServer({ staticDirs: { '/packs/': join(ROOT, 'packs'), '/heldout/': join(packDir, 'heldout') } });
    fx = buildFixtures(toyHeldout(packDir), { packDir, otherOrigin: server.otherOrigin });
    Object.assign(server.routes, fx.routes);
    packUrl = `${server.origin}/packs/toy/`;
    // No preconfigured pack: the extension opens its first-run page, which the test then drives (see firstRunPage).
    const extDir = await buildExtension({
      outDir: join(TMP, 'ext-firefox-e2e'),
      packUrl: '',
      testHooks: true,
      env: { ...toyTemplateCatalogueEnv(), TARGET_BROWSER: 'firefox' },
    });
    proxy = await startRecordingProxy();
    ff = await launchFirefox(extDir, { proxyPort: proxy.port });
    ui = await firstRunPage(ff);
    page = ff.track(await ff.browser.newPage());
    // The page as its author wrote it, then the model chosen as the options page would.
    await setSettings({ enabled: false });
    await page.goto(`${server.origin}/fixtures/basic.html`, { waitUntil: 'load' });
    before = await snapshot(page);
    await setSettings({ enabled: true, model: { kind: 'url', url: packUrl } });
    await page.waitForFunction(
      (n) => document.querySelectorAll('[data-alt-text-generated]').length >= n,
      { timeout: 120_000 },
      ELIGIBLE.length,
    );
  }, 240_000);

  afterAll(async () => {
    await ff?.close();
    await proxy?.close();
    await server?.close();
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
    await setSettings({ enabled: false });
    await page.waitForFunction(() => document.querySelectorAll('[data-alt-text-generated]').length === 0);
    expect(await snapshot(page)).toEqual(before);
    await setSettings({ enabled: true });
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
