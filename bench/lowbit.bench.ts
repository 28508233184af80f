/**
 * Fewer bytes per token (issue 13, item 3): weight-only MatMulNBits decoders (model/lowbit.py) at 4 and 8 bits,
 * blocks of 32 and 128, against fp32 and today's int8 (MatMulInteger), on onnxruntime-web's wasm in Node with ONE
 * thread (as the extension runs on a 2-core machine).
 *
 *   1. Full-size random pack: per-token decode time at one row, the variants ALTERNATING image by image (round-robin,
 *      the starting variant rotating), and free-running greedy caption agreement with fp32 on the pack's agreement
 *      set (golden.json: whole 20-token captions identical). Vision and mapper are the pack's own (fp16-stored), run
 *      once per image: only the decoder differs, so any disagreement is the decoder's.
 *   2. Toy pack (trained): whole greedy captions of every variant (vision, mapper and decoder all quantised) against
 *      fp32, on its held-out images.
 *
 * Random weights are chaotic: any rounding flips some tokens, so the random pack's agreement is a weak (pessimistic)
 * figure; the toy pack is trained but tiny. Neither stands in for a real ClipCap checkpoint.
 *
 * Build the graphs first (minutes):
 *   PYTHONPATH=. python3 .tmp/h/lowbit/build_full.py decoder mapper vision   (or any folder in LOWBIT_FULL)
 * Env: LOWBIT_FULL (folder of <role>-<variant>.onnx for the full-size pack), LOWBIT_TOY (same for the toy pack),
 * LOWBIT_IMAGES (toy held-out images to caption, default all), LOWBIT_ONLY (full or toy: one part alone).
 * Prints figures and the machine's load; writes bench/results/lowbit.json. A measurement, not a test.
 */
import { loadavg } from 'node:os';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import * as ort from 'onnxruntime-web';
import { it } from 'vitest';
import { argmax } from '../src/captioner/decoding';
import { decodeImageWithSharp } from '../src/captioner/node-decode';
import type { PackManifest } from '../src/captioner/pack-format';
import { preprocessRgba } from '../src/captioner/preprocess';
import { KvDecoder } from '../src/captioner/sessions';
import { loadNow, loadVerdict } from './lib/machine.mjs';
import { readGolden } from './lib/ours';
import { stat, type Stat } from './lib/stats';

const REPO = resolve(import.meta.dirname, '..');
const FULL = resolve(REPO, process.env.LOWBIT_FULL ?? '.tmp/h/lowbit/full');
const TOY_GRAPHS = resolve(REPO, process.env.LOWBIT_TOY ?? '.tmp/h/lowbit/toy');
const RANDOM_PACK = resolve(REPO, 'packs/random-full');
const TOY_PACK = resolve(REPO, 'packs/toy');
const OUT = resolve(REPO, 'bench/results/lowbit.json');
const VARIANTS = ['fp32', 'int8', 'q4b32', 'q4b128', 'q8b32', 'q8b128'] as const;
type Variant = (typeof VARIANTS)[number];
const TOKENS = 20;

const log = (s: string) => console.log(`[bench:lowbit] ${s}`);
// what `uptime` prints about load: the 1, 5 and 15 minute load averages
const uptime = () =>
  `load average: ${loadavg()
    .map((x) => x.toFixed(2))
    .join(', ')}`;
const r2 = (x: number) => Math.round(x * 100) / 100;

type Session = ort.InferenceSession;
const OPTS: ort.InferenceSession.SessionOptions = {
  executionProviders: ['wasm'],
  graphOptimizationLevel: 'all',
  extra: { session: { intra_op: { allow_spinning: '0' } } }, // as src/captioner/sessions.ts
};
const session = async (path: string): Promise<Session> => ort.InferenceSession.create(new Uint8Array(readFileSync(path)), OPTS);

/** Free-running greedy tokens from a prefix; the time of each decode step after the prefill. */
async function greedy(
  m: PackManifest,
  dec: Session,
  prefix: Float32Array,
  stops: number[],
): Promise<{ tokens: number[]; stepMs: number[] }> {
  const kv = new KvDecoder(ort, dec, m);
  const tokens: number[] = [];
  const stepMs: number[] = [];
  try {
    let logits = await kv.prefill(prefix, 1);
    for (let i = 0; i < TOKENS; i++) {
      const t = argmax(logits, 0, m.decoder.vocabSize);
      tokens.push(t);
      if (stops.includes(t) || i + 1 === TOKENS) break;
      const t0 = performance.now();
      logits = await kv.step([0], [t]);
      stepMs.push(performance.now() - t0);
    }
  } finally {
    kv.release();
  }
  return { tokens, stepMs };
}

