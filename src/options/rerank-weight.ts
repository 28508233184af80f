/** The re-ranking weight as the options page reads it from its field: empty is the pack's own weight (null). */
import { LIMITS } from '../shared/limits';

/** null: the pack's own weight; a number within LIMITS.decoding.rerankWeight; undefined: not a weight (say so). */
export function parseRerankWeight(text: string): number | null | undefined {
  const t = text.trim();
  if (t === '') return null;
  // A comma is how German (and many other) users write the decimal point.
  const n = Number(t.replace(',', '.'));
  const { min, max } = LIMITS.decoding.rerankWeight;
  return Number.isFinite(n) && n >= min && n <= max ? n : undefined;
}
