import { describe, expect, it } from 'vitest';
import { CaptionAbortedError } from '../../src/shared/errors';
import { argmax, beamDecode, greedyDecode, topK, type DecoderSteps } from '../../src/captioner/decoding';

const V = 12;
const STOP = 3; // plays the role of "."
const EOS = 11;

/** A fake language model: logits are a deterministic function of the token prefix, with a few exact ties. */
function logitsFor(prefix: readonly number[], seed: number): Float32Array {
  const out = new Float32Array(V);
  let h = seed;
  for (const t of prefix) h = (Math.imul(h ^ (t + 17), 2654435761) >>> 0) % 100003;
  for (let v = 0; v < V; v++) {
    const x = (Math.imul(h + 31 * v, 2246822519) >>> 0) % 1000;
    out[v] = Math.round(x / 50) / 4; // coarse values: ties happen
  }
  // Make stopping likelier as captions grow, so beams stop at different lengths.
  out[STOP] += prefix.length * 0.6;
  out[EOS] += prefix.length * 0.3 - 1;
  return out;
}

/** Fake decoder that keeps one prefix per row, as a KV cache would, and records every run. */
class FakeDecoder implements DecoderSteps {
  rows: number[][];
  runs: number[] = [];
  constructor(
    initial: number[][],
    readonly seed: number,
  ) {
    this.rows = initial;
  }
  prefill(): Float32Array {
    const out = new Float32Array(this.rows.length * V);
    this.rows.forEach((p, i) => out.set(logitsFor(p, this.seed), i * V));
    return out;
  }
  async step(parents: number[], tokens: number[]): Promise<Float32Array> {
    this.runs.push(parents.length);
    this.rows = parents.map((p, i) => [...this.rows[p], tokens[i]]);
    const out = new Float32Array(this.rows.length * V);
    this.rows.forEach((p, i) => out.set(logitsFor(p, this.seed), i * V));
    return out;
  }
}

const logSoftmax = (l: Float32Array) => {
  const m = Math.max(...l);
  const s = Math.log(l.reduce((a, v) => a + Math.exp(v - m), 0)) + m;
  return Array.from(l, (v) => v - s);
};

/** Straightforward reference: every candidate over the full vocabulary, recomputed from scratch each step. */
function referenceBeam(seed: number, beams: number, maxTokens: number, norm: boolean) {
  type B = { ids: number[]; all: number[]; score: number; len: number; stopped: boolean };
  const rank = (b: B) => (norm ? b.score / b.len : b.score);
  const lp0 = logSoftmax(logitsFor([], seed));
  const first = lp0
    .map((v, t) => ({ v, t }))
    .sort((a, b) => b.v - a.v || a.t - b.t)
    .slice(0, beams);
  let cur: B[] = first.map(({ v, t }) => ({ ids: t === EOS ? [] : [t], all: [t], score: v, len: 1, stopped: t === STOP || t === EOS }));
  for (let n = 1; n < maxTokens && cur.some((b) => !b.stopped); n++) {
    const cands: Array<{ b: B; key: [number, number] }> = [];
    cur.forEach((b, bi) => {
      if (b.stopped) return cands.push({ b, key: [bi, -1] });
      logSoftmax(logitsFor(b.all, seed)).forEach((lp, t) =>
        cands.push({
          b: {
            ids: t === EOS ? b.ids : [...b.ids, t],
            all: [...b.all, t],
            score: b.score + lp,
            len: b.len + 1,
            stopped: t === STOP || t === EOS,
          },
          key: [bi, t],
        }),
      );
    });
    cands.sort((x, y) => rank(y.b) - rank(x.b) || x.key[0] - y.key[0] || x.key[1] - y.key[1]);
    cur = cands.slice(0, beams).map((c) => c.b);
  }
  let best = cur[0];
  for (const b of cur) if (rank(b) > rank(best)) best = b;
  return { ...best, final: cur };
}

describe('top-k and argmax', () => {
  it('break ties toward the lower index', () => {
    const row = new Float32Array([1, 5, 5, 2, 5, 0]);
    expect(argmax(row, 0, 6)).toBe(1);
    expect(topK(row, 0, 6, 2)).toEqual([1, 2]);
    expect(topK(row, 0, 6, 4)).toEqual([1, 2, 4, 3]);
    expect(topK(new Float32Array([0, 9, 1, 9]), 0, 4, 1)).toEqual([1]);
  });
});

