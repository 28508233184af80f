/**
 * Durable storage for downloaded packs. IndexedDB, not the Cache API (which rejects chrome-extension:// keys).
 *
 * Files are stored as chunks appended in order, so an interrupted download keeps what it got and resumes from there.
 * A file is marked complete only after its size and SHA-256 were checked against pack.json.
 */
import type { PackManifest } from './pack-format';
import { done, req } from './idb';

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
  /** bytes of `path` stored so far */
  storedBytes(packId: string, path: string): Promise<number>;
  /** append bytes at `offset` (must equal storedBytes) */
  append(packId: string, path: string, offset: number, data: Uint8Array): Promise<void>;
  /** the whole stored file, or null if nothing is stored */
  read(packId: string, path: string): Promise<Uint8Array | null>;
  /** forget a file's bytes */
  clearFile(packId: string, path: string): Promise<void>;
  listRecords(): Promise<StoredPackRecord[]>;
  deletePack(packId: string): Promise<void>;
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

/** In-memory store (Node, tests, or when IndexedDB is unavailable). Nothing survives a reload. */
export class MemoryPackStore implements PackStore {
  private records = new Map<string, StoredPackRecord>();
  private chunks = new Map<string, Uint8Array[]>();
  private key = (id: string, path: string) => `${id}\u0000${path}`;
  async getRecord(id: string) {
    const r = this.records.get(id);
    return r ? structuredClone(r) : null;
  }
  async putRecord(r: StoredPackRecord) {
    this.records.set(r.id, structuredClone(r));
  }
  async storedBytes(id: string, path: string) {
    return (this.chunks.get(this.key(id, path)) ?? []).reduce((n, c) => n + c.byteLength, 0);
  }
  async append(id: string, path: string, offset: number, data: Uint8Array) {
    const have = await this.storedBytes(id, path);
    if (have !== offset) throw new Error(`append at ${offset} but ${have} bytes stored`);
    const k = this.key(id, path);
    this.chunks.set(k, [...(this.chunks.get(k) ?? []), data.slice()]);
  }
  async read(id: string, path: string) {
    const c = this.chunks.get(this.key(id, path));
    return c ? concat(c) : null;
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
}

const DB_NAME = 'clipcap-packs';
const DB_VERSION = 1;


interface ChunkRow {
  packId: string;
  path: string;
  offset: number;
  data: ArrayBuffer;
}

/** IndexedDB-backed store: `packs` (one record per pack id) and `chunks` (key [packId, path, offset]). */
export class IndexedDbPackStore implements PackStore {
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
        if (!db.objectStoreNames.contains('chunks')) db.createObjectStore('chunks', { keyPath: ['packId', 'path', 'offset'] });
      };
      this.db = req(r);
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
  async putRecord(rec: StoredPackRecord) {
    const db = await this.open();
    const tx = db.transaction('packs', 'readwrite');
    tx.objectStore('packs').put(rec);
    await done(tx);
  }
  async storedBytes(id: string, path: string) {
    const db = await this.open();
    const tx = db.transaction('chunks');
    let n = 0;
    // Chunks are contiguous, so the size is the last chunk's offset plus its length.
    const last = (await req(tx.objectStore('chunks').openCursor(this.fileRange(id, path), 'prev'))) as IDBCursorWithValue | null;
    if (last) {
      const row = last.value as ChunkRow;
      n = row.offset + row.data.byteLength;
    }
    return n;
  }
  async append(id: string, path: string, offset: number, data: Uint8Array) {
    const db = await this.open();
    const tx = db.transaction('chunks', 'readwrite');
    const buf: ArrayBuffer = data.byteOffset === 0 && data.byteLength === data.buffer.byteLength && data.buffer instanceof ArrayBuffer ? data.buffer : data.slice().buffer;
    tx.objectStore('chunks').put({ packId: id, path, offset, data: buf } satisfies ChunkRow);
    await done(tx);
  }
  async read(id: string, path: string) {
    // One chunk at a time into a buffer of the final size, so a 350 MB file never needs twice its size in memory.
    const total = await this.storedBytes(id, path);
    if (total === 0) return null;
    const db = await this.open();
    const out = new Uint8Array(total);
    await new Promise<void>((resolve, reject) => {
      const r = db.transaction('chunks').objectStore('chunks').openCursor(this.fileRange(id, path));
      r.onerror = () => reject(r.error);
      r.onsuccess = () => {
        const cur = r.result;
        if (!cur) return resolve();
        const row = cur.value as ChunkRow;
        out.set(new Uint8Array(row.data), row.offset);
        cur.continue();
      };
    });
    return out;
  }
  async clearFile(id: string, path: string) {
    const db = await this.open();
    const tx = db.transaction('chunks', 'readwrite');
    tx.objectStore('chunks').delete(this.fileRange(id, path));
    await done(tx);
  }
  async listRecords() {
    const db = await this.open();
    return (await req(db.transaction('packs').objectStore('packs').getAll())) as StoredPackRecord[];
  }
  async deletePack(id: string) {
    const db = await this.open();
    const tx = db.transaction(['packs', 'chunks'], 'readwrite');
    tx.objectStore('packs').delete(id);
    tx.objectStore('chunks').delete(this.keyRange.bound([id, '', -Infinity], [id, '\uffff', Infinity]));
    await done(tx);
  }
  close() {
    void this.db?.then((d) => d.close());
    this.db = null;
  }
}

/** The default store: IndexedDB where it exists, else memory. */
export function defaultPackStore(): PackStore {
  return typeof globalThis.indexedDB !== 'undefined' ? new IndexedDbPackStore() : new MemoryPackStore();
}
