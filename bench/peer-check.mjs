// Load a distilvit-style peer folder (bench/py/peer_distilvit.py) with transformers.js's own image-to-text pipeline on
// onnxruntime-web's wasm, greedy-decode one image, and print one JSON line:
//   {ids, tokens, text, dtype, threads, loadMs, captionMs: [...], firstStepMs: [...], pixelValues: {dims, file?}}
//
//   node bench/peer-check.mjs --model packs/peer-distilvit --image photo.png [--dtype fp32|q8|fp16]
//        [--max-new-tokens 20] [--min-new-tokens N] [--threads 2] [--runs 0] [--pixels-out pixels.f32]
//
// --pixels-out writes the pixel_values transformers.js computed (float32, little-endian), so a reference decode
// can start from exactly the same input. --runs N times N more full pipeline calls (image to caption) and, after
// each, the encoder plus the first decoder step alone.
import { writeFileSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import * as ort from 'onnxruntime-web';

// transformers.js must use onnxruntime-web (wasm), not onnxruntime-node: it honours this global, set before import.
globalThis[Symbol.for('onnxruntime')] = ort;

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc), []),
);
if (!args.model || !args.image) {
  console.error(
    'usage: node bench/peer-check.mjs --model DIR --image PNG [--dtype fp32|q8|fp16] [--max-new-tokens 20] [--min-new-tokens N] [--threads 2] [--runs 0] [--pixels-out FILE]',
  );
  process.exit(2);
}
const model = resolve(args.model);
const dtype = args.dtype ?? 'fp32';
const maxNewTokens = Number(args['max-new-tokens'] ?? 20);
const runs = Number(args.runs ?? 0);
ort.env.wasm.numThreads = Number(args.threads ?? 2);

// Importing transformers.js points ORT's wasmPaths at a CDN when none is set; keep ORT's own files (no network).
const wasmPathsBefore = ort.env.wasm.wasmPaths;
const tf = await import('@huggingface/transformers');
ort.env.wasm.wasmPaths = wasmPathsBefore;
tf.env.allowRemoteModels = false;
tf.env.allowLocalModels = true;
tf.env.localModelPath = dirname(model);

const t0 = performance.now();
// device 'auto' lists the devices of the injected ORT, i.e. none: ORT then uses its default backend, wasm.
const pipe = await tf.pipeline('image-to-text', basename(model), {
  dtype,
  device: 'auto',
  local_files_only: true,
  session_options: { graphOptimizationLevel: 'all', extra: { session: { intra_op: { allow_spinning: '0' } } } },
});
const loadMs = performance.now() - t0;

const image = await tf.RawImage.read(resolve(args.image));
const { pixel_values } = await pipe.processor(image);
if (args['pixels-out']) {
  const d = pixel_values.data;
  writeFileSync(args['pixels-out'], Buffer.from(d.buffer, d.byteOffset, d.byteLength));
}
const gen = { max_new_tokens: maxNewTokens, do_sample: false };
if (args['min-new-tokens']) gen.min_new_tokens = Number(args['min-new-tokens']); // e.g. always time 20 tokens
const out = await pipe.model.generate({ inputs: pixel_values, ...gen });
const ids = out.tolist()[0].map(Number);

const captionMs = [];
let text = (await pipe(image, gen))[0].generated_text; // also the warm-up for the timed runs
// encoder + first decoder step alone (generate with one new token from the same pixels), to split the caption time
const firstStepMs = [];
for (let i = 0; i < runs; i++) {
  let t = performance.now();
  text = (await pipe(image, gen))[0].generated_text;
  captionMs.push(performance.now() - t);
  t = performance.now();
  await pipe.model.generate({ inputs: pixel_values, max_new_tokens: 1, do_sample: false });
  firstStepMs.push(performance.now() - t);
}
await pipe.dispose();
console.log(
  JSON.stringify({
    ids,
    tokens: ids.length - 1,
    text,
    dtype,
    threads: ort.env.wasm.numThreads,
    loadMs,
    captionMs,
    firstStepMs,
    pixelValues: { dims: pixel_values.dims, file: args['pixels-out'] ?? null },
  }),
);
