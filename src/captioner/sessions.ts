/**
 * onnxruntime-web sessions for a pack, on WebGPU when an adapter exists, else on WASM; and the graph runners.
 *
 * The ORT module is injected (`ort`), so the browser build uses `onnxruntime-web/webgpu` (the build transformers.js
 * also imports: one ORT, one set of wasm files) while Node tests use `onnxruntime-web`'s Node build.
 */
import type * as OrtModule from 'onnxruntime-web';
import { BackendUnavailableError } from '../shared/errors';
import type { DecoderSteps } from './decoding';
import type { PackManifest } from './pack-format';

export type Ort = typeof OrtModule;
export type Backend = 'webgpu' | 'wasm';
type Session = OrtModule.InferenceSession;
type Tensor = OrtModule.Tensor;

/** Whether WebGPU can be used here: an adapter must exist (headless Chromium without a GPU has none). */
export async function probeWebGpu(): Promise<{ ok: boolean; reason: string; shaderF16?: boolean }> {
  const gpu = (globalThis.navigator as Navigator & { gpu?: { requestAdapter(): Promise<unknown> } })?.gpu;
  if (!gpu) return { ok: false, reason: 'WebGPU is not available in this context' };
  try {
    const adapter = (await gpu.requestAdapter()) as {
      info?: { vendor?: string; architecture?: string; description?: string };
      features?: { has(f: string): boolean };
    } | null;
    if (!adapter) return { ok: false, reason: 'no WebGPU adapter (no usable GPU)' };
    const info = adapter.info;
    const what = [info?.vendor, info?.architecture, info?.description].filter(Boolean).join(' ') || 'unknown adapter';
    // shader-f16: the adapter computes in half precision. onnxruntime-web then runs float16 graphs natively; the
    // packs' fp16 precision stores weights in half and computes in fp32, so this is reported, not yet used.
    const shaderF16 = adapter.features?.has('shader-f16') ?? false;
    return { ok: true, reason: `WebGPU adapter found (${what}${shaderF16 ? ', shader-f16' : ''})`, shaderF16 };
  } catch (e) {
    return { ok: false, reason: `WebGPU adapter request failed: ${(e as Error).message}` };
  }
}

/**
 * Run each graph once on zeros, so that WebGPU compiles its shaders (and uploads the weights) before the first real
 * caption rather than during it. The decoder gets a prefill and one cached step: the step's shapes differ.
 */
export async function warmUp(ort: Ort, s: PackSessions, m: PackManifest): Promise<void> {
  const S = m.preprocess.imageSize;
  const embeds = await runVision(ort, s, new Float32Array(3 * S * S), 1, m);
  const prefix = await runMapper(
    ort,
    s,
    embeds.map(() => 1),
    1,
    m,
  );
  const dec = new KvDecoder(ort, s.decoder, m);
  try {
    await dec.prefill(prefix, 1);
    await dec.step([0], [m.tokens.bos]);
  } finally {
    dec.release();
  }
  if (s.text && m.text) await runText(ort, s, [[m.text.bos, m.text.eot]], m);
}

/** Calls `onLost` if the WebGPU device ORT uses is lost (driver reset, GPU removed, tab backgrounded too long). */
export async function watchDeviceLoss(ort: Ort, onLost: (reason: string) => void): Promise<void> {
  try {
    const device = (await ort.env.webgpu.device) as { lost?: Promise<{ reason?: string; message?: string }> } | undefined;
    void device?.lost?.then((info) =>
      onLost(`WebGPU device lost (${info?.reason ?? 'unknown'}${info?.message ? `: ${info.message}` : ''})`),
    );
  } catch (e) {
    console.warn(`[captioner] cannot watch the WebGPU device: ${(e as Error).message}`);
  }
}

/**
 * WASM threads when the caller does not say: one core is left for the page, the browser and the screen reader, and
 * at most 4 (ORT's own default is half the cores, capped at 4). On a 2-core machine that is 1 thread: measured for
 * issue 13 with the full-size pack, 1 thread took 33 ms a step against 71-76 ms for 2 when the machine was busy, and
 * 26 against 17 ms when it was idle. A user's machine is rarely idle while they browse, and speech that stutters
 * because captions took both cores is worse than a slower caption.
 */
export function defaultThreads(cores = (globalThis.navigator as Navigator | undefined)?.hardwareConcurrency ?? 1): number {
  return Math.max(1, Math.min(4, cores - 1));
}

let wasmConfigured: string | null = null;

