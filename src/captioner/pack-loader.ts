/**
 * Loading a model pack: from a base URL (http(s) or the extension's own files) or from files the user picked.
 *
 * Every file is checked against pack.json (byte size, then SHA-256) when it is downloaded or picked; a stored file,
 * verified when it was stored, is checked by size at every start. Downloads go into a PackStore in
 * chunks, so an interrupted download resumes with an HTTP Range request; failed attempts are retried with back-off.
 */
import {
  CaptionAbortedError,
  MirrorHttpError,
  NetworkError,
  PackDownloadError,
  PackFileMissingError,
  PackFormatError,
  PackIntegrityError,
  PackNotCachedError,
  PackSizeError,
  StorageQuotaError,
  isQuotaError,
  throwIfAborted,
} from '../shared/errors';
import { manifestFiles, parseManifest, type AnyPackFileKey, type PackFiles, type PackManifest } from './pack-format';
import { defaultPackStore, type CachedPackInfo, type PackStore, type StoredPackRecord } from './pack-store';
import { fetchFile, sleep } from '../installer/fetch-file';

export interface LoadedPack {
  manifest: PackManifest;
  /** verified bytes of each file */
  files: PackFiles<Uint8Array>;
  source: 'network' | 'cache' | 'files';
}

export interface PackProgress {
  packId: string;
  /** file path inside the pack, or "pack.json" */
  file: string;
  phase: 'manifest' | 'download' | 'cached' | 'verify' | 'done';
  fileBytes: number;
  fileTotal: number;
  /** overall, over every file pack.json lists */
  bytes: number;
  total: number;
}

export interface LoadPackOptions {
  store?: PackStore;
  onProgress?: (p: PackProgress) => void;
  /** pack.json is read and valid: called before any file is (the engine's frame can start on it) */
  onManifest?: (m: PackManifest) => void;
  /**
   * One file is ready (its hash checked when downloaded, its size when stored): called as soon as it is, in the pack's
   * file order. A downloaded file comes as its bytes, which the callee may take (transfer its buffer); a stored one as
   * its Blob, unread, so that the bytes are read where they are used (the engine's frame) and not on this thread. The
   * returned pack's entry is then empty.
   */
  onFile?: (key: AnyPackFileKey, data: Uint8Array | Blob) => void;
  signal?: AbortSignal;
  /** injectable for tests; defaults to globalThis.fetch */
  fetch?: typeof globalThis.fetch;
  /** attempts per file before giving up (default 4) */
  retries?: number;
  /** first back-off delay in ms, doubled each retry (default 500) */
  retryDelayMs?: number;
  /** bytes buffered before a chunk is written to the store (default 4 MiB): the most an interrupted download loses */
  chunkBytes?: number;
}

export async function sha256Hex(data: Uint8Array): Promise<string> {
  const d = await crypto.subtle.digest('SHA-256', data as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(d), (b) => b.toString(16).padStart(2, '0')).join('');
}

/** Check one file's size and hash against its manifest entry; throw the named error that says which is wrong. */
export async function verifyFile(path: string, data: Uint8Array, entry: { bytes: number; sha256: string }): Promise<void> {
  checkSize(path, data, entry);
  const got = await sha256Hex(data);
  if (got !== entry.sha256) throw new PackIntegrityError(path, entry.sha256, got);
}

/**
 * A stored file whose hash was verified when it was stored (the record's `complete` names that hash): its size is
 * checked at every start, its hash is not. Hashing the full-size pack again at every browser start cost seconds before
 * the first label; the store only marks a file complete after verifying it.
 */
function checkSize(path: string, data: Uint8Array | Blob, entry: { bytes: number }): void {
  const size = data instanceof Blob ? data.size : data.byteLength;
  if (size !== entry.bytes) throw new PackSizeError(path, entry.bytes, size);
}

/** A stored file handed to `onFile` as its Blob has this (empty) entry in the returned pack, as a moved buffer has. */
const EMPTY = new Uint8Array(0);

