/**
 * Install jobs across restarts. The offscreen document runs them and keeps them in IndexedDB, but it does not survive
 * a browser restart, so the worker remembers in settings (`installing`) which models are being installed: at start-up
 * it recreates the document, which resumes them. When a job ends, the model leaves the list; when the model that just
 * became ready is the one in use, it is loaded at once, so captions start with no further click, and the captions an
 * older pack of that model left in the cache are deleted.
 */
import browser, { type Runtime } from 'webextension-polyfill';
import { isEvent, type InstallState } from '../shared/messages';
import { packRef } from '../shared/settings';
import type { CaptionCache } from './caption-cache';
import { ensureOffscreen, toOffscreen } from './offscreen-doc';
import { getSettings, patchSettings } from './settings-store';

/** Phases that end a job: it no longer needs resuming. ("not-installed" is set by cancel and remove themselves.) */
const ENDED: InstallState['phase'][] = ['ready', 'failed'];

export async function markInstalling(modelId: string, on: boolean): Promise<void> {
  const { installing } = await getSettings();
  if (installing.includes(modelId) === on) return;
  await patchSettings({ installing: on ? [...installing, modelId] : installing.filter((id) => id !== modelId) });
}

/**
 * The pack each model was updated from (browser.storage.local, so an update's restart keeps it): until the model is
 * ready with another pack, a "ready" that still names the old one is the state before the update, not its end.
 */
const UPDATING_KEY = 'updatingFrom';
async function updatingFrom(): Promise<Record<string, string>> {
  const got = (await browser.storage.local.get(UPDATING_KEY))[UPDATING_KEY];
  return got && typeof got === 'object' ? (got as Record<string, string>) : {};
}

export async function onInstallStates(states: InstallState[], cache: Pick<CaptionCache, 'deletePack'>): Promise<void> {
  const settings = await getSettings();
  const from = await updatingFrom();
  const stale = (s: InstallState) => s.phase === 'ready' && from[s.id] !== undefined && s.storeId === from[s.id];
  const ended = states.filter((s) => settings.installing.includes(s.id) && ENDED.includes(s.phase) && !stale(s));
  if (ended.length === 0) return;
  await patchSettings({ installing: settings.installing.filter((id) => !ended.some((s) => s.id === id)) });
  const replaced = new Set(ended.filter((s) => s.phase === 'ready' && from[s.id] !== undefined).map((s) => s.id));
  if (ended.some((s) => from[s.id] !== undefined)) {
    await browser.storage.local.set({
      [UPDATING_KEY]: Object.fromEntries(Object.entries(from).filter(([id]) => !ended.some((s) => s.id === id))),
    });
  }
  const model = settings.model;
  if (model?.kind === 'catalogue' && ended.some((s) => s.id === model.id && s.phase === 'ready')) {
    if (replaced.has(model.id)) {
      // An update switched packs: what the old one wrote is not the new one's. Forget it, stored and in memory.
      await cache.deletePack(model.id);
      await toOffscreen({ type: 'bg-os-clear', packs: false });
    }
    await toOffscreen({ type: 'bg-os-load', packUrl: packRef(model), backend: settings.backend });
  }
}

/**
 * After the extension updates, installed catalogue models are installed again: the installer rebuilds only those
 * whose catalogue entry changed (new mirrors, hashes, template), and keeps the old pack in use until the new one is
 * ready; for the others it answers "ready" at once, with the pack they had.
 */
export async function updateInstalled(): Promise<string[]> {
  const view = await toOffscreen({ type: 'bg-os-models' });
  const ready = view.states.filter((s) => s.phase === 'ready' && s.storeId);
  if (ready.length === 0) return [];
  await browser.storage.local.set({
    [UPDATING_KEY]: { ...(await updatingFrom()), ...Object.fromEntries(ready.map((s) => [s.id, s.storeId])) },
  });
  for (const { id } of ready) {
    await markInstalling(id, true);
    const after = await toOffscreen({ type: 'bg-os-model-install', modelId: id });
    const now = after.states.find((s) => s.id === id);
    if (now?.phase === 'ready' && now.storeId === ready.find((s) => s.id === id)?.storeId) {
      // Unchanged in the catalogue: nothing to rebuild, nothing to wait for.
      await markInstalling(id, false);
      const { [id]: _done, ...rest } = await updatingFrom();
      await browser.storage.local.set({ [UPDATING_KEY]: rest });
    }
  }
  return ready.map((s) => s.id);
}

/** Recreate the offscreen document when installs were running: it resumes them (installer.resumeInterrupted). */
export async function resumeInstalls(): Promise<boolean> {
  const { installing } = await getSettings();
  if (installing.length === 0) return false;
  await ensureOffscreen();
  return true;
}

export function registerInstallWatch(cache: CaptionCache): void {
  browser.runtime.onMessage.addListener((m: unknown, sender: Runtime.MessageSender) => {
    if (isEvent(m, 'os-bg-models') && sender.id === browser.runtime.id) {
      onInstallStates(m.states, cache).catch((err: unknown) => console.warn('[alt-text] install watch:', err));
    }
    return false;
  });
  const resume = () => void resumeInstalls().catch((err: unknown) => console.warn('[alt-text] resuming installs:', err));
  browser.runtime.onStartup.addListener(resume);
  browser.runtime.onInstalled.addListener((details) => {
    if (details.reason === 'update') void updateInstalled().catch((err: unknown) => console.warn('[alt-text] updating models:', err));
  });
  // Every worker start, too: after a crash or an update the worker starts without onStartup.
  resume();
}
