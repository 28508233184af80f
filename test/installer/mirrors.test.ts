/**
 * Mirror fallback: each way a mirror can fail (404, 5xx, wrong bytes, a truncated file, a wrong size before any
 * download, a server without Range) makes the installer drop that mirror's bytes and use the next; when all fail, one
 * named error lists each mirror's failure.
 */
import { describe, expect, it } from 'vitest';
import { loadCachedPack } from '../../src/captioner/pack-loader';
import { MemoryPackStore } from '../../src/captioner/pack-store';
import { bytesSource, openCheckpoint } from '../../src/converter/readers/checkpoint';
import { browserFetch } from '../helpers/hub-server';
import { PATHS, testCatalogue } from '../helpers/test-catalogue';
import { useInstallHub } from './setup';

const t = useInstallHub();
const files = (path: string) => t.hub.log.filter((l) => l.file === path);

/** Install and return the state, the pack's provenance of clipcap, and the store. */
async function install(edit?: Parameters<typeof testCatalogue>[2], deps?: Parameters<typeof t.installer>[2]) {
  const store = new MemoryPackStore();
  const { inst } = t.installer(store, testCatalogue(t.hub, t.fx, edit), deps);
  const state = await inst.install('toy-coco');
  const id = await inst.readyStoreId('toy-coco');
  const pack = id ? await loadCachedPack(id, { store }) : null;
  const prov = pack?.manifest.provenance as { inputs: Record<string, { url: string; check: string }> } | undefined;
  return { state, prov, store };
}

describe('mirror fallback for a whole file', () => {
  it('404 on the first mirror: the second is used, without retrying the 404', async () => {
    t.hub.fault(PATHS.clipcapHub, { kind: 'status', status: 404 });
    const { state, prov } = await install();
    expect(state.error).toBeNull();
    expect(prov!.inputs.clipcap).toMatchObject({ url: expect.stringContaining(PATHS.clipcapMirror), check: 'sha256-pinned' });
    expect(files(PATHS.clipcapHub).length).toBe(1);
  });

  it('5xx on the first mirror: retried with back-off, then the second is used', async () => {
    t.hub.fault(PATHS.clipcapHub, { kind: 'status', status: 502 });
    const { state, prov } = await install();
    expect(state.error).toBeNull();
    expect(files(PATHS.clipcapHub).length).toBe(2); // retries: 2
    expect(prov!.inputs.clipcap.url).toContain(PATHS.clipcapMirror);
  });

  it('wrong bytes (the SHA-256 the Hub declares does not match): deleted, and the second mirror is used', async () => {
    // One byte inside a tensor: the file still parses and converts, so only the hash can tell.
    const ckpt = await openCheckpoint(bytesSource(new Uint8Array(t.fx.file('clipcap.pt'))), 'torch-zip');
    const w = ckpt.tensors.get('clip_project.model.0.weight') ?? [...ckpt.tensors.values()].find((x) => x.byteLength > 1000)!;
    t.hub.fault(PATHS.clipcapHub, { kind: 'wrong-bytes', at: w.offset + 100 });
    const { state, prov } = await install();
    expect(state.error).toBeNull();
    expect(prov!.inputs.clipcap.url).toContain(PATHS.clipcapMirror);
    expect(t.hub.sent.get(PATHS.clipcapHub)).toBeGreaterThan(t.fx.file('clipcap.pt').length - 10); // it was downloaded, then refused
  });

  it('in a browser too (the redirect opaque): the hash the Hub\u2019s API states refuses wrong bytes', async () => {
    const ckpt = await openCheckpoint(bytesSource(new Uint8Array(t.fx.file('clipcap.pt'))), 'torch-zip');
    const w = [...ckpt.tensors.values()].find((x) => x.byteLength > 1000)!;
    t.hub.fault(PATHS.clipcapHub, { kind: 'wrong-bytes', at: w.offset + 100 });
    const { state, prov } = await install(undefined, { fetch: browserFetch() });
    expect(state.error).toBeNull();
    expect(prov!.inputs.clipcap.url).toContain(PATHS.clipcapMirror);
    expect(t.hub.sent.get(PATHS.clipcapHub)).toBeGreaterThan(t.fx.file('clipcap.pt').length - 10);
    // Without the fault the Hub's own file passes the hash the API states.
    t.hub.clearFaults();
    const again = await install(undefined, { fetch: browserFetch() });
    expect(again.prov!.inputs.clipcap).toMatchObject({ url: expect.stringContaining(PATHS.clipcapHub), check: 'sha256-server' });
  });

  it('a truncated file on a mirror that pins nothing: refused by the declared hash, the second mirror is used', async () => {
    t.hub.fault(PATHS.clipcapHub, { kind: 'truncate', to: 100_000 });
    const { state, prov } = await install();
    expect(state.error).toBeNull();
    expect(prov!.inputs.clipcap.url).toContain(PATHS.clipcapMirror);
  });

  it('a file whose size differs from the pinned one is refused before it is downloaded', async () => {
    t.hub.fault(PATHS.clipcapMirror, { kind: 'truncate', to: 100_000 });
    t.hub.fault(PATHS.clipcapHub, { kind: 'status', status: 404 });
    const { state } = await install();
    expect(state.error?.name).toBe('MirrorsFailedError');
    expect(state.error?.message).toMatch(/\(2\) 127\.0\.0\.1:\d+: clipcap\.pt .* has 100000 bytes, but \d+ were expected/);
    expect(t.hub.sent.get(PATHS.clipcapMirror) ?? 0).toBe(0); // only the redirect was asked, no byte of the file
  });

  it('all mirrors fail: one MirrorsFailedError listing each failure; nothing of theirs is kept', async () => {
    t.hub.fault(PATHS.clipcapHub, { kind: 'status', status: 404 });
    t.hub.fault(PATHS.clipcapMirror, { kind: 'wrong-bytes' });
    const { state, store } = await install();
    expect(state.phase).toBe('failed');
    expect(state.storeId).toBeNull();
    expect(state.error?.name).toBe('MirrorsFailedError');
    expect(state.error?.message).toMatch(/"clipcap" weights from any mirror: \(1\) .*HTTP 404.*\(2\) .*SHA-256.*Check your connection/);
    expect(await store.storedRanges('toy-coco~inputs', 'clipcap')).toEqual([]);
  });
});

