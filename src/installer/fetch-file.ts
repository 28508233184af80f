/**
 * The one downloader: a file from a URL into the pack store, resumable with HTTP Range, retried with exponential
 * back-off, flushed to the store in small chunks. src/captioner/pack-loader.ts (packs) and the installer (published
 * checkpoints) both use it, so resume, retry and error rules are written once.
 *
 * Why not @huggingface/hub's downloadFile/WebBlob: it fetches into memory (a Blob) and has no notion of resuming into
 * our store after a browser restart, of per-mirror fallback, or of the byte-exact flush points the install job needs;
 * it also probes with GET+Range against huggingface.co only. The header facts it relies on (X-Linked-Size,
 * X-Linked-Etag, Content-Range totals) are read here the same way (see probeSource); where a browser hides them,
 * the package's pathsInfo asks the Hub's API (hub-api.ts).
 *
 * What a kill loses: bytes are buffered and written to the store every `flushBytes` (1 MiB by default). Bytes in
 * flight at the moment of a kill (at most one buffer, plus what the network stack held) are fetched again on resume;
 * a byte that reached the store is never fetched again, because the next request starts at `storedBytes`.
 */
import { CaptionAbortedError, MirrorHttpError, NetworkError, isQuotaError, throwIfAborted } from '../shared/errors';
import type { InstallStore, PackStore } from '../captioner/pack-store';
import { Sha256Stream } from '../converter/sha256-stream';
import { ChunkBuffer } from './chunk-buffer';
import { hubFileFacts, parseHubUrl } from './hub-api';

export interface FetchFileOptions {
  /** injectable for tests; defaults to globalThis.fetch */
  fetch?: typeof globalThis.fetch;
  signal?: AbortSignal;
  /** attempts before giving up on network errors and 5xx (default 4) */
  retries?: number;
  /** first back-off delay in ms, doubled each retry (default 500) */
  retryDelayMs?: number;
  /** bytes buffered before a write to the store (default 1 MiB): the most a kill can lose */
  flushBytes?: number;
  /** the size the file must have; null when unknown (then the server's own total is used) */
  expectedBytes: number | null;
  /** stored bytes of this file so far, and its total when known */
  onProgress?: (stored: number, total: number | null) => void;
}

export interface FetchFileResult {
  /** bytes stored */
  bytes: number;
  /** the size the server declared (Content-Range total, or Content-Length of a whole answer); null if it never did */
  serverTotal: number | null;
}

export const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(new CaptionAbortedError(signal.reason));
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => (clearTimeout(t), reject(new CaptionAbortedError(signal.reason))), { once: true });
  });

/**
 * A retryable failure inside one attempt (network, 5xx, short body); the last one is reported. Not a named error of
 * the registry (src/shared/errors): it never leaves fetchFile, which reports it as a NetworkError or MirrorHttpError.
 */
