/**
 * The one downloader (src/installer/fetch-file.ts) and the HTTP range source (src/installer/http-source.ts), against
 * the loopback hub: resume without fetching a stored byte twice, retries, named errors, server facts, and a
 * vision-only read that fetches only the checkpoint's index and its visual tensors.
 */
import { randomBytes, createHash } from 'node:crypto';
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { MirrorHttpError, NetworkError, RangeNotSupportedError } from '../../src/shared/errors';
import { IndexedDbPackStore, MemoryPackStore, type InstallStore } from '../../src/captioner/pack-store';
import { openCheckpoint } from '../../src/converter/readers/checkpoint';
import { RateMeter, fetchFile, hashStoredFile, probeSource } from '../../src/installer/fetch-file';
import { HttpRangeSource, missingParts } from '../../src/installer/http-source';
import { browserFetch, startHubServer, type HubServer } from '../helpers/hub-server';
import { ensureInstallFixture, type InstallFixture } from '../helpers/test-catalogue';

let hub: HubServer;
let fx: InstallFixture;
beforeAll(async () => {
  fx = ensureInstallFixture();
  hub = await startHubServer();
});
afterAll(() => hub?.close());
beforeEach(() => (hub.reset(), hub.clearFaults()));

const fast = { retries: 3, retryDelayMs: 5, flushBytes: 64 * 1024 };
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const idb = () => new IndexedDbPackStore(new IDBFactory(), IDBKeyRange);

describe.each([
  ['memory', (): InstallStore => new MemoryPackStore()],
  ['IndexedDB', (): InstallStore => idb()],
])('fetchFile with a %s store', (_n, makeStore) => {
  it('resumes after a cut connection with Range, and no stored byte is fetched twice', async () => {
    const body = randomBytes(1_000_003);
    const path = 'openaipublic.azureedge.net/f/resume.bin';
    hub.add(path, body);
    hub.fault(path, { kind: 'cut', after: 300_000, times: 1 });
    const store = makeStore();
    const url = `${hub.url}/${path}`;
    // One attempt: the first call gives up after the cut (as when the browser closes), keeping what it stored.
    const err = await fetchFile(url, store, 'job', 'f', { ...fast, retries: 1, expectedBytes: body.length }).catch((e) => e);
    expect(err).toBeInstanceOf(NetworkError);
    expect(err.message).toMatch(/Check your connection/);
    const kept = await store.storedBytes('job', 'f');
    expect(kept).toBe(300_000); // every byte that arrived was flushed, also the partial last slice
    const res = await fetchFile(url, store, 'job', 'f', { ...fast, expectedBytes: body.length });
    expect(res.bytes).toBe(body.length);
    expect(hub.log.filter((l) => l.file === path).map((l) => l.range)).toEqual([undefined, `bytes=${kept}-`]);
    expect(hub.sent.get(path)).toBe(body.length); // nothing sent twice
    expect(await hashStoredFile(store, 'job', 'f', body.length)).toBe(sha(body));
  });

  it('a cut inside one call is retried from the stored end, within the same call', async () => {
    const body = randomBytes(500_000);
    const path = 'openaipublic.azureedge.net/f/retry.bin';
    hub.add(path, body);
    hub.fault(path, { kind: 'cut', after: 200_000, times: 2 });
    const store = makeStore();
    const progress: number[] = [];
    await fetchFile(`${hub.url}/${path}`, store, 'job', 'f', { ...fast, expectedBytes: body.length, onProgress: (n) => progress.push(n) });
    expect(hub.sent.get(path)).toBe(body.length);
    expect(Buffer.from((await store.read('job', 'f'))!).equals(body)).toBe(true);
    expect(progress.at(-1)).toBe(body.length);
  });
});

