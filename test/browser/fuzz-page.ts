/**
 * A plain page (no extension APIs) for test/browser/fuzz.test.ts: each case goes through the engine's decode and
 * preprocess path exactly as caption() runs it, and every 25th case that decodes goes through a whole toy-pack caption.
 */
import {
  CAPTIONER_ERROR_NAMES,
  CaptionerError,
  createCaptioner,
  decodeImageInBrowser,
  DEFAULT_MAX_PIXELS,
  loadPackFromUrl,
  MemoryPackStore,
  preprocessRgba,
  type Captioner,
  type PackManifest,
} from '../../src/captioner/index';

export interface PageCase {
  id: number;
  mime: string;
  b64: string;
}

export type Outcome = 'ok' | 'named' | 'unnamed';

export interface PageResult {
  id: number;
  outcome: Outcome;
  name?: string;
  message?: string;
  width?: number;
  height?: number;
  rgb?: [number, number, number];
  ms: number;
  /** present when this case also went through a whole caption */
  caption?: { outcome: Outcome; name?: string; message?: string; text?: string };
}

let cap: Captioner | null = null;
let manifest: PackManifest;
let decodedSoFar = 0;
const NAMES = new Set<string>(CAPTIONER_ERROR_NAMES);

function classify(e: unknown): { outcome: Outcome; name: string; message: string } {
  const err = e as Error | undefined;
  const name = err?.name ?? typeof e;
  const message = err?.message ?? String(e);
  // Named: one of the engine's own classes, with a name the extension can carry across contexts.
  return { outcome: e instanceof CaptionerError && NAMES.has(name) ? 'named' : 'unnamed', name, message };
}

function bytesOf(b64: string): Uint8Array {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

async function init(packUrl: string): Promise<string> {
  const pack = await loadPackFromUrl(packUrl, { store: new MemoryPackStore() });
  manifest = pack.manifest;
  cap = await createCaptioner({ pack, backend: 'wasm', threads: 1, wasmPaths: '/ort/' });
  return manifest.id;
}

async function runCases(cases: PageCase[], opts: { timeoutMs: number; captionEvery: number }): Promise<PageResult[]> {
  const out: PageResult[] = [];
  const S = manifest.preprocess.imageSize;
  for (const c of cases) {
    const blob = new Blob([bytesOf(c.b64) as Uint8Array<ArrayBuffer>], { type: c.mime });
    const t0 = performance.now();
    let r: PageResult;
    try {
      const img = await decodeImageInBrowser(blob, { maxPixels: DEFAULT_MAX_PIXELS, timeoutMs: opts.timeoutMs });
      const px = preprocessRgba(img, manifest.preprocess);
      if (px.length !== 3 * S * S) throw new Error(`pixel tensor has ${px.length} values, expected ${3 * S * S}`);
      for (let i = 0; i < px.length; i++) if (!Number.isFinite(px[i])) throw new Error(`pixel ${i} is ${px[i]}`);
      const ctr = (Math.floor(img.height / 2) * img.width + Math.floor(img.width / 2)) * 4;
      r = {
        id: c.id,
        outcome: 'ok',
        width: img.width,
        height: img.height,
        rgb: [img.data[ctr], img.data[ctr + 1], img.data[ctr + 2]],
        ms: 0,
      };
    } catch (e) {
      r = { id: c.id, ...classify(e), ms: 0 };
    }
    r.ms = performance.now() - t0;
    if (r.outcome === 'ok' && decodedSoFar++ % opts.captionEvery === 0 && cap) {
      try {
        const res = await cap.caption(blob, { strategy: 'greedy', maxTokens: 8 });
        r.caption = { outcome: 'ok', text: res.text };
      } catch (e) {
        r.caption = classify(e);
      }
    }
    out.push(r);
  }
  return out;
}

declare global {
  interface Window {
    fuzzTest: { init: typeof init; runCases: typeof runCases; dispose: () => Promise<void> };
    __svgPwned?: string[];
  }
}

window.fuzzTest = { init, runCases, dispose: async () => void (await cap?.dispose()) };
document.getElementById('status')!.textContent = 'ready';
