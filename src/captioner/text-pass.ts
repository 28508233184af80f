/**
 * The text pass after decoding, for a pack with CLIP's text tower: every caption gets its CLIPScore (the gate), and a
 * beam-searched one is re-ranked among its final beams when the weight is not 0 (docs/pack-format.md, "CLIP scores:
 * gating and re-ranking"). All the texts of a call go through the text tower as one batch.
 */
import { clipScore, rerank } from './clip-score';
import type { BeamResult, DecodeResult } from './decoding';

export interface TextPassItem {
  /** decoding's answer; a beam search's carries its final beams */
  decoded: DecodeResult | BeamResult;
  /** this image's embedding as vision.onnx gives it (before any l2Normalize) */
  imageEmbeds: Float32Array;
}

export interface TextPassOptions {
  /** re-ranking weight; 0 scores only the answer beam search chose */
  rerankWeight: number;
  clipScoreWeight: number;
  /** the caption tokenizer's decode of generated ids (the caption's rawText) */
  decode(ids: readonly number[]): string;
  /** CLIP's ids of a text, [bos, ..., eot] */
  encode(text: string): number[];
  /** the text tower on several rows of ids: embeddings [rows, dim] */
  embed(rows: number[][]): Promise<Float32Array>;
}

export interface TextPassResult {
  /** the caption: decoding's answer, or the beam re-ranking chose */
  chosen: DecodeResult;
  clipScore: number;
}

export async function textPass(items: readonly TextPassItem[], o: TextPassOptions): Promise<TextPassResult[]> {
  const rows: number[][] = [];
  const rowOf = new Map<string, number>(); // one row per distinct text: two beams may decode to the same words
  const candidates = items.map(({ decoded }) => {
    const list = 'beams' in decoded && o.rerankWeight !== 0 ? decoded.beams : [decoded];
    return list.map((c) => {
      // The trimmed rawText is what is scored; an empty one is not (its score is 0).
      const text = o.decode(c.tokenIds).trim();
      if (text === '') return { c, row: -1 };
      let row = rowOf.get(text);
      if (row === undefined) {
        row = rows.push(o.encode(text)) - 1;
        rowOf.set(text, row);
      }
      return { c, row };
    });
  });
  const embeds = rows.length ? await o.embed(rows) : new Float32Array(0);
  const dim = rows.length ? embeds.length / rows.length : 0;
  return items.map((item, i) => {
    const scored = candidates[i].map(({ c, row }) => ({
      ...c,
      clipScore: row < 0 ? 0 : clipScore(item.imageEmbeds, embeds.subarray(row * dim, (row + 1) * dim), o.clipScoreWeight),
    }));
    const best = scored.length > 1 ? rerank(scored, o.rerankWeight) : 0;
    const { tokenIds, logprobs, score, length, clipScore: s } = scored[best];
    return { chosen: { tokenIds, logprobs, score, length }, clipScore: s };
  });
}
