// CLIPScore, the gate and beam re-ranking (docs/pack-format.md, "CLIP scores: gating and re-ranking"), on numbers and
// fake towers: the formula, the ranking rule with its ties, and the text pass that batches every text of a call.
import { describe, expect, it } from 'vitest';
import { clipScore, isUncertain, rerank } from '../../src/captioner/clip-score';
import type { BeamResult, DecodeResult } from '../../src/captioner/decoding';
import { textPass } from '../../src/captioner/text-pass';

describe('clipScore', () => {
  it('is w * max(cos, 0) of the raw embeddings, in float64', () => {
    // cos([3, 4], [4, 3]) = 24 / 25
    expect(clipScore(new Float32Array([3, 4]), new Float32Array([4, 3]), 2.5)).toBeCloseTo(2.5 * 0.96, 12);
    // scale does not matter: cosine, not a dot product (the engine scores image_embeds before any l2Normalize)
    expect(clipScore([30, 40], [0.4, 0.3], 2.5)).toBeCloseTo(2.4, 12);
    // opposite directions score 0, not a negative number
    expect(clipScore([1, 0], [-1, 0.1], 2.5)).toBe(0);
    expect(clipScore([0, 0], [1, 1], 2.5)).toBe(0);
    expect(() => clipScore([1, 2], [1, 2, 3], 1)).toThrow(RangeError);
  });

  it('sums in float64: float32 accumulation of 512 values would differ in the 7th digit', () => {
    const a = Float32Array.from({ length: 512 }, (_, i) => Math.sin(i) * 3.1 + 0.01);
    const b = Float32Array.from({ length: 512 }, (_, i) => Math.cos(i * 0.7) * 0.2 + 0.05);
    let dot = 0;
    let aa = 0;
    let bb = 0;
    for (let i = 0; i < 512; i++) {
      dot += a[i] * b[i];
      aa += a[i] * a[i];
      bb += b[i] * b[i];
    }
    expect(clipScore(a, b, 2.5)).toBe(2.5 * Math.max(dot / Math.sqrt(aa * bb), 0));
  });

  it('gates below the threshold, not at it', () => {
    expect(isUncertain(0.49, 0.5)).toBe(true);
    expect(isUncertain(0.5, 0.5)).toBe(false);
    expect(isUncertain(0.51, 0.5)).toBe(false);
  });
});

describe('rerank', () => {
  const beam = (score: number, length: number, clip: number) => ({ score, length, clipScore: clip });
  it('chooses the highest score / length + weight * clipScore', () => {
    const beams = [beam(-1, 4, 0.2), beam(-2, 5, 0.9), beam(-0.3, 1, 0.1)];
    // ranks with weight 1: -0.05, 0.5, -0.2
    expect(rerank(beams, 1)).toBe(1);
    // weight 0: beam search's own answer, the first (best score / length) beam
    expect(rerank(beams, 0)).toBe(0);
    // per token, not summed: -2 / 5 + 0.9 * 0.5 = 0.05 beats -1 / 4 + 0.2 * 0.5 = -0.15
    expect(rerank(beams, 0.5)).toBe(1);
  });
  it('breaks ties towards the earlier beam', () => {
    expect(rerank([beam(-1, 2, 0.5), beam(-0.5, 1, 0.5)], 1)).toBe(0);
    expect(rerank([beam(-2, 2, 1), beam(-1, 2, 0.5), beam(-1, 1, 1)], 2)).toBe(0);
  });
});

describe('the text pass', () => {
  const result = (tokenIds: number[], score: number): DecodeResult => ({
    tokenIds,
    logprobs: tokenIds.map(() => score / tokenIds.length),
    score,
    length: tokenIds.length,
  });
  // A fake tower: a text's embedding is [number of words, 1]; the image [1, 1] prefers texts of one word.
  const words = (ids: number[]) => ids.length - 2;
  const opts = (calls: number[][][]) => ({
    rerankWeight: 1,
    clipScoreWeight: 2.5,
    decode: (ids: readonly number[]) => ` ${ids.map((i) => `w${i}`).join(' ')}  `,
    encode: (text: string) => [49406, ...text.split(' ').map((w) => Number(w.slice(1))), 49407],
    embed: async (rows: number[][]) => (calls.push(rows), Float32Array.from(rows.flatMap((r) => [words(r), 1]))),
  });
  const image = new Float32Array([1, 1]);

  it('scores the trimmed rawText of each caption, all texts of a call in one run of the tower', async () => {
    const calls: number[][][] = [];
    const r = await textPass(
      [
        { decoded: result([5], -1), imageEmbeds: image },
        { decoded: result([5, 6, 7], -1), imageEmbeds: image },
      ],
      opts(calls),
    );
    expect(calls).toEqual([
      [
        [49406, 5, 49407],
        [49406, 5, 6, 7, 49407],
      ],
    ]);
    expect(r.map((x) => x.clipScore)).toEqual([2.5 * 1, 2.5 * clipScore([1, 1], [3, 1], 1)]);
    expect(r[1].chosen.tokenIds).toEqual([5, 6, 7]);
  });

  it('re-ranks every final beam when the weight is not 0, and scores only the answer when it is', async () => {
    // in beam search's order: -0.05, -0.1, -0.1 per token
    const beams = [result([1, 2, 3], -0.15), result([4], -0.1), result([1, 2, 3, 4, 5], -0.5)];
    const decoded: BeamResult = { ...beams[0], beams };
    const calls: number[][][] = [];
    const [r] = await textPass([{ decoded, imageEmbeds: image }], opts(calls));
    expect(calls[0].length).toBe(3);
    // ranks: -0.05 + 2.5 cos([1,1],[3,1]) = 2.19, -0.1 + 2.5 = 2.4, -0.1 + 2.5 cos([1,1],[5,1]) = 1.98
    expect(r.chosen.tokenIds).toEqual([4]);
    expect(r.clipScore).toBeCloseTo(2.5, 12);
    const plain: number[][][] = [];
    const [p] = await textPass([{ decoded, imageEmbeds: image }], { ...opts(plain), rerankWeight: 0 });
    expect(plain).toEqual([[[49406, 1, 2, 3, 49407]]]);
    expect(p.chosen.tokenIds).toEqual([1, 2, 3]);
  });

  it('gives an empty caption the score 0 without running the tower, and runs a text seen twice once', async () => {
    const calls: number[][][] = [];
    const o = { ...opts(calls), decode: (ids: readonly number[]) => (ids.length ? ' w9 ' : '   ') };
    const r = await textPass(
      [
        { decoded: result([], 0), imageEmbeds: image },
        { decoded: result([9], -1), imageEmbeds: image },
        { decoded: result([9, 13], -1), imageEmbeds: image },
      ],
      o,
    );
    expect(calls).toEqual([[[49406, 9, 49407]]]);
    expect(r[0].clipScore).toBe(0);
    expect(r[1].clipScore).toBe(r[2].clipScore);
    const none: number[][][] = [];
    expect((await textPass([{ decoded: result([], 0), imageEmbeds: image }], opts(none)))[0].clipScore).toBe(0);
    expect(none).toEqual([]);
  });
});
