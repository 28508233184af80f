/**
 * ORT's per-operator profiler, read back: which operators a run executed, with their shapes and times, and the
 * FLOPs of the matrix products among them. onnxruntime-web prints the profile (Chrome trace JSON) to stdout when a
 * session's profiling ends; we capture that.
 *
 * FLOPs are counted for the operators that do the arithmetic, 2 per multiply-add: MatMul and its fused and
 * quantised forms (2 * output elements * K, K being the first input's last dimension), Gemm, and Conv (the patch
 * embedding; its kernel is the input/output stride ratio, as for a ViT's non-overlapping patches). Everything else
 * (layer norms, softmax, adds, reshapes) is linear in the activations and is reported by time only.
 */
import fs from 'node:fs';
import type { InferenceSession } from 'onnxruntime-web';

export interface OpEvent {
  name: string;
  op: string;
  dur: number;
  ts: number;
  inShapes: number[][];
  outShapes: number[][];
}
export interface RunWindow {
  ts: number;
  dur: number;
}

const MATMUL_OPS = new Set([
  'MatMul',
  'FusedMatMul',
  'Gemm',
  'MatMulInteger',
  'DynamicQuantizeMatMul',
  'MatMulIntegerToFloat',
  'MatMulNBits',
  'QGemm',
  'MatMulBnb4',
  'Attention',
]);

// In Node the wasm runtime prints with fs.writeSync(1, ...) (in a browser, console.log); while a profile is being
// ended, writes to stdout go to a buffer instead.
let sink: string[] | null = null;
const realWriteSync = fs.writeSync;
(fs as { writeSync: unknown }).writeSync = (fd: number, data: unknown, ...rest: unknown[]) => {
  if (sink && fd === 1) {
    sink.push(String(data));
    return String(data).length;
  }
  return (realWriteSync as (...a: unknown[]) => number)(fd, data, ...rest);
};

/** End profiling on a session and parse what ORT printed. */
export function endProfiling(session: InferenceSession): { ops: OpEvent[]; runs: RunWindow[] } {
  const printed: string[] = [];
  sink = printed;
  try {
    session.endProfiling();
  } finally {
    sink = null;
  }
  const text = printed.join('\n');
  const start = text.indexOf('[');
  const events = JSON.parse(text.slice(start).replace(/,\s*\]\s*$/, ']')) as Array<{
    cat: string;
    name: string;
    dur: number;
    ts: number;
    args: Record<string, unknown>;
  }>;
  const shapes = (v: unknown) => ((v as Array<Record<string, number[]>>) ?? []).map((o) => Object.values(o)[0] ?? []);
  const ops = events
    .filter((e) => e.cat === 'Node' && e.name.endsWith('_kernel_time'))
    .map((e) => ({
      name: e.name,
      op: String(e.args.op_name),
      dur: e.dur,
      ts: e.ts,
      inShapes: shapes(e.args.input_type_shape),
      outShapes: shapes(e.args.output_type_shape),
    }));
  const runs = events.filter((e) => e.cat === 'Session' && e.name === 'model_run').map((e) => ({ ts: e.ts, dur: e.dur }));
  return { ops, runs };
}

const prod = (s: number[]) => s.reduce((a, b) => a * b, 1);

/** FLOPs of one operator event (0 for operators that are not matrix products). */
function opFlops(e: OpEvent): number {
  if (!MATMUL_OPS.has(e.op) && e.op !== 'Conv') return 0;
  const a = e.inShapes[0];
  const out = e.outShapes[0];
  if (!a || !out || a.length === 0) return 0;
  if (e.op === 'Conv') {
    // [N, Cin, H, W] -> [N, Cout, H', W'], kernel = stride = H / H' (non-overlapping patches)
    const k = Math.round(a[2] / out[2]) * Math.round(a[3] / out[3]);
    return 2 * prod(out) * a[1] * k;
  }
  if (e.op === 'Gemm') return 2 * prod(out) * a[a.length - 1]; // transA is never set in our graphs
  return 2 * prod(out) * a[a.length - 1];
}

export interface Breakdown {
  ms: number;
  flops: number;
  byOp: Record<string, { ms: number; flops: number; count: number }>;
}

export function breakdown(ops: OpEvent[]): Breakdown {
  const byOp: Breakdown['byOp'] = {};
  let us = 0;
  let flops = 0;
  for (const e of ops) {
    const f = opFlops(e);
    const b = (byOp[e.op] ??= { ms: 0, flops: 0, count: 0 });
    b.ms += e.dur / 1000;
    b.flops += f;
    b.count += 1;
    us += e.dur;
    flops += f;
  }
  return { ms: us / 1000, flops, byOp };
}

/** The operators of each run, in order (a decoder session's first run is the prefill, the rest are steps). */
export function splitRuns(ops: OpEvent[], runs: RunWindow[]): OpEvent[][] {
  return runs.map((r) => ops.filter((e) => e.ts >= r.ts && e.ts <= r.ts + r.dur));
}
