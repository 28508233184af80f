/** Hand-made checkpoints, sinks and templates for the converter's unit tests. */
import type { ConverterCheckpoint, CheckpointTensorInfo } from '../../../src/converter/check-inputs';
import type { PackSink } from '../../../src/converter/convert';
import { rng } from '../../helpers/rng';

export interface FakeTensor {
  shape: number[];
  data?: Float32Array;
  dtype?: string;
  /** make it share storage with another tensor, as torch.save writes tied weights */
  tiedTo?: string;
}

/** A checkpoint held in memory; counts reads and how many read tensors are alive (by FinalizationRegistry-free bookkeeping: the test says when it drops one). */
export class FakeCheckpoint implements ConverterCheckpoint {
  tensors = new Map<string, CheckpointTensorInfo>();
  data = new Map<string, Float32Array>();
  reads: string[] = [];
  /** called before each read; a test can abort or throw from here */
  beforeRead?: (name: string) => void;

  constructor(spec: Record<string, FakeTensor>, seed = 1) {
    const r = rng(seed);
    let offset = 0;
    for (const [name, t] of Object.entries(spec)) {
      const n = t.shape.reduce((a, d) => a * d, 1);
      if (t.tiedTo) {
        this.tensors.set(name, { ...this.tensors.get(t.tiedTo)! });
        this.data.set(name, this.data.get(t.tiedTo)!);
        continue;
      }
      const data = t.data ?? Float32Array.from({ length: n }, () => (r() - 0.5) * 2);
      this.data.set(name, data);
      this.tensors.set(name, { dtype: t.dtype ?? 'float32', shape: t.shape, strides: [], offset, byteLength: n * 4 });
      offset += n * 4;
    }
  }

  async readFloat32(name: string): Promise<Float32Array> {
    this.beforeRead?.(name);
    this.reads.push(name);
    const d = this.data.get(name);
    if (!d) throw new Error(`no tensor ${name}`);
    return d.slice(); // a fresh array, as a reader returns
  }
}

/** Collects what the converter appends, checking that each file grows in order. */
export class MemorySink implements PackSink {
  files = new Map<string, Uint8Array[]>();
  appends: Array<{ path: string; offset: number; bytes: number }> = [];
  beforeAppend?: (path: string, offset: number) => void | Promise<void>;

  async append(path: string, offset: number, data: Uint8Array): Promise<void> {
    await this.beforeAppend?.(path, offset);
    const have = this.size(path);
    if (offset !== have) throw new Error(`append to ${path} at ${offset}, but it has ${have} bytes`);
    this.files.set(path, [...(this.files.get(path) ?? []), data.slice()]);
    this.appends.push({ path, offset, bytes: data.byteLength });
  }

  size(path: string): number {
    return (this.files.get(path) ?? []).reduce((n, c) => n + c.byteLength, 0);
  }

  bytes(path: string): Uint8Array {
    const chunks = this.files.get(path) ?? [];
    const out = new Uint8Array(this.size(path));
    let o = 0;
    for (const c of chunks) {
      out.set(c, o);
      o += c.byteLength;
    }
    return out;
  }
}
