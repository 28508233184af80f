/**
 * The one place that knows the engine's API (src/captioner/index.ts). The engine is imported lazily, so the
 * document answers messages at once and the runtime loads only when a caption is first needed.
 */
import type { Decoding } from '../shared/messages';
import type { BackendChoice } from '../shared/settings';
import type { ResolvedPack } from './pack-resolver';

export interface EngineHandle {
  packId: string;
  packName: string;
  backend: string;
  backendReason: string;
  caption(image: Blob, decoding: Decoding, signal: AbortSignal): Promise<{ text: string; packId: string; backend: string; confidence: number }>;
  dispose(): Promise<void>;
}

export interface OpenHooks {
  onProgress(done: number, total: number): void;
  onManifest(id: string, name: string): void;
  /** The engine switched backend at run time (e.g. the WebGPU device was lost): the status must say so. */
  onFallback?(backend: string, reason: string): void;
}

const engine = () => import('../captioner/index');

/** Open the captioner on a pack from the web, or from the pack store (installed models and imported folders). */
export async function openCaptioner(pack: ResolvedPack, backend: BackendChoice, hooks: OpenHooks): Promise<EngineHandle> {
  const { createCaptioner, loadCachedPack } = await engine();
  let named = false;
  const c = await createCaptioner({
    pack: pack.kind === 'stored' ? await loadCachedPack(pack.storeId, { onProgress: (p) => hooks.onProgress(p.bytes, p.total) }) : pack.url,
    backend,
    // Bundled runtime files (dist/ort/), never a CDN; without wasmPaths, threads > 1 hangs in an extension.
    wasmPaths: chrome.runtime.getURL('ort/'),
    onProgress: (p) => {
      if (!named) {
        named = true;
        hooks.onManifest(p.packId, '');
      }
      hooks.onProgress(p.bytes, p.total);
    },
    onEvent: (e) => {
      if (e.type === 'fallback') {
        console.warn(`[alt-text] ${e.from} failed, using ${e.to}: ${e.reason}`);
        hooks.onFallback?.(e.to, e.reason);
      }
    },
  });
  const { id, name } = c.manifest;
  return {
    packId: id,
    packName: name,
    get backend() {
      return c.backend;
    },
    get backendReason() {
      return c.backendReason;
    },
    async caption(image, decoding, signal) {
      const r = await c.caption(image, { strategy: decoding.strategy, beams: decoding.beams, maxTokens: decoding.maxTokens, signal });
      return { text: r.text, confidence: r.confidence, backend: r.backend, packId: id };
    },
    dispose: () => c.dispose(),
  };
}

/** Delete every downloaded pack; returns how many there were. */
export async function clearCachedPacks(): Promise<number> {
  const { listCachedPacks, deleteCachedPack } = await engine();
  const packs = await listCachedPacks();
  for (const p of packs) await deleteCachedPack(p.id);
  return packs.length;
}
