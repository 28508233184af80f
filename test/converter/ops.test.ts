/**
 * Template ops against numpy float32, bit for bit (model/template.py's run_op is the numpy form; the expectations
 * here are numpy's, computed in the run), and the streamed slices against the whole result.
 */
import { describe, expect, it } from 'vitest';
import { applyOp, bnFoldBias, bnFoldWeight, materialize, transpose, type OpInput } from '../../src/converter/ops';
import { rng } from '../helpers/rng';
import { bytesOf, numpy } from './helpers/numpy';

function randomTensor(shape: number[], r: () => number, kind: 'normal' | 'variance' | 'scale' = 'normal'): OpInput {
  const n = shape.reduce((a, d) => a * d, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const g = (r() - 0.5) * 2 * (1 + 10 * r() ** 8); // mostly small, a few large: varied exponents
    data[i] = kind === 'variance' ? r() ** 4 * 3 + 1e-7 : kind === 'scale' ? 1 + g * 0.3 : g * 0.05;
  }
  return { data, shape };
}

const sameBits = (a: Float32Array, b: Uint8Array) => {
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.byteLength / 4);
  expect(x.length).toBe(y.length);
  let bad = 0;
  for (let i = 0; i < x.length; i++)
    if (x[i] !== y[i] && bad++ < 5) console.error(`element ${i}: ours 0x${x[i].toString(16)}, numpy 0x${y[i].toString(16)}`);
  return bad;
};

describe('ops against numpy float32', () => {
  for (const [shape, eps] of [
    [[64, 3, 7, 7], 1e-5],
    [[40, 20, 3, 3], 1e-5],
    [[160, 80, 1, 1], 1e-3],
  ] as Array<[number[], number]>) {
    it(`bn_fold_weight and bn_fold_bias, conv [${shape.join(', ')}], eps ${eps}`, () => {
      const r = rng(shape[0] * 7 + shape[1]);
      const c = shape[0];
      const conv = randomTensor(shape, r);
      const w = randomTensor([c], r, 'scale');
      const b = randomTensor([c], r);
      const mean = randomTensor([c], r);
      const v = randomTensor([c], r, 'variance');
      // numpy, in model/template.py's order: s = bn_w / sqrt(bn_var + eps); w' = conv_w * s[c]; b' = bn_b - bn_mean * s
      const code = `
conv, w, b, mean, var = (np.fromfile(p, "<f4") for p in ins)
s = w / np.sqrt(var + np.float32(${eps}))
fw = conv.reshape(${c}, -1) * s.reshape(-1, 1)
fb = b - mean * s
assert fw.dtype == np.float32 and fb.dtype == np.float32
np.concatenate([fw.ravel(), fb]).astype("<f4").tofile(out)`;
      const ref = numpy(
        code,
        [conv, w, b, mean, v].map((t) => bytesOf(t.data)),
      );
      const fw = materialize(bnFoldWeight(conv, w, b, mean, v, eps));
      const fb = materialize(bnFoldBias(conv, w, b, mean, v, eps));
      expect(sameBits(fw, ref.subarray(0, fw.byteLength))).toBe(0);
      expect(sameBits(fb, ref.subarray(fw.byteLength))).toBe(0);
    });
  }

  it('transpose of 2-D tensors, as numpy .T', () => {
    const r = rng(5);
    for (const shape of [
      [3, 5],
      [1, 7],
      [768, 2304 / 8],
      [257, 33],
    ]) {
      const x = randomTensor(shape, r);
      const ref = numpy(`np.ascontiguousarray(np.fromfile(ins[0], "<f4").reshape(${shape[0]}, ${shape[1]}).T).tofile(out)`, [
        bytesOf(x.data),
      ]);
      expect(sameBits(materialize(transpose(x)), ref)).toBe(0);
    }
  });

  it('fills any slice of a result exactly as the whole (the converter streams results slice by slice)', () => {
    const r = rng(9);
    const conv = randomTensor([12, 5, 3, 3], r);
    const bn = [randomTensor([12], r, 'scale'), randomTensor([12], r), randomTensor([12], r), randomTensor([12], r, 'variance')];
    const m = randomTensor([37, 29], r);
    for (const out of [applyOp('transpose', [m]), applyOp('bn_fold_weight', [conv, ...bn], 1e-5), applyOp('identity', [m])]) {
      const whole = materialize(out);
      for (let k = 0; k < 20; k++) {
        const start = Math.floor(r() * out.length);
        const len = Math.floor(r() * (out.length - start));
        const dst = new Float32Array(len);
        out.fill(dst, start);
        expect(dst).toEqual(whole.subarray(start, start + len));
      }
    }
  });

  it('refuses arguments of the wrong shape', () => {
    const r = rng(1);
    expect(() => transpose(randomTensor([2, 3, 4], r))).toThrow(/2-D/);
    expect(() =>
      bnFoldWeight(randomTensor([4, 2], r), randomTensor([3], r), randomTensor([4], r), randomTensor([4], r), randomTensor([4], r), 1e-5),
    ).toThrow(/\[4\]/);
    expect(() => applyOp('bn_fold_bias', [randomTensor([4, 2], r)], 1e-5)).toThrow(/5 tensor/);
  });
});
