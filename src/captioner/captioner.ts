/**
 * createCaptioner: the public engine. Image -> preprocess -> vision -> mapper -> prefill -> decode -> text.
 *
 * One inference at a time: calls queue behind each other (call-queue.ts). Cancellation goes through AbortSignal,
 * checked between stages and between decode steps. On WebGPU a failure (at creation or at run time) falls back to
 * WASM once.
 */
import { CallQueue } from './call-queue';
import { resolveCaptionOptions } from './caption-options';
import { isUncertain } from './clip-score';
import { beamDecode, greedyDecode, type BeamResult, type DecodeResult } from './decoding';
import { BackendUnavailableError, CaptionAbortedError, CaptionerDisposedError, CaptionerError, throwIfAborted } from '../shared/errors';
import { DEFAULT_MAX_PIXELS, decodeImageInBrowser, type ImageDecoderFn, type ImageInput } from './image-decode';
import { loadPackFromUrl, type LoadedPack, type PackProgress } from './pack-loader';
import type { AnyPackFileKey, PackManifest } from './pack-format';
import type { PackStore } from './pack-store';
import { postprocessCaption } from './postprocess';
import { preprocessRgba } from './preprocess';
import {
  configureWasm,
  createSessions,
  createTextSession,
  defaultThreads,
  type GraphBytes,
  KvDecoder,
  probeWebGpu,
  runMapper,
  runText,
  runVision,
  warmUp,
  watchDeviceLoss,
  type Backend,
  type Ort,
  type PackSessions,
} from './sessions';
import { textPass } from './text-pass';
import { loadTextTokenizer, type TextTokenizer } from './text-tokenizer';
import { loadTokenizer, type CaptionTokenizer } from './tokenizer';

/**
 * A pack whose files arrive one after another (the engine's frame receives them while the offscreen document still
 * reads the rest from storage): `file` resolves once that file is there. Each file is asked for once; the captioner
 * keeps only what it still needs (a graph's bytes until its session exists).
 */
export interface PackSource {
  manifest: PackManifest;
  file(key: AnyPackFileKey): Promise<Uint8Array>;
}

export interface CaptionerOptions {
  /** a loaded pack, a pack whose files are arriving, or the URL of a pack folder (downloaded, verified and cached) */
  pack: LoadedPack | PackSource | string;
  /** 'auto' (default): WebGPU when an adapter exists, else WASM */
  backend?: 'auto' | Backend;
  /** WASM threads; default: hardwareConcurrency - 1, from 1 to 4 (sessions.ts defaultThreads) */
  threads?: number;
  /** let ORT's WASM worker threads busy-wait between operators (default false) */
  allowSpinning?: boolean;
  /** where ORT's .mjs/.wasm files are served from, e.g. browser.runtime.getURL('ort/'). Never a CDN. */
  wasmPaths?: string | Record<string, string>;
  /** the onnxruntime-web module; default import('onnxruntime-web/webgpu') */
  ort?: Ort;
  /** image decoder; default createImageBitmap + OffscreenCanvas (Node: decodeImageWithSharp from node-decode.ts) */
  decodeImage?: ImageDecoderFn;
  /** larger images are downscaled while decoding (default 4096 x 4096 pixels) */
  maxPixels?: number;
  /** for a pack URL: the cache to use, and download progress */
  store?: PackStore;
  onProgress?: (p: PackProgress) => void;
  /** events: backend chosen, fallback, stages */
  onEvent?: (e: CaptionerEvent) => void;
  signal?: AbortSignal;
}

export type CaptionerEvent =
  | { type: 'backend'; backend: Backend; reason: string }
  | { type: 'fallback'; from: Backend; to: Backend; reason: string }
  | { type: 'stage'; stage: 'preprocess' | 'vision' | 'mapper' | 'prefill' | 'decode'; images: number }
  /** after each decode step: tokens generated so far for the caption(s) being decoded */
  | { type: 'token'; generated: number }
  /**
   * A step of opening (a tokenizer, a graph's session, the warm-up): `ms` null when it starts, its duration when it
   * ended. The text tower's session is made at the first caption that needs it, so its step can come after 'backend'.
   */
  | { type: 'opening'; step: string; ms: number | null };

