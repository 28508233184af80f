/**
 * A plain web page (no extension APIs) that exercises the captioning engine for test/browser/captioner.test.ts.
 * The test calls window.captionerTest.* through Playwright and checks the results against golden.json in Node.
 */
import {
  createCaptioner,
  deleteCachedPack,
  IndexedDbPackStore,
  listCachedPacks,
  loadCachedPack,
  decodeImageInBrowser,
  loadPackFromUrl,
  MemoryPackStore,
  preprocessRgba,
  type CaptionerEvent,
} from '../../src/captioner/index';

interface GoldenImage {
  file: string;
  pixelValues: { b64: string };
  greedy: { tokenIds: number[] };
  beam: { tokenIds: number[] };
}

function b64ToFloat32(b64: string): Float32Array {
  const bin = atob(b64);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return new Float32Array(bytes.buffer);
}

async function runGolden(packUrl: string, backend: 'auto' | 'wasm' | 'webgpu', threads: number) {
  const events: CaptionerEvent[] = [];
  const pack = await loadPackFromUrl(packUrl, { store: new MemoryPackStore() });
  const golden = (await (await fetch(new URL('golden.json', packUrl))).json()) as {
    decoding: { beams: number; maxTokens: number };
    images: GoldenImage[];
  };
  const cap = await createCaptioner({ pack, backend, threads, wasmPaths: '/ort/', onEvent: (e) => e.type !== 'token' && events.push(e) });
  const images = [];
  try {
    for (const img of golden.images) {
      const blob = await (await fetch(new URL(img.file, packUrl))).blob();
      const px = preprocessRgba(await decodeImageInBrowser(blob, { maxPixels: 4096 * 4096 }), pack.manifest.preprocess);
      const ref = b64ToFloat32(img.pixelValues.b64);
      let sum = 0;
      let max = 0;
      for (let i = 0; i < px.length; i++) {
        const d = Math.abs(px[i] - ref[i]);
        sum += d;
        max = Math.max(max, d);
      }
      const greedy = await cap.caption(blob, { strategy: 'greedy', maxTokens: golden.decoding.maxTokens });
      // Plain beam search (rerankWeight 0), the golden `beam`; a pack with CLIP's text tower also gets the re-ranked one.
      const opts = { strategy: 'beam' as const, beams: golden.decoding.beams, maxTokens: golden.decoding.maxTokens };
      const beam = await cap.caption(blob, { ...opts, rerankWeight: 0 });
      const reranked = pack.manifest.text ? await cap.caption(blob, opts) : null;
      images.push({
        file: img.file,
        pixelMeanDiff: sum / px.length,
        pixelMaxDiff: max,
        greedy: greedy.tokenIds,
        beam: beam.tokenIds,
        text: greedy.text,
        greedyClipScore: greedy.clipScore,
        greedyUncertain: greedy.uncertain,
        reranked: reranked && { tokenIds: reranked.tokenIds, clipScore: reranked.clipScore },
        timings: greedy.timings,
      });
    }
    return { backend: cap.backend, reason: cap.backendReason, events, images };
  } finally {
    await cap.dispose();
  }
}

/** Decode an image that is too big to hold whole, and report the size the engine worked on. */
async function decodeHuge(url: string) {
  const blob = await (await fetch(url)).blob();
  try {
    const img = await decodeImageInBrowser(blob, { maxPixels: 4096 * 4096 });
    return { ok: true, width: img.width, height: img.height };
  } catch (e) {
    return { ok: false, name: (e as Error).name, message: (e as Error).message };
  }
}

/** The durable cache in real IndexedDB: 'fill' downloads into it, 'reuse' loads from it, 'delete' empties it. */
async function cache(packUrl: string, step: 'fill' | 'reuse' | 'delete') {
  const store = new IndexedDbPackStore();
  const progress: Array<{ phase: string; bytes: number; total: number }> = [];
  if (step === 'fill') {
    const pack = await loadPackFromUrl(packUrl, {
      store,
      onProgress: (p) => progress.push({ phase: p.phase, bytes: p.bytes, total: p.total }),
    });
    return { id: pack.manifest.id, progress, list: await listCachedPacks(store) };
  }
  if (step === 'reuse') {
    const offline = await loadCachedPack((await listCachedPacks(store))[0].id, { store });
    const again = await loadPackFromUrl(packUrl, {
      store,
      onProgress: (p) => progress.push({ phase: p.phase, bytes: p.bytes, total: p.total }),
    });
    return {
      id: offline.manifest.id,
      sameBytes: offline.files.decoder.byteLength === again.files.decoder.byteLength,
      progress,
      list: await listCachedPacks(store),
    };
  }
  for (const p of await listCachedPacks(store)) await deleteCachedPack(p.id, store);
  return { list: await listCachedPacks(store) };
}

/** Decode each URL; report size and the centre pixel. */
async function decodeFormats(urls: string[]) {
  const out = [];
  for (const url of urls) {
    try {
      const img = await decodeImageInBrowser(await (await fetch(url)).blob(), { maxPixels: 4096 * 4096 });
      const c = (Math.floor(img.height / 2) * img.width + Math.floor(img.width / 2)) * 4;
      out.push({ url, ok: true, width: img.width, height: img.height, rgb: [img.data[c], img.data[c + 1], img.data[c + 2]] });
    } catch (e) {
      out.push({ url, ok: false, name: (e as Error).name, message: (e as Error).message });
    }
  }
  return out;
}

/** Caption bad input; return the error's name. */
async function captionBad(packUrl: string, what: 'garbage' | 'zero' | 'abort') {
  const pack = await loadPackFromUrl(packUrl, { store: new MemoryPackStore() });
  const ac = new AbortController();
  const cap = await createCaptioner({
    pack,
    backend: 'wasm',
    threads: 1,
    wasmPaths: '/ort/',
    onEvent: (e) => {
      if (e.type === 'token' && e.generated === 2) ac.abort();
    },
  });
  try {
    const golden = await (await fetch(new URL('golden.json', packUrl))).json();
    const goodBlob = await (await fetch(new URL(golden.images[0].file, packUrl))).blob();
    const input =
      what === 'garbage'
        ? new Blob([new Uint8Array([1, 2, 3, 4, 5])])
        : what === 'zero'
          ? await (await fetch('/fixtures/zero.png')).blob()
          : goodBlob;
    await cap.caption(input, { strategy: 'beam', beams: 3, maxTokens: 20, signal: ac.signal });
    return { name: null };
  } catch (e) {
    return { name: (e as Error).name, message: (e as Error).message };
  } finally {
    await cap.dispose();
  }
}

declare global {
  interface Window {
    captionerTest: {
      cache: typeof cache;
      runGolden: typeof runGolden;
      decodeHuge: typeof decodeHuge;
      decodeFormats: typeof decodeFormats;
      captionBad: typeof captionBad;
      gpu: () => Promise<boolean>;
    };
  }
}

window.captionerTest = {
  cache,
  runGolden,
  decodeHuge,
  decodeFormats,
  captionBad,
  gpu: async () => !!(await (navigator as Navigator & { gpu?: { requestAdapter(): Promise<unknown> } }).gpu?.requestAdapter()),
};
document.getElementById('status')!.textContent = 'ready';
