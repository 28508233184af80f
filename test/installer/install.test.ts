/**
 * The install job end to end, over the loopback hub: synthetic published files in the real containers -> a pack
 * that loadCachedPack loads; the free-space check; a file the user picks.
 */
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb';
import { describe, expect, it } from 'vitest';
import { loadCachedPack } from '../../src/captioner/pack-loader';
import { IndexedDbPackStore, MemoryPackStore, type InstallStore } from '../../src/captioner/pack-store';
import { stashPickedFile } from '../../src/installer/installer';
import { PATHS, testCatalogue } from '../helpers/test-catalogue';
import { useInstallHub } from './setup';

const t = useInstallHub();

describe.each([
  ['memory', () => new MemoryPackStore() as InstallStore],
  ['IndexedDB (fake-indexeddb)', () => new IndexedDbPackStore(new IDBFactory(), IDBKeyRange) as InstallStore],
])('a full install with a %s store', (_n, makeStore) => {
  it('downloads, converts, verifies and switches to a pack that loadCachedPack loads; the inputs are deleted', async () => {
    const store = makeStore();
    const { inst, states } = t.installer(store, testCatalogue(t.hub, t.fx));
    expect((await inst.states()).map((s) => s.phase)).toEqual(['not-installed']);
    const s = await inst.install('toy-coco');
    expect(s.error).toBeNull();
    expect(s).toMatchObject({ phase: 'ready', needsFiles: [] });
    const storeId = await inst.readyStoreId('toy-coco');
    expect(storeId).toMatch(/^toy-coco@/);
    expect(s.storeId).toBe(storeId);
    const pack = await loadCachedPack(storeId!, { store });
    expect(pack.manifest.id).toBe('toy-coco');
    // Which check each input got: clip was range-read from a server that declares no SHA-256 (size only, plus the
    // template's key and shape checks); clipcap has no pinned hash, so the Hub's declared one was checked.
    expect(pack.manifest.provenance).toMatchObject({
      inputs: {
        clip: { check: 'size-pinned', mode: 'ranges' },
        clipcap: { check: 'sha256-server', mode: 'whole', sha256: expect.stringMatching(/^[0-9a-f]{64}$/) },
      },
    });
    expect(new Set(states.map((x) => x.phase))).toEqual(new Set(['queued', 'downloading', 'verifying', 'converting', 'ready']));
    expect(await store.storedRanges('toy-coco~inputs', 'clipcap')).toEqual([]);
    expect(await store.storedRanges('toy-coco~inputs', 'clip')).toEqual([]);
    // Only a part of the CLIP file was fetched (its index and the visual tensors; the text tower stayed on the server).
    expect(t.hub.sent.get(PATHS.clipAzure)).toBeLessThan(t.fx.file('clip.pt').length * 0.8);
    // Idempotent: installing again does nothing.
    t.hub.reset();
    expect((await inst.install('toy-coco')).phase).toBe('ready');
    expect(t.hub.log.filter((l) => l.file)).toEqual([]);
  });
});

describe('before downloading', () => {
  it('too little free space is a StorageQuotaError that says what to do, before any download', async () => {
    const store = new MemoryPackStore();
    const { inst } = t.installer(store, testCatalogue(t.hub, t.fx), { estimate: async () => ({ quota: 5_000_000, usage: 1_000_000 }) });
    const s = await inst.install('toy-coco');
    expect(s.phase).toBe('failed');
    expect(s.error?.name).toBe('StorageQuotaError');
    expect(s.error?.message).toMatch(/not enough storage space to install "toy-coco".*MB.*Free some disk space/);
    expect(t.hub.log.filter((l) => l.file)).toEqual([]);
  });

  it('a user-file input: without the file the state lists it; with a picked file the install completes', async () => {
    const store = new MemoryPackStore();
    const catalogue = testCatalogue(t.hub, t.fx, (m) => {
      m.inputs.clipcap = { fetch: 'user-file', sources: [], format: 'torch-zip', hint: 'from the authors\u2019 Drive' };
    });
    const { inst } = t.installer(store, catalogue);
    const s = await inst.install('toy-coco');
    expect(s).toMatchObject({ phase: 'failed', needsFiles: ['clipcap'], error: { name: 'UserFileNeededError' } });
    expect(s.error?.message).toMatch(/needs a file you download yourself \(clipcap: from the authors/);
    const key = await stashPickedFile(store, new Blob([new Uint8Array(t.fx.file('clipcap.pt'))]));
    const done = await inst.install('toy-coco', { clipcap: key });
    expect(done.error).toBeNull();
    expect(done.phase).toBe('ready');
    expect(await store.getBlob(key)).toBeNull(); // the picked copy is dropped once converted
    expect(t.hub.log.some((l) => l.file === PATHS.clipcapHub)).toBe(false);
  });
});
