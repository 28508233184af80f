/** Test images built byte by byte: PNG chunks, a PNG encoder (streaming, for huge images) and a 0x0 PNG. */
import { createWriteStream, existsSync, mkdirSync, renameSync } from 'node:fs';
import { dirname } from 'node:path';
import { crc32, createDeflate, deflateSync } from 'node:zlib';

/** One PNG chunk: length, type, data, CRC. */
export function pngChunk(type: string, data: Uint8Array): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td) >>> 0);
  return Buffer.concat([len, td, crc]);
}

export const PNG_SIG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

function ihdr(w: number, h: number): Buffer {
  const b = Buffer.alloc(13);
  b.writeUInt32BE(w, 0);
  b.writeUInt32BE(h, 4);
  b[8] = 8; // bit depth
  b[9] = 2; // RGB
  return b;
}

/** A small RGB PNG from raw pixels. */
export function encodePng(w: number, h: number, rgb: Uint8Array): Buffer {
  const raw = Buffer.alloc((w * 3 + 1) * h);
  for (let y = 0; y < h; y++) Buffer.from(rgb.buffer, rgb.byteOffset + y * w * 3, w * 3).copy(raw, y * (w * 3 + 1) + 1);
  return Buffer.concat([PNG_SIG, pngChunk('IHDR', ihdr(w, h)), pngChunk('IDAT', deflateSync(raw)), pngChunk('IEND', Buffer.alloc(0))]);
}

/** A PNG whose header says 0 x 0 pixels. */
export function zeroByZeroPng(): Buffer {
  return Buffer.concat([
    PNG_SIG,
    pngChunk('IHDR', ihdr(0, 0)),
    pngChunk('IDAT', deflateSync(Buffer.alloc(0))),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

/**
 * Write a size x size RGB PNG (colour bands, so it compresses to a few MB) to `path`, streaming, once; reuse after.
 * 20000 x 20000 is 1.2 GB of pixels: nothing here holds more than a row.
 */
export async function hugePng(path: string, size: number): Promise<string> {
  if (existsSync(path)) return path;
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.part`;
  const out = createWriteStream(tmp);
  out.write(PNG_SIG);
  out.write(pngChunk('IHDR', ihdr(size, size)));
  const idat: Buffer[] = [];
  let pending = 0;
  const flushIdat = () => {
    if (pending === 0) return;
    out.write(pngChunk('IDAT', Buffer.concat(idat)));
    idat.length = 0;
    pending = 0;
  };
  const deflate = createDeflate({ level: 1 });
  deflate.on('data', (d: Buffer) => {
    idat.push(d);
    pending += d.length;
    if (pending > 1 << 20) flushIdat();
  });
  const row = Buffer.alloc(size * 3 + 1);
  for (let y = 0; y < size; y++) {
    const band = Math.floor((y / size) * 8);
    for (let x = 0; x < size; x++) {
      const o = 1 + x * 3;
      row[o] = band * 32;
      row[o + 1] = Math.floor((x / size) * 4) * 64;
      row[o + 2] = 128;
    }
    if (!deflate.write(row)) await new Promise((r) => deflate.once('drain', r));
  }
  const ended = new Promise((r) => deflate.once('end', r));
  deflate.end();
  await ended; // every compressed byte has been emitted
  flushIdat();
  out.write(pngChunk('IEND', Buffer.alloc(0)));
  await new Promise<void>((r, j) => out.end((e?: Error | null) => (e ? j(e) : r())));
  renameSync(tmp, path);
  return path;
}
