/**
 * One decode-shaped product (1 x 768 against a 768 x 32768 weight, 96 MB in fp32) in every form of
 * bench/py/bench_graphs.py's gemv probe: fp32 MatMul, int8 MatMulInteger, and weight-only MatMulNBits at 4 and 8
 * bits (blocks of 32 and 128, accuracy_level 4, and 4-bit at accuracy_level 0), on onnxruntime-web's wasm with one
 * thread. The forms alternate run by run (round-robin), so machine load falls on all of them; the figure is each
 * form's median time and its median ratio to fp32 within a round. Isolates the kernel from the decoder around it.
 *
 *   /usr/bin/python3 -m bench.py.bench_graphs --out .tmp/h/lowbit/probes   (LOWBIT_PROBES: that folder)
 * A measurement, not a test.
 */
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import * as ortWeb from 'onnxruntime-web';
import { it } from 'vitest';
import { loadNow, loadVerdict } from './lib/machine.mjs';
import { stat } from './lib/stats';

const DIR = resolve(import.meta.dirname, '..', process.env.LOWBIT_PROBES ?? '.tmp/h/lowbit/probes');
const ROUNDS = Number(process.env.BENCH_RUNS ?? 15);
// what `uptime` prints about load: the 1, 5 and 15 minute load averages
const uptime = () =>
  `load average: ${loadavg()
    .map((x) => x.toFixed(2))
    .join(', ')}`;
const log = (s: string) => console.log(`[bench:lowbit-probe] ${s}`);

it('one-row product: fp32, int8 and MatMulNBits forms, alternating', async () => {
  // LOWBIT_RUNTIME=node: the same graphs on onnxruntime-node (native MLAS kernels), to tell the format from the kernel
  const native = process.env.LOWBIT_RUNTIME === 'node';
  const ort: typeof ortWeb = native ? await import('onnxruntime-node') : ortWeb;
  if (native) log('runtime: onnxruntime-node (native), 1 intra-op thread');
  else ort.env.wasm.numThreads = 1;
  const gemv = JSON.parse(readFileSync(join(DIR, 'probes.json'), 'utf8')).gemv as {
    m: number;
    k: number;
    n: number;
    files: Record<string, string>;
  };
  const names = Object.keys(gemv.files);
  const sessions = await Promise.all(
    names.map((n) =>
      ort.InferenceSession.create(readFileSync(join(DIR, gemv.files[n])), {
        graphOptimizationLevel: 'all',
        intraOpNumThreads: 1,
        extra: { session: { intra_op: { allow_spinning: '0' } } },
      }),
    ),
  );
  const x = new ort.Tensor(
    'float32',
    Float32Array.from({ length: gemv.k }, (_, i) => Math.sin(i) * 0.5),
    [1, gemv.k],
  );
  const up0 = uptime();
  const before = loadNow();
  const ref = (await sessions[0].run({ X: x })).Y.data as Float32Array;
  const times = names.map(() => [] as number[]);
  for (const s of sessions) for (let i = 0; i < 2; i++) await s.run({ X: x });
  for (let r = 0; r < ROUNDS; r++) {
    for (let j = 0; j < names.length; j++) {
      const k = (r + j) % names.length;
      const t = performance.now();
      await sessions[k].run({ X: x });
      times[k].push(performance.now() - t);
    }
  }
  const errs = await Promise.all(
    sessions.map(async (s) => {
      const y = (await s.run({ X: x })).Y.data as Float32Array;
      let e = 0;
      let m = 0;
      for (let i = 0; i < y.length; i++) {
        e = Math.max(e, Math.abs(y[i] - ref[i]));
        m = Math.max(m, Math.abs(ref[i]));
      }
      return e / m;
    }),
  );
  await Promise.all(sessions.map((s) => s.release()));
  log(`uptime before: ${up0}`);
  names.forEach((n, k) => {
    const ratio = stat(times[k].map((t, r) => t / times[0][r])).median;
    log(
      `${n.padEnd(10)} ${stat(times[k]).median.toFixed(2).padStart(8)} ms   vs fp32 ${ratio.toFixed(2)}   max rel err ${errs[k].toExponential(1)}`,
    );
  });
  log(`uptime after: ${uptime()}`);
  log(loadVerdict(before, loadNow()).line);
}, 600_000);