/** ORT's wasm settings are global and fixed once the runtime starts, so they are set once, before the first session. */
export function configureWasm(ort: Ort, threads: number, wasmPaths?: string | Record<string, string>): void {
  const key = JSON.stringify([threads, wasmPaths ?? null]);
  if (wasmConfigured !== null) return;
  wasmConfigured = key;
  ort.env.wasm.numThreads = threads;
  if (wasmPaths !== undefined) ort.env.wasm.wasmPaths = wasmPaths;
  ort.env.wasm.proxy = false;
}

export interface PackSessions {
  backend: Backend;
  vision: Session;
  mapper: Session;
  decoder: Session;
  /** CLIP's text tower, when the pack has one and it was created (the captioner creates it at its first use) */
  text?: Session;
  /** every session it holds now, the text tower's too once created */
  release(): Promise<void>;
}

/** A graph's bytes, or their promise: a pack streamed into the engine's frame delivers one file after another. */
export type GraphBytes = Uint8Array | Promise<Uint8Array>;

interface SessionTuning {
  allowSpinning?: boolean;
  nLayer?: number;
  profile?: boolean;
  /** called after each session is created, with the ms its creation took */
  onCreated?: (graph: string, ms: number) => void;
}

/**
 * How much of ORT's graph optimisation each session gets at creation. On WASM, the graphs that run once per image
 * (vision, mapper) get none; the decoder, which runs once per token, gets the basic level; the text tower, once per
 * caption, all of it. What the basic level does is constant folding and removing redundant nodes: an fp16-stored pack's
 * Cast nodes widen every weight to fp32 then, and the wasm heap keeps the high point (fp16 and fp32 copies side by
 * side) for good. Unoptimised, the weights stay fp16 and each run widens them into scratch memory. Measured on the
 * full-size fp16 pack, alternated with 'all' everywhere (a comparison under load 1.0-3.0 on 2 cores, not a figure to
 * quote):
 *   - Chromium (bench:page BENCH_ONLY=restart, 6 restarts each): the extension's memory 2.34-2.36 GB against
 *     2.66-2.68 GB; vision session 0.8 s against 2.1-3.4 s, mapper 0.1-0.2 s against 0.5-0.8 s, but the decoder
 *     2.6-3.7 s against 1.3-2.4 s (it is now the first to run ORT's folding code, which V8 still runs in its baseline
 *     compiler's code); first label after a restart 6.9-8.0 s against 7.0-9.8 s.
 *   - Node: per image, vision +20-40 ms and mapper +13 ms (of about 600 ms for a 20-token caption).
 * The decoder unoptimised takes 3-4x longer per token (it would widen all of GPT-2 at every token), and the text
 * tower about 70 ms more per caption. Above the basic level, ORT's extended level only fuses GPT-2's tanh GELU into
 * FastGelu and each attention's transpose-and-scale into a FusedMatMul (12 of each; the 'all' level adds nothing more
 * to this graph), and for the decoder those passes cost more at creation than they save:
 *   - Chromium, bench:page BENCH_ONLY=restart, the two alternated (6 restarts each, load 1.2-4 on 2 cores, mostly the
 *     benchmark's own): the decoder's session 2.05-2.5 s (one 3.2 s) against 2.5-3.2 s, the first label after a
 *     restart 6.4-7.7 s, median 6.5, against 6.7-8.4 s, median 7.1. A whole bench:page each, twice: engine-alone
 *     throughput 0.83 and 0.77 images/s against 0.83 and 0.69, the page 1.18 and 0.97 against 1.15 and 0.99.
 *   - Node, 1 thread, warm, 4 rounds alternated (load 1.0-1.3): 24.0-25.1 ms per token against 23.3-28.6, five rows
 *     61-70 ms per step either way, prefill 73-78 ms against 71-76.
 * The text tower keeps 'all' (unmeasured at the basic level). WebGPU keeps 'all' everywhere (unmeasured on a real GPU).
 */
const WASM_LEVEL: Record<string, OrtModule.InferenceSession.SessionOptions['graphOptimizationLevel']> = {
  vision: 'disabled',
  mapper: 'disabled',
  decoder: 'basic',
  text: 'all',
};

function sessionOptions(backend: Backend, tuning: SessionTuning, graph: string): OrtModule.InferenceSession.SessionOptions {
  return {
    executionProviders: [backend],
    graphOptimizationLevel: backend === 'wasm' ? (WASM_LEVEL[graph] ?? 'all') : 'all',
    // ORT's per-operator profiler (the benchmark's op-level breakdown); endProfiling() prints it as JSON
    enableProfiling: tuning.profile ?? false,
    // ORT's worker threads busy-wait between operators by default. Off by default here: an extension should not burn
    // a core while idle, and on a busy 2-core machine the spinning threads steal time from the decode loop.
    extra: { session: { intra_op: { allow_spinning: tuning.allowSpinning ? '1' : '0' } } },
  };
}

