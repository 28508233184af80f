// Hostile pages: a page that redefines DOM APIs in its own world, imitates our protocol over window messages, forges
// our marker, dispatches fake events and points images at non-image URLs; captions that contain markup; and what
// the extension exposes to pages (web-accessible resources).
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page, Worker } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sameCaption, startNetworkAudit, toyHeldout } from './harness.mjs';
import { INJECT_CAPTION, hostilePlan } from './fixtures-hostile.mjs';
import { MARKER, activeTabId, env, launch, panelText, setSettings, waitForAnnouncement, type Ext } from './env';

const plan = hostilePlan(toyHeldout());

/** An attribute read with the page's original getAttribute (the page redefined it in its own world). */
const attr = (page: Page, id: string, name: string) =>
  page.evaluate(
    ([id, name]) => {
      const w = window as unknown as { __real?: { get: (this: Element, n: string) => string | null } };
      const el = document.querySelector(`[data-test="${id}"]`)!;
      return w.__real ? w.__real.get.call(el, name) : el.getAttribute(name);
    },
    [id, name] as const,
  );

const menuClick = (sw: Worker, tabId: number, srcUrl: string) =>
  sw.evaluate(
    ([tabId, srcUrl]) =>
      (globalThis as unknown as { altTextTest: { onMenuClick: (i: unknown, t: unknown) => Promise<boolean> } }).altTextTest.onMenuClick(
        { menuItemId: 'describe-image', srcUrl, frameId: 0 },
        { id: tabId },
      ),
    [tabId, srcUrl] as const,
  );

/** The describe panel's shadow root, over CDP: its mode, and the local names of every element in it, sorted. */
async function panelElements(page: Page): Promise<{ mode: string | undefined; elements: string[] } | null> {
  const s = await page.context().newCDPSession(page);
  try {
    const { root } = await s.send('DOM.getDocument', { depth: -1, pierce: true });
    type DomNode = typeof root;
    const all = (n: DomNode): DomNode[] => [n, ...[...(n.children ?? []), ...(n.shadowRoots ?? [])].flatMap(all)];
    const host = all(root).find((n) => n.attributes?.includes('data-alt-text-ui'));
    const shadow = host?.shadowRoots?.[0];
    if (!shadow) return null;
    const elements = all(shadow)
      .filter((n) => n.nodeType === 1)
      .map((n) => n.localName)
      .sort();
    return { mode: shadow.shadowRootType, elements };
  } finally {
    await s.detach();
  }
}

