/**
 * Image decoding to RGBA pixels. In browsers: createImageBitmap + OffscreenCanvas (the Node tests inject a decoder,
 * see node-decode.ts). Huge images are downscaled while decoding, so a 20000x20000 image never becomes 1.6 GB of RGBA.
 */
import { CaptionerError, EmptyImageError, ImageDecodeError, ImageDecodeTimeoutError } from '../shared/errors';
import { LIMITS } from '../shared/limits';
import type { RgbaImage } from './preprocess';

/** Anything caption() accepts. */
export type ImageInput = Blob | ArrayBuffer | ArrayBufferView | ImageBitmap | RgbaImage;

export interface DecodeImageOptions {
  /** images with more pixels are downscaled while decoding (default 4096 x 4096) */
  maxPixels: number;
  /** a decode that takes longer is given up with ImageDecodeTimeoutError (default 20 s) */
  timeoutMs?: number;
}

export type ImageDecoderFn = (input: ImageInput, opts: DecodeImageOptions) => Promise<RgbaImage>;

// The engine's defaults are the limits table's (src/shared/limits.ts), where each says why.
export const DEFAULT_MAX_PIXELS = LIMITS.image.pixels;
export const DEFAULT_DECODE_TIMEOUT_MS = LIMITS.image.decodeTimeoutMs;

/**
 * Run a decode under a time limit, and make every failure a named engine error. Browser decoders throw DOMExceptions
 * and TypeErrors of their own; hostile bytes must never reach the caller as anything but ImageDecodeError (or one of
 * its kin). The decode itself can't be cancelled: a late result is dropped (its bitmaps are closed by the decoder).
 */
export async function guardDecode<T>(decode: () => Promise<T>, timeoutMs = DEFAULT_DECODE_TIMEOUT_MS): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ImageDecodeTimeoutError(timeoutMs)), timeoutMs);
  });
  try {
    return await Promise.race([decode(), timeout]);
  } catch (e) {
    if (e instanceof CaptionerError) throw e;
    throw new ImageDecodeError(e instanceof Error ? `${e.name}: ${e.message}` : String(e), { cause: e });
  } finally {
    clearTimeout(timer);
  }
}

export function isRgbaImage(x: unknown): x is RgbaImage {
  return (
    typeof x === 'object' &&
    x !== null &&
    'data' in x &&
    'width' in x &&
    'height' in x &&
    ((x as RgbaImage).data instanceof Uint8Array || (x as RgbaImage).data instanceof Uint8ClampedArray)
  );
}

export function toBytes(input: ArrayBuffer | ArrayBufferView): Uint8Array {
  return input instanceof ArrayBuffer ? new Uint8Array(input) : new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
}

/**
 * Width and height from the header of PNG, GIF, BMP, JPEG or WebP bytes, without decoding; null for other formats.
 */
export function sniffDimensions(b: Uint8Array): { width: number; height: number; format: string } | null {
  const u32be = (o: number) => ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
  const u16le = (o: number) => b[o] | (b[o + 1] << 8);
  const u16be = (o: number) => (b[o] << 8) | b[o + 1];
  const ascii = (o: number, n: number) => String.fromCharCode(...b.subarray(o, o + n));
  if (b.length >= 24 && b[0] === 0x89 && ascii(1, 3) === 'PNG' && ascii(12, 4) === 'IHDR') {
    return { width: u32be(16), height: u32be(20), format: 'png' };
  }
  if (b.length >= 10 && ascii(0, 4) === 'GIF8') return { width: u16le(6), height: u16le(8), format: 'gif' };
  if (b.length >= 26 && ascii(0, 2) === 'BM') {
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    return { width: Math.abs(dv.getInt32(18, true)), height: Math.abs(dv.getInt32(22, true)), format: 'bmp' };
  }
  if (b.length >= 30 && ascii(0, 4) === 'RIFF' && ascii(8, 4) === 'WEBP') {
    const chunk = ascii(12, 4);
    if (chunk === 'VP8 ') return { width: u16le(26) & 0x3fff, height: u16le(28) & 0x3fff, format: 'webp' };
    if (chunk === 'VP8L') {
      const bits = (b[21] | (b[22] << 8) | (b[23] << 16) | (b[24] << 24)) >>> 0;
      return { width: (bits & 0x3fff) + 1, height: ((bits >>> 14) & 0x3fff) + 1, format: 'webp' };
    }
    if (chunk === 'VP8X') {
      return { width: (b[24] | (b[25] << 8) | (b[26] << 16)) + 1, height: (b[27] | (b[28] << 8) | (b[29] << 16)) + 1, format: 'webp' };
    }
    return null;
  }
  if (b.length >= 4 && b[0] === 0xff && b[1] === 0xd8) {
    let o = 2;
    while (o + 9 < b.length) {
      if (b[o] !== 0xff) return null;
      const marker = b[o + 1];
      if (marker === 0xff) {
        o++;
        continue;
      }
      const len = u16be(o + 2);
      const isSof = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
      if (isSof) return { width: u16be(o + 7), height: u16be(o + 5), format: 'jpeg' };
      o += 2 + len;
    }
    return null;
  }
  return null;
}

/** Size that fits within maxPixels, keeping the aspect ratio (never upscales). */
export function fitWithin(width: number, height: number, maxPixels: number): { width: number; height: number } {
  const n = width * height;
  if (n <= maxPixels) return { width, height };
  const s = Math.sqrt(maxPixels / n);
  return { width: Math.max(1, Math.floor(width * s)), height: Math.max(1, Math.floor(height * s)) };
}

function isSvg(bytes: Uint8Array, type: string): boolean {
  if (type === 'image/svg+xml') return true;
  const head = new TextDecoder().decode(bytes.subarray(0, 512)).trimStart().toLowerCase();
  return head.startsWith('<svg') || (head.startsWith('<?xml') && head.includes('<svg'));
}

