/**
 * The caption cache: IndexedDB, keyed by `${packId}|${decoding}|${image key}` (image key = URL, or SHA-256 of the
 * bytes for data:/blob: images). Least recently used entries go first once `maxEntries` is passed. It survives
 * restarts of the worker and of the browser, and can be cleared.
 */
import type { CaptionResult } from '../shared/messages';
import { done, req } from '../captioner/idb';

const DB_NAME = 'alt-text-captions';
const STORE = 'captions';

interface Entry {
  key: string;
  value: Omit<CaptionResult, 'cached'>;
  usedAt: number;
}


export class CaptionCache {
  private db: Promise<IDBDatabase> | null = null;
  /** Monotonic clock for LRU order, so two uses in the same millisecond still order. */
  private tick = 0;

  constructor(
    private maxEntries: () => number,
    private idb: IDBFactory = indexedDB,
  ) {}

  private open(): Promise<IDBDatabase> {
    this.db ??= new Promise((resolve, reject) => {
      const r = this.idb.open(DB_NAME, 1);
      r.onupgradeneeded = () => {
        const store = r.result.createObjectStore(STORE, { keyPath: 'key' });
        store.createIndex('usedAt', 'usedAt');
      };
      r.onsuccess = () => resolve(r.result);
      r.onerror = () => reject(r.error);
    });
    return this.db;
  }

  private now(): number {
    this.tick = Math.max(this.tick + 1, Date.now() * 1000);
    return this.tick;
  }

  async get(key: string): Promise<Omit<CaptionResult, 'cached'> | null> {
    const db = await this.open();
    const tx = db.transaction(STORE, 'readwrite');
    const store = tx.objectStore(STORE);
    const entry = (await req(store.get(key))) as Entry | undefined;
    if (entry) store.put({ ...entry, usedAt: this.now() });
    await done(tx);
    return entry?.value ?? null;
  }

  async put(key: string, value: Omit<CaptionResult, 'cached'>): Promise<void> {
    const db = await this.open();
    const tx = db.transaction(STORE, 'readwrite');
    const store = tx.objectStore(STORE);
    store.put({ key, value, usedAt: this.now() } satisfies Entry);
    const count = await req(store.count());
    let excess = count - Math.max(0, this.maxEntries());
    if (excess > 0) {
      const cursorReq = store.index('usedAt').openCursor();
      cursorReq.onsuccess = () => {
        const cursor = cursorReq.result;
        if (!cursor || excess <= 0) return;
        cursor.delete();
        excess -= 1;
        cursor.continue();
      };
    }
    await done(tx);
  }

  async count(): Promise<number> {
    const db = await this.open();
    return req(db.transaction(STORE).objectStore(STORE).count());
  }

  async clear(): Promise<number> {
    const n = await this.count();
    const db = await this.open();
    const tx = db.transaction(STORE, 'readwrite');
    tx.objectStore(STORE).clear();
    await done(tx);
    return n;
  }
}

/** SHA-256 of a string, hex; used to key images that have no URL worth keeping (data:, blob:). */
export async function sha256Hex(text: string): Promise<string> {
  const buf = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text));
  return [...new Uint8Array(buf)].map((b) => b.toString(16).padStart(2, '0')).join('');
}
