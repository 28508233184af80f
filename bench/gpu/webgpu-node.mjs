/**
 * Our ClipCap pipeline against the distilvit-style peer on a real GPU through WebGPU, without a browser:
 * Dawn (Chromium's WebGPU implementation) in Node, via the npm package `webgpu` (dawn.node), with the same
 * onnxruntime-web build the extension ships (`onnxruntime-web/webgpu`), and transformers.js's image-to-text pipeline
 * for the peer on that same ORT. Then the same on ORT's WASM backend (2 threads) for reference.
 *
 * Not run directly: bench/gpu/build.sh bundles this file with the engine (src/captioner) and transformers.js into
 * .gpu-carry/run.mjs; bench/gpu/device.sh runs it on the lent GPU machine. Environment:
 *   GPU_PACK  our pack folder (fp32)            GPU_PEER  peer model folder (transformers.js layout)
 *   GPU_RUNS  timed captions per side (10)      GPU_TOKENS new tokens per caption (20)
 *   GPU_WASM_RUNS  timed WASM captions (4)      GPU_THREADS  WASM threads (2)
 *   GPU_OUT   JSON written here                 GPU_SKIP_PEER=1, GPU_SKIP_WASM=1
 */
import { create, globals } from 'webgpu';
import * as ortWebgpu from 'onnxruntime-web/webgpu';
import * as ortNode from 'onnxruntime-web';
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const env = process.env;
// Two processes: GPU_MODE=webgpu runs the extension's ORT build (onnxruntime-web/webgpu) on Dawn; GPU_MODE=wasm runs
// onnxruntime-web's Node build (as bench/engine.bench.ts does), whose WASM threads work in Node. (The webgpu build in
// Node can only load its embedded wasm factory single-threaded: with threads > 1 it fetches its .mjs from a file: URL,
// which Node's fetch refuses; so the WebGPU process runs ORT's CPU side on 1 thread.)
const MODE = env.GPU_MODE ?? 'webgpu';
const ort = MODE === 'webgpu' ? ortWebgpu : ortNode;
Object.assign(globalThis, globals);
const gpu = create([]);
Object.defineProperty(globalThis, 'navigator', {
  value: { gpu, hardwareConcurrency: cpus().length, userAgent: 'node' },
  configurable: true,
});
// transformers.js runs on the injected ORT (set before it is first imported)
globalThis[Symbol.for('onnxruntime')] = ort;

const PACK = resolve(env.GPU_PACK ?? 'packs/random-full/fp32');
const PEER = env.GPU_PEER ? resolve(env.GPU_PEER) : null;
const RUNS = Number(env.GPU_RUNS ?? 10);
const WASM_RUNS = Number(env.GPU_WASM_RUNS ?? 4);
const TOKENS = Number(env.GPU_TOKENS ?? 20);
const THREADS = MODE === 'webgpu' ? 1 : Number(env.GPU_THREADS ?? 2);
const OUT = env.GPU_OUT ?? 'gpu-results.json';
const log = (...a) => console.log('[gpu]', ...a);

const stat = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p) => s[Math.min(s.length - 1, Math.max(0, Math.round(p * (s.length - 1))))];
  return s.length ? { median: q(0.5), min: s[0], max: s[s.length - 1], p10: q(0.1), p90: q(0.9), n: s.length } : null;
};

// 640x480 photo-like RGBA images (the pattern of bench/lib/pack.ts photoPng, without sharp: no PNG round trip)
function photo(seed, w = 640, h = 480) {
  const data = new Uint8ClampedArray(w * h * 4);
  let s = seed;
  for (let p = 0; p < w * h; p++) {
    for (let c = 0; c < 3; c++) {
      const i = p * 3 + c;
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      data[p * 4 + c] = (((p % w) * 255) / w + (Math.floor(p / w) * 128) / h + (s >>> 27) + (i % 3) * 40 * seed) & 255;
    }
    data[p * 4 + 3] = 255;
  }
  return { data, width: w, height: h };
}
const IMAGES = [1, 2, 3, 4].map((k) => photo(k));

