/**
 * The toy pack's held-out images, captioned by the TS engine (Node, onnxruntime-web wasm): the exact-match rate must
 * equal the one PyTorch measured (packs/toy/report.json), and the misses must be the same images.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import * as ort from 'onnxruntime-web';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCaptioner, type Captioner } from '../../src/captioner/captioner';
import { decodeImageWithSharp } from '../../src/captioner/node-decode';
import { loadPackFromFiles } from '../../src/captioner/pack-loader';
import { REPO, pickedPackFiles } from './helpers/packs';

const dir = resolve(REPO, process.env.CAPTIONER_TOY_PACK ?? 'packs/toy');
const ready = ['pack.json', 'report.json', 'heldout/captions.json'].every((f) => existsSync(join(dir, f)));

describe('held-out toy images', () => {
  if (!ready) {
    it('toy pack exists', () => {
      throw new Error(`${dir} has no pack.json, report.json or heldout/captions.json: build it with npm run pack:toy`);
    });
    return;
  }
  let cap: Captioner;
  beforeAll(async () => {
    const pack = await loadPackFromFiles(pickedPackFiles(dir));
    cap = await createCaptioner({ pack, ort: ort, backend: 'wasm', threads: 2, decodeImage: decodeImageWithSharp });
  });
  afterAll(async () => cap?.dispose());

  it('reaches the same exact-match rate as PyTorch, missing the same images', async () => {
    // A toy build that is still running rewrites heldout/ before it writes the new model and report.json.
    const stale = statSync(join(dir, 'heldout/captions.json')).mtimeMs > statSync(join(dir, 'report.json')).mtimeMs;
    if (stale)
      throw new Error(
        `${dir}/heldout/ is newer than report.json: a toy build is still running (npm run pack:toy); run this test after it ends`,
      );
    const truth = JSON.parse(readFileSync(join(dir, 'heldout/captions.json'), 'utf8')) as Record<string, string>;
    const report = JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8')) as {
      exact_match: number;
      heldout: number;
      misses: Array<{ file: string; predicted: string }>;
    };
    const files = Object.keys(truth).sort();
    expect(files.length).toBe(report.heldout);
    const predicted: Record<string, string> = {};
    const t0 = performance.now();
    for (let i = 0; i < files.length; i += 16) {
      const chunk = files.slice(i, i + 16);
      const items = await cap.captionBatch(
        chunk.map((f) => readFileSync(join(dir, 'heldout', f))),
        { strategy: 'greedy', maxTokens: 20 },
      );
      items.forEach((it, j) => {
        if (!it.ok) throw it.error;
        predicted[chunk[j]] = it.value.rawText;
      });
    }
    const ms = performance.now() - t0;
    const misses = files.filter((f) => predicted[f] !== truth[f]);
    const exact = (files.length - misses.length) / files.length;
    console.log(
      `[heldout] TS engine exact match ${exact.toFixed(4)} (${files.length - misses.length}/${files.length}) vs PyTorch ${report.exact_match}; ${(ms / files.length).toFixed(1)} ms/image (batches of 16, wasm 2 threads)`,
    );
    for (const f of misses.slice(0, 5)) console.log(`  miss ${f}: ${JSON.stringify(predicted[f])} (true ${JSON.stringify(truth[f])})`);
    expect(exact).toBe(report.exact_match);
    expect(misses).toEqual(report.misses.map((m) => m.file).sort());
    for (const m of report.misses) expect(predicted[m.file]).toBe(m.predicted);
  }, 600_000);
});
