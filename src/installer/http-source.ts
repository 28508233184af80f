/**
 * A RandomAccess (src/converter/readers/) over HTTP Range requests to one mirror, backed by the pack store: every
 * fetched byte range is written to a sparse file in the store, so the checkpoint's index and the vision tensors are
 * fetched once, also across restarts of the offscreen document or the browser. A read asks the network only for the
 * parts the store does not hold yet.
 *
 * What a kill loses: as in fetch-file.ts, a range is written in slices of `flushBytes` as it arrives; bytes in flight
 * at a kill are fetched again, stored bytes never.
 */
import {
  CaptionAbortedError,
  MirrorHttpError,
  NetworkError,
  RangeNotSupportedError,
  SourceIntegrityError,
  throwIfAborted,
} from '../shared/errors';
import { mergeRanges, type InstallStore } from '../captioner/pack-store';
import type { RandomAccess } from '../converter/readers/random-access';
import { rangeTotal, sleep } from './fetch-file';
import { ChunkBuffer } from './chunk-buffer';

export interface HttpSourceOptions {
  fetch?: typeof globalThis.fetch;
  signal?: AbortSignal;
  retries?: number;
  retryDelayMs?: number;
  /** bytes buffered before a write to the store (default 1 MiB) */
  flushBytes?: number;
  /** smallest request (default 64 KiB): the readers' many small index reads then cost few round trips */
  minRequest?: number;
  /** the file's size when already known (a probe, or a pinned size); else learnt from the first answer */
  size?: number | null;
  /** called with the number of bytes each time some arrive from the network */
  onFetched?: (bytes: number) => void;
}

/** [start, end) parts of `want` not covered by `have` (sorted, merged). */
export function missingParts(have: ReadonlyArray<[number, number]>, want: [number, number]): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  let pos = want[0];
  for (const [a, b] of have) {
    if (b <= pos) continue;
    if (a >= want[1]) break;
    if (a > pos) out.push([pos, a]);
    pos = Math.max(pos, b);
    if (pos >= want[1]) break;
  }
  if (pos < want[1]) out.push([pos, want[1]]);
  return out;
}

export class HttpRangeSource implements RandomAccess {
  /** bytes fetched from the network by this object (not counting what the store already held) */
  fetchedBytes = 0;

  private constructor(
    readonly url: string,
    readonly size: number,
    private readonly store: InstallStore,
    private readonly storeId: string,
    private readonly path: string,
    private readonly opts: HttpSourceOptions,
    private ranges: Array<[number, number]>,
  ) {}

  /**
   * Open `url`, resuming the sparse file at (storeId, path). Throws RangeNotSupportedError when the server ignores
   * Range, MirrorHttpError / NetworkError as fetch-file does.
   */
  static async open(
    url: string,
    store: InstallStore,
    storeId: string,
    path: string,
    opts: HttpSourceOptions = {},
  ): Promise<HttpRangeSource> {
    const ranges = await store.storedRanges(storeId, path);
    let size = opts.size ?? null;
    const src = new HttpRangeSource(url, size ?? 0, store, storeId, path, opts, ranges);
    if (size === null) {
      // Learn the size from the first Range answer, and keep its bytes: the start of the file is read first anyway.
      // Ask from the first byte we do not hold, so that nothing stored is fetched again.
      const hole = ranges.length && ranges[0][0] === 0 ? ranges[0][1] : 0;
      size = await src.fetchRange(hole, hole + (opts.minRequest ?? 1 << 16), null);
      (src as { size: number }).size = size;
    }
    return src;
  }

  /** The stored ranges of the file (for tests and progress). */
  storedRanges(): ReadonlyArray<[number, number]> {
    return this.ranges;
  }

  async read(offset: number, length: number, signal?: AbortSignal): Promise<Uint8Array> {
    throwIfAborted(signal);
    if (offset < 0 || length < 0 || offset + length > this.size)
      throw new RangeError(`bad read [${offset}, +${length}) of ${this.size} bytes`);
    const min = this.opts.minRequest ?? 1 << 16;
    await this.exclusive(async () => {
      for (const [a, b] of missingParts(this.ranges, [offset, offset + length])) {
        // Widen a small request up to `min`, but only over bytes we do not have, so nothing is fetched twice.
        const next = this.ranges.find(([s]) => s >= b)?.[0] ?? this.size;
        const end = b - a < min ? Math.min(next, a + min, this.size) : b;
        await this.fetchRange(a, Math.max(end, b), this.size, signal);
      }
    });
    return this.store.readRange(this.storeId, this.path, offset, length);
  }

  /** Fetch every byte of `ranges` that the store does not hold yet (the merged ranges from Checkpoint.ranges). */
  async prefetch(ranges: Iterable<[number, number]>, signal?: AbortSignal): Promise<void> {
    const wanted = mergeRanges(ranges);
    await this.exclusive(async () => {
      for (const want of wanted) {
        for (const [a, b] of missingParts(this.ranges, [want[0], Math.min(want[1], this.size)]))
          await this.fetchRange(a, b, this.size, signal);
      }
    });
  }