/**
 * The order a stored pack's files are read in: the tokenizers first, then the graphs as pack.json lists them (vision
 * first). The engine's frame receives each file as it is read (offscreen/engine-host.ts); the tokenizers, a megabyte or
 * two, are made there while the first graph is still being read.
 */
function readOrder(files: ReturnType<typeof manifestFiles>): ReturnType<typeof manifestFiles> {
  const small = (k: AnyPackFileKey) => k === 'tokenizer' || k === 'textTokenizer';
  return [...files.filter((f) => small(f.key)), ...files.filter((f) => !small(f.key))];
}

const joinUrl = (base: string, path: string) => new URL(path, base.endsWith('/') ? base : `${base}/`).toString();

/**
 * Download (or resume) one file into the store with the shared downloader (src/installer/fetch-file.ts), which owns
 * resume, retries and back-off; here its errors become the pack loader's PackDownloadError naming the pack file.
 * Returns once the server sent all it has; the caller's verifyFile says whether that is the right file.
 */
async function downloadFile(
  url: string,
  packId: string,
  path: string,
  entry: { bytes: number },
  store: PackStore,
  opts: LoadPackOptions,
  progress: (fileBytes: number) => void,
): Promise<void> {
  try {
    await fetchFile(url, store, packId, path, {
      fetch: opts.fetch,
      signal: opts.signal,
      retries: opts.retries ?? 4,
      retryDelayMs: opts.retryDelayMs,
      flushBytes: opts.chunkBytes ?? 4 << 20,
      expectedBytes: entry.bytes,
      onProgress: (n) => progress(n),
    });
  } catch (e) {
    if (e instanceof MirrorHttpError) throw new PackDownloadError(path, `HTTP ${e.status}`, { cause: e });
    if (e instanceof NetworkError) throw new PackDownloadError(path, (e.cause as Error)?.message ?? e.message, { cause: e.cause ?? e });
    throw e; // aborts, and the store's quota error (the caller turns it into StorageQuotaError after cleaning up)
  }
}

async function fetchManifest(baseUrl: string, opts: LoadPackOptions): Promise<PackManifest> {
  const fetchFn = opts.fetch ?? globalThis.fetch.bind(globalThis);
  const url = joinUrl(baseUrl, 'pack.json');
  let lastError: unknown;
  for (let attempt = 0; attempt < (opts.retries ?? 4); attempt++) {
    throwIfAborted(opts.signal);
    if (attempt > 0) await sleep((opts.retryDelayMs ?? 500) * 2 ** (attempt - 1), opts.signal);
    try {
      const res = await fetchFn(url, { signal: opts.signal, cache: 'no-store' });
      if (res.status === 404) throw new PackFormatError(`There is no pack.json at ${url}. Check the pack address.`);
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      return parseManifest(await res.text());
    } catch (e) {
      if (e instanceof PackFormatError) throw e;
      if (opts.signal?.aborted) throw new CaptionAbortedError(opts.signal.reason);
      lastError = e;
    }
  }
  throw new PackDownloadError('pack.json', (lastError as Error)?.message ?? 'unknown error', { cause: lastError });
}

/**
 * The store is full. Leave nothing half-written: a pack that is not completely stored is removed (its partial files
 * would only hold space the user needs), a complete one is kept as it was. Other packs are never touched.
 */
async function quotaExceeded(
  store: PackStore,
  manifest: PackManifest,
  rec: StoredPackRecord | null,
  cause: unknown,
): Promise<StorageQuotaError> {
  const files = manifestFiles(manifest);
  // Before this load got its own record (the very first write failed), the stored one says what is there.
  let known = rec;
  if (!known) {
    try {
      known = await store.getRecord(manifest.id);
    } catch (e) {
      console.warn(`[pack-loader] could not read the record of "${manifest.id}" after a quota error`, e);
    }
  }
  const complete = known !== null && files.every((f) => known.complete[f.path] === f.sha256);
  if (!complete) {
    try {
      await store.deletePack(manifest.id);
    } catch (e) {
      // Deleting frees space, so it should not fail for quota; if it does, the error the user sees is still the quota.
      console.warn(`[pack-loader] could not remove the partial pack "${manifest.id}" after a quota error`, e);
    }
  }
  return new StorageQuotaError(
    manifest.id,
    files.reduce((n, f) => n + f.bytes, 0),
    { cause },
  );
}

