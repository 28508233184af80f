/** Finding the packs the Python toolkit wrote, and reading golden.json. */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const REPO = resolve(import.meta.dirname, '../../..');

/** Packs whose golden outputs the engine must reproduce: CAPTIONER_GOLDEN_PACKS="dir1,dir2" overrides. */
export function goldenPackDirs(): string[] {
  const env = process.env.CAPTIONER_GOLDEN_PACKS;
  const dirs = env ? env.split(',') : ['packs/toy', 'packs/small-random'];
  return dirs.map((d) => resolve(REPO, d));
}

export function packMissingMessage(dir: string): string | null {
  if (existsSync(join(dir, 'pack.json')) && existsSync(join(dir, 'golden.json'))) return null;
  const id = dir.split('/').pop();
  const cmd = id === 'toy' ? 'npm run pack:toy' : id === 'random-full' ? 'npm run pack:random' : 'the Python toolkit (model/)';
  return `${dir} has no pack.json/golden.json: build it first with ${cmd}`;
}

export interface GoldenTensor {
  shape: number[];
  dtype: 'float32';
  b64: string;
}
interface GoldenImage {
  file: string;
  caption: string | null;
  pixelValues: GoldenTensor;
  imageEmbeds: GoldenTensor;
  prefixEmbeds: GoldenTensor;
  greedy: { tokenIds: number[]; text: string; logprobs: number[] };
  beam: { tokenIds: number[]; text: string; score: number };
}
export interface Golden {
  packId: string;
  precision: string;
  decoding: { beams: number; maxTokens: number };
  images: GoldenImage[];
}

export function readGolden(dir: string): Golden {
  return JSON.parse(readFileSync(join(dir, 'golden.json'), 'utf8'));
}

export function tensor(t: GoldenTensor): Float32Array {
  const b = Buffer.from(t.b64, 'base64');
  const out = new Float32Array(b.byteLength / 4);
  new Uint8Array(out.buffer).set(b);
  return out;
}

export function diffStats(a: Float32Array, b: Float32Array): { mean: number; max: number } {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let sum = 0;
  let max = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    sum += d;
    if (d > max) max = d;
  }
  return { mean: sum / a.length, max };
}

/** A pack directory as picked files: pack.json and every file it lists (CLIP's text tower too, when it has one). */
export function pickedPackFiles(dir: string): Array<{ name: string; arrayBuffer(): Promise<ArrayBuffer> }> {
  const listed = Object.values(JSON.parse(readFileSync(join(dir, 'pack.json'), 'utf8')).files as Record<string, { path: string }>);
  return ['pack.json', ...listed.map((f) => f.path)].map((name) => {
    const b = readFileSync(join(dir, name));
    return { name, arrayBuffer: async () => b.buffer.slice(b.byteOffset, b.byteOffset + b.length) };
  });
}