describe('mirror fallback for a range-read file', () => {
  it('the first CLIP mirror is down: the second (safetensors on the Hub) is range-read, checked against its pinned hash', async () => {
    t.hub.fault(PATHS.clipAzure, { kind: 'status', status: 404 });
    const { state, prov } = await install();
    expect(state.error).toBeNull();
    expect(prov!.inputs.clip).toMatchObject({ url: expect.stringContaining(PATHS.clipHub), check: 'etag-pinned' });
    expect(t.hub.sent.get(PATHS.clipHub)).toBeLessThan(t.fx.file('clip.safetensors').length);
  });

  it('a server that ignores Range gets a whole download, hashed against the pinned SHA-256', async () => {
    t.hub.fault(PATHS.clipAzure, { kind: 'ignore-range' });
    const { state, prov } = await install();
    expect(state.error).toBeNull();
    expect(prov!.inputs.clip).toMatchObject({ url: expect.stringContaining(PATHS.clipAzure), check: 'sha256-pinned', mode: 'whole' });
  });

  it('a declared SHA-256 that differs from the pinned one is refused before the index is read', async () => {
    t.hub.fault(PATHS.clipAzure, { kind: 'status', status: 404 });
    const { state } = await install((m) => {
      m.inputs.clip.sources[1].sha256 = 'f'.repeat(64);
    });
    expect(state.error?.name).toBe('MirrorsFailedError');
    expect(state.error?.message).toMatch(/has SHA-256 [0-9a-f]{12}…, but ffffffffffff… was expected/);
    expect(t.hub.sent.get(PATHS.clipHub) ?? 0).toBe(0);
  });
});
