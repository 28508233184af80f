/**
 * Golden parity of CLIP's text tower (docs/pack-format.md, golden.json "clip", "beams", "reranked"), in Node with
 * onnxruntime-web (wasm): the TypeScript tokenizer gives PyTorch's ids, text.onnx gives its text embeddings, the engine
 * its CLIPScores, its re-ranked beam and its verdict. packs/toy must have a text tower; the other golden packs are
 * checked when they have one.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-web';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCaptioner, type Captioner } from '../../src/captioner/captioner';
import { clipScore, rerank } from '../../src/captioner/clip-score';
import { decodeImageWithSharp } from '../../src/captioner/node-decode';
import { loadPackFromFiles, type LoadedPack } from '../../src/captioner/pack-loader';
import { createSessions, runText, type PackSessions } from '../../src/captioner/sessions';
import { loadTextTokenizer, type TextTokenizer } from '../../src/captioner/text-tokenizer';
import { goldenBeams } from './helpers/beams';
import {
  diffStats,
  goldenPackDirs,
  packMissingMessage,
  pickedPackFiles,
  readGolden,
  REPO,
  tensor,
  type GoldenTensor,
} from './helpers/packs';

interface GoldenBeam {
  tokenIds: number[];
  text: string;
  score: number;
  length: number;
  clipScore: number;
}
interface TextGoldenImage {
  file: string;
  prefixEmbeds: GoldenTensor;
  imageEmbeds: GoldenTensor;
  greedy: { tokenIds: number[]; text: string };
  beam: {
    tokenIds: number[];
    score: number;
    beams?: GoldenBeam[];
    reranked?: { tokenIds: number[]; text: string; clipScore: number };
  } | null;
  clip?: { texts: string[]; inputIds: number[][]; textEmbeds: GoldenTensor; clipScores: number[] };
}

/** Embeddings agree with PyTorch within 1e-3 of their scale (as vision and mapper do in golden.test.ts); scores within 1e-3. */
const EMBED_TOL = 1e-3;
const SCORE_TOL = 1e-3;

