import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { EmptyImageError, ImageDecodeError } from '../../src/shared/errors';
import { fitWithin, sniffDimensions } from '../../src/captioner/image-decode';
import { decodeImageWithSharp } from '../../src/captioner/node-decode';
import { encodePng, zeroByZeroPng } from './helpers/images';

describe('header sniffing (sizes known before decoding, so huge images can be shrunk while decoding)', () => {
  it('reads width and height of PNG, JPEG, GIF, WebP (lossy and lossless) and BMP', async () => {
    const base = () => sharp({ create: { width: 123, height: 45, channels: 3, background: { r: 1, g: 2, b: 3 } } });
    const cases: Array<[string, Buffer]> = [
      ['png', await base().png().toBuffer()],
      ['jpeg', await base().jpeg().toBuffer()],
      ['gif', await base().gif().toBuffer()],
      ['webp', await base().webp().toBuffer()],
      ['webp', await base().webp({ lossless: true }).toBuffer()],
    ];
    for (const [format, bytes] of cases) expect(sniffDimensions(bytes), format).toEqual({ width: 123, height: 45, format });
    const bmp = Buffer.alloc(54);
    bmp.write('BM', 0, 'ascii');
    bmp.writeInt32LE(7, 18);
    bmp.writeInt32LE(-9, 22); // top-down
    expect(sniffDimensions(bmp)).toEqual({ width: 7, height: 9, format: 'bmp' });
    expect(sniffDimensions(Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"/>'))).toBeNull();
    expect(sniffDimensions(zeroByZeroPng())).toEqual({ width: 0, height: 0, format: 'png' });
  });

  it('fits huge sizes under the pixel cap, keeping the aspect ratio', () => {
    expect(fitWithin(20000, 20000, 4096 * 4096)).toEqual({ width: 4096, height: 4096 });
    const f = fitWithin(30000, 1000, 4096 * 4096);
    expect(f.width * f.height).toBeLessThanOrEqual(4096 * 4096);
    expect(f.width / f.height).toBeCloseTo(30, 1);
    expect(fitWithin(640, 480, 4096 * 4096)).toEqual({ width: 640, height: 480 });
  });
});

describe('Node decoder (sharp)', () => {
  it('returns RGBA pixels of a PNG exactly', async () => {
    const rgb = new Uint8Array([255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30]);
    const img = await decodeImageWithSharp(encodePng(2, 2, rgb), { maxPixels: 1 << 24 });
    expect(img.width).toBe(2);
    expect(Array.from(img.data)).toEqual([255, 0, 0, 255, 0, 255, 0, 255, 0, 0, 255, 255, 10, 20, 30, 255]);
  });
  it('names undecodable and empty images', async () => {
    await expect(decodeImageWithSharp(new Uint8Array([1, 2, 3]), { maxPixels: 1 << 24 })).rejects.toBeInstanceOf(ImageDecodeError);
    await expect(decodeImageWithSharp(zeroByZeroPng(), { maxPixels: 1 << 24 })).rejects.toBeInstanceOf(EmptyImageError);
  });
});
