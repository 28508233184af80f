/**
 * The engine in Chromium, on a plain page served over loopback (no extension): golden parity on WASM and on WebGPU
 * (SwiftShader, via --enable-unsafe-webgpu), the fallback to WASM without an adapter, and bad input.
 *
 * Run: npx vitest run --project browser
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { goldenPackDirs, packMissingMessage, readGolden, REPO } from '../captioner/helpers/packs';
import { hugePng, zeroByZeroPng } from '../captioner/helpers/images';
import type { StaticServer } from '../captioner/helpers/static-server';
import { buildTestPage, launchChromium, openReadyPage, serveTestPage } from './launch';

const OUT = resolve(REPO, '.tmp/browser-captioner');
const FIXTURES = resolve(REPO, '.tmp/browser-fixtures');
const BROWSER_TMP = resolve(REPO, '.tmp/chromium-tmp');

let server: StaticServer;

beforeAll(async () => {
  await buildTestPage('captioner-page.html', OUT);
  mkdirSync(FIXTURES, { recursive: true });
  writeFileSync(join(FIXTURES, 'zero.png'), zeroByZeroPng());
  await writeFormatFixtures(FIXTURES);
  await hugePng(join(REPO, '.tmp/test-images/huge-20000.png'), 20000);
  server = await serveTestPage(OUT, { '/fixtures/': FIXTURES, '/images/': resolve(REPO, '.tmp/test-images') });
}, 300_000);

afterAll(async () => {
  await server?.close();
  rmSync(BROWSER_TMP, { recursive: true, force: true });
});

const COLOUR = { r: 200, g: 30, b: 60 };
const FORMATS = ['jpeg', 'png', 'webp', 'gif', 'avif', 'bmp', 'svg'] as const;

/** The same 40x30 solid colour in every format the engine promises to read. */
async function writeFormatFixtures(dir: string) {
  const sharp = (await import('sharp')).default;
  const solid = () => sharp({ create: { width: 40, height: 30, channels: 3, background: COLOUR } });
  for (const f of ['jpeg', 'png', 'webp', 'gif', 'avif'] as const) writeFileSync(join(dir, `solid.${f}`), await solid()[f]().toBuffer());
  // 24-bit BMP: bottom-up BGR rows padded to 4 bytes
  const w = 40,
    h = 30,
    row = Math.ceil((w * 3) / 4) * 4;
  const bmp = Buffer.alloc(54 + row * h);
  bmp.write('BM', 0, 'ascii');
  bmp.writeUInt32LE(bmp.length, 2);
  bmp.writeUInt32LE(54, 10);
  bmp.writeUInt32LE(40, 14);
  bmp.writeInt32LE(w, 18);
  bmp.writeInt32LE(h, 22);
  bmp.writeUInt16LE(1, 26);
  bmp.writeUInt16LE(24, 28);
  bmp.writeUInt32LE(row * h, 34);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) bmp.set([COLOUR.b, COLOUR.g, COLOUR.r], 54 + y * row + x * 3);
  writeFileSync(join(dir, 'solid.bmp'), bmp);
  writeFileSync(
    join(dir, 'solid.svg'),
    `<svg xmlns="http://www.w3.org/2000/svg" width="40" height="30"><rect width="40" height="30" fill="rgb(${COLOUR.r},${COLOUR.g},${COLOUR.b})"/></svg>`,
  );
}

async function openPage(webgpu: boolean): Promise<{ browser: Browser; page: Page; logs: string[] }> {
  const browser = await launchChromium(BROWSER_TMP, webgpu ? ['--enable-unsafe-webgpu'] : []);
  const logs: string[] = [];
  const page = await openReadyPage(browser, `${server.url}/page/captioner-page.html`, (p) => {
    p.on('console', (m) => logs.push(`${m.type()}: ${m.text()}`));
    p.on('pageerror', (e) => logs.push(`pageerror: ${e.message}`));
  });
  return { browser, page, logs };
}

type GoldenRun = {
  backend: string;
  reason: string;
  events: Array<{ type: string }>;
  images: Array<{
    file: string;
    pixelMeanDiff: number;
    pixelMaxDiff: number;
    greedy: number[];
    beam: number[];
    text: string;
    timings: { total: number; vision: number; prefill: number; perToken: number };
    greedyClipScore?: number;
    greedyUncertain?: boolean;
    reranked: { tokenIds: number[]; clipScore?: number } | null;
  }>;
};

