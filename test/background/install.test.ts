// Handler tests of model installs: the worker's ui-bg-model-* routing, the install watch (resume after a restart,
// load the model that just became ready), the set-up page opening on install, the status of a catalogue model, and
// the offscreen side (installer host and pack resolver) against a hand-written fake installer.
import 'fake-indexeddb/auto';
import { IDBFactory } from 'fake-indexeddb';
import { beforeEach, describe, expect, it } from 'vitest';
import type { CatalogueModel, InstallState } from '../../src/shared/messages';
import { dispatch, makeChrome } from '../helpers/chrome-fake';
import { installState } from '../helpers/install-state';
import { COCO, setupPage } from '../helpers/setup-page';

const TRANSFORMER: CatalogueModel = {
  ...COCO,
  id: 'clipcap-coco-transformer',
  name: 'ClipCap transformer',
  default: false,
  userFiles: [{ role: 'clipcap', hint: 'Google Drive' }],
};

const state = installState;

let fake: ReturnType<typeof makeChrome>;
let calls: { type: string; [k: string]: unknown }[];
let states: InstallState[];
/** What bg-os-model-install answers (null: the same as every other bg-os-model request, `states`). */
let afterInstall: InstallState[] | null;

async function setup(settings: Record<string, unknown> = {}) {
  calls = [];
  states = [state(COCO.id, 'not-installed')];
  afterInstall = null;
  fake = makeChrome({
    handle: async (msg) => {
      calls.push(msg);
      if (msg.type === 'bg-os-model-install' && afterInstall) return { ok: true, value: { catalogue: [COCO], states: afterInstall } };
      if (msg.type.startsWith('bg-os-model') || msg.type === 'bg-os-models') return { ok: true, value: { catalogue: [COCO], states } };
      if (msg.type === 'bg-os-status')
        return {
          ok: true,
          value: {
            state: 'ready',
            packUrl: 'model:clipcap-coco',
            packId: 'clipcap-coco',
            packName: '',
            progress: null,
            backend: 'wasm',
            backendReason: '',
            queued: 0,
            error: null,
          },
        };
      return {
        ok: true,
        value: {
          state: 'loading',
          packUrl: msg.packUrl,
          packId: '',
          packName: '',
          progress: null,
          backend: null,
          backendReason: '',
          queued: 0,
          error: null,
        },
      };
    },
  });
  (globalThis as unknown as { chrome: unknown }).chrome = fake;
  globalThis.indexedDB = new IDBFactory();
  await fake.storage.local.set({ settings });
}
const stored = async () => (await fake.storage.local.get('settings')).settings as { installing: string[]; model: unknown };

