import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb';
import { describe, expect, it, vi } from 'vitest';
import {
  PackDownloadError,
  PackFileMissingError,
  PackFormatError,
  PackIntegrityError,
  PackNotCachedError,
  PackSizeError,
  UnsupportedPackVersionError,
} from '../../src/shared/errors';
import {
  deleteCachedPack,
  listCachedPacks,
  loadCachedPack,
  loadPack,
  loadPackFromFiles,
  loadPackFromUrl,
  type PackProgress,
} from '../../src/captioner/pack-loader';
import { IndexedDbPackStore, MemoryPackStore, type PackStore } from '../../src/captioner/pack-store';
import { fast, usePackServer } from './helpers/pack-server';
import { sha256, writeSyntheticPack } from './helpers/synthetic-pack';

const packs = usePackServer('packs-');

describe.each([
  ['memory', () => new MemoryPackStore()],
  ['IndexedDB (fake-indexeddb)', () => new IndexedDbPackStore(new IDBFactory(), IDBKeyRange)],
])('pack loading with a %s store', (_name, makeStore: () => PackStore) => {
  it('downloads, verifies, reports monotonic progress, then loads from the cache without downloading', async () => {
    const { files, manifest } = writeSyntheticPack(packs.root, 'good');
    const store = makeStore();
    const events: PackProgress[] = [];
    const pack = await loadPackFromUrl(`${packs.server.url}/packs/good/`, { store, onProgress: (p) => events.push(p), ...fast });
    expect(pack.manifest.id).toBe('good');
    expect(Buffer.from(pack.files.decoder).equals(files['decoder.onnx'])).toBe(true);
    expect(Buffer.from(pack.files.tokenizer).equals(files['tokenizer.json'])).toBe(true);
    const total = Object.values(files).reduce((n, b) => n + b.length, 0);
    expect(events.every((e) => e.total === total)).toBe(true);
    for (let i = 1; i < events.length; i++) expect(events[i].bytes).toBeGreaterThanOrEqual(events[i - 1].bytes);
    expect(events.at(-1)!.bytes).toBe(total);
    expect(events.filter((e) => e.file === 'decoder.onnx' && e.phase === 'download').length).toBeGreaterThan(3);

    packs.server.log.length = 0;
    const again = await loadPackFromUrl(`${packs.server.url}/packs/good/`, { store, ...fast });
    expect(again.manifest.files.vision.sha256).toBe(manifest.files.vision.sha256);
    expect(packs.server.log.map((l) => l.path)).toEqual(['/packs/good/pack.json']);

    const offline = await loadCachedPack('good', { store });
    expect(Buffer.from(offline.files.vision).equals(files['vision.onnx'])).toBe(true);

    const listed = await listCachedPacks(store);
    expect(listed).toEqual([expect.objectContaining({ id: 'good', complete: true, bytes: total, totalBytes: total })]);
    await deleteCachedPack('good', store);
    expect(await listCachedPacks(store)).toEqual([]);
    await expect(loadCachedPack('good', { store })).rejects.toBeInstanceOf(PackNotCachedError);
  });

  it("a start hands each stored file over as its Blob, unread, in the engine's order; a wrong size is refused", async () => {
    const { files } = writeSyntheticPack(packs.root, 'blobs');
    const store = makeStore();
    const got: Array<[string, Uint8Array | Blob]> = [];
    // The first load downloads: bytes, verified.
    await loadPackFromUrl(`${packs.server.url}/packs/blobs/`, { store, onFile: (k, d) => got.push([k, d]), ...fast });
    expect(got.every(([, d]) => d instanceof Uint8Array)).toBe(true);
    for (const load of [
      (onFile: (k: string, d: Uint8Array | Blob) => void) =>
        loadPackFromUrl(`${packs.server.url}/packs/blobs/`, { store, onFile, ...fast }),
      (onFile: (k: string, d: Uint8Array | Blob) => void) => loadCachedPack('blobs', { store, onFile }),
    ]) {
      got.length = 0;
      const pack = await load((k, d) => got.push([k, d]));
      expect(got.map(([k]) => k)).toEqual(['tokenizer', 'vision', 'mapper', 'decoder']);
      for (const [k, d] of got) {
        expect(d).toBeInstanceOf(Blob);
        const path = (pack.manifest.files as Record<string, { path: string }>)[k].path;
        expect(Buffer.from(await (d as Blob).arrayBuffer()).equals(files[path])).toBe(true);
      }
      expect(pack.files.decoder.byteLength).toBe(0); // nothing read here
    }
    // A stored file of the wrong size (a store damaged underneath) is not handed on.
    await store.clearFile('blobs', 'mapper.onnx');
    await store.append('blobs', 'mapper.onnx', 0, files['mapper.onnx'].subarray(1));
    await expect(loadCachedPack('blobs', { store, onFile: () => undefined })).rejects.toBeInstanceOf(PackSizeError);
  });

  it('resumes an interrupted download with an HTTP Range request', async () => {
    const { files } = writeSyntheticPack(packs.root, 'resume');
    const store = makeStore();
    let cut = 0;
    packs.server.hooks.set('/packs/resume/decoder.onnx', (req, res) => {
      if (cut++ > 0) return false;
      // First request: send 400 kB of the 1 MB file, then drop the connection.
      res.writeHead(200, { 'Content-Length': String(files['decoder.onnx'].length) });
      res.write(files['decoder.onnx'].subarray(0, 400_000), () => setTimeout(() => res.socket?.destroy(), 20));
      return true;
    });
    const pack = await loadPackFromUrl(`${packs.server.url}/packs/resume/`, { store, ...fast });
    expect(sha256(pack.files.decoder)).toBe(sha256(files['decoder.onnx']));
    const reqs = packs.server.log.filter((l) => l.path === '/packs/resume/decoder.onnx');
    expect(reqs.length).toBe(2);
    expect(reqs[0].range).toBeUndefined();
    const resumedAt = Number(/bytes=(\d+)-/.exec(reqs[1].range ?? '')?.[1]);
    expect(resumedAt).toBeGreaterThan(0);
    expect(resumedAt).toBeLessThanOrEqual(400_000);
  });

  it('refuses a file whose SHA-256 does not match, and does not keep it', async () => {
    writeSyntheticPack(packs.root, 'badhash', (m) => {
      m.files.mapper.sha256 = 'f'.repeat(64);
    });
    const store = makeStore();
    await expect(loadPackFromUrl(`${packs.server.url}/packs/badhash/`, { store, ...fast })).rejects.toBeInstanceOf(PackIntegrityError);
    expect(await store.storedBytes('badhash', 'mapper.onnx')).toBe(0);
    const [info] = await listCachedPacks(store);
    expect(info.complete).toBe(false);
  });

  it('refuses a truncated file with a size error', async () => {
    writeSyntheticPack(packs.root, 'short', (_m, files) => {
      files['decoder.onnx'] = files['decoder.onnx'].subarray(0, 999_000);
    });
    await expect(loadPackFromUrl(`${packs.server.url}/packs/short/`, { store: makeStore(), ...fast })).rejects.toBeInstanceOf(
      PackSizeError,
    );
  });
});

