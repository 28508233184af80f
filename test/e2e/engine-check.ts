/**
 * Which held-out toy images the TS engine captions correctly, here in Node (wasm). PyTorch's misses are in
 * report.json; the engine can miss a few more where its preprocessing differs slightly from PIL's (an engine parity
 * matter, reported separately). The e2e tests expect true captions, so they use only images both get right.
 * Cached in .tmp/, keyed by pack.json's hash.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-web';
import { createCaptioner } from '../../src/captioner/captioner';
import { decodeImageWithSharp } from '../../src/captioner/node-decode';
import { loadPackFromFiles } from '../../src/captioner/pack-loader';

function engineMissesPath(tmp: string, packDir: string): string {
  const hash = createHash('sha256')
    .update(readFileSync(join(packDir, 'pack.json')))
    .digest('hex')
    .slice(0, 16);
  return join(tmp, `toy-engine-misses-${hash}.json`);
}

export async function writeEngineMisses(tmp: string, packDir: string): Promise<string[]> {
  const out = engineMissesPath(tmp, packDir);
  if (existsSync(out)) return JSON.parse(readFileSync(out, 'utf8'));
  const names = ['pack.json', 'vision.onnx', 'mapper.onnx', 'decoder.onnx', 'tokenizer.json'];
  const pack = await loadPackFromFiles(
    names.map((n) => {
      const b = readFileSync(join(packDir, n));
      return { name: n, arrayBuffer: async () => b.buffer.slice(b.byteOffset, b.byteOffset + b.length) };
    }),
  );
  const cap = await createCaptioner({ pack, ort: ort, backend: 'wasm', threads: 2, decodeImage: decodeImageWithSharp });
  const truth = JSON.parse(readFileSync(join(packDir, 'heldout/captions.json'), 'utf8')) as Record<string, string>;
  const files = Object.keys(truth).sort();
  const misses: string[] = [];
  try {
    for (let i = 0; i < files.length; i += 16) {
      const chunk = files.slice(i, i + 16);
      const items = await cap.captionBatch(
        chunk.map((f) => readFileSync(join(packDir, 'heldout', f))),
        { strategy: 'greedy', maxTokens: 30 },
      );
      items.forEach((it, j) => {
        if (!it.ok || it.value.rawText.trim() !== truth[chunk[j]].trim()) misses.push(chunk[j]);
      });
    }
  } finally {
    await cap.dispose();
  }
  // Run alone (one e2e file from a fresh clone), nothing else has made .tmp/ yet.
  mkdirSync(tmp, { recursive: true });
  writeFileSync(out, JSON.stringify(misses));
  return misses;
}
