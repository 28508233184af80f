/**
 * Install jobs across restarts. The offscreen document runs them and keeps them in IndexedDB, but it does not survive
 * a browser restart, so the worker remembers in settings (`installing`) which models are being installed: at start-up
 * it recreates the document, which resumes them. When a job ends, the model leaves the list; when the model that just
 * became ready is the one in use, it is loaded at once, so captions start with no further click, and the captions an
 * older pack of that model left in the cache are deleted.
 */
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

export async function onInstallStates(states: InstallState[], cache: Pick<CaptionCache, 'deletePack'>): Promise<void> {
  const settings = await getSettings();
  const ended = states.filter((s) => settings.installing.includes(s.id) && ENDED.includes(s.phase));
  if (ended.length === 0) return;
  await patchSettings({ installing: settings.installing.filter((id) => !ended.some((s) => s.id === id)) });
  const model = settings.model;
  if (model?.kind === 'catalogue' && ended.some((s) => s.id === model.id && s.phase === 'ready')) {
    // After an update, what the old pack wrote is not the new one's: forget it (stored, and in the document's memory).
    await cache.deletePack(model.id);
    await toOffscreen({ type: 'bg-os-clear', packs: false });
    await toOffscreen({ type: 'bg-os-load', packUrl: packRef(model), backend: settings.backend });
  }
}

/**
 * After the extension updates, installed catalogue models are installed again: the installer rebuilds only those
 * whose catalogue entry changed (new mirrors, hashes, template), and keeps the old pack in use until the new one is
 * ready; for the others it answers "ready" at once.
 */
export async function updateInstalled(): Promise<string[]> {
  const view = await toOffscreen({ type: 'bg-os-models' });
  const ready = view.states.filter((s) => s.phase === 'ready').map((s) => s.id);
  for (const id of ready) {
    await markInstalling(id, true);
    await toOffscreen({ type: 'bg-os-model-install', modelId: id });
  }
  return ready;
}

/** Recreate the offscreen document when installs were running: it resumes them (installer.resumeInterrupted). */
export async function resumeInstalls(): Promise<boolean> {
  const { installing } = await getSettings();
  if (installing.length === 0) return false;
  await ensureOffscreen();
  return true;
}

export function registerInstallWatch(cache: CaptionCache): void {
  chrome.runtime.onMessage.addListener((m: unknown, sender: chrome.runtime.MessageSender) => {
    if (isEvent(m, 'os-bg-models') && sender.id === chrome.runtime.id) {
      onInstallStates(m.states, cache).catch((err: unknown) => console.warn('[alt-text] install watch:', err));
    }
    return false;
  });
  const resume = () => void resumeInstalls().catch((err: unknown) => console.warn('[alt-text] resuming installs:', err));
  chrome.runtime.onStartup.addListener(resume);
  chrome.runtime.onInstalled.addListener((details) => {
    if (details.reason === 'update') void updateInstalled().catch((err: unknown) => console.warn('[alt-text] updating models:', err));
  });
  // Every worker start, too: after a crash or an update the worker starts without onStartup.
  resume();
}
