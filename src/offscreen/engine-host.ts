/**
 * The engine host: one lazily created captioner (src/captioner) for the pack in use, and the model's status
 * (downloading with progress, loading, ready on which backend, or an error that says what to do). A status change is
 * broadcast as an os-bg-status event, and can also be asked for.
 *
 * `EngineHost` is what the message handlers need of it. OffscreenEngineHost, below, serves both browsers from the
 * engine page (src/offscreen/index.html); where that page lives is what differs (src/background/engine-page.ts):
 * Chrome's offscreen document, or a frame of Firefox's event page.
 *
 * The captioner itself runs in a frame of its own (sandbox-engine.ts, src/sandbox/). In Chrome it is a sandboxed
 * page, a process of its own: when that process dies, the frame is replaced and the caption it was making is asked
 * once more, while a crash here would take the whole extension down. (Firefox has no manifest sandbox: there the frame
 * is an ordinary extension page in the extension's process, and the same code runs it.) This module reads the pack (the pack store is this document's IndexedDB, which the frame
 * cannot open) with the engine's loader, imported lazily so that the document answers messages at once.
 */
import browser from 'webextension-polyfill';
import type { PackLocation, PackProgress } from '../captioner/index';
import { EngineCrashedError, ModelChangedError, fromWire, toWire } from '../shared/errors';
import { LIMITS } from '../shared/limits';
import { emit, type Caption, type Decoding, type ImageSource, type ModelStatus } from '../shared/messages';
import type { BackendChoice } from '../shared/settings';
import { fetchImage } from './fetch-image';
import type { Settled } from './inference-queue';
import { packKey, type ResolvedPack } from './pack-resolver';
import { startSandboxEngine, type Engine, type EngineEvents } from './sandbox-engine';

export interface EngineHost {
  /** The model's status right now. */
  readonly status: ModelStatus;
  /**
   * Load the captioner for this pack reference (settings' packRef) and backend, downloading the pack if needed;
   * resolves once it is ready. Progress and failure are in the status too.
   */
  load(packRef: string, backend: BackendChoice): Promise<void>;
  /**
   * Caption one image; `image` may already be fetched (a prefetch started while earlier images were captioned).
   * `urgent` ("Describe this image"): run between the decoder steps of a batch already running, not after it.
   */
  caption(
    packRef: string,
    backend: BackendChoice,
    image: ImageSource | Promise<Blob>,
    decoding: Decoding,
    signal: AbortSignal,
    urgent?: boolean,
  ): Promise<Caption>;
  /** Caption several images as rows of one batch; each gets its caption or its error. */
  captionBatch(
    packRef: string,
    backend: BackendChoice,
    images: (ImageSource | Promise<Blob>)[],
    decoding: Decoding,
    signal: AbortSignal,
  ): Promise<Settled<Caption>[]>;
  /** Delete every pack in the pack store; returns how many there were. */
  deletePacks(): Promise<number>;
  /** Test builds: destroy the WebGPU device under the running engine. */
  loseWebGpuDevice(): Promise<{ destroyed: boolean; reason?: string; backend: string | null }>;
  /** Something the status counts moved (the queue): broadcast the status again. */
  statusChanged(): void;
}

const captioner = () => import('../captioner/index');

/**
 * Open the captioner on a pack from the web, or from the pack store (installed models and imported folders). The
 * pack is read here (the store is this document's IndexedDB) and handed to the engine's frame.
 */
type OpenEngine = (
  from: PackLocation,
  backend: BackendChoice,
  onProgress: (done: number, total: number, packId: string) => void,
  events: EngineEvents,
) => Promise<Engine>;

const openEngine: OpenEngine = async (from, backend, onProgress, events) => {
  // The frame and ORT's runtime start while the pack is read: they overlap.
  const t0 = performance.now();
  console.info(`[alt-text] opening the model (${from.kind})`);
  const starting = startSandboxEngine(events, (path) => browser.runtime.getURL(path));
  // The frame starts on the manifest, and makes each graph's session as soon as its file arrives, while the next file
  // is still read here: reading, sending and session creation overlap.
  let opened: Promise<Engine> | null = null;
  try {
    const { loadPack } = await captioner();
    await loadPack(from, {
      onProgress: (p: PackProgress) => onProgress(p.bytes, p.total, p.packId),
      onManifest: (manifest) => {
        opened = starting.open(manifest, backend);
        // Awaited below, once every file is read; a failure before that (no backend) still ends the load there.
        opened.catch(() => undefined);
      },
      onFile: (key, data) => starting.send(key, data),
    });
    const read = performance.now() - t0;
    if (!opened) throw new Error('The pack was read without its manifest.');
    const engine = await (opened as Promise<Engine>);
    console.info(`[alt-text] model ready in ${Math.round(performance.now() - t0)} ms (pack read in ${Math.round(read)} ms)`);
    return engine;
  } catch (err) {
    await starting.dispose();
    throw err;
  }
};

