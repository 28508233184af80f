/**
 * Tensor bytes -> contiguous row-major float32, exactly as torch's `.float().contiguous()`: fp16 and bf16 widen
 * exactly, fp64 rounds to nearest-even (what a Float32Array store does), integers convert by value.
 */
import { UnsupportedCheckpointError } from '../../shared/errors';
import { float16ToFloat32 } from '../half';
import { DTYPE_BYTES, type TensorInfo } from './types';

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Elements of the span `bytes` (from the tensor's offset) as float32, in storage order. */
function widen(info: TensorInfo, bytes: Uint8Array): Float32Array {
  if (!LITTLE_ENDIAN) throw new UnsupportedCheckpointError('tensor reading on a big-endian machine');
  // Typed-array views need an aligned buffer of their own. A read that returned a fresh buffer (Blob, HTTP) is used
  // as it is, so GPT-2's 154 MB table is not held twice; a view into a larger buffer (bytesSource) is copied out.
  const owns = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength && bytes.buffer instanceof ArrayBuffer;
  const buf = owns ? bytes.buffer : bytes.slice().buffer;
  const n = bytes.length / DTYPE_BYTES[info.dtype];
  switch (info.dtype) {
    case 'float32':
      return new Float32Array(buf);
    case 'float16':
      return float16ToFloat32(new Uint16Array(buf)); // the converter's one float16 codec
    case 'bfloat16': {
      const src = new Uint16Array(buf);
      const out = new Float32Array(n);
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) bits[i] = src[i] << 16;
      return out;
    }
    case 'float64':
      return Float32Array.from(new Float64Array(buf));
    case 'int64':
      return Float32Array.from(new BigInt64Array(buf), (v) => Number(v));
    case 'int32':
      return Float32Array.from(new Int32Array(buf));
    case 'uint8':
    case 'bool':
      return Float32Array.from(new Uint8Array(buf));
    case 'int8':
      return Float32Array.from(new Int8Array(buf));
    default:
      throw new UnsupportedCheckpointError(`tensor dtype ${String(info.dtype)}`);
  }
}

function isContiguous(shape: readonly number[], strides: readonly number[]): boolean {
  let expect = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    if (shape[d] !== 1 && strides[d] !== expect) return false;
    expect *= shape[d];
  }
  return true;
}

/** `bytes` holds the tensor's span [offset, offset + byteLength). */
export function toFloat32(info: TensorInfo, bytes: Uint8Array): Float32Array {
  const numel = info.shape.reduce((a, b) => a * b, 1);
  if (numel === 0) return new Float32Array(0);
  const span = widen(info, bytes);
  if (isContiguous(info.shape, info.strides)) return span.length === numel ? span : span.slice(0, numel);
  // A strided view (e.g. a transposed tensor saved as it was): gather in row-major order.
  const out = new Float32Array(numel);
  const rank = info.shape.length;
  const idx = new Array<number>(rank).fill(0);
  let src = 0;
  for (let i = 0; i < numel; i++) {
    out[i] = span[src];
    for (let d = rank - 1; d >= 0; d--) {
      idx[d]++;
      src += info.strides[d];
      if (idx[d] < info.shape[d]) break;
      src -= info.strides[d] * idx[d];
      idx[d] = 0;
    }
  }
  return out;
}

/** Bytes from element [0,…,0] to the last element (inclusive) of a view with non-negative strides. */
export function spanBytes(shape: readonly number[], strides: readonly number[], elemBytes: number): number {
  if (shape.some((s) => s === 0)) return 0;
  let last = 0;
  for (let d = 0; d < shape.length; d++) last += (shape[d] - 1) * strides[d];
  return (last + 1) * elemBytes;
}
