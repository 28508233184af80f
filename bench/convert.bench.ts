/**
 * On-device conversion at full size: published-format ViT-B/32 + MLP + GPT-2 small files (random weights, real
 * shapes) converted with the vit-b32-mlp-fp16 template into a folder, as the install job does into the pack store.
 * Prints the time, the bytes written, the converter's own buffer peak and the process's peak RSS, with the load
 * average before and after (the machine is shared: a high load slows the run, it does not invalidate the bytes).
 * The files are read from local disk: for the whole install job, downloads included, see accept-convert.bench.ts.
 *
 *   npx vitest run --project bench bench/convert.bench.ts
 *
 * Builds its inputs when missing (bench/lib/full-size.ts: .tmp/published-full, packs/templates/vit-b32-mlp-fp16);
 * CONVERT_BENCH_PUBLISHED and CONVERT_BENCH_TEMPLATE point at others. Results: bench/results/convert.json.
 */
import { mkdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { parseManifest } from '../src/captioner/pack-format';
import { MiB, REPO, convertLocal, fullSizeInputs, machineLoad, round, rssSampler, writeResult } from './lib/full-size';

const OUT = join(REPO, '.tmp', 'converted-full');

it('converts full-size published files with the vit-b32-mlp-fp16 template', async () => {
  const { published, template } = fullSizeInputs(process.env.CONVERT_BENCH_PUBLISHED, process.env.CONVERT_BENCH_TEMPLATE);
  rmSync(OUT, { recursive: true, force: true });
  mkdirSync(OUT, { recursive: true });
  const before = machineLoad();
  const rss = rssSampler();
  const rssBefore = process.memoryUsage().rss;
  try {
    const { templateId, manifest, stats, inputs, seconds, openSeconds } = await convertLocal(published, template, OUT, rss.sample);
    const peakRss = rss.peak();
    rss.stop();
    const after = machineLoad();
    parseManifest(manifest);
    for (const f of Object.values(manifest.files)) expect(statSync(join(OUT, f.path)).size).toBe(f.bytes);
    const inputBytes = inputs['clip.pt'] + inputs['clipcap.pt'];
    const result = {
      date: new Date().toISOString(),
      template: templateId,
      inputs,
      seconds: round(seconds),
      openSeconds: round(openSeconds),
      bytesWritten: stats.bytesWritten,
      files: Object.fromEntries(Object.entries(manifest.files).map(([k, f]) => [k, f.bytes])),
      mbPerSecondWritten: round(stats.bytesWritten / MiB / seconds, 1),
      tensors: stats.tensors,
      chunks: stats.chunks,
      maxBufferedMiB: round(stats.maxBufferedBytes / MiB, 1),
      rssBeforeMiB: round(rssBefore / MiB, 0),
      peakRssMiB: round(peakRss / MiB, 0),
      loadavgBefore: before.loadavg,
      loadavgAfter: after.loadavg,
      cpus: before.cpus,
    };
    console.log(
      `[convert] ${result.template}: ${(inputBytes / MiB).toFixed(0)} MiB of published files -> ${(stats.bytesWritten / MiB).toFixed(1)} MiB written in ${result.seconds} s ` +
        `(open ${result.openSeconds} s, ${result.mbPerSecondWritten} MiB/s), ${stats.tensors} tensors, ${stats.chunks} chunks; converter buffers peak ${result.maxBufferedMiB} MiB, ` +
        `RSS ${result.rssBeforeMiB} -> peak ${result.peakRssMiB} MiB; load average before ${result.loadavgBefore.join(' ')}, after ${result.loadavgAfter.join(' ')} (${result.cpus} CPUs)`,
    );
    writeResult('convert.json', result);
  } finally {
    rss.stop();
  }
});
