/**
 * Golden parity in Node with onnxruntime-web (wasm): the engine reproduces PyTorch's golden.json token for token.
 * Expected ids come from golden.json, written by the PyTorch reference (model/golden.py).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-web';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCaptioner, type Captioner, type EngineCaption } from '../../src/captioner/captioner';
import { beamDecode, greedyDecode } from '../../src/captioner/decoding';
import { decodeImageWithSharp } from '../../src/captioner/node-decode';
import { loadPackFromUrl, type LoadedPack } from '../../src/captioner/pack-loader';
import { MemoryPackStore } from '../../src/captioner/pack-store';
import { preprocessRgba } from '../../src/captioner/preprocess';
import { createSessions, KvDecoder, runMapper, runVision } from '../../src/captioner/sessions';
import { diffStats, goldenPackDirs, packMissingMessage, readGolden, REPO, tensor } from './helpers/packs';
import { startStaticServer, type StaticServer } from './helpers/static-server';

const ORT = ort;
let server: StaticServer;
beforeAll(async () => {
  server = await startStaticServer({ '/': REPO });
});
afterAll(async () => server?.close());

for (const dir of goldenPackDirs()) {
  const rel = dir.slice(REPO.length + 1);
  describe(`golden parity: ${rel}`, () => {
    const missing = packMissingMessage(dir);
    if (missing) {
      it('pack exists', () => {
        throw new Error(missing);
      });
      return;
    }
    const golden = readGolden(dir);
    let pack: LoadedPack;
    let cap: Captioner;
    beforeAll(async () => {
      // Through the real loader: loopback HTTP, size + SHA-256 checks.
      pack = await loadPackFromUrl(`${server.url}/${rel}/`, { store: new MemoryPackStore() });
      cap = await createCaptioner({ pack, ort: ORT, backend: 'wasm', threads: 1, decodeImage: decodeImageWithSharp });
    });
    afterAll(async () => cap?.dispose());

    it('preprocesses the golden images like PIL (mean abs diff <= 0.01, max <= 0.15)', async () => {
      for (const img of golden.images) {
        const rgba = await decodeImageWithSharp(readFileSync(join(dir, img.file)), { maxPixels: 4096 * 4096 });
        const px = preprocessRgba(rgba, pack.manifest.preprocess);
        const d = diffStats(px, tensor(img.pixelValues));
        console.log(`[parity] ${rel} ${img.file} pixel diff mean ${d.mean.toExponential(2)} max ${d.max.toExponential(2)}`);
        expect(d.mean).toBeLessThanOrEqual(0.01);
        expect(d.max).toBeLessThanOrEqual(0.15);
      }
    });

    it('runs vision and mapper close to PyTorch on the golden pixel values', async () => {
      const s = await createSessions(ORT, pack.files, 'wasm');
      try {
        for (const img of golden.images) {
          const emb = await runVision(ORT, s, tensor(img.pixelValues), 1, pack.manifest);
          const refEmb = tensor(img.imageEmbeds);
          const de = diffStats(emb, refEmb);
          const prefix = await runMapper(ORT, s, refEmb, 1, pack.manifest);
          const dp = diffStats(prefix, tensor(img.prefixEmbeds));
          console.log(`[parity] ${rel} ${img.file} embeds max diff ${de.max.toExponential(2)}, prefix max diff ${dp.max.toExponential(2)}`);
          const scale = Math.max(...refEmb.map(Math.abs));
          expect(de.max).toBeLessThan(1e-3 * Math.max(1, scale));
          expect(dp.max).toBeLessThan(1e-3 * Math.max(1, Math.max(...tensor(img.prefixEmbeds).map(Math.abs))));
          // decode from the golden prefix: tokens must match exactly
          const m = pack.manifest;
          const dopts = {
            vocabSize: m.decoder.vocabSize,
            stop: m.tokens.stop,
            eos: m.tokens.eos,
            maxTokens: golden.decoding.maxTokens,
            scores: true,
          };
          const d1 = new KvDecoder(ORT, s.decoder, m);
          const [g] = await greedyDecode(await d1.prefill(tensor(img.prefixEmbeds), 1), 1, d1, dopts);
          expect(g.tokenIds).toEqual(img.greedy.tokenIds);
          g.logprobs.forEach((lp, i) => expect(Math.abs(lp - img.greedy.logprobs[i])).toBeLessThan(1e-3));
          const d2 = new KvDecoder(ORT, s.decoder, m);
          const b = await beamDecode(await d2.prefill(tensor(img.prefixEmbeds), 1), d2, {
            ...dopts,
            beams: golden.decoding.beams,
            lengthNormalize: true,
          });
          expect(b.tokenIds).toEqual(img.beam.tokenIds);
          expect(Math.abs(b.score / b.length - img.beam.score)).toBeLessThan(1e-3);
        }
      } finally {
        await s.release();
      }
    });

    it('captions each golden image from its file: greedy and beam token ids identical to PyTorch', async () => {
      for (const img of golden.images) {
        const bytes = readFileSync(join(dir, img.file));
        const g = await cap.caption(bytes, { strategy: 'greedy', maxTokens: golden.decoding.maxTokens, scores: true });
        // Plain beam search: a pack with CLIP's text tower re-ranks by default (its parity: text-golden.test.ts).
        const b = await cap.caption(bytes, {
          strategy: 'beam',
          beams: golden.decoding.beams,
          maxTokens: golden.decoding.maxTokens,
          rerankWeight: 0,
        });
        console.log(
          `[parity] ${rel} ${img.file} greedy "${g.text}" (${g.tokenIds.length} tokens, ${g.timings.perToken.toFixed(1)} ms/token), beam "${b.text}"`,
        );
        expect(g.tokenIds).toEqual(img.greedy.tokenIds);
        expect(b.tokenIds).toEqual(img.beam.tokenIds);
        expect(g.rawText).toBe(img.greedy.text);
        expect(b.rawText).toBe(img.beam.text);
        expect(g.backend).toBe('wasm');
        expect(g.confidence).toBeLessThanOrEqual(0);
        expect(g.tokenLogprobs.length).toBe(g.timings.tokens);
        expect(Math.abs(b.confidence! - img.beam.score)).toBeLessThan(1e-3);
      }
    });

    it('captions a batch with the same tokens as one at a time', async () => {
      const files = golden.images.map((img) => readFileSync(join(dir, img.file)));
      const items = await cap.captionBatch([...files, new Uint8Array([1, 2, 3])], {
        strategy: 'greedy',
        maxTokens: golden.decoding.maxTokens,
      });
      golden.images.forEach((img, i) => {
        const it = items[i];
        expect(it.ok).toBe(true);
        if (it.ok) expect(it.value.tokenIds).toEqual(img.greedy.tokenIds);
      });
      const bad = items[golden.images.length];
      expect(bad.ok).toBe(false);
      if (!bad.ok) expect(bad.error.name).toBe('ImageDecodeError');
    });

    it('an urgent caption runs between the decoder steps of a running batch; both keep the golden tokens', async () => {
      const files = golden.images.map((img) => readFileSync(join(dir, img.file)));
      const opts = { strategy: 'greedy' as const, maxTokens: golden.decoding.maxTokens };
      const order: string[] = [];
      const urgent: { caption?: Promise<EngineCaption> } = {};
      const urgentCap: Captioner = await createCaptioner({
        pack,
        ort: ORT,
        backend: 'wasm',
        threads: 1,
        decodeImage: decodeImageWithSharp,
        onEvent: (e) => {
          if (e.type === 'stage' || e.type === 'token') order.push(e.type === 'stage' ? `${e.stage}:${e.images}` : 'token');
          // Asked for while the batch decodes its first step: it must not wait for the batch's other steps.
          if (e.type === 'token' && !urgent.caption) urgent.caption = urgentCap.caption(files[0], { ...opts, urgent: true });
        },
      });
      try {
        const items = await urgentCap.captionBatch(files, opts);
        const one = await urgent.caption!;
        const n = files.length;
        const urgentStart = order.indexOf('preprocess:1');
        const batchDecode = order.indexOf(`decode:${n}`);
        // The urgent caption started after the batch's first step and before its last: between two of its steps.
        expect(urgentStart).toBeGreaterThan(batchDecode + 1);
        expect(order.slice(urgentStart).filter((x) => x === 'token').length).toBeGreaterThan(one.tokenIds.length + 1);
        expect(one.tokenIds).toEqual(golden.images[0].greedy.tokenIds);
        golden.images.forEach((img, i) => {
          const it = items[i];
          expect(it.ok && it.value.tokenIds).toEqual(img.greedy.tokenIds);
        });
      } finally {
        await urgentCap.dispose();
      }
    });
  });
}
