// Storage retention: the caption cache keeps no page URL in the clear, nothing past its age bound (30 days), and
// "clear" removes everything, including the captions the offscreen document remembers in memory. Nothing else the
// extension stores (chrome.storage, other IndexedDB databases) holds a page URL or a caption.
import 'fake-indexeddb/auto';
import { IDBFactory } from 'fake-indexeddb';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { CACHE_MAX_AGE_MS, CaptionCache } from '../../src/background/caption-cache';
import { InferenceQueue } from '../../src/offscreen/inference-queue';
import { dispatch, makeChrome } from '../helpers/chrome-fake';

const PACK = 'http://127.0.0.1:9/packs/toy/';
const URL_A = 'http://example.test/private/holiday-photo.png?token=secret123';
const CAPTION = 'A red circle on a white background.';
const tabSender = { id: 'fake-ext-id', tab: { id: 3 } as chrome.tabs.Tab, frameId: 0, url: 'http://example.test/page' };
const pageSender = { id: 'fake-ext-id', url: 'chrome-extension://fake-ext-id/src/options/index.html' };
const DAY = 24 * 60 * 60 * 1000;
const v = (text: string) => ({ text, packId: 'toy', backend: 'wasm', confidence: -0.1 });

/** Every record of every IndexedDB database, as JSON text. */
async function dumpIdb(idb: IDBFactory): Promise<string> {
  const out: unknown[] = [];
  for (const info of await idb.databases()) {
    const db = await new Promise<IDBDatabase>((res, rej) => {
      const r = idb.open(info.name!);
      r.onsuccess = () => res(r.result);
      r.onerror = () => rej(r.error);
    });
    for (const name of db.objectStoreNames) {
      const all = await new Promise<unknown[]>((res) => {
        const r = db.transaction(name).objectStore(name).getAll();
        r.onsuccess = () => res(r.result);
      });
      const keys = await new Promise<unknown[]>((res) => {
        const r = db.transaction(name).objectStore(name).getAllKeys();
        r.onsuccess = () => res(r.result);
      });
      out.push({ db: info.name, store: name, keys, all });
    }
    db.close();
  }
  return JSON.stringify(out);
}

afterEach(() => {
  vi.useRealTimers();
});

describe('caption cache retention', () => {
  it('never returns, and purges, entries older than the age bound (fake clock)', async () => {
    let now = Date.UTC(2026, 0, 1);
    const cache = new CaptionCache(() => 100, new IDBFactory(), { now: () => now });
    await cache.put('old', v('Old'));
    now += 10 * DAY;
    await cache.put('newer', v('Newer'));
    now += CACHE_MAX_AGE_MS - 10 * DAY + 1; // 'old' is now just past the bound, 'newer' is 20 days old
    // Using an entry does not extend its life: the bound counts from when the caption was made.
    expect(await cache.get('old')).toBeNull();
    expect(await cache.get('newer')).toEqual(v('Newer'));
    expect(await cache.count()).toBe(1);
    now += 10 * DAY;
    expect(await cache.purgeExpired()).toBe(0);
  });

  it('a write purges every expired entry, not just the one it touches', async () => {
    let now = Date.UTC(2026, 0, 1);
    const cache = new CaptionCache(() => 100, new IDBFactory(), { now: () => now });
    for (let i = 0; i < 5; i += 1) await cache.put(`k${i}`, v(`C${i}`));
    now += CACHE_MAX_AGE_MS + 1;
    await cache.put('fresh', v('Fresh'));
    expect(await cache.count()).toBe(1);
  });

  it('stores keys hashed: no URL in the database, only the caption', async () => {
    const idb = new IDBFactory();
    const cache = new CaptionCache(() => 100, idb);
    await cache.put(`${PACK}|greedy-30|${URL_A}`, v(CAPTION));
    const all = await dumpIdb(idb);
    expect(all).not.toContain('example.test');
    expect(all).not.toContain('secret123');
    expect(all).toContain(CAPTION);
    expect((await cache.dump())[0].key).toMatch(/^[0-9a-f]{64}$/);
    expect(await cache.get(`${PACK}|greedy-30|${URL_A}`)).toEqual(v(CAPTION));
  });

  it('drops the entries of the old (v1, clear-text keys) database on upgrade', async () => {
    const idb = new IDBFactory();
    await new Promise<void>((res) => {
      const r = idb.open('alt-text-captions', 1);
      r.onupgradeneeded = () => {
        const s = r.result.createObjectStore('captions', { keyPath: 'key' });
        s.createIndex('usedAt', 'usedAt');
        s.put({ key: `${PACK}|greedy-30|${URL_A}`, value: v(CAPTION), usedAt: 1 });
      };
      r.onsuccess = () => (r.result.close(), res());
    });
    const cache = new CaptionCache(() => 100, idb);
    expect(await cache.count()).toBe(0);
    expect(await dumpIdb(idb)).not.toContain('example.test');
  });

  it('the offscreen queue forgets remembered captions on clear, and runs the job again', async () => {
    const q = new InferenceQueue<string>();
    let runs = 0;
    const run = async () => `caption ${(runs += 1)}`;
    expect(await q.submit('r1', 'k', 1, run)).toBe('caption 1');
    expect(await q.submit('r2', 'k', 1, run)).toBe('caption 1'); // remembered
    q.forget();
    expect(await q.submit('r3', 'k', 1, run)).toBe('caption 2');
  });
});

