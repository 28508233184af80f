// The popup: download progress then ready, keyboard use, the label count, and axe with 0 violations.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from './harness.mjs';
import { activeTabId, env, launch, waitForLabels, type Ext } from './env';

async function axeViolations(page: Page): Promise<string[]> {
  // Evaluated rather than added as a <script>: extension pages' CSP (rightly) refuses inline scripts.
  if (!(await page.evaluate(() => 'axe' in window))) await page.evaluate(AXE_SOURCE);
  return page.evaluate(async () => {
    const w = window as unknown as { axe: { run(ctx: unknown, o: unknown): Promise<{ violations: { id: string; help: string }[] }> } };
    return (await w.axe.run(document, { resultTypes: ['violations'] })).violations.map((v) => `${v.id}: ${v.help}`);
  });
}

const AXE_SOURCE = readFileSync(join(ROOT, 'node_modules/axe-core/axe.min.js'), 'utf8');

describe('popup', () => {
  let ext: Ext;
  beforeAll(async () => {
    ext = await launch();
  });
  afterAll(async () => {
    await ext?.close();
  });

  it('shows download progress, then the ready state with the backend', async () => {
    const popup = await ext.context.newPage();
    await popup.addInitScript(() => {
      const seen: string[] = ((window as unknown as { seen: string[] }).seen = []);
      document.addEventListener('DOMContentLoaded', () => {
        const s = document.getElementById('status')!;
        new MutationObserver(() => seen.push(s.textContent ?? '')).observe(s, { childList: true, characterData: true, subtree: true });
      });
    });
    await popup.goto(`chrome-extension://${ext.extensionId}/src/popup/index.html`);
    await expect.poll(() => popup.locator('#status').textContent(), { timeout: 120_000 }).toMatch(/^Ready: .+ on (WASM|WebGPU)\.$/);
    const seen = await popup.evaluate(() => (window as unknown as { seen: string[] }).seen);
    expect(seen.some((t) => /^Downloading the model… \d+%$/.test(t))).toBe(true);
    await popup.close();
  });

  it('counts the labels on the page, is keyboard-usable, and passes axe with 0 violations', async () => {
    const page = await ext.context.newPage();
    await page.goto(`${env.origin}/fixtures/basic.html`);
    await waitForLabels(page, 7);
    const sw = ext.serviceWorker();
    const tabId = await activeTabId(page, sw);
    const popup = await ext.context.newPage();
    await popup.goto(`chrome-extension://${ext.extensionId}/src/popup/index.html?tab=${tabId}`);
    await expect.poll(() => popup.locator('#count').textContent()).toBe('Labels added on this page: 7');
    expect(await popup.locator('#site-label').textContent()).toBe('On for 127.0.0.1');
    // Chrome grants the manifest's host permissions at install, so the request for access to websites stays hidden.
    expect(await sw.evaluate(() => chrome.permissions.contains({ origins: ['<all_urls>'] }))).toBe(true);
    expect(await popup.locator('#access').isHidden()).toBe(true);

    // Keyboard: Tab to the site switch, Space turns auto-alt off for this site, and the page's labels go.
    await popup.locator('body').focus();
    let guard = 0;
    while ((await popup.evaluate(() => document.activeElement?.id)) !== 'site' && guard++ < 20) await popup.keyboard.press('Tab');
    expect(await popup.evaluate(() => document.activeElement?.id)).toBe('site');
    await popup.keyboard.press('Space');
    await page.waitForFunction(() => document.querySelectorAll('[data-alt-text-generated]').length === 0);
    await popup.keyboard.press('Space');
    await waitForLabels(page, 7);

    // The decoding choice is a radio group: arrow keys move it.
    await popup.locator('input[name=strategy][value=greedy]').focus();
    await popup.keyboard.press('ArrowDown');
    await expect
      .poll(() => sw.evaluate(async () => ((await chrome.storage.local.get('settings')).settings as { strategy: string }).strategy))
      .toBe('beam');
    await popup.keyboard.press('ArrowUp');
    await expect
      .poll(() => sw.evaluate(async () => ((await chrome.storage.local.get('settings')).settings as { strategy: string }).strategy))
      .toBe('greedy');

    expect(await axeViolations(popup)).toEqual([]);
  });

  it('the options page and the caption page pass axe too', async () => {
    for (const path of ['src/options/index.html', 'src/caption-page/index.html', 'src/onboarding/index.html']) {
      const p = await ext.context.newPage();
      await p.goto(`chrome-extension://${ext.extensionId}/${path}`);
      await p.waitForLoadState('load');
      if (path.startsWith('src/onboarding/')) expect(await p.locator('#access').isHidden()).toBe(true);
      expect(await axeViolations(p), path).toEqual([]);
      await p.close();
    }
  });

  it('the options page imports a pack folder: verified, cached, and started', async () => {
    const p = await ext.context.newPage();
    await p.goto(`chrome-extension://${ext.extensionId}/src/options/index.html`);
    await p.locator('#folder').setInputFiles(join(ROOT, 'packs/toy'));
    await expect
      .poll(() => p.locator('#pack-status').textContent(), { timeout: 120_000 })
      .toMatch(/^Ready: Toy shapes \(test model\) on WASM\./);
    // Listed by name under Advanced, and in use as an imported folder (no made-up URL).
    await expect.poll(() => p.locator('#sources').textContent()).toContain('Toy shapes (test model) (imported folder)');
    const sw = ext.serviceWorker();
    expect(await sw.evaluate(async () => ((await chrome.storage.local.get('settings')).settings as { model: unknown }).model)).toEqual({
      kind: 'folder',
      id: 'toy',
    });
    // Back to the served pack for the other tests.
    await sw.evaluate(async (url) => {
      const got = await chrome.storage.local.get('settings');
      await chrome.storage.local.set({ settings: { ...(got.settings as object), model: { kind: 'url', url } } });
    }, env.packUrl);
    await p.close();
  });

  it('the caption page describes a chosen file', async () => {
    const p = await ext.context.newPage();
    await p.goto(`chrome-extension://${ext.extensionId}/src/caption-page/index.html`);
    const caption = env.expected['no-alt'];
    const html = await (await fetch(`${env.origin}/fixtures/basic.html`)).text();
    const src = /<img data-test="no-alt" src="([^"]+)"/.exec(html)![1];
    const bytes = await (await fetch(`${env.origin}${src}`)).arrayBuffer();
    await p.locator('#file').setInputFiles({ name: 'picture.png', mimeType: 'image/png', buffer: Buffer.from(bytes) });
    await expect
      .poll(async () => (await p.locator('#out').textContent())?.toLowerCase().replace(/\.$/, ''), { timeout: 60_000 })
      .toBe(caption.replace(/\.$/, ''));
    expect(await p.locator('#copy').isDisabled()).toBe(false);
  });
});
