/**
 * The engine with CLIP's text tower, in Node with onnxruntime-web: the toy pack's own graphs plus a stand-in text tower
 * with text.onnx's interface (helpers/synthetic_text_tower.py) and CLIP's real tokenizer, so these run whether or not
 * packs/toy has a trained tower (its parity with PyTorch: text-golden.test.ts). Every caption is scored, greedy or beam,
 * one image or a batch or an urgent one; beam search re-ranks its final beams; the gate follows the pack's threshold.
 * Expected scores are computed here from the graphs, apart from the engine's captioner.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-web';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCaptioner, type Captioner, type EngineCaption, type PackSource } from '../../src/captioner/captioner';
import { decodeImageWithSharp } from '../../src/captioner/node-decode';
import { parseManifest, type PackManifest } from '../../src/captioner/pack-format';
import type { LoadedPack } from '../../src/captioner/pack-loader';
import { preprocessRgba } from '../../src/captioner/preprocess';
import { createSessions, runMapper, runVision, type PackSessions } from '../../src/captioner/sessions';
import { loadTextTokenizer, type TextTokenizer } from '../../src/captioner/text-tokenizer';
import { loadTokenizer, type CaptionTokenizer } from '../../src/captioner/tokenizer';
import { InvalidOptionError } from '../../src/shared/errors';
import { goldenBeams } from './helpers/beams';
import { clipTokenizerJson } from './helpers/clip-tokenizer-json';
import { goldenPackDirs, packMissingMessage, readGolden, type Golden } from './helpers/packs';
import { sha256, textManifest } from './helpers/synthetic-pack';

const dir = goldenPackDirs()[0];
const missing = packMissingMessage(dir);

/** The toy pack's four files with a stand-in text tower, and `text` settings as given. */
function toyWithTower(text: Partial<NonNullable<PackManifest['text']>> = {}): LoadedPack {
  const base = JSON.parse(readFileSync(join(dir, 'pack.json'), 'utf8'));
  const files: Record<string, Uint8Array> = {};
  for (const k of ['vision', 'mapper', 'decoder', 'tokenizer']) files[k] = readFileSync(join(dir, base.files[k].path));
  files.text = tower;
  files.textTokenizer = Buffer.from(JSON.stringify(clipTokenizerJson()));
  const entry = (path: string, b: Uint8Array) => ({ path, bytes: b.byteLength, sha256: sha256(b) });
  const manifest = parseManifest({
    ...base,
    text: textManifest(base.embedding.dim, text),
    files: {
      ...Object.fromEntries(['vision', 'mapper', 'decoder', 'tokenizer'].map((k) => [k, base.files[k]])),
      text: entry('text.onnx', files.text),
      textTokenizer: entry('text-tokenizer.json', files.textTokenizer),
    },
  });
  return { manifest, files: files as LoadedPack['files'], source: 'files' };
}

let tower: Uint8Array;
let golden: Golden;
let images: Buffer[];
let pack: LoadedPack;
let cap: Captioner;
/** The reference's pieces: the graphs as plain sessions, the tokenizers, and each image's raw embedding. */
let s: PackSessions;
let textSession: ort.InferenceSession;
let gpt2: CaptionTokenizer;
let clipTok: TextTokenizer;
let embeds: Float32Array[];

/** CLIPScore of a caption's ids against image i, computed here: the tower on the ids alone, cos in float64. */
async function expectedScore(i: number, tokenIds: number[], w = 2.5): Promise<number> {
  const text = gpt2.decode(tokenIds).trim();
  if (!text) return 0;
  const ids = clipTok.encode(text);
  const out = await textSession.run({ input_ids: new ort.Tensor('int64', BigInt64Array.from(ids, BigInt), [1, ids.length]) });
  const t = out.text_embeds.data as Float32Array;
  const a = embeds[i];
  let dot = 0;
  let aa = 0;
  let tt = 0;
  for (let j = 0; j < a.length; j++) {
    dot += a[j] * t[j];
    aa += a[j] ** 2;
    tt += t[j] ** 2;
  }
  return w * Math.max(0, dot / Math.sqrt(aa) / Math.sqrt(tt));
}

