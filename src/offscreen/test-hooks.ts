/**
 * Test-only hooks of the offscreen document, compiled out of release builds (__TEST__). `test-os-engine-bench`
 * captions URLs straight through the engine, outside the queue: the engine's own throughput, which
 * `npm run bench:page` compares with the throughput seen by pages.
 */
import { toWire } from '../shared/errors';
import type { BackendChoice } from '../shared/settings';
import type { EngineHost } from './engine-host';

export function registerOffscreenTestHooks(host: EngineHost): void {
  chrome.runtime.onMessage.addListener((msg: { type?: string; urls?: string[]; packUrl?: string; backend?: BackendChoice }, sender, reply) => {
    if (msg?.type !== 'test-os-engine-bench' || sender.id !== chrome.runtime.id) return false;
    (async () => {
      const decoding = { strategy: 'greedy' as const, beams: 1, maxTokens: 30 };
      await host.get(msg.packUrl!, msg.backend ?? 'auto');
      const t0 = performance.now();
      const texts: string[] = [];
      for (const url of msg.urls ?? []) {
        const r = await host.caption(msg.packUrl!, msg.backend ?? 'auto', { kind: 'url', url }, decoding, new AbortController().signal);
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