describe('greedy decoding', () => {
  it('follows the argmax, keeps the stop token, drops eos, and batches captions with rows leaving as they finish', async () => {
    const seeds = [1, 2, 3, 4, 5, 6];
    for (const seed of seeds) {
      const dec = new FakeDecoder([[]], seed);
      const [got] = await greedyDecode(dec.prefill(), 1, dec, { vocabSize: V, stop: [STOP, EOS], eos: EOS, maxTokens: 9, scores: true });
      // Without scores (the extension's greedy path): the same tokens, no softmax, no log-probabilities.
      const plain = new FakeDecoder([[]], seed);
      const [fast] = await greedyDecode(plain.prefill(), 1, plain, { vocabSize: V, stop: [STOP, EOS], eos: EOS, maxTokens: 9 });
      expect(fast.tokenIds).toEqual(got.tokenIds);
      expect(fast.logprobs).toEqual([]);
      expect(fast.length).toBe(got.length);
      // reference: plain loop
      const ids: number[] = [];
      const all: number[] = [];
      for (let n = 0; n < 9; n++) {
        const l = logitsFor(all, seed);
        const t = argmax(l, 0, V);
        all.push(t);
        if (t !== EOS) ids.push(t);
        if (t === STOP || t === EOS) break;
      }
      expect(got.tokenIds).toEqual(ids);
      expect(got.logprobs.length).toBe(all.length);
      expect(got.length).toBe(all.length);
      expect(dec.runs.length).toBe(all.length - 1);
    }
  });

  it('decodes several captions as one batch', async () => {
    // Different "images" are modelled as different first tokens in the row prefixes.
    const dec = new FakeDecoder([[0], [1], [2], [4]], 7);
    const got = await greedyDecode(dec.prefill(), 4, dec, { vocabSize: V, stop: [STOP, EOS], eos: EOS, maxTokens: 12 });
    for (let i = 0; i < 4; i++) {
      const single = new FakeDecoder([[[0], [1], [2], [4]][i]], 7);
      const [one] = await greedyDecode(single.prefill(), 1, single, { vocabSize: V, stop: [STOP, EOS], eos: EOS, maxTokens: 12 });
      expect(got[i].tokenIds).toEqual(one.tokenIds);
    }
    // batch sizes never grow
    for (let i = 1; i < dec.runs.length; i++) expect(dec.runs[i]).toBeLessThanOrEqual(dec.runs[i - 1]);
  });
});

describe('beam search (ClipCap semantics)', () => {
  it('equals a brute-force reference over many fake models, beam counts and lengths', async () => {
    let checked = 0;
    for (let seed = 1; seed <= 40; seed++) {
      for (const beams of [1, 2, 3, 5]) {
        for (const norm of [true, false]) {
          const maxTokens = 3 + (seed % 7);
          const dec = new FakeDecoder([[]], seed);
          const got = await beamDecode(dec.prefill(), dec, {
            vocabSize: V,
            stop: [STOP, EOS],
            eos: EOS,
            maxTokens,
            beams,
            lengthNormalize: norm,
          });
          const ref = referenceBeam(seed, beams, maxTokens, norm);
          expect(got.tokenIds, `seed ${seed} beams ${beams} norm ${norm}`).toEqual(ref.ids);
          expect(got.score).toBeCloseTo(ref.score, 9);
          expect(got.length).toBe(ref.len);
          // every final beam, in beam search's order (re-ranking chooses among them; the answer is the first)
          expect(got.beams.map((b) => b.tokenIds)).toEqual(ref.final.map((b) => b.ids));
          got.beams.forEach((b, i) => (expect(b.score).toBeCloseTo(ref.final[i].score, 9), expect(b.length).toBe(ref.final[i].len)));
          expect(got.beams[0].tokenIds).toEqual(got.tokenIds);
          // one decoder run per step, never more rows than beams
          expect(dec.runs.every((r) => r >= 1 && r <= beams)).toBe(true);
          expect(got.tokenIds.length).toBeLessThanOrEqual(maxTokens);
          checked++;
        }
      }
    }
    expect(checked).toBe(320);
  });

  it('with one beam equals greedy', async () => {
    for (let seed = 1; seed <= 10; seed++) {
      const d1 = new FakeDecoder([[]], seed);
      const d2 = new FakeDecoder([[]], seed);
      const [g] = await greedyDecode(d1.prefill(), 1, d1, { vocabSize: V, stop: [STOP, EOS], eos: EOS, maxTokens: 8 });
      const b = await beamDecode(d2.prefill(), d2, {
        vocabSize: V,
        stop: [STOP, EOS],
        eos: EOS,
        maxTokens: 8,
        beams: 1,
        lengthNormalize: true,
      });
      expect(b.tokenIds).toEqual(g.tokenIds);
    }
  });

  it('stops when the signal aborts mid-decode', async () => {
    const ac = new AbortController();
    const dec = new FakeDecoder([[]], 3);
    const p = beamDecode(dec.prefill(), dec, {
      vocabSize: V,
      stop: [],
      eos: -1,
      maxTokens: 50,
      beams: 3,
      lengthNormalize: true,
      signal: ac.signal,
      onStep: (n) => {
        if (n === 4) ac.abort();
      },
    });
    await expect(p).rejects.toBeInstanceOf(CaptionAbortedError);
    expect(dec.runs.length).toBeLessThan(10);
  });

  it('awaits `between` before every decoder step after the prefill (greedy and beam), and nowhere else', async () => {
    for (const beams of [0, 3]) {
      const dec = new FakeDecoder([[]], 5);
      const log: string[] = [];
      const step = dec.step.bind(dec);
      dec.step = async (parents, tokens) => (log.push('step'), step(parents, tokens));
      const opts = {
        vocabSize: V,
        stop: [],
        eos: -1,
        maxTokens: 6,
        between: async () => void log.push('between'),
      };
      if (beams) await beamDecode(dec.prefill(), dec, { ...opts, beams, lengthNormalize: true });
      else await greedyDecode(dec.prefill(), 1, dec, opts);
      expect(log.length, `beams ${beams}`).toBeGreaterThan(2);
      expect(log.join(' '), `beams ${beams}`).toBe(
        Array(log.length / 2)
          .fill('between step')
          .join(' '),
      );
    }
  });
});
