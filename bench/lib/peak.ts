/**
 * The limit: GFLOP/s of the probe graphs bench/py/bench_graphs.py writes (one large MatMul, and one row against a
 * weight far larger than the caches), in the same onnxruntime-web build, threads and precision as the pipeline.
 * The best of several runs is the peak: on a shared machine noise only ever slows a run down.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type * as OrtModule from 'onnxruntime-web';
import { stat, type Stat } from './stats';

interface Probe {
  m: number;
  k: number;
  n: number;
  flops: number;
  files: Record<'fp32' | 'int8', string>;
}
export interface Peak {
  shape: [number, number, number];
  ms: Stat;
  gflops: number;
}

export async function measurePeaks(ort: typeof OrtModule, dir: string, precision: 'fp32' | 'int8'): Promise<Record<string, Peak>> {
  const meta = join(dir, 'probes.json');
  if (!existsSync(meta))
    throw new Error('No probe graphs: run /usr/bin/python3 -m bench.py.bench_graphs first (npm run bench:peers does).');
  const probes: Record<string, Probe> = JSON.parse(readFileSync(meta, 'utf8'));
  const out: Record<string, Peak> = {};
  for (const [name, p] of Object.entries(probes)) {
    const s = await ort.InferenceSession.create(readFileSync(join(dir, p.files[precision])), {
      graphOptimizationLevel: 'all',
      extra: { session: { intra_op: { allow_spinning: '0' } } },
    });
    const x = new ort.Tensor(
      'float32',
      Float32Array.from({ length: p.m * p.k }, (_, i) => Math.sin(i) * 0.5),
      [p.m, p.k],
    );
    for (let i = 0; i < 3; i++) await s.run({ X: x });
    const ts: number[] = [];
    for (let i = 0; i < 15; i++) {
      const t = performance.now();
      await s.run({ X: x });
      ts.push(performance.now() - t);
    }
    await s.release();
    const ms = stat(ts);
    out[name] = { shape: [p.m, p.k, p.n], ms, gflops: p.flops / ms.min / 1e6 };
  }
  return out;
}