class Retryable extends Error {
  constructor(
    message: string,
    readonly status: number | null,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

const isRetryableStatus = (s: number) => s >= 500 || s === 408 || s === 429;

/** The total size from `Content-Range: bytes a-b/total`, or null. */
export function rangeTotal(h: Headers): number | null {
  const m = /\/(\d+)\s*$/.exec(h.get('content-range') ?? '');
  return m ? Number(m[1]) : null;
}

/**
 * Download (or resume) `url` into `store` at (storeId, path). Resolves once the server has sent all it has: the file
 * then holds `expectedBytes` bytes, or fewer/more when the server's file differs (the caller's size check says so;
 * retrying could not help). Throws MirrorHttpError (4xx at once; 5xx after retries), NetworkError (after retries),
 * the store's quota error as it is (no retries: a full disk does not get better; the caller cleans up), or
 * CaptionAbortedError when `signal` aborts (bytes stored so far are kept).
 */
export async function fetchFile(
  url: string,
  store: PackStore,
  storeId: string,
  path: string,
  opts: FetchFileOptions,
): Promise<FetchFileResult> {
  const fetchFn = opts.fetch ?? globalThis.fetch.bind(globalThis);
  const attempts = Math.max(1, opts.retries ?? 4);
  const flushBytes = opts.flushBytes ?? 1 << 20;
  const expected = opts.expectedBytes;
  let serverTotal: number | null = null;
  let last: Retryable | null = null;
  for (let attempt = 0; attempt < attempts; attempt++) {
    throwIfAborted(opts.signal);
    if (attempt > 0) await sleep((opts.retryDelayMs ?? 500) * 2 ** (attempt - 1), opts.signal);
    let have = await store.storedBytes(storeId, path);
    if (expected !== null && have > expected) {
      await store.clearFile(storeId, path);
      have = 0;
    }
    if (expected !== null && have === expected) return { bytes: have, serverTotal };
    opts.onProgress?.(have, expected ?? serverTotal);
    try {
      // No Range header from 0: a plain GET is a CORS-simple request and works on servers without Range support.
      const headers: Record<string, string> = have > 0 ? { Range: `bytes=${have}-` } : {};
      let res: Response;
      try {
        res = await fetchFn(url, { headers, signal: opts.signal, cache: 'no-store' });
      } catch (e) {
        if (opts.signal?.aborted) throw e;
        throw new Retryable(e instanceof Error ? e.message : String(e), null, { cause: e });
      }
      if (res.status === 416 && have > 0) {
        // The server's file is no longer than what we hold.
        serverTotal = rangeTotal(res.headers) ?? serverTotal;
        return { bytes: have, serverTotal };
      }
      if (!res.ok) {
        void res.body?.cancel().catch(() => undefined);
        if (!isRetryableStatus(res.status)) throw new MirrorHttpError(url, res.status);
        throw new Retryable(`HTTP ${res.status} ${res.statusText}`.trim(), res.status);
      }
      if (res.status === 206) {
        serverTotal = rangeTotal(res.headers) ?? serverTotal;
        const start = Number(/bytes (\d+)-/.exec(res.headers.get('content-range') ?? '')?.[1] ?? NaN);
        if (start !== have) {
          void res.body?.cancel().catch(() => undefined);
          await store.clearFile(storeId, path);
          throw new Retryable(`server answered range ${res.headers.get('content-range')} for bytes=${have}-`, null);
        }
      } else {
        const len = Number(res.headers.get('content-length') ?? NaN);
        if (Number.isFinite(len)) serverTotal = len;
        if (have > 0) {
          // 200 to a Range request: the server ignores Range and sends the whole file; start over with it.
          await store.clearFile(storeId, path);
          have = 0;
          opts.onProgress?.(0, expected ?? serverTotal);
        }
      }
      const declared = Number(res.headers.get('content-length') ?? NaN);
      if (!res.body) throw new Retryable('response has no body', null);
      const reader = res.body.getReader();
      const pending = new ChunkBuffer();
      let received = 0;
      let tooLong = false;
      const flush = async () => {
        const buf = pending.take();
        if (!buf) return;
        await store.append(storeId, path, have, buf);
        have += buf.byteLength;
      };
      try {
        for (;;) {
          let chunk: ReadableStreamReadResult<Uint8Array>;
          try {
            chunk = await reader.read();
          } catch (e) {
            if (opts.signal?.aborted) throw e;
            throw new Retryable(`connection closed after ${have + pending.bytes} bytes`, null, { cause: e });
          }
          if (chunk.done) break;
          pending.push(chunk.value);
          received += chunk.value.byteLength;
          if (expected !== null && have + pending.bytes > expected) {
            tooLong = true; // the size check reports it; no point in taking more
            break;
          }
          if (pending.bytes >= flushBytes) await flush();
          opts.onProgress?.(have + pending.bytes, expected ?? serverTotal);
        }
      } finally {
        // Keep what arrived, also on abort and on a cut connection, so the next attempt resumes after it.
        await flush();
        if (tooLong) void reader.cancel().catch(() => undefined);
      }
      opts.onProgress?.(have, expected ?? serverTotal);
      if (tooLong) return { bytes: have, serverTotal };
      const want = expected ?? serverTotal;
      if (want !== null && have === want) return { bytes: have, serverTotal };
      // The server sent its whole answer and the file is still short: retrying cannot help.
      if (Number.isFinite(declared) && received >= declared) return { bytes: have, serverTotal };
      if (want === null && !Number.isFinite(declared)) return { bytes: have, serverTotal };
      throw new Retryable(`connection closed after ${have} of ${want ?? '?'} bytes`, null);
    } catch (e) {
      if (opts.signal?.aborted) throw new CaptionAbortedError(opts.signal.reason);
      if (e instanceof Retryable) {
        last = e;
        continue;
      }
      if (isQuotaError(e)) throw e;
      throw e;
    }
  }
  if (last?.status != null) throw new MirrorHttpError(url, last.status);
  throw new NetworkError(url, `${last?.message ?? 'unknown error'}, after ${attempts} attempts`, { cause: last?.cause ?? last });
}

/** SHA-256 of a stored file, read in slices with readRange (a 600 MB file never sits in memory at once). */
export async function hashStoredFile(
  store: InstallStore,
  storeId: string,
  path: string,
  size: number,
  signal?: AbortSignal,
  slice = 4 << 20,
): Promise<string> {
  const h = new Sha256Stream();
  for (let o = 0; o < size; o += slice) {
    throwIfAborted(signal);
    h.update(await store.readRange(storeId, path, o, Math.min(slice, size - o)));
  }
  return h.hex();
}

/** SHA-256 of a Blob (a picked file), read in slices. */
export async function hashBlob(blob: Blob, signal?: AbortSignal, slice = 4 << 20): Promise<string> {
  const h = new Sha256Stream();
  for (let o = 0; o < blob.size; o += slice) {
    throwIfAborted(signal);
    h.update(new Uint8Array(await blob.slice(o, Math.min(blob.size, o + slice)).arrayBuffer()));
  }
  return h.hex();
}

/** What a server says about a file before we download it. */
export interface SourceFacts {
  /** X-Linked-Size (the Hub, on its redirect), or the Content-Range total */
  size: number | null;
  /** a SHA-256 the server declares: X-Linked-Etag (the Hub sets it to the LFS oid), or a 64-hex ETag */
  sha256: string | null;
  /** X-Repo-Commit: the commit a Hub revision resolved to */
  commit: string | null;
  /** the server answered the probe's Range with 206 */
  ranges: boolean;
}

const hexEtag = (v: string | null) => {
  const s = (v ?? '').replace(/^W\//, '').replace(/"/g, '').trim().toLowerCase();
  return /^[0-9a-f]{64}$/.test(s) ? s : null;
};

/**
 * Ask a mirror about a file with one `GET Range: bytes=0-0` (huggingface.js found HEAD unreliable behind caches).
 * First with `redirect: 'manual'`, because the Hub puts X-Linked-Size/Etag and X-Repo-Commit on its 302, not on the
 * CDN's answer. In a browser a manual redirect is opaque (no headers readable), so there the facts come from the
 * followed answer only: the size from Content-Range, and no declared SHA-256 unless the final server sends one.
 * The result says what was readable; nothing is guessed.
 */
export async function probeSource(
  url: string,
  opts: { fetch?: typeof globalThis.fetch; signal?: AbortSignal; retries?: number; retryDelayMs?: number },
): Promise<SourceFacts> {
  // Network errors and 5xx are retried with back-off like downloads; a 4xx is the mirror's final answer.
  const attempts = Math.max(1, opts.retries ?? 4);
  for (let attempt = 0; ; attempt++) {
    if (attempt > 0) await sleep((opts.retryDelayMs ?? 500) * 2 ** (attempt - 1), opts.signal);
    try {
      return await probeOnce(url, opts);
    } catch (e) {
      const retryable = e instanceof NetworkError || (e instanceof MirrorHttpError && isRetryableStatus(e.status));
      if (!retryable || attempt + 1 >= attempts) throw e;
    }
  }
}

async function probeOnce(url: string, opts: { fetch?: typeof globalThis.fetch; signal?: AbortSignal }): Promise<SourceFacts> {
  const fetchFn = opts.fetch ?? globalThis.fetch.bind(globalThis);
  const facts = await probeHeaders(url, fetchFn, opts.signal);
  const hub = facts.sha256 === null ? parseHubUrl(url) : null;
  if (hub) {
    // In a browser the Hub's redirect headers are out of reach; its API states the same facts.
    try {
      const api = await hubFileFacts(hub, (input, init) => fetchFn(input, { ...init, signal: opts.signal, cache: 'no-store' }));
      if (api && (facts.size === null || facts.size === api.size)) Object.assign(facts, api);
    } catch (e) {
      if (opts.signal?.aborted) throw new CaptionAbortedError(opts.signal.reason);
      console.warn(`[alt-text] the Hub's API did not describe ${url}; its size is checked, not its hash:`, e);
    }
  }
  return facts;
}

async function probeHeaders(url: string, fetchFn: typeof globalThis.fetch, signal: AbortSignal | undefined): Promise<SourceFacts> {
  const facts: SourceFacts = { size: null, sha256: null, commit: null, ranges: false };
  const init = { headers: { Range: 'bytes=0-0' }, signal: signal, cache: 'no-store' as const };
  let res: Response;
  try {
    res = await fetchFn(url, { ...init, redirect: 'manual' });
  } catch (e) {
    if (signal?.aborted) throw new CaptionAbortedError(signal.reason);
    throw new NetworkError(url, e instanceof Error ? e.message : String(e), { cause: e });
  }
  const read = (h: Headers) => {
    const linkedSize = Number(h.get('x-linked-size') ?? NaN);
    if (Number.isSafeInteger(linkedSize)) facts.size = linkedSize;
    facts.sha256 = hexEtag(h.get('x-linked-etag')) ?? facts.sha256;
    facts.commit = h.get('x-repo-commit') ?? facts.commit;
  };
  read(res.headers);
  if (
    res.status >= 300 &&
    res.status < 400 &&
    facts.size !== null &&
    facts.sha256 !== null &&
    /bytes/i.test(res.headers.get('accept-ranges') ?? '')
  ) {
    // The Hub's redirect said it all (size, hash, Range support): no byte of the file is needed to know it.
    void res.body?.cancel().catch(() => undefined);
    facts.ranges = true;
    return facts;
  }
  if (res.type === 'opaqueredirect' || (res.status >= 300 && res.status < 400)) {
    void res.body?.cancel().catch(() => undefined);
    try {
      res = await fetchFn(url, init);
    } catch (e) {
      if (signal?.aborted) throw new CaptionAbortedError(signal.reason);
      throw new NetworkError(url, e instanceof Error ? e.message : String(e), { cause: e });
    }
    read(res.headers);
  } else {
    // Not a redirect: the answer itself is the file (an ETag that is a SHA-256 counts here only).
    facts.sha256 = facts.sha256 ?? hexEtag(res.headers.get('etag'));
  }
  void res.body?.cancel().catch(() => undefined);
  if (!res.ok) throw new MirrorHttpError(url, res.status);
  if (res.status === 206) {
    facts.ranges = true;
    facts.size = facts.size ?? rangeTotal(res.headers);
  } else {
    const len = Number(res.headers.get('content-length') ?? NaN);
    if (facts.size === null && Number.isSafeInteger(len)) facts.size = len;
  }
  return facts;
}

/**
 * Bytes per second over a sliding window, and the time left. A window (not the average since the start) so that the
 * estimate follows a connection that got faster or slower, and a pause does not drag it down for ever after.
 */
export class RateMeter {
  private samples: Array<[number, number]> = [];
  constructor(
    private readonly windowMs = 5000,
    private readonly now: () => number = () => Date.now(),
  ) {}
  /** record the total bytes done at this moment */
  add(bytes: number) {
    const t = this.now();
    this.samples.push([t, bytes]);
    while (this.samples.length > 2 && t - this.samples[0][0] > this.windowMs) this.samples.shift();
  }
  reset() {
    this.samples = [];
  }
  get rate(): number {
    if (this.samples.length < 2) return 0;
    const [t0, b0] = this.samples[0];
    const [t1, b1] = this.samples[this.samples.length - 1];
    return t1 > t0 ? Math.max(0, ((b1 - b0) * 1000) / (t1 - t0)) : 0;
  }
  eta(bytes: number, total: number): number | null {
    const r = this.rate;
    return r > 0 && total >= bytes ? Math.ceil((total - bytes) / r) : null;
  }
}
