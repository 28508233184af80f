/**
 * Engine fuzz in Node: the same seeded cases as test/browser/fuzz.test.ts, through decodeImageWithSharp (libvips)
 * and preprocessing, and every 25th case that decodes through a whole toy-pack caption. Each outcome is a finite
 * pixel tensor of the right shape or a named engine error. Writes .tmp/fuzz-engine-node.json.
 * (libvips here has no BMP or ICO decoder: those are named ImageDecodeErrors in Node, and decode in Chromium.)
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import * as ort from 'onnxruntime-web';
import { afterAll, describe, expect, it } from 'vitest';
import { createCaptioner, type Captioner } from '../../src/captioner/captioner';
import { CAPTIONER_ERROR_NAMES, CaptionerError } from '../../src/shared/errors';
import { decodeImageWithSharp } from '../../src/captioner/node-decode';
import { loadPackFromFiles } from '../../src/captioner/pack-loader';
import { preprocessRgba, resizeBicubicPil, shortestEdgeSize } from '../../src/captioner/preprocess';
import { generateFuzzCases } from './helpers/fuzz-cases';
import { goldenPackDirs, packMissingMessage, REPO, pickedPackFiles } from './helpers/packs';

const SEED = Number(process.env.FUZZ_SEED ?? 20261125);
const NAMES = new Set<string>(CAPTIONER_ERROR_NAMES);
const dir = goldenPackDirs()[0];
let cap: Captioner | undefined;
afterAll(async () => cap?.dispose());

describe('preprocessing of extreme shapes', () => {
  it('computes only the centre crop, with exactly the values of the full resize', () => {
    const w = 7,
      h = 300;
    const rgb = new Uint8Array(w * h * 3).map((_, i) => (i * 37) & 255);
    const size = shortestEdgeSize(w, h, 32);
    const full = resizeBicubicPil(rgb, w, h, size.width, size.height);
    const region = { x: 0, y: 500, width: size.width, height: 32 };
    const part = resizeBicubicPil(rgb, w, h, size.width, size.height, region);
    expect(Buffer.from(part).equals(Buffer.from(full.subarray(500 * size.width * 3, 532 * size.width * 3)))).toBe(true);
  });
  it('a 1×20000 strip at 224 px is 3 GB resized in full; the crop-only resize is instant and finite', () => {
    const t0 = Date.now();
    for (const [w, h] of [
      [1, 20000],
      [20000, 1],
    ]) {
      const px = preprocessRgba(
        { data: new Uint8Array(w * h * 4).fill(128), width: w, height: h },
        {
          imageSize: 224,
          resize: 'shortest_edge',
          interpolation: 'bicubic',
          crop: 'center',
          rescale: 1 / 255,
          mean: [0.5, 0.5, 0.5],
          std: [0.5, 0.5, 0.5],
          channelOrder: 'RGB',
        },
      );
      expect(px.length).toBe(3 * 224 * 224);
      expect(px.every(Number.isFinite)).toBe(true);
    }
    expect(Date.now() - t0).toBeLessThan(5000);
  });
});

describe('engine fuzz in Node (sharp)', () => {
  it('≥1000 hostile inputs: each a valid tensor or a named error', async () => {
    const missing = packMissingMessage(dir);
    if (missing) throw new Error(missing);
    const pack = await loadPackFromFiles(pickedPackFiles(dir));
    cap = await createCaptioner({ pack, ort: ort, backend: 'wasm', threads: 1, decodeImage: decodeImageWithSharp });
    const S = pack.manifest.preprocess.imageSize;
    const t0 = Date.now();
    const cases = await generateFuzzCases({ seed: SEED, leak: 'http://127.0.0.1:9/leak/', cacheDir: resolve(REPO, '.tmp/test-images') });
    expect(cases.length).toBeGreaterThanOrEqual(1000);
    const table: Record<string, { cases: number; ok: number; named: number; unnamed: number; names: Record<string, number> }> = {};
    const problems: string[] = [];
    let decoded = 0;
    let captions = 0;
    for (const c of cases) {
      const row = (table[c.category] ??= { cases: 0, ok: 0, named: 0, unnamed: 0, names: {} });
      row.cases++;
      const input = c.mime ? new Blob([c.bytes as Uint8Array<ArrayBuffer>], { type: c.mime }) : c.bytes;
      try {
        const img = await decodeImageWithSharp(input, { maxPixels: 4096 * 4096, timeoutMs: 15_000 });
        const px = preprocessRgba(img, pack.manifest.preprocess);
        if (px.length !== 3 * S * S || !px.every(Number.isFinite)) throw new Error(`bad tensor of ${px.length}`);
        row.ok++;
        if (decoded++ % 25 === 0) {
          captions++;
          const r = await cap.caption(input, { strategy: 'greedy', maxTokens: 4 }).catch((e) => e);
          if (r instanceof Error && !(r instanceof CaptionerError))
            problems.push(`#${c.id} ${c.label}: caption failed with ${r.name}: ${r.message}`);
        }
      } catch (e) {
        const err = e as Error;
        row.names[err.name] = (row.names[err.name] ?? 0) + 1;
        if (e instanceof CaptionerError && NAMES.has(err.name)) row.named++;
        else {
          row.unnamed++;
          problems.push(`#${c.id} ${c.category} ${c.label}: unnamed ${err?.name}: ${err?.message}`);
        }
      }
    }
    const seconds = Math.round((Date.now() - t0) / 1000);
    console.log(`\n[fuzz engine, Node/sharp] seed ${SEED}: ${cases.length} cases in ${seconds} s; ${captions} full captions`);
    for (const [k, r] of Object.entries(table))
      console.log(
        `${k.padEnd(13)}${String(r.cases).padStart(6)}${String(r.ok).padStart(6)}${String(r.named).padStart(6)}${String(r.unnamed).padStart(6)}  ${Object.entries(
          r.names,
        )
          .map(([n, v]) => `${n} ${v}`)
          .join(', ')}`,
      );
    mkdirSync(resolve(REPO, '.tmp'), { recursive: true });
    writeFileSync(
      resolve(REPO, '.tmp/fuzz-engine-node.json'),
      JSON.stringify({ where: 'node (sharp)', seed: SEED, seconds, table, captions, problems }, null, 2),
    );
    expect(problems).toEqual([]);
    // The formats libvips reads must decode.
    for (const c of cases.filter((k) => k.category === 'valid' && /^(png|jpeg|gif|webp|avif|svg)/.test(k.label))) {
      await expect(decodeImageWithSharp(c.bytes, { maxPixels: 4096 * 4096 }), c.label).resolves.toBeTruthy();
    }
  }, 300_000);
});
