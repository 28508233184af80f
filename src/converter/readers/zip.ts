/**
 * The zip container of torch.save and torch.jit.save, read in place: the end-of-central-directory record (and its
 * ZIP64 form: torch writes ZIP64 records, and a full checkpoint may pass 4 GiB), the central directory, then a
 * local header only when an entry's data offset is wanted (it sits before the data, with an extra field torch
 * uses as alignment padding, so the central directory alone cannot tell where the data starts).
 *
 * Entries are read in place, so a compressed one is refused (CompressedEntryError): torch stores every entry a
 * reader needs (data.pkl, data/<key>) uncompressed.
 */
import { CompressedEntryError, CorruptCheckpointError, NotACheckpointError } from '../../shared/errors';
import type { RandomAccess } from './random-access';

export interface ZipEntry {
  name: string;
  /** 0 = stored, 8 = deflate */
  method: number;
  compressedSize: number;
  size: number;
  localHeaderOffset: number;
}

export interface ZipIndex {
  entries: Map<string, ZipEntry>;
  /** where the central directory starts: the first byte after every entry's data */
  centralDirectoryOffset: number;
}

const EOCD_SIG = 0x06054b50;
const EOCD64_LOCATOR_SIG = 0x07064b50;
const EOCD64_SIG = 0x06064b50;
const CDH_SIG = 0x02014b50;
const LFH_SIG = 0x04034b50;
const EOCD_MIN = 22;
const MAX_COMMENT = 0xffff;
const MAX_DIRECTORY_BYTES = 64 * 2 ** 20;

function u64(view: DataView, at: number, what: string): number {
  const v = view.getBigUint64(at, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new CorruptCheckpointError(`zip ${what} ${v} is out of range`);
  return Number(v);
}

const dv = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);

/** True when the file starts like a zip (a local header, or an empty archive's EOCD). */
export function looksLikeZip(head: Uint8Array): boolean {
  if (head.length < 4) return false;
  const sig = dv(head).getUint32(0, true);
  return sig === LFH_SIG || sig === EOCD_SIG;
}

function findEocd(tail: Uint8Array): number {
  const tv = dv(tail);
  for (let i = tail.length - EOCD_MIN; i >= 0; i--) {
    if (tv.getUint32(i, true) === EOCD_SIG && i + EOCD_MIN + tv.getUint16(i + 20, true) === tail.length) return i;
  }
  return -1;
}

