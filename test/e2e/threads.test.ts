// The engine's worker threads: its sandboxed frame is cross-origin isolated (manifest COOP and COEP, the frame's
// `allow`), so it has SharedArrayBuffer and ORT starts worker threads there (src/sandbox/module-workers.ts). A build with
// ENGINE_THREADS=2 runs them even on a 2-core machine, where the automatic choice is one thread; its labels must be the
// model's captions, as with one thread.
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TMP, buildExtension, sameCaption, toyTemplateCatalogueEnv } from './harness.mjs';
import { MARKER, env, launch, sendToTarget, type Ext } from './env';

/** The browser's targets: pages, frames in processes of their own, workers. */
async function targetTypes(cdpUrl: string): Promise<string[]> {
  const browser = await chromium.connectOverCDP(cdpUrl);
  try {
    const s = await browser.newBrowserCDPSession();
    return (await s.send('Target.getTargets')).targetInfos.map((t) => t.type);
  } finally {
    await browser.close().catch(() => null);
  }
}

describe('the engine with worker threads', () => {
  let extDir: string;
  let ext: Ext | undefined;
  beforeAll(async () => {
    extDir = await buildExtension({
      outDir: join(TMP, 'ext-threads'),
      packUrl: env.packUrl,
      testHooks: true,
      env: { ...toyTemplateCatalogueEnv(), ENGINE_THREADS: '2' },
    });
  });
  afterAll(async () => {
    await ext?.close();
  });

  it('its frame is cross-origin isolated, and with 2 threads the page gets the model captions', async () => {
    ext = await launch({ extDir, debugPort: true, name: 'threads' });
    const page = await ext.context.newPage();
    await page.goto(`${env.origin}/fixtures/basic.html`);
    await page.waitForLoadState('load');
    // The images of this page that must be labelled (env.expected covers every fixture page).
    const ids = await page.$$eval(
      '[data-test]',
      (els, want) => els.map((e) => e.getAttribute('data-test')!).filter((id) => want.includes(id)),
      Object.keys(env.expected),
    );
    expect(ids.length).toBeGreaterThan(3);
    await page.waitForFunction(
      (want) => want.every((id) => document.querySelector(`[data-test="${id}"]`)?.hasAttribute('data-alt-text-generated')),
      ids,
      { timeout: 170_000, polling: 250 },
    );
    for (const id of ids) {
      const label = (await page.getAttribute(`[data-test="${id}"]`, 'aria-label')) ?? '';
      expect(label.startsWith(MARKER) && sameCaption(label.slice(MARKER.length), env.expected[id]), `${id}: ${label}`).toBe(true);
    }
    const { result } = await sendToTarget(
      ext.cdpUrl!,
      (u) => u.includes(`${ext!.extensionId}/src/sandbox/`),
      'Runtime.evaluate',
      { expression: '({ isolated: self.crossOriginIsolated, sab: typeof SharedArrayBuffer, origin: self.origin })', returnByValue: true },
      true,
    );
    expect((result as { result: { value: unknown } }).result.value).toEqual({ isolated: true, sab: 'function', origin: 'null' });
    // ORT's one worker thread beside the frame's own (2 threads), and the frame's heartbeat (src/sandbox/heartbeat.ts);
    // a one-thread engine starts only the heartbeat.
    expect((await targetTypes(ext.cdpUrl!)).filter((t) => t === 'worker')).toHaveLength(2);
  });
});