describe('fetchFile errors', () => {
  it('a 404 is a MirrorHttpError at once, not retried', async () => {
    const err = await fetchFile(`${hub.url}/openaipublic.azureedge.net/nothing.bin`, new MemoryPackStore(), 'j', 'f', {
      ...fast,
      expectedBytes: 10,
    }).catch((e) => e);
    expect(err).toBeInstanceOf(MirrorHttpError);
    expect(err.status).toBe(404);
    expect(err.message).toMatch(/HTTP 404.*not there/);
    expect(hub.log.length).toBe(1);
  });

  it('a 5xx is retried with back-off, then a MirrorHttpError', async () => {
    const path = 'openaipublic.azureedge.net/f/busy.bin';
    hub.add(path, randomBytes(1000));
    hub.fault(path, { kind: 'status', status: 503 });
    const err = await fetchFile(`${hub.url}/${path}`, new MemoryPackStore(), 'j', 'f', { ...fast, expectedBytes: 1000 }).catch((e) => e);
    expect(err).toBeInstanceOf(MirrorHttpError);
    expect(err.status).toBe(503);
    expect(hub.log.filter((l) => l.file === path).length).toBe(3);
  });

  it('offline (connection refused) is a NetworkError that says to check the connection', async () => {
    const dead = await startHubServer();
    const url = `${dead.url}/openaipublic.azureedge.net/x.bin`;
    await dead.close();
    const err = await fetchFile(url, new MemoryPackStore(), 'j', 'f', { ...fast, expectedBytes: 10 }).catch((e) => e);
    expect(err).toBeInstanceOf(NetworkError);
    expect(err.message).toMatch(/Could not reach 127\.0\.0\.1.*Check your connection/);
  });

  it('a full disk is thrown as the store raised it, without retries', async () => {
    const path = 'openaipublic.azureedge.net/f/quota.bin';
    hub.add(path, randomBytes(300_000));
    const store = new MemoryPackStore();
    store.append = async () => {
      throw new DOMException('The quota has been exceeded.', 'QuotaExceededError');
    };
    const err = await fetchFile(`${hub.url}/${path}`, store, 'j', 'f', { ...fast, expectedBytes: 300_000 }).catch((e) => e);
    expect(err.name).toBe('QuotaExceededError');
    expect(hub.log.filter((l) => l.file === path).length).toBe(1);
  });
});

describe('probeSource', () => {
  it('reads the Hub facts from the redirect (size, SHA-256, commit), not from the CDN answer', async () => {
    const body = randomBytes(12_345);
    const path = 'huggingface.co/org/repo/resolve/main/w.pt';
    const h = hub.add(path, body, { commit: 'c'.repeat(40) });
    const f = await probeSource(`${hub.url}/${path}`, {});
    expect(f).toEqual({ size: 12_345, sha256: h, commit: 'c'.repeat(40), ranges: true });
  });
  it('in a browser, where the redirect is opaque, the Hub\u2019s paths-info API states the SHA-256 and size', async () => {
    const body = randomBytes(12_345);
    const path = 'huggingface.co/org/repo/resolve/main/w.pt';
    const h = hub.add(path, body);
    const f = await probeSource(`${hub.url}/${path}`, { fetch: browserFetch() });
    expect(f).toMatchObject({ size: 12_345, sha256: h, ranges: true });
    expect(hub.log.filter((l) => l.path === '/huggingface.co/api/models/org/repo/paths-info/main').map((l) => l.status)).toEqual([200]);
    // The API down: the probe still answers, with what the download itself shows (the size).
    hub.fault('huggingface.co/api/models/org/repo/paths-info/main', { kind: 'status', status: 503 });
    expect(await probeSource(`${hub.url}/${path}`, { fetch: browserFetch() })).toMatchObject({ size: 12_345, sha256: null });
  });
  it('a plain server gives its size from Content-Range; an ETag that is not a SHA-256 is not taken for one', async () => {
    const path = 'openaipublic.azureedge.net/f/plain.bin';
    hub.add(path, randomBytes(777));
    expect(await probeSource(`${hub.url}/${path}`, {})).toEqual({ size: 777, sha256: null, commit: null, ranges: true });
  });
});

describe('RateMeter', () => {
  it('is bytes per second over a sliding window, and gives the time left', () => {
    let t = 0;
    const m = new RateMeter(5000, () => t);
    for (let i = 0; i <= 10; i++) {
      t = i * 1000;
      m.add(i * 1_000_000);
    }
    expect(m.rate).toBeCloseTo(1_000_000, -3);
    expect(m.eta(10_000_000, 30_000_000)).toBe(20);
    // the window forgets the fast start: after a slow stretch the rate follows
    for (let i = 11; i <= 20; i++) {
      t = i * 1000;
      m.add(10_000_000 + (i - 10) * 100_000);
    }
    expect(m.rate).toBeCloseTo(100_000, -3);
  });
});

