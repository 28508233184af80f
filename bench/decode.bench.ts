/**
 * The greedy loop's own cost per token, with and without log-probabilities (npm run bench:decode): a decoder that
 * returns stored GPT-2-sized logit rows (50,257) at no cost, so what is timed is only what decoding.ts does per token
 * (the argmax, and with `scores` the float64 log-softmax). The two sides alternate, run by run. Prints figures and the
 * machine's load; writes bench/results/decode.json. A measurement, not a test.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { it } from 'vitest';
import { greedyDecode, type DecoderSteps } from '../src/captioner/decoding';
import { loadNow, loadVerdict } from './lib/machine.mjs';
import { fmt, stat } from './lib/stats';

const V = 50_257;
const TOKENS = 20;
const RUNS = Number(process.env.BENCH_RUNS ?? 15);
const OUT = resolve(import.meta.dirname, 'results/decode.json');

/** Logit rows of a seeded generator, made once; the step hands them out in turn, never stopping before maxTokens. */
function rows(n: number): Float32Array[] {
  let x = 12345;
  const rnd = () => ((x = (x * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff) * 8 - 4;
  return Array.from({ length: n }, () => {
    const r = new Float32Array(V);
    for (let i = 0; i < V; i++) r[i] = rnd();
    r[50_256] = -100; // <|endoftext|> never wins
    r[13] = -100; // nor the stop token
    return r;
  });
}

it('greedy decoding: per-token cost with and without log-probabilities', async () => {
  const data = rows(TOKENS);
  let k = 0;
  const model: DecoderSteps = { step: async () => data[k++ % TOKENS] };
  const opts = { vocabSize: V, stop: [13], eos: 50_256, maxTokens: TOKENS };
  const time = async (scores: boolean) => {
    k = 1;
    const t0 = performance.now();
    const [r] = await greedyDecode(data[0], 1, model, { ...opts, scores });
    return (performance.now() - t0) / r.length;
  };
  const before = loadNow();
  for (let i = 0; i < 3; i++) {
    await time(true); // warm up the JIT, both paths
    await time(false);
  }
  const withScores: number[] = [];
  const without: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    // Alternate which side goes first, so drift in the machine's load falls on both.
    if (i % 2) {
      withScores.push(await time(true));
      without.push(await time(false));
    } else {
      without.push(await time(false));
      withScores.push(await time(true));
    }
  }
  const load = loadVerdict(before, loadNow());
  const a = stat(withScores);
  const b = stat(without);
  const results = {
    date: new Date().toISOString(),
    vocab: V,
    tokens: TOKENS,
    load,
    perTokenMs: { withScores: a, without: b },
    savedMs: a.median - b.median,
  };
  mkdirSync(resolve(OUT, '..'), { recursive: true });
  writeFileSync(OUT, JSON.stringify(results, null, 2) + '\n');
  console.log(`[bench:decode] ${load.line}`);
  console.log(
    `[bench:decode] per token, the loop's own work: with log-probabilities ${fmt(a)}; without ${fmt(b)}; saved ${results.savedMs.toFixed(2)} ms a token`,
  );
});