/** golden.json's CLIP references (packs with a text tower): docs/pack-format.md, golden.json "clip", "reranked". */
type ClipGolden = { clip?: { clipScores: number[] }; beam: { reranked?: { tokenIds: number[]; clipScore: number } } | null };

for (const dir of goldenPackDirs()) {
  const rel = dir.slice(REPO.length + 1);
  describe(`engine in Chromium: ${rel}`, () => {
    const missing = packMissingMessage(dir);
    if (missing) {
      it('pack exists', () => {
        throw new Error(missing);
      });
      return;
    }
    const golden = readGolden(dir);
    const packUrl = () => `${server.url}/repo/${rel}/`;
    const wasmTokens: Record<string, { greedy: number[]; beam: number[] }> = {};

    const check = (run: GoldenRun, label: string) => {
      for (const [i, img] of golden.images.entries()) {
        const got = run.images[i];
        console.log(
          `[browser ${label}] ${rel} ${img.file}: pixel diff mean ${got.pixelMeanDiff.toExponential(2)} max ${got.pixelMaxDiff.toExponential(2)}; greedy ${got.timings.total.toFixed(0)} ms (vision ${got.timings.vision.toFixed(0)}, prefill ${got.timings.prefill.toFixed(0)}, ${got.timings.perToken.toFixed(1)} ms/token); "${got.text}"`,
        );
        expect(got.pixelMeanDiff).toBeLessThanOrEqual(0.01);
        expect(got.pixelMaxDiff).toBeLessThanOrEqual(0.15);
        expect(got.greedy, `${label} greedy ${img.file}`).toEqual(img.greedy.tokenIds);
        expect(got.beam, `${label} beam ${img.file}`).toEqual(img.beam.tokenIds);
        // CLIP's text tower (WebGPU runs it too): the greedy caption's score and the re-ranked beam
        const ref = img as unknown as ClipGolden;
        if (!ref.clip) continue;
        expect(Math.abs(got.greedyClipScore! - ref.clip.clipScores[0]), `${label} clipScore ${img.file}`).toBeLessThan(1e-2);
        expect(got.reranked?.tokenIds, `${label} re-ranked ${img.file}`).toEqual(ref.beam?.reranked?.tokenIds);
        expect(Math.abs(got.reranked!.clipScore! - ref.beam!.reranked!.clipScore)).toBeLessThan(1e-2);
      }
    };

    it('WASM: greedy and beam token ids identical to PyTorch; preprocessing within the parity target', async () => {
      const { browser, page, logs } = await openPage(false);
      try {
        const run = (await page.evaluate(([u]) => window.captionerTest.runGolden(u, 'wasm', 2), [packUrl()])) as GoldenRun;
        expect(run.backend).toBe('wasm');
        check(run, 'wasm');
        run.images.forEach((img) => (wasmTokens[img.file] = { greedy: img.greedy, beam: img.beam }));
      } catch (e) {
        console.log(logs.join('\n'));
        throw e;
      } finally {
        await browser.close();
      }
    });

    it('WebGPU (SwiftShader adapter): the same tokens as PyTorch and as WASM', async () => {
      const { browser, page, logs } = await openPage(true);
      try {
        expect(await page.evaluate(() => window.captionerTest.gpu())).toBe(true);
        const run = (await page.evaluate(([u]) => window.captionerTest.runGolden(u, 'auto', 2), [packUrl()])) as GoldenRun;
        console.log(`[browser webgpu] backend ${run.backend}: ${run.reason}`);
        expect(run.backend).toBe('webgpu');
        expect(run.reason).toMatch(/WebGPU adapter found/);
        check(run, 'webgpu');
        for (const img of run.images)
          if (wasmTokens[img.file]) expect({ greedy: img.greedy, beam: img.beam }).toEqual(wasmTokens[img.file]);
      } catch (e) {
        console.log(logs.join('\n'));
        throw e;
      } finally {
        await browser.close();
      }
    });

    it('without a WebGPU adapter, "auto" falls back to WASM and says why', async () => {
      const { browser, page } = await openPage(false);
      try {
        expect(await page.evaluate(() => window.captionerTest.gpu())).toBe(false);
        const run = (await page.evaluate(([u]) => window.captionerTest.runGolden(u, 'auto', 2), [packUrl()])) as GoldenRun;
        expect(run.backend).toBe('wasm');
        expect(run.reason).toMatch(/no WebGPU adapter|WebGPU is not available/);
        expect(run.events).toContainEqual(expect.objectContaining({ type: 'backend', backend: 'wasm' }));
        check(run, 'auto->wasm');
      } finally {
        await browser.close();
      }
    });
  });
}