const results = {
  mode: MODE,
  threads: THREADS,
  date: new Date().toISOString(),
  machine: { cpus: cpus().length, cpu: cpus()[0]?.model, node: process.version },
  ort: ort.env.versions,
  tokens: TOKENS,
  errors: [],
};
const save = () => writeFileSync(OUT, JSON.stringify(results, null, 2));

// ---- adapter
const adapter = MODE === 'webgpu' ? await gpu.requestAdapter({ powerPreference: 'high-performance' }) : null;
if (MODE === 'webgpu' && !adapter) {
  results.adapter = null;
  save();
  throw new Error('no WebGPU adapter');
}
const info = adapter?.info ?? {};
if (adapter)
  results.adapter = {
    vendor: info.vendor,
    architecture: info.architecture,
    device: info.device,
    description: info.description,
    subgroupMinSize: info.subgroupMinSize,
    subgroupMaxSize: info.subgroupMaxSize,
    features: [...adapter.features].sort(),
    shaderF16: adapter.features.has('shader-f16'),
    limits: {
      maxBufferSize: adapter.limits.maxBufferSize,
      maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
      maxComputeWorkgroupStorageSize: adapter.limits.maxComputeWorkgroupStorageSize,
    },
  };
if (adapter) log('adapter', JSON.stringify({ ...results.adapter, features: undefined }), 'shader-f16:', results.adapter.shaderF16);
save();

// ---- engine (bundled TypeScript sources)
const { createCaptioner } = await import('../../src/captioner/captioner.ts');
const { loadPackFromFiles } = await import('../../src/captioner/pack-loader.ts');
const { createSessions, KvDecoder, runMapper, runVision } = await import('../../src/captioner/sessions.ts');
const { argmax } = await import('../../src/captioner/decoding.ts');
const { preprocessRgba } = await import('../../src/captioner/preprocess.ts');

ort.env.wasm.numThreads = THREADS;
// Node's fetch cannot read file: URLs, so hand the webgpu build its wasm binary (the asyncify build: WebGPU EP + WASM EP)
if (MODE === 'webgpu')
  ort.env.wasm.wasmBinary = readFileSync(
    env.GPU_ORT_WASM ?? join(dirname(fileURLToPath(import.meta.url)), 'ort-wasm-simd-threaded.asyncify.wasm'),
  );
ort.env.logLevel = env.GPU_ORT_LOG ?? 'warning';

const NAMES = ['pack.json', 'vision.onnx', 'mapper.onnx', 'decoder.onnx', 'tokenizer.json'];
const loaded = await loadPackFromFiles(
  NAMES.map((n) => {
    const b = readFileSync(join(PACK, n));
    return { name: n, arrayBuffer: async () => b.buffer.slice(b.byteOffset, b.byteOffset + b.length) };
  }),
);
// stop tokens removed: every caption has exactly TOKENS tokens (bench/lib/pack.ts withoutStops)
const pack = { ...loaded, manifest: { ...loaded.manifest, tokens: { ...loaded.manifest.tokens, stop: [], eos: -1 } } };
const m = pack.manifest;
results.pack = { dir: PACK, id: m.id, precision: m.precision, bytes: Object.values(m.files).reduce((a, f) => a + f.bytes, 0) };

// ---- peer: transformers.js image-to-text on the same ORT
let tf = null;
async function loadPeer(device) {
  if (!tf) {
    tf = await import('@huggingface/transformers');
    tf.env.allowRemoteModels = false;
    tf.env.localModelPath = dirname(PEER);
  }
  const t = performance.now();
  const pipe = await tf.pipeline('image-to-text', basename(PEER), {
    dtype: 'fp32',
    device,
    local_files_only: true,
    session_options: { graphOptimizationLevel: 'all', extra: { session: { intra_op: { allow_spinning: '0' } } } },
  });
  const createMs = performance.now() - t;
  // 224x224 images: transformers.js resizes through sharp in Node (not carried), and skips the resize at its size
  const raws = [1, 2, 3, 4].map((k) => photo(k, 224, 224)).map((im) => new tf.RawImage(im.data, im.width, im.height, 4).rgb());
  return {
    createMs,
    async caption(i) {
      const t0 = performance.now();
      const out = await pipe(raws[i % raws.length], { max_new_tokens: TOKENS, min_new_tokens: TOKENS, do_sample: false, num_beams: 1 });
      return { ms: performance.now() - t0, text: out[0]?.generated_text };
    },
    dispose: () => pipe.dispose(),
  };
}

