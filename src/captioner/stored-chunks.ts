/**
 * Byte ranges of a stored file, shared by both pack stores: files are kept as chunks (appended in order, or written at
 * any offset for a sparse input file), and these put them back together.
 */
export function concat(parts: Uint8Array[]): Uint8Array {
  const total = parts.reduce((n, p) => n + p.byteLength, 0);
  const out = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.byteLength;
  }
  return out;
}

/** Merge sorted-or-not [start, end) ranges into sorted, non-touching ones. */
export function mergeRanges(ranges: Iterable<[number, number]>): Array<[number, number]> {
  const sorted = [...ranges].filter(([a, b]) => b > a).sort((x, y) => x[0] - y[0]);
  const out: Array<[number, number]> = [];
  for (const [a, b] of sorted) {
    const last = out.at(-1);
    if (last && a <= last[1]) last[1] = Math.max(last[1], b);
    else out.push([a, b]);
  }
  return out;
}

export interface Chunk {
  offset: number;
  data: Uint8Array;
}

/** Copy `[offset, offset+length)` out of offset-sorted chunks; throws on a hole. */
export function gather(chunks: Iterable<Chunk>, offset: number, length: number, what: string): Uint8Array {
  const out = new Uint8Array(length);
  let filled = offset; // next byte we need
  const end = offset + length;
  for (const c of chunks) {
    const cEnd = c.offset + c.data.byteLength;
    if (cEnd <= filled) continue;
    if (c.offset > filled) break;
    const take = Math.min(cEnd, end) - filled;
    out.set(c.data.subarray(filled - c.offset, filled - c.offset + take), filled - offset);
    filled += take;
    if (filled >= end) break;
  }
  if (filled < end) throw new RangeError(`${what}: bytes ${filled}-${end} are not stored`);
  return out;
}

export function checkNoOverlap(chunks: Iterable<Chunk>, offset: number, length: number, what: string) {
  for (const c of chunks) {
    if (c.offset < offset + length && offset < c.offset + c.data.byteLength) {
      throw new RangeError(`${what}: bytes ${offset}-${offset + length} overlap stored bytes ${c.offset}-${c.offset + c.data.byteLength}`);
    }
  }
}