/** The status's fields about an open engine, as they are while none is. */
const NOTHING_OPEN = { packId: '', packName: '', progress: null, backend: null, backendReason: '', error: null } as const;

/** The engine host of the engine page (Chrome's offscreen document, or the frame in Firefox's event page). */
export class OffscreenEngineHost implements EngineHost {
  private engine: Engine | null = null;
  private opening: Promise<Engine> | null = null;
  private key = '';
  /** Counts the engines asked for: an opening that is no longer the newest was replaced. */
  private generation = 0;
  /** When the engine's frame died, recently (performance.now()). */
  private crashes: number[] = [];
  status: ModelStatus = { ...NOTHING_OPEN, state: 'idle', packUrl: '', queued: 0 };

  constructor(
    private readonly queued: () => number = () => 0,
    /** Where a pack reference's files are read from (pack-resolver.ts); throws NoPackError when none is ready. */
    private readonly resolve: (packRef: string) => Promise<ResolvedPack> = async (url) => ({ kind: 'url', url }),
    /** How an engine is opened: in a sandboxed frame (tests give a fake). */
    private readonly open: OpenEngine = openEngine,
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
    // Say at once which model is coming: the reply to a load, and the status until it opens, are about it, not about
    // the one before (which may well have the same name).
    if (this.status.packUrl !== packRef) this.update({ ...NOTHING_OPEN, state: 'loading', packUrl: packRef });
    let pack: ResolvedPack;
    try {
      pack = await this.resolve(packRef);
    } catch (err) {
      // A model not set up yet throws NoPackError; the worker's status derives "not set up" from the install states.
      if (this.status.packUrl === packRef && this.status.state === 'loading') this.update({ state: 'idle' });
      throw err;
    }
    const key = `${backend}|${packRef}|${packKey(pack)}`;
    if (this.key === key) {
      if (this.engine && !this.engine.crashed) return this.engine;
      if (this.opening) return this.opening;
    }
    this.refuseAfterCrashes();
    // One engine at a time (a full-size pack's frame holds about 2 GB): the one in use, and one still opening for the
    // pack this request replaces, are disposed before the new one starts. The request that was waiting for the
    // replaced one fails with ModelChangedError; it does not open its pack again, or two packs asked for in turn would
    // reopen each other for ever.
    const generation = ++this.generation;
    const retired = Promise.allSettled([this.engine?.dispose(), this.opening?.then((e) => e.dispose())]);
    this.engine = null;
    this.opening = null;
    this.key = key;
    this.update({ ...NOTHING_OPEN, state: 'downloading', packUrl: packRef });
    const current = () => this.generation === generation;
    let named = false;
    const opening = retired.then(() =>
      this.open(
        pack,
        backend,
        (done, total, packId) => {
          if (!current()) return;
          // The pack's id is known from its first progress report; its name once the engine is open.
          if (!named) {
            named = true;
            this.update({ packId, packName: '' });
          }
          this.update({ state: done >= total ? 'loading' : 'downloading', progress: { done, total } });
        },
        {
          onFallback: (backend, reason) => {
            // Only once the engine is up: a fallback while opening is reported by the 'ready' update.
            if (current() && this.engine) this.update({ backend, backendReason: reason });
          },
          onCrash: (err) => {
            this.crashes.push(performance.now());
            console.warn(`[alt-text] ${err.message} A new engine will be started for the next image.`);
          },
        },
      ),
    );
    this.opening = opening;
    try {
      const engine = await opening;
      // Replaced while it opened: the request that replaced it disposes of it.
      if (!current()) throw new ModelChangedError('Another model was chosen while this one was loading.');
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
      if (current()) {
        this.key = '';
        this.update({ state: 'error', error: toWire(err), progress: null });
      }
      throw err;
    } finally {
      if (this.opening === opening) this.opening = null;
    }
  }