/**
 * Which session is made first. On WASM, the decoder: its creation is the wasm heap's high point (its bytes, its fp16
 * weights and their fp32 widening side by side), and the heap never shrinks, so what it frees afterwards then holds the
 * vision and mapper sessions instead of their sitting above that high point. The three creations take as long in
 * either order (whichever goes first runs ORT's code cold). Measured with the full-size fp16 pack the installer makes,
 * the two orders alternated (load 0.3-1.9 per core, mostly the benchmark's own: comparisons, not figures to quote):
 *   - Chromium, bench:page: the extension's memory after a 50-image page 1.75 GB against 1.93 GB, after the
 *     1,000-image page 1.72 against 1.88 GB; at the first label after a restart 1.67-2.17 GB against 2.33-2.39 GB
 *     (12 restarts each; the spread is the pack's bytes not yet collected), and that label 6.4-6.9 s against 6.9-7.4 s;
 *     with CLIP's text tower (made after the others, at the first caption) 2.0 GB against 2.08-2.6 GB, 7.2-7.7 s
 *     against 7.7-8.1 s. Page throughput the same (1.18 against 1.15 images/s).
 *   - Node: resident after a caption's work 1.58 GB against 1.76-1.82 GB.
 * On WebGPU the weights live on the GPU: the image graphs first, as before.
 */
const CREATION_ORDER: Record<Backend, readonly ('vision' | 'mapper' | 'decoder')[]> = {
  wasm: ['decoder', 'vision', 'mapper'],
  webgpu: ['vision', 'mapper', 'decoder'],
};

/** One session; ORT copies the bytes into its own memory, so the caller may drop them once this resolves. */
async function createOne(
  ort: Ort,
  graph: string,
  bytes: GraphBytes,
  opts: OrtModule.InferenceSession.SessionOptions,
  tuning: SessionTuning,
): Promise<Session> {
  const data = await bytes;
  const t0 = performance.now();
  const s = await ort.InferenceSession.create(data, opts);
  tuning.onCreated?.(graph, performance.now() - t0);
  return s;
}

/**
 * The pack's image-to-caption graphs as sessions, one after another in CREATION_ORDER, each as soon as its bytes are
 * there (a streamed pack's later files are still arriving while the first sessions are made). The text tower is
 * created apart (createTextSession), by the captioner at its first use, so that the first caption's image work starts
 * without waiting for it; `files.text`, when given, is created here too (tests and benchmarks that want all four).
 */
export async function createSessions(
  ort: Ort,
  files: { vision: GraphBytes; mapper: GraphBytes; decoder: GraphBytes; text?: GraphBytes },
  backend: Backend,
  tuning: SessionTuning = {},
): Promise<PackSessions> {
  const opts = (graph: string) => sessionOptions(backend, tuning, graph);
  const made: Partial<Record<'vision' | 'mapper' | 'decoder' | 'text', Session>> = {};
  try {
    // Sequentially, so that peak memory holds one graph being compiled at a time (see CREATION_ORDER).
    for (const graph of CREATION_ORDER[backend]) {
      // On WebGPU the KV cache stays on the GPU between decode steps (see KvDecoder).
      const o =
        graph === 'decoder' && backend === 'webgpu' && tuning.nLayer
          ? { ...opts('decoder'), preferredOutputLocation: kvOnGpu(tuning.nLayer) }
          : opts(graph);
      made[graph] = await createOne(ort, graph, files[graph], o, tuning);
    }
    if (files.text) made.text = await createOne(ort, 'text', files.text, opts('text'), tuning);
  } catch (e) {
    await Promise.allSettled(Object.values(made).map((s) => s.release()));
    throw new BackendUnavailableError(`${backend}: ${(e as Error).message}`, { cause: e });
  }
  const { vision, mapper, decoder, text } = made as Required<Omit<typeof made, 'text'>> & { text?: Session };
  const sessions: PackSessions = {
    backend,
    vision,
    mapper,
    decoder,
    ...(text ? { text } : {}),
    release: async () => {
      const all = [sessions.vision, sessions.mapper, sessions.decoder, sessions.text].filter((s): s is Session => s !== undefined);
      await Promise.allSettled(all.map((s) => s.release()));
    },
  };
  return sessions;
}

/**
 * CLIP's text tower as a session on `sessions`' backend, kept in `sessions.text` (released with the others). ORT's own
 * error is thrown as it is, so that a WebGPU failure here falls back to WASM like any run-time one.
 */