async function prefixOf(m: PackManifest, vision: Session, mapper: Session, pixels: Float32Array): Promise<Float32Array> {
  const S = m.preprocess.imageSize;
  const e = (await vision.run({ pixel_values: new ort.Tensor('float32', pixels, [1, 3, S, S]) })).image_embeds.data as Float32Array;
  let x = e;
  if (m.embedding.l2Normalize) {
    const n = Math.hypot(...e);
    x = e.map((v) => v / n);
  }
  return (await mapper.run({ image_embeds: new ort.Tensor('float32', x, [1, m.embedding.dim]) })).prefix_embeds.data as Float32Array;
}

const median = (xs: number[]) => stat(xs).median;
const same = (a: number[], b: number[]) => a.length === b.length && a.every((t, i) => t === b[i]);
const fileMB = (p: string) => (existsSync(p) ? Math.round(statSync(p).size / 1e5) / 10 : null);

interface FullRow {
  variant: Variant;
  decoderMB: number | null;
  packMB: number | null;
  msPerToken: Stat;
  /** median over images of (this variant's per-token time / fp32's on the same image) */
  ratioVsFp32: number;
  ratioVsInt8: number;
  identicalCaptions: number;
  captions: number;
}

async function fullSize(): Promise<{ rows: FullRow[]; rounds: number }> {
  const m = JSON.parse(readFileSync(join(RANDOM_PACK, 'pack.json'), 'utf8')) as PackManifest;
  const golden = readGolden(RANDOM_PACK);
  // vision and mapper as the pack stores them: the same prefixes for every decoder
  const vision = await session(join(RANDOM_PACK, 'vision.onnx'));
  const mapper = await session(join(RANDOM_PACK, 'mapper.onnx'));
  const prefixes: Float32Array[] = [];
  for (const img of golden.images) {
    const b = Buffer.from(img.pixelValues.b64, 'base64');
    prefixes.push(await prefixOf(m, vision, mapper, new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length))));
  }
  await vision.release();
  await mapper.release();
  const decoders = {} as Record<Variant, Session>;
  for (const v of VARIANTS) decoders[v] = await session(join(FULL, `decoder-${v}.onnx`));
  log(`full-size: ${VARIANTS.length} decoders loaded; ${prefixes.length} images, round-robin`);
  // warm-up: one caption each
  for (const v of VARIANTS) await greedy(m, decoders[v], prefixes[0], []);
  const perTok = Object.fromEntries(VARIANTS.map((v) => [v, [] as number[]])) as Record<Variant, number[]>;
  const caps = Object.fromEntries(VARIANTS.map((v) => [v, [] as number[][]])) as Record<Variant, number[][]>;
  for (let i = 0; i < prefixes.length; i++) {
    for (let j = 0; j < VARIANTS.length; j++) {
      const v = VARIANTS[(i + j) % VARIANTS.length]; // the first variant rotates, so drift falls on all
      const r = await greedy(m, decoders[v], prefixes[i], []); // no stops: exactly 20 tokens, as golden.json
      perTok[v].push(median(r.stepMs));
      caps[v].push(r.tokens);
    }
    log(`  image ${i}: ${VARIANTS.map((v) => `${v} ${perTok[v][i].toFixed(1)}`).join(', ')} ms/token`);
  }
  for (const v of VARIANTS) await decoders[v].release();
  const ratio = (v: Variant, base: Variant) => r2(median(perTok[v].map((x, i) => x / perTok[base][i])));
  const roleMB = (role: string, v: Variant) => fileMB(join(FULL, `${role}-${v}.onnx`));
  const tokMB = fileMB(join(RANDOM_PACK, 'tokenizer.json')) ?? 0;
  const rows = VARIANTS.map((v) => {
    const parts = ['vision', 'mapper', 'decoder'].map((r) => roleMB(r, v));
    return {
      variant: v,
      decoderMB: roleMB('decoder', v),
      packMB: parts.some((p) => p === null) ? null : Math.round(parts.reduce<number>((a, b) => a + (b ?? 0), tokMB)),
      msPerToken: stat(perTok[v]),
      ratioVsFp32: ratio(v, 'fp32'),
      ratioVsInt8: ratio(v, 'int8'),
      identicalCaptions: caps[v].filter((c, i) => same(c, caps.fp32[i])).length,
      captions: prefixes.length,
    };
  });
  return { rows, rounds: prefixes.length };
}

interface ToyRow {
  variant: Variant;
  packMB: number;
  identicalCaptions: number;
  captions: number;
}

