/**
 * CLIP preprocessing, bit-compatible with the PIL + torchvision pipeline the PyTorch reference uses:
 *
 *   RGB uint8 -> Resize(shortest edge = S, PIL BICUBIC with antialiasing) -> CenterCrop(S) -> /255 -> (x-mean)/std
 *
 * The resize reimplements the algorithm of Pillow's src/libImaging/Resample.c (not its code):
 *  - a cubic kernel with a = -0.5 and support 2, widened by the scale factor when downscaling (that is the antialiasing);
 *  - coefficients normalised to sum 1, then converted to fixed point with 22 fraction bits (rounded half away from 0);
 *  - two separable passes, horizontal first, each accumulating in integers from a bias of 0.5 and clamping to uint8.
 * Rounding to uint8 between the passes matters: a float-only implementation differs by up to a few units of 1/255.
 */
import { EmptyImageError } from '../shared/errors';
import type { PackManifest } from './pack-format';

export interface RgbaImage {
  /** width * height * 4 bytes, RGBA, not premultiplied */
  data: Uint8Array | Uint8ClampedArray;
  width: number;
  height: number;
}

const PRECISION_BITS = 32 - 8 - 2;
const FIXED_ONE = 2 ** PRECISION_BITS;

function bicubic(x: number): number {
  const a = -0.5;
  if (x < 0) x = -x;
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

interface Coeffs {
  ksize: number;
  /** per output pixel: first input index */
  start: Int32Array;
  /** per output pixel: number of taps */
  count: Int32Array;
  /** fixed-point weights, ksize per output pixel */
  weights: Int32Array;
}

/**
 * Filter taps for resizing inSize -> outSize over the whole input, as Pillow's precompute_coeffs computes them, for
 * the output pixels [from, to) only (entry 0 is output pixel `from`).
 */
function computeCoeffs(inSize: number, outSize: number, from = 0, to = outSize): Coeffs {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = 2 * filterScale;
  const ksize = Math.ceil(support) * 2 + 1;
  const n = to - from;
  const start = new Int32Array(n);
  const count = new Int32Array(n);
  const weights = new Int32Array(n * ksize);
  const w = new Float64Array(ksize);
  for (let xx = from; xx < to; xx++) {
    const center = (xx + 0.5) * scale;
    const ss = 1 / filterScale;
    // Pillow truncates (center ± support + 0.5) toward zero with a C cast.
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    let sum = 0;
    for (let x = 0; x < xmax; x++) {
      const v = bicubic((x + xmin - center + 0.5) * ss);
      w[x] = v;
      sum += v;
    }
    const i = xx - from;
    for (let x = 0; x < xmax; x++) {
      const v = sum !== 0 ? w[x] / sum : w[x];
      // normalize_coeffs_8bpc: round half away from zero, then truncate.
      weights[i * ksize + x] = v < 0 ? Math.trunc(-0.5 + v * FIXED_ONE) : Math.trunc(0.5 + v * FIXED_ONE);
    }
    start[i] = xmin;
    count[i] = xmax;
  }
  return { ksize, start, count, weights };
}

function clip8(acc: number): number {
  if (acc >= FIXED_ONE * 256) return 255;
  if (acc <= 0) return 0;
  return Math.floor(acc / FIXED_ONE);
}

/** A window of the resized image, in output pixels. */
export interface ResizeRegion {
  x: number;
  y: number;
  width: number;
  height: number;
}

/**
 * Resize a 3-channel interleaved uint8 image (stride 3) with PIL's antialiased bicubic filter.
 * Returns a new interleaved RGB buffer of the region's width * height * 3 bytes (default: the whole outW * outH).
 *
 * Only the region is computed, with exactly the values the full resize has there. The centre crop needs S x S of the
 * resized image, and a 1 x 20000 strip resizes to 224 x 4,480,000 (3 GB): computing all of it would run out of memory.
 */
export function resizeBicubicPil(
  src: Uint8Array,
  inW: number,
  inH: number,
  outW: number,
  outH: number,
  region: ResizeRegion = { x: 0, y: 0, width: outW, height: outH },
): Uint8Array {
  if (inW <= 0 || inH <= 0) throw new EmptyImageError(inW, inH);
  const x0 = Math.max(0, Math.min(outW, region.x));
  const y0 = Math.max(0, Math.min(outH, region.y));
  const rw = Math.max(0, Math.min(outW, region.x + region.width) - x0);
  const rh = Math.max(0, Math.min(outH, region.y + region.height) - y0);
  if (rw === 0 || rh === 0) return new Uint8Array(0);
  const needH = outW !== inW;
  const needV = outH !== inH;
  let cur: Uint8Array;
  let curW: number;
  // Without a vertical pass, the rows kept are the region's own input rows.
  let rowFirst = needV ? 0 : y0;
  let rowLast = needV ? inH : y0 + rh;
  const vert = needV ? computeCoeffs(inH, outH, y0, y0 + rh) : null;
  if (vert) {
    rowFirst = vert.start[0];
    rowLast = vert.start[rh - 1] + vert.count[rh - 1];
  }

  // Horizontal pass, over only the rows the vertical pass will read (as Pillow does), and only the region's columns.
  if (needH) {
    const h = computeCoeffs(inW, outW, x0, x0 + rw);
    const rows = rowLast - rowFirst;
    const out = new Uint8Array(rw * rows * 3);
    const half = FIXED_ONE / 2;
    for (let y = 0; y < rows; y++) {
      const inRow = (y + rowFirst) * inW * 3;
      const outRow = y * rw * 3;
      for (let xx = 0; xx < rw; xx++) {
        const s = h.start[xx];
        const n = h.count[xx];
        const k = xx * h.ksize;
        let r = half;
        let g = half;
        let b = half;
        let p = inRow + s * 3;
        for (let x = 0; x < n; x++, p += 3) {
          const wt = h.weights[k + x];
          r += src[p] * wt;
          g += src[p + 1] * wt;
          b += src[p + 2] * wt;
        }
        const o = outRow + xx * 3;
        out[o] = clip8(r);
        out[o + 1] = clip8(g);
        out[o + 2] = clip8(b);
      }
    }
    cur = out;
    curW = rw;
  } else {
    // No horizontal resize: keep the region's columns of the rows needed.
    const rows = rowLast - rowFirst;
    const out = new Uint8Array(rw * rows * 3);
    for (let y = 0; y < rows; y++) out.set(src.subarray(((y + rowFirst) * inW + x0) * 3, ((y + rowFirst) * inW + x0 + rw) * 3), y * rw * 3);
    cur = out;
    curW = rw;
  }

  if (vert) {
    // bounds relative to the first row kept
    for (let i = 0; i < rh; i++) vert.start[i] -= rowFirst;
    const out = new Uint8Array(curW * rh * 3);
    const half = FIXED_ONE / 2;
    const stride = curW * 3;
    for (let yy = 0; yy < rh; yy++) {
      const s = vert.start[yy];
      const n = vert.count[yy];
      const k = yy * vert.ksize;
      const outRow = yy * stride;
      for (let xc = 0; xc < stride; xc++) {
        let acc = half;
        let p = s * stride + xc;
        for (let y = 0; y < n; y++, p += stride) acc += cur[p] * vert.weights[k + y];
        out[outRow + xc] = clip8(acc);
      }
    }
    cur = out;
  }
  return cur;
}

/** torchvision's Resize(int) output size: the short side becomes `size`, the long side int(size * long / short). */
export function shortestEdgeSize(width: number, height: number, size: number): { width: number; height: number } {
  if (width <= height) return { width: size, height: Math.floor((size * height) / width) };
  return { width: Math.floor((size * width) / height), height: size };
}

/** Python's round() of (a / 2) for an integer a: halves go to the even neighbour, as torchvision's center_crop does. */
function roundHalfEvenHalf(a: number): number {
  const q = Math.floor(a / 2);
  if (a % 2 === 0) return q;
  return q % 2 === 0 ? q : q + 1;
}

/**
 * RGBA -> RGB as a reader sees the picture: transparency laid over white, each channel
 * floor((c * a + 255 * (255 - a) + 127) / 255), the integer rule of model/preprocess.py's to_rgb, so both match byte
 * for byte. Upstream CLIP drops alpha instead; that would show a transparent logo over whatever colour its transparent
 * pixels store, and browsers hand canvas pixels back un-premultiplied, so there that colour is black.
 */
export function rgbaToRgb(img: RgbaImage): Uint8Array {
  const { data, width, height } = img;
  const n = width * height;
  if (data.length < n * 4) throw new RangeError(`RGBA buffer has ${data.length} bytes, expected ${n * 4}`);
  const out = new Uint8Array(n * 3);
  for (let i = 0, j = 0, k = 0; i < n; i++, j += 3, k += 4) {
    const a = data[k + 3];
    if (a === 255) {
      out[j] = data[k];
      out[j + 1] = data[k + 1];
      out[j + 2] = data[k + 2];
    } else {
      const white = 255 * (255 - a) + 127;
      out[j] = ((data[k] * a + white) / 255) | 0;
      out[j + 1] = ((data[k + 1] * a + white) / 255) | 0;
      out[j + 2] = ((data[k + 2] * a + white) / 255) | 0;
    }
  }
  return out;
}

/**
 * Full CLIP preprocessing of one decoded image into `out` (3 * S * S floats, CHW), or a new array.
 */
export function preprocessRgba(img: RgbaImage, pp: PackManifest['preprocess'], out?: Float32Array): Float32Array {
  const { width, height } = img;
  if (!(width > 0 && height > 0)) throw new EmptyImageError(width, height);
  const S = pp.imageSize;
  const rgb = rgbaToRgb(img);
  const size = shortestEdgeSize(width, height, S);
  const top = roundHalfEvenHalf(size.height - S);
  const left = roundHalfEvenHalf(size.width - S);
  // Only the crop window is resized; `resized` is indexed in window coordinates below.
  const win = { x: Math.max(0, left), y: Math.max(0, top), width: 0, height: 0 };
  win.width = Math.max(0, Math.min(size.width, left + S) - win.x);
  win.height = Math.max(0, Math.min(size.height, top + S) - win.y);
  const resized = resizeBicubicPil(rgb, width, height, size.width, size.height, win);
  const plane = S * S;
  const result = out ?? new Float32Array(3 * plane);
  const mean = pp.mean.map(Math.fround);
  const std = pp.std.map(Math.fround);
  const rescale = Math.fround(pp.rescale);
  for (let y = 0; y < S; y++) {
    const sy = y + top;
    for (let x = 0; x < S; x++) {
      const sx = x + left;
      const o = y * S + x;
      // Pixels outside the resized image (only when it is smaller than S, which shortest_edge never makes) are 0,
      // as torchvision's center_crop pads.
      const inside = sy >= win.y && sy < win.y + win.height && sx >= win.x && sx < win.x + win.width;
      const p = ((sy - win.y) * win.width + (sx - win.x)) * 3;
      for (let c = 0; c < 3; c++) {
        const v = inside ? resized[p + c] : 0;
        result[c * plane + o] = (Math.fround(v * rescale) - mean[c]) / std[c];
      }
    }
  }
  return result;
}