/** A stored file that failed its check: its bytes go, and the record no longer calls it complete. */
async function forget(store: PackStore, rec: StoredPackRecord, path: string): Promise<void> {
  await store.clearFile(rec.id, path);
  delete rec.complete[path];
  await store.putRecord(rec);
}

/** Bring the store's record in line with `manifest`: files whose hash changed are forgotten. */
async function reconcileRecord(store: PackStore, manifest: PackManifest): Promise<StoredPackRecord> {
  const old = await store.getRecord(manifest.id);
  const rec: StoredPackRecord = { id: manifest.id, manifest, complete: {}, savedAt: Date.now() };
  if (old) {
    const oldByPath = new Map(manifestFiles(old.manifest).map((f) => [f.path, f]));
    for (const f of manifestFiles(manifest)) {
      const prev = oldByPath.get(f.path);
      if (prev && prev.sha256 === f.sha256 && prev.bytes === f.bytes) {
        if (old.complete[f.path] === f.sha256) rec.complete[f.path] = f.sha256;
      } else {
        await store.clearFile(manifest.id, f.path);
      }
    }
    for (const f of manifestFiles(old.manifest)) {
      if (!manifestFiles(manifest).some((n) => n.path === f.path)) await store.clearFile(manifest.id, f.path);
    }
  }
  await store.putRecord(rec);
  return rec;
}

/**
 * Load a pack from `baseUrl` (the folder holding pack.json), using and filling the store.
 * Files already in the store are not downloaded again (their size is checked; their hash was when they were stored).
 */
export async function loadPackFromUrl(baseUrl: string, opts: LoadPackOptions = {}): Promise<LoadedPack> {
  const store = opts.store ?? defaultPackStore();
  const manifest = await fetchManifest(baseUrl, opts);
  const files = manifestFiles(manifest);
  const total = files.reduce((n, f) => n + f.bytes, 0);
  const doneBytes = new Map<string, number>();
  const emit = (file: string, phase: PackProgress['phase'], fileBytes: number, fileTotal: number) => {
    doneBytes.set(file, fileBytes);
    let bytes = 0;
    for (const v of doneBytes.values()) bytes += v;
    opts.onProgress?.({ packId: manifest.id, file, phase, fileBytes, fileTotal, bytes: Math.min(bytes, total), total });
  };
  opts.onProgress?.({ packId: manifest.id, file: 'pack.json', phase: 'manifest', fileBytes: 0, fileTotal: 0, bytes: 0, total });
  opts.onManifest?.(manifest);
  let rec: StoredPackRecord | null = null;
  const out: Partial<Record<AnyPackFileKey, Uint8Array>> = {};
  try {
    rec = await reconcileRecord(store, manifest);
    const stored = rec.complete;
    // All stored (a start, not an install): the engine's order. A download keeps pack.json's, graphs before tokenizers.
    for (const f of files.every((x) => stored[x.path] === x.sha256) ? readOrder(files) : files) {
      throwIfAborted(opts.signal);
      const cached = rec.complete[f.path] === f.sha256;
      if (cached && opts.onFile) {
        const blob = await store.readBlob(manifest.id, f.path);
        if (blob) {
          try {
            checkSize(f.path, blob, f);
          } catch (e) {
            // Never keep a bad file: the next attempt downloads it afresh.
            await forget(store, rec, f.path);
            throw e;
          }
          out[f.key] = EMPTY;
          emit(f.path, 'cached', f.bytes, f.bytes);
          opts.onFile(f.key, blob);
          continue;
        }
      }
      if (!cached) {
        await downloadFile(joinUrl(baseUrl, f.path), manifest.id, f.path, f, store, opts, (n) => emit(f.path, 'download', n, f.bytes));
      }
      const data = (await store.read(manifest.id, f.path)) ?? new Uint8Array(0);
      emit(f.path, 'verify', data.byteLength, f.bytes);
      try {
        if (cached) checkSize(f.path, data, f);
        else await verifyFile(f.path, data, f);
      } catch (e) {
        // Never keep a bad file: the next attempt downloads it afresh.
        await forget(store, rec, f.path);
        throw e;
      }
      out[f.key] = data;
      emit(f.path, cached ? 'cached' : 'done', f.bytes, f.bytes);
      // Handed on before it is recorded: recording seals the file (IndexedDbPackStore.seal), seconds for a large one,
      // and the engine need not wait for that.
      opts.onFile?.(f.key, data);
      if (!cached) {
        rec.complete[f.path] = f.sha256;
        await store.putRecord(rec);
      }
    }
  } catch (e) {
    if (isQuotaError(e)) throw await quotaExceeded(store, manifest, rec, e);
    throw e;
  }
  return { manifest, files: out as PackFiles<Uint8Array>, source: 'network' };
}

