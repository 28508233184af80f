/**
 * Durable storage for downloaded packs. IndexedDB, not the Cache API (which rejects chrome-extension:// keys).
 *
 * Files are stored as chunks appended in order, so an interrupted download keeps what it got and resumes from there.
 * A file is marked complete only after its size and SHA-256 were checked against pack.json. In IndexedDB a complete
 * file is then sealed: its chunks become one Blob, which a start hands to the engine's frame unread (readBlob).
 * Input files of an install job may be sparse (only the byte ranges a converter needs, fetched with Range requests);
 * see InstallStore.
 */
import type { PackManifest } from './pack-format';
import { IndexedDbPackStore } from './idb-pack-store';
import { MemoryPackStore } from './memory-pack-store';

export { IndexedDbPackStore, MemoryPackStore };
export { mergeRanges } from './stored-chunks';

export interface StoredPackRecord {
  id: string;
  manifest: PackManifest;
  /** path -> sha256 of the complete, verified file */
  complete: Record<string, string>;
  savedAt: number;
}

export interface CachedPackInfo {
  id: string;
  name: string;
  version: string;
  precision: string;
  /** bytes stored (complete and partial files) */
  bytes: number;
  /** bytes of all files pack.json lists */
  totalBytes: number;
  /** every file downloaded and verified */
  complete: boolean;
  savedAt: number;
}

export interface PackStore {
  getRecord(packId: string): Promise<StoredPackRecord | null>;
  putRecord(record: StoredPackRecord): Promise<void>;
  /** end of the last stored chunk: for a file written in order, the bytes stored so far */
  storedBytes(packId: string, path: string): Promise<number>;
  /** append bytes at `offset` (must equal storedBytes) */
  append(packId: string, path: string, offset: number, data: Uint8Array): Promise<void>;
  /** the whole stored file, or null if nothing is stored */
  read(packId: string, path: string): Promise<Uint8Array | null>;
  /**
   * The whole stored file as a Blob, or null if nothing is stored. No byte is read here: whoever needs the bytes reads
   * the Blob (a start hands it to the engine's frame, which reads it off the offscreen document's thread).
   */
  readBlob(packId: string, path: string): Promise<Blob | null>;
  /** forget a file's bytes */
  clearFile(packId: string, path: string): Promise<void>;
  listRecords(): Promise<StoredPackRecord[]>;
  deletePack(packId: string): Promise<void>;
}

/** A persisted install job (src/installer/): plain structured-cloneable data, keyed by `id`. */
export interface StoredJob {
  id: string;
  [key: string]: unknown;
}

/**
 * What the installer needs on top of PackStore. Kept a separate interface (rather than widening PackStore) so that
 * the many small PackStore fakes in tests keep compiling; both stores below implement it.
 *
 * Store ids ("entries") are free strings and need not equal the manifest id inside the record: the installer writes
 * a new version of a pack beside the old one under another entry id and switches its pointer atomically.
 */
export interface InstallStore extends PackStore {
  /**
   * `length` bytes of `path` from `offset`, reading only the chunks that overlap (never the whole file). Throws if
   * any byte of the range is not stored.
   */
  readRange(packId: string, path: string, offset: number, length: number): Promise<Uint8Array>;
  /** write bytes at any offset of a sparse file; the range must not overlap bytes already stored */
  putRange(packId: string, path: string, offset: number, data: Uint8Array): Promise<void>;
  /** the stored byte ranges [start, end) of a file, merged and sorted */
  storedRanges(packId: string, path: string): Promise<Array<[number, number]>>;
  getJob<T extends StoredJob = StoredJob>(id: string): Promise<T | null>;
  putJob(job: StoredJob): Promise<void>;
  deleteJob(id: string): Promise<void>;
  listJobs<T extends StoredJob = StoredJob>(): Promise<T[]>;
  /** a Blob (e.g. a File the user picked on an extension page) kept for another context to read */
  putBlob(key: string, blob: Blob): Promise<void>;
  getBlob(key: string): Promise<Blob | null>;
  deleteBlob(key: string): Promise<void>;
}

/** The default store: IndexedDB where it exists, else memory. */
export function defaultPackStore(): InstallStore {
  return typeof globalThis.indexedDB !== 'undefined' ? new IndexedDbPackStore() : new MemoryPackStore();
}
