// Handler tests: the service worker's router, offscreen lifecycle and caption cache, against a fake chrome.*.
import type { Menus, Tabs } from 'webextension-polyfill';
import 'fake-indexeddb/auto';
import { IDBFactory } from 'fake-indexeddb';
import { beforeEach, describe, expect, it } from 'vitest';
import { dispatch, makeChrome } from '../helpers/chrome-fake';

const PACK = 'http://127.0.0.1:9/packs/toy/';
const tabSender = { id: 'fake-ext-id', tab: { id: 3 } as chrome.tabs.Tab, frameId: 0, url: 'http://example.test/page' };
const pageSender = { id: 'fake-ext-id', url: 'chrome-extension://fake-ext-id/src/popup/index.html' };

let fake: ReturnType<typeof makeChrome>;
let offscreenCalls: { type: string; [k: string]: unknown }[];
let offscreenImpl: (msg: { type: string; [k: string]: unknown }) => Promise<unknown>;

async function setup(settings: Record<string, unknown> = { packSources: [{ url: PACK, name: 'Toy', builtIn: false }] }) {
  offscreenCalls = [];
  offscreenImpl = async (msg) => {
    if (msg.type === 'bg-os-caption')
      return { ok: true, value: { text: 'A red circle on a white background.', packId: 'toy', backend: 'wasm', confidence: -0.1 } };
    if (msg.type === 'bg-os-status')
      return {
        ok: true,
        value: {
          state: 'ready',
          packUrl: PACK,
          packId: 'toy',
          packName: 'Toy',
          progress: null,
          backend: 'wasm',
          backendReason: 'no adapter',
          queued: 0,
          error: null,
        },
      };
    if (msg.type === 'bg-os-clear') return { ok: true, value: { packs: 0 } };
    return { ok: true, value: null };
  };
  fake = makeChrome({
    handle: (msg) => {
      offscreenCalls.push(msg);
      return offscreenImpl(msg);
    },
  });
  (globalThis as unknown as { chrome: unknown }).chrome = fake;
  await fake.storage.local.set({ settings });
  // A fresh database per test.
  globalThis.indexedDB = new IDBFactory();
  const { registerRouter } = await import('../../src/background/router');
  registerRouter();
  return (msg: unknown, sender: object = tabSender) => dispatch(fake.runtime.onMessage.listeners, msg, sender);
}

const captionMsg = (id: string, url = 'http://example.test/a.png') => ({
  type: 'cs-bg-caption',
  requestId: id,
  source: { kind: 'url', url },
  priority: 1,
});