describe('hostile pages', () => {
  let ext: Ext;
  let sw: Worker;
  let audit: Awaited<ReturnType<typeof startNetworkAudit>>;
  let page: Page;

  beforeAll(async () => {
    ext = await launch({ debugPort: true });
    sw = ext.serviceWorker();
    await sw.evaluate(() => (globalThis as unknown as { altTextTest: { ensureOffscreen(): Promise<void> } }).altTextTest.ensureOffscreen());
    audit = await startNetworkAudit(ext.cdpUrl!, ext.extensionId);
    page = await ext.context.newPage();
    await page.goto(`${env.origin}/hostile/spoof.html`);
  });
  afterAll(async () => {
    await audit?.stop();
    await ext?.close();
  });

  it('spoofing: redefined DOM APIs, fake protocol messages and fake events change nothing; the real image is labelled', async () => {
    for (const id of ['plain', 'stripped'])
      await expect.poll(() => attr(page, id, 'data-alt-text-generated'), { timeout: 120_000, interval: 250 }).toBe('toy');
    const label = await attr(page, 'plain', 'aria-label');
    expect(sameCaption(label!.slice(MARKER.length), plan.plain.caption), `${label} vs ${plan.plain.caption}`).toBe(true);
    expect(sameCaption((await attr(page, 'stripped', 'aria-label'))?.slice(MARKER.length) ?? '', plan.stripped.caption)).toBe(true);
    // A forged marker and a forged aria-label are the author's: never overwritten, never removed.
    expect(await attr(page, 'forged', 'aria-label')).toBe('Appears to be: forged by the page');
    expect(await attr(page, 'authored', 'aria-label')).toBeNull();
    expect(await attr(page, 'authored', 'alt')).toBe('Author words');
    // Nothing labelled what it shouldn't: the non-image and non-http images.
    for (const id of ['secret-img', 'secret-input', 'secret-bg', 'file-img', 'ext-img'])
      expect(await attr(page, id, 'aria-label'), id).toBeNull();
  });

  it('spoofing: the page strips our label: we leave it stripped (no tug of war); the forged marker survives switching off', async () => {
    // The page's removeAttribute is a no-op: use the DOM's own, from a fresh frame.
    await page.evaluate(() => {
      const f = document.createElement('iframe');
      document.body.append(f);
      const rm = (f.contentWindow as unknown as { Element: typeof Element }).Element.prototype.removeAttribute;
      rm.call(document.querySelector('[data-test="stripped"]')!, 'aria-label');
      f.remove();
    });
    await expect.poll(() => attr(page, 'stripped', 'data-alt-text-generated')).toBeNull();
    await page.waitForTimeout(1500); // give a tug of war the chance to happen: it must not
    expect(await attr(page, 'stripped', 'aria-label')).toBeNull();
    await setSettings(sw, { enabled: false });
    await expect.poll(() => attr(page, 'plain', 'aria-label')).toBeNull();
    expect(await attr(page, 'forged', 'aria-label')).toBe('Appears to be: forged by the page');
    expect(await attr(page, 'forged', 'data-alt-text-generated')).toBe('toy');
    expect(await attr(page, 'authored', 'data-alt-text-generated')).toBe('toy');
    await setSettings(sw, { enabled: true });
    await expect.poll(() => attr(page, 'plain', 'data-alt-text-generated'), { timeout: 60_000 }).toBe('toy');
  });

  it('spoofing: a fake context menu on another element does not change what "Describe this image" describes', async () => {
    const tabId = await activeTabId(page, sw);
    const src = `${env.origin}/heldout/${plan.plain.file}?spoof`;
    await page
      .locator('[data-test="plain"]')
      .click({ button: 'right' })
      .catch(() => undefined);
    // The page's timer keeps dispatching fake contextmenu/pointerover events on the secret image meanwhile.
    await page.waitForTimeout(300);
    expect(await menuClick(sw, tabId, src)).toBe(true);
    await waitForAnnouncement(page, (t) => sameCaption(t, plan.plain.caption), `"${plan.plain.caption}"`);
    await page.keyboard.press('Escape');
    await expect.poll(() => panelText(page)).toBeNull();
    // Asked for a URL the page shows only as a broken image: refused, not fetched.
    expect(await menuClick(sw, tabId, `${env.origin}/hostile/secret.json`)).toBe(true);
    await waitForAnnouncement(page, (t) => /could not be described/i.test(t), 'a refusal');
    await page.keyboard.press('Escape');
  });

  it('no extension context ever fetched a non-image URL the page pointed at', async () => {
    const secret = audit.requests.filter((r) => /\/hostile\/secret|file:|127\.0\.0\.1:1\//.test(r.url));
    expect(secret).toEqual([]);
    expect(audit.requests.some((r) => r.url.includes(plan.plain.file))).toBe(true);
  });

  it('injection: a caption with markup stays text, in the label and in the describe panel', async () => {
    const url = `${env.origin}/heldout/${plan.inject.file}?inject=1`;
    const key = createHash('sha256').update(`${env.packUrl}|greedy-30|${url}`).digest('hex');
    // Poison the caption cache so that this image's caption is markup.
    await sw.evaluate(async () => (globalThis as unknown as { altTextTest: { cacheCount(): Promise<number> } }).altTextTest.cacheCount());
    await sw.evaluate(
      ([key, text]) =>
        new Promise<void>((resolve, reject) => {
          const r = indexedDB.open('alt-text-captions');
          r.onsuccess = () => {
            const tx = r.result.transaction('captions', 'readwrite');
            tx.objectStore('captions').put({
              key,
              value: { text, packId: 'toy', backend: 'wasm', confidence: 1 },
              usedAt: Date.now() * 1000,
              madeAt: Date.now(),
            });
            tx.oncomplete = () => resolve();
            tx.onerror = () => reject(tx.error);
          };
          r.onerror = () => reject(r.error);
        }),
      [key, INJECT_CAPTION] as const,
    );
    const p2 = await ext.context.newPage();
    await p2.goto(`${env.origin}/hostile/inject.html`);
    await expect.poll(() => attr(p2, 'inject', 'aria-label'), { timeout: 60_000 }).toBe(`${MARKER}${INJECT_CAPTION}`);
    const tabId = await activeTabId(p2, sw);
    expect(await menuClick(sw, tabId, url)).toBe(true);
    // What a screen reader hears: the markup, as text.
    expect(await waitForAnnouncement(p2, (t) => t === INJECT_CAPTION, 'the caption, markup as text', 30_000)).toBe(INJECT_CAPTION);
    const dom = await p2.evaluate(() => ({
      pwned: (window as unknown as { __pwned?: number }).__pwned ?? null,
      imgs: document.querySelectorAll('img').length,
      scripts: document.querySelectorAll('script').length,
      // The page's own scripts cannot reach into the panel: its shadow root is closed.
      shadowRoot: document.querySelector('[data-alt-text-ui]')?.shadowRoot,
    }));
    expect(dom).toEqual({ pwned: null, imgs: 1, scripts: 0, shadowRoot: null });
    // What the panel holds, read over CDP (which pierces closed roots): our elements, nothing the caption brought.
    expect(await panelElements(p2)).toEqual({ mode: 'closed', elements: ['button', 'button', 'div', 'div', 'h2', 'p', 'p', 'style'] });
    await p2.close();
  });

  it('exposure: no web-accessible resource a page can fetch, and the content script still works', async () => {
    const manifest = JSON.parse(readFileSync(join(env.extDir, 'manifest.json'), 'utf8')) as {
      content_scripts: { js: string[] }[];
      web_accessible_resources?: { resources: string[]; use_dynamic_url?: boolean }[];
    };
    const wars = manifest.web_accessible_resources ?? [];
    for (const w of wars) expect(w.use_dynamic_url, JSON.stringify(w)).toBe(true);
    expect(wars.flatMap((w) => w.resources).length).toBeLessThanOrEqual(3);
    expect(wars.flatMap((w) => w.resources).filter((r) => r.includes('*'))).toEqual([]);
    const files = [...manifest.content_scripts.flatMap((c) => c.js), 'manifest.json', 'icons/icon-128.png', 'src/offscreen/index.html'];
    const got = await page.evaluate(
      async ([id, files]) =>
        Promise.all(
          files.map((f) =>
            fetch(`chrome-extension://${id}/${f}`).then(
              (r) => `${f}: HTTP ${r.status}`,
              () => `${f}: refused`,
            ),
          ),
        ),
      [ext.extensionId, files] as const,
    );
    expect(got).toEqual(files.map((f) => `${f}: refused`));
    // ...and the content script, which is not web-accessible, runs: the label is on.
    expect(await attr(page, 'plain', 'data-alt-text-generated')).toBe('toy');
    console.info(`exposure: ${wars.length} web-accessible entries; static URLs refused: ${files.join(', ')}`);
  });
});
