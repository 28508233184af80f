/**
 * Pack problems (issue 7): a wrong hash, a truncated file, a missing tokenizer.json, an unknown format version, a
 * download interrupted halfway (resumed with Range, or restarted when the server ignores Range, then verified), and a
 * full disk. Each ends in a named error that says what to do, or in a verified pack; the store never keeps a bad or
 * half-written file, and packs already cached stay usable. (Basic download/cache/resume cases: pack-loader.test.ts.)
 */
import { unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb';
import { describe, expect, it } from 'vitest';
import {
  PackDownloadError,
  PackIntegrityError,
  PackSizeError,
  StorageQuotaError,
  UnsupportedPackVersionError,
} from '../../src/shared/errors';
import { listCachedPacks, loadCachedPack, loadPackFromFiles, loadPackFromUrl } from '../../src/captioner/pack-loader';
import { IndexedDbPackStore, type PackStore, type StoredPackRecord } from '../../src/captioner/pack-store';
import { fromWire, toWire } from '../../src/shared/errors';
import { describeStatus } from '../../src/shared/status-text';
import { sha256, writeSyntheticPack } from './helpers/synthetic-pack';
import { fast, usePackServer } from './helpers/pack-server';

const packs = usePackServer('pack-problems-');
const idb = () => new IndexedDbPackStore(new IDBFactory(), IDBKeyRange);
const url = (id: string) => `${packs.server.url}/packs/${id}/`;
const requestsFor = (path: string) => packs.server.log.filter((l) => l.path.endsWith(path));

/** Every byte the store holds for a pack, file by file. */
async function storedSizes(store: PackStore, id: string, paths: string[]) {
  return Object.fromEntries(await Promise.all(paths.map(async (p) => [p, await store.storedBytes(id, p)] as const)));
}
const PATHS = ['vision.onnx', 'mapper.onnx', 'decoder.onnx', 'tokenizer.json'];

describe('corrupt and incomplete packs', () => {
  it('a wrong hash is refused, the bad bytes are not kept, and a fixed server then gives a verified pack', async () => {
    const good = writeSyntheticPack(packs.root, 'hash');
    const store = idb();
    writeFileSync(join(good.dir, 'mapper.onnx'), Buffer.alloc(good.files['mapper.onnx'].length, 7)); // same size, other bytes
    const err = await loadPackFromUrl(url('hash'), { store, ...fast }).catch((e) => e);
    expect(err).toBeInstanceOf(PackIntegrityError);
    expect(err.name).toBe('PackIntegrityError');
    expect(err.message).toMatch(/"mapper\.onnx" is corrupt.*Download the pack again/);
    expect(await store.storedBytes('hash', 'mapper.onnx')).toBe(0);
    expect((await store.getRecord('hash'))!.complete['mapper.onnx']).toBeUndefined();
    // vision.onnx was verified before the failure: kept, and not downloaded again.
    writeFileSync(join(good.dir, 'mapper.onnx'), good.files['mapper.onnx']);
    packs.server.log.length = 0;
    const pack = await loadPackFromUrl(url('hash'), { store, ...fast });
    expect(sha256(pack.files.mapper)).toBe(good.manifest.files.mapper.sha256);
    expect(requestsFor('vision.onnx')).toEqual([]);
  });

  it('a truncated file (the server has fewer bytes than pack.json says) is a size error and is not kept', async () => {
    writeSyntheticPack(packs.root, 'trunc', (_m, files) => {
      files['decoder.onnx'] = files['decoder.onnx'].subarray(0, 500_000);
    });
    const store = idb();
    const err = await loadPackFromUrl(url('trunc'), { store, ...fast }).catch((e) => e);
    expect(err).toBeInstanceOf(PackSizeError);
    expect(err.message).toMatch(/"decoder\.onnx" has 500000 bytes, but the pack says 1000003 \(the download was cut short\)/);
    expect(await store.storedBytes('trunc', 'decoder.onnx')).toBe(0);
    // The server sent its whole (short) file: retrying could not help, so it did not.
    expect(requestsFor('decoder.onnx').length).toBe(1);
  });

  it('a missing tokenizer.json (404) is a download error naming it, not retried; the rest is kept for next time', async () => {
    const p = writeSyntheticPack(packs.root, 'notok');
    unlinkSync(join(p.dir, 'tokenizer.json'));
    const store = idb();
    const err = await loadPackFromUrl(url('notok'), { store, ...fast }).catch((e) => e);
    expect(err).toBeInstanceOf(PackDownloadError);
    expect(err.message).toMatch(/"tokenizer\.json".*HTTP 404/);
    expect(requestsFor('tokenizer.json').length).toBe(1);
    const [info] = await listCachedPacks(store);
    expect(info).toMatchObject({ id: 'notok', complete: false });
    await expect(loadCachedPack('notok', { store })).rejects.toMatchObject({ name: 'PackNotCachedError' });
    writeFileSync(join(p.dir, 'tokenizer.json'), p.files['tokenizer.json']);
    packs.server.log.length = 0;
    await loadPackFromUrl(url('notok'), { store, ...fast });
    expect(packs.server.log.map((l) => l.path)).toEqual(['/packs/notok/pack.json', '/packs/notok/tokenizer.json']);
  });

  it('an unknown format version is refused before anything is downloaded or stored', async () => {
    writeSyntheticPack(packs.root, 'v99', (m) => {
      m.formatVersion = 99;
    });
    const store = idb();
    const err = await loadPackFromUrl(url('v99'), { store, ...fast }).catch((e) => e);
    expect(err).toBeInstanceOf(UnsupportedPackVersionError);
    expect(err.message).toMatch(/format version 99.*Update the extension/);
    expect(packs.server.log.map((l) => l.path)).toEqual(['/packs/v99/pack.json']);
    expect(await listCachedPacks(store)).toEqual([]);
  });
});

describe('a download interrupted halfway', () => {
  /** Serve the first `cutAt` bytes of a file, then drop the connection (the client sees a broken body). */
  const dropAfter = (body: Buffer, cutAt: number) => (_req: unknown, res: import('node:http').ServerResponse) => {
    res.writeHead(200, { 'Content-Length': String(body.length) });
    res.write(body.subarray(0, cutAt), () => setTimeout(() => res.socket?.destroy(), 20));
    return true;
  };

  it('resumes after a browser restart (a new store on the same database) with Range, then verifies', async () => {
    const p = writeSyntheticPack(packs.root, 'resume2');
    const factory = new IDBFactory();
    const first = new IndexedDbPackStore(factory, IDBKeyRange, 'packs-restart');
    packs.server.hooks.set('/packs/resume2/decoder.onnx', dropAfter(p.files['decoder.onnx'], 500_000));
    // retries: 1, so the first load gives up with what it has (the user closed the browser, say).
    const err = await loadPackFromUrl(url('resume2'), { store: first, ...fast, retries: 1 }).catch((e) => e);
    expect(err).toBeInstanceOf(PackDownloadError);
    const kept = await first.storedBytes('resume2', 'decoder.onnx');
    expect(kept).toBeGreaterThan(0);
    expect(kept).toBeLessThanOrEqual(500_000);
    first.close();

    packs.server.hooks.clear();
    packs.server.log.length = 0;
    const second = new IndexedDbPackStore(factory, IDBKeyRange, 'packs-restart');
    const pack = await loadPackFromUrl(url('resume2'), { store: second, ...fast });
    expect(sha256(pack.files.decoder)).toBe(p.manifest.files.decoder.sha256);
    const reqs = requestsFor('decoder.onnx');
    expect(reqs.map((r) => r.range)).toEqual([`bytes=${kept}-`]);
    expect(requestsFor('vision.onnx')).toEqual([]); // verified before the interruption
    expect((await listCachedPacks(second))[0]).toMatchObject({ complete: true });
  });

  it('restarts from zero when the server ignores Range (answers 200 with the whole file), then verifies', async () => {
    const p = writeSyntheticPack(packs.root, 'norange');
    const store = idb();
    let n = 0;
    packs.server.hooks.set('/packs/norange/decoder.onnx', (req, res) => {
      if (n++ === 0) return dropAfter(p.files['decoder.onnx'], 400_000)(req, res);
      res.writeHead(200, { 'Content-Length': String(p.files['decoder.onnx'].length) }); // no Range support
      res.end(p.files['decoder.onnx']);
      return true;
    });
    const pack = await loadPackFromUrl(url('norange'), { store, ...fast });
    expect(sha256(pack.files.decoder)).toBe(p.manifest.files.decoder.sha256);
    const reqs = requestsFor('decoder.onnx');
    expect(reqs.length).toBe(2);
    expect(reqs[1].range).toMatch(/^bytes=\d+-$/);
    expect(await store.storedBytes('norange', 'decoder.onnx')).toBe(p.files['decoder.onnx'].length);
  });

  it('restarts when the server answers a different range than asked, then verifies', async () => {
    const p = writeSyntheticPack(packs.root, 'badrange');
    const store = idb();
    const body = p.files['decoder.onnx'];
    let n = 0;
    packs.server.hooks.set('/packs/badrange/decoder.onnx', (req, res) => {
      n++;
      if (n === 1) return dropAfter(body, 300_000)(req, res);
      if (n === 2) {
        res.writeHead(206, { 'Content-Range': `bytes 10-${body.length - 1}/${body.length}`, 'Content-Length': String(body.length - 10) });
        res.end(body.subarray(10));
        return true;
      }
      return false; // the static server, with proper Range support
    });
    const pack = await loadPackFromUrl(url('badrange'), { store, ...fast });
    expect(sha256(pack.files.decoder)).toBe(p.manifest.files.decoder.sha256);
    expect(requestsFor('decoder.onnx').length).toBe(3);
  });

  it('a file changed on the server between the halves fails the hash, is dropped, and the next load is clean', async () => {
    const p = writeSyntheticPack(packs.root, 'changed');
    const store = idb();
    packs.server.hooks.set('/packs/changed/decoder.onnx', dropAfter(p.files['decoder.onnx'], 500_000));
    await loadPackFromUrl(url('changed'), { store, ...fast, retries: 1 }).catch(() => undefined);
    packs.server.hooks.clear();
    const other = Buffer.from(p.files['decoder.onnx']);
    other.fill(1, 600_000, 700_000); // the second half now comes from another build
    writeFileSync(join(p.dir, 'decoder.onnx'), other);
    await expect(loadPackFromUrl(url('changed'), { store, ...fast })).rejects.toBeInstanceOf(PackIntegrityError);
    expect(await store.storedBytes('changed', 'decoder.onnx')).toBe(0);
    writeFileSync(join(p.dir, 'decoder.onnx'), p.files['decoder.onnx']);
    const pack = await loadPackFromUrl(url('changed'), { store, ...fast });
    expect(sha256(pack.files.decoder)).toBe(p.manifest.files.decoder.sha256);
  });
});

/**
 * A store with a byte budget: past it, writes fail as a full IndexedDB fails them (a DOMException named
 * QuotaExceededError from the transaction). Deleting frees the space again.
 */
class QuotaStore implements PackStore {
  used = 0;
  constructor(
    private readonly inner: IndexedDbPackStore,
    private readonly budget: number,
    private readonly failRecords = false,
  ) {}
  private full(): never {
    throw new DOMException('The quota has been exceeded.', 'QuotaExceededError');
  }
  getRecord(id: string) {
    return this.inner.getRecord(id);
  }
  async putRecord(r: StoredPackRecord) {
    if (this.failRecords && this.used >= this.budget) this.full();
    return this.inner.putRecord(r);
  }
  storedBytes(id: string, path: string) {
    return this.inner.storedBytes(id, path);
  }
  async append(id: string, path: string, offset: number, data: Uint8Array) {
    if (this.used + data.byteLength > this.budget) this.full();
    await this.inner.append(id, path, offset, data);
    this.used += data.byteLength;
  }
  read(id: string, path: string) {
    return this.inner.read(id, path);
  }
  readBlob(id: string, path: string) {
    return this.inner.readBlob(id, path);
  }
  async clearFile(id: string, path: string) {
    this.used -= await this.inner.storedBytes(id, path);
    return this.inner.clearFile(id, path);
  }
  listRecords() {
    return this.inner.listRecords();
  }
  async deletePack(id: string) {
    for (const p of PATHS) this.used -= await this.inner.storedBytes(id, p);
    return this.inner.deletePack(id);
  }
}

describe('storage quota exceeded', () => {
  it('is a StorageQuotaError that says what to do; nothing half-written stays, and the cached pack still loads', async () => {
    const small = writeSyntheticPack(packs.root, 'small', undefined, { vision: 100_000, mapper: 20_000, decoder: 200_000 });
    const big = writeSyntheticPack(packs.root, 'big');
    const store = new QuotaStore(idb(), 1_000_000);
    await loadPackFromUrl(url('small'), { store, ...fast });
    packs.server.log.length = 0;

    const err = await loadPackFromUrl(url('big'), { store, ...fast }).catch((e) => e);
    expect(err).toBeInstanceOf(StorageQuotaError);
    expect(err.name).toBe('StorageQuotaError');
    expect(err.message).toMatch(/not enough storage space to save model pack "big"/);
    expect(err.message).toMatch(/Free some disk space, or remove downloaded models.*Options/);
    // No retries against a full disk: one request for the file that did not fit.
    expect(requestsFor('decoder.onnx').length).toBe(1);
    // Nothing of "big" is left: no record, no bytes.
    expect(await storedSizes(store, 'big', PATHS)).toEqual(Object.fromEntries(PATHS.map((p) => [p, 0])));
    expect((await listCachedPacks(store)).map((p) => p.id)).toEqual(['small']);
    // The pack cached before is intact, byte for byte.
    const again = await loadCachedPack('small', { store });
    expect(sha256(again.files.decoder)).toBe(small.manifest.files.decoder.sha256);
    expect(sha256(again.files.vision)).toBe(small.manifest.files.vision.sha256);
    // Once there is room, the same pack downloads and verifies.
    const roomy = new QuotaStore(idb(), 10_000_000);
    const pack = await loadPackFromUrl(url('big'), { store: roomy, ...fast });
    expect(sha256(pack.files.decoder)).toBe(big.manifest.files.decoder.sha256);
  });

  it('an already complete pack is kept when only its record update hits the quota', async () => {
    writeSyntheticPack(packs.root, 'full', undefined, { vision: 100_000, mapper: 20_000, decoder: 200_000 });
    const inner = idb();
    const store = new QuotaStore(inner, 10_000_000, true);
    await loadPackFromUrl(url('full'), { store, ...fast });
    (store as unknown as { budget: number }).budget = 0; // the disk filled up since
    await expect(loadPackFromUrl(url('full'), { store, ...fast })).rejects.toBeInstanceOf(StorageQuotaError);
    const cached = await loadCachedPack('full', { store: inner });
    expect(cached.source).toBe('cache');
  });

  it('importing a picked folder into a full store is the same StorageQuotaError, with nothing half-saved', async () => {
    const p = writeSyntheticPack(packs.root, 'picked-big');
    const store = new QuotaStore(idb(), 500_000);
    const picked = PATHS.concat('pack.json').map((n) => {
      const b = n === 'pack.json' ? Buffer.from(JSON.stringify(p.manifest)) : p.files[n];
      return { name: n, size: b.length, arrayBuffer: async () => b.buffer.slice(b.byteOffset, b.byteOffset + b.length) as ArrayBuffer };
    });
    await expect(loadPackFromFiles(picked, { store })).rejects.toBeInstanceOf(StorageQuotaError);
    expect(await listCachedPacks(store)).toEqual([]);
    expect(await storedSizes(store, 'picked-big', PATHS)).toEqual(Object.fromEntries(PATHS.map((n) => [n, 0])));
  });

  it('a real IndexedDB quota error (DOMException from the transaction) is recognised, not retried', async () => {
    writeSyntheticPack(packs.root, 'domex', undefined, { vision: 100_000, mapper: 20_000, decoder: 200_000 });
    const inner = idb();
    // Make the transaction itself fail, as Chromium's IndexedDB does when the origin is over quota.
    const origAppend = inner.append.bind(inner);
    let calls = 0;
    inner.append = async (id, path, offset, data) => {
      if (path === 'decoder.onnx' && ++calls === 2) {
        const e = new DOMException('Transaction aborted: QuotaExceededError', 'QuotaExceededError');
        throw e;
      }
      return origAppend(id, path, offset, data);
    };
    const err = await loadPackFromUrl(url('domex'), { store: inner, ...fast }).catch((e) => e);
    expect(err).toBeInstanceOf(StorageQuotaError);
    expect(err.cause).toBeInstanceOf(DOMException);
    expect(await listCachedPacks(inner)).toEqual([]);
  });

  it('the message reaches the options page and popup: across the wire, and as the status hint', () => {
    const wire = toWire(new StorageQuotaError('coco', 420 * 2 ** 20));
    expect(wire.name).toBe('StorageQuotaError');
    expect(fromWire(wire).name).toBe('StorageQuotaError');
    const d = describeStatus({
      state: 'error',
      packUrl: 'https://x.test/coco/',
      packId: 'coco',
      packName: 'COCO',
      progress: null,
      backend: null,
      backendReason: '',
      queued: 0,
      error: wire,
    });
    expect(d.hint).toBe(wire.message);
    expect(d.hint).toMatch(/420\.0 MB.*Free some disk space/);
  });
});