describe('pack loading errors', () => {
  it('refuses an unknown pack format version', async () => {
    writeSyntheticPack(packs.root, 'future', (m) => {
      m.formatVersion = 2;
    });
    const err = await loadPackFromUrl(`${packs.server.url}/packs/future/`, { store: new MemoryPackStore(), ...fast }).catch((e) => e);
    expect(err).toBeInstanceOf(UnsupportedPackVersionError);
    expect(err.message).toMatch(/version 2/);
  });
  it('refuses a malformed pack.json', async () => {
    writeSyntheticPack(packs.root, 'malformed', (m) => {
      delete m.decoder;
    });
    await expect(loadPackFromUrl(`${packs.server.url}/packs/malformed/`, { store: new MemoryPackStore(), ...fast })).rejects.toBeInstanceOf(
      PackFormatError,
    );
  });
  it('gives a download error for a missing file, without retrying a 404', async () => {
    const { dir } = writeSyntheticPack(packs.root, 'missing');
    rmSync(join(dir, 'mapper.onnx'));
    await expect(loadPackFromUrl(`${packs.server.url}/packs/missing/`, { store: new MemoryPackStore(), ...fast })).rejects.toBeInstanceOf(
      PackDownloadError,
    );
    expect(packs.server.log.filter((l) => l.path.endsWith('mapper.onnx')).length).toBe(1);
  });
  it('retries a failing server and then gives up with a download error', async () => {
    writeSyntheticPack(packs.root, 'flaky');
    packs.server.hooks.set('/packs/flaky/vision.onnx', (_req, res) => (res.writeHead(503).end(), true));
    await expect(
      loadPackFromUrl(`${packs.server.url}/packs/flaky/`, { store: new MemoryPackStore(), ...fast, retries: 3 }),
    ).rejects.toBeInstanceOf(PackDownloadError);
    expect(packs.server.log.filter((l) => l.path.endsWith('vision.onnx')).length).toBe(3);
  });
});

