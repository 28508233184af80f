/**
 * What the TS engine does with the toy images, here in Node (wasm), so that the e2e tests expect what the model really
 * does rather than what a list says:
 *   - the held-out images it captions wrongly (PyTorch's misses are in report.json; the engine can miss a few more
 *     where its preprocessing differs slightly from PIL's, an engine parity matter reported separately), and those
 *     whose caption CLIP judges uncertain (packs with a text tower): those are left unlabelled by design, so the tests
 *     that expect a true label use neither;
 *   - each out-of-distribution image (packs/toy/ood/, when the pack has them): its caption and CLIP's verdict, so the
 *     gating test uses the images the engine marks uncertain, not a hard-coded list.
 * Cached in .tmp/, keyed by pack.json's hash (test/e2e/harness.mjs reads it: toyHeldout, toyOod).
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-web';
import { createCaptioner, type Captioner } from '../../src/captioner/captioner';
import { decodeImageWithSharp } from '../../src/captioner/node-decode';
import { loadPackFromFiles } from '../../src/captioner/pack-loader';

/** One image as the engine saw it (greedy, as the extension labels by default). */
interface EngineVerdict {
  file: string;
  text: string;
  uncertain: boolean;
  clipScore: number | null;
  /** the verdict is clear of the threshold by GATE_MARGIN at least (a test in the browser can rely on it) */
  clear: boolean;
  /** what kind of picture it is (ood/kinds.json: noise, text, unseen-shape…); '' for held-out images */
  kind: string;
}

export interface EngineCheck {
  /** held-out images the engine captions wrongly (or fails on) */
  wrong: string[];
  /** held-out images whose caption CLIP judges uncertain (right or wrong); never labelled */
  uncertain: string[];
  /** every out-of-distribution image, with the engine's caption and verdict; [] when the pack has none */
  ood: EngineVerdict[];
  /**
   * held-out images CLIP scores within GATE_MARGIN of the threshold, either side: the browser decodes images with its
   * own code (not sharp), so its score can differ by a little, and the verdict with it. Kept out of the pool.
   */
  borderline: string[];
  /** the pack carries CLIP's text tower (else nothing is ever uncertain) */
  textTower: boolean;
  /** pack.json's text.gateThreshold; null without a text tower */
  gateThreshold: number | null;
}

/**
 * How far from the threshold a verdict must be for the e2e tests to rely on it, in clipScore units (0..2.5). The
 * browser's decode (canvas) and Node's (sharp) differ by a few levels on some pixels; 0.01 is well above what that
 * moves a cosine times CLIPScore's 2.5, and well below the gap between in- and out-of-distribution scores.
 */
const GATE_MARGIN = 0.01;

function checkPath(tmp: string, packDir: string): string {
  const hash = createHash('sha256')
    .update(readFileSync(join(packDir, 'pack.json')))
    .digest('hex')
    .slice(0, 16);
  return join(tmp, `toy-engine-check-${hash}.json`);
}

async function openCaptioner(packDir: string): Promise<Captioner> {
  // Every file pack.json lists (the text tower's two included, when it has them).
  const manifest = JSON.parse(readFileSync(join(packDir, 'pack.json'), 'utf8')) as { files: Record<string, { path: string }> };
  const names = ['pack.json', ...Object.values(manifest.files).map((f) => f.path)];
  const pack = await loadPackFromFiles(
    names.map((n) => {
      const b = readFileSync(join(packDir, n));
      return { name: n, arrayBuffer: async () => b.buffer.slice(b.byteOffset, b.byteOffset + b.length) };
    }),
  );
  return createCaptioner({ pack, ort: ort, backend: 'wasm', threads: 2, decodeImage: decodeImageWithSharp });
}

async function captionAll(
  cap: Captioner,
  dir: string,
  files: string[],
  gateThreshold: number | null,
): Promise<Map<string, EngineVerdict | null>> {
  const out = new Map<string, EngineVerdict | null>();
  for (let i = 0; i < files.length; i += 16) {
    const chunk = files.slice(i, i + 16);
    const items = await cap.captionBatch(
      chunk.map((f) => readFileSync(join(dir, f))),
      { strategy: 'greedy', maxTokens: 30 },
    );
    items.forEach((it, j) =>
      out.set(
        chunk[j],
        it.ok
          ? {
              file: chunk[j],
              text: it.value.rawText.trim(),
              uncertain: it.value.uncertain === true,
              clipScore: it.value.clipScore ?? null,
              clear: !nearGate(it.value.clipScore ?? null, gateThreshold),
              kind: '',
            }
          : null,
      ),
    );
  }
  return out;
}

/** CLIP's verdict on this caption is too close to call for a test in another decoder (the browser's). */
function nearGate(clipScore: number | null, gateThreshold: number | null): boolean {
  return clipScore !== null && gateThreshold !== null && Math.abs(clipScore - gateThreshold) < GATE_MARGIN;
}

/** The out-of-distribution images of the toy pack (packs/toy/ood/*.png), sorted; [] when it has none. */
function oodFiles(packDir: string): string[] {
  const dir = join(packDir, 'ood');
  return existsSync(dir)
    ? readdirSync(dir)
        .filter((f) => f.endsWith('.png'))
        .sort()
    : [];
}

export async function writeEngineCheck(tmp: string, packDir: string): Promise<EngineCheck> {
  const out = checkPath(tmp, packDir);
  if (existsSync(out)) return JSON.parse(readFileSync(out, 'utf8')) as EngineCheck;
  const text = (JSON.parse(readFileSync(join(packDir, 'pack.json'), 'utf8')) as { text?: { gateThreshold: number } }).text;
  const truth = JSON.parse(readFileSync(join(packDir, 'heldout/captions.json'), 'utf8')) as Record<string, string>;
  const cap = await openCaptioner(packDir);
  const gateThreshold = text?.gateThreshold ?? null;
  const check: EngineCheck = { wrong: [], uncertain: [], borderline: [], ood: [], textTower: text !== undefined, gateThreshold };
  try {
    const heldout = await captionAll(cap, join(packDir, 'heldout'), Object.keys(truth).sort(), gateThreshold);
    for (const [file, v] of heldout) {
      if (!v || v.text !== truth[file].trim()) check.wrong.push(file);
      if (v?.uncertain) check.uncertain.push(file);
      else if (v && !v.clear) check.borderline.push(file);
    }
    const ood = await captionAll(cap, join(packDir, 'ood'), oodFiles(packDir), gateThreshold);
    const kindsPath = join(packDir, 'ood', 'kinds.json');
    const kinds = existsSync(kindsPath) ? (JSON.parse(readFileSync(kindsPath, 'utf8')) as Record<string, { kind?: string }>) : {};
    for (const [file, v] of ood)
      check.ood.push({ ...(v ?? { file, text: '', uncertain: false, clipScore: null, clear: false }), kind: kinds[file]?.kind ?? '' });
  } finally {
    await cap.dispose();
  }
  // Run alone (one e2e file from a fresh clone), nothing else has made .tmp/ yet.
  mkdirSync(tmp, { recursive: true });
  writeFileSync(out, JSON.stringify(check));
  return check;
}