/** Load a completely downloaded pack from the store alone (offline). */
export async function loadCachedPack(
  packId: string,
  opts: Pick<LoadPackOptions, 'store' | 'onProgress' | 'onManifest' | 'onFile'> = {},
): Promise<LoadedPack> {
  const store = opts.store ?? defaultPackStore();
  const rec = await store.getRecord(packId);
  if (!rec) throw new PackNotCachedError(packId);
  const manifest = parseManifest(rec.manifest);
  const files = readOrder(manifestFiles(manifest));
  const total = files.reduce((n, f) => n + f.bytes, 0);
  let bytes = 0;
  const out: Partial<Record<AnyPackFileKey, Uint8Array>> = {};
  // Every file is stored, or none is read: the frame is not started on a pack that cannot be opened.
  if (files.some((f) => rec.complete[f.path] !== f.sha256)) throw new PackNotCachedError(packId);
  opts.onManifest?.(manifest);
  for (const f of files) {
    // Handed on, a file is its Blob, unread; returned, its bytes.
    const data = opts.onFile ? await store.readBlob(packId, f.path) : await store.read(packId, f.path);
    if (!data) throw new PackNotCachedError(packId);
    checkSize(f.path, data, f);
    out[f.key] = data instanceof Blob ? EMPTY : data;
    bytes += f.bytes;
    opts.onProgress?.({ packId, file: f.path, phase: 'cached', fileBytes: f.bytes, fileTotal: f.bytes, bytes, total });
    opts.onFile?.(f.key, data);
  }
  return { manifest, files: out as PackFiles<Uint8Array>, source: 'cache' };
}

/** A picked file: a File (with webkitRelativePath for a picked folder) or anything with a name and arrayBuffer(). */
export interface PickedFile {
  name: string;
  webkitRelativePath?: string;
  size?: number;
  arrayBuffer(): Promise<ArrayBuffer>;
}

/**
 * Load a pack from files the user picked (a folder, or pack.json plus its files). Verified like a download, and
 * saved to the store when one is given, so that it can be loaded again later.
 */
