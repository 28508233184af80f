/**
 * Our pipeline, stage by stage, for the peers benchmark: token agreement of a pack with the fp32 PyTorch reference
 * (golden.json), and one profiled greedy caption (FLOPs and op-level breakdown per stage).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { argmax } from '../../src/captioner/decoding';
import type { LoadedPack } from '../../src/captioner/pack-loader';
import { createSessions, KvDecoder, runMapper, runVision, type Ort } from '../../src/captioner/sessions';
import { breakdown, endProfiling, splitRuns, type Breakdown } from './profile';

interface GoldenTensor {
  shape: number[];
  b64: string;
}
export interface Golden {
  decoding: { beams: number; maxTokens: number };
  images: Array<{ file: string; pixelValues: GoldenTensor; greedy: { tokenIds: number[] } }>;
}

export const readGolden = (dir: string): Golden => JSON.parse(readFileSync(join(dir, 'golden.json'), 'utf8'));

function tensor(t: GoldenTensor): Float32Array {
  const b = Buffer.from(t.b64, 'base64');
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length));
}

export interface Agreement {
  /** teacher-forced: at each position of the reference caption, is our argmax the reference token? */
  tokens: number;
  agreeing: number;
  rate: number;
  /** whole greedy captions decoded by this pack, identical to the reference */
  captionsIdentical: number;
  captions: number;
}

/**
 * Token agreement with the fp32 reference on the golden set. Each image runs through this pack's own vision and
 * mapper graphs (from the reference's preprocessed pixels), then the decoder is fed the reference tokens, so one
 * early disagreement does not make every later token count as wrong.
 */
export async function agreement(ort: Ort, pack: LoadedPack, golden: Golden): Promise<Agreement> {
  const m = pack.manifest;
  const s = await createSessions(ort, pack.files, 'wasm', { nLayer: m.decoder.nLayer });
  const V = m.decoder.vocabSize;
  let tokens = 0;
  let agreeing = 0;
  let identical = 0;
  try {
    for (const img of golden.images) {
      const ref = img.greedy.tokenIds;
      const prefix = await runMapper(ort, s, await runVision(ort, s, tensor(img.pixelValues), 1, m), 1, m);
      const dec = new KvDecoder(ort, s.decoder, m);
      // Free-running greedy tokens too: identical to the reference as long as every forced step agreed.
      let free = true;
      try {
        let logits = await dec.prefill(prefix, 1);
        for (let i = 0; i < ref.length; i++) {
          const ok = argmax(logits, 0, V) === ref[i];
          tokens++;
          if (ok) agreeing++;
          else free = false;
          if (i + 1 < ref.length) logits = await dec.step([0], [ref[i]]);
        }
      } finally {
        dec.release();
      }
      if (free) identical++;
    }
  } finally {
    await s.release();
  }
  return { tokens, agreeing, rate: tokens ? agreeing / tokens : 1, captionsIdentical: identical, captions: golden.images.length };
}

export interface ProfiledCaption {
  vision: Breakdown;
  mapper: Breakdown;
  prefill: Breakdown;
  /** all decode steps together */
  steps: Breakdown;
  nSteps: number;
  /** FLOPs of the whole caption */
  flops: number;
}

/** One greedy caption of `tokens` tokens (no stop), with ORT's profiler on every session. */
export async function profiledCaption(ort: Ort, pack: LoadedPack, pixels: Float32Array, tokens: number): Promise<ProfiledCaption> {
  const m = pack.manifest;
  const s = await createSessions(ort, pack.files, 'wasm', { nLayer: m.decoder.nLayer, profile: true });
  const V = m.decoder.vocabSize;
  try {
    const prefix = await runMapper(ort, s, await runVision(ort, s, pixels, 1, m), 1, m);
    const dec = new KvDecoder(ort, s.decoder, m);
    let logits = await dec.prefill(prefix, 1);
    for (let i = 1; i < tokens; i++) logits = await dec.step([0], [argmax(logits, 0, V)]);
    dec.release();
    const v = endProfiling(s.vision);
    const mp = endProfiling(s.mapper);
    const d = endProfiling(s.decoder);
    const runs = splitRuns(d.ops, d.runs);
    const vision = breakdown(v.ops);
    const mapper = breakdown(mp.ops);
    const prefill = breakdown(runs[0] ?? []);
    const steps = breakdown(runs.slice(1).flat());
    return { vision, mapper, prefill, steps, nSteps: runs.length - 1, flops: vision.flops + mapper.flops + prefill.flops + steps.flops };
  } finally {
    await s.release();
  }
}
