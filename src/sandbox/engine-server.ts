/**
 * The engine's end of the link (src/shared/engine-link.ts): one captioner per frame, created by 'os-sb-open' from the
 * pack's files as they arrive ('os-sb-file': bytes transferred, or a stored file's Blob, read here), and captions on
 * request. A new pack gets a new frame, so a disposed engine's memory goes back with its process. Pings are answered
 * whenever the frame's thread is free, and the heartbeat's (heartbeat.ts) at once; a process that stopped answers none.
 */
import { createCaptioner, type Captioner, type EngineCaption, type PackSource } from '../captioner/captioner';
import type { AnyPackFileKey } from '../captioner/pack-format';
import { configureWasm, defaultThreads } from '../captioner/sessions';
import { moduleWorkersAsClassic } from './module-workers';
import { CaptionAbortedError, CaptionerDisposedError, CaptionerError, toWire } from '../shared/errors';
import type { LinkDown, LinkProtocol, LinkRequest, LinkUp } from '../shared/engine-link';
import type { Caption } from '../shared/messages';

type Create = typeof createCaptioner;

export class EngineServer {
  private captioner: Promise<Captioner> | null = null;
  private readonly aborts = new Map<number, AbortController>();
  private loggedFirst = false;
  /** The pack's files: each one's promise, until the captioner took it and it arrived (then only the captioner holds it). */
  private readonly files = new Map<
    AnyPackFileKey,
    { promise: Promise<Uint8Array>; resolve(d: Uint8Array): void; reject(e: unknown): void; taken: boolean; here: boolean }
  >();

  constructor(
    private readonly port: MessagePort,
    private readonly create: Create = createCaptioner,
  ) {}

  start(): void {
    this.port.onmessage = (e: MessageEvent) => this.receive(e.data as LinkDown);
  }

  /** Hand the offscreen document the port of the frame's heartbeat (heartbeat.ts), which it pings from then on. */
  offerHeartbeat(heartbeat: MessagePort): void {
    this.port.postMessage({ type: 'sb-os-heartbeat' } satisfies LinkUp, [heartbeat]);
  }

  private post(msg: LinkUp): void {
    this.port.postMessage(msg);
  }

  private receive(msg: LinkDown): void {
    if (msg.type === 'os-sb-ping') this.post({ type: 'sb-os-pong' });
    else if (msg.type === 'os-sb-abort') this.aborts.get(msg.callId)?.abort(new CaptionAbortedError());
    else this.call(msg);
  }

  private call(msg: LinkRequest): void {
    const controller = new AbortController();
    this.aborts.set(msg.callId, controller);
    this.handle(msg, controller.signal)
      .then(
        (value) => this.post({ type: 'sb-os-reply', callId: msg.callId, reply: { ok: true, value } }),
        (err: unknown) => this.post({ type: 'sb-os-reply', callId: msg.callId, reply: { ok: false, error: toWire(err) } }),
      )
      .finally(() => this.aborts.delete(msg.callId));
  }

  /**
   * A step of opening started (`ms` null) or ended. The text tower's session is made during the first caption that
   * needs it: the link is told, so that the silence of a thread busy creating it is not taken for a crash.
   */
  private opening(step: string, ms: number | null): void {
    if (step === 'text session') this.post({ type: 'sb-os-opening', opening: ms === null });
    if (ms !== null) console.info(`[alt-text] engine: ${step} in ${Math.round(ms)} ms`);
  }

  /** The first caption's stages, once per engine: the last phase of a start (bench:page reads it). */
  private logFirst(r: EngineCaption): void {
    const t = r.timings as EngineCaption['timings'] | undefined; // a stand-in engine (tests) may time nothing
    if (this.loggedFirst || !t) return;
    this.loggedFirst = true;
    const stages = (['preprocess', 'vision', 'mapper', 'prefill', 'decode', 'text'] as const).map((k) => `${k} ${Math.round(t[k])}`);
    console.info(`[alt-text] engine: first caption in ${Math.round(t.total)} ms (${stages.join(', ')}; ${r.strategy})`);
  }

  private file(key: AnyPackFileKey) {
    let f = this.files.get(key);
    if (!f) {
      let resolve!: (d: Uint8Array) => void;
      let reject!: (e: unknown) => void;
      const promise = new Promise<Uint8Array>((ok, no) => ((resolve = ok), (reject = no)));
      // Nobody may be waiting yet (a file that failed before the captioner asked for it): its open fails instead.
      promise.catch(() => undefined);
      f = { promise, resolve, reject, taken: false, here: false };
      this.files.set(key, f);
    }
    return f;
  }

  /** The pack as the captioner reads it: each file once, as soon as it has arrived. */
  private source(manifest: PackSource['manifest']): PackSource {
    return {
      manifest,
      file: (key) => {
        const f = this.file(key);
        f.taken = true;
        if (f.here) this.files.delete(key);
        return f.promise;
      },
    };
  }

  /** The open captioner; a caption asked for before 'os-sb-open' has none. */
  private open(): Promise<Captioner> {
    return this.captioner ?? Promise.reject(new CaptionerDisposedError());
  }