export async function loadPackFromFiles(
  picked: Iterable<PickedFile> | ArrayLike<PickedFile>,
  opts: { store?: PackStore; onProgress?: LoadPackOptions['onProgress'] } = {},
): Promise<LoadedPack> {
  const list = Array.from(picked as ArrayLike<PickedFile>);
  // Match by the path relative to the folder holding pack.json, falling back to the bare name.
  const rel = (f: PickedFile) => (f.webkitRelativePath ? f.webkitRelativePath.split('/').slice(1).join('/') : f.name) || f.name;
  const manifestFile = list.find((f) => f.name === 'pack.json');
  if (!manifestFile) throw new PackFileMissingError('pack.json', 'the picked files');
  const manifest = parseManifest(new TextDecoder().decode(await manifestFile.arrayBuffer()));
  const files = manifestFiles(manifest);
  const total = files.reduce((n, f) => n + f.bytes, 0);
  let bytes = 0;
  const out: Partial<Record<AnyPackFileKey, Uint8Array>> = {};
  for (const f of files) {
    const file = list.find((p) => rel(p) === f.path) ?? list.find((p) => p.name === f.path.split('/').pop());
    if (!file) throw new PackFileMissingError(f.path, 'the picked files');
    if (file.size !== undefined && file.size !== f.bytes) throw new PackSizeError(f.path, f.bytes, file.size);
    const data = new Uint8Array(await file.arrayBuffer());
    opts.onProgress?.({
      packId: manifest.id,
      file: f.path,
      phase: 'verify',
      fileBytes: data.byteLength,
      fileTotal: f.bytes,
      bytes: bytes + data.byteLength,
      total,
    });
    await verifyFile(f.path, data, f);
    out[f.key] = data;
    bytes += f.bytes;
    opts.onProgress?.({ packId: manifest.id, file: f.path, phase: 'done', fileBytes: f.bytes, fileTotal: f.bytes, bytes, total });
  }
  if (opts.store) {
    try {
      const rec = await reconcileRecord(opts.store, manifest);
      for (const f of files) {
        await opts.store.clearFile(manifest.id, f.path);
        await opts.store.append(manifest.id, f.path, 0, out[f.key]!);
        rec.complete[f.path] = f.sha256;
      }
      await opts.store.putRecord(rec);
    } catch (e) {
      // `rec.complete` ran ahead of the stored record here: nothing of this import counts as saved.
      if (isQuotaError(e)) throw await quotaExceeded(opts.store, manifest, null, e);
      throw e;
    }
  }
  return { manifest, files: out as PackFiles<Uint8Array>, source: 'files' };
}

/**
 * Where a pack's files are read from: the one description of a pack source, from the options page's import to the
 * engine host.
 *   url     a pack folder on the web (or in the extension's own files): downloaded, verified and kept in the store
 *   stored  an entry of the pack store, complete (an installed model, an imported folder, a finished download)
 *   files   files the user picked (a folder, or pack.json with its files): verified, and put in the store if one is given
 */
export type PackLocation =
  | { kind: 'url'; url: string }
  | { kind: 'stored'; storeId: string }
  | { kind: 'files'; files: Iterable<PickedFile> | ArrayLike<PickedFile> };

/** Load a pack from wherever it is. */
export function loadPack(from: PackLocation, opts: LoadPackOptions = {}): Promise<LoadedPack> {
  switch (from.kind) {
    case 'url':
      return loadPackFromUrl(from.url, opts);
    case 'stored':
      return loadCachedPack(from.storeId, opts);
    case 'files':
      return loadPackFromFiles(from.files, { store: opts.store, onProgress: opts.onProgress });
  }
}

/** Packs in the store, complete or partly downloaded. */
export async function listCachedPacks(store: PackStore = defaultPackStore()): Promise<CachedPackInfo[]> {
  const out: CachedPackInfo[] = [];
  for (const rec of await store.listRecords()) {
    const files = manifestFiles(rec.manifest);
    let bytes = 0;
    for (const f of files) bytes += await store.storedBytes(rec.id, f.path);
    out.push({
      id: rec.id,
      name: rec.manifest.name,
      version: rec.manifest.version,
      precision: rec.manifest.precision,
      bytes,
      totalBytes: files.reduce((n, f) => n + f.bytes, 0),
      complete: files.every((f) => rec.complete[f.path] === f.sha256),
      savedAt: rec.savedAt,
    });
  }
  return out.sort((a, b) => a.id.localeCompare(b.id));
}

/** Remove a pack and all its bytes from the store. */
export async function deleteCachedPack(packId: string, store: PackStore = defaultPackStore()): Promise<void> {
  await store.deletePack(packId);
}
