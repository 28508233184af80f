/**
 * On-device conversion at full size: published-format ViT-B/32 + MLP + GPT-2 small files (random weights, real
 * shapes) converted with the vit-b32-mlp-fp16 template into a folder, as the install job does into the pack store.
 * Prints the time, the bytes written, the converter's own buffer peak and the process's peak RSS, with the load
 * average before and after (the machine is shared: a high load slows the run, it does not invalidate the bytes).
 *
 *   /usr/bin/python3 -m model.published --random full-vit-b32-mlp --out .tmp/published-full    (a few minutes, ~1 GB)
 *   /usr/bin/python3 -m model.template --config vit-b32-mlp --precision fp16                    (or bash scripts/packs.sh --release)
 *   npx vitest run --project bench bench/convert.bench.ts
 *
 * Results: bench/results/convert.json.
 */
import { existsSync, mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { expect, it } from 'vitest';
import { parseManifest } from '../src/captioner/pack-format';
import { convertPack, type ConvertStats } from '../src/converter/convert';
import { openCheckpoint } from '../src/converter/readers/checkpoint';
import { DirSink, fileSource, readTemplateDir } from '../test/converter/helpers/node-files';

const REPO = resolve(import.meta.dirname, '..');
const PUBLISHED = process.env.CONVERT_BENCH_PUBLISHED ?? '.tmp/published-full';
const TEMPLATE = process.env.CONVERT_BENCH_TEMPLATE ?? 'packs/templates/vit-b32-mlp-fp16';
const OUT = join(REPO, '.tmp', 'converted-full');
const MiB = 2 ** 20;

it('converts full-size published files with the vit-b32-mlp-fp16 template', async () => {
  const missing = [`${PUBLISHED}/clip.pt`, `${PUBLISHED}/clipcap.pt`, `${TEMPLATE}/template.json`].filter((p) => !existsSync(resolve(REPO, p)));
  if (missing.length) {
    throw new Error(`missing ${missing.join(', ')}: run \`/usr/bin/python3 -m model.published --random full-vit-b32-mlp --out ${PUBLISHED}\` and \`bash scripts/packs.sh --release\``);
  }
  rmSync(OUT, { recursive: true, force: true });
  mkdirSync(OUT, { recursive: true });
  const loadBefore = loadavg();
  let peakRss = process.memoryUsage().rss;
  const sample = () => (peakRss = Math.max(peakRss, process.memoryUsage().rss));
  const timer = setInterval(sample, 50);
  const t = readTemplateDir(resolve(REPO, TEMPLATE));
  const sources = [fileSource(resolve(REPO, PUBLISHED, 'clip.pt')), fileSource(resolve(REPO, PUBLISHED, 'clipcap.pt'))];
  const sink = new DirSink(OUT);
  const stats: ConvertStats = { maxBufferedBytes: 0, bytesWritten: 0, tensors: 0, chunks: 0 };
  const rssBefore = process.memoryUsage().rss;
  const t0 = performance.now();
  let tOpen = 0;
  try {
    const inputs = { clip: await openCheckpoint(sources[0]), clipcap: await openCheckpoint(sources[1]) };
    tOpen = performance.now() - t0;
    const manifest = await convertPack({
      template: t.template, skeleton: t.skeleton, tokenizer: t.tokenizer, inputs, sink, stats,
      meta: { id: 'converted-full', version: '1.0.0', name: 'Converted (bench)' },
      onProgress: sample,
    });
    const seconds = (performance.now() - t0) / 1000;
    clearInterval(timer);
    sample();
    const loadAfter = loadavg();
    parseManifest(manifest);
    for (const f of Object.values(manifest.files)) expect(statSync(join(OUT, f.path)).size).toBe(f.bytes);
    const inputBytes = sources.reduce((n, s) => n + s.size, 0);
    const result = {
      date: new Date().toISOString(),
      template: t.template.id,
      inputs: { 'clip.pt': sources[0].size, 'clipcap.pt': sources[1].size },
      seconds: +seconds.toFixed(2),
      openSeconds: +(tOpen / 1000).toFixed(2),
      bytesWritten: stats.bytesWritten,
      files: Object.fromEntries(Object.entries(manifest.files).map(([k, f]) => [k, f.bytes])),
      mbPerSecondWritten: +(stats.bytesWritten / MiB / seconds).toFixed(1),
      tensors: stats.tensors,
      chunks: stats.chunks,
      maxBufferedMiB: +(stats.maxBufferedBytes / MiB).toFixed(1),
      rssBeforeMiB: +(rssBefore / MiB).toFixed(0),
      peakRssMiB: +(peakRss / MiB).toFixed(0),
      loadavgBefore: loadBefore.map((x) => +x.toFixed(2)),
      loadavgAfter: loadAfter.map((x) => +x.toFixed(2)),
      cpus: (await import('node:os')).cpus().length,
    };
    console.log(`[convert] ${result.template}: ${(inputBytes / MiB).toFixed(0)} MiB of published files -> ${(stats.bytesWritten / MiB).toFixed(1)} MiB written in ${result.seconds} s ` +
      `(open ${result.openSeconds} s, ${result.mbPerSecondWritten} MiB/s), ${stats.tensors} tensors, ${stats.chunks} chunks; converter buffers peak ${result.maxBufferedMiB} MiB, ` +
      `RSS ${result.rssBeforeMiB} -> peak ${result.peakRssMiB} MiB; load average before ${result.loadavgBefore.join(' ')}, after ${result.loadavgAfter.join(' ')} (${result.cpus} CPUs)`);
    writeFileSync(join(REPO, 'bench', 'results', 'convert.json'), JSON.stringify(result, null, 2) + '\n');
  } finally {
    clearInterval(timer);
    sink.close();
    for (const s of sources) s.close();
  }
});