describe('captions scored by a text tower', () => {
  if (missing) {
    it('pack exists', () => {
      throw new Error(missing);
    });
    return;
  }
  beforeAll(async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'text-tower-')), 'text.onnx');
    const dim = JSON.parse(readFileSync(join(dir, 'pack.json'), 'utf8')).embedding.dim as number;
    const r = spawnSync('/usr/bin/python3', [join(import.meta.dirname, 'helpers/synthetic_text_tower.py'), out, String(dim), '3'], {
      encoding: 'utf8',
    });
    if (r.status !== 0) throw new Error(`building the stand-in text tower failed: ${r.stderr}`);
    tower = readFileSync(out);
    golden = readGolden(dir);
    images = golden.images.map((img) => readFileSync(join(dir, img.file)));
    pack = toyWithTower();
    cap = await createCaptioner({ pack, ort, backend: 'wasm', threads: 1, decodeImage: decodeImageWithSharp });
    s = await createSessions(ort, pack.files, 'wasm');
    textSession = await ort.InferenceSession.create(tower);
    gpt2 = await loadTokenizer(pack.files.tokenizer);
    clipTok = await loadTextTokenizer(pack.files.textTokenizer!, pack.manifest.text!);
    embeds = [];
    for (const bytes of images) {
      const px = preprocessRgba(await decodeImageWithSharp(bytes, { maxPixels: 4096 * 4096 }), pack.manifest.preprocess);
      embeds.push((await runVision(ort, s, px, 1, pack.manifest)).slice());
    }
  });
  afterAll(async () => {
    await cap?.dispose();
    await s?.release();
    await textSession?.release();
  });

  it('a greedy caption is the same words as without a tower, with its CLIPScore and the verdict', async () => {
    for (const [i, img] of golden.images.entries()) {
      const g = await cap.caption(images[i], { strategy: 'greedy', maxTokens: golden.decoding.maxTokens });
      expect(g.tokenIds).toEqual(img.greedy.tokenIds);
      const want = await expectedScore(i, g.tokenIds);
      expect(g.clipScore).toBeCloseTo(want, 5);
      expect(g.uncertain).toBe(g.clipScore! < 0.5);
      expect(g.timings.text).toBeGreaterThan(0);
    }
  });

  it('beam search re-ranks its final beams by score / length + rerankWeight * clipScore; weight 0 is plain beam', async () => {
    const m = pack.manifest;
    let changed = 0;
    for (const [i, img] of golden.images.entries()) {
      const plain = await cap.caption(images[i], {
        strategy: 'beam',
        beams: golden.decoding.beams,
        maxTokens: golden.decoding.maxTokens,
        rerankWeight: 0,
      });
      expect(plain.tokenIds).toEqual(img.beam.tokenIds);
      expect(plain.clipScore).toBeCloseTo(await expectedScore(i, plain.tokenIds), 5);
      // The final beams, from the engine's own decoding (its parity with PyTorch is golden.test.ts's), scored here.
      const beams = await goldenBeams(ort, s, m, await runMapper(ort, s, embeds[i], 1, m), golden.decoding);
      for (const weight of [1, 10]) {
        const ranks = [];
        for (const b of beams) ranks.push(b.score / b.length + weight * (await expectedScore(i, b.tokenIds)));
        const want = ranks.indexOf(Math.max(...ranks)); // the first of equals
        const r = await cap.caption(images[i], {
          strategy: 'beam',
          beams: golden.decoding.beams,
          maxTokens: golden.decoding.maxTokens,
          rerankWeight: weight,
        });
        expect(r.tokenIds, `image ${i} weight ${weight}`).toEqual(beams[want].tokenIds);
        expect(r.clipScore).toBeCloseTo(await expectedScore(i, r.tokenIds), 5);
        expect(r.confidence).toBeCloseTo(beams[want].score / beams[want].length, 9);
        expect(r.tokenLogprobs).toEqual(beams[want].logprobs);
        if (want !== 0) changed++;
      }
      // The pack's own weight (1) is the default.
      const byDefault = await cap.caption(images[i], {
        strategy: 'beam',
        beams: golden.decoding.beams,
        maxTokens: golden.decoding.maxTokens,
      });
      const withOne = await cap.caption(images[i], {
        strategy: 'beam',
        beams: golden.decoding.beams,
        maxTokens: golden.decoding.maxTokens,
        rerankWeight: 1,
      });
      expect(byDefault.tokenIds).toEqual(withOne.tokenIds);
    }
    // Otherwise this test would not tell re-ranking from plain beam search.
    expect(changed).toBeGreaterThan(0);
  });

  it('a batch, and an urgent caption run inside it, are scored like single captions', async () => {
    const opts = { strategy: 'greedy' as const, maxTokens: golden.decoding.maxTokens };
    const single: EngineCaption[] = [];
    for (const bytes of images) single.push(await cap.caption(bytes, opts));
    let urgent: Promise<EngineCaption> | undefined;
    const inside: Captioner = await createCaptioner({
      pack: toyWithTower(),
      ort,
      backend: 'wasm',
      threads: 1,
      decodeImage: decodeImageWithSharp,
      onEvent: (e) => {
        if (e.type === 'token' && !urgent) urgent = inside.caption(images[1], { ...opts, urgent: true });
      },
    });
    try {
      const items = await inside.captionBatch(images, opts);
      items.forEach((it, i) => {
        expect(it.ok).toBe(true);
        if (!it.ok) return;
        expect(it.value.tokenIds).toEqual(single[i].tokenIds);
        expect(it.value.clipScore).toBeCloseTo(single[i].clipScore!, 5);
        expect(it.value.uncertain).toBe(single[i].uncertain);
      });
      const u = await urgent!;
      expect(u.clipScore).toBeCloseTo(single[1].clipScore!, 5);
      expect(u.uncertain).toBe(single[1].uncertain);
    } finally {
      await inside.dispose();
    }
  });

  it("the verdict follows the pack's gateThreshold: uncertain below it, not at it", async () => {
    const opts = { strategy: 'greedy' as const, maxTokens: golden.decoding.maxTokens };
    const first = await cap.caption(images[0], opts);
    for (const [threshold, verdict] of [
      [0, false],
      [first.clipScore!, false],
      [first.clipScore! + 1e-6, true],
      [2.6, true],
    ] as const) {
      const c = await createCaptioner({
        pack: toyWithTower({ gateThreshold: threshold }),
        ort,
        backend: 'wasm',
        threads: 1,
        decodeImage: decodeImageWithSharp,
      });
      try {
        const r = await c.caption(images[0], opts);
        expect(r.clipScore).toBe(first.clipScore);
        expect(r.uncertain, `threshold ${threshold}`).toBe(verdict);
      } finally {
        await c.dispose();
      }
    }
  });

  it('refuses a rerankWeight outside 0 to 10 with a named error', async () => {
    for (const w of [-0.5, 10.5, Number.NaN, '1' as unknown as number]) {
      await expect(cap.caption(images[0], { rerankWeight: w })).rejects.toBeInstanceOf(InvalidOptionError);
    }
    expect((await cap.caption(images[0], { strategy: 'beam', rerankWeight: 0.35, maxTokens: 5 })).clipScore).toBeGreaterThanOrEqual(0);
  });

  it('a streamed pack opens before its tower arrives; the first caption waits for the tower and is scored, never unchecked', async () => {
    // The engine's frame receives the files one by one (src/sandbox/engine-server.ts); here the tower's graph is held back.
    let deliver!: () => void;
    const towerHere = new Promise<void>((r) => (deliver = r));
    const source: PackSource = {
      manifest: pack.manifest,
      file: async (key) => {
        if (key === 'text') await towerHere;
        return pack.files[key]!;
      },
    };
    const steps: string[] = [];
    const streamed = await createCaptioner({
      pack: source,
      ort,
      backend: 'wasm',
      threads: 1,
      decodeImage: decodeImageWithSharp,
      onEvent: (e) => {
        if (e.type === 'backend') steps.push('backend');
        if (e.type === 'opening' && e.ms !== null) steps.push(e.step);
      },
    });
    try {
      // Ready on the image-to-caption graphs alone (the small tokenizers come first, then the decoder: sessions.ts).
      expect(steps).toEqual(['tokenizer', 'text tokenizer', 'decoder session', 'vision session', 'mapper session', 'backend']);
      let settled = false;
      const first = streamed.caption(images[0], { strategy: 'greedy', maxTokens: golden.decoding.maxTokens });
      void first.finally(() => (settled = true));
      await new Promise((r) => setTimeout(r, 300));
      expect(settled).toBe(false); // the caption is made, but not returned before it was checked
      deliver();
      const g = await first;
      expect(g.tokenIds).toEqual(golden.images[0].greedy.tokenIds);
      expect(g.clipScore).toBeCloseTo(await expectedScore(0, g.tokenIds), 5);
      expect(g.uncertain).toBe(g.clipScore! < 0.5);
      expect(steps.slice(6)).toEqual(['text session']);
      // Made once: the next caption is scored without another.
      expect((await streamed.caption(images[1], { strategy: 'greedy', maxTokens: golden.decoding.maxTokens })).clipScore).toBeDefined();
      expect(steps.filter((x) => x === 'text session')).toHaveLength(1);
    } finally {
      await streamed.dispose();
    }
  });

  it('a pack without a tower: no score, no verdict, no text pass', async () => {
    const { text: _t, textTokenizer: _tt, ...four } = pack.files;
    const { text: _m, ...manifest } = pack.manifest;
    const files = Object.fromEntries(Object.entries(manifest.files).filter(([k]) => k !== 'text' && k !== 'textTokenizer'));
    const plain = await createCaptioner({
      pack: { manifest: parseManifest({ ...manifest, files }), files: four, source: 'files' },
      ort,
      backend: 'wasm',
      threads: 1,
      decodeImage: decodeImageWithSharp,
    });
    try {
      for (const strategy of ['greedy', 'beam'] as const) {
        const r = await plain.caption(images[0], { strategy, maxTokens: golden.decoding.maxTokens, rerankWeight: 5 });
        expect(r.tokenIds).toEqual(strategy === 'greedy' ? golden.images[0].greedy.tokenIds : golden.images[0].beam.tokenIds);
        expect('clipScore' in r).toBe(false);
        expect('uncertain' in r).toBe(false);
        expect(r.timings.text).toBe(0);
      }
    } finally {
      await plain.dispose();
    }
  });
});