for (const dir of goldenPackDirs()) {
  const rel = dir.slice(REPO.length + 1);
  const required = rel === 'packs/toy';
  const missing = packMissingMessage(dir);
  const hasText = !missing && 'text' in JSON.parse(readFileSync(join(dir, 'pack.json'), 'utf8'));
  if (!required && !hasText) continue; // other packs are checked once they carry a tower
  describe(`text tower golden parity: ${rel}`, () => {
    if (missing || !hasText) {
      it('pack has a text tower', () => {
        throw new Error(
          missing ??
            `${rel}/pack.json has no "text" section: rebuild it with CLIP's text tower (npm run pack:toy)` +
              (existsSync(join(REPO, '.tmp/h/toy-text-ready')) ? '' : ' (.tmp/h/toy-text-ready is not there yet)'),
        );
      });
      return;
    }
    const golden = readGolden(dir) as unknown as { decoding: { beams: number; maxTokens: number }; images: TextGoldenImage[] };
    const withClip = golden.images.filter((img) => img.clip);
    let pack: LoadedPack;
    let s: PackSessions;
    let tok: TextTokenizer;
    let cap: Captioner;
    beforeAll(async () => {
      pack = await loadPackFromFiles(pickedPackFiles(dir));
      s = await createSessions(ort, pack.files, 'wasm');
      tok = await loadTextTokenizer(pack.files.textTokenizer!, pack.manifest.text!);
      cap = await createCaptioner({ pack, ort, backend: 'wasm', threads: 1, decodeImage: decodeImageWithSharp });
    });
    afterAll(async () => {
      await cap?.dispose();
      await s?.release();
    });

    it('golden.json has the clip reference for every image, and the files for the tower', () => {
      expect(pack.files.text).toBeDefined();
      expect(withClip.length).toBe(golden.images.length);
      for (const img of golden.images) if (img.beam) expect(img.beam.beams?.length).toBe(golden.decoding.beams);
    });

    it("the TypeScript tokenizer gives PyTorch's ids for every golden text", () => {
      for (const img of withClip) {
        const clip = img.clip!;
        expect(clip.texts[0]).toBe(img.greedy.text.trim());
        clip.texts.forEach((t, k) => expect(tok.encode(t), t).toEqual(clip.inputIds[k]));
      }
    });

    it('text.onnx gives the golden text embeddings, alone and as one padded batch; the scores match', async () => {
      const m = pack.manifest;
      for (const img of withClip) {
        const clip = img.clip!;
        const ref = tensor(clip.textEmbeds);
        const scale = Math.max(1, ...ref.map(Math.abs));
        const batch = await runText(ort, s, clip.inputIds, m);
        const alone = new Float32Array(ref.length);
        for (const [k, ids] of clip.inputIds.entries()) alone.set(await runText(ort, s, [ids], m), k * m.text!.dim);
        const db = diffStats(batch, ref);
        const da = diffStats(alone, ref);
        console.log(`[text parity] ${rel} ${img.file} text embeds max diff ${da.max.toExponential(2)} (batch ${db.max.toExponential(2)})`);
        expect(da.max).toBeLessThan(EMBED_TOL * scale);
        expect(db.max).toBeLessThan(EMBED_TOL * scale);
        const image = tensor(img.imageEmbeds);
        clip.clipScores.forEach((want, k) => {
          const got = clipScore(image, batch.subarray(k * m.text!.dim, (k + 1) * m.text!.dim), m.text!.clipScoreWeight);
          expect(Math.abs(got - want), `${img.file} "${clip.texts[k]}"`).toBeLessThan(SCORE_TOL);
        });
      }
    });

    it("from the golden prefix, beam search's final beams and their scores match; re-ranking picks the golden answer", async () => {
      const m = pack.manifest;
      for (const img of golden.images) {
        if (!img.beam?.beams || !img.beam.reranked) continue;
        const beams = await goldenBeams(ort, s, m, tensor(img.prefixEmbeds), golden.decoding);
        expect(beams.map((b) => b.tokenIds)).toEqual(img.beam.beams.map((b) => b.tokenIds));
        const image = tensor(img.imageEmbeds);
        const scored = [];
        for (const [k, b] of img.beam.beams.entries()) {
          expect(b.length).toBe(beams[k].length);
          expect(Math.abs(beams[k].score - b.score)).toBeLessThan(1e-3);
          const text = b.text.trim();
          const got = text ? clipScore(image, await runText(ort, s, [tok.encode(text)], m), m.text!.clipScoreWeight) : 0;
          expect(Math.abs(got - b.clipScore), `${img.file} beam ${k}`).toBeLessThan(SCORE_TOL);
          scored.push({ score: beams[k].score, length: beams[k].length, clipScore: got });
        }
        expect(beams[rerank(scored, m.text!.rerankWeight)].tokenIds).toEqual(img.beam.reranked.tokenIds);
      }
    });

    it("the engine's captions from the image files: scores, the re-ranked beam with the pack's weight, and the verdict", async () => {
      const m = pack.manifest;
      const t = m.text!;
      let uncertain = 0;
      for (const img of golden.images) {
        const bytes = readFileSync(join(dir, img.file));
        const g = await cap.caption(bytes, { strategy: 'greedy', maxTokens: golden.decoding.maxTokens });
        expect(g.tokenIds).toEqual(img.greedy.tokenIds);
        const want = img.clip!.clipScores[0];
        // From the image file, not the golden pixels: preprocessing differs from PIL's by up to 0.15 (golden.test.ts).
        expect(Math.abs(g.clipScore! - want), img.file).toBeLessThan(10 * SCORE_TOL);
        if (Math.abs(want - t.gateThreshold) > 10 * SCORE_TOL) expect(g.uncertain, img.file).toBe(want < t.gateThreshold);
        if (g.uncertain) uncertain++;
        if (!img.beam?.reranked) continue;
        const b = await cap.caption(bytes, { strategy: 'beam', beams: golden.decoding.beams, maxTokens: golden.decoding.maxTokens });
        expect(b.tokenIds, img.file).toEqual(img.beam.reranked.tokenIds);
        expect(Math.abs(b.clipScore! - img.beam.reranked.clipScore)).toBeLessThan(10 * SCORE_TOL);
        const plain = await cap.caption(bytes, {
          strategy: 'beam',
          beams: golden.decoding.beams,
          maxTokens: golden.decoding.maxTokens,
          rerankWeight: 0,
        });
        expect(plain.tokenIds).toEqual(img.beam.tokenIds);
        console.log(
          `[text parity] ${rel} ${img.file} greedy "${g.rawText.trim()}" clipScore ${g.clipScore!.toFixed(3)} (${g.uncertain ? 'uncertain' : 'sure'}), ` +
            `re-ranked "${b.rawText.trim()}" ${b.clipScore!.toFixed(3)}, text pass ${g.timings.text.toFixed(1)} / ${b.timings.text.toFixed(1)} ms`,
        );
      }
      console.log(`[text parity] ${rel}: ${uncertain} of ${golden.images.length} golden captions uncertain at ${t.gateThreshold}`);
    });
  });
}
