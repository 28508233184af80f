/**
 * What the installer needs of the pack store (in memory, IndexedDB, and the disk store the benchmarks use): range
 * reads across chunks, sparse files, persisted jobs, picked-file blobs, entries whose id differs from the manifest
 * id, and the IndexedDB upgrade from version 1 that keeps packs.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { IDBFactory, IDBKeyRange, IDBObjectStore } from 'fake-indexeddb';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { listCachedPacks, loadCachedPack } from '../../src/captioner/pack-loader';
import { IndexedDbPackStore, MemoryPackStore, type InstallStore, type StoredPackRecord } from '../../src/captioner/pack-store';
import { LIMITS } from '../../src/shared/limits';
import { writeSyntheticPack } from './helpers/synthetic-pack';
import { DiskPackStore } from '../helpers/disk-pack-store';

const tmp = mkdtempSync(`${tmpdir()}/store-`);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe.each([
  ['memory', (): InstallStore => new MemoryPackStore()],
  ['IndexedDB', (): InstallStore => new IndexedDbPackStore(new IDBFactory(), IDBKeyRange)],
  // the benchmarks' store (test/helpers/disk-pack-store.ts): its bytes on disk
  ['disk', (): InstallStore => new DiskPackStore(mkdtempSync(`${tmp}/disk-`))],
])('%s store', (_n, makeStore) => {
  it('readRange reads any span across chunk boundaries, and refuses a hole', async () => {
    const s = makeStore();
    const data = randomBytes(10_000);
    for (let o = 0; o < data.length; o += 3000) await s.append('e', 'f', o, data.subarray(o, Math.min(o + 3000, data.length)));
    for (const [o, n] of [
      [0, 10_000],
      [2999, 2],
      [3000, 3000],
      [100, 9000],
      [9999, 1],
      [5000, 0],
    ]) {
      expect(Buffer.from(await s.readRange('e', 'f', o, n)).equals(data.subarray(o, o + n))).toBe(true);
    }
    await expect(s.readRange('e', 'f', 9000, 2000)).rejects.toThrow(/not stored/);
  });

  it('sparse files: putRange anywhere, overlap refused, storedRanges merged', async () => {
    const s = makeStore();
    const data = randomBytes(1000);
    await s.putRange('e', 'f', 500, data.subarray(500, 600));
    await s.putRange('e', 'f', 100, data.subarray(100, 200));
    await s.putRange('e', 'f', 200, data.subarray(200, 300));
    await expect(s.putRange('e', 'f', 550, data.subarray(550, 650))).rejects.toThrow(/overlap/);
    await expect(s.putRange('e', 'f', 50, data.subarray(50, 101))).rejects.toThrow(/overlap/);
    expect(await s.storedRanges('e', 'f')).toEqual([
      [100, 300],
      [500, 600],
    ]);
    expect(Buffer.from(await s.readRange('e', 'f', 150, 100)).equals(data.subarray(150, 250))).toBe(true);
    await expect(s.readRange('e', 'f', 250, 100)).rejects.toThrow(/not stored/);
    await s.clearFile('e', 'f');
    expect(await s.storedRanges('e', 'f')).toEqual([]);
  });

  it('jobs and blobs are kept, listed and deleted', async () => {
    const s = makeStore();
    await s.putJob({ id: 'a', phase: 'downloading', inputs: { clip: { done: false } } });
    await s.putJob({ id: 'b', phase: 'ready' });
    expect(await s.getJob('a')).toEqual({ id: 'a', phase: 'downloading', inputs: { clip: { done: false } } });
    expect((await s.listJobs()).map((j) => j.id).sort()).toEqual(['a', 'b']);
    await s.deleteJob('a');
    expect(await s.getJob('a')).toBeNull();
    const blob = new Blob([new Uint8Array([1, 2, 3])]);
    await s.putBlob('k', blob);
    expect(new Uint8Array(await (await s.getBlob('k'))!.arrayBuffer())).toEqual(new Uint8Array([1, 2, 3]));
    await s.deleteBlob('k');
    expect(await s.getBlob('k')).toBeNull();
  });

  it('an entry whose id differs from its manifest id is listed and loaded under the entry id', async () => {
    const s = makeStore();
    const p = writeSyntheticPack(tmp, 'coco', undefined, { vision: 1000, mapper: 500, decoder: 2000 });
    const complete: Record<string, string> = {};
    for (const [path, b] of Object.entries(p.files)) {
      await s.append('coco@v2', path, 0, b);
      complete[path] = p.manifest.files[path === 'tokenizer.json' ? 'tokenizer' : path.replace('.onnx', '')].sha256;
    }
    await s.putRecord({ id: 'coco@v2', manifest: p.manifest, complete, savedAt: 1 });
    expect((await loadCachedPack('coco@v2', { store: s })).manifest.id).toBe('coco');
    expect((await listCachedPacks(s)).map((x) => [x.id, x.complete])).toEqual([['coco@v2', true]]);
  });

  it('readBlob gives a whole file as a Blob, before and after the record calls it complete; every read still serves it', async () => {
    const s = makeStore();
    const data = randomBytes(10_000);
    for (let o = 0; o < data.length; o += 3000) await s.append('e', 'f', o, data.subarray(o, Math.min(o + 3000, data.length)));
    const same = async (b: Blob | null) => b !== null && Buffer.from(await b.arrayBuffer()).equals(data);
    expect(await same(await s.readBlob('e', 'f'))).toBe(true);
    expect(await s.readBlob('e', 'nothing')).toBeNull();
    // Complete: the IndexedDB store seals it into one Blob now. The others keep their chunks; all read alike.
    await s.putRecord({ id: 'e', manifest: {} as StoredPackRecord['manifest'], complete: { f: 'hash' }, savedAt: 1 });
    expect(await same(await s.readBlob('e', 'f'))).toBe(true);
    expect(Buffer.from((await s.read('e', 'f'))!).equals(data)).toBe(true);
    expect(Buffer.from(await s.readRange('e', 'f', 2999, 3002)).equals(data.subarray(2999, 6001))).toBe(true);
    await expect(s.readRange('e', 'f', 9000, 2000)).rejects.toBeInstanceOf(RangeError);
    expect(await s.storedBytes('e', 'f')).toBe(10_000);
    expect(await s.storedRanges('e', 'f')).toEqual([[0, 10_000]]);
    await s.clearFile('e', 'f');
    expect(await s.readBlob('e', 'f')).toBeNull();
    expect(await s.storedBytes('e', 'f')).toBe(0);
    await s.append('e', 'f', 0, data);
    await s.putRecord({ id: 'e', manifest: {} as StoredPackRecord['manifest'], complete: { f: 'hash' }, savedAt: 1 });
    await s.deletePack('e');
    expect(await s.readBlob('e', 'f')).toBeNull();
    expect(await s.storedBytes('e', 'f')).toBe(0);
  });
});

describe('the IndexedDB upgrade from version 1', () => {
  it('keeps the packs saved by version 1, and adds jobs, blobs and sparse ranges', async () => {
    const factory = new IDBFactory();
    const p = writeSyntheticPack(tmp, 'old', undefined, { vision: 1000, mapper: 500, decoder: 2000 });
    // A version-1 database, as the previous release created and filled it.
    await new Promise<void>((resolve, reject) => {
      const r = factory.open('clipcap-packs', 1);
      r.onupgradeneeded = () => {
        r.result.createObjectStore('packs', { keyPath: 'id' });
        r.result.createObjectStore('chunks', { keyPath: ['packId', 'path', 'offset'] });
      };
      r.onerror = () => reject(r.error);
      r.onsuccess = () => {
        const db = r.result;
        const tx = db.transaction(['packs', 'chunks'], 'readwrite');
        const complete: Record<string, string> = {};
        const files: Record<string, { path: string; sha256: string }> = p.manifest.files;
        for (const [key, f] of Object.entries(files)) {
          const b = p.files[f.path];
          tx.objectStore('chunks').put({
            packId: 'old',
            path: f.path,
            offset: 0,
            data: b.buffer.slice(b.byteOffset, b.byteOffset + b.length),
          });
          complete[f.path] = f.sha256;
          void key;
        }
        tx.objectStore('packs').put({ id: 'old', manifest: p.manifest, complete, savedAt: 1 });
        tx.oncomplete = () => (db.close(), resolve());
        tx.onerror = () => reject(tx.error);
      };
    });
    const store = new IndexedDbPackStore(factory, IDBKeyRange);
    const pack = await loadCachedPack('old', { store });
    expect(Buffer.from(pack.files.decoder).equals(p.files['decoder.onnx'])).toBe(true);
    expect(Buffer.from(await store.readRange('old', 'decoder.onnx', 10, 20)).equals(p.files['decoder.onnx'].subarray(10, 30))).toBe(true);
    await store.putJob({ id: 'j' });
    expect(await store.getJob('j')).toEqual({ id: 'j' });
    await store.putRange('new', 'f', 10, new Uint8Array(5));
    expect(await store.storedRanges('new', 'f')).toEqual([[10, 15]]);
  });

  it('seals a complete file of an older version the first time it is asked for as a Blob', async () => {
    const factory = new IDBFactory();
    const p = writeSyntheticPack(tmp, 'old2', undefined, { vision: 1000, mapper: 500, decoder: 2000 });
    const dec = p.files['decoder.onnx'];
    await new Promise<void>((resolve, reject) => {
      const r = factory.open('clipcap-packs', 2);
      r.onupgradeneeded = () => {
        r.result.createObjectStore('packs', { keyPath: 'id' });
        r.result.createObjectStore('chunks', { keyPath: ['packId', 'path', 'offset'] }).createIndex('byEnd', ['packId', 'path', 'end']);
      };
      r.onerror = () => reject(r.error);
      r.onsuccess = () => {
        const db = r.result;
        const tx = db.transaction(['packs', 'chunks'], 'readwrite');
        for (const o of [0, 1000]) {
          const b = dec.subarray(o, o + 1000);
          tx.objectStore('chunks').put({
            packId: 'old2',
            path: 'decoder.onnx',
            offset: o,
            end: o + 1000,
            data: b.buffer.slice(b.byteOffset, b.byteOffset + b.length),
          });
        }
        tx.objectStore('packs').put({
          id: 'old2',
          manifest: p.manifest,
          complete: { 'decoder.onnx': p.manifest.files.decoder.sha256 },
          savedAt: 1,
        });
        tx.oncomplete = () => (db.close(), resolve());
        tx.onerror = () => reject(tx.error);
      };
    });
    const store = new IndexedDbPackStore(factory, IDBKeyRange);
    const rows = async (name: 'chunks' | 'files') => {
      const db = await new Promise<IDBDatabase>(
        (ok) => (factory.open('clipcap-packs').onsuccess = (e) => ok((e.target as IDBOpenDBRequest).result)),
      );
      const n = await new Promise<number>(
        (ok) => (db.transaction(name).objectStore(name).count().onsuccess = (e) => ok((e.target as IDBRequest<number>).result)),
      );
      db.close();
      return n;
    };
    // Two starts at once (two stores on one database): each gets the whole file, whichever sealed it.
    const other = new IndexedDbPackStore(factory, IDBKeyRange);
    const both = await Promise.all([store.readBlob('old2', 'decoder.onnx'), other.readBlob('old2', 'decoder.onnx')]);
    for (const b of both) expect(Buffer.from(await b!.arrayBuffer()).equals(dec)).toBe(true);
    // One Blob now, its two chunks gone in the same transaction.
    expect([await rows('files'), await rows('chunks')]).toEqual([1, 0]);
    expect(Buffer.from(await (await store.readBlob('old2', 'decoder.onnx'))!.arrayBuffer()).equals(dec)).toBe(true);
  });

  it('a file the store is too full to seal stays in chunks, and is not tried again at every start', async () => {
    const factory = new IDBFactory();
    const data = randomBytes(10_000);
    // A full store: writing the sealed Blob fails (Chromium fails the transaction with QuotaExceededError).
    let full = true;
    let tries = 0;
    const put = IDBObjectStore.prototype.put;
    const spy = vi.spyOn(IDBObjectStore.prototype, 'put').mockImplementation(function (this: IDBObjectStore, value, key) {
      if (this.name === 'files' && (value as { blob?: unknown }).blob instanceof Blob) {
        tries += 1;
        if (full) throw new DOMException('The quota has been exceeded.', 'QuotaExceededError');
      }
      return put.call(this, value, key);
    });
    const record: StoredPackRecord = { id: 'e', manifest: {} as StoredPackRecord['manifest'], complete: { f: 'hash' }, savedAt: 1 };
    const same = async (b: Blob | null) => b !== null && Buffer.from(await b.arrayBuffer()).equals(data);
    try {
      const first = new IndexedDbPackStore(factory, IDBKeyRange);
      for (let o = 0; o < data.length; o += 3000) await first.append('e', 'f', o, data.subarray(o, Math.min(o + 3000, data.length)));
      await first.putRecord(record);
      expect(tries).toBe(1);
      expect(await same(await first.readBlob('e', 'f'))).toBe(true);
      // Later starts (a new store on the same database) write the record again and read the file: no new try.
      for (let start = 0; start < 3; start++) {
        const again = new IndexedDbPackStore(factory, IDBKeyRange);
        await again.putRecord(record);
        expect(await same(await again.readBlob('e', 'f'))).toBe(true);
        expect(Buffer.from((await again.read('e', 'f'))!).equals(data)).toBe(true);
        expect(await again.storedBytes('e', 'f')).toBe(10_000);
      }
      expect(tries).toBe(1);
      // A day later, with room again, it is sealed: one Blob, and every read still serves the file.
      full = false;
      vi.useFakeTimers({ toFake: ['Date'] });
      vi.setSystemTime(Date.now() + LIMITS.store.sealRetryMs + 1);
      const later = new IndexedDbPackStore(factory, IDBKeyRange);
      expect(await same(await later.readBlob('e', 'f'))).toBe(true);
      expect(tries).toBe(2);
      expect(await same(await later.readBlob('e', 'f'))).toBe(true);
      expect(await later.storedRanges('e', 'f')).toEqual([[0, 10_000]]);
      expect(tries).toBe(2);
    } finally {
      vi.useRealTimers();
      spy.mockRestore();
    }
  });
});