describe('worker: model installs', () => {
  beforeEach(async () => {
    await setup();
  });

  it('ui-bg-model-install is remembered (for a restart), forwarded with the picked file, and cancel forgets it', async () => {
    const { registerRouter } = await import('../../src/background/router');
    registerRouter();
    const send = (msg: unknown) => dispatch(fake.runtime.onMessage.listeners, msg, setupPage);
    const reply = await send({ type: 'ui-bg-model-install', modelId: COCO.id, picked: { clipcap: 'picked-1' } });
    expect(reply).toMatchObject({ ok: true, value: { catalogue: [{ id: COCO.id }] } });
    expect((await stored()).installing).toEqual([COCO.id]);
    expect(calls.find((c) => c.type === 'bg-os-model-install')).toEqual({
      type: 'bg-os-model-install',
      modelId: COCO.id,
      picked: { clipcap: 'picked-1' },
    });
    await send({ type: 'ui-bg-model-pause', modelId: COCO.id });
    expect((await stored()).installing).toEqual([COCO.id]);
    await send({ type: 'ui-bg-model-cancel', modelId: COCO.id });
    expect((await stored()).installing).toEqual([]);
    expect(calls.map((c) => c.type)).toEqual(['bg-os-model-install', 'bg-os-model-pause', 'bg-os-model-cancel']);
  });

  it('after a restart, running installs get their offscreen document back (it resumes them); none running, none created', async () => {
    const { resumeInstalls } = await import('../../src/background/install-watch');
    expect(await resumeInstalls()).toBe(false);
    expect(fake.state.creates).toBe(0);
    await setup({ installing: [COCO.id] });
    expect(await resumeInstalls()).toBe(true);
    expect(fake.state.creates).toBe(1);
  });

  it('a model that becomes ready leaves the list, and is loaded at once when it is the one in use', async () => {
    const { onInstallStates } = await import('../../src/background/install-watch');
    const keep = { deletePack: async () => Promise.reject(new Error('a first install has no older pack to forget')) };
    await setup({ installing: [COCO.id, 'toy'], model: { kind: 'catalogue', id: COCO.id } });
    fake.state.offscreenOpen = true;
    await onInstallStates([state(COCO.id, 'downloading', { bytes: 5, total: 10 })], keep);
    expect((await stored()).installing).toEqual([COCO.id, 'toy']);
    expect(calls).toEqual([]);
    await onInstallStates([state(COCO.id, 'ready'), state('toy', 'failed', { error: { name: 'NetworkError', message: 'offline' } })], keep);
    expect((await stored()).installing).toEqual([]);
    expect(calls).toEqual([{ type: 'bg-os-load', packUrl: 'model:clipcap-coco', backend: 'auto' }]);
  });

  it('an update: "ready" with the old pack is not its end; the switch to the new pack loads it and forgets the old pack\u2019s captions', async () => {
    const { onInstallStates, updateInstalled } = await import('../../src/background/install-watch');
    const { CaptionCache } = await import('../../src/background/caption-cache');
    const cache = new CaptionCache(() => 100, new IDBFactory());
    const made = (packId: string) => ({ text: 'a dog', packId, backend: 'wasm', confidence: 0.5 });
    await cache.put('model:clipcap-coco|greedy|https://a.test/1.png', made(COCO.id));
    await cache.put('https://p.test/other/|greedy|https://a.test/1.png', made('other'));
    await setup({ model: { kind: 'catalogue', id: COCO.id } });
    fake.state.offscreenOpen = true;
    states = [state(COCO.id, 'ready', { storeId: 'clipcap-coco@old' })];
    afterInstall = [state(COCO.id, 'queued', { storeId: 'clipcap-coco@old' })];
    expect(await updateInstalled()).toEqual([COCO.id]);
    expect((await stored()).installing).toEqual([COCO.id]);
    calls = [];
    // The state from before the update, broadcast late: the job has not ended, and nothing is forgotten.
    await onInstallStates([state(COCO.id, 'ready', { storeId: 'clipcap-coco@old' })], cache);
    expect((await stored()).installing).toEqual([COCO.id]);
    expect(await cache.count()).toBe(2);
    await onInstallStates([state(COCO.id, 'downloading', { storeId: 'clipcap-coco@old' })], cache);
    expect(calls).toEqual([]);
    await onInstallStates([state(COCO.id, 'ready', { storeId: 'clipcap-coco@new' })], cache);
    expect((await stored()).installing).toEqual([]);
    expect(calls).toEqual([
      { type: 'bg-os-clear', packs: false },
      { type: 'bg-os-load', packUrl: 'model:clipcap-coco', backend: 'auto' },
    ]);
    expect((await cache.dump()).map((e) => e.value.packId)).toEqual(['other']);
  });

  it('an update that changes nothing in the catalogue ends at once: the model is not left "installing"', async () => {
    const { updateInstalled } = await import('../../src/background/install-watch');
    states = [state(COCO.id, 'ready', { storeId: 'clipcap-coco@same' })];
    expect(await updateInstalled()).toEqual([COCO.id]);
    expect((await stored()).installing).toEqual([]);
  });

  it('a model that becomes ready while another is in use is not loaded (the old one keeps working)', async () => {
    const { onInstallStates } = await import('../../src/background/install-watch');
    await setup({ installing: [COCO.id], model: { kind: 'url', url: 'https://p.test/old/' } });
    fake.state.offscreenOpen = true;
    await onInstallStates([state(COCO.id, 'ready')], { deletePack: async () => 0 });
    expect((await stored()).installing).toEqual([]);
    expect(calls).toEqual([]);
  });

  it('after an extension update, installed models are installed again (the installer rebuilds only changed ones)', async () => {
    const { updateInstalled } = await import('../../src/background/install-watch');
    states = [state(COCO.id, 'ready'), state('toy', 'not-installed')];
    afterInstall = [state(COCO.id, 'queued', { storeId: `${COCO.id}@1` })]; // its entry changed: rebuilt
    expect(await updateInstalled()).toEqual([COCO.id]);
    expect(calls.filter((c) => c.type === 'bg-os-model-install')).toEqual([{ type: 'bg-os-model-install', modelId: COCO.id }]);
    expect((await stored()).installing).toEqual([COCO.id]);
  });

  it('the set-up page opens on install when no model is usable, not on update, and not when the build has a pack', async () => {
    const { onInstalled, ONBOARDING_PATH } = await import('../../src/background/onboarding');
    expect(await onInstalled({ reason: 'update' })).toBe(false);
    expect(await onInstalled({ reason: 'install' })).toBe(true);
    expect(fake.state.tabsCreated).toEqual([{ url: `chrome-extension://fake-ext-id/${ONBOARDING_PATH}` }]);
    await setup({ packSources: [{ url: 'https://p.test/coco/', name: 'COCO', builtIn: false }] });
    expect(await onInstalled({ reason: 'install' })).toBe(false);
    expect(fake.state.tabsCreated).toEqual([]);
  });

  it('status of a catalogue model: not set up (named), downloading with progress, then the engine status', async () => {
    const { currentStatus } = await import('../../src/background/model-status');
    await setup({ model: { kind: 'catalogue', id: COCO.id } });
    expect(await currentStatus()).toMatchObject({ state: 'no-pack', packUrl: 'model:clipcap-coco', packName: 'ClipCap COCO' });
    states = [state(COCO.id, 'downloading', { bytes: 120e6, total: 290e6 })];
    expect(await currentStatus()).toMatchObject({ state: 'downloading', progress: { done: 35, total: 100 } });
    states = [state(COCO.id, 'ready')];
    expect(await currentStatus()).toMatchObject({ state: 'ready', packName: 'ClipCap COCO', backend: 'wasm' });
    // An update downloads beside the pack in use: that pack still captions, so the status stays the engine's.
    states = [state(COCO.id, 'downloading', { bytes: 120e6, total: 290e6, storeId: 'clipcap-coco@old' })];
    expect(await currentStatus()).toMatchObject({ state: 'ready', packName: 'ClipCap COCO' });
  });

  it('no model at all: "no-pack", and a caption request is refused with NoPackError before the model is asked', async () => {
    const { currentStatus } = await import('../../src/background/model-status');
    expect(await currentStatus()).toMatchObject({ state: 'no-pack', packUrl: '' });
    const { registerRouter } = await import('../../src/background/router');
    registerRouter();
    const tab = { id: 'fake-ext-id', tab: { id: 3 } as chrome.tabs.Tab, frameId: 0, url: 'http://example.test/' };
    const reply = await dispatch(
      fake.runtime.onMessage.listeners,
      { type: 'cs-bg-caption', requestId: 'r1', source: { kind: 'url', url: 'http://example.test/a.png' }, priority: 1 },
      tab,
    );
    expect(reply).toMatchObject({ ok: false, error: { name: 'NoPackError' } });
    expect(calls).toEqual([]);
  });
});

