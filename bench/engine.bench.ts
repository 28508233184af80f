/**
 * Engine benchmark (npm run bench): Node, onnxruntime-web wasm with 2 threads, the full-size random int8 pack.
 *
 * Prints median and spread per stage, greedy and beam-5 caption latency, images/s with batching, and the decode
 * speed of transformers.js generate() on the same GPT-2 weights (when that export exists). Writes
 * bench/results/engine.json. These are measurements, not tests: nothing here fails on a slow machine.
 *
 *   BENCH_PACK=packs/random-full/int8   pack to time (default)
 *   BENCH_PEER=packs/random-full/transformersjs   transformers.js model folder (see below)
 *   BENCH_RUNS=7  BENCH_THREADS=2
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join, resolve } from 'node:path';
import * as ort from 'onnxruntime-web';
import { it } from 'vitest';
import { loadNow, loadVerdict, readBandwidth } from './lib/machine.mjs';
import { fmt, stat, type Stat } from './lib/stats';

// transformers.js must run on the same onnxruntime-web (wasm) as the engine, not onnxruntime-node: it honours this
// global, which has to be set before it is first imported.
(globalThis as Record<symbol, unknown>)[Symbol.for('onnxruntime')] = ort;

const REPO = resolve(import.meta.dirname, '..');
const PACK = resolve(REPO, process.env.BENCH_PACK ?? 'packs/random-full/int8');
const PEER = resolve(REPO, process.env.BENCH_PEER ?? 'packs/random-full/transformersjs');
const RUNS = Number(process.env.BENCH_RUNS ?? 7);
const THREADS = Number(process.env.BENCH_THREADS ?? 2);
// ORT worker threads busy-waiting between operators: the engine's default is off; both sides get the same setting.
const SPIN = process.env.BENCH_SPIN === '1';
const OUT = resolve(REPO, 'bench/results/engine.json');

it('engine benchmark', async () => {
  if (!existsSync(join(PACK, 'pack.json'))) {
    const msg = `No pack at ${PACK}. Build the full-size random pack first: npm run pack:random (or set BENCH_PACK).`;
    console.log(`[bench] ${msg}`);
    throw new Error(msg);
  }
  const { createCaptioner } = await import('../src/captioner/captioner');
  const { loadPackDir } = await import('./lib/pack');
  const { decodeImageWithSharp } = await import('../src/captioner/node-decode');
  const sharp = (await import('sharp')).default;

  const loadBefore = loadNow();
  // This process's one-core read bandwidth, measured before ORT starts: the one-row ceiling below divides by it.
  const bandwidth = readBandwidth();
  const pack = await loadPackDir(PACK);
  const m = pack.manifest;
  const tLoad = performance.now();
  const cap = await createCaptioner({
    pack,
    ort: ort,
    backend: 'wasm',
    threads: THREADS,
    allowSpinning: SPIN,
    decodeImage: decodeImageWithSharp,
  });
  const sessionMs = performance.now() - tLoad;

  // A 640x480 photo-like PNG (smooth gradients + noise), so that preprocessing does a real downscale.
  const w = 640,
    h = 480;
  const raw = Buffer.alloc(w * h * 3);
  let seed = 1;
  for (let i = 0; i < raw.length; i++) {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    const p = Math.floor(i / 3);
    raw[i] = (((p % w) * 255) / w + (Math.floor(p / w) * 128) / h + (seed >>> 27)) & 255;
  }
  const image = await sharp(raw, { raw: { width: w, height: h, channels: 3 } })
    .png()
    .toBuffer();

  // The peer: transformers.js generate() (greedy) on the same GPT-2 weights, loaded up front so that its runs can be
  // interleaved with ours and both see the same machine load.
  let peerGen: (() => Promise<{ ms: number; tokens: number }>) | null = null;
  let peerModel: { dispose(): Promise<unknown> } | null = null;
  let peerDtype = '';
  if (existsSync(join(PEER, 'config.json'))) {
    const tf = await import('@huggingface/transformers');
    tf.env.allowRemoteModels = false;
    tf.env.localModelPath = join(PEER, '..');
    const id = PEER.split('/').pop()!;
    peerDtype = existsSync(join(PEER, 'onnx/model_quantized.onnx')) && m.precision === 'int8' ? 'q8' : 'fp32';
    // device 'auto' lists the devices of the injected ORT, i.e. none: ORT then uses its default backend, wasm.
    const model = await tf.AutoModelForCausalLM.from_pretrained(id, {
      dtype: peerDtype,
      device: 'auto',
      local_files_only: true,
      session_options: { graphOptimizationLevel: 'all', extra: { session: { intra_op: { allow_spinning: SPIN ? '1' : '0' } } } },
    } as never);
    peerModel = model;
    // A prompt as long as our prefix, so both prefill the same number of positions.
    const P = m.mapper.prefixLength;
    const input_ids = new tf.Tensor(
      'int64',
      BigInt64Array.from({ length: P }, (_, i) => BigInt(100 + i)),
      [1, P],
    );
    const attention_mask = new tf.Tensor('int64', new BigInt64Array(P).fill(1n), [1, P]);
    peerGen = async () => {
      const t = performance.now();
      const out = (await model.generate({ input_ids, attention_mask, max_new_tokens: 20, min_new_tokens: 20, do_sample: false })) as {
        dims: number[];
      };
      return { ms: performance.now() - t, tokens: out.dims[1] - P };
    };
    await peerGen();
  }

  // Warm-up (first runs compile kernels and grow the wasm heap).
  await cap.caption(image, { strategy: 'greedy', maxTokens: 20 });
  await cap.caption(image, { strategy: 'beam', beams: 5, maxTokens: 20 });

  const greedy = [];
  const peerRuns: Array<{ ms: number; tokens: number }> = [];
  for (let i = 0; i < RUNS; i++) {
    greedy.push(await cap.caption(image, { strategy: 'greedy', maxTokens: 20 }));
    if (peerGen) peerRuns.push(await peerGen());
  }
  const beam = [];
  for (let i = 0; i < Math.max(3, Math.ceil(RUNS / 2)); i++)
    beam.push(await cap.caption(image, { strategy: 'beam', beams: 5, maxTokens: 20 }));

  const stages = {
    preprocess: stat(greedy.map((r) => r.timings.preprocess)),
    vision: stat(greedy.map((r) => r.timings.vision)),
    mapper: stat(greedy.map((r) => r.timings.mapper)),
    prefill: stat(greedy.map((r) => r.timings.prefill)),
    perToken: stat(greedy.map((r) => r.timings.perToken)),
  };
  const greedyTotal = stat(greedy.map((r) => r.timings.total));
  const greedyTokens = greedy[0].timings.tokens;
  // What a 20-token caption costs, from the measured stages (random weights may stop before 20 tokens).
  const greedy20 =
    stages.preprocess.median + stages.vision.median + stages.mapper.median + stages.prefill.median + 20 * stages.perToken.median;
  const beamTotal = stat(beam.map((r) => r.timings.total));
  const beamTokens = beam[0].timings.tokens;

  // Batching: 8 images through vision + mapper + greedy decode as one batch, against one at a time.
  const B = 8;
  const batchImgs = Array.from({ length: B }, () => image);
  await cap.captionBatch(batchImgs, { strategy: 'greedy', maxTokens: 20 });
  const batchMs: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t = performance.now();
    await cap.captionBatch(batchImgs, { strategy: 'greedy', maxTokens: 20 });
    batchMs.push(performance.now() - t);
  }
  const batchStat = stat(batchMs);
  const imagesPerSecBatched = (B * 1000) / batchStat.median;
  const imagesPerSecSingle = 1000 / greedyTotal.median;

  // Our decode speed, counted as generate() counts it: prefill + decode steps, tokens generated.
  // (Measured in the same loop as the peer's runs, alternating.)
  const ourTokPerSec = stat(greedy.map((r) => (r.timings.tokens * 1000) / (r.timings.prefill + r.timings.decode)));

  let peer: Record<string, unknown> = { available: false };
  if (peerGen) {
    peer = {
      available: true,
      dtype: peerDtype,
      tokensPerSec: stat(peerRuns.map((r) => (r.tokens * 1000) / r.ms)),
      tokens: peerRuns[0].tokens,
      generateMs: stat(peerRuns.map((r) => r.ms)),
    };
    await peerModel?.dispose();
  }
  await cap.dispose();

  const load = loadVerdict(loadBefore, loadNow());
  // The one-row ceiling: a decode step for one row reads every decoder weight once, and the wasm kernels compute in
  // fp32, so fp16-stored weights are read at twice their stored size (int8 ones at their own size, roughly).
  const decoderBytes = m.files.decoder.bytes * (m.precision === 'fp16' ? 2 : 1);
  const floorMs = decoderBytes / (bandwidth.gbPerSec * 1e6);
  const ceiling = {
    decoderBytesPerStep: decoderBytes,
    bandwidthGBps: bandwidth.gbPerSec,
    floorMsPerToken: floorMs,
    shareOfFloor: floorMs / stages.perToken.median,
  };
  const ratio = peer.available ? ourTokPerSec.median / (peer.tokensPerSec as Stat).median : null;
  const results = {
    date: new Date().toISOString(),
    // 1-minute load average before and after, and whether the figures may be quoted (bench/lib/machine.mjs)
    machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version, load },
    runtime: { ort: 'onnxruntime-web (wasm, Node build)', threads: THREADS, allowSpinning: SPIN },
    pack: { dir: PACK.slice(REPO.length + 1), id: m.id, precision: m.precision, sessionCreateMs: sessionMs },
    stages,
    greedy: { totalMs: greedyTotal, tokens: greedyTokens, estimated20TokenMs: greedy20 },
    beam5: { totalMs: beamTotal, tokens: beamTokens, ratioToGreedy: beamTotal.median / greedyTotal.median },
    batching: { batch: B, batchMs: batchStat, imagesPerSec: imagesPerSecBatched, imagesPerSecOneAtATime: imagesPerSecSingle },
    decodeTokensPerSec: ourTokPerSec,
    // bytes read per step ÷ this process's read bandwidth (bench/lib/machine.mjs readBandwidth), and how close to it we are
    ceiling,
    peer,
    ratioToPeer: ratio,
    targets: {
      ratioToPeerAtLeast1_2: ratio === null ? 'peer export missing' : ratio >= 1.2,
      greedy20TokensAtMost450ms: greedy20 <= 450,
      beam5AtMost2xGreedy: beamTotal.median / greedyTotal.median <= 2,
    },
  };
  mkdirSync(resolve(REPO, 'bench/results'), { recursive: true });
  writeFileSync(OUT, JSON.stringify(results, null, 2));

  const lines = [
    `pack ${results.pack.dir} (${m.precision}), onnxruntime-web wasm, ${THREADS} threads (spinning ${SPIN ? 'on' : 'off'}), ${load.line}; sessions ${sessionMs.toFixed(0)} ms`,
    `preprocess  ${fmt(stages.preprocess)}`,
    `vision      ${fmt(stages.vision)}`,
    `mapper      ${fmt(stages.mapper)}`,
    `prefill     ${fmt(stages.prefill)}`,
    `per token   ${fmt(stages.perToken)}`,
    `greedy      ${fmt(greedyTotal)} for ${greedyTokens} tokens; 20-token caption ≈ ${greedy20.toFixed(0)} ms (target ≤ 450)`,
    `beam-5      ${fmt(beamTotal)} for ${beamTokens} tokens; ${results.beam5.ratioToGreedy.toFixed(2)}× greedy (target ≤ 2)`,
    `batching    ${imagesPerSecBatched.toFixed(2)} images/s in batches of ${B} vs ${imagesPerSecSingle.toFixed(2)} one at a time`,
    `decode      ${ourTokPerSec.median.toFixed(1)} tokens/s (prefill + steps)`,
    `ceiling     ${(decoderBytes / 1e6).toFixed(0)} MB read per step at ${bandwidth.gbPerSec} GB/s (one core, this process) ≥ ${floorMs.toFixed(1)} ms per token; our step takes ${(1 / ceiling.shareOfFloor).toFixed(2)}× that floor`,
    peer.available
      ? `peer        transformers.js generate() ${(peer.tokensPerSec as Stat).median.toFixed(1)} tokens/s (${peer.dtype}); ours ÷ peer = ${ratio!.toFixed(2)} (target ≥ 1.2)`
      : `peer        not run: no transformers.js export of these GPT-2 weights at ${PEER.slice(REPO.length + 1)} (config.json + onnx/model[_quantized].onnx)`,
    `written to  ${OUT.slice(REPO.length + 1)}`,
  ];
  console.log(lines.map((l) => `[bench] ${l}`).join('\n'));
}, 1_800_000);