export interface CaptionOptions {
  /** default: the pack's generation.strategy */
  strategy?: 'greedy' | 'beam';
  /** default: the pack's generation.beams */
  beams?: number;
  /** default: the pack's generation.maxTokens */
  maxTokens?: number;
  /** greedy: also compute the confidence and each token's log-probability (default false; beam search always does) */
  scores?: boolean;
  /**
   * Run between two decoder steps of the call now running (a batch, say) instead of after it: for a caption a person
   * asked for, which must not wait for a whole page's batch. Without a running call it runs at once, as any other.
   */
  urgent?: boolean;
  /**
   * Beam search with a pack that has CLIP's text tower: rank = score / length + rerankWeight * clipScore over the final
   * beams (docs/pack-format.md). Default: the pack's text.rerankWeight; 0: plain beam search. Ignored otherwise.
   */
  rerankWeight?: number;
  signal?: AbortSignal;
}

export interface CaptionTimings {
  /** ms, for this image (batch stages are divided evenly among the batch) */
  preprocess: number;
  vision: number;
  mapper: number;
  prefill: number;
  decode: number;
  total: number;
  /** tokens generated (eos included) and decode ms per token */
  tokens: number;
  perToken: number;
  /** the text tower's pass (gating, and re-ranking when beam search re-ranks); 0 for a pack without a text tower */
  text: number;
}

export interface EngineCaption {
  /** post-processed alt text, e.g. "A red circle on a white background." */
  text: string;
  /** the tokenizer's decode of tokenIds, before post-processing */
  rawText: string;
  tokenIds: number[];
  /** mean log-probability per generated token (<= 0; closer to 0 is surer); absent for greedy without `scores` */
  confidence?: number;
  /** log-probability of each generated token (the final <|endoftext|> included when it ended the caption); empty when not computed */
  tokenLogprobs: number[];
  backend: Backend;
  backendReason: string;
  strategy: 'greedy' | 'beam';
  timings: CaptionTimings;
  /** CLIPScore of the caption against the image, w * max(cos, 0); only for packs with a text tower */
  clipScore?: number;
  /** clipScore is below the pack's gateThreshold: the caption is likely wrong; set whenever clipScore is */
  uncertain?: boolean;
}

export type BatchItem = { ok: true; value: EngineCaption } | { ok: false; error: Error };

export interface Captioner {
  readonly manifest: PackManifest;
  readonly backend: Backend;
  readonly backendReason: string;
  caption(image: ImageInput, opts?: CaptionOptions): Promise<EngineCaption>;
  /** vision and mapper run as one batch; greedy decoding too. Each image gets its own result or error. */
  captionBatch(images: ImageInput[], opts?: CaptionOptions): Promise<BatchItem[]>;
  dispose(): Promise<void>;
}

const now = () => (typeof performance !== 'undefined' ? performance.now() : Date.now());

