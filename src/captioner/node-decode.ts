/**
 * Image decoding for Node (tests and benchmarks) through sharp (libvips), which decodes PNG exactly as PIL does.
 * Not imported by the browser build: pass `decodeImage: decodeImageWithSharp` to createCaptioner in Node.
 */
import { EmptyImageError, ImageDecodeError } from '../shared/errors';
import { fitWithin, guardDecode, isRgbaImage, sniffDimensions, toBytes, type DecodeImageOptions, type ImageInput } from './image-decode';
import type { RgbaImage } from './preprocess';

export async function decodeImageWithSharp(input: ImageInput, opts: DecodeImageOptions): Promise<RgbaImage> {
  if (isRgbaImage(input)) return input;
  return guardDecode(() => decodeSharp(input, opts), opts.timeoutMs);
}

async function decodeSharp(input: ImageInput, opts: DecodeImageOptions): Promise<RgbaImage> {
  let bytes: Uint8Array;
  if (typeof Blob !== 'undefined' && input instanceof Blob) bytes = new Uint8Array(await input.arrayBuffer());
  else if (input instanceof ArrayBuffer || ArrayBuffer.isView(input)) bytes = toBytes(input);
  else throw new ImageDecodeError('unsupported input type in Node');
  const dims = sniffDimensions(bytes.subarray(0, 64 * 1024));
  if (dims && (dims.width === 0 || dims.height === 0)) throw new EmptyImageError(dims.width, dims.height);
  const { default: sharp } = await import('sharp');
  try {
    // libvips streams the decode, so limitInputPixels can be off: huge images are shrunk without holding them whole.
    let img = sharp(bytes, { limitInputPixels: false, failOn: 'error', animated: false });
    const meta = await img.metadata();
    const w = meta.width ?? 0;
    const h = meta.height ?? 0;
    if (w === 0 || h === 0) throw new EmptyImageError(w, h);
    if (w * h > opts.maxPixels) {
      const fit = fitWithin(w, h, opts.maxPixels);
      img = img.resize({ width: fit.width, height: fit.height, fit: 'fill', kernel: 'cubic' });
    }
    const { data, info } = await img.toColourspace('srgb').ensureAlpha().raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
    if (info.channels !== 4) throw new ImageDecodeError(`unexpected ${info.channels} channels`);
    return { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: info.width, height: info.height };
  } catch (e) {
    if (e instanceof EmptyImageError || e instanceof ImageDecodeError) throw e;
    throw new ImageDecodeError((e as Error).message, { cause: e });
  }
}
