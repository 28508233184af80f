/** Load a pack folder from disk for the Node benchmarks (the files are hashed and checked as in the extension). */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadPackFromFiles, type LoadedPack } from '../../src/captioner/pack-loader';

export async function loadPackDir(dir: string): Promise<LoadedPack> {
  // pack.json and every file it lists: CLIP's text tower too, when the pack has one
  const listed = Object.values(JSON.parse(readFileSync(join(dir, 'pack.json'), 'utf8')).files as Record<string, { path: string }>);
  return loadPackFromFiles(
    ['pack.json', ...listed.map((f) => f.path)].map((n) => {
      const b = readFileSync(join(dir, n));
      return { name: n, arrayBuffer: async () => b.buffer.slice(b.byteOffset, b.byteOffset + b.length) };
    }),
  );
}

/** The same pack with its stop tokens removed, so that every timed caption has exactly maxTokens tokens. */
export function withoutStops(pack: LoadedPack): LoadedPack {
  return { ...pack, manifest: { ...pack.manifest, tokens: { ...pack.manifest.tokens, stop: [], eos: -1 } } };
}

/** Bytes a user downloads for the pack (every file pack.json lists). */
export function downloadBytes(pack: LoadedPack): number {
  return Object.values(pack.manifest.files).reduce((a, f) => a + f.bytes, 0);
}

/** A 640x480 photo-like PNG (smooth gradients and noise), so that preprocessing does a real downscale. */
export async function photoPng(seed = 1, w = 640, h = 480): Promise<Buffer> {
  const sharp = (await import('sharp')).default;
  const raw = Buffer.alloc(w * h * 3);
  let s = seed;
  for (let i = 0; i < raw.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const p = Math.floor(i / 3);
    raw[i] = (((p % w) * 255) / w + (Math.floor(p / w) * 128) / h + (s >>> 27) + (i % 3) * 40 * seed) & 255;
  }
  return sharp(raw, { raw: { width: w, height: h, channels: 3 } })
    .png()
    .toBuffer();
}