export async function createCaptioner(options: CaptionerOptions): Promise<Captioner> {
  // Closures below must not capture `options` or `pack`: the pack's bytes (hundreds of MB) would stay alive as long
  // as the captioner, on top of the copy each session holds. Only a WebGPU captioner keeps them, to fall back.
  const onEvent = options.onEvent;
  const emit = (e: CaptionerEvent) => onEvent?.(e);
  const pack =
    typeof options.pack === 'string'
      ? await loadPackFromUrl(options.pack, { store: options.store, onProgress: options.onProgress, signal: options.signal })
      : options.pack;
  const m = pack.manifest;
  const source = 'files' in pack ? filesOf(pack) : pack;
  const ort: Ort = options.ort ?? (await import('onnxruntime-web/webgpu'));
  configureWasm(ort, options.threads ?? defaultThreads(), options.wasmPaths);
  const textTower = m.text;
  /**
   * Each graph's bytes, asked for once, in the order they are used. They are dropped once their session exists on
   * WASM; a WebGPU captioner keeps them while it may still fall back. The text tower's stay until its session exists.
   */
  let graphBytes: { vision: GraphBytes; mapper: GraphBytes; decoder: GraphBytes } | null = {
    vision: source.file('vision'),
    mapper: source.file('mapper'),
    decoder: source.file('decoder'),
  };
  const tokenizerBytes = source.file('tokenizer');
  let textBytes: GraphBytes | null = textTower ? source.file('text') : null;
  const textTokenizerBytes = textTower ? source.file('textTokenizer') : null;
  // A file that never comes (the frame was told to stop) must not leave a rejection unhandled while it is not awaited.
  for (const p of [graphBytes.vision, graphBytes.mapper, graphBytes.decoder, tokenizerBytes, textBytes, textTokenizerBytes])
    void (p as Promise<unknown> | null)?.catch(() => undefined);
  /** Time one step of opening, announced when it starts (a long one keeps the engine's thread busy) and when it ends. */
  const step = async <T>(name: string, work: () => Promise<T>): Promise<T> => {
    emit({ type: 'opening', step: name, ms: null });
    const t = now();
    try {
      return await work();
    } finally {
      emit({ type: 'opening', step: name, ms: now() - t }); // ended, even when it failed
    }
  };
  /** Tokenizers import transformers.js, which points ORT's wasmPaths at a CDN when none is set yet (see below). */
  const keepWasmPaths = async <T>(work: () => Promise<T>): Promise<T> => {
    // Never use a CDN: put back what was there (unset means ORT's own folder; the extension sets its 'ort/' URL).
    const before = ort.env.wasm.wasmPaths;
    try {
      return await work();
    } finally {
      if (ort.env.wasm.wasmPaths !== before) ort.env.wasm.wasmPaths = before;
    }
  };
  const decodeImage = options.decodeImage ?? decodeImageInBrowser;
  const tuning = {
    allowSpinning: options.allowSpinning ?? false,
    nLayer: m.decoder.nLayer,
    onCreated: (graph: string, ms: number) => emit({ type: 'opening', step: `${graph} session`, ms }),
  };
  const maxPixels = options.maxPixels ?? DEFAULT_MAX_PIXELS;

  // The tokenizers first: a streamed pack sends them first (pack-loader.ts readOrder: they are small), so they are made
  // while the graphs are still on their way, in time the engine would otherwise spend waiting.
  const tokenizer: CaptionTokenizer = await step('tokenizer', () => keepWasmPaths(async () => loadTokenizer(await tokenizerBytes)));
  const textTokenizer: TextTokenizer | null =
    textTower && textTokenizerBytes
      ? await step('text tokenizer', () => keepWasmPaths(async () => loadTextTokenizer(await textTokenizerBytes, textTower)))
      : null;

  // Backend choice. The graphs' bytes are kept (graphBytes) only while a WebGPU captioner may still fall back.
  let sessions: PackSessions;
  let reason = ''; // said with the backend, below

  /**
   * The one WebGPU -> WASM switch, whether WebGPU failed at session creation, while warming up, or at run time: say
   * why, make WASM sessions from the kept files, release the WebGPU ones (if any), and never fall back again.
   */
  async function fallBackToWasm(why: string, old: PackSessions | null): Promise<PackSessions> {
    reason = `WebGPU failed ${why}; using WASM`;
    emit({ type: 'fallback', from: 'webgpu', to: 'wasm', reason });
    console.warn(`[captioner] ${reason}`);
    const files = graphBytes!;
    graphBytes = null;
    const wasm = await createSessions(ort, files, 'wasm', tuning);
    await old?.release();
    return wasm;
  }

  const wanted = options.backend ?? 'auto';
  if (wanted === 'wasm') {
    reason = 'WASM requested';
    sessions = await createSessions(ort, graphBytes, 'wasm', tuning);
  } else {
    const probe = await probeWebGpu();
    if (!probe.ok) {
      if (wanted === 'webgpu') throw new BackendUnavailableError(`WebGPU requested, but ${probe.reason}`);
      reason = `${probe.reason}; using WASM`;
      sessions = await createSessions(ort, graphBytes, 'wasm', tuning);
    } else {
      try {
        sessions = await createSessions(ort, graphBytes, 'webgpu', tuning);
        reason = probe.reason;
      } catch (e) {
        // createSessions wraps ORT's error in a BackendUnavailableError; ORT's own words say more.
        const cause = (e as Error).cause instanceof Error ? ((e as Error).cause as Error) : (e as Error);
        sessions = await fallBackToWasm(`at session creation (${cause.message})`, null);
      }
    }
  }
  let disposed = false;
  let deviceLost: string | null = null;
  if (sessions.backend === 'webgpu') {
    try {
      const tw = now();
      await warmUp(ort, sessions, m); // shaders compile now, not during the first caption
      emit({ type: 'opening', step: 'warm-up', ms: now() - tw });
    } catch (e) {
      sessions = await fallBackToWasm(`while warming up (${(e as Error).message})`, sessions);
    }
    // A lost device fails the next run; noting it here lets that run switch to WASM at once.
    if (sessions.backend === 'webgpu') void watchDeviceLoss(ort, (why) => (deviceLost = why));
  }
  if (sessions.backend !== 'webgpu') graphBytes = null;
  emit({ type: 'backend', backend: sessions.backend, reason });

  /**
   * CLIP's text tower, made at the first caption that needs it: the captioner is ready once the image-to-caption
   * graphs are, and the tower's bytes (the last of a streamed pack) arrive meanwhile. Every caption of a pack with a
   * tower still waits for it here before it is returned: none goes out unchecked. Null for a pack without a tower.
   */
  let textMaking: Promise<void> | null = null;
  async function makeText(): Promise<void> {
    if (!textBytes) return;
    const bytes = textBytes;
    try {
      await step('text session', () => createTextSession(ort, sessions, bytes));
    } catch (e) {
      // On WebGPU ORT's own error goes up as it is, so that the call falls back to WASM (withFallback) and retries.
      if (sessions.backend === 'webgpu') throw e;
      throw new BackendUnavailableError(`wasm: ${(e as Error).message}`, { cause: e });
    }
    // Kept until now in case it failed; a WebGPU captioner keeps it to make the WASM one after a fallback.
    if (sessions.backend !== 'webgpu') textBytes = null;
  }
  /** The tower's tokenizer once its session exists on the current backend; made once, however many calls wait. */
  async function ensureText(): Promise<TextTokenizer | null> {
    if (textTower && !sessions.text) {
      textMaking ??= makeText().finally(() => (textMaking = null));
      await textMaking;
    }
    return textTokenizer;
  }

  const calls = new CallQueue(() => disposed);

  /** Run a model stage; on a WebGPU run-time failure, switch to WASM once and retry the whole call. */
  async function withFallback<T>(fn: () => Promise<T>): Promise<T> {
    try {
      if (deviceLost && sessions.backend === 'webgpu') throw new Error(deviceLost);
      return await fn();
    } catch (e) {
      if (sessions.backend !== 'webgpu' || !graphBytes || e instanceof CaptionerError) throw e;
      sessions = await fallBackToWasm(`at run time (${(e as Error).message})`, sessions);
      return fn();
    }
  }

  /**
   * The text tower's pass over a call's captions (text-pass.ts): each image's embedding row, as vision.onnx gave it,
   * against its caption, or its final beams when re-ranking. Null for a pack without a text tower: no pass at all.
   */
  async function scoreTexts(decoded: (DecodeResult | BeamResult)[], embeds: Float32Array, rerankWeight: number) {
    if (!textTower) return null;
    const textTokenizer = await ensureText();
    if (!textTokenizer) return null;
    const D = m.embedding.dim;
    return textPass(
      decoded.map((d, j) => ({ decoded: d, imageEmbeds: embeds.subarray(j * D, (j + 1) * D) })),
      {
        rerankWeight,
        clipScoreWeight: textTower.clipScoreWeight,
        decode: (ids) => tokenizer.decode(ids),
        encode: (text) => textTokenizer.encode(text),
        embed: (rows) => runText(ort, sessions, rows, m),
      },
    );
  }

  async function runBatch(images: ImageInput[], opts: CaptionOptions): Promise<BatchItem[]> {
    const o = resolveCaptionOptions(m, opts);
    const { signal } = o;
    const S = m.preprocess.imageSize;
    const P = m.mapper.prefixLength;
    const E = m.decoder.nEmbd;
    const t0 = now();
    const items = new Array<BatchItem>(images.length);
    // Preprocess each image; failures are per image.
    const pixels: Float32Array[] = [];
    const index: number[] = [];
    emit({ type: 'stage', stage: 'preprocess', images: images.length });
    for (let i = 0; i < images.length; i++) {
      throwIfAborted(signal);
      try {
        const rgba = await decodeImage(images[i], { maxPixels });
        pixels.push(preprocessRgba(rgba, m.preprocess));
        index.push(i);
      } catch (e) {
        if (e instanceof CaptionAbortedError) throw e;
        items[i] = { ok: false, error: e as Error };
      }
    }
    const n = index.length;
    if (n === 0) return items;
    const tPre = now();
    const batch = new Float32Array(n * 3 * S * S);
    pixels.forEach((p, i) => batch.set(p, i * 3 * S * S));

    const result = await withFallback(async () => {
      throwIfAborted(signal);
      emit({ type: 'stage', stage: 'vision', images: n });
      const t1 = now();
      const embeds = await runVision(ort, sessions, batch, n, m);
      throwIfAborted(signal);
      emit({ type: 'stage', stage: 'mapper', images: n });
      const t2 = now();
      const prefix = await runMapper(ort, sessions, embeds, n, m);
      const t3 = now();
      throwIfAborted(signal);
      const dopts = {
        vocabSize: m.decoder.vocabSize,
        stop: m.tokens.stop,
        eos: m.tokens.eos,
        maxTokens: o.maxTokens,
        scores: o.scores,
        signal,
        onStep: (generated: number) => emit({ type: 'token', generated }),
        between: calls.runUrgent,
      };
      let decoded: (DecodeResult | BeamResult)[];
      let prefillMs = 0;
      let decodeMs = 0;
      emit({ type: 'stage', stage: 'prefill', images: n });
      if (o.strategy === 'greedy') {
        const dec = new KvDecoder(ort, sessions.decoder, m);
        try {
          const tp = now();
          const first = await dec.prefill(prefix, n);
          prefillMs = now() - tp;
          emit({ type: 'stage', stage: 'decode', images: n });
          const td = now();
          decoded = await greedyDecode(first, n, dec, dopts);
          decodeMs = now() - td;
        } finally {
          dec.release();
        }
      } else {
        decoded = [];
        for (let i = 0; i < n; i++) {
          const dec = new KvDecoder(ort, sessions.decoder, m);
          try {
            const tp = now();
            const first = await dec.prefill(prefix.subarray(i * P * E, (i + 1) * P * E), 1);
            prefillMs += now() - tp;
            emit({ type: 'stage', stage: 'decode', images: 1 });
            const td = now();
            decoded.push(await beamDecode(first, dec, { ...dopts, beams: o.beams, lengthNormalize: m.generation.lengthNormalize }));
            decodeMs += now() - td;
          } finally {
            dec.release();
          }
        }
      }
      throwIfAborted(signal);
      const tt = now();
      const scored = await scoreTexts(decoded, embeds, o.strategy === 'beam' ? o.rerankWeight : 0);
      return {
        decoded: scored?.map((r) => r.chosen) ?? decoded,
        scores: scored,
        vision: t2 - t1,
        mapper: t3 - t2,
        prefillMs,
        decodeMs,
        textMs: now() - tt,
      };
    });
    const total = now() - t0;
    result.decoded.forEach((d, j) => {
      const i = index[j];
      const rawText = tokenizer.decode(d.tokenIds);
      try {
        const text = postprocessCaption(rawText, d.tokenIds);
        const tokens = d.length;
        const clip = result.scores?.[j].clipScore;
        items[i] = {
          ok: true,
          value: {
            text,
            rawText,
            tokenIds: d.tokenIds,
            confidence: d.logprobs.length ? d.score / d.length : undefined,
            tokenLogprobs: d.logprobs,
            backend: sessions.backend,
            backendReason: reason,
            strategy: o.strategy,
            timings: {
              preprocess: (tPre - t0) / n,
              vision: result.vision / n,
              mapper: result.mapper / n,
              prefill: result.prefillMs / n,
              decode: result.decodeMs / n,
              total: total / n,
              tokens,
              perToken: tokens ? result.decodeMs / n / tokens : 0,
              text: result.scores ? result.textMs / n : 0,
            },
            ...(clip !== undefined ? { clipScore: clip, uncertain: isUncertain(clip, textTower!.gateThreshold) } : {}),
          },
        };
      } catch (e) {
        items[i] = { ok: false, error: e as Error };
      }
    });
    return items;
  }

  const api: Captioner = {
    manifest: m,
    get backend() {
      return sessions.backend;
    },
    get backendReason() {
      return reason;
    },
    caption(image, opts = {}) {
      if (disposed) return Promise.reject(new CaptionerDisposedError());
      const run = async () => {
        const [item] = await runBatch([image], opts);
        if (!item.ok) throw item.error;
        return item.value;
      };
      return opts.urgent ? calls.jumpQueue(opts.signal, run) : calls.enqueue(opts.signal, run);
    },
    captionBatch(images, opts = {}) {
      if (disposed) return Promise.reject(new CaptionerDisposedError());
      return calls.enqueue(opts.signal, () => runBatch(images, opts));
    },
    async dispose() {
      if (disposed) return;
      disposed = true;
      await calls.idle;
      await sessions.release();
    },
  };
  return api;
}

/** A loaded pack as a source: every file is there already. */
function filesOf(pack: LoadedPack): PackSource {
  return {
    manifest: pack.manifest,
    file: (key) => {
      const data = pack.files[key];
      return data ? Promise.resolve(data) : Promise.reject(new Error(`The pack has no ${key} file.`));
    },
  };
}