describe('pack cache in Chromium (IndexedDB)', () => {
  it('downloads with progress, survives a reload, loads offline without downloading again, and deletes', async () => {
    const dir = goldenPackDirs()[0];
    const missing = packMissingMessage(dir);
    if (missing) throw new Error(missing);
    const url = `${server.url}/repo/${dir.slice(REPO.length + 1)}/`;
    const { browser, page } = await openPage(false);
    try {
      await page.evaluate(([u]) => window.captionerTest.cache(u, 'delete'), [url]);
      const fill = (await page.evaluate(([u]) => window.captionerTest.cache(u, 'fill'), [url])) as {
        id: string;
        progress: Array<{ phase: string; bytes: number; total: number }>;
        list: Array<{ id: string; complete: boolean }>;
      };
      expect(fill.list).toEqual([expect.objectContaining({ id: fill.id, complete: true })]);
      const last = fill.progress.at(-1)!;
      expect(last.bytes).toBe(last.total);
      for (let i = 1; i < fill.progress.length; i++) expect(fill.progress[i].bytes).toBeGreaterThanOrEqual(fill.progress[i - 1].bytes);
      await page.reload();
      await page.waitForFunction(() => document.getElementById('status')?.textContent === 'ready');
      server.log.length = 0;
      const reuse = (await page.evaluate(([u]) => window.captionerTest.cache(u, 'reuse'), [url])) as {
        id: string;
        sameBytes: boolean;
        progress: Array<{ phase: string }>;
      };
      expect(reuse.id).toBe(fill.id);
      expect(reuse.sameBytes).toBe(true);
      expect(reuse.progress.filter((p) => p.phase === 'download')).toEqual([]);
      expect(server.log.filter((l) => l.path.endsWith('.onnx') || l.path.endsWith('tokenizer.json'))).toEqual([]);
      const del = (await page.evaluate(([u]) => window.captionerTest.cache(u, 'delete'), [url])) as { list: unknown[] };
      expect(del.list).toEqual([]);
    } finally {
      await browser.close();
    }
  });
});

describe('image formats in Chromium', () => {
  it('decodes JPEG, PNG, WebP, GIF, AVIF, BMP and SVG', async () => {
    const { browser, page } = await openPage(false);
    try {
      const urls = FORMATS.map((f) => `${server.url}/fixtures/solid.${f}`);
      const res = (await page.evaluate(([u]) => window.captionerTest.decodeFormats(u), [urls])) as Array<{
        url: string;
        ok: boolean;
        width: number;
        height: number;
        rgb: number[];
      }>;
      for (const r of res) {
        expect(r, r.url).toMatchObject({ ok: true, width: 40, height: 30 });
        // lossy formats (JPEG, WebP, AVIF) shift the colour a little
        expect(Math.abs(r.rgb[0] - COLOUR.r) + Math.abs(r.rgb[1] - COLOUR.g) + Math.abs(r.rgb[2] - COLOUR.b), r.url).toBeLessThan(30);
      }
    } finally {
      await browser.close();
    }
  });
});

describe('bad input in Chromium', () => {
  const dir = goldenPackDirs()[0];
  const rel = dir.slice(REPO.length + 1);
  it('undecodable bytes, a 0x0 image and cancellation mid-decode are named errors; a 20000x20000 image is downscaled', async () => {
    const missing = packMissingMessage(dir);
    if (missing) throw new Error(missing);
    const { browser, page } = await openPage(false);
    try {
      const url = `${server.url}/repo/${rel}/`;
      expect(await page.evaluate(([u]) => window.captionerTest.captionBad(u, 'garbage'), [url])).toMatchObject({
        name: 'ImageDecodeError',
      });
      expect(await page.evaluate(([u]) => window.captionerTest.captionBad(u, 'zero'), [url])).toMatchObject({ name: 'EmptyImageError' });
      expect(await page.evaluate(([u]) => window.captionerTest.captionBad(u, 'abort'), [url])).toMatchObject({ name: 'AbortError' });
      const huge = await page.evaluate(([u]) => window.captionerTest.decodeHuge(u), [`${server.url}/images/huge-20000.png`]);
      console.log(`[browser] 20000x20000 PNG -> ${JSON.stringify(huge)}`);
      expect(huge).toMatchObject({ ok: true });
      expect((huge as { width: number }).width * (huge as { height: number }).height).toBeLessThanOrEqual(4096 * 4096);
    } finally {
      await browser.close();
    }
  });
});
