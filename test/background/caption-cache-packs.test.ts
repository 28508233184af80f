// The caption cache across changes of the installed pack (issue 17's opt-in): a caption is keyed by the model's pack
// reference (`model:<id>`), which stays the same when the user turns caption checking on or off, removes and sets the
// model up again, or an update rebuilds it. Each of those is a new store entry; the worker must then not serve what the
// old pack said (a caption with no CLIP verdict after the text tower came, an "uncertain" one after it went).
// Settings that change what the engine computes (rerankWeight) are in the key; skipUncertain is applied to the served
// caption by the content script, so a cached caption keeps its verdict.
import 'fake-indexeddb/auto';
import { IDBFactory } from 'fake-indexeddb';
import { beforeEach, describe, expect, it } from 'vitest';
import type { Caption, InstallState } from '../../src/shared/messages';
import { dispatch, makeChrome } from '../helpers/chrome-fake';
import { installState } from '../helpers/install-state';
import { COCO, setupPage } from '../helpers/setup-page';

const state = (phase: InstallState['phase'], storeId: string | null, readyText = false) =>
  installState(COCO.id, phase, { storeId, text: readyText, readyText });

/** What the fake engine says of every image: the pack in the store now, with or without CLIP's verdict. */
let engine: Caption;
let calls: { type: string; [k: string]: unknown }[];
let fake: ReturnType<typeof makeChrome>;
/** Called while the fake engine captions (to change things mid-request). */
let during: (() => Promise<void>) | null;

const PLAIN: Caption = { text: 'a red square', packId: COCO.id, backend: 'wasm' };
const CHECKED: Caption = { text: 'a red square', packId: COCO.id, backend: 'wasm', clipScore: 0.41, uncertain: false };
const UNSURE: Caption = { text: 'a man holding a phone', packId: COCO.id, backend: 'wasm', clipScore: 0.05, uncertain: true };

beforeEach(async () => {
  calls = [];
  during = null;
  engine = PLAIN;
  fake = makeChrome({
    handle: async (msg) => {
      calls.push(msg);
      if (msg.type === 'bg-os-caption') {
        if (during) await during();
        return { ok: true, value: engine };
      }
      if (msg.type === 'bg-os-clear') return { ok: true, value: { packs: 0 } };
      if (msg.type.startsWith('bg-os-model') || msg.type === 'bg-os-models')
        return { ok: true, value: { catalogue: [COCO], states: [state('ready', 'clipcap-coco@1')] } };
      return { ok: true, value: null };
    },
  });
  fake.state.offscreenOpen = true;
  (globalThis as unknown as { chrome: unknown }).chrome = fake;
  globalThis.indexedDB = new IDBFactory();
  await fake.storage.local.set({ settings: { model: { kind: 'catalogue', id: COCO.id } } });
});

async function worker() {
  const { registerRouter } = await import('../../src/background/router');
  const { onInstallStates } = await import('../../src/background/install-watch');
  const cache = registerRouter();
  const tab = { id: 'fake-ext-id', tab: { id: 3 } as chrome.tabs.Tab, frameId: 0, url: 'http://example.test/' };
  const caption = async (url = 'http://example.test/a.png') => {
    const r = (await dispatch(
      fake.runtime.onMessage.listeners,
      { type: 'cs-bg-caption', requestId: `r${Math.random()}`, source: { kind: 'url', url }, priority: 1 },
      tab,
    )) as { ok: boolean; value: Caption & { cached: boolean } };
    expect(r.ok).toBe(true);
    return r.value;
  };
  const page = (msg: unknown) => dispatch(fake.runtime.onMessage.listeners, msg, setupPage);
  /** The offscreen document's progress events, as the worker hears them. */
  const events = async (...states: InstallState[]) => {
    for (const s of states) await onInstallStates([s], cache);
  };
  return { cache, caption, page, events };
}

