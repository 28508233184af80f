/**
 * safetensors (https://huggingface.co/docs/safetensors, "Format"): an 8-byte little-endian header length, a JSON
 * header {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}, then the data, with offsets
 * relative to the data's start. The same rules as model/safetensors_io.py's reader.
 */
import { CorruptCheckpointError, NotACheckpointError, TruncatedCheckpointError, UnsupportedCheckpointError } from '../../shared/errors';
import type { RandomAccess } from './random-access';
import { DTYPE_BYTES, type DType, type TensorInfo } from './types';

const DTYPES: Record<string, DType> = {
  F32: 'float32',
  F16: 'float16',
  BF16: 'bfloat16',
  F64: 'float64',
  I64: 'int64',
  I32: 'int32',
  U8: 'uint8',
  I8: 'int8',
  BOOL: 'bool',
};

const MAX_HEADER_BYTES = 100 * 2 ** 20; // the reference implementation refuses larger headers too

/** The header length if the first bytes look like safetensors (a plausible length, then '{'), else null. */
export function safetensorsHeaderLength(head: Uint8Array): number | null {
  if (head.length < 9) return null;
  const n = new DataView(head.buffer, head.byteOffset, 8).getBigUint64(0, true);
  return n >= 2n && n <= BigInt(MAX_HEADER_BYTES) && head[8] === 0x7b ? Number(n) : null;
}

/** `head`: the first bytes, if the caller has them already (no byte of the header is fetched twice). */
export async function readSafetensors(src: RandomAccess, signal?: AbortSignal, head?: Uint8Array): Promise<Map<string, TensorInfo>> {
  head ??= await src.read(0, Math.min(src.size, 9), signal);
  const n = safetensorsHeaderLength(head);
  if (n === null) throw new NotACheckpointError('not a safetensors header either');
  if (8 + n > src.size) throw new TruncatedCheckpointError(8 + n, src.size);
  let header: unknown;
  try {
    let json = head.subarray(8, 8 + n);
    if (json.length < n) {
      const rest = await src.read(head.length, 8 + n - head.length, signal);
      json = new Uint8Array(n);
      json.set(head.subarray(8));
      json.set(rest, head.length - 8);
    }
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(json));
  } catch (e) {
    throw new CorruptCheckpointError('the safetensors header is not JSON', { cause: e });
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header))
    throw new CorruptCheckpointError('the safetensors header is not an object');
  const dataStart = 8 + n;
  const tensors = new Map<string, TensorInfo>();
  for (const [name, e] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') continue;
    const { dtype, shape, data_offsets: off } = (e ?? {}) as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof dtype !== 'string') throw new CorruptCheckpointError(`tensor "${name}" has no dtype`);
    const dt = DTYPES[dtype];
    if (!dt) throw new UnsupportedCheckpointError(`tensor dtype ${dtype} (of "${name}")`);
    const ints = (v: unknown): v is number[] => Array.isArray(v) && v.every((x) => Number.isSafeInteger(x) && x >= 0);
    if (!ints(shape) || !ints(off) || off.length !== 2 || off[0] > off[1])
      throw new CorruptCheckpointError(`tensor "${name}" has a bad shape or data_offsets`);
    const numel = shape.reduce((a, b) => a * b, 1);
    if (off[1] - off[0] !== numel * DTYPE_BYTES[dt])
      throw new CorruptCheckpointError(`tensor "${name}" spans ${off[1] - off[0]} bytes, not ${numel * DTYPE_BYTES[dt]}`);
    if (dataStart + off[1] > src.size) throw new TruncatedCheckpointError(dataStart + off[1], src.size);
    const strides = shape.map((_, d) => shape.slice(d + 1).reduce((a, b) => a * b, 1));
    tensors.set(name, { dtype: dt, shape, strides, offset: dataStart + off[0], byteLength: off[1] - off[0] });
  }
  return tensors;
}