async function toy(): Promise<ToyRow[]> {
  const m = JSON.parse(readFileSync(join(TOY_PACK, 'pack.json'), 'utf8')) as PackManifest;
  const stops = [...m.tokens.stop, m.tokens.eos];
  const dir = join(TOY_PACK, 'heldout');
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.png'))
    .sort()
    .slice(0, Number(process.env.LOWBIT_IMAGES ?? 1e9));
  const pixels: Float32Array[] = [];
  for (const f of files)
    pixels.push(preprocessRgba(await decodeImageWithSharp(readFileSync(join(dir, f)), { maxPixels: 4096 * 4096 }), m.preprocess));
  const caps = {} as Record<Variant, number[][]>;
  for (const v of VARIANTS) {
    const [vision, mapper, dec] = await Promise.all(
      ['vision', 'mapper', 'decoder'].map((r) => session(join(TOY_GRAPHS, `${r}-${v}.onnx`))),
    );
    caps[v] = [];
    for (const p of pixels) caps[v].push((await greedy(m, dec, await prefixOf(m, vision, mapper, p), stops)).tokens);
    await Promise.all([vision, mapper, dec].map((s) => s.release()));
  }
  const tok = statSync(join(TOY_PACK, 'tokenizer.json')).size;
  return VARIANTS.map((v) => ({
    variant: v,
    packMB:
      Math.round((['vision', 'mapper', 'decoder'].reduce((a, r) => a + statSync(join(TOY_GRAPHS, `${r}-${v}.onnx`)).size, 0) + tok) / 1e5) /
      10,
    identicalCaptions: caps[v].filter((c, i) => same(c, caps.fp32[i])).length,
    captions: pixels.length,
  }));
}

it('low-bit decoders: per-token time, size and caption agreement', async () => {
  ort.env.wasm.numThreads = 1;
  const before = loadNow();
  const upBefore = uptime();
  log(`uptime before: ${upBefore}`);
  const only = process.env.LOWBIT_ONLY; // 'full' or 'toy': one part alone
  const full = only === 'toy' ? { rows: [], rounds: 0 } : await fullSize();
  const upMid = uptime();
  log(`uptime after the full-size run: ${upMid}`);
  const toyRows = only === 'full' ? [] : await toy();
  const upAfter = uptime();
  const load = loadVerdict(before, loadNow());
  log('variant   dec MB  pack MB  ms/token (median)  vs fp32  vs int8  random agree  toy agree');
  for (const r of full.rows) {
    const t = toyRows.find((x) => x.variant === r.variant) ?? { identicalCaptions: '-', captions: '-' };
    log(
      `${r.variant.padEnd(8)} ${String(r.decoderMB).padStart(7)} ${String(r.packMB ?? '-').padStart(8)} ${r.msPerToken.median.toFixed(1).padStart(10)} ` +
        `${r.ratioVsFp32.toFixed(2).padStart(15)} ${r.ratioVsInt8.toFixed(2).padStart(8)} ${`${r.identicalCaptions}/${r.captions}`.padStart(13)} ${`${t.identicalCaptions}/${t.captions}`.padStart(10)}`,
    );
  }
  if (!full.rows.length)
    for (const t of toyRows) log(`${t.variant.padEnd(8)} toy pack ${t.packMB} MB, toy agree ${t.identicalCaptions}/${t.captions}`);
  log(`uptime after: ${upAfter}`);
  log(load.line);
  // Each part carries its own date and load: with LOWBIT_ONLY, the other part is kept from the previous run.
  const date = new Date().toISOString();
  const machine = { load, uptime: { before: upBefore, afterFullSize: upMid, after: upAfter } };
  const previous = existsSync(OUT) ? (JSON.parse(readFileSync(OUT, 'utf8')) as { fullSize?: unknown; toy?: unknown }) : {};
  writeFileSync(
    OUT,
    JSON.stringify(
      {
        runtime: { ort: 'onnxruntime-web (wasm, Node build)', threads: 1 },
        method:
          'full-size random pack: decoders alternate image by image (round-robin, first variant rotating); ms/token is the median decode-step time per caption (steps after the prefill); ratios are medians of per-image ratios. Agreement: whole free-running greedy captions identical to fp32 (20 tokens, no stops on the random pack; stops on the toy).',
        fullSize: only === 'toy' ? (previous.fullSize ?? null) : { date, machine, ...full },
        toy: only === 'full' ? (previous.toy ?? null) : { date, machine, rows: toyRows },
      },
      null,
      2,
    ) + '\n',
  );
}, 3_600_000);
