/**
 * Install jobs across restarts. The offscreen document runs them and keeps them in IndexedDB, but it does not survive
 * a browser restart, so the worker remembers in settings (`installing`) which models are being installed: at start-up
 * it recreates the document, which resumes them. When a job ends, the model leaves the list; when the model that just
 * became ready is the one in use, it is loaded at once, so captions start with no further click.
 *
 * The caption cache keys a model's captions by its reference (`model:<id>`), which outlives the pack: an update, caption
 * checking turned on or off (CLIP's text tower added or dropped), a removal. So the worker remembers which store entry
 * each model's captions come from, and when an install state names another one (or none), that model's captions are
 * forgotten, stored and in memory, whatever the job was and whether the model is in use.
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

/**
 * The store entry each catalogue model's cached captions were made with (browser.storage.local, so a worker restart
 * keeps it). An install state names the entry in use (storeId, which stays the old one while a new one is built).
 */
const CAPTIONS_FROM_KEY = 'captionsFrom';

/**
 * Forget the captions of every model whose pack in use is not the one they were made with; returns the models whose
 * pack changed to another (not to none).
 */
async function forgetOldCaptions(states: InstallState[], cache: Pick<CaptionCache, 'deletePack'>): Promise<Set<string>> {
  const got = (await browser.storage.local.get(CAPTIONS_FROM_KEY))[CAPTIONS_FROM_KEY];
  const from = got && typeof got === 'object' ? { ...(got as Record<string, string>) } : {};
  const changed = states.filter((s) => (from[s.id] ?? null) !== s.storeId);
  if (changed.length === 0) return new Set();
  // Deleted before the new entry is written: should the worker stop in between, the next event deletes them again.
  const forget = changed.filter((s) => from[s.id] !== undefined);
  for (const s of forget) await cache.deletePack(s.id);
  if (forget.length) await toOffscreen({ type: 'bg-os-clear', packs: false });
  for (const s of changed) {
    if (s.storeId) from[s.id] = s.storeId;
    else delete from[s.id];
  }
  await browser.storage.local.set({ [CAPTIONS_FROM_KEY]: from });
  return new Set(forget.filter((s) => s.storeId !== null).map((s) => s.id));
}

/** Events arrive a few a second and each handler reads and writes storage: one at a time, in order. */
let handling: Promise<unknown> = Promise.resolve();

export function onInstallStates(states: InstallState[], cache: Pick<CaptionCache, 'deletePack'>): Promise<void> {
  const run = handling.then(() => handleStates(states, cache));
  handling = run.catch(() => undefined);
  return run;
}

async function handleStates(states: InstallState[], cache: Pick<CaptionCache, 'deletePack'>): Promise<void> {
  const switched = await forgetOldCaptions(states, cache);
  const settings = await getSettings();
  const model = settings.model;
  const load = () => toOffscreen({ type: 'bg-os-load', packUrl: packRef(model!), backend: settings.backend });
  const inUse = model?.kind === 'catalogue' ? model.id : null;
  const from = await updatingFrom();
  const stale = (s: InstallState) => s.phase === 'ready' && from[s.id] !== undefined && s.storeId === from[s.id];
  const ended = states.filter((s) => settings.installing.includes(s.id) && ENDED.includes(s.phase) && !stale(s));
  if (ended.length === 0) {
    // A new pack of the model in use (set up again from a page, whose job this worker may not have watched): load it.
    if (inUse && switched.has(inUse)) await load();
    return;
  }
  await patchSettings({ installing: settings.installing.filter((id) => !ended.some((s) => s.id === id)) });
  if (ended.some((s) => from[s.id] !== undefined)) {
    await browser.storage.local.set({
      [UPDATING_KEY]: Object.fromEntries(Object.entries(from).filter(([id]) => !ended.some((s) => s.id === id))),
    });
  }
  if (inUse && (switched.has(inUse) || ended.some((s) => s.id === inUse && s.phase === 'ready'))) await load();
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