describe('HttpRangeSource', () => {
  it('missingParts subtracts stored ranges', () => {
    expect(
      missingParts(
        [
          [10, 20],
          [30, 40],
        ],
        [0, 50],
      ),
    ).toEqual([
      [0, 10],
      [20, 30],
      [40, 50],
    ]);
    expect(missingParts([[0, 50]], [10, 20])).toEqual([]);
  });

  it('a vision-only read fetches the index and the visual tensors only, once, also across a restart', async () => {
    const body = fx.file('clip.pt');
    const path = 'openaipublic.azureedge.net/clip/models/x/clip.pt';
    hub.add(path, body);
    const factory = new IDBFactory();
    const store = new IndexedDbPackStore(factory, IDBKeyRange, 'range-restart');
    const url = `${hub.url}/${path}`;
    const src = await HttpRangeSource.open(url, store, 'job', 'clip', { ...fast, size: body.length, minRequest: 4096 });
    const ckpt = await openCheckpoint(src, 'torchscript');
    const visual = [...ckpt.tensors.keys()].filter((k) => k.startsWith('visual.'));
    expect(visual.length).toBeGreaterThan(5);
    const indexBytes = hub.sent.get(path)!;
    const ranges = ckpt.ranges(visual, 4096);
    await src.prefetch(ranges);
    const visualBytes = visual.reduce((n, k) => n + ckpt.tensors.get(k)!.byteLength, 0);
    const sent = hub.sent.get(path)!;
    expect(sent).toBeLessThan(body.length * 0.8);
    expect(sent - indexBytes).toBeGreaterThanOrEqual(visualBytes - indexBytes); // some visual bytes came with the index reads
    expect(sent).toBeLessThan(visualBytes + indexBytes + 64 * 1024);
    // The tensors read from the store: exactly the published bytes, no further request.
    const before = hub.log.length;
    for (const k of visual) {
      const t = ckpt.tensors.get(k)!;
      expect(Buffer.from(await src.read(t.offset, t.byteLength)).equals(body.subarray(t.offset, t.offset + t.byteLength))).toBe(true);
    }
    expect(hub.log.length).toBe(before);
    store.close();

    // Restart: a new store object on the same database, a new source; nothing is fetched again.
    hub.reset();
    const again = new IndexedDbPackStore(factory, IDBKeyRange, 'range-restart');
    const src2 = await HttpRangeSource.open(url, again, 'job', 'clip', { ...fast, size: body.length, minRequest: 4096 });
    const ck2 = await openCheckpoint(src2, 'torchscript');
    await src2.prefetch(ck2.ranges(visual, 4096));
    expect(hub.sent.get(path) ?? 0).toBe(0);
  });

  it('a cut inside a range resumes inside it, without fetching a byte twice', async () => {
    const body = randomBytes(400_000);
    const path = 'openaipublic.azureedge.net/f/cut-range.bin';
    hub.add(path, body);
    hub.fault(path, { kind: 'cut', after: 150_000, times: 1 });
    const store = new MemoryPackStore();
    const src = await HttpRangeSource.open(`${hub.url}/${path}`, store, 'j', 'f', { ...fast, size: body.length });
    await src.prefetch([[50_000, 350_000]]);
    expect(hub.sent.get(path)).toBe(300_000);
    expect(await store.storedRanges('j', 'f')).toEqual([[50_000, 350_000]]);
    expect(Buffer.from(await src.read(50_000, 300_000)).equals(body.subarray(50_000, 350_000))).toBe(true);
  });

  it('a server that ignores Range is reported, so the caller downloads the whole file', async () => {
    const path = 'openaipublic.azureedge.net/f/norange.bin';
    hub.add(path, randomBytes(100_000));
    hub.fault(path, { kind: 'ignore-range' });
    await expect(HttpRangeSource.open(`${hub.url}/${path}`, new MemoryPackStore(), 'j', 'f', fast)).rejects.toBeInstanceOf(
      RangeNotSupportedError,
    );
  });
});