export async function createTextSession(ort: Ort, sessions: PackSessions, bytes: GraphBytes, tuning: SessionTuning = {}): Promise<void> {
  sessions.text = await createOne(ort, 'text', bytes, sessionOptions(sessions.backend, tuning, 'text'), tuning);
}

/** preferredOutputLocation for the decoder: every present.* on the GPU, logits on the CPU. */
function kvOnGpu(nLayer: number): Record<string, 'gpu-buffer' | 'cpu'> {
  const loc: Record<string, 'gpu-buffer' | 'cpu'> = { logits: 'cpu' };
  for (let i = 0; i < nLayer; i++) loc[`present.${i}.key`] = loc[`present.${i}.value`] = 'gpu-buffer';
  return loc;
}

/** image pixels [N,3,S,S] -> image embeddings [N,D] */
export async function runVision(ort: Ort, s: PackSessions, pixels: Float32Array, n: number, m: PackManifest): Promise<Float32Array> {
  const S = m.preprocess.imageSize;
  const out = await s.vision.run({ pixel_values: new ort.Tensor('float32', pixels, [n, 3, S, S]) });
  return out.image_embeds.data as Float32Array;
}

/** image embeddings [N,D] -> prefix embeddings [N,P,E]; L2-normalises first when the pack says so. */
export async function runMapper(ort: Ort, s: PackSessions, embeds: Float32Array, n: number, m: PackManifest): Promise<Float32Array> {
  const D = m.embedding.dim;
  let x = embeds;
  if (m.embedding.l2Normalize) {
    x = new Float32Array(embeds.length);
    for (let i = 0; i < n; i++) {
      let ss = 0;
      for (let j = 0; j < D; j++) ss += embeds[i * D + j] ** 2;
      const inv = 1 / Math.sqrt(ss);
      for (let j = 0; j < D; j++) x[i * D + j] = embeds[i * D + j] * inv;
    }
  }
  const out = await s.mapper.run({ image_embeds: new ort.Tensor('float32', x, [n, D]) });
  return out.prefix_embeds.data as Float32Array;
}

/**
 * CLIP's text tower on one or several texts, each already tokenized as [bos, ..., eot]: returns the text embeddings
 * [rows, text.dim], not normalised. Rows are padded with 0 after their eot (the tower finds each row's end as its
 * largest id, and attention is causal, so padding changes nothing), and run at the longest row's length, not 77.
 */
export async function runText(ort: Ort, s: PackSessions, rows: readonly (readonly number[])[], m: PackManifest): Promise<Float32Array> {
  if (!s.text || !m.text) throw new Error('runText: this pack has no text tower');
  const n = Math.max(...rows.map((r) => r.length));
  const ids = new BigInt64Array(rows.length * n); // zeros: the padding
  rows.forEach((r, i) => r.forEach((id, j) => (ids[i * n + j] = BigInt(id))));
  const out = await s.text.run({ input_ids: new ort.Tensor('int64', ids, [rows.length, n]) });
  const t = out.text_embeds;
  return (t.location === 'cpu' ? t.data : await t.getData(true)) as Float32Array;
}

/**
 * The GPT-2 decoder with its KV cache, as `DecoderSteps` for the decode loop.
 * Rows are captions (greedy batch) or beams; `step` gathers the cache rows each new row continues.
 *
 * On WASM the cache lives in JS arrays. On WebGPU it stays on the GPU between steps (the session returns `present.*`
 * as GPU buffers), and the gather is a few buffer-to-buffer copies: a row [H, T, Dh] is contiguous. Only the logits
 * come back to the CPU each step.
 */
export class KvDecoder implements DecoderSteps {
  private cpuPast: Float32Array[] = []; // WASM: per layer key, value, ... each [rows, H, T, Dh]
  private gpuPast: Tensor[] = []; // WebGPU: the same, as GPU-buffer tensors
  private rows = 0;
  private pastLen = 0;

  /** Where the cache lives follows where the session puts its outputs (createSessions' preferredOutputLocation). */
  constructor(
    private readonly ort: Ort,
    private readonly session: Session,
    private readonly m: PackManifest,
  ) {}