async function ours(backend) {
  const t = performance.now();
  const cap = await createCaptioner({
    pack,
    ort,
    backend,
    threads: THREADS,
    onEvent: (e) => e.type === 'fallback' && results.errors.push(`ours ${backend} fell back: ${e.reason}`),
  });
  return { cap, createMs: performance.now() - t };
}

/** warm up, then alternate ours / peer captions over the images */
async function compare(backend, runs) {
  const side = { backend };
  const o = await ours(backend);
  side.ours = { createMs: o.createMs, backendChosen: o.cap.backend, reason: o.cap.backendReason };
  log(backend, 'ours created in', o.createMs.toFixed(0), 'ms:', o.cap.backend, '-', o.cap.backendReason);
  let peer = null;
  if (PEER && env.GPU_SKIP_PEER !== '1') {
    try {
      peer = await loadPeer(backend);
      side.peer = { createMs: peer.createMs };
      log(backend, 'peer created in', peer.createMs.toFixed(0), 'ms');
    } catch (e) {
      results.errors.push(`peer ${backend}: ${e.stack ?? e}`);
      log('peer failed', e);
    }
  }
  for (let i = 0; i < 2; i++) {
    await o.cap.caption(IMAGES[i], { strategy: 'greedy', maxTokens: TOKENS });
    if (peer) await peer.caption(i);
  }
  const ourRuns = [];
  const peerRuns = [];
  for (let i = 0; i < runs; i++) {
    const r = await o.cap.caption(IMAGES[i % IMAGES.length], { strategy: 'greedy', maxTokens: TOKENS });
    ourRuns.push(r);
    if (peer) peerRuns.push(await peer.caption(i));
  }
  const total = stat(ourRuns.map((r) => r.timings.total));
  side.ours.totalMs = total;
  side.ours.tokens = ourRuns[0].timings.tokens;
  side.ours.stages = Object.fromEntries(
    ['preprocess', 'vision', 'mapper', 'prefill', 'decode', 'perToken'].map((k) => [k, stat(ourRuns.map((r) => r.timings[k]))]),
  );
  side.ours.tokenIds = IMAGES.map((_, i) => ourRuns[i]?.tokenIds);
  // beam-5 once per image (exercises the KV-cache gather; on WebGPU the GPU-buffer copy path)
  const beams = [];
  for (let i = 0; i < IMAGES.length; i++) beams.push(await o.cap.caption(IMAGES[i], { strategy: 'beam', beams: 5, maxTokens: TOKENS }));
  side.ours.beam5 = { totalMs: stat(beams.map((r) => r.timings.total)), tokenIds: beams.map((r) => r.tokenIds) };
  if (peer) {
    side.peer.totalMs = stat(peerRuns.map((r) => r.ms));
    side.peer.texts = peerRuns.slice(0, IMAGES.length).map((r) => r.text);
    side.ratioOursOverPeer = total.median / side.peer.totalMs.median;
    await peer.dispose();
  }
  await o.cap.dispose();
  const s = side.ours.stages;
  log(
    `${backend}: ours ${total.median.toFixed(1)} ms/caption (p10 ${total.p10.toFixed(1)}, p90 ${total.p90.toFixed(1)}) ` +
      `[pre ${s.preprocess.median.toFixed(1)}, vision ${s.vision.median.toFixed(1)}, mapper ${s.mapper.median.toFixed(1)}, prefill ${s.prefill.median.toFixed(1)}, per token ${s.perToken.median.toFixed(2)}]` +
      (peer
        ? `; peer ${side.peer.totalMs.median.toFixed(1)} ms (p10 ${side.peer.totalMs.p10.toFixed(1)}, p90 ${side.peer.totalMs.p90.toFixed(1)}); ours/peer = ${side.ratioOursOverPeer.toFixed(3)}`
        : '') +
      `; beam-5 ${side.ours.beam5.totalMs.median.toFixed(1)} ms`,
  );
  return side;
}

