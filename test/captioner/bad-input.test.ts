/** Bad input: each case is a named error, and the captioner keeps working afterwards. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-web';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCaptioner, type Captioner, type CaptionerEvent } from '../../src/captioner/captioner';
import {
  CaptionAbortedError,
  CaptionerDisposedError,
  EmptyImageError,
  ImageDecodeError,
  InvalidOptionError,
} from '../../src/shared/errors';
import { decodeImageWithSharp } from '../../src/captioner/node-decode';
import { goldenPackDirs, packMissingMessage, readGolden, REPO, pickedPackFiles } from './helpers/packs';
import { hugePng, zeroByZeroPng } from './helpers/images';
import { loadPackFromFiles } from '../../src/captioner/pack-loader';

const dir = goldenPackDirs()[0];
const missing = packMissingMessage(dir);

describe('bad input to caption()', () => {
  if (missing) {
    it('pack exists', () => {
      throw new Error(missing);
    });
    return;
  }
  let cap: Captioner;
  let onEvent: (e: CaptionerEvent) => void = () => {};
  let good: Buffer;
  let expectedGreedy: number[];
  beforeAll(async () => {
    const pack = await loadPackFromFiles(pickedPackFiles(dir));
    cap = await createCaptioner({
      pack,
      ort: ort,
      backend: 'wasm',
      threads: 1,
      decodeImage: decodeImageWithSharp,
      onEvent: (e) => onEvent(e),
    });
    const golden = readGolden(dir);
    good = readFileSync(join(dir, golden.images[0].file));
    expectedGreedy = golden.images[0].greedy.tokenIds;
  });
  afterAll(async () => cap?.dispose());

  it('undecodable bytes are an ImageDecodeError', async () => {
    await expect(cap.caption(new Uint8Array([0x89, 0x50, 0x4e, 0x47, 1, 2, 3, 4]))).rejects.toBeInstanceOf(ImageDecodeError);
    await expect(cap.caption(Buffer.from('<html>not an image</html>'))).rejects.toBeInstanceOf(ImageDecodeError);
    await expect(cap.caption(new Uint8Array(0))).rejects.toBeInstanceOf(ImageDecodeError);
  });

  it('a 0x0 image is an EmptyImageError', async () => {
    await expect(cap.caption(zeroByZeroPng())).rejects.toBeInstanceOf(EmptyImageError);
    await expect(cap.caption({ data: new Uint8Array(0), width: 0, height: 0 })).rejects.toBeInstanceOf(EmptyImageError);
  });

  it('a 20000x20000 image is downscaled while decoding and captioned, without holding its pixels', async () => {
    const path = await hugePng(join(REPO, '.tmp/test-images/huge-20000.png'), 20000);
    const before = process.memoryUsage().rss;
    const r = await cap.caption(readFileSync(path), { strategy: 'greedy', maxTokens: 8 });
    const grew = process.memoryUsage().rss - before;
    expect(r.tokenIds.length).toBeGreaterThan(0);
    // 20000^2 RGBA would be 1.6 GB; the decode is capped at 4096^2 (67 MB RGBA)
    expect(grew).toBeLessThan(800 * 2 ** 20);
  }, 300_000);

  it('cancellation mid-decode rejects with AbortError and leaves the captioner usable', async () => {
    const ac = new AbortController();
    const steps: number[] = [];
    onEvent = (e) => {
      if (e.type !== 'token') return;
      steps.push(e.generated);
      if (e.generated === 2) ac.abort(); // two tokens decoded, more to come
    };
    const err = await cap.caption(good, { strategy: 'beam', beams: 3, maxTokens: 20, signal: ac.signal }).catch((e) => e);
    onEvent = () => {};
    expect(err, `steps seen: ${steps.join(',')}; error: ${err?.name} ${err?.message}`).toBeInstanceOf(CaptionAbortedError);
    expect(err.name).toBe('AbortError');
    expect(steps).toEqual([1, 2]); // no decode step ran after the abort
    const again = await cap.caption(good, { strategy: 'greedy', maxTokens: readGolden(dir).decoding.maxTokens });
    expect(again.tokenIds).toEqual(expectedGreedy);
  });

  it('an already-aborted signal rejects before any work, and queued calls run one at a time', async () => {
    const ac = new AbortController();
    ac.abort();
    await expect(cap.caption(good, { signal: ac.signal })).rejects.toBeInstanceOf(CaptionAbortedError);
    const order: string[] = [];
    const a = cap.caption(good, { strategy: 'greedy', maxTokens: 3 }).then(() => order.push('a'));
    const b = cap.caption(good, { strategy: 'greedy', maxTokens: 3 }).then(() => order.push('b'));
    await Promise.all([a, b]);
    expect(order).toEqual(['a', 'b']);
  });

  it('out-of-range options are an InvalidOptionError', async () => {
    await expect(cap.caption(good, { beams: 0 })).rejects.toBeInstanceOf(InvalidOptionError);
    await expect(cap.caption(good, { maxTokens: 100000 })).rejects.toBeInstanceOf(InvalidOptionError);
    await expect(cap.caption(good, { strategy: 'sample' as 'greedy' })).rejects.toBeInstanceOf(InvalidOptionError);
  });

  it('a disposed captioner refuses with CaptionerDisposedError', async () => {
    const other = await createCaptioner({
      pack: await loadPackFromFiles(pickedPackFiles(dir)),
      ort: ort,
      backend: 'wasm',
      decodeImage: decodeImageWithSharp,
    });
    await other.dispose();
    await expect(other.caption(good)).rejects.toBeInstanceOf(CaptionerDisposedError);
  });
});
