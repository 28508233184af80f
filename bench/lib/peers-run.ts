/**
 * One precision of `npm run bench:peers`, in its own process (each bench file is one vitest fork, so the wasm
 * heap and the RSS figures belong to this precision alone):
 *   1. our pipeline and the distilvit-style peer loaded side by side: resident memory each adds;
 *   2. per-caption latency, ours and theirs alternating on the same images, exactly TOKENS new tokens each;
 *   3. token agreement of this pack with the fp32 PyTorch reference on the golden set;
 *   4. one profiled caption: FLOPs and op-level time per stage;
 *   5. the peak GFLOP/s of a large MatMul (and of a decode-shaped one-row product) at this precision, measured here,
 *      right after the timings, so that both see the same machine.
 * Writes .tmp/bench/peers-<precision>.json; bench/peers-report.mjs joins the files into bench/results/peers.json.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import * as ort from 'onnxruntime-web';
import { createCaptioner } from '../../src/captioner/captioner';
import { decodeImageWithSharp } from '../../src/captioner/node-decode';
import { preprocessRgba } from '../../src/captioner/preprocess';
import { loadNow, loadVerdict } from './machine.mjs';
import { downloadBytes, loadPackDir, photoPng, withoutStops } from './pack';
import { loadPeer, peerAvailable } from './peer';
import { agreement, profiledCaption, readGolden } from './ours';
import { measurePeaks } from './peak';
import { mb, stat } from './stats';

const REPO = resolve(import.meta.dirname, '../..');
const TMP = resolve(REPO, '.tmp/bench');
const PACKS = resolve(REPO, process.env.BENCH_PACKS ?? 'packs/random-full');
const PEER = resolve(REPO, process.env.BENCH_PEER ?? 'packs/peer-distilvit');
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const THREADS = Number(process.env.BENCH_THREADS ?? 2);
const TOKENS = 20;

// A full garbage collection before each reading, so that resident memory counts what is still referenced.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const rssMb = () => {
  gc();
  return mb(process.memoryUsage().rss);
};
const log = (s: string) => console.log(`[bench:peers] ${s}`);

export async function runPrecision(precision: 'fp32' | 'fp16' | 'int8'): Promise<void> {
  const dir = join(PACKS, precision);
  if (!existsSync(join(dir, 'pack.json'))) throw new Error(`No pack at ${dir}. Build it first: npm run pack:random`);
  mkdirSync(TMP, { recursive: true });
  ort.env.wasm.numThreads = THREADS;
  const load0 = loadNow();

  // Images: a 640x480 photo-like PNG and two of the golden set, written to disk so both pipelines read files.
  const images: string[] = [];
  for (const seed of [1, 2, 3]) {
    const p = join(TMP, `photo${seed}.png`);
    if (!existsSync(p)) writeFileSync(p, await photoPng(seed));
    images.push(p);
  }
  const bytes = await Promise.all(images.map(async (p) => (await import('node:fs/promises')).readFile(p)));

  // 1. Load, and what each pipeline adds to resident memory.
  const rss0 = rssMb();
  // the loaded pack is handed over, not kept: what stays resident is what the captioner holds
  const cap = await createCaptioner({
    pack: withoutStops(await loadPackDir(dir)),
    ort: ort,
    backend: 'wasm',
    threads: THREADS,
    decodeImage: decodeImageWithSharp,
  });
  await cap.caption(bytes[0], { strategy: 'greedy', maxTokens: TOKENS });
  const rssOurs = rssMb() - rss0;
  const peerDtype = precision === 'int8' ? 'q8' : 'fp32';
  const withPeer = precision !== 'fp16';
  if (withPeer && !peerAvailable(PEER, peerDtype)) throw new Error(`No ${peerDtype} peer at ${PEER}. Build it first: npm run pack:peer`);
  const rss1 = rssMb();
  const peer = withPeer ? await loadPeer(PEER, peerDtype) : null;
  if (peer) await peer.caption(images[0], TOKENS);
  const rssPeer = rssMb() - rss1;
  log(`${precision}: loaded; ours +${rssOurs} MB resident${peer ? `, peer (${peerDtype}) +${rssPeer} MB` : ''}`);

  // 2. Latency, alternating so that both see the same machine load.
  const ours: number[] = [];
  const theirs: number[] = [];
  const stages: Record<string, number[]> = { preprocess: [], vision: [], mapper: [], prefill: [], perToken: [] };
  for (let i = 0; i < RUNS; i++) {
    for (let j = 0; j < images.length; j++) {
      const r = await cap.caption(bytes[j], { strategy: 'greedy', maxTokens: TOKENS });
      if (r.timings.tokens !== TOKENS) throw new Error(`expected ${TOKENS} tokens, got ${r.timings.tokens}`);
      ours.push(r.timings.total);
      for (const k of Object.keys(stages)) stages[k].push(r.timings[k as keyof typeof r.timings]);
      if (peer) theirs.push(await peer.caption(images[j], TOKENS));
    }
  }
  await cap.dispose();
  await peer?.dispose();
  const oursStat = stat(ours);
  const peerStat = peer ? stat(theirs) : null;
  log(
    `${precision}: ours ${oursStat.median.toFixed(0)} ms per ${TOKENS}-token caption${peerStat ? `, peer ${peerStat.median.toFixed(0)} ms: ratio ${(oursStat.median / peerStat.median).toFixed(2)}` : ''}`,
  );

  // 3. Agreement with the fp32 reference.
  const pack = await loadPackDir(dir);
  const golden = readGolden(join(PACKS, 'fp32'));
  const agree = await agreement(ort, pack, golden);
  log(
    `${precision}: token agreement ${(agree.rate * 100).toFixed(2)}% (${agree.agreeing}/${agree.tokens}); identical captions ${agree.captionsIdentical}/${agree.captions}`,
  );

  // 4. One profiled caption.
  const rgba = await decodeImageWithSharp(bytes[0], { maxPixels: 4096 * 4096 });
  const prof = await profiledCaption(ort, pack, preprocessRgba(rgba, pack.manifest.preprocess), TOKENS);

  // 5. The limit, at this precision's arithmetic (fp16 packs are stored in half precision, computed in fp32).
  const peak = await measurePeaks(ort, TMP, precision === 'int8' ? 'int8' : 'fp32');
  log(`${precision}: peak MatMul ${peak.matmul.gflops.toFixed(1)} GFLOP/s, one-row ${peak.gemv.gflops.toFixed(1)} GFLOP/s`);

  const load = loadVerdict(load0, loadNow());
  log(`${precision}: ${load.line}`);
  const result = {
    precision,
    date: new Date().toISOString(),
    machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version, load },
    runtime: { ort: 'onnxruntime-web (wasm, Node build)', threads: THREADS },
    tokens: TOKENS,
    pack: {
      id: pack.manifest.id,
      downloadMB: mb(downloadBytes(pack)),
      files: Object.fromEntries(Object.entries(pack.manifest.files).map(([k, f]) => [k, mb(f.bytes)])),
    },
    memory: { oursResidentMB: rssOurs, peerResidentMB: peer ? rssPeer : null },
    ours: { captionMs: oursStat, stages: Object.fromEntries(Object.entries(stages).map(([k, v]) => [k, stat(v)])) },
    peer: peer ? { dtype: peerDtype, captionMs: peerStat } : null,
    ratio: peerStat ? oursStat.median / peerStat.median : null,
    agreement: agree,
    profile: prof,
    peak,
  };
  writeFileSync(join(TMP, `peers-${precision}.json`), JSON.stringify(result, null, 2));
}