describe('background router', () => {
  let send: Awaited<ReturnType<typeof setup>>;
  beforeEach(async () => {
    send = await setup();
  });

  it('answers a caption request through the offscreen document, then from the cache', async () => {
    const first = (await send(captionMsg('r1'))) as { ok: true; value: { text: string; cached: boolean } };
    expect(first).toMatchObject({ ok: true, value: { text: 'A red circle on a white background.', packId: 'toy', cached: false } });
    const second = await send(captionMsg('r2'));
    expect(second).toMatchObject({ ok: true, value: { cached: true } });
    expect(offscreenCalls.filter((m) => m.type === 'bg-os-caption')).toHaveLength(1);
    const call = offscreenCalls[0];
    expect(call.key).toBe(`${PACK}|greedy-30|http://example.test/a.png`);
    expect(call.packUrl).toBe(PACK);
  });

  it('creates the offscreen document once, even for racing requests', async () => {
    const replies = await Promise.all([1, 2, 3, 4].map((i) => send(captionMsg(`r${i}`, `http://example.test/${i}.png`))));
    expect(replies.every((r) => (r as { ok: boolean }).ok)).toBe(true);
    expect(fake.state.creates).toBe(1);
  });

  it('recreates the offscreen document when it was closed mid-request, and loses nothing', async () => {
    let closedOnce = false;
    const normal = offscreenImpl;
    offscreenImpl = async (msg) => {
      if (msg.type === 'bg-os-caption' && !closedOnce) {
        closedOnce = true;
        fake.state.offscreenOpen = false;
        throw new Error(
          'A listener indicated an asynchronous response by returning true, but the message channel closed before a response was received',
        );
      }
      return normal(msg);
    };
    const r = await send(captionMsg('r1'));
    expect(r).toMatchObject({ ok: true, value: { text: 'A red circle on a white background.' } });
    expect(fake.state.creates).toBe(2);
  });

  it('refuses requests from the wrong sender', async () => {
    expect(await send({ type: 'ui-bg-status' }, tabSender)).toMatchObject({ ok: false, error: { name: 'ForbiddenSenderError' } });
    expect(await send(captionMsg('r1'), { id: 'fake-ext-id', url: 'chrome-extension://fake-ext-id/x.html' })).toMatchObject({
      ok: false,
      error: { name: 'ForbiddenSenderError' },
    });
    expect(await send(captionMsg('r1'), { ...tabSender, id: 'other-extension' })).toMatchObject({
      ok: false,
      error: { name: 'ForbiddenSenderError' },
    });
    expect(offscreenCalls).toHaveLength(0);
  });

  it('refuses malformed requests and unknown types with a named error', async () => {
    expect(await send(captionMsg('r1', 'javascript:alert(1)'))).toMatchObject({ ok: false, error: { name: 'BadMessageError' } });
    expect(await send({ type: 'cs-bg-caption', requestId: 5 })).toMatchObject({ ok: false, error: { name: 'BadMessageError' } });
    expect(await send({ type: 'cs-bg-nope' })).toMatchObject({ ok: false, error: { name: 'BadMessageError' } });
  });

  it('ignores messages meant for other contexts (no reply, so their own listener answers)', async () => {
    expect(await send({ type: 'bg-os-status' })).toBeUndefined();
    expect(await send({ type: 'os-bg-status', status: {} })).toBeUndefined();
  });

  it('carries an error from the offscreen document as a named error', async () => {
    offscreenImpl = async () => ({
      ok: false,
      error: { name: 'ImageFetchError', message: 'The image could not be downloaded (HTTP 404).' },
    });
    expect(await send(captionMsg('r1'))).toEqual({
      ok: false,
      error: { name: 'ImageFetchError', message: 'The image could not be downloaded (HTTP 404).' },
    });
  });

  it('says what to do when no pack is configured', async () => {
    send = await setup({ packSources: [] });
    expect(await send(captionMsg('r1'))).toMatchObject({ ok: false, error: { name: 'NoPackError' } });
    expect(await send({ type: 'ui-bg-status' }, pageSender)).toMatchObject({ ok: true, value: { state: 'no-pack' } });
  });

  it('keys data: and blob-read images by content hash', async () => {
    const data = 'data:image/png;base64,iVBORw0KGgo=';
    await send({ type: 'cs-bg-caption', requestId: 'd1', source: { kind: 'bytes', dataUrl: data }, priority: 1 });
    expect(String(offscreenCalls[0].key)).toMatch(/\|sha256:[0-9a-f]{64}$/);
  });

  it('forwards cancellations to the offscreen queue', async () => {
    await send(captionMsg('r1'));
    expect(await send({ type: 'cs-bg-cancel', requestIds: ['r9'] })).toEqual({ ok: true, value: null });
    expect(offscreenCalls.at(-1)).toEqual({ type: 'bg-os-cancel', requestIds: ['r9'] });
  });

  it('counts labels per tab over its frames, and the images left unlabelled because the model was unsure', async () => {
    await send({ type: 'cs-bg-label-count', count: 3, unsure: 1 }, { ...tabSender, frameId: 0 });
    // A content script of the version before (no unsure count) still counts.
    await send({ type: 'cs-bg-label-count', count: 2 }, { ...tabSender, frameId: 5 });
    expect(await send({ type: 'ui-bg-tab-info', tabId: 3 }, pageSender)).toEqual({ ok: true, value: { count: 5, unsure: 1 } });
    await send({ type: 'cs-bg-label-count', count: 2, unsure: 4 }, { ...tabSender, frameId: 5 });
    expect(await send({ type: 'ui-bg-tab-info', tabId: 3 }, pageSender)).toEqual({ ok: true, value: { count: 5, unsure: 5 } });
    // A new top-level document starts the tab afresh, unsure count included.
    await send({ type: 'cs-bg-label-count', count: 0, unsure: 0 }, { ...tabSender, frameId: 0 });
    expect(await send({ type: 'ui-bg-tab-info', tabId: 3 }, pageSender)).toEqual({ ok: true, value: { count: 0, unsure: 0 } });
    expect(await send({ type: 'cs-bg-label-count', count: 1, unsure: -1 })).toMatchObject({
      ok: false,
      error: { name: 'BadMessageError' },
    });
  });

  it('reports that arrive together are all counted: a new page starting afresh, then its labels, frames side by side', async () => {
    // A content script reports as it labels, and its frames report too: the worker handles them interleaved, each a
    // read and a write of session storage. The popup once read 0 labels on a page with 7 (the page's fresh start
    // written over its later counts).
    await send({ type: 'cs-bg-label-count', count: 4 }, { ...tabSender, frameId: 0 });
    const reports = [0, 1, 2, 3, 4, 5, 6, 7].map((count, i) =>
      send({ type: 'cs-bg-label-count', count, unsure: i === 7 ? 1 : 0 }, { ...tabSender, frameId: 0 }),
    );
    reports.push(send({ type: 'cs-bg-label-count', count: 2 }, { ...tabSender, frameId: 5 }));
    await Promise.all(reports);
    expect(await send({ type: 'ui-bg-tab-info', tabId: 3 }, pageSender)).toEqual({ ok: true, value: { count: 9, unsure: 1 } });
  });

  it("the engine's verdict is part of the caption: an uncertain caption comes back uncertain from the cache too", async () => {
    offscreenImpl = async (msg) =>
      msg.type === 'bg-os-caption'
        ? { ok: true, value: { text: 'A blue star.', packId: 'toy', backend: 'wasm', clipScore: 0.21, uncertain: true } }
        : { ok: true, value: null };
    expect(await send(captionMsg('u1'))).toMatchObject({ ok: true, value: { uncertain: true, clipScore: 0.21, cached: false } });
    expect(await send(captionMsg('u2'))).toMatchObject({ ok: true, value: { uncertain: true, clipScore: 0.21, cached: true } });
    expect(offscreenCalls.filter((m) => m.type === 'bg-os-caption')).toHaveLength(1);
  });

  it("the re-ranking weight is sent only when chosen, and a chosen one is part of the beam caption's cache key", async () => {
    send = await setup({ packSources: [{ url: PACK, name: 'Toy', builtIn: false }], strategy: 'beam', beams: 3 });
    await send(captionMsg('w1'));
    const byDefault = offscreenCalls.find((m) => m.type === 'bg-os-caption')!;
    expect(byDefault.decoding).toEqual({ strategy: 'beam', beams: 3, maxTokens: 30 });
    expect(byDefault.key).toBe(`${PACK}|beam3-30|http://example.test/a.png`);
    await fake.storage.local.set({
      settings: { packSources: [{ url: PACK, name: 'Toy', builtIn: false }], strategy: 'beam', beams: 3, rerankWeight: 0.5 },
    });
    // Not the caption cached under the pack's own weight: asked again, with the weight.
    expect(await send(captionMsg('w2'))).toMatchObject({ ok: true, value: { cached: false } });
    const chosen = offscreenCalls.filter((m) => m.type === 'bg-os-caption')[1];
    expect(chosen.decoding).toEqual({ strategy: 'beam', beams: 3, maxTokens: 30, rerankWeight: 0.5 });
    expect(chosen.key).toBe(`${PACK}|beam3-30-rr0.5|http://example.test/a.png`);
  });

  it('clears the caption cache on request', async () => {
    await send(captionMsg('r1'));
    expect(await send({ type: 'ui-bg-clear-cache', packs: false }, pageSender)).toEqual({ ok: true, value: { captions: 1, packs: 0 } });
    expect(await send(captionMsg('r2'))).toMatchObject({ ok: true, value: { cached: false } });
  });
});

describe('describe this image', () => {
  it('the context-menu handler asks the clicked frame; the command asks the active tab', async () => {
    await setup();
    const { onMenuClick, onCommand } = await import('../../src/background/describe');
    await onMenuClick({ menuItemId: 'describe-image', srcUrl: 'http://x/a.png', frameId: 4 } as Menus.OnClickData, { id: 9 } as Tabs.Tab);
    await onCommand('describe-image', undefined);
    expect(fake.state.tabMessages).toEqual([
      { tabId: 9, msg: { type: 'bg-cs-describe', via: 'menu', srcUrl: 'http://x/a.png' }, opts: { frameId: 4 } },
      { tabId: 7, msg: { type: 'bg-cs-describe', via: 'command' }, opts: undefined },
    ]);
  });
});
