/**
 * CLIP's text tower is the user's choice ("check each caption against the picture"): off, the range read of clip.pt
 * skips the text tower's tensors and the pack has no text.onnx; on, they are fetched and the pack has text.onnx and a
 * pack.json "text" section. The choice is kept with the job: a paused install resumed by a new Installer (the
 * offscreen document restarted) builds the pack the user asked for. Turned on or off for an installed model, only the
 * text tower changes: on downloads its tensors alone, off downloads nothing, and the pack is the one a whole install
 * with the same choice makes.
 */
import { describe, expect, it } from 'vitest';
import { manifestFiles } from '../../src/captioner/pack-format';
import { loadCachedPack } from '../../src/captioner/pack-loader';
import { MemoryPackStore, type InstallStore } from '../../src/captioner/pack-store';
import { blobSource, openCheckpoint } from '../../src/converter/readers/checkpoint';
import { hasText, parseTemplate, withoutText } from '../../src/converter/template';
import { stashPickedFile } from '../../src/installer/installer';
import { PATHS, testCatalogue } from '../helpers/test-catalogue';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { useInstallHub, waitFor } from './setup';

const t = useInstallHub();

/** The byte spans of clip.pt that hold tensors only the text tower reads, and their total. */
async function textSpans() {
  const full = parseTemplate(readFileSync(join(t.fx.templatesDir, t.fx.templateId, 'template.json'), 'utf8'));
  expect(hasText(full)).toBe(true); // the fixture's template has a text tower, or this file tests nothing
  const kept = new Set(Object.keys(withoutText(full).inputs.clip.params));
  const names = Object.keys(full.inputs.clip.params).filter((n) => !kept.has(n));
  const ckpt = await openCheckpoint(blobSource(new Blob([new Uint8Array(t.fx.file('clip.pt'))])), 'torchscript');
  const spans = ckpt.ranges(names, 0);
  return { spans, bytes: spans.reduce((n, [a, b]) => n + (b - a), 0) };
}

/** Bytes of `spans` that the hub sent for clip.pt (206 answers, from their Range headers). */
function fetchedOf(spans: Array<[number, number]>): number {
  const got = t.hub.log
    .filter((l) => l.file === PATHS.clipAzure && l.status === 206 && l.range)
    .map((l) => /^bytes=(\d+)-(\d*)$/.exec(l.range!)!)
    .map((m) => [Number(m[1]), m[2] ? Number(m[2]) + 1 : Infinity] as const);
  let n = 0;
  for (const [a, b] of spans) for (const [c, d] of got) n += Math.max(0, Math.min(b, d) - Math.max(a, c));
  return n;
}

async function packFiles(store: InstallStore, storeId: string) {
  const pack = await loadCachedPack(storeId, { store });
  return { manifest: pack.manifest, paths: manifestFiles(pack.manifest).map((f) => f.path) };
}

