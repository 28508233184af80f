/** A synthetic pack on disk (random bytes for the graphs): for loader tests that never run the model. */
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TextTower } from '../../../src/captioner/pack-format';

export const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** pack.json's "text" section (docs/pack-format.md) for a tower of width `dim`: CLIP's context and ids, the usual
 * weights and threshold, then `more` on top. */
export function textManifest(dim: number, more: Partial<TextTower> = {}): TextTower {
  return {
    dim,
    contextLength: 77,
    bos: 49406,
    eot: 49407,
    clipScoreWeight: 2.5,
    rerankWeight: 1,
    gateThreshold: 0.5,
    ...more,
  };
}

export interface SyntheticPack {
  dir: string;
  files: Record<string, Buffer>;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- loose on purpose: tests break the manifest in every way
  manifest: any;
}

/** Write a pack under root/<id>/; `mutate` may change the manifest and the files before they are written. */
export function writeSyntheticPack(
  root: string,
  id: string,
  mutate: (m: SyntheticPack['manifest'], files: Record<string, Buffer>) => void = () => {},
  sizes = { vision: 300_000, mapper: 70_000, decoder: 1_000_003 },
): SyntheticPack {
  const dir = join(root, id);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const files: Record<string, Buffer> = {
    'vision.onnx': randomBytes(sizes.vision),
    'mapper.onnx': randomBytes(sizes.mapper),
    'decoder.onnx': randomBytes(sizes.decoder),
    'tokenizer.json': Buffer.from('{"model":{}}'),
  };
  const manifest: SyntheticPack['manifest'] = {
    format: 'clipcap-pack',
    formatVersion: 1,
    id,
    version: '1.0.0',
    name: `Pack ${id}`,
    precision: 'fp32',
    preprocess: {
      imageSize: 32,
      resize: 'shortest_edge',
      interpolation: 'bicubic',
      crop: 'center',
      rescale: 1 / 255,
      mean: [0.5, 0.5, 0.5],
      std: [0.5, 0.5, 0.5],
      channelOrder: 'RGB',
    },
    embedding: { dim: 16, l2Normalize: false },
    mapper: { type: 'mlp', prefixLength: 2, clipLength: null },
    decoder: { nLayer: 1, nHead: 2, nEmbd: 8, headDim: 4, vocabSize: 50257, nPositions: 64 },
    tokens: { bos: 50256, eos: 50256, stop: [13, 50256] },
    generation: { strategy: 'beam', beams: 5, maxTokens: 67, lengthNormalize: true },
    files: Object.fromEntries(
      ['vision', 'mapper', 'decoder', 'tokenizer'].map((k) => {
        const path = k === 'tokenizer' ? 'tokenizer.json' : `${k}.onnx`;
        return [k, { path, bytes: files[path].length, sha256: sha256(files[path]) }];
      }),
    ),
  };
  mutate(manifest, files);
  for (const [p, b] of Object.entries(files)) writeFileSync(join(dir, p), b);
  writeFileSync(join(dir, 'pack.json'), JSON.stringify(manifest, null, 2));
  return { dir, files, manifest };
}
