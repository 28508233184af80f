/**
 * Test-only hooks of the offscreen document, compiled out of release builds (__TEST__). `test-os-engine-bench`
 * captions URLs straight through the engine, outside the queue: the engine's own throughput, which
 * `npm run bench:page` compares with the throughput seen by pages.
 */
import browser from 'webextension-polyfill';
import { toWire } from '../shared/errors';
import { addMessageListener } from '../shared/messages';
import type { BackendChoice } from '../shared/settings';
import type { EngineHost } from './engine-host';
import { fetchImage } from './fetch-image';

export function registerOffscreenTestHooks(host: EngineHost): void {
  // Lose the WebGPU device under the running engine, the way a GPU reset or driver crash does.
  addMessageListener((raw, sender, reply) => {
    const msg = raw as { type?: string } | undefined;
    if (msg?.type !== 'test-os-lose-device' || sender.id !== browser.runtime.id) return false;
    host.loseWebGpuDevice().then(
      (value) => reply({ ok: true, value }),
      (err: unknown) => reply({ ok: false, error: toWire(err) }),
    );
    return true;
  });
  addMessageListener((raw, sender, reply) => {
    const msg = raw as { type?: string; urls?: string[]; packUrl?: string; backend?: BackendChoice } | undefined;
    if (msg?.type !== 'test-os-engine-bench' || sender.id !== browser.runtime.id) return false;
    (async () => {
      const decoding = { strategy: 'greedy' as const, beams: 1, maxTokens: 30 };
      await host.load(msg.packUrl!, msg.backend ?? 'auto');
      // Bytes first, so that only the engine is timed.
      const blobs = await Promise.all((msg.urls ?? []).map((url) => fetchImage({ kind: 'url', url })));
      const t0 = performance.now();
      const texts: string[] = [];
      for (const blob of blobs) {
        const r = await host.caption(msg.packUrl!, msg.backend ?? 'auto', Promise.resolve(blob), decoding, new AbortController().signal);
        texts.push(r.text);
      }
      return { ms: performance.now() - t0, texts };
    })().then(
      (value) => reply({ ok: true, value }),
      (err: unknown) => reply({ ok: false, error: toWire(err) }),
    );
    return true;
  });
}
