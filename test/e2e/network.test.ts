// Network audit through CDP: the only requests the extension makes are fetches of images the page shows and the
// pack's files from the configured source (plus its own chrome-extension:// files). No image, URL or caption leaves.
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Frame } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TMP, startNetworkAudit, type AuditVerdict } from './harness.mjs';
import { env, launch, waitForLabels, type Ext } from './env';

/** Every image URL a frame shows (img currentSrc, input[type=image] src, CSS background images), shadow roots too. */
function shownImages(frame: Frame): Promise<string[]> {
  return frame.evaluate(() => {
    const out: string[] = [];
    const walk = (root: Document | ShadowRoot) => {
      for (const el of root.querySelectorAll('*')) {
        if (el instanceof HTMLImageElement && el.currentSrc) out.push(el.currentSrc);
        if (el instanceof HTMLInputElement && el.type === 'image') out.push(el.src);
        const bg = /url\(["']?(.*?)["']?\)/.exec(getComputedStyle(el).backgroundImage);
        if (bg) out.push(new URL(bg[1], document.baseURI).href);
        if (el.shadowRoot) walk(el.shadowRoot);
      }
    };
    walk(document);
    return out;
  });
}

describe('network audit', () => {
  let ext: Ext;
  beforeAll(async () => {
    ext = await launch({ debugPort: true });
  });
  afterAll(async () => {
    await ext?.close();
  });

  it('lists every request the extension makes: only images the pages show, and the pack', async () => {
    // The offscreen document exists before the audit attaches, so its very first request (pack.json) is seen.
    await ext
      .serviceWorker()
      .evaluate(() => (globalThis as unknown as { altTextTest: { ensureOffscreen(): Promise<void> } }).altTextTest.ensureOffscreen());
    const audit = await startNetworkAudit(ext.cdpUrl!, ext.extensionId);
    const shown = new Set<string>();
    const page = await ext.context.newPage();
    for (const [path, labels] of [
      ['/fixtures/basic.html', 7],
      ['/fixtures/dynamic.html', 7],
    ] as const) {
      await page.goto(`${env.origin}${path}`);
      await waitForLabels(page, labels);
      for (const f of page.frames()) for (const u of await shownImages(f)) shown.add(u);
    }
    await audit.stop();

    const packFiles = ['pack.json', 'vision.onnx', 'mapper.onnx', 'decoder.onnx', 'tokenizer.json'].map((f) => `${env.packUrl}${f}`);
    const network = audit.requests.filter((r) => !r.url.startsWith(`chrome-extension://${ext.extensionId}/`));
    const unexpected = network.filter((r) => !shown.has(r.url) && !packFiles.includes(r.url) && !r.url.startsWith('data:'));
    // The audit saw real traffic: the pack download and image fetches, from the offscreen document.
    expect(network.some((r) => r.url === `${env.packUrl}pack.json`)).toBe(true);
    expect(network.filter((r) => shown.has(r.url)).length).toBeGreaterThan(5);
    expect(unexpected).toEqual([]);
    console.info(`network audit: ${network.length} requests from the extension, all pack files or page images`);
  });

  it('every launch of this run was audited too, and none made an unexpected request', () => {
    // launch() (env.ts) records each browser's extension requests under .tmp/net-audit/ and fails the test that
    // launched it on any unexpected one; this sums up the launches of this run so far (files after global setup).
    const dir = join(TMP, 'net-audit');
    const since = statSync(join(TMP, 'e2e-env.json')).mtimeMs;
    const runs = existsSync(dir)
      ? readdirSync(dir)
          .map((f) => join(dir, f))
          .filter((f) => statSync(f).mtimeMs >= since)
          .map((f) => JSON.parse(readFileSync(f, 'utf8')) as AuditVerdict)
      : [];
    const total = runs.reduce((a, r) => a + r.total, 0);
    expect(runs.flatMap((r) => r.unexpected)).toEqual([]);
    console.info(`network audit: ${runs.length} earlier launches in this run, ${total} extension requests, none unexpected`);
  });
});