  /**
   * Readers may read in parallel; two reads that both see the same hole would both fetch it (and the second write
   * would overlap the first). So the "what is missing, fetch it" step runs one at a time.
   */
  private lock: Promise<void> = Promise.resolve();
  private exclusive(fn: () => Promise<void>): Promise<void> {
    const run = this.lock.then(fn);
    this.lock = run.catch(() => undefined);
    return run;
  }

  /** Bytes of `ranges` the store does not hold yet. */
  missingBytes(ranges: Iterable<[number, number]>): number {
    let n = 0;
    for (const want of mergeRanges(ranges)) for (const [a, b] of missingParts(this.ranges, want)) n += b - a;
    return n;
  }

  /**
   * Fetch [start, end) into the store, resuming within the range after a cut. Returns the file's total size from
   * Content-Range. `expectTotal` null: the first request, which learns the size.
   */
  private async fetchRange(start: number, end: number, expectTotal: number | null, signal = this.opts.signal): Promise<number> {
    const fetchFn = this.opts.fetch ?? globalThis.fetch.bind(globalThis);
    const attempts = Math.max(1, this.opts.retries ?? 4);
    const flushBytes = this.opts.flushBytes ?? 1 << 20;
    let pos = start;
    let total = expectTotal;
    let lastError: unknown = null;
    let lastStatus: number | null = null;
    let failures = 0;
    while (pos < end) {
      throwIfAborted(signal);
      if (failures >= attempts) break;
      if (failures > 0) await sleep((this.opts.retryDelayMs ?? 500) * 2 ** (failures - 1), signal);
      let res: Response;
      try {
        res = await fetchFn(this.url, { headers: { Range: `bytes=${pos}-${end - 1}` }, signal, cache: 'no-store' });
      } catch (e) {
        if (signal?.aborted) throw new CaptionAbortedError(signal.reason);
        lastError = e;
        failures++;
        continue;
      }
      if (res.status === 200) {
        void res.body?.cancel().catch(() => undefined);
        throw new RangeNotSupportedError(this.url);
      }
      if (res.status !== 206) {
        void res.body?.cancel().catch(() => undefined);
        if (res.status < 500 && res.status !== 408 && res.status !== 429) throw new MirrorHttpError(this.url, res.status);
        lastStatus = res.status;
        lastError = new Error(`HTTP ${res.status}`);
        failures++;
        continue;
      }
      const got = rangeTotal(res.headers);
      const first = Number(/bytes (\d+)-/.exec(res.headers.get('content-range') ?? '')?.[1] ?? NaN);
      if (total !== null && got !== null && got !== total) {
        // The file behind the URL changed size since we started: the bytes we hold belong to another file.
        void res.body?.cancel().catch(() => undefined);
        throw new SourceIntegrityError(this.url, 'size', total, got);
      }
      total = got ?? total;
      if (first !== pos || total === null) {
        void res.body?.cancel().catch(() => undefined);
        lastError = new Error(`server answered range ${res.headers.get('content-range')} for bytes=${pos}-${end - 1}`);
        failures++;
        continue;
      }
      end = Math.min(end, total);
      const reader = res.body!.getReader();
      const pending = new ChunkBuffer();
      const flush = async () => {
        const buf = pending.take();
        if (!buf) return;
        await this.store.putRange(this.storeId, this.path, pos, buf);
        this.ranges = mergeRanges([...this.ranges, [pos, pos + buf.byteLength]]);
        pos += buf.byteLength;
      };
      let cut = false;
      try {
        for (;;) {
          let chunk: ReadableStreamReadResult<Uint8Array>;
          try {
            chunk = await reader.read();
          } catch (e) {
            if (signal?.aborted) throw new CaptionAbortedError(signal.reason);
            lastError = e;
            cut = true;
            break;
          }
          if (chunk.done) break;
          // Never store past what was asked (a server that sends more would overlap bytes we hold).
          const room = end - pos - pending.bytes;
          const v = chunk.value.byteLength > room ? chunk.value.subarray(0, room) : chunk.value;
          pending.push(v);
          this.fetchedBytes += v.byteLength;
          this.opts.onFetched?.(v.byteLength);
          if (pending.bytes >= flushBytes) await flush();
          if (pos + pending.bytes >= end) break;
        }
      } finally {
        await flush();
        if (pos >= end) void reader.cancel().catch(() => undefined);
      }
      if (cut || pos < end) failures++;
    }
    if (pos < end) {
      if (lastStatus !== null) throw new MirrorHttpError(this.url, lastStatus);
      throw new NetworkError(this.url, `${(lastError as Error)?.message ?? 'connection closed'}, after ${attempts} attempts`, {
        cause: lastError,
      });
    }
    return total ?? end;
  }
}

/** A RandomAccess over a complete file in the store (an input downloaded whole). */
export function storedFileSource(store: InstallStore, storeId: string, path: string, size: number): RandomAccess {
  return {
    size,
    async read(offset, length, signal) {
      throwIfAborted(signal);
      if (offset < 0 || length < 0 || offset + length > size) throw new RangeError(`bad read [${offset}, +${length}) of ${size} bytes`);
      return store.readRange(storeId, path, offset, length);
    },
  };
}
