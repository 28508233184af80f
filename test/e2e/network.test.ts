// Network audit through CDP: the only requests the extension makes are fetches of images the page shows and the
// pack's files from the configured source (plus its own chrome-extension:// files). No image, URL or caption leaves.
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Frame } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TMP, auditVerdict, startNetworkAudit, type AuditVerdict } from './harness.mjs';
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

const AUDIT_NAME = 'network-audit';

describe('network audit', () => {
  let ext: Ext | null;
  beforeAll(async () => {
    ext = await launch({ debugPort: true, name: AUDIT_NAME });
  });
  afterAll(async () => {
    await ext?.close();
  });

  it('lists every request the extension makes: only images the pages show, and the pack', async () => {
    // The offscreen document exists before the audit attaches, so its very first request (pack.json) is seen.
    await ext!
      .serviceWorker()
      .evaluate(() => (globalThis as unknown as { altTextTest: { ensureOffscreen(): Promise<void> } }).altTextTest.ensureOffscreen());
    const audit = await startNetworkAudit(ext!.cdpUrl!, ext!.extensionId);
    const shown = new Set<string>();
    const page = await ext!.context.newPage();
    for (const [path, labels] of [
      ['/fixtures/basic.html', 7],
      ['/fixtures/dynamic.html', 7],
    ] as const) {
      await page.goto(`${env.origin}${path}`);
      await waitForLabels(page, labels);
      for (const f of page.frames()) for (const u of await shownImages(f)) shown.add(u);
    }
    await audit.stop();

    // pack.json and every file it lists (CLIP's text tower too, when the pack has one)
    const listed = ((await (await fetch(`${env.packUrl}pack.json`)).json()) as { files: Record<string, { path: string }> }).files;
    const packFiles = ['pack.json', ...Object.values(listed).map((f) => f.path)].map((f) => `${env.packUrl}${f}`);
    const network = audit.requests.filter((r) => !r.url.startsWith(`chrome-extension://${ext!.extensionId}/`));
    // A blob: URL of the engine's sandboxed frame (origin "null") is a script the frame made itself, never the network:
    // the heartbeat's worker (src/sandbox/heartbeat.ts) and ORT's thread boots (module-workers.ts).
    const ownBlob = (r: { context: string; url: string }) => r.context === 'iframe' && r.url.startsWith('blob:null/');
    const unexpected = network.filter((r) => !shown.has(r.url) && !packFiles.includes(r.url) && !r.url.startsWith('data:') && !ownBlob(r));
    // The audit saw real traffic: the pack download and image fetches, from the offscreen document.
    expect(network.some((r) => r.url === `${env.packUrl}pack.json`)).toBe(true);
    expect(network.filter((r) => shown.has(r.url)).length).toBeGreaterThan(5);
    expect(unexpected).toEqual([]);
    console.info(`network audit: ${network.length} requests from the extension, all pack files or page images`);
  });

  it("every launch of this run was audited, this file's too, and the audit flags what it must", async () => {
    // Closing writes this file's own launch record (launch() in env.ts), so the sum below is never empty.
    await ext!.close();
    ext = null;
    // launch() (env.ts) records each browser's extension requests under .tmp/net-audit/ and fails the test that
    // launched it on any unexpected one; this sums up the launches of this run so far (files after global setup).
    const dir = join(TMP, 'net-audit');
    const since = statSync(join(TMP, 'e2e-env.json')).mtimeMs;
    const runs = existsSync(dir)
      ? readdirSync(dir)
          .filter((f) => statSync(join(dir, f)).mtimeMs >= since)
          .map((f) => ({ file: f, ...(JSON.parse(readFileSync(join(dir, f), 'utf8')) as AuditVerdict) }))
      : [];
    const mine = runs.filter((r) => r.file.endsWith(`-${AUDIT_NAME}.json`));
    expect(mine.length).toBeGreaterThanOrEqual(1);
    // The record saw real traffic of both allowed kinds: a record of nothing would also have nothing unexpected.
    expect(mine.at(-1)!.counts.pack).toBeGreaterThan(0);
    expect(mine.at(-1)!.counts.pageImage).toBeGreaterThan(5);
    expect(runs.flatMap((r) => r.unexpected)).toEqual([]);
    // The verdict itself: a beacon, a page image fetched again with a query, and a pack file outside the allowed
    // prefix are unexpected; an image the page showed, a redirect hop that started at one, and the pack are not.
    const img = `${env.origin}/heldout/a.png`;
    const verdict = auditVerdict(
      [
        { context: 'offscreen', url: img, method: 'GET' },
        { context: 'offscreen', url: `${env.otherOrigin}/hop.png`, method: 'GET', chainStart: img },
        { context: 'offscreen', url: `${env.packUrl}pack.json`, method: 'GET' },
        { context: 'service_worker', url: `${env.otherOrigin}/beacon?caption=a%20cat`, method: 'POST' },
        { context: 'offscreen', url: `${img}?copy`, method: 'GET' },
        { context: 'offscreen', url: `${env.origin}/packs-elsewhere/pack.json`, method: 'GET' },
      ],
      new Set([img]),
      'x',
      { allow: [new URL('/packs/', env.packUrl).href] },
    );
    expect(verdict.unexpected.map((r) => r.url)).toEqual([
      `${env.otherOrigin}/beacon?caption=a%20cat`,
      `${img}?copy`,
      `${env.origin}/packs-elsewhere/pack.json`,
    ]);
    expect(verdict.counts).toMatchObject({ pack: 1, pageImage: 2 });
    const total = runs.reduce((a, r) => a + r.total, 0);
    console.info(`network audit: ${runs.length} launches in this run, ${total} extension requests, none unexpected`);
  });
});
