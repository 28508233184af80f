/**
 * The engine host: one lazily created captioner (src/captioner) for the pack in use, and the model's status
 * (downloading with progress, loading, ready on which backend, or an error that says what to do). A status change is
 * broadcast as an os-bg-status event, and can also be asked for.
 *
 * `EngineHost` is what the message handlers need of it. Each browser has one implementation, in the context that
 * outlives its service worker: Chrome's is OffscreenEngineHost, below, in the offscreen document; Firefox's will run
 * in its background page. This module is also the one place that knows the engine's API (src/captioner/index.ts),
 * which it imports lazily, so the document answers messages at once and the runtime loads only when a caption is
 * first needed.
 */
import browser from 'webextension-polyfill';
import type { EngineCaption, PackLocation, PackProgress } from '../captioner/index';
import { toWire } from '../shared/errors';
import { emit, type Caption, type Decoding, type ImageSource, type ModelStatus } from '../shared/messages';
import type { BackendChoice } from '../shared/settings';
import { fetchImage } from './fetch-image';
import { packKey, type ResolvedPack } from './pack-resolver';

export interface EngineHost {
  /** The model's status right now. */
  readonly status: ModelStatus;
  /**
   * Load the captioner for this pack reference (settings' packRef) and backend, downloading the pack if needed;
   * resolves once it is ready. Progress and failure are in the status too.
   */
  load(packRef: string, backend: BackendChoice): Promise<void>;
  /** Caption one image; `image` may already be fetched (a prefetch started while earlier images were captioned). */
  caption(
    packRef: string,
    backend: BackendChoice,
    image: ImageSource | Promise<Blob>,
    decoding: Decoding,
    signal: AbortSignal,
  ): Promise<Caption>;
  /** Delete every pack in the pack store; returns how many there were. */
  deletePacks(): Promise<number>;
  /** Something the status counts moved (the queue): broadcast the status again. */
  statusChanged(): void;
}

/** A running captioner, as the host uses it. */
interface Engine {
  packId: string;
  packName: string;
  backend: string;
  backendReason: string;
  caption(image: Blob, decoding: Decoding, signal: AbortSignal): Promise<Caption>;
  dispose(): Promise<void>;
}

interface OpenHooks {
  onProgress(done: number, total: number): void;
  onManifest(id: string, name: string): void;
  /** The engine switched backend at run time (e.g. the WebGPU device was lost): the status must say so. */
  onFallback(backend: string, reason: string): void;
}

const captioner = () => import('../captioner/index');

/** Open the captioner on a pack from the web, or from the pack store (installed models and imported folders). */
async function openEngine(from: PackLocation, backend: BackendChoice, hooks: OpenHooks): Promise<Engine> {
  const { createCaptioner, loadPack } = await captioner();
  let named = false;
  const onProgress = (p: PackProgress) => {
    if (!named) {
      named = true;
      hooks.onManifest(p.packId, '');
    }
    hooks.onProgress(p.bytes, p.total);
  };
  const c = await createCaptioner({
    // Not kept in a variable: the pack's bytes (hundreds of MB) must not outlive the sessions made from them.
    pack: await loadPack(from, { onProgress }),
    backend,
    // Bundled runtime files (dist/ort/), never a CDN; without wasmPaths, threads > 1 hangs in an extension.
    wasmPaths: browser.runtime.getURL('ort/'),
    onEvent: (e) => {
      if (e.type === 'fallback') {
        console.warn(`[alt-text] ${e.from} failed, using ${e.to}: ${e.reason}`);
        hooks.onFallback(e.to, e.reason);
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
      const r: EngineCaption = await c.caption(image, {
        strategy: decoding.strategy,
        beams: decoding.beams,
        maxTokens: decoding.maxTokens,
        signal,
      });
      return { text: r.text, confidence: r.confidence, backend: r.backend, packId: id };
    },
    dispose: () => c.dispose(),
  };
}

/** The engine host of Chrome's offscreen document. */
export class OffscreenEngineHost implements EngineHost {
  private engine: Engine | null = null;
  private opening: Promise<Engine> | null = null;
  private key = '';
  status: ModelStatus = {
    state: 'idle',
    packUrl: '',
    packId: '',
    packName: '',
    progress: null,
    backend: null,
    backendReason: '',
    queued: 0,
    error: null,
  };

  constructor(
    private readonly queued: () => number = () => 0,
    /** Where a pack reference's files are read from (pack-resolver.ts); throws NoPackError when none is ready. */
    private readonly resolve: (packRef: string) => Promise<ResolvedPack> = async (url) => ({ kind: 'url', url }),
  ) {}

  private update(patch: Partial<ModelStatus>): void {
    this.status = { ...this.status, ...patch, queued: this.queued() };
    emit({ type: 'os-bg-status', status: this.status });
  }

  statusChanged(): void {
    this.update({});
  }

  async load(packRef: string, backend: BackendChoice): Promise<void> {
    await this.get(packRef, backend);
  }

  /**
   * The captioner for this pack and backend, created (downloading the pack if needed) on first use. An installed
   * model is keyed by its store entry, so a finished update is loaded afresh while the old one served every caption
   * until then.
   */
  private async get(packRef: string, backend: BackendChoice): Promise<Engine> {
    // A model not set up yet throws NoPackError here; the worker's status derives "not set up" from the install states.
    const pack = await this.resolve(packRef);
    const key = `${backend}|${packRef}|${packKey(pack)}`;
    if (this.key === key) {
      if (this.engine) return this.engine;
      if (this.opening) return this.opening;
    }
    const old = this.engine;
    this.engine = null;
    this.key = key;
    if (old) await old.dispose();
    this.update({
      state: 'downloading',
      packUrl: packRef,
      packId: '',
      packName: '',
      progress: null,
      backend: null,
      backendReason: '',
      error: null,
    });
    const opening = openEngine(pack, backend, {
      onProgress: (done, total) => {
        if (this.key === key) this.update({ state: done >= total ? 'loading' : 'downloading', progress: { done, total } });
      },
      onManifest: (id, name) => {
        if (this.key === key) this.update({ packId: id, packName: name });
      },
      onFallback: (backend, reason) => {
        // Only once the engine is up: a fallback while opening is reported by the 'ready' update.
        if (this.key === key && this.engine) this.update({ backend, backendReason: reason });
      },
    });
    this.opening = opening;
    try {
      const engine = await opening;
      if (this.key !== key) {
        await engine.dispose();
        return this.get(packRef, backend);
      }
      this.engine = engine;
      this.update({
        state: 'ready',
        packId: engine.packId,
        packName: engine.packName,
        backend: engine.backend,
        backendReason: engine.backendReason,
        progress: null,
      });
      return engine;
    } catch (err) {
      if (this.key === key) {
        this.key = '';
        this.update({ state: 'error', error: toWire(err), progress: null });
      }
      throw err;
    } finally {
      if (this.opening === opening) this.opening = null;
    }
  }

  async caption(
    packRef: string,
    backend: BackendChoice,
    image: ImageSource | Promise<Blob>,
    decoding: Decoding,
    signal: AbortSignal,
  ): Promise<Caption> {
    const [engine, blob] = await Promise.all([this.get(packRef, backend), image instanceof Promise ? image : fetchImage(image, signal)]);
    return engine.caption(blob, decoding, signal);
  }

  async deletePacks(): Promise<number> {
    const { listCachedPacks, deleteCachedPack } = await captioner();
    const packs = await listCachedPacks();
    for (const p of packs) await deleteCachedPack(p.id);
    return packs.length;
  }
}
