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
import { done, req, walk } from './idb';

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

function concat(parts: Uint8Array[]): Uint8Array {
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

interface Chunk {
  offset: number;
  data: Uint8Array;
}

/** Copy `[offset, offset+length)` out of offset-sorted chunks; throws on a hole. */
function gather(chunks: Iterable<Chunk>, offset: number, length: number, what: string): Uint8Array {
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

function checkNoOverlap(chunks: Iterable<Chunk>, offset: number, length: number, what: string) {
  for (const c of chunks) {
    if (c.offset < offset + length && offset < c.offset + c.data.byteLength) {
      throw new RangeError(`${what}: bytes ${offset}-${offset + length} overlap stored bytes ${c.offset}-${c.offset + c.data.byteLength}`);
    }
  }
}

/** In-memory store (Node, tests, or when IndexedDB is unavailable). Nothing survives a reload. */
export class MemoryPackStore implements InstallStore {
  private records = new Map<string, StoredPackRecord>();
  /** per file, chunks sorted by offset (contiguous for appended files, with holes for sparse ones) */
  private chunks = new Map<string, Chunk[]>();
  private jobs = new Map<string, StoredJob>();
  private blobs = new Map<string, Blob>();
  private key = (id: string, path: string) => `${id}\u0000${path}`;
  async getRecord(id: string) {
    const r = this.records.get(id);
    return r ? structuredClone(r) : null;
  }
  async putRecord(r: StoredPackRecord) {
    this.records.set(r.id, structuredClone(r));
  }
  async storedBytes(id: string, path: string) {
    const last = this.chunks.get(this.key(id, path))?.at(-1);
    return last ? last.offset + last.data.byteLength : 0;
  }
  async append(id: string, path: string, offset: number, data: Uint8Array) {
    const have = await this.storedBytes(id, path);
    if (have !== offset) throw new Error(`append at ${offset} but ${have} bytes stored`);
    const k = this.key(id, path);
    this.chunks.set(k, [...(this.chunks.get(k) ?? []), { offset, data: Uint8Array.prototype.slice.call(data) }]);
  }
  async read(id: string, path: string) {
    const c = this.chunks.get(this.key(id, path));
    return c ? concat(c.map((x) => x.data)) : null;
  }
  async readBlob(id: string, path: string) {
    const c = this.chunks.get(this.key(id, path));
    return c ? new Blob(c.map((x) => x.data as Uint8Array<ArrayBuffer>)) : null;
  }
  async readRange(id: string, path: string, offset: number, length: number) {
    return gather(this.chunks.get(this.key(id, path)) ?? [], offset, length, `${id}/${path}`);
  }
  async putRange(id: string, path: string, offset: number, data: Uint8Array) {
    const k = this.key(id, path);
    const list = this.chunks.get(k) ?? [];
    checkNoOverlap(list, offset, data.byteLength, `${id}/${path}`);
    this.chunks.set(
      k,
      [...list, { offset, data: Uint8Array.prototype.slice.call(data) }].sort((a, b) => a.offset - b.offset),
    );
  }
  async storedRanges(id: string, path: string) {
    return mergeRanges(
      (this.chunks.get(this.key(id, path)) ?? []).map((c) => [c.offset, c.offset + c.data.byteLength] as [number, number]),
    );
  }
  async clearFile(id: string, path: string) {
    this.chunks.delete(this.key(id, path));
  }
  async listRecords() {
    return [...this.records.values()].map((r) => structuredClone(r));
  }
  async deletePack(id: string) {
    this.records.delete(id);
    for (const k of [...this.chunks.keys()]) if (k.startsWith(`${id}\u0000`)) this.chunks.delete(k);
  }
  async getJob<T extends StoredJob>(id: string) {
    const j = this.jobs.get(id);
    return j ? (structuredClone(j) as T) : null;
  }
  async putJob(job: StoredJob) {
    this.jobs.set(job.id, structuredClone(job));
  }
  async deleteJob(id: string) {
    this.jobs.delete(id);
  }
  async listJobs<T extends StoredJob>() {
    return [...this.jobs.values()].map((j) => structuredClone(j) as T);
  }
  async putBlob(key: string, blob: Blob) {
    this.blobs.set(key, blob);
  }
  async getBlob(key: string) {
    return this.blobs.get(key) ?? null;
  }
  async deleteBlob(key: string) {
    this.blobs.delete(key);
  }
}

const DB_NAME = 'clipcap-packs';
/**
 * 1: packs, chunks. 2: jobs (persisted install jobs), blobs (picked files handed between contexts), and a `byEnd`
 * index on chunks so that the stored ranges of a sparse file can be listed from keys alone, without reading bytes.
 * The upgrade only adds stores and an index: packs saved by version 1 stay as they were and keep loading. Their
 * chunks lack the `end` field and so are not in the index; that is fine, because storedRanges is only asked about
 * sparse input files, which are written from version 2 on.
 * 3: files (key [packId, path]): a complete file sealed into one Blob. Files stored before are sealed the first time
 * readBlob is asked for them, and read from their chunks until then.
 */
const DB_VERSION = 3;

interface ChunkRow {
  packId: string;
  path: string;
  offset: number;
  /** offset + data.byteLength; written from DB version 2 on (indexed by `byEnd`) */
  end?: number;
  data: ArrayBuffer;
}

/** A sealed file: its bytes as one Blob. Its chunks are deleted in the transaction that writes it. */
interface FileRow {
  packId: string;
  path: string;
  blob: Blob;
}

/**
 * The exact bytes as an ArrayBuffer of their own. Copies with Uint8Array.prototype.slice: a Node Buffer's own slice()
 * is a view on the same (often pooled, 8 KiB) memory, whose .buffer would store bytes that are not the file's.
 */
const toArrayBuffer = (data: Uint8Array): ArrayBuffer =>
  data.byteOffset === 0 && data.byteLength === data.buffer.byteLength && data.buffer instanceof ArrayBuffer
    ? data.buffer
    : Uint8Array.prototype.slice.call(data).buffer;

/**
 * IndexedDB-backed store: `packs` (one record per entry id), `chunks` (key [packId, path, offset]), `files` (sealed
 * files, key [packId, path]), `jobs`, `blobs`.
 *
 * Why sealed files: a start used to walk a cursor over a file's 1-4 MiB chunks and copy them into one buffer on the
 * offscreen document's thread, then post that buffer to the engine's frame. Measured in Chromium here (200 MB, load
 * about 2): the cursor walk took 2.4-2.6 s, getAll in batches of 16 chunks 1.7-1.8 s, one stored Blob's arrayBuffer()
 * 0.7-1.2 s; and a Blob crosses to the frame as a handle, so the frame reads it while this thread stays free.
 */
export class IndexedDbPackStore implements InstallStore {
  private db: Promise<IDBDatabase> | null = null;
  constructor(
    private readonly factory: IDBFactory = globalThis.indexedDB,
    private readonly keyRange: typeof IDBKeyRange = globalThis.IDBKeyRange,
    private readonly dbName = DB_NAME,
  ) {}

  private open(): Promise<IDBDatabase> {
    if (!this.db) {
      if (!this.factory) throw new Error('IndexedDB is not available in this context');
      const r = this.factory.open(this.dbName, DB_VERSION);
      r.onupgradeneeded = () => {
        const db = r.result;
        if (!db.objectStoreNames.contains('packs')) db.createObjectStore('packs', { keyPath: 'id' });
        const chunks = db.objectStoreNames.contains('chunks')
          ? r.transaction!.objectStore('chunks')
          : db.createObjectStore('chunks', { keyPath: ['packId', 'path', 'offset'] });
        if (!chunks.indexNames.contains('byEnd')) chunks.createIndex('byEnd', ['packId', 'path', 'end']);
        if (!db.objectStoreNames.contains('jobs')) db.createObjectStore('jobs', { keyPath: 'id' });
        if (!db.objectStoreNames.contains('blobs')) db.createObjectStore('blobs');
        if (!db.objectStoreNames.contains('files')) db.createObjectStore('files', { keyPath: ['packId', 'path'] });
      };
      // Another tab holding version 1 open would block the upgrade forever; closing on versionchange lets it go on.
      this.db = req(r).then((db) => ((db.onversionchange = () => db.close()), db));
    }
    return this.db;
  }

  private fileRange(id: string, path: string) {
    return this.keyRange.bound([id, path, -Infinity], [id, path, Infinity]);
  }

  async getRecord(id: string) {
    const db = await this.open();
    const r = (await req(db.transaction('packs').objectStore('packs').get(id))) as StoredPackRecord | undefined;
    return r ?? null;
  }
  /** The record, then every file it names complete is sealed (see seal; a failure there loses nothing). */
  async putRecord(rec: StoredPackRecord) {
    const db = await this.open();
    const tx = db.transaction('packs', 'readwrite');
    tx.objectStore('packs').put(rec);
    await done(tx);
    for (const path of Object.keys(rec.complete)) if (!(await this.sealed(rec.id, path))) await this.seal(rec.id, path);
  }
  private async sealed(id: string, path: string): Promise<FileRow | null> {
    const db = await this.open();
    return ((await req(db.transaction('files').objectStore('files').get([id, path]))) as FileRow | undefined) ?? null;
  }
  /**
   * Turn a complete file's chunks into one Blob, written and the chunks deleted in one transaction. Best effort: a file
   * that cannot be sealed (the store is too full to hold the Blob beside its chunks for a moment, or its chunks have a
   * hole) stays in chunks, which every read still serves. Returns the stored Blob, or null.
   */
  private async seal(id: string, path: string): Promise<Blob | null> {
    const db = await this.open();
    try {
      const tx = db.transaction(['chunks', 'files'], 'readwrite');
      const chunks = tx.objectStore('chunks');
      const parts: Blob[] = [];
      let end = 0;
      let hole = false;
      // One small Blob per chunk: each chunk's buffer can go as soon as it is copied, so the file is never in memory whole.
      await walk(chunks.openCursor(this.fileRange(id, path)), (cur) => {
        const row = cur.value as ChunkRow;
        hole = row.offset !== end;
        if (hole) return false;
        parts.push(new Blob([row.data]));
        end += row.data.byteLength;
      });
      if (hole || parts.length === 0) {
        tx.abort();
        await done(tx).catch(() => undefined);
        return null;
      }
      tx.objectStore('files').put({ packId: id, path, blob: new Blob(parts) } satisfies FileRow);
      chunks.delete(this.fileRange(id, path));
      await done(tx);
    } catch (e) {
      console.warn(`[pack-store] ${id}/${path} stays in chunks:`, e);
      return null;
    }
    // Read back: the stored Blob is backed by the database's file, not by the memory the parts above were made in.
    return (await this.sealed(id, path))?.blob ?? null;
  }
  async readBlob(id: string, path: string) {
    const row = await this.sealed(id, path);
    if (row) return row.blob;
    // A complete file stored before version 3: sealed now, once. Another start may have sealed it in the meantime
    // (this seal then finds no chunks), so the sealed row is looked up again before the chunks are.
    const rec = await this.getRecord(id);
    if (rec && rec.complete[path]) {
      const blob = (await this.seal(id, path)) ?? (await this.sealed(id, path))?.blob;
      if (blob) return blob;
    }
    const db = await this.open();
    const parts: ArrayBuffer[] = [];
    await walk(db.transaction('chunks').objectStore('chunks').openCursor(this.fileRange(id, path)), (cur) => {
      parts.push((cur.value as ChunkRow).data);
    });
    return parts.length ? new Blob(parts) : null;
  }
  async storedBytes(id: string, path: string) {
    const sealed = await this.sealed(id, path);
    if (sealed) return sealed.blob.size;
    const db = await this.open();
    const tx = db.transaction('chunks');
    let n = 0;
    // Chunks are contiguous, so the size is the last chunk's offset plus its length.
    const last = await req<IDBCursorWithValue | null>(tx.objectStore('chunks').openCursor(this.fileRange(id, path), 'prev'));
    if (last) {
      const row = last.value as ChunkRow;
      n = row.offset + row.data.byteLength;
    }
    return n;
  }
  async append(id: string, path: string, offset: number, data: Uint8Array) {
    const db = await this.open();
    const tx = db.transaction('chunks', 'readwrite');
    tx.objectStore('chunks').put({ packId: id, path, offset, end: offset + data.byteLength, data: toArrayBuffer(data) } satisfies ChunkRow);
    await done(tx);
  }
  async putRange(id: string, path: string, offset: number, data: Uint8Array) {
    const db = await this.open();
    const tx = db.transaction('chunks', 'readwrite');
    const store = tx.objectStore('chunks');
    // Overlap check and write in one transaction, so two writers can't both pass the check.
    const prev = await req<IDBCursorWithValue | null>(
      store.openCursor(this.keyRange.bound([id, path, -Infinity], [id, path, offset + data.byteLength], false, true), 'prev'),
    );
    if (prev) {
      const row = prev.value as ChunkRow;
      if (row.offset + row.data.byteLength > offset) {
        tx.abort();
        throw new RangeError(
          `${id}/${path}: bytes ${offset}-${offset + data.byteLength} overlap stored bytes ${row.offset}-${row.offset + row.data.byteLength}`,
        );
      }
    }
    store.put({ packId: id, path, offset, end: offset + data.byteLength, data: toArrayBuffer(data) } satisfies ChunkRow);
    await done(tx);
  }
  async storedRanges(id: string, path: string) {
    const sealed = await this.sealed(id, path);
    if (sealed) return sealed.blob.size ? [[0, sealed.blob.size] as [number, number]] : [];
    const db = await this.open();
    const out: Array<[number, number]> = [];
    // A key cursor on the index yields [packId, path, end] and the primary key [packId, path, offset]: no bytes read.
    await walk(db.transaction('chunks').objectStore('chunks').index('byEnd').openKeyCursor(this.fileRange(id, path)), (cur) => {
      out.push([(cur.primaryKey as [string, string, number])[2], (cur.key as [string, string, number])[2]]);
    });
    return mergeRanges(out);
  }
  async readRange(id: string, path: string, offset: number, length: number) {
    const sealed = await this.sealed(id, path);
    if (sealed) {
      if (offset + length > sealed.blob.size)
        throw new RangeError(`${id}/${path}: bytes ${sealed.blob.size}-${offset + length} are not stored`);
      return new Uint8Array(await sealed.blob.slice(offset, offset + length).arrayBuffer());
    }
    const db = await this.open();
    const store = db.transaction('chunks').objectStore('chunks');
    const chunks: Chunk[] = [];
    // The chunk that holds `offset` starts at or before it: find it with one reverse step, then walk forward.
    const first = await req<IDBCursorWithValue | null>(
      store.openCursor(this.keyRange.bound([id, path, -Infinity], [id, path, offset]), 'prev'),
    );
    const from = first ? (first.value as ChunkRow).offset : offset;
    if (length > 0) {
      await walk(store.openCursor(this.keyRange.bound([id, path, from], [id, path, offset + length], false, true)), (cur) => {
        const row = cur.value as ChunkRow;
        chunks.push({ offset: row.offset, data: new Uint8Array(row.data) });
      });
    }
    return gather(chunks, offset, length, `${id}/${path}`);
  }
  async read(id: string, path: string) {
    const sealed = await this.sealed(id, path);
    if (sealed) return new Uint8Array(await sealed.blob.arrayBuffer());
    // One chunk at a time into a buffer of the final size, so a 350 MB file never needs twice its size in memory.
    const total = await this.storedBytes(id, path);
    if (total === 0) return null;
    const db = await this.open();
    const out = new Uint8Array(total);
    await walk(db.transaction('chunks').objectStore('chunks').openCursor(this.fileRange(id, path)), (cur) => {
      const row = cur.value as ChunkRow;
      out.set(new Uint8Array(row.data), row.offset);
    });
    return out;
  }
  async clearFile(id: string, path: string) {
    const db = await this.open();
    const tx = db.transaction(['chunks', 'files'], 'readwrite');
    tx.objectStore('chunks').delete(this.fileRange(id, path));
    tx.objectStore('files').delete([id, path]);
    await done(tx);
  }
  async listRecords() {
    const db = await this.open();
    return (await req(db.transaction('packs').objectStore('packs').getAll())) as StoredPackRecord[];
  }
  async deletePack(id: string) {
    const db = await this.open();
    const tx = db.transaction(['packs', 'chunks', 'files'], 'readwrite');
    tx.objectStore('packs').delete(id);
    tx.objectStore('chunks').delete(this.keyRange.bound([id, '', -Infinity], [id, '\uffff', Infinity]));
    tx.objectStore('files').delete(this.keyRange.bound([id, ''], [id, '\uffff']));
    await done(tx);
  }
  async getJob<T extends StoredJob>(id: string) {
    const db = await this.open();
    return ((await req(db.transaction('jobs').objectStore('jobs').get(id))) as T | undefined) ?? null;
  }
  async putJob(job: StoredJob) {
    const db = await this.open();
    const tx = db.transaction('jobs', 'readwrite');
    tx.objectStore('jobs').put(job);
    await done(tx);
  }
  async deleteJob(id: string) {
    const db = await this.open();
    const tx = db.transaction('jobs', 'readwrite');
    tx.objectStore('jobs').delete(id);
    await done(tx);
  }
  async listJobs<T extends StoredJob>() {
    const db = await this.open();
    return (await req(db.transaction('jobs').objectStore('jobs').getAll())) as T[];
  }
  async putBlob(key: string, blob: Blob) {
    const db = await this.open();
    const tx = db.transaction('blobs', 'readwrite');
    tx.objectStore('blobs').put(blob, key);
    await done(tx);
  }
  async getBlob(key: string) {
    const db = await this.open();
    return ((await req(db.transaction('blobs').objectStore('blobs').get(key))) as Blob | undefined) ?? null;
  }
  async deleteBlob(key: string) {
    const db = await this.open();
    const tx = db.transaction('blobs', 'readwrite');
    tx.objectStore('blobs').delete(key);
    await done(tx);
  }
  close() {
    void this.db?.then((d) => d.close());
    this.db = null;
  }
}

/** The default store: IndexedDB where it exists, else memory. */
export function defaultPackStore(): InstallStore {
  return typeof globalThis.indexedDB !== 'undefined' ? new IndexedDbPackStore() : new MemoryPackStore();
}