  private feeds(ids: number[], idsPerRow: number, embeds: Float32Array | null, nEmbeds: number, rows: number): Record<string, Tensor> {
    const { nLayer, nHead, headDim, nEmbd } = this.m.decoder;
    const total = this.pastLen + nEmbeds + idsPerRow;
    const feeds: Record<string, Tensor> = {
      input_ids: new this.ort.Tensor('int64', BigInt64Array.from(ids, BigInt), [rows, idsPerRow]),
      inputs_embeds: new this.ort.Tensor('float32', embeds ?? new Float32Array(0), [rows, nEmbeds, nEmbd]),
      attention_mask: new this.ort.Tensor('int64', new BigInt64Array(rows * total).fill(1n), [rows, total]),
    };
    const shape = [rows, nHead, this.pastLen, headDim];
    for (let i = 0; i < nLayer; i++) {
      for (const [j, kv] of [
        [0, 'key'],
        [1, 'value'],
      ] as const) {
        feeds[`past_key_values.${i}.${kv}`] =
          this.gpuPast.length > 0
            ? this.gpuPast[2 * i + j]
            : new this.ort.Tensor('float32', this.cpuPast[2 * i + j] ?? new Float32Array(0), shape);
      }
    }
    return feeds;
  }

  private async run(feeds: Record<string, Tensor>, rows: number, added: number): Promise<Float32Array> {
    const out = await this.session.run(feeds);
    const { nLayer } = this.m.decoder;
    const names: string[] = [];
    for (let i = 0; i < nLayer; i++) names.push(`present.${i}.key`, `present.${i}.value`);
    const old = this.gpuPast;
    if (out[names[0]].location === 'gpu-buffer') {
      this.gpuPast = names.map((n) => out[n]);
      this.cpuPast = [];
    } else {
      this.cpuPast = names.map((n) => out[n].data as Float32Array);
      this.gpuPast = [];
    }
    for (const t of old) t.dispose(); // the inputs of this run, no longer needed
    this.rows = rows;
    this.pastLen += added;
    const logits = out.logits;
    return (logits.location === 'cpu' ? logits.data : await logits.getData(true)) as Float32Array;
  }

  /** Prefill with prefix embeddings [rows, P, E]; returns the logits [rows, V]. */
  async prefill(prefix: Float32Array, rows: number): Promise<Float32Array> {
    const P = this.m.mapper.prefixLength;
    this.release();
    this.rows = rows;
    return this.run(this.feeds([], 0, prefix, P, rows), rows, P);
  }

  async step(parents: number[], tokens: number[]): Promise<Float32Array> {
    const rows = parents.length;
    const identity = rows === this.rows && parents.every((p, i) => p === i);
    if (!identity) {
      if (this.gpuPast.length > 0) await this.gatherGpu(parents);
      else this.gatherCpu(parents);
    }
    return this.run(this.feeds(tokens, 1, null, 0, rows), rows, 1);
  }

  private gatherCpu(parents: number[]) {
    const { nHead, headDim } = this.m.decoder;
    const rowSize = nHead * this.pastLen * headDim;
    this.cpuPast = this.cpuPast.map((t) => {
      const g = new Float32Array(parents.length * rowSize);
      parents.forEach((p, i) => g.set(t.subarray(p * rowSize, (p + 1) * rowSize), i * rowSize));
      return g;
    });
  }

  private async gatherGpu(parents: number[]) {
    const { nHead, headDim } = this.m.decoder;
    const device = (await this.ort.env.webgpu.device) as GPUDeviceLike;
    const rowBytes = nHead * this.pastLen * headDim * 4;
    const rows = parents.length;
    const encoder = device.createCommandEncoder();
    const usage = 0x80 /* STORAGE */ | 0x04 /* COPY_SRC */ | 0x08; /* COPY_DST */
    const next = this.gpuPast.map((t) => {
      const dst = device.createBuffer({ size: rows * rowBytes, usage });
      const src = t.gpuBuffer as unknown;
      parents.forEach((p, i) => encoder.copyBufferToBuffer(src, p * rowBytes, dst, i * rowBytes, rowBytes));
      return this.ort.Tensor.fromGpuBuffer(dst as never, {
        dataType: 'float32',
        dims: [rows, nHead, this.pastLen, headDim],
        dispose: () => dst.destroy(),
      });
    });
    device.queue.submit([encoder.finish()]);
    for (const t of this.gpuPast) t.dispose();
    this.gpuPast = next;
  }

  /** Free the cache (GPU buffers must be released explicitly). */
  release() {
    for (const t of this.gpuPast) t.dispose();
    this.gpuPast = [];
    this.cpuPast = [];
    this.pastLen = 0;
  }
}

/** The few WebGPU calls the cache gather uses (typed locally: @webgpu/types is not a dependency). */
interface GPUDeviceLike {
  createCommandEncoder(): {
    copyBufferToBuffer(src: unknown, srcOffset: number, dst: unknown, dstOffset: number, size: number): void;
    finish(): unknown;
  };
  createBuffer(d: { size: number; usage: number }): { destroy(): void };
  queue: { submit(buffers: unknown[]): void };
}