export async function readZipIndex(src: RandomAccess, signal?: AbortSignal): Promise<ZipIndex> {
  if (src.size < EOCD_MIN) throw new NotACheckpointError(`${src.size} bytes is too short for a zip archive`);
  // The EOCD is the last record, followed only by a comment of up to 64 KiB. torch writes no comment, so a short
  // tail finds it (a vision-only install over HTTP should not pay 64 KiB for it); the longest tail is the fallback.
  let tail: Uint8Array = new Uint8Array(0);
  let at = -1;
  for (const want of [1024, EOCD_MIN + MAX_COMMENT + 20]) {
    const len = Math.min(src.size, want);
    tail = await src.read(src.size - len, len, signal);
    at = findEocd(tail);
    if (at >= 0 || len === src.size) break;
  }
  if (at < 0) throw new CorruptCheckpointError('no zip end-of-central-directory record: the file is cut short or not a zip archive');
  const tv = dv(tail);
  let count = tv.getUint16(at + 10, true);
  let cdSize = tv.getUint32(at + 12, true);
  let cdOffset = tv.getUint32(at + 16, true);
  if (tv.getUint16(at + 4, true) !== 0 || tv.getUint16(at + 6, true) !== 0)
    throw new CorruptCheckpointError('multi-disk zip archives are not model files');

  // ZIP64: a locator sits just before the EOCD and points at the ZIP64 EOCD, whose fields replace any 0xFFFF… ones.
  const loc = at - 20;
  if (loc >= 0 && tv.getUint32(loc, true) === EOCD64_LOCATOR_SIG) {
    const eocd64At = u64(tv, loc + 8, 'ZIP64 record offset');
    const rec = await src.read(eocd64At, 56, signal);
    const rv = dv(rec);
    if (rv.getUint32(0, true) !== EOCD64_SIG) throw new CorruptCheckpointError('the ZIP64 end-of-central-directory record is missing');
    count = u64(rv, 32, 'entry count');
    cdSize = u64(rv, 40, 'central directory size');
    cdOffset = u64(rv, 48, 'central directory offset');
  } else if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
    throw new CorruptCheckpointError('the zip index needs a ZIP64 record that is missing');
  }
  if (cdOffset + cdSize > src.size)
    throw new CorruptCheckpointError(`the central directory [${cdOffset}, +${cdSize}) lies outside the ${src.size}-byte file (cut short?)`);

  // A model file has hundreds of entries (a few tens of KB of directory); a huge directory is not one.
  if (cdSize > MAX_DIRECTORY_BYTES) throw new CorruptCheckpointError(`a ${cdSize}-byte zip directory is not a model file's`);
  const cd = await src.read(cdOffset, cdSize, signal);
  const cv = dv(cd);
  const entries = new Map<string, ZipEntry>();
  const utf8 = new TextDecoder('utf-8', { fatal: false });
  let p = 0;
  for (let i = 0; i < count; i++) {
    if (p + 46 > cd.length || cv.getUint32(p, true) !== CDH_SIG)
      throw new CorruptCheckpointError(`central directory entry ${i} is damaged`);
    const method = cv.getUint16(p + 10, true);
    let compressedSize = cv.getUint32(p + 20, true);
    let size = cv.getUint32(p + 24, true);
    const nameLen = cv.getUint16(p + 28, true);
    const extraLen = cv.getUint16(p + 30, true);
    const commentLen = cv.getUint16(p + 32, true);
    let localHeaderOffset = cv.getUint32(p + 42, true);
    if (p + 46 + nameLen + extraLen + commentLen > cd.length)
      throw new CorruptCheckpointError(`central directory entry ${i} runs past the directory`);
    const name = utf8.decode(cd.subarray(p + 46, p + 46 + nameLen));
    // ZIP64 extended information (extra field 0x0001): 8-byte values for exactly the fields that read 0xFFFFFFFF.
    let e = p + 46 + nameLen;
    const extraEnd = e + extraLen;
    while (e + 4 <= extraEnd) {
      const id = cv.getUint16(e, true);
      const len = cv.getUint16(e + 2, true);
      if (id === 0x0001) {
        let q = e + 4;
        if (size === 0xffffffff) {
          size = u64(cv, q, 'entry size');
          q += 8;
        }
        if (compressedSize === 0xffffffff) {
          compressedSize = u64(cv, q, 'entry size');
          q += 8;
        }
        if (localHeaderOffset === 0xffffffff) localHeaderOffset = u64(cv, q, 'entry offset');
      }
      e += 4 + len;
    }
    entries.set(name, { name, method, compressedSize, size, localHeaderOffset });
    p += 46 + nameLen + extraLen + commentLen;
  }
  return { entries, centralDirectoryOffset: cdOffset };
}

/** Absolute offset of the entry's first data byte, from its local header. Refuses a compressed entry. */
export async function entryDataOffset(src: RandomAccess, entry: ZipEntry, signal?: AbortSignal): Promise<number> {
  if (entry.method !== 0) throw new CompressedEntryError(entry.name, entry.method);
  const head = await src.read(entry.localHeaderOffset, Math.min(30, src.size - entry.localHeaderOffset), signal);
  if (head.length < 30 || dv(head).getUint32(0, true) !== LFH_SIG)
    throw new CorruptCheckpointError(`the local header of "${entry.name}" is missing`);
  const start = entry.localHeaderOffset + 30 + dv(head).getUint16(26, true) + dv(head).getUint16(28, true);
  if (start + entry.size > src.size) throw new CorruptCheckpointError(`"${entry.name}" runs past the end of the file`);
  return start;
}

/** The whole (stored) entry. */
export async function readEntry(src: RandomAccess, entry: ZipEntry, signal?: AbortSignal): Promise<Uint8Array> {
  const start = await entryDataOffset(src, entry, signal);
  return src.read(start, entry.size, signal);
}
