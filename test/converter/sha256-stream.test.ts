/** The incremental SHA-256 gives node:crypto's digest however the bytes are split. */
import { createHash } from 'node:crypto';
import { expect, it } from 'vitest';
import { Sha256Stream } from '../../src/converter/sha256-stream';
import { rng } from '../helpers/rng';

it('hashes any split of the bytes as one digest of the whole', () => {
  const r = rng(3);
  const data = Uint8Array.from({ length: 300_000 }, () => Math.floor(r() * 256));
  const want = createHash('sha256').update(data).digest('hex');
  for (let trial = 0; trial < 5; trial++) {
    const h = new Sha256Stream();
    for (let o = 0; o < data.length;) {
      const n = trial === 0 ? data.length : Math.floor(r() * 70_000);
      h.update(data.subarray(o, o + n));
      o += n;
    }
    expect(h.bytes).toBe(data.length);
    expect(h.hex()).toBe(want);
  }
  expect(new Sha256Stream().hex()).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
});
