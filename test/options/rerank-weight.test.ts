// The options page's re-ranking weight field: empty is the pack's own weight, a number within
// LIMITS.decoding.rerankWeight is the user's, anything else is refused (the page says so and saves nothing).
import { describe, expect, it } from 'vitest';
import { parseRerankWeight } from '../../src/options/rerank-weight';
import { LIMITS } from '../../src/shared/limits';
import { validate } from '../../src/shared/settings';

describe('re-ranking weight field', () => {
  it("empty means the pack's own weight", () => {
    expect(parseRerankWeight('')).toBeNull();
    expect(parseRerankWeight('   ')).toBeNull();
  });

  it('numbers within the limits, with a decimal point or a decimal comma', () => {
    expect(parseRerankWeight('0')).toBe(0);
    expect(parseRerankWeight('0.5')).toBe(0.5);
    expect(parseRerankWeight('2,5')).toBe(2.5);
    expect(parseRerankWeight(String(LIMITS.decoding.rerankWeight.max))).toBe(LIMITS.decoding.rerankWeight.max);
  });

  it('anything else is refused', () => {
    for (const t of ['-1', '10.5', 'abc', '1e9', 'Infinity', 'NaN', '1,2,3']) expect(parseRerankWeight(t), t).toBeUndefined();
  });

  it('what the field accepts, the settings keep as it is', () => {
    for (const t of ['', '0', '0.25', '2,5', '10']) {
      const w = parseRerankWeight(t);
      expect(validate({ rerankWeight: w })).toMatchObject({ settings: { rerankWeight: w }, fixes: [] });
    }
  });
});
