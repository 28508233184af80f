/**
 * What the full-size conversion benchmarks share (bench/convert.bench.ts, bench/accept-convert.bench.ts): the
 * published-format inputs and the template, built when missing; a conversion of those files read from local disk;
 * the peak RSS sampled while a run goes; the machine's load around it; writing the result.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { convertPack, type ConvertStats } from '../../src/converter/convert';
import type { PackManifest } from '../../src/captioner/pack-format';
import { openCheckpoint } from '../../src/converter/readers/checkpoint';
import { DirSink, fileSource, readTemplateDir } from '../../test/converter/helpers/node-files';
import { buildOnce } from '../../test/helpers/test-catalogue';

export const REPO = resolve(import.meta.dirname, '../..');
export const MiB = 2 ** 20;
export const round = (x: number, digits = 2) => +x.toFixed(digits);

/** The full-size inputs: ViT-B/32 + MLP + GPT-2 small in the published containers (random weights, real shapes). */
const FULL_PUBLISHED = '.tmp/published-full';
const FULL_TEMPLATE = 'packs/templates/vit-b32-mlp-fp16';

/**
 * Absolute paths of the published folder and the template folder. The default ones are built when missing (the
 * published files in a few minutes, ~1 GB; the template by scripts/packs.sh --release, 5-10 minutes, waiting for
 * another build holding its lock); others (given through the environment) must exist.
 */
export function fullSizeInputs(published = FULL_PUBLISHED, template = FULL_TEMPLATE): { published: string; template: string } {
  const p = resolve(REPO, published);
  const t = resolve(REPO, template);
  if (!existsSync(join(p, 'clipcap.pt'))) {
    if (p !== resolve(REPO, FULL_PUBLISHED)) throw new Error(`${p}/clipcap.pt is missing`);
    console.log(`[bench] writing ${FULL_PUBLISHED} (random weights, real shapes: a few minutes)`);
    buildOnce(p, ['-m', 'model.published', '--random', 'full-vit-b32-mlp']);
  }
  if (!existsSync(join(t, 'template.json'))) {
    if (t !== resolve(REPO, FULL_TEMPLATE)) throw new Error(`${t}/template.json is missing`);
    console.log('[bench] building the release templates: bash scripts/packs.sh --release (5-10 minutes)');
    execFileSync('bash', ['scripts/packs.sh', '--release'], { cwd: REPO, stdio: 'inherit' });
  }
  return { published: p, template: t };
}

/** The process's resident memory, sampled every `ms` and whenever sample() is called (e.g. on progress). */
export function rssSampler(ms = 50) {
  let peak = process.memoryUsage().rss;
  const sample = () => void (peak = Math.max(peak, process.memoryUsage().rss));
  const timer = setInterval(sample, ms);
  return {
    sample,
    /** the highest RSS seen so far, in bytes */
    peak: () => (sample(), peak),
    stop: () => clearInterval(timer),
  };
}

/** The 1, 5 and 15 minute load averages and the CPU count: a run at a load above the CPU count was slowed down. */
export function machineLoad() {
  return { loadavg: loadavg().map((x) => round(x)), cpus: cpus().length };
}

export function writeResult(name: string, result: object): void {
  writeFileSync(join(REPO, 'bench', 'results', name), JSON.stringify(result, null, 2) + '\n');
}

export interface LocalConversion {
  templateId: string;
  manifest: PackManifest;
  stats: ConvertStats;
  /** bytes of clip.pt and clipcap.pt */
  inputs: Record<'clip.pt' | 'clipcap.pt', number>;
  seconds: number;
  /** of which reading the checkpoints' indexes */
  openSeconds: number;
}

/**
 * Convert the published files in `published` (read from local disk, not downloaded) with the template in `template`
 * into the folder `out`, as the install job converts into the pack store.
 */
export async function convertLocal(published: string, template: string, out: string, onProgress?: () => void): Promise<LocalConversion> {
  const t = readTemplateDir(template);
  const clip = fileSource(join(published, 'clip.pt'));
  const clipcap = fileSource(join(published, 'clipcap.pt'));
  const sink = new DirSink(out);
  const stats: ConvertStats = { maxBufferedBytes: 0, bytesWritten: 0, tensors: 0, chunks: 0 };
  try {
    const t0 = performance.now();
    const inputs = { clip: await openCheckpoint(clip), clipcap: await openCheckpoint(clipcap) };
    const tOpen = performance.now();
    const manifest = await convertPack({
      template: t.template,
      skeleton: t.skeleton,
      tokenizer: t.tokenizer,
      inputs,
      sink,
      stats,
      meta: { id: 'converted-full', version: '1.0.0', name: 'Converted (bench)' },
      onProgress,
    });
    return {
      templateId: t.template.id,
      manifest,
      stats,
      inputs: { 'clip.pt': clip.size, 'clipcap.pt': clipcap.size },
      seconds: (performance.now() - t0) / 1000,
      openSeconds: (tOpen - t0) / 1000,
    };
  } finally {
    sink.close();
    clip.close();
    clipcap.close();
  }
}