describe('the text tower, as the user chooses', () => {
  it('off (the default): none of its tensors is fetched, and the pack has no text.onnx', async () => {
    const { spans, bytes } = await textSpans();
    expect(bytes).toBeGreaterThan(1_000_000);
    const store = new MemoryPackStore();
    const { inst } = t.installer(store, testCatalogue(t.hub, t.fx));
    const s = await inst.install('toy-coco');
    expect(s.error).toBeNull();
    expect(s).toMatchObject({ text: false, readyText: false }); // what the pages show: caption checking off
    // Range requests are merged across small gaps, so a few bytes of a small text tensor between two visual ones
    // may come along; the text tower itself does not.
    expect(fetchedOf(spans)).toBeLessThan(bytes * 0.05);
    const { manifest, paths } = await packFiles(store, s.storeId!);
    expect(paths).not.toContain('text.onnx');
    expect(paths).not.toContain('text-tokenizer.json');
    expect(manifest.text).toBeUndefined();
  });

  it('on: its tensors are fetched, and the pack has text.onnx, text-tokenizer.json and a "text" section', async () => {
    const { spans, bytes } = await textSpans();
    const store = new MemoryPackStore();
    const { inst, states } = t.installer(store, testCatalogue(t.hub, t.fx));
    const s = await inst.install('toy-coco', undefined, true);
    expect(s.error).toBeNull();
    expect(s).toMatchObject({ text: true, readyText: true });
    expect(fetchedOf(spans)).toBe(bytes);
    const { manifest, paths } = await packFiles(store, s.storeId!);
    expect(paths).toEqual(expect.arrayContaining(['text.onnx', 'text-tokenizer.json']));
    expect(manifest.text).toMatchObject({ contextLength: 77 });
    expect(states.at(-1)).toMatchObject({ phase: 'ready' });
  });

  it('the choice is kept with the job: a paused install resumed by a new Installer builds the pack with text', async () => {
    t.hub.fault(PATHS.clipcapHub, { kind: 'slow', bytesPerSecond: 2_000_000, maxMs: 4000 });
    const store = new MemoryPackStore();
    const catalogue = testCatalogue(t.hub, t.fx);
    const first = t.installer(store, catalogue);
    const run = first.inst.install('toy-coco', undefined, true);
    await waitFor(async () => (await store.storedBytes('toy-coco~inputs', 'clipcap')) > 200_000, 'some clipcap bytes');
    await first.inst.pause('toy-coco');
    // Paused, the state still says what the job asks (the set-up page ticks its box from it); nothing is installed.
    expect(await run).toMatchObject({ phase: 'paused', text: true, readyText: false });
    t.hub.clearFaults();
    // The offscreen document restarted: a new Installer, asked to resume with no word about the text tower.
    const second = t.installer(store, catalogue);
    await second.inst.resume('toy-coco');
    const storeId = await second.inst.readyStoreId('toy-coco');
    expect((await packFiles(store, storeId!)).paths).toContain('text.onnx');
    // Installing again without saying anything keeps the pack as it is.
    t.hub.reset();
    expect((await second.inst.install('toy-coco')).storeId).toBe(storeId);
    expect(t.hub.log.filter((l) => l.file)).toEqual([]);
  });

  it('turned off on an installed model: nothing is downloaded, and the pack is the one an install without it makes', async () => {
    const catalogue = testCatalogue(t.hub, t.fx);
    const store = new MemoryPackStore();
    const { inst, states } = t.installer(store, catalogue);
    const on = await inst.install('toy-coco', undefined, true);
    expect((await packFiles(store, on.storeId!)).paths).toContain('text.onnx');
    t.hub.reset();
    states.length = 0;
    const off = await inst.install('toy-coco', undefined, false);
    expect(off.error).toBeNull();
    expect([on.readyText, off.readyText]).toEqual([true, false]);
    expect(off.storeId).not.toBe(on.storeId);
    expect([...t.hub.sent.keys()]).toEqual([]); // not a byte of either checkpoint
    // what the pages showed while it ran: no download
    expect(states.filter((s) => s.phase === 'converting').every((s) => s.storeId === on.storeId)).toBe(true);
    expect(states.some((s) => s.phase === 'downloading')).toBe(false);
    const got = await packFiles(store, off.storeId!);
    expect(got.paths).not.toContain('text.onnx');
    expect(got.manifest.text).toBeUndefined();
    expect(await store.getRecord(on.storeId!)).toBeNull(); // the old pack is deleted after the switch
    // the same files, byte for byte, as a fresh install without the text tower
    const fresh = new MemoryPackStore();
    const plain = await t.installer(fresh, catalogue).inst.install('toy-coco');
    expect(got.manifest.files).toEqual((await packFiles(fresh, plain.storeId!)).manifest.files);
  });

  it('turned on on an installed model: only the text tower is downloaded, and the pack is the one an install with it makes', async () => {
    const { spans, bytes } = await textSpans();
    const catalogue = testCatalogue(t.hub, t.fx);
    const store = new MemoryPackStore();
    const { inst, states } = t.installer(store, catalogue);
    const off = await inst.install('toy-coco');
    t.hub.reset();
    states.length = 0;
    const on = await inst.install('toy-coco', undefined, true);
    expect(on.error).toBeNull();
    expect(on).toMatchObject({ text: true, readyText: true, phase: 'ready' });
    expect(on.storeId).not.toBe(off.storeId);
    // clipcap.pt (GPT-2 and the mapper) is not fetched; of clip.pt, the text tower and the archive's index
    expect(t.hub.sent.get(PATHS.clipcapHub) ?? 0).toBe(0);
    expect(fetchedOf(spans)).toBe(bytes);
    expect(t.hub.sent.get(PATHS.clipAzure)).toBeLessThan(bytes * 1.1 + 200_000);
    // the progress the pages showed counted that download, not the model's
    const downloading = states.filter((s) => s.phase === 'downloading');
    expect(downloading.length).toBeGreaterThan(0);
    expect(Math.max(...downloading.map((s) => s.total))).toBeLessThan(catalogue.models[0].downloadBytes / 2);
    const got = await packFiles(store, on.storeId!);
    expect(got.paths).toEqual(expect.arrayContaining(['text.onnx', 'text-tokenizer.json']));
    expect(await store.getRecord(off.storeId!)).toBeNull();
    expect(await store.getRecord('toy-coco~inputs')).toBeNull();
    expect(await store.storedRanges('toy-coco~inputs', 'clip')).toEqual([]); // the downloaded ranges are let go
    // the same files and "text" section as a fresh install with the text tower; the provenance says where it came from
    const fresh = new MemoryPackStore();
    const full = await t.installer(fresh, catalogue).inst.install('toy-coco', undefined, true);
    const want = (await packFiles(fresh, full.storeId!)).manifest;
    expect(got.manifest.files).toEqual(want.files);
    expect(got.manifest.text).toEqual(want.text);
    expect(Object.keys(got.manifest)).toEqual(Object.keys(want));
    expect(got.manifest.provenance).toMatchObject({ textTower: { inputs: { clip: { url: expect.stringContaining('clip.pt') } } } });
    // and off again drops what on added, provenance included
    const again = await inst.install('toy-coco', undefined, false);
    expect((await packFiles(store, again.storeId!)).manifest.provenance).not.toHaveProperty('textTower');
  });

  it('turned on for a model whose mapper the user picked: the picked file is not asked for again', async () => {
    const catalogue = testCatalogue(t.hub, t.fx, (m) => {
      m.inputs.clipcap = { fetch: 'user-file', format: 'torch-zip', sources: [], hint: 'pick clipcap.pt' };
    });
    const store = new MemoryPackStore();
    const { inst } = t.installer(store, catalogue);
    const key = await stashPickedFile(store, new Blob([new Uint8Array(t.fx.file('clipcap.pt'))]));
    const off = await inst.install('toy-coco', { clipcap: key });
    expect(off.error).toBeNull();
    expect(await store.getBlob(key)).toBeNull(); // the picked file is let go once the pack is built
    const on = await inst.install('toy-coco', undefined, true);
    expect(on.error).toBeNull();
    expect(on).toMatchObject({ readyText: true, needsFiles: [] });
    expect((await packFiles(store, on.storeId!)).paths).toContain('text.onnx');
  });

  it('a change that fails leaves the pack in use as it was, and a retry finishes it', async () => {
    const store = new MemoryPackStore();
    const { inst } = t.installer(store, testCatalogue(t.hub, t.fx));
    const off = await inst.install('toy-coco');
    const before = await packFiles(store, off.storeId!);
    for (const path of [PATHS.clipAzure, PATHS.clipHub]) t.hub.fault(path, { kind: 'status', status: 503 });
    const failed = await inst.install('toy-coco', undefined, true);
    expect(failed.error?.name).toBe('MirrorsFailedError');
    expect(failed).toMatchObject({ storeId: off.storeId, readyText: false });
    expect(await packFiles(store, off.storeId!)).toEqual(before);
    expect((await store.listRecords()).map((r) => r.id)).toEqual([off.storeId]); // no half-built entry left
    t.hub.clearFaults();
    const on = await inst.install('toy-coco', undefined, true);
    expect(on).toMatchObject({ phase: 'ready', readyText: true, error: null });
  });

  it('a change cancelled keeps the installed pack and its choice: the states say so, and a later install keeps it', async () => {
    const store = new MemoryPackStore();
    const { inst, states } = t.installer(store, testCatalogue(t.hub, t.fx));
    const off = await inst.install('toy-coco');
    t.hub.fault(PATHS.clipcapHub, { kind: 'slow', bytesPerSecond: 2_000_000, maxMs: 4000 });
    const run = inst.install('toy-coco', undefined, true);
    await waitFor(() => states.at(-1)?.phase === 'downloading', 'the change downloading');
    // While it runs: asked for, not yet in the pack in use.
    expect(states.at(-1)).toMatchObject({ text: true, readyText: false, storeId: off.storeId });
    await inst.cancel('toy-coco');
    await run;
    t.hub.clearFaults();
    expect(states.at(-1)).toMatchObject({ phase: 'ready', text: false, readyText: false, storeId: off.storeId });
    // An install that says nothing (as after an extension update) must not build the cancelled choice.
    t.hub.reset();
    expect((await inst.install('toy-coco')).storeId).toBe(off.storeId);
    expect(t.hub.log.filter((l) => l.file)).toEqual([]);
  });
});