/**
 * HTML inside an SVG (<foreignObject>) taints the canvas, so its pixels could not be read back at all: drop those
 * elements and describe the rest. DOMParser documents are inert (no script, no loads).
 */
async function withoutForeignObjects(blob: Blob): Promise<Blob> {
  const svgType = 'image/svg+xml';
  if (typeof DOMParser === 'undefined' || typeof XMLSerializer === 'undefined') return new Blob([blob], { type: svgType });
  const text = await blob.text();
  if (!/foreignObject/i.test(text)) return new Blob([blob], { type: svgType });
  const doc = new DOMParser().parseFromString(text, svgType);
  if (doc.getElementsByTagName('parsererror').length) return new Blob([blob], { type: svgType });
  for (const el of Array.from(doc.getElementsByTagNameNS('http://www.w3.org/2000/svg', 'foreignObject'))) el.remove();
  return new Blob([new XMLSerializer().serializeToString(doc)], { type: svgType });
}

/**
 * SVG goes through an <img>: in that mode the browser runs no script (no <script>, no onload= handler) and loads no
 * external resource (<image href="http://…">, CSS url(), fonts), so a hostile SVG can neither act nor phone home.
 */
async function rasteriseSvg(blob: Blob, maxPixels: number): Promise<ImageBitmap> {
  if (typeof Image === 'undefined' || typeof URL.createObjectURL !== 'function') {
    throw new ImageDecodeError('SVG images can only be rasterised in a document');
  }
  const url = URL.createObjectURL(await withoutForeignObjects(blob));
  try {
    const img = new Image();
    img.src = url;
    await img.decode();
    // An SVG without intrinsic size renders at the CSS default of 300 x 150.
    const w = img.naturalWidth || 300;
    const h = img.naturalHeight || 150;
    const fit = fitWithin(w, h, maxPixels);
    return await createImageBitmap(img, { resizeWidth: fit.width, resizeHeight: fit.height, resizeQuality: 'high' });
  } finally {
    URL.revokeObjectURL(url);
  }
}

/**
 * The browser decoder: createImageBitmap, downscaled while decoding when huge, then read back via OffscreenCanvas.
 * Rejects only with named errors (ImageDecodeError, ImageDecodeTimeoutError, EmptyImageError).
 */
export async function decodeImageInBrowser(input: ImageInput, opts: DecodeImageOptions): Promise<RgbaImage> {
  if (isRgbaImage(input)) {
    if (!(input.width > 0 && input.height > 0)) throw new EmptyImageError(input.width, input.height);
    if (input.data.length < input.width * input.height * 4)
      throw new ImageDecodeError(`RGBA buffer of ${input.data.length} bytes for ${input.width}×${input.height}`);
    return input;
  }
  return guardDecode(() => decodeBrowser(input, opts), opts.timeoutMs);
}

async function decodeBrowser(input: ImageInput, opts: DecodeImageOptions): Promise<RgbaImage> {
  let bitmap: ImageBitmap;
  let owned = true;
  const bitmapOpts: ImageBitmapOptions = { premultiplyAlpha: 'none', colorSpaceConversion: 'none' };
  if (typeof ImageBitmap !== 'undefined' && input instanceof ImageBitmap) {
    bitmap = input;
    owned = false;
  } else {
    const blob = input instanceof Blob ? input : new Blob([toBytes(input as ArrayBuffer) as Uint8Array<ArrayBuffer>]);
    const head = new Uint8Array(await blob.slice(0, 64 * 1024).arrayBuffer());
    const dims = sniffDimensions(head);
    if (dims && (dims.width === 0 || dims.height === 0)) throw new EmptyImageError(dims.width, dims.height);
    try {
      if (isSvg(head, blob.type)) {
        bitmap = await rasteriseSvg(blob, opts.maxPixels);
      } else if (dims && dims.width * dims.height > opts.maxPixels) {
        const fit = fitWithin(dims.width, dims.height, opts.maxPixels);
        bitmap = await createImageBitmap(blob, { ...bitmapOpts, resizeWidth: fit.width, resizeHeight: fit.height, resizeQuality: 'high' });
      } else {
        bitmap = await createImageBitmap(blob, bitmapOpts);
      }
    } catch (e) {
      if (e instanceof ImageDecodeError) throw e;
      throw new ImageDecodeError(dims ? `${dims.format}, ${dims.width}×${dims.height}: ${(e as Error).message}` : (e as Error).message, {
        cause: e,
      });
    }
  }
  try {
    let { width, height } = bitmap;
    if (width === 0 || height === 0) throw new EmptyImageError(width, height);
    if (width * height > opts.maxPixels) {
      const fit = fitWithin(width, height, opts.maxPixels);
      const small = await createImageBitmap(bitmap, { resizeWidth: fit.width, resizeHeight: fit.height, resizeQuality: 'high' });
      if (owned) bitmap.close();
      bitmap = small;
      owned = true;
      ({ width, height } = bitmap);
    }
    const canvas = new OffscreenCanvas(width, height);
    const ctx = canvas.getContext('2d', { willReadFrequently: true });
    if (!ctx) throw new ImageDecodeError('no 2D canvas available to read pixels');
    ctx.drawImage(bitmap, 0, 0);
    let data: Uint8ClampedArray;
    try {
      data = ctx.getImageData(0, 0, width, height).data;
    } catch (e) {
      if ((e as Error).name === 'SecurityError') {
        throw new ImageDecodeError('the browser does not let its pixels be read (it embeds content from elsewhere)', { cause: e });
      }
      throw e;
    }
    return { data, width, height };
  } finally {
    if (owned) bitmap.close();
  }
}