describe('caption cache: a new pack of the same model', () => {
  it('caption checking turned on: a caption cached before (no CLIP verdict) is not served after', async () => {
    const w = await worker();
    await w.events(state('ready', 'clipcap-coco@1'));
    expect(await w.caption()).toMatchObject({ ...PLAIN, cached: false });
    expect(await w.caption()).toMatchObject({ cached: true });
    // The set-up page turns caption checking on: the model is built again beside the one in use.
    await w.page({ type: 'ui-bg-model-install', modelId: COCO.id, text: true });
    await w.events(state('queued', 'clipcap-coco@1'), state('downloading', 'clipcap-coco@1'), state('converting', 'clipcap-coco@1'));
    // Until the new pack is ready, the old one still captions, and its captions are still good.
    expect(await w.caption()).toMatchObject({ cached: true });
    engine = CHECKED;
    await w.events(state('ready', 'clipcap-coco@2', true));
    const after = await w.caption();
    expect(after).toMatchObject({ ...CHECKED, cached: false });
    // The offscreen document's in-memory captions went too, and the new pack was loaded at once.
    expect(calls.filter((c) => c.type === 'bg-os-clear' || c.type === 'bg-os-load').map((c) => c.type)).toEqual([
      'bg-os-clear',
      'bg-os-load',
    ]);
  });

  it('caption checking turned off: an "uncertain" caption is not served after', async () => {
    const w = await worker();
    engine = UNSURE;
    await w.events(state('ready', 'clipcap-coco@1', true));
    expect(await w.caption()).toMatchObject({ uncertain: true, cached: false });
    engine = PLAIN;
    await w.events(state('converting', 'clipcap-coco@1', true), state('ready', 'clipcap-coco@2'));
    // A job this worker did not start (or whose start it did not see) still has its new pack loaded at once.
    expect(calls.filter((c) => c.type === 'bg-os-load')).toHaveLength(1);
    const after = await w.caption();
    expect(after.cached).toBe(false);
    expect(after.uncertain).toBeUndefined();
  });

  it('removed, then set up again: what the removed pack said is gone', async () => {
    const w = await worker();
    await w.events(state('ready', 'clipcap-coco@1'));
    await w.caption();
    await w.page({ type: 'ui-bg-model-remove', modelId: COCO.id });
    expect(await w.cache.count()).toBe(0);
    engine = CHECKED;
    await w.events(state('not-installed', null), state('downloading', null), state('ready', 'clipcap-coco@2', true));
    expect(await w.caption()).toMatchObject({ ...CHECKED, cached: false });
  });

  it('a model not in use that is built again loses its captions too (they would be served once it is chosen)', async () => {
    const w = await worker();
    await w.events(state('ready', 'clipcap-coco@1'));
    await w.caption();
    await fake.storage.local.set({ settings: { model: { kind: 'url', url: 'https://p.test/other/' } } });
    await w.events(state('ready', 'clipcap-coco@2', true));
    expect(await w.cache.count()).toBe(0);
    expect(calls.filter((c) => c.type === 'bg-os-load')).toEqual([]); // not in use: not loaded
  });

  it('a caption the old pack finishes after the switch is not stored under the model', async () => {
    const w = await worker();
    await w.events(state('ready', 'clipcap-coco@1'));
    during = async () => {
      during = null;
      await w.events(state('ready', 'clipcap-coco@2', true));
    };
    await w.caption();
    expect(await w.cache.count()).toBe(0);
  });

  it('events that change nothing keep the cache (progress of the job, the same pack again)', async () => {
    const w = await worker();
    await w.events(state('ready', 'clipcap-coco@1'));
    await w.caption();
    await w.events(state('ready', 'clipcap-coco@1'), state('downloading', 'clipcap-coco@1'), state('ready', 'clipcap-coco@1'));
    expect(await w.caption()).toMatchObject({ cached: true });
    expect(calls.filter((c) => c.type === 'bg-os-clear')).toEqual([]);
  });
});

describe('caption cache: settings', () => {
  it('a changed rerankWeight is a new key; back to the pack\u2019s own weight finds the first caption again', async () => {
    const w = await worker();
    await w.events(state('ready', 'clipcap-coco@1', true));
    engine = CHECKED;
    await w.caption();
    const set = async (rerankWeight: number | null) =>
      fake.storage.local.set({ settings: { model: { kind: 'catalogue', id: COCO.id }, strategy: 'beam', rerankWeight } });
    await set(null);
    expect(await w.caption()).toMatchObject({ cached: false });
    await set(0.5);
    expect(await w.caption()).toMatchObject({ cached: false });
    expect((calls.filter((c) => c.type === 'bg-os-caption').at(-1)!.decoding as { rerankWeight?: number }).rerankWeight).toBe(0.5);
    await set(null);
    expect(await w.caption()).toMatchObject({ cached: true });
  });

  it('skipUncertain does not change the cache: a cached caption keeps its verdict for the content script to apply', async () => {
    const w = await worker();
    await w.events(state('ready', 'clipcap-coco@1', true));
    engine = UNSURE;
    await w.caption();
    await fake.storage.local.set({ settings: { model: { kind: 'catalogue', id: COCO.id }, skipUncertain: false } });
    expect(await w.caption()).toMatchObject({ uncertain: true, clipScore: 0.05, cached: true });
  });
});
