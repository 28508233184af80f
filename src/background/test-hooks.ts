/** Test-only hooks: index.ts calls registerTestHooks only under `if (__TEST__)`, so release builds (__TEST__ false) tree-shake this module out. */
import browser from 'webextension-polyfill';
import { onCommand, onMenuClick } from './describe';
import { closeOffscreen, ensureOffscreen, offscreenCreations, offscreenExists } from './offscreen-doc';
import { currentStatus } from './model-status';
import type { CaptionCache } from './caption-cache';

export function registerTestHooks(cache: CaptionCache): void {
  (globalThis as unknown as { altTextTest: unknown }).altTextTest = {
    onMenuClick,
    onCommand,
    closeOffscreen,
    ensureOffscreen,
    offscreenExists,
    offscreenCreations: async () => offscreenCreations(),
    currentStatus,
    cacheCount: () => cache.count(),
    clearCaptionCache: () => cache.clear(),
    /** What the "Describe this image" panel open in this tab announces (null: none open). */
    async panelText(tabId: number): Promise<string | null> {
      const r = (await browser.tabs.sendMessage(tabId, { type: 'test-cs-panel' }).catch(() => null)) as { value?: string } | null;
      return r?.value ?? null;
    },
    async loseWebGpuDevice() {
      return browser.runtime.sendMessage({ type: 'test-os-lose-device' });
    },
    /** The engine's own throughput on these URLs, in the offscreen document, outside the queue. */
    async engineBench(urls: string[], packUrl: string) {
      await ensureOffscreen();
      return browser.runtime.sendMessage({ type: 'test-os-engine-bench', urls, packUrl });
    },
  };
}
