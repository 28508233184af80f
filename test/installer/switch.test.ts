/**
 * The atomic switch: a new version is built beside the old one and the pointer moves only once it is complete and
 * re-verified. A failing update (at download or at conversion) leaves the old pack loadable; a good one replaces it
 * and the old entry is deleted.
 */
import { describe, expect, it } from 'vitest';
import { loadCachedPack } from '../../src/captioner/pack-loader';
import { MemoryPackStore } from '../../src/captioner/pack-store';
import { PATHS, testCatalogue } from '../helpers/test-catalogue';
import { useInstallHub } from './setup';

const t = useInstallHub();

async function installed() {
  const store = new MemoryPackStore();
  const { inst } = t.installer(store, testCatalogue(t.hub, t.fx));
  expect((await inst.install('toy-coco')).phase).toBe('ready');
  const oldId = (await inst.readyStoreId('toy-coco'))!;
  const before = await loadCachedPack(oldId, { store });
  return { store, oldId, before };
}

describe('updating an installed model', () => {
  it('a download failure leaves the old pack in use and loadable', async () => {
    const { store, oldId, before } = await installed();
    // A new extension version names another source for clipcap, and it is broken.
    const broken = testCatalogue(t.hub, t.fx, (m) => {
      m.version = '1.1.0';
      m.inputs.clipcap.sources = [{ ...m.inputs.clipcap.sources[0], url: 'https://huggingface.co/gone/repo/resolve/main/x.pt' }];
    });
    const { inst } = t.installer(store, broken);
    const s = await inst.install('toy-coco');
    expect(s.phase).toBe('failed');
    expect(s.error?.name).toBe('MirrorsFailedError');
    expect(s.storeId).toBe(oldId);
    expect(await inst.readyStoreId('toy-coco')).toBe(oldId);
    const pack = await loadCachedPack(oldId, { store });
    expect(Buffer.from(pack.files.decoder).equals(Buffer.from(before.files.decoder))).toBe(true);
  });

  it('a wrong file (the CLIP file given as the ClipCap weights) is refused from its index; the old pack stays', async () => {
    const { store, oldId } = await installed();
    const wrong = testCatalogue(t.hub, t.fx, (m) => {
      m.version = '1.2.0';
      // the CLIP file given as the ClipCap weights
      m.inputs.clipcap.sources = [{ url: `https://${PATHS.clipAzure}`, format: 'torchscript', bytes: null, sha256: null }];
    });
    const { inst } = t.installer(store, wrong);
    const s = await inst.install('toy-coco');
    expect(s.phase).toBe('failed');
    expect(s.error?.message).toMatch(/any mirror.*does not fit model/);
    expect(await inst.readyStoreId('toy-coco')).toBe(oldId);
    expect((await store.listRecords()).map((r) => r.id)).toEqual([oldId]);
    await loadCachedPack(oldId, { store });
  });

  it('a failure in the middle of the conversion leaves the old pack in use, and deletes the half-built entry', async () => {
    const { store, oldId } = await installed();
    const next = testCatalogue(t.hub, t.fx, (m) => {
      m.version = '1.3.0';
    });
    // The decoder's skeleton can't be read (after the vision graph was written into the new entry).
    const failing: typeof fetch = async (input, init) =>
      String(input).endsWith('/decoder.skel') ? new Response('gone', { status: 500 }) : fetch(input, init);
    const entries: string[] = [];
    const { inst } = t.installer(store, next, { fetch: failing });
    const origAppend = store.append.bind(store);
    store.append = async (id, path, offset, data) => (entries.includes(id) || entries.push(id), origAppend(id, path, offset, data));
    const s = await inst.install('toy-coco');
    expect(s.phase).toBe('failed');
    expect(s.error?.message).toMatch(/decoder\.skel: HTTP 500/);
    const half = entries.find((id) => id.startsWith('toy-coco@'));
    expect(half).toBeDefined(); // something was written into a new entry ...
    expect(await store.storedRanges(half!, 'vision.onnx')).toEqual([]); // ... and deleted
    expect(await inst.readyStoreId('toy-coco')).toBe(oldId);
    expect((await store.listRecords()).map((r) => r.id)).toEqual([oldId]);
    await loadCachedPack(oldId, { store });
  });

  it('a good update switches to the new entry, then deletes the old one and the downloads', async () => {
    const { store, oldId } = await installed();
    const next = testCatalogue(t.hub, t.fx, (m) => {
      m.version = '2.0.0';
    });
    const { inst } = t.installer(store, next);
    const s = await inst.install('toy-coco');
    expect(s.error).toBeNull();
    const newId = (await inst.readyStoreId('toy-coco'))!;
    expect(newId).not.toBe(oldId);
    expect((await loadCachedPack(newId, { store })).manifest.version).toBe('2.0.0');
    expect(await store.getRecord(oldId)).toBeNull();
    expect((await store.listRecords()).map((r) => r.id)).toEqual([newId]);
    expect(await store.storedRanges('toy-coco~inputs', 'clipcap')).toEqual([]);
  });

  it('remove deletes the pack and the job', async () => {
    const { store } = await installed();
    const { inst } = t.installer(store, testCatalogue(t.hub, t.fx));
    await inst.remove('toy-coco');
    expect(await store.listRecords()).toEqual([]);
    expect((await inst.states())[0]).toMatchObject({ phase: 'not-installed', storeId: null });
  });
});