/** Direct check of the KV cache on the GPU: sessions + KvDecoder as the engine builds them. */
async function kvCheck() {
  const s = await createSessions(ort, pack.files, 'webgpu', { nLayer: m.decoder.nLayer });
  try {
    const px = preprocessRgba(IMAGES[0], m.preprocess);
    const prefix = await runMapper(ort, s, await runVision(ort, s, px, 1, m), 1, m);
    const dec = new KvDecoder(ort, s.decoder, m);
    const V = m.decoder.vocabSize;
    let logits = await dec.prefill(prefix, 1);
    const onGpu = dec.gpuPast.length > 0;
    const loc = dec.gpuPast[0]?.location ?? 'cpu';
    const ids = [argmax(logits, 0, V)];
    const t = performance.now();
    for (let i = 1; i < TOKENS; i++) {
      logits = await dec.step([0], [ids[i - 1]]);
      ids.push(argmax(logits, 0, V));
    }
    const stepMs = (performance.now() - t) / (TOKENS - 1);
    // a beam-style gather (parents 0,0) through the GPU buffer copies, then one step
    await dec.step([0, 0], [ids[TOKENS - 1], ids[TOKENS - 1]]);
    const stillGpu = dec.gpuPast.length > 0;
    dec.release();
    return { kvOnGpu: onGpu, location: loc, afterGather: stillGpu, stepMs, tokenIds: ids };
  } finally {
    await s.release();
  }
}

function agreement(a, b) {
  let n = 0,
    same = 0,
    identical = 0;
  for (let i = 0; i < a.length; i++) {
    if (!a[i] || !b[i]) continue;
    const k = Math.min(a[i].length, b[i].length);
    let all = a[i].length === b[i].length;
    for (let j = 0; j < k; j++) {
      n++;
      if (a[i][j] === b[i][j]) same++;
      else all = false;
    }
    if (all) identical++;
  }
  return { tokens: n, agreeing: same, captionsIdentical: identical, captions: a.length };
}

if (MODE === 'webgpu') {
  try {
    results.webgpu = await compare('webgpu', RUNS);
  } catch (e) {
    results.errors.push(`webgpu: ${e.stack ?? e}`);
    log('webgpu failed', e);
  }
  save();
  try {
    results.kvCheck = await kvCheck();
    log(
      'kv cache on GPU:',
      results.kvCheck.kvOnGpu,
      results.kvCheck.location,
      'after gather:',
      results.kvCheck.afterGather,
      'step',
      results.kvCheck.stepMs.toFixed(2),
      'ms',
    );
  } catch (e) {
    results.errors.push(`kvCheck: ${e.stack ?? e}`);
    log('kv check failed', e);
  }
} else {
  try {
    results.wasm = await compare('wasm', WASM_RUNS);
  } catch (e) {
    results.errors.push(`wasm: ${e.stack ?? e}`);
    log('wasm failed', e);
  }
  // merge with the WebGPU process's results (GPU_WEBGPU_JSON): token agreement on the same pack and images
  if (env.GPU_WEBGPU_JSON) {
    const w = JSON.parse(readFileSync(env.GPU_WEBGPU_JSON, 'utf8'));
    results.adapter = w.adapter;
    results.webgpu = w.webgpu;
    results.kvCheck = w.kvCheck;
    results.webgpuThreads = w.threads;
    results.errors.unshift(...w.errors.map((e) => `(webgpu process) ${e}`));
    if (results.webgpu?.ours && results.wasm?.ours) {
      results.agreementWebgpuVsWasm = {
        greedy: agreement(results.webgpu.ours.tokenIds, results.wasm.ours.tokenIds),
        beam5: agreement(results.webgpu.ours.beam5.tokenIds, results.wasm.ours.beam5.tokenIds),
        kvCheckVsWasmGreedy: results.kvCheck ? agreement([results.kvCheck.tokenIds], [results.wasm.ours.tokenIds[0]]) : null,
        peerTextsIdentical:
          results.webgpu.peer?.texts && results.wasm.peer?.texts
            ? results.webgpu.peer.texts.filter((t, i) => t === results.wasm.peer.texts[i]).length
            : null,
      };
      log('agreement webgpu vs wasm', JSON.stringify(results.agreementWebgpuVsWasm));
    }
  }
}
save();
log('written', OUT);
process.exit(0);
