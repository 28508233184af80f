import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { EmptyImageError } from '../../src/shared/errors';
import { preprocessRgba, resizeBicubicPil, rgbaToRgb, shortestEdgeSize } from '../../src/captioner/preprocess';

const PY = '/usr/bin/python3';
const HELPER = fileURLToPath(new URL('./helpers/pil_resize.py', import.meta.url));
const TO_RGB = fileURLToPath(new URL('./helpers/pil_to_rgb.py', import.meta.url));

/** Deterministic pseudo-random bytes with some smooth structure (so both flat and busy regions are covered). */
function testImage(w: number, h: number, seed: number): Uint8Array {
  let s = seed >>> 0;
  const rnd = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  const out = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let c = 0; c < 3; c++) {
        const smooth = 128 + 100 * Math.sin((x + c * 7) / 5) * Math.cos(y / 9);
        out[(y * w + x) * 3 + c] = rnd() < 0.3 ? Math.floor(rnd() * 256) : Math.round(smooth);
      }
    }
  }
  return out;
}

function pilResize(cases: Array<{ w: number; h: number; ow: number; oh: number; data: Uint8Array }>): Uint8Array[] {
  const input = JSON.stringify(cases.map((c) => ({ w: c.w, h: c.h, ow: c.ow, oh: c.oh, b64: Buffer.from(c.data).toString('base64') })));
  const r = spawnSync(PY, [HELPER], { input, maxBuffer: 1 << 28, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`PIL reference failed (needs ${PY} with PIL, apt python3-pil): ${r.stderr}`);
  return (JSON.parse(r.stdout) as string[]).map((b) => new Uint8Array(Buffer.from(b, 'base64')));
}

describe('PIL-compatible bicubic resize', () => {
  it('matches PIL Image.resize(BICUBIC) byte for byte, downscaling, upscaling, and one axis only', () => {
    const shapes: Array<[number, number, number, number]> = [
      [640, 480, 298, 224], // typical photo to CLIP size
      [300, 500, 224, 373],
      [1000, 37, 6053, 224], // strong upscale on one axis, downscale on none
      [224, 224, 224, 224], // identity
      [225, 224, 224, 224], // horizontal only, tiny factor
      [224, 900, 224, 333], // vertical only
      [3, 2, 224, 149], // tiny image upscaled
      [1, 1, 224, 224],
      [1537, 1111, 309, 224], // odd sizes, factor ~5
      [4000, 3000, 298, 224], // factor ~13
    ];
    const cases = shapes.map(([w, h, ow, oh], i) => ({ w, h, ow, oh, data: testImage(w, h, i + 1) }));
    const expected = pilResize(cases);
    cases.forEach((c, i) => {
      const got = resizeBicubicPil(c.data, c.w, c.h, c.ow, c.oh);
      expect(got.length, `${c.w}x${c.h}->${c.ow}x${c.oh}`).toBe(expected[i].length);
      let mismatches = 0;
      for (let j = 0; j < got.length; j++) if (got[j] !== expected[i][j]) mismatches++;
      expect(mismatches, `${c.w}x${c.h}->${c.ow}x${c.oh}: bytes differing from PIL`).toBe(0);
    });
  });

  it('computes the shortest-edge size as torchvision does (long side truncated)', () => {
    expect(shortestEdgeSize(640, 480, 224)).toEqual({ width: 298, height: 224 });
    expect(shortestEdgeSize(480, 640, 224)).toEqual({ width: 224, height: 298 });
    expect(shortestEdgeSize(100, 100, 224)).toEqual({ width: 224, height: 224 });
    expect(shortestEdgeSize(20000, 10, 224)).toEqual({ width: 448000, height: 224 });
  });

  it('refuses a 0x0 image with a named error', () => {
    const pp = {
      imageSize: 8,
      resize: 'shortest_edge',
      interpolation: 'bicubic',
      crop: 'center',
      rescale: 1 / 255,
      mean: [0, 0, 0],
      std: [1, 1, 1],
      channelOrder: 'RGB',
    } as const;
    expect(() => preprocessRgba({ data: new Uint8Array(0), width: 0, height: 0 }, { ...pp, mean: [0, 0, 0], std: [1, 1, 1] })).toThrow(
      EmptyImageError,
    );
    expect(() => preprocessRgba({ data: new Uint8Array(0), width: 5, height: 0 }, { ...pp, mean: [0, 0, 0], std: [1, 1, 1] })).toThrow(
      EmptyImageError,
    );
  });

  it('normalises and centre-crops into CHW layout', () => {
    // 4x2 image, S=2: resize is identity on height, width 4 -> 4 (shortest edge 2 -> size 2x4 stays), crop columns 1..2
    const w = 4,
      h = 2;
    const data = new Uint8Array(w * h * 4);
    for (let i = 0; i < w * h; i++) data.set([i * 10, 255 - i * 10, 100, 255], i * 4);
    const pp = {
      imageSize: 2,
      resize: 'shortest_edge',
      interpolation: 'bicubic',
      crop: 'center',
      rescale: 1 / 255,
      mean: [0.5, 0.5, 0.5],
      std: [0.5, 0.25, 2],
      channelOrder: 'RGB',
    } as const;
    const out = preprocessRgba({ data, width: w, height: h }, { ...pp, mean: [0.5, 0.5, 0.5], std: [0.5, 0.25, 2] });
    expect(out.length).toBe(12);
    const px = (x: number, y: number) => y * w + x;
    // channel 0 at (0,0) is source pixel (1,0)
    expect(out[0]).toBeCloseTo(((px(1, 0) * 10) / 255 - 0.5) / 0.5, 5);
    expect(out[4 + 3]).toBeCloseTo(((255 - px(2, 1) * 10) / 255 - 0.5) / 0.25, 5);
    expect(out[8 + 1]).toBeCloseTo((100 / 255 - 0.5) / 2, 5);
  });
});

describe('transparency', () => {
  it('is laid over white exactly as model/preprocess.py does, for every alpha', () => {
    // Every alpha 0..255 against colours at the ends and the middle of the range, and random ones.
    const w = 256;
    const colours = [
      [0, 0, 0],
      [255, 255, 255],
      [200, 100, 50],
      [1, 128, 254],
    ];
    const h = colours.length + 4;
    const data = new Uint8Array(w * h * 4);
    let s = 7;
    const rnd = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) >>> 24;
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) {
        const k = (y * w + x) * 4;
        const c = colours[y] ?? [rnd(), rnd(), rnd()];
        data.set([...c, x], k);
      }
    const input = JSON.stringify([{ w, h, b64: Buffer.from(data).toString('base64') }]);
    const r = spawnSync(PY, [TO_RGB], { input, maxBuffer: 1 << 26, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`PIL reference failed (needs ${PY} with PIL and numpy): ${r.stderr}`);
    const expected = new Uint8Array(Buffer.from((JSON.parse(r.stdout) as string[])[0], 'base64'));
    const got = rgbaToRgb({ data, width: w, height: h });
    expect(Buffer.from(got).equals(Buffer.from(expected))).toBe(true);
    // A fully transparent pixel is white whatever it stores; an opaque one keeps its colour.
    expect([...got.subarray(0, 3)]).toEqual([255, 255, 255]);
    expect([...got.subarray(2 * w * 3 + 255 * 3, 2 * w * 3 + 256 * 3)]).toEqual([200, 100, 50]);
  });
});
