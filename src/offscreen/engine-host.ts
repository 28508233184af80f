/**
 * Hosts one lazily created captioner (src/captioner) for the pack in use, and the model's status: downloading with
 * progress, loading, ready on which backend, or an error that says what to do. A status change is broadcast as an
 * os-bg-status event, and can also be asked for.
 */
import { toWire } from '../shared/errors';
import { emit, type Decoding, type ImageSource, type ModelStatus } from '../shared/messages';
import type { BackendChoice } from '../shared/settings';
import { openCaptioner, type EngineHandle } from './engine-adapter';
import { packKey, type ResolvedPack } from './pack-resolver';
import { sourceToBlob } from './pixels';

export class EngineHost {
  private engine: EngineHandle | null = null;
  private opening: Promise<EngineHandle> | null = null;
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

  update(patch: Partial<ModelStatus>): void {
    this.status = { ...this.status, ...patch, queued: this.queued() };
    emit({ type: 'os-bg-status', status: this.status });
  }

  /**
   * The captioner for this pack and backend, created (downloading the pack if needed) on first use. `packUrl` is a
   * pack reference; an installed model is keyed by its store entry, so a finished update is loaded afresh while the
   * old one served every caption until then.
   */
  async get(packUrl: string, backend: BackendChoice): Promise<EngineHandle> {
    // A model not set up yet throws NoPackError here; the worker's status derives "not set up" from the install states.
    const pack = await this.resolve(packUrl);
    const key = `${backend}|${packUrl}|${packKey(pack)}`;
    if (this.key === key) {
      if (this.engine) return this.engine;
      if (this.opening) return this.opening;
    }
    const old = this.engine;
    this.engine = null;
    this.key = key;
    if (old) await old.dispose();
    this.update({ state: 'downloading', packUrl, packId: '', packName: '', progress: null, backend: null, backendReason: '', error: null });
    const opening = openCaptioner(pack, backend, {
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
        return this.get(packUrl, backend);
      }
      this.engine = engine;
      this.update({ state: 'ready', packId: engine.packId, packName: engine.packName, backend: engine.backend, backendReason: engine.backendReason, progress: null });
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

  async caption(packUrl: string, backend: BackendChoice, source: ImageSource | Promise<Blob>, decoding: Decoding, signal: AbortSignal) {
    const [engine, blob] = await Promise.all([this.get(packUrl, backend), source instanceof Promise ? source : sourceToBlob(source, signal)]);
    return engine.caption(blob, decoding, signal);
  }
}