  /**
   * An engine that keeps dying (a model too large for this machine's memory, say) is not started again for every
   * image: after LIMITS.sandbox.crashes crashes within the window, requests fail at once until the window has passed.
   */
  private refuseAfterCrashes(): void {
    const { crashes, crashWindowMs } = LIMITS.sandbox;
    const since = performance.now() - crashWindowMs;
    this.crashes = this.crashes.filter((t) => t > since);
    if (this.crashes.length < crashes) return;
    const minutes = Math.round(crashWindowMs / 60_000);
    const err = new EngineCrashedError(
      `The captioning engine stopped ${this.crashes.length} times in ${minutes} minutes, so it is not started again for now. ` +
        'This machine may not have the memory for this model: a smaller one (Options) may work. It is tried again later.',
    );
    this.update({ state: 'error', error: toWire(err), progress: null });
    throw err;
  }

  async caption(
    packRef: string,
    backend: BackendChoice,
    image: ImageSource | Promise<Blob>,
    decoding: Decoding,
    signal: AbortSignal,
    urgent = false,
  ): Promise<Caption> {
    const bytes = image instanceof Promise ? image : fetchImage(image, signal);
    const attempt = () => this.captionOnce(packRef, backend, bytes, decoding, signal, urgent);
    try {
      return await attempt();
    } catch (err) {
      if (!(err instanceof EngineCrashedError) || signal.aborted) throw err;
      // The engine's process died under this caption (or while it opened): a new one is started, and asked once more.
      // An image that kills it twice fails with the error, and the queue goes on with the next.
      return attempt();
    }
  }

  /** One try: the engine for this pack (opened if need be) and the image's bytes, then its caption. */
  private async captionOnce(
    packRef: string,
    backend: BackendChoice,
    bytes: Blob | Promise<Blob>,
    decoding: Decoding,
    signal: AbortSignal,
    urgent = false,
  ): Promise<Caption> {
    const [engine, blob] = await Promise.all([this.get(packRef, backend), bytes]);
    return engine.caption(blob, decoding, signal, urgent);
  }

  async captionBatch(
    packRef: string,
    backend: BackendChoice,
    images: (ImageSource | Promise<Blob>)[],
    decoding: Decoding,
    signal: AbortSignal,
  ): Promise<Settled<Caption>[]> {
    const engineReady = this.get(packRef, backend);
    engineReady.catch(() => {
      // Awaited below.
    });
    // An image that cannot be fetched fails alone; the others go on as a batch.
    const fetched = await Promise.allSettled(images.map((im) => (im instanceof Promise ? im : fetchImage(im, signal))));
    const out: Settled<Caption>[] = fetched.map((f) =>
      f.status === 'rejected' ? { ok: false, error: f.reason as unknown } : { ok: false, error: null },
    );
    const rows = fetched.flatMap((f, i) => (f.status === 'fulfilled' ? [{ i, blob: f.value }] : []));
    if (rows.length === 0) return out;
    try {
      const engine = await engineReady;
      const answers = await engine.captionBatch(
        rows.map((r) => r.blob),
        decoding,
        signal,
      );
      answers.forEach((a, j) => (out[rows[j].i] = a.ok ? a : { ok: false, error: fromWire(a.error) }));
    } catch (err) {
      if (!(err instanceof EngineCrashedError) || signal.aborted) throw err;
      // The engine's process died under the batch: a new one is started, and each image is asked again alone, so an
      // image that kills the engine fails alone (and kills it once more, not once per image of its batch).
      for (const r of rows) {
        try {
          out[r.i] = { ok: true, value: await this.captionOnce(packRef, backend, r.blob, decoding, signal) };
        } catch (e) {
          if (signal.aborted) throw e;
          out[r.i] = { ok: false, error: e };
        }
      }
    }
    return out;
  }

  /** Test builds: destroy the WebGPU device under the running engine. */
  async loseWebGpuDevice(): Promise<{ destroyed: boolean; reason?: string; backend: string | null }> {
    const r = this.engine ? await this.engine.loseDevice() : { destroyed: false };
    return { ...r, backend: this.status.backend };
  }

  async deletePacks(): Promise<number> {
    const { listCachedPacks, deleteCachedPack } = await captioner();
    const packs = await listCachedPacks();
    for (const p of packs) await deleteCachedPack(p.id);
    return packs.length;
  }
}
