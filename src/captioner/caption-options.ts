/**
 * A caption call's options, checked against the limits table and the pack's own room, with the pack's defaults filled
 * in; a value out of range is an InvalidOptionError that names it.
 */
import { InvalidOptionError } from '../shared/errors';
import { LIMITS, inRange, inRealRange } from '../shared/limits';
import type { CaptionOptions } from './captioner';
import type { PackManifest } from './pack-format';

export function resolveCaptionOptions(m: PackManifest, opts: CaptionOptions = {}) {
  const strategy = opts.strategy ?? m.generation.strategy;
  const beams = opts.beams ?? m.generation.beams;
  const maxTokens = opts.maxTokens ?? m.generation.maxTokens;
  if (strategy !== 'greedy' && strategy !== 'beam')
    throw new InvalidOptionError(`Unknown decoding strategy "${String(strategy)}": use "greedy" or "beam".`);
  const { beams: beamRange, maxTokens: tokenRange } = LIMITS.decoding;
  if (!inRange(beams, beamRange))
    throw new InvalidOptionError(`beams must be an integer from ${beamRange.min} to ${beamRange.max}, got ${beams}.`);
  // The table's bound, or the pack's own room after the prefix if that is less.
  const limit = Math.min(tokenRange.max, m.decoder.nPositions - m.mapper.prefixLength);
  if (!inRange(maxTokens, { min: tokenRange.min, max: limit })) {
    throw new InvalidOptionError(`maxTokens must be an integer from ${tokenRange.min} to ${limit}, got ${maxTokens}.`);
  }
  const rerankWeight = opts.rerankWeight ?? m.text?.rerankWeight ?? 0;
  const { rerankWeight: weightRange } = LIMITS.decoding;
  // A real number, unlike the integer options: the pack's own default is calibrated, 1.0 or 0.35 alike.
  if (!inRealRange(rerankWeight, weightRange)) {
    throw new InvalidOptionError(
      `rerankWeight must be a number from ${weightRange.min} to ${weightRange.max}, got ${String(opts.rerankWeight)}.`,
    );
  }
  return { strategy, beams, maxTokens, rerankWeight, scores: opts.scores === true, signal: opts.signal };
}