  private async handle(msg: LinkRequest, signal: AbortSignal): Promise<LinkProtocol[LinkRequest['type']]['res']> {
    // Test builds only; in a release build the condition is false at build time, and the name is left out.
    if (__TEST__ && msg.type === 'test-sb-lose-device') return loseDevice();
    switch (msg.type) {
      case 'os-sb-prepare': {
        const t0 = performance.now();
        const ort = await import('onnxruntime-web/webgpu');
        configureWasm(ort, threads(), msg.wasmPaths);
        // Creating a session starts the runtime first; these bytes are no model, so it stops there, and the real
        // sessions find the runtime ready.
        await ort.InferenceSession.create(new Uint8Array([0]), { executionProviders: ['wasm'] }).catch(() => undefined);
        console.info(`[alt-text] engine runtime started in ${Math.round(performance.now() - t0)} ms`);
        return null;
      }
      case 'os-sb-file': {
        const f = this.file(msg.key);
        const t0 = performance.now();
        const { data } = msg;
        let bytes: Uint8Array;
        try {
          // All at once, not one after another: a read resolves only when this thread is free, and it is busy for
          // seconds creating a session. Read in turn, the decoder's bytes were asked for only after the vision
          // session was made, and the mapper's session then waited for them (1.5 s in bench:page's restart).
          bytes = data instanceof Blob ? new Uint8Array(await data.arrayBuffer()) : data;
        } catch (err) {
          // The captioner waiting for this file fails with the same error, rather than waiting for ever.
          f.reject(err);
          throw err;
        }
        f.resolve(bytes);
        f.here = true;
        if (f.taken) this.files.delete(msg.key);
        const read = data instanceof Blob ? `, read in ${Math.round(performance.now() - t0)} ms` : '';
        console.info(`[alt-text] engine received ${msg.key} (${Math.round(bytes.byteLength / 2 ** 20)} MB${read})`);
        return null;
      }
      case 'os-sb-open': {
        if (this.captioner) throw new CaptionerError('This engine frame already has a model open; a new model gets a new frame.');
        const t0 = performance.now();
        this.captioner = this.create({
          pack: this.source(msg.manifest),
          backend: msg.backend,
          wasmPaths: msg.wasmPaths,
          threads: threads(),
          onEvent: (e) => {
            if (e.type === 'opening') this.opening(e.step, e.ms);
            if (e.type !== 'fallback') return;
            console.warn(`[alt-text] ${e.from} failed, using ${e.to}: ${e.reason}`);
            this.post({ type: 'sb-os-fallback', backend: e.to, reason: e.reason });
          },
        });
        const c = await this.captioner;
        console.info(`[alt-text] engine opened ${c.manifest.id} on ${c.backend} in ${Math.round(performance.now() - t0)} ms`);
        return { packId: c.manifest.id, packName: c.manifest.name, backend: c.backend, backendReason: c.backendReason };
      }
      case 'os-sb-caption': {
        const c = await this.open();
        const { strategy, beams, maxTokens, rerankWeight } = msg.decoding;
        const r = await c.caption(msg.image, { strategy, beams, maxTokens, rerankWeight, urgent: msg.urgent, signal });
        this.logFirst(r);
        return toCaption(r, c);
      }
      case 'os-sb-caption-batch': {
        const c = await this.open();
        const { strategy, beams, maxTokens, rerankWeight } = msg.decoding;
        const items = await c.captionBatch(msg.images, { strategy, beams, maxTokens, rerankWeight, signal });
        const first = items.find((it) => it.ok);
        if (first?.ok) this.logFirst(first.value);
        return items.map((it) =>
          it.ok ? { ok: true as const, value: toCaption(it.value, c) } : { ok: false as const, error: toWire(it.error) },
        );
      }
      default:
        throw new CaptionerError(`The engine does not answer "${msg.type}" in this build.`);
    }
  }
}

/** The engine's fuller answer, as the extension's Caption. */
function toCaption(r: EngineCaption, c: Captioner): Caption {
  const caption: Caption = { text: r.text, confidence: r.confidence, backend: r.backend, packId: c.manifest.id };
  // Only a pack with CLIP's text tower scores its captions; the others' answers carry neither field.
  if (r.clipScore !== undefined) Object.assign(caption, { clipScore: r.clipScore, uncertain: r.uncertain === true });
  return caption;
}

/**
 * The frame is cross-origin isolated (the manifest's COOP and COEP, and the `allow` its document gives it), so it has
 * SharedArrayBuffer and ORT can run worker threads: all cores but one, at most 4 (sessions.ts defaultThreads), which
 * start the way module-workers.ts makes possible. Were isolation lost, ORT's wasm would run one thread.
 */
function threads(): number {
  if (typeof SharedArrayBuffer === 'undefined') return 1;
  const n = __ENGINE_THREADS__ ?? defaultThreads();
  if (n > 1) moduleWorkersAsClassic();
  return n;
}

/** Test builds: destroy the WebGPU device ORT uses, the way a GPU reset or a driver crash does. */
async function loseDevice(): Promise<{ destroyed: boolean; reason?: string }> {
  const ort = (await import('onnxruntime-web/webgpu')) as unknown as { env: { webgpu: { device?: unknown } } };
  const device = (await Promise.resolve(ort.env.webgpu.device)) as { destroy(): void; lost: Promise<{ reason: string }> } | undefined;
  if (!device) return { destroyed: false };
  device.destroy();
  return { destroyed: true, reason: (await device.lost).reason };
}