describe('what the worker stores', () => {
  async function setup() {
    const offscreenCalls: { type: string }[] = [];
    const fake = makeChrome({
      handle: async (msg) => {
        offscreenCalls.push(msg);
        if (msg.type === 'bg-os-caption') return { ok: true, value: v(CAPTION) };
        if (msg.type === 'bg-os-clear') return { ok: true, value: { packs: 0 } };
        return { ok: true, value: null };
      },
    });
    (globalThis as unknown as { chrome: unknown }).chrome = fake;
    await fake.storage.local.set({ settings: { packSources: [{ url: PACK, name: 'Toy', builtIn: false }] } });
    const idb = new IDBFactory();
    globalThis.indexedDB = idb;
    const { registerRouter } = await import('../../src/background/router');
    const cache = registerRouter();
    const send = (msg: unknown, sender: object = tabSender) => dispatch(fake.runtime.onMessage.listeners, msg, sender);
    return { fake, idb, cache, send, offscreenCalls };
  }

  it('after captions and label counts, no page URL is stored anywhere, and captions only in the bounded cache', async () => {
    const { fake, idb, send } = await setup();
    expect(await send({ type: 'cs-bg-caption', requestId: 'r1', source: { kind: 'url', url: URL_A }, priority: 1 })).toMatchObject({
      ok: true,
      value: { text: CAPTION },
    });
    await send({
      type: 'cs-bg-caption',
      requestId: 'r2',
      source: { kind: 'bytes', dataUrl: 'data:image/png;base64,iVBORw0KGgo=' },
      priority: 1,
    });
    await send({ type: 'cs-bg-label-count', count: 2 });
    const storage = JSON.stringify([fake.storage.local.data(), fake.storage.session.data()]);
    const idbText = await dumpIdb(idb);
    for (const secret of ['example.test', 'secret123', 'iVBORw0KGgo']) {
      expect(storage).not.toContain(secret);
      expect(idbText).not.toContain(secret);
    }
    expect(storage).not.toContain(CAPTION);
    const dbs = (await idb.databases()).map((d) => d.name);
    expect(dbs).toEqual(['alt-text-captions']);
  });

  it('clear removes every cached caption and tells the offscreen document to forget its own', async () => {
    const { fake, cache, send, offscreenCalls } = await setup();
    for (let i = 0; i < 3; i += 1)
      await send({ type: 'cs-bg-caption', requestId: `r${i}`, source: { kind: 'url', url: `http://example.test/${i}.png` }, priority: 1 });
    expect(await cache.count()).toBe(3);
    expect(await send({ type: 'ui-bg-clear-cache', packs: false }, pageSender)).toEqual({ ok: true, value: { captions: 3, packs: 0 } });
    expect(await cache.count()).toBe(0);
    expect(offscreenCalls.at(-1)).toEqual({ type: 'bg-os-clear', packs: false });
    // Asking again goes to the model, not to a cache.
    expect(
      await send({ type: 'cs-bg-caption', requestId: 'again', source: { kind: 'url', url: 'http://example.test/0.png' }, priority: 1 }),
    ).toMatchObject({ ok: true, value: { cached: false } });
    // With no offscreen document, clearing captions does not start one.
    fake.state.offscreenOpen = false;
    const creates = fake.state.creates;
    expect(await send({ type: 'ui-bg-clear-cache', packs: false }, pageSender)).toEqual({ ok: true, value: { captions: 1, packs: 0 } });
    expect(fake.state.creates).toBe(creates);
  });

  it('the worker purges expired captions when it starts', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.UTC(2026, 0, 1));
    const first = await setup();
    await first.send({ type: 'cs-bg-caption', requestId: 'r1', source: { kind: 'url', url: URL_A }, priority: 1 });
    expect(await first.cache.count()).toBe(1);
    vi.setSystemTime(Date.UTC(2026, 0, 1) + CACHE_MAX_AGE_MS + DAY);
    // A worker start over the same database (the browser was closed for a month).
    const { registerRouter } = await import('../../src/background/router');
    const restarted = registerRouter();
    await vi.waitFor(async () => expect(await restarted.count()).toBe(0));
  });
});
