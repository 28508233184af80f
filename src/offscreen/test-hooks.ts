/**
 * Test-only hooks of the offscreen document, compiled out of release builds (__TEST__). `test-os-engine-bench`
 * captions URLs straight through the engine, outside the queue: the engine's own throughput, which
 * `npm run bench:page` compares with the throughput seen by pages.
 */
import { toWire } from '../shared/errors';
import type { BackendChoice } from '../shared/settings';
import type { EngineHost } from './engine-host';
import { sourceToBlob } from './pixels';

export function registerOffscreenTestHooks(host: EngineHost): void {
  // Lose the WebGPU device under the running engine, the way a GPU reset or driver crash does.
  chrome.runtime.onMessage.addListener((msg: { type?: string }, sender, reply) => {
    if (msg?.type !== 'test-os-lose-device' || sender.id !== chrome.runtime.id) return false;
    (async () => {
      const ort = (await import('onnxruntime-web/webgpu')) as unknown as { env: { webgpu: { device?: unknown } } };
      const device = (await Promise.resolve(ort.env.webgpu.device)) as { destroy(): void; lost: Promise<{ reason: string }> } | undefined;
      if (!device) return { destroyed: false, backend: host.status.backend };
      device.destroy();
      const info = await device.lost;
      return { destroyed: true, reason: info.reason, backend: host.status.backend };
    })().then(
      (value) => reply({ ok: true, value }),
      (err: unknown) => reply({ ok: false, error: toWire(err) }),
    );
    return true;
  });
  chrome.runtime.onMessage.addListener((msg: { type?: string; urls?: string[]; packUrl?: string; backend?: BackendChoice }, sender, reply) => {
    if (msg?.type !== 'test-os-engine-bench' || sender.id !== chrome.runtime.id) return false;
    (async () => {
      const decoding = { strategy: 'greedy' as const, beams: 1, maxTokens: 30 };
      await host.get(msg.packUrl!, msg.backend ?? 'auto');
      // Bytes first, so that only the engine is timed.
      const blobs = await Promise.all((msg.urls ?? []).map((url) => sourceToBlob({ kind: 'url', url })));
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
