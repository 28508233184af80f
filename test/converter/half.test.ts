/**
 * float32 <-> float16 against numpy, bit for bit: every half value, and millions of float32 bit patterns chosen to
 * hit every rounding path (normal, subnormal, ties, overflow, NaN payloads). Expectations are numpy's, computed here.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { float16ToFloat32, float32ToFloat16, floatBitsFromHalfBits, halfBitsFromFloatBits, toHalfBits } from '../../src/converter/half';
import { rng } from '../helpers/rng';
import { bytesOf, numpy } from './helpers/numpy';

const ALL_HALVES = Uint16Array.from({ length: 65536 }, (_, i) => i);

/** 3M float32 bit patterns: uniform bits, then the exponent band around half's range, then exact and near ties. */
function patterns(): Uint32Array {
  const r = rng(20261202);
  const n = 3_000_000;
  const out = new Uint32Array(n);
  const u32 = () => (r() * 2 ** 32) >>> 0;
  for (let i = 0; i < n; i++) {
    const sign = (u32() & 1) << 31;
    switch (i % 5) {
      case 0: // any bits: NaNs with every payload, infinities, zeros, huge and tiny
        out[i] = u32();
        break;
      case 1: {
        // exponents from below half's smallest subnormal to above its largest normal (float32 exp 98..145)
        const e = 98 + Math.floor(r() * 48);
        out[i] = (sign | (e << 23) | (u32() & 0x7fffff)) >>> 0;
        break;
      }
      case 2: {
        // exact ties for a normal half: the 13 dropped bits are 1000000000000
        const e = 110 + Math.floor(r() * 34);
        out[i] = (sign | (e << 23) | (u32() & 0x7fe000) | 0x1000) >>> 0;
        break;
      }
      case 3: {
        // ties and near-ties in the subnormal range, where the shift drops up to 11 more bits
        const e = 101 + Math.floor(r() * 13);
        const low = [0, 1, 0x7ff, 0x800][Math.floor(r() * 4)];
        const shift = 113 - e + 13;
        const tie = shift < 24 ? 1 << (shift - 1) : 0;
        out[i] = (sign | (e << 23) | ((u32() & 0x7fffff & ~((1 << Math.min(shift, 23)) - 1)) | tie | low)) >>> 0;
        break;
      }
      default: {
        // around the overflow threshold 65520 (ties away to inf) and NaNs with payloads only in the low 13 bits
        out[i] =
          r() < 0.5
            ? (sign | (142 << 23) | (0x7fe000 + Math.floor(r() * 0x2000))) >>> 0
            : (sign | 0x7f800000 | (1 + Math.floor(r() * 0x1fff))) >>> 0;
      }
    }
  }
  return out;
}

describe('float16', () => {
  let npDecoded: Uint32Array;
  let bits: Uint32Array;
  let npEncoded: Uint16Array;
  beforeAll(() => {
    npDecoded = new Uint32Array(
      numpy('np.fromfile(ins[0], "<u2").view(np.float16).astype(np.float32).tofile(out)', [bytesOf(ALL_HALVES)]).buffer,
    );
    bits = patterns();
    npEncoded = new Uint16Array(
      numpy('np.fromfile(ins[0], "<u4").view(np.float32).astype(np.float16).tofile(out)', [bytesOf(bits)]).buffer,
    );
  });

  it('decodes all 65536 halves to the float32 numpy gives', () => {
    const ours = float16ToFloat32(ALL_HALVES);
    const u = new Uint32Array(ours.buffer);
    let bad = 0;
    for (let h = 0; h < 65536; h++)
      if (u[h] !== npDecoded[h] && bad++ < 5)
        console.error(`half 0x${h.toString(16)}: ours 0x${u[h].toString(16)}, numpy 0x${npDecoded[h].toString(16)}`);
    expect(bad).toBe(0);
  });

  it('round-trips every half (NaN payloads included) through float32', () => {
    const back = float32ToFloat16(float16ToFloat32(ALL_HALVES));
    let bad = 0;
    for (let h = 0; h < 65536; h++) if (back[h] !== h) bad++;
    expect(bad).toBe(0);
    expect(floatBitsFromHalfBits(0x0001)).toBe(0x33800000); // smallest subnormal, 2^-24
    expect(halfBitsFromFloatBits(0x33800000)).toBe(0x0001);
  });

  it(`encodes 3M float32 patterns exactly as numpy's astype(np.float16)`, () => {
    const ours = float32ToFloat16(new Float32Array(bits.buffer));
    let bad = 0;
    for (let i = 0; i < bits.length; i++) {
      if (ours[i] !== npEncoded[i] && bad++ < 5)
        console.error(`float32 0x${bits[i].toString(16)}: ours 0x${ours[i].toString(16)}, numpy 0x${npEncoded[i].toString(16)}`);
    }
    expect(bad).toBe(0);
  });

  it('rounds the landmark values as IEEE says', () => {
    expect(toHalfBits(65504)).toBe(0x7bff); // largest half
    expect(toHalfBits(65519.99)).toBe(0x7bff);
    expect(toHalfBits(65520)).toBe(0x7c00); // the tie rounds to even: infinity
    expect(toHalfBits(-Infinity)).toBe(0xfc00);
    expect(toHalfBits(-0)).toBe(0x8000);
    expect(toHalfBits(2 ** -25)).toBe(0); // exactly half the smallest subnormal: ties to even (zero)
    expect(toHalfBits(Math.fround(2 ** -25 * 1.0000001))).toBe(1);
    expect(toHalfBits(1 + 2 ** -11)).toBe(0x3c00); // tie between 1 and its successor: even is 1
    expect(toHalfBits(1 + 3 * 2 ** -11)).toBe(0x3c02);
    expect(toHalfBits(NaN) & 0x7c00).toBe(0x7c00);
    expect(toHalfBits(NaN) & 0x3ff).not.toBe(0);
  });
});
