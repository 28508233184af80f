/**
 * The readers' public types, as docs/model-install.md section 2 defines them. One file, so every reader and the
 * converter import the same definitions.
 */

export type CheckpointFormat = 'torch-zip' | 'torchscript' | 'safetensors';

export type DType = 'float32' | 'float16' | 'bfloat16' | 'float64' | 'int64' | 'int32' | 'uint8' | 'int8' | 'bool';

export interface TensorInfo {
  dtype: DType;
  shape: number[];
  /** in elements, as torch reports them; safetensors tensors are always row-major */
  strides: number[];
  /** absolute byte offset of element [0,…,0] in the file */
  offset: number;
  /** bytes from `offset` that hold the elements (for a strided view: up to its last element) */
  byteLength: number;
}

export interface Checkpoint {
  format: CheckpointFormat;
  /** flat state-dict names, e.g. "visual.conv1.weight" */
  tensors: ReadonlyMap<string, TensorInfo>;
  /** byte ranges [start, end) that reading `names` touches, merged where the gap is under `gap` bytes */
  ranges(names: Iterable<string>, gap?: number): Array<[number, number]>;
  /** the tensor as contiguous row-major float32 (fp16/bf16/fp64 converted exactly) */
  readFloat32(name: string, signal?: AbortSignal): Promise<Float32Array>;
}

export const DTYPE_BYTES: Readonly<Record<DType, number>> = {
  float32: 4,
  float16: 2,
  bfloat16: 2,
  float64: 8,
  int64: 8,
  int32: 4,
  uint8: 1,
  int8: 1,
  bool: 1,
};
