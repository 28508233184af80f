/**
 * The caption cache: IndexedDB, keyed by the SHA-256 of `${packUrl}|${decoding}|${image key}` (image key = URL, or
 * SHA-256 of the bytes for data:/blob: images), so no page URL is ever stored in the clear.
 *
 * Retention policy (README, "What is stored"):
 *   - a caption is kept at most CACHE_MAX_AGE_MS (30 days) after it was made, however often it is used; expired
 *     entries are never returned and are purged when the worker starts and on every write;
 *   - at most `maxEntries` entries (setting `cacheMaxEntries`, default 5000); least recently used go first;
 *   - "Clear cached captions" (ui-bg-clear-cache) deletes every entry.
 * It survives restarts of the worker and of the browser.
 */
import type { Caption } from '../shared/messages';
import { done, req, walk } from '../captioner/idb';

const DB_NAME = 'alt-text-captions';
/** v2: keys hashed, `madeAt` for the age bound. Upgrading from v1 drops every v1 entry (their keys held URLs). */
const DB_VERSION = 2;
const STORE = 'captions';

/** The longest any caption (and its hashed image key) is kept. */
export const CACHE_MAX_AGE_MS = 30 * 24 * 60 * 60 * 1000;

interface Entry {
  /** SHA-256 (hex) of the logical key */
  key: string;
  value: Caption;
  /** LRU order (microsecond-ish, monotonic) */
  usedAt: number;
  /** When the caption was made (ms since epoch) */
  madeAt: number;
}

export interface CacheOptions {
  maxAgeMs?: number;
  /** The clock (ms since epoch); tests pass a fake one. */
  now?: () => number;
}

export class CaptionCache {
  private db: Promise<IDBDatabase> | null = null;
  /** Monotonic clock for LRU order, so two uses in the same millisecond still order. */
  private tick = 0;
  private readonly maxAgeMs: number;
  private readonly clock: () => number;
  private forgets = 0;

  constructor(
    private maxEntries: () => number,
    private idb: IDBFactory = indexedDB,
    opts: CacheOptions = {},
  ) {
    this.maxAgeMs = opts.maxAgeMs ?? CACHE_MAX_AGE_MS;
    this.clock = opts.now ?? Date.now;
  }

  /**
   * Counts the deletions of captions (a pack's, or all). A caption asked for before one and answered after it was
   * made by what was deleted (the old pack, or before "Clear cached captions"): its writer compares and drops it.
   */
  get generation(): number {
    return this.forgets;
  }

  private open(): Promise<IDBDatabase> {
    if (!this.db) {
      const r = this.idb.open(DB_NAME, DB_VERSION);
      r.onupgradeneeded = () => {
        const db = r.result;
        if (db.objectStoreNames.contains(STORE)) db.deleteObjectStore(STORE);
        const store = db.createObjectStore(STORE, { keyPath: 'key' });
        store.createIndex('usedAt', 'usedAt');
        store.createIndex('madeAt', 'madeAt');
      };
      this.db = req(r);
    }
    return this.db;
  }

  private lru(): number {
    this.tick = Math.max(this.tick + 1, this.clock() * 1000);
    return this.tick;
  }

  private expired(e: Entry): boolean {
    return !(e.madeAt > this.clock() - this.maxAgeMs);
  }

  async get(key: string): Promise<Caption | null> {
    const hashed = await sha256Hex(key);
    const db = await this.open();
    const tx = db.transaction(STORE, 'readwrite');
    const store = tx.objectStore(STORE);
    const entry = (await req(store.get(hashed))) as Entry | undefined;
    let value: Entry['value'] | null = null;
    if (entry && this.expired(entry)) store.delete(hashed);
    else if (entry) {
      store.put({ ...entry, usedAt: this.lru() });
      value = entry.value;
    }
    await done(tx);
    return value;
  }

  async put(key: string, value: Caption): Promise<void> {
    const hashed = await sha256Hex(key);
    const db = await this.open();
    const tx = db.transaction(STORE, 'readwrite');
    const store = tx.objectStore(STORE);
    this.purgeIn(store);
    store.put({
      key: hashed,
      value: keptCaption(value),
      usedAt: this.lru(),
      madeAt: this.clock(),
    } satisfies Entry);
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

  /** Delete every entry past the age bound (in this transaction). */
  private purgeIn(store: IDBObjectStore): void {
    // Oldest first; stop at the first one still within the bound (no IDBKeyRange: it is not on every global).
    const cutoff = this.clock() - this.maxAgeMs;
    const cursorReq = store.index('madeAt').openCursor();
    cursorReq.onsuccess = () => {
      const cursor = cursorReq.result;
      if (!cursor || (cursor.value as Entry).madeAt > cutoff) return;
      cursor.delete();
      cursor.continue();
    };
  }

  /** Delete expired entries; returns how many are left. */
  async purgeExpired(): Promise<number> {
    const db = await this.open();
    const tx = db.transaction(STORE, 'readwrite');
    const store = tx.objectStore(STORE);
    this.purgeIn(store);
    await done(tx);
    return this.count();
  }

  async count(): Promise<number> {
    const db = await this.open();
    return req(db.transaction(STORE).objectStore(STORE).count());
  }

  /** Every stored entry, as stored (for audits and tests). */
  async dump(): Promise<Entry[]> {
    const db = await this.open();
    return req(db.transaction(STORE).objectStore(STORE).getAll()) as Promise<Entry[]>;
  }

  /** Delete the captions one pack made (after an update replaced it: they are not the new pack's); returns how many. */
  async deletePack(packId: string): Promise<number> {
    this.forgets += 1;
    const db = await this.open();
    const tx = db.transaction(STORE, 'readwrite');
    let n = 0;
    await walk(tx.objectStore(STORE).openCursor(), (cursor) => {
      if ((cursor.value as Entry).value.packId !== packId) return;
      cursor.delete();
      n += 1;
    });
    await done(tx);
    return n;
  }

  async clear(): Promise<number> {
    this.forgets += 1;
    const n = await this.count();
    const db = await this.open();
    const tx = db.transaction(STORE, 'readwrite');
    tx.objectStore(STORE).clear();
    await done(tx);
    return n;
  }
}

/**
 * What is kept of a caption: its fields, and nothing a caller may have added. CLIP's verdict is part of the caption, so
 * a caption the model was unsure of is still unsure when the cache serves it (and is not written as a label then).
 */
function keptCaption(c: Caption): Caption {
  const kept: Caption = { text: c.text, packId: c.packId, backend: c.backend, confidence: c.confidence };
  if (c.clipScore !== undefined) kept.clipScore = c.clipScore;
  if (c.uncertain !== undefined) kept.uncertain = c.uncertain;
  return kept;
}

/** SHA-256 of a string, hex; used to key images that have no URL worth keeping (data:, blob:). */
export async function sha256Hex(text: string): Promise<string> {
  const buf = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text));
  return [...new Uint8Array(buf)].map((b) => b.toString(16).padStart(2, '0')).join('');
}