describe('pack loading from picked files', () => {
  const asPicked = (dir: string, names: string[]) =>
    names.map((n) => {
      const b = readFileSync(join(dir, n));
      return {
        name: n,
        webkitRelativePath: `mypack/${n}`,
        size: b.length,
        arrayBuffer: async () => b.buffer.slice(b.byteOffset, b.byteOffset + b.length),
      };
    });
  it('verifies picked files and saves them for later offline use', async () => {
    const { dir, files } = writeSyntheticPack(packs.root, 'picked');
    const store = new MemoryPackStore();
    const pack = await loadPackFromFiles(asPicked(dir, ['pack.json', 'vision.onnx', 'mapper.onnx', 'decoder.onnx', 'tokenizer.json']), {
      store,
    });
    expect(pack.source).toBe('files');
    const cached = await loadCachedPack('picked', { store });
    expect(Buffer.from(cached.files.mapper).equals(files['mapper.onnx'])).toBe(true);
  });
  it('loads one pack from each kind of location: picked files into the store, then the store, then the web', async () => {
    const { dir, files } = writeSyntheticPack(packs.root, 'located');
    writeSyntheticPack(packs.root, 'located-web');
    const store = new MemoryPackStore();
    const picked = await loadPack(
      { kind: 'files', files: asPicked(dir, ['pack.json', 'vision.onnx', 'mapper.onnx', 'decoder.onnx', 'tokenizer.json']) },
      { store },
    );
    expect(picked.source).toBe('files');
    const stored = await loadPack({ kind: 'stored', storeId: 'located' }, { store });
    expect(stored.source).toBe('cache');
    expect(Buffer.from(stored.files.decoder).equals(files['decoder.onnx'])).toBe(true);
    const web = await loadPack({ kind: 'url', url: `${packs.server.url}/packs/located-web/` }, { store, ...fast });
    expect([web.source, web.manifest.id]).toEqual(['network', 'located-web']);
    await expect(loadPack({ kind: 'stored', storeId: 'nowhere' }, { store })).rejects.toBeInstanceOf(PackNotCachedError);
  });
  it('names the missing file, and refuses a corrupt one', async () => {
    const { dir } = writeSyntheticPack(packs.root, 'picked2');
    await expect(loadPackFromFiles(asPicked(dir, ['pack.json', 'vision.onnx', 'decoder.onnx', 'tokenizer.json']))).rejects.toBeInstanceOf(
      PackFileMissingError,
    );
    writeFileSync(join(dir, 'vision.onnx'), randomBytes(300_000));
    await expect(
      loadPackFromFiles(asPicked(dir, ['pack.json', 'vision.onnx', 'mapper.onnx', 'decoder.onnx', 'tokenizer.json'])),
    ).rejects.toBeInstanceOf(PackIntegrityError);
  });
});

describe('a stored pack at start-up', () => {
  it('is not hashed again (it was when stored), but a stored file of the wrong size is refused', async () => {
    writeSyntheticPack(packs.root, 'nohash');
    const store = new MemoryPackStore();
    const digest = vi.spyOn(crypto.subtle, 'digest');
    try {
      await loadPackFromUrl(`${packs.server.url}/packs/nohash/`, { store, ...fast });
      expect(digest.mock.calls.length).toBe(4); // each file once, as it was stored
      digest.mockClear();
      await loadCachedPack('nohash', { store });
      await loadPackFromUrl(`${packs.server.url}/packs/nohash/`, { store, ...fast });
      expect(digest).not.toHaveBeenCalled();
    } finally {
      digest.mockRestore();
    }
    // A stored file cut short (a disk or browser fault): the size check still names it.
    const mapper = (await store.read('nohash', 'mapper.onnx'))!;
    await store.clearFile('nohash', 'mapper.onnx');
    await store.append('nohash', 'mapper.onnx', 0, mapper.subarray(0, mapper.length - 10));
    await expect(loadCachedPack('nohash', { store })).rejects.toBeInstanceOf(PackSizeError);
  });
});