describe('offscreen: installer host and pack resolver', () => {
  function fakeInstaller(initial: InstallState[]) {
    const log: string[] = [];
    let now = initial;
    return {
      log,
      set: (s: InstallState[]) => (now = s),
      installer: {
        install: async (id: string, picked?: Record<string, string>, text?: boolean) =>
          void log.push(`install ${id} ${JSON.stringify(picked ?? null)}${text === undefined ? '' : ` text=${text}`}`),
        pause: async (id: string) => void log.push(`pause ${id}`),
        resume: async (id: string) => void log.push(`resume ${id}`),
        cancel: async (id: string) => void log.push(`cancel ${id}`),
        remove: async (id: string) => void log.push(`remove ${id}`),
        states: async () => now,
        resumeInterrupted: async () => undefined,
        readyStoreId: async (id: string) => now.find((s) => s.id === id && s.phase === 'ready')?.storeId ?? null,
      },
    };
  }

  it('every catalogue model has a state; unknown models are refused by name; actions reach the installer', async () => {
    const { InstallerHost } = await import('../../src/offscreen/installer-host');
    const f = fakeInstaller([state(COCO.id, 'paused', { bytes: 3, total: 10 })]);
    const host = new InstallerHost({ installer: f.installer, catalogue: [COCO, TRANSFORMER] }, () => undefined);
    const view = await host.view();
    expect(view.states.map((s) => [s.id, s.phase])).toEqual([
      [COCO.id, 'paused'],
      [TRANSFORMER.id, 'not-installed'],
    ]);
    await expect(host.install('nope')).rejects.toMatchObject({ name: 'UnknownModelError' });
    await host.install(TRANSFORMER.id, { clipcap: 'picked-1' });
    // the set-up page's opt-in for CLIP's text tower reaches the installer as it was given
    await host.install(COCO.id, undefined, true);
    await host.act('resume', COCO.id);
    await host.act('cancel', COCO.id);
    expect(f.log).toEqual([
      `install ${TRANSFORMER.id} {"clipcap":"picked-1"}`,
      `install ${COCO.id} null text=true`,
      `resume ${COCO.id}`,
      `cancel ${COCO.id}`,
    ]);
  });

  it('progress events: a phase change goes out at once, bytes at most every PROGRESS_INTERVAL_MS, the last bytes still go out', async () => {
    const { InstallerHost, PROGRESS_INTERVAL_MS } = await import('../../src/offscreen/installer-host');
    const f = fakeInstaller([state(COCO.id, 'queued')]);
    const sent: string[] = [];
    let clock = 1000;
    const host = new InstallerHost(
      { installer: f.installer, catalogue: [COCO] },
      (s) => sent.push(`${s[0].phase}:${s[0].bytes}`),
      () => clock,
    );
    const tick = () => new Promise((r) => setTimeout(r, 0));
    host.changed();
    await tick();
    f.set([state(COCO.id, 'downloading', { bytes: 1, total: 100 })]);
    host.changed();
    await tick();
    for (let b = 2; b <= 50; b += 1) {
      f.set([state(COCO.id, 'downloading', { bytes: b, total: 100 })]);
      host.changed();
      await tick();
    }
    expect(sent).toEqual(['queued:0', 'downloading:1']);
    clock += PROGRESS_INTERVAL_MS;
    await new Promise((r) => setTimeout(r, PROGRESS_INTERVAL_MS + 50));
    expect(sent).toEqual(['queued:0', 'downloading:1', 'downloading:50']);
    f.set([state(COCO.id, 'verifying', { bytes: 100, total: 100 })]);
    host.changed();
    await tick();
    expect(sent.at(-1)).toBe('verifying:100');
  });

  it('pack references: a model not set up is a NoPackError that names it; ready ones and folders come from the store', async () => {
    const { resolvePack, packKey } = await import('../../src/offscreen/pack-resolver');
    const ready = async (id: string) => (id === 'toy' ? 'toy@7' : null);
    await expect(resolvePack('model:clipcap-coco', ready, [COCO])).rejects.toMatchObject({
      name: 'NoPackError',
      message: expect.stringContaining('ClipCap COCO is not set up yet'),
    });
    expect(await resolvePack('model:toy', ready, [])).toEqual({ kind: 'stored', storeId: 'toy@7' });
    expect(await resolvePack('folder:mine', ready, [])).toEqual({ kind: 'stored', storeId: 'mine' });
    expect(await resolvePack('https://p.test/coco/', ready, [])).toEqual({ kind: 'url', url: 'https://p.test/coco/' });
    await expect(resolvePack('javascript:alert(1)', ready, [])).rejects.toMatchObject({ name: 'NoPackError' });
    // An update is a new store entry: a new engine key, so the new pack is loaded and the old one served until then.
    expect(packKey({ kind: 'stored', storeId: 'toy@7' })).not.toBe(packKey({ kind: 'stored', storeId: 'toy@8' }));
  });
});
