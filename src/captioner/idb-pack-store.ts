/** The pack store in IndexedDB: what a browser keeps across restarts (see pack-store.ts for the interfaces). */
import type { InstallStore, StoredJob, StoredPackRecord } from './pack-store';
import { gather, mergeRanges, type Chunk } from './stored-chunks';
import { done, req, walk } from './idb';
import { LIMITS } from '../shared/limits';

const DB_NAME = 'clipcap-packs';
/**
 * 1: packs, chunks. 2: jobs (persisted install jobs), blobs (picked files handed between contexts), and a `byEnd`
 * index on chunks so that the stored ranges of a sparse file can be listed from keys alone, without reading bytes.
 * The upgrade only adds stores and an index: packs saved by version 1 stay as they were and keep loading. Their
 * chunks lack the `end` field and so are not in the index; that is fine, because storedRanges is only asked about
 * sparse input files, which are written from version 2 on.
 * 3: files (key [packId, path]): a complete file sealed into one Blob (or, with no Blob, when sealing it failed).
 * Files stored before are sealed the first time readBlob is asked for them, and read from their chunks until then.
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

/**
 * A sealed file: its bytes as one Blob. Its chunks are deleted in the transaction that writes it. Or a file that could
 * not be sealed (`blob` null): when it failed, so that the next starts do not try again (LIMITS.store.sealRetryMs).
 */
interface FileRow {
  packId: string;
  path: string;
  blob: Blob | null;
  failedAt?: number;
}
type SealedRow = FileRow & { blob: Blob };

/**
 * May this file be sealed now: not sealed yet, and not failed lately (trying again would read it whole once more, and
 * most likely fail the same way).
 */
const mayTrySeal = (row: FileRow | null): boolean =>
  !row || (row.blob === null && Date.now() - (row.failedAt ?? 0) >= LIMITS.store.sealRetryMs);

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
    for (const path of Object.keys(rec.complete)) if (mayTrySeal(await this.fileRow(rec.id, path))) await this.seal(rec.id, path);
  }
  private async fileRow(id: string, path: string): Promise<FileRow | null> {
    const db = await this.open();
    return ((await req(db.transaction('files').objectStore('files').get([id, path]))) as FileRow | undefined) ?? null;
  }
  private async sealed(id: string, path: string): Promise<SealedRow | null> {
    const row = await this.fileRow(id, path);
    return row?.blob ? (row as SealedRow) : null;
  }
  /** Best effort: a store too full for even this row tries again at the next start. */
  private async noteSealFailed(id: string, path: string): Promise<void> {
    try {
      const db = await this.open();
      const tx = db.transaction('files', 'readwrite');
      tx.objectStore('files').put({ packId: id, path, blob: null, failedAt: Date.now() } satisfies FileRow);
      await done(tx);
    } catch {
      // Nothing is lost: the file stays in chunks, which every read serves.
    }
  }
  /**
   * Turn a complete file's chunks into one Blob, written and the chunks deleted in one transaction. Best effort: a file
   * that cannot be sealed (the store is too full to hold the Blob beside its chunks for a moment, or its chunks have a
   * hole) stays in chunks, which every read still serves, and is not tried again for a while (mayTrySeal, which the
   * callers ask of the file's row, read once).
   * Returns the stored Blob, or null.
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
        // No chunks: another start sealed it meanwhile. A hole stays until the file is stored anew.
        if (hole) await this.noteSealFailed(id, path);
        return null;
      }
      tx.objectStore('files').put({ packId: id, path, blob: new Blob(parts) } satisfies FileRow);
      chunks.delete(this.fileRange(id, path));
      await done(tx);
    } catch (e) {
      console.warn(`[pack-store] ${id}/${path} stays in chunks:`, e);
      await this.noteSealFailed(id, path);
      return null;
    }
    // Read back: the stored Blob is backed by the database's file, not by the memory the parts above were made in.
    return (await this.sealed(id, path))?.blob ?? null;
  }
  async readBlob(id: string, path: string) {
    const row = await this.fileRow(id, path);
    if (row?.blob) return row.blob;
    // A complete file stored before version 3: sealed now, once. Another start may have sealed it in the meantime
    // (this seal then finds no chunks), so the sealed row is looked up again before the chunks are.
    const rec = await this.getRecord(id);
    if (rec && rec.complete[path] && mayTrySeal(row)) {
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
