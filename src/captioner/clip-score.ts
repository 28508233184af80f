/**
 * CLIP scores of captions (docs/pack-format.md, "CLIP scores: gating and re-ranking"; the reference is
 * model/model.py: clip_score / rerank): CLIPScore against the image, and the choice among beam search's final beams.
 * Plain arithmetic on embeddings, so unit-tested without a model.
 */

/**
 * CLIPScore: w * max(cos, 0), with cos the cosine of the image embedding (as vision.onnx gives it, before any
 * l2Normalize) and the text embedding, in float64. A zero vector has no direction: its score is 0.
 */
export function clipScore(imageEmbeds: ArrayLike<number>, textEmbeds: ArrayLike<number>, weight: number): number {
  if (imageEmbeds.length !== textEmbeds.length) {
    throw new RangeError(`clipScore: image embedding has ${imageEmbeds.length} values, text embedding ${textEmbeds.length}`);
  }
  let dot = 0;
  let ii = 0;
  let tt = 0;
  for (let i = 0; i < imageEmbeds.length; i++) {
    const a = imageEmbeds[i];
    const b = textEmbeds[i];
    dot += a * b;
    ii += a * a;
    tt += b * b;
  }
  if (ii === 0 || tt === 0) return 0;
  return weight * Math.max(dot / Math.sqrt(ii * tt), 0);
}

export interface RankedBeam {
  /** summed log-probability */
  score: number;
  /** tokens generated, eos included */
  length: number;
  clipScore: number;
}

/**
 * Re-ranking: among the final beams, in beam search's own order (best score / length first), the index of the one
 * with the highest score / length + weight * clipScore; ties go to the earlier beam. Weight 0 is plain beam search.
 */
export function rerank(beams: readonly RankedBeam[], weight: number): number {
  if (beams.length === 0) throw new RangeError('rerank: no beams');
  const rank = (b: RankedBeam) => b.score / b.length + weight * b.clipScore;
  let best = 0;
  for (let i = 1; i < beams.length; i++) if (rank(beams[i]) > rank(beams[best])) best = i;
  return best;
}

/** Whether a caption with this CLIPScore is uncertain: below the pack's gateThreshold. */
export const isUncertain = (score: number, gateThreshold: number): boolean => score < gateThreshold;
