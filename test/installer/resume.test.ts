/**
 * Interruptions: a job killed mid-download continues from its persisted state in a new Installer over the same
 * database (the offscreen document, the service worker or the browser restarted), without fetching a stored byte
 * again; pause keeps the bytes and resume continues with Range; cancel deletes them.
 */
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb';
import { describe, expect, it } from 'vitest';
import { loadCachedPack } from '../../src/captioner/pack-loader';
import { IndexedDbPackStore, MemoryPackStore } from '../../src/captioner/pack-store';
import { PATHS, testCatalogue } from '../helpers/test-catalogue';
import { useInstallHub, waitFor } from './setup';

const t = useInstallHub();

/**
 * A fetch that "kills the process" once `limit` body bytes of `path` have arrived: from then on no read and no request
 * ever completes, as if the document had gone away. The socket is closed so the server is not left waiting.
 */
function killingFetch(path: string, limit: number) {
  const state = { killed: false, received: 0 };
  const never = new Promise<never>(() => undefined);
  const fetchFn: typeof fetch = async (input, init) => {
    if (state.killed) return never;
    const res = await fetch(input, init);
    if (!String(input).includes(path) || !res.body) return res;
    const reader = res.body.getReader();
    const body = new ReadableStream<Uint8Array>({
      async pull(ctl) {
        if (state.killed) return never;
        const { done, value } = await reader.read();
        if (done) return ctl.close();
        const room = limit - state.received;
        if (value.byteLength >= room) {
          ctl.enqueue(value.subarray(0, room));
          state.received += room;
          state.killed = true;
          void reader.cancel();
          return;
        }
        state.received += value.byteLength;
        ctl.enqueue(value);
      },
    });
    return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
  };
  return { fetchFn, state };
}

describe('an interrupted job', () => {
  it('resumes from its persisted state in a new Installer, without fetching a stored byte again', async () => {
    const factory = new IDBFactory();
    const size = t.fx.file('clipcap.pt').length;
    const catalogue = testCatalogue(t.hub, t.fx);
    const kill = killingFetch(PATHS.clipcapHub, 1_000_000);
    const first = t.installer(new IndexedDbPackStore(factory, IDBKeyRange, 'restart'), catalogue, { fetch: kill.fetchFn });
    void first.inst.install('toy-coco');
    await waitFor(() => kill.state.killed, 'the kill');
    const store = new IndexedDbPackStore(factory, IDBKeyRange, 'restart');
    await waitFor(
      async () => (await store.storedBytes('toy-coco~inputs', 'clipcap')) >= 1_000_000 - 64 * 1024,
      'the flushes before the kill',
    );
    const stored = await store.storedBytes('toy-coco~inputs', 'clipcap');
    const job = await store.getJob('toy-coco');
    expect(job).toMatchObject({ running: true, phase: 'downloading' });
    expect(t.hub.sent.get(PATHS.clipAzure)).toBeGreaterThan(0); // clip was range-read before clipcap
    // Count from here: what the resumed job asks for. (The server's count for the killed request includes what sat
    // in socket buffers unread, so it says nothing about what the client stored.)
    t.hub.reset();

    // The restart: a new Installer over the same database picks the job up.
    const second = t.installer(store, catalogue);
    await second.inst.resumeInterrupted();
    const s = await second.inst.install('toy-coco'); // joins the resumed run
    expect(s.error).toBeNull();
    expect(s.phase).toBe('ready');
    // clipcap: one request (the Hub's redirect, then the CDN) from the stored end; no probe again (its facts were
    // persisted with the job).
    expect(t.hub.log.filter((l) => l.file === PATHS.clipcapHub).map((l) => [l.status, l.range])).toEqual([
      [302, `bytes=${stored}-`],
      [206, `bytes=${stored}-`],
    ]);
    expect(t.hub.sent.get(PATHS.clipcapHub)).toBe(size - stored);
    // Only the bytes in flight at the kill (less than one flush) were fetched twice.
    expect(kill.state.received - stored).toBeLessThan(64 * 1024);
    // clip: every range it needed was stored before the kill; none was fetched again.
    expect(t.hub.sent.get(PATHS.clipAzure) ?? 0).toBe(0);
    await loadCachedPack((await second.inst.readyStoreId('toy-coco'))!, { store });
  });
});

describe('pause, resume, cancel', () => {
  it('pause stops the download and keeps the bytes; resume continues with Range to a ready pack', async () => {
    t.hub.fault(PATHS.clipcapHub, { kind: 'slow', bytesPerSecond: 2_000_000, maxMs: 4000 });
    const store = new MemoryPackStore();
    const { inst, states } = t.installer(store, testCatalogue(t.hub, t.fx));
    const run = inst.install('toy-coco');
    await waitFor(async () => (await store.storedBytes('toy-coco~inputs', 'clipcap')) > 200_000, 'some clipcap bytes');
    await inst.pause('toy-coco');
    expect((await run).phase).toBe('paused');
    expect(states.at(-1)).toMatchObject({ phase: 'paused', error: null });
    const kept = await store.storedBytes('toy-coco~inputs', 'clipcap');
    expect(kept).toBeGreaterThan(200_000);
    const requests = t.hub.log.length;
    await new Promise((r) => setTimeout(r, 100));
    expect(t.hub.log.length).toBe(requests); // nothing more is fetched while paused
    expect((await inst.states())[0].phase).toBe('paused');

    t.hub.clearFaults();
    await inst.resume('toy-coco');
    const ranges = t.hub.log
      .slice(requests)
      .filter((l) => l.file === PATHS.clipcapHub && l.status === 206)
      .map((l) => l.range);
    expect(ranges).toEqual([`bytes=${kept}-`]);
    expect((await inst.states())[0]).toMatchObject({ phase: 'ready', error: null });
  });

  it('progress carries bytes, a rate and the time left while downloading', async () => {
    t.hub.fault(PATHS.clipcapHub, { kind: 'slow', bytesPerSecond: 4_000_000, maxMs: 3000 });
    const { inst, states } = t.installer(new MemoryPackStore(), testCatalogue(t.hub, t.fx));
    await inst.install('toy-coco');
    const moving = states.filter((s) => s.phase === 'downloading' && s.rate > 0);
    expect(moving.length).toBeGreaterThan(3);
    expect(moving.some((s) => s.etaSeconds !== null && s.etaSeconds >= 0)).toBe(true);
    for (const s of moving) expect(s.bytes).toBeLessThanOrEqual(s.total);
  });

  it('cancel stops and deletes the downloaded bytes; the model is not installed', async () => {
    t.hub.fault(PATHS.clipcapHub, { kind: 'slow', bytesPerSecond: 2_000_000, maxMs: 4000 });
    const store = new MemoryPackStore();
    const { inst } = t.installer(store, testCatalogue(t.hub, t.fx));
    const run = inst.install('toy-coco');
    await waitFor(async () => (await store.storedBytes('toy-coco~inputs', 'clipcap')) > 100_000, 'some clipcap bytes');
    await inst.cancel('toy-coco');
    await run;
    expect(await store.storedRanges('toy-coco~inputs', 'clipcap')).toEqual([]);
    expect(await store.storedRanges('toy-coco~inputs', 'clip')).toEqual([]);
    expect(await store.getJob('toy-coco')).toBeNull();
    expect((await inst.states())[0]).toMatchObject({ phase: 'not-installed', bytes: 0, storeId: null });
    expect(await store.listRecords()).toEqual([]);
  });
});
