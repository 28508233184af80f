/**
 * float32 <-> float16 (IEEE binary16), bit for bit as numpy's `astype(np.float16)` (npy_floatbits_to_halfbits), so
 * a pack converted on the device is the same file model/export.py's `to_fp16_storage` writes.
 *
 * Rounding works on the float32 bit pattern, never through a double: going float32 -> double -> half could round
 * twice and differ from numpy in the last bit.
 */

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The float16 bits of a float32 given by its bits: round to nearest, ties to even; subnormals; overflow to inf. */
export function halfBitsFromFloatBits(f: number): number {
  const sign = (f >>> 16) & 0x8000;
  const exp = f & 0x7f800000;
  if (exp >= 0x47800000) {
    if (exp === 0x7f800000) {
      const sig = f & 0x007fffff;
      if (sig === 0) return sign | 0x7c00;
      // numpy keeps the top 10 bits of a NaN's payload; a payload only in the low bits must still be a NaN.
      const nan = 0x7c00 + (sig >>> 13);
      return sign | (nan === 0x7c00 ? 0x7c01 : nan);
    }
    return sign | 0x7c00;
  }
  if (exp <= 0x38000000) {
    // Below half's smallest subnormal by more than a half ulp: signed zero.
    if (exp < 0x33000000) return sign;
    const e = exp >>> 23;
    let sig = 0x00800000 + (f & 0x007fffff);
    // The shift can drop up to 11 low bits, which still count as "above the tie".
    const sticky = (f & 0x000007ff) !== 0;
    sig = sig >>> (113 - e);
    if ((sig & 0x00003fff) !== 0x00001000 || sticky) sig += 0x00001000;
    // A carry out of the significand lands in the exponent field: that is the right answer (smallest normal).
    return sign | (sig >>> 13);
  }
  const hExp = (exp - 0x38000000) >>> 13;
  let sig = f & 0x007fffff;
  if ((sig & 0x00003fff) !== 0x00001000) sig += 0x00001000;
  // Adding (not OR-ing) lets a rounding carry bump the exponent, up to inf at the top.
  return sign | ((hExp + (sig >>> 13)) & 0xffff);
}

/** float16 bits of a number, after rounding it to float32 first (as numpy would hold it). */
export function toHalfBits(x: number): number {
  f32[0] = x;
  return halfBitsFromFloatBits(u32[0]);
}

/** The float32 bits of a float16 given by its bits (exact: every half is a float32). */
export function floatBitsFromHalfBits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = h & 0x7c00;
  const sig = h & 0x03ff;
  if (exp === 0x7c00) return (sign | 0x7f800000 | (sig << 13)) >>> 0;
  if (exp !== 0) return (sign | ((exp + 0x1c000) << 13) | (sig << 13)) >>> 0;
  if (sig === 0) return sign >>> 0;
  // Subnormal half: normalise into float32's wider exponent range.
  let e = 113;
  let s = sig;
  while ((s & 0x0400) === 0) {
    s <<= 1;
    e--;
  }
  return (sign | (e << 23) | ((s & 0x03ff) << 13)) >>> 0;
}

/** Convert `src` into `dst` (same length), element by element. */
export function float32ToFloat16(src: Float32Array, dst: Uint16Array = new Uint16Array(src.length)): Uint16Array {
  if (dst.length !== src.length) throw new RangeError(`float32ToFloat16: ${src.length} values into ${dst.length}`);
  // Reading the bits through a Uint32Array view avoids one Float32Array write per element.
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < bits.length; i++) dst[i] = halfBitsFromFloatBits(bits[i]);
  return dst;
}

export function float16ToFloat32(src: Uint16Array, dst: Float32Array = new Float32Array(src.length)): Float32Array {
  if (dst.length !== src.length) throw new RangeError(`float16ToFloat32: ${src.length} values into ${dst.length}`);
  const bits = new Uint32Array(dst.buffer, dst.byteOffset, dst.length);
  for (let i = 0; i < src.length; i++) bits[i] = floatBitsFromHalfBits(src[i]);
  return dst;
}
