// WASM threads when the caller does not say: one core is left for the page and the screen reader, at most 4.
import { describe, expect, it } from 'vitest';
import { defaultThreads } from '../../src/captioner/sessions';

describe('default wasm threads', () => {
  it('leaves a core free, from 1 to 4 threads', () => {
    expect([1, 2, 3, 4, 6, 8, 16].map((n) => defaultThreads(n))).toEqual([1, 1, 2, 3, 4, 4, 4]);
  });
});
