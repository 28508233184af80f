/**
 * The model's status for the UI: asked of the offscreen document when it exists, else derived from settings. A
 * catalogue model counts as installed only when its installer says it is ready; until then the status is "no-pack"
 * (or "downloading", with the install's progress), so the content script labels nothing and the popup says why.
 */
import type { InstallState, ModelStatus, ModelsView } from '../shared/messages';
import { activeModel, packRef, type ModelRef, type Settings } from '../shared/settings';
import { installPercent } from '../shared/status-text';
import { offscreenExists, toOffscreen } from './offscreen-doc';
import { getSettings } from './settings-store';

const BUSY: InstallState['phase'][] = ['queued', 'downloading', 'verifying', 'converting', 'paused'];

/** The name a person knows the model by: the catalogue's, the pack's own, or the imported folder's. */
function modelName(ref: ModelRef, settings: Settings, view?: ModelsView | null): string {
  if (ref.kind === 'catalogue') return view?.catalogue.find((m) => m.id === ref.id)?.name ?? ref.id;
  if (ref.kind === 'folder') return settings.folders.find((f) => f.id === ref.id)?.name || ref.id;
  return settings.packSources.find((p) => p.url === ref.url)?.name ?? '';
}

function derived(state: ModelStatus['state'], packUrl: string, packName: string, progress: ModelStatus['progress'] = null): ModelStatus {
  return { state, packUrl, packId: '', packName, progress, backend: null, backendReason: '', queued: 0, error: null };
}

export async function currentStatus(): Promise<ModelStatus> {
  const settings = await getSettings();
  const model = activeModel(settings);
  if (!model) return derived('no-pack', '', '');
  const ref = packRef(model);
  let name = modelName(model, settings);
  if (model.kind === 'catalogue') {
    const view = await toOffscreen({ type: 'bg-os-models' });
    name = modelName(model, settings, view);
    const install = view.states.find((s) => s.id === model.id);
    // An update downloads beside the pack in use (storeId): that pack still captions, so the model is not "downloading".
    if (install?.phase !== 'ready' && !install?.storeId) {
      const busy = install && BUSY.includes(install.phase);
      // Progress of the whole job (download, check, conversion), the same figure the set-up page's bar shows.
      return derived(busy ? 'downloading' : 'no-pack', ref, name, busy ? { done: installPercent(install), total: 100 } : null);
    }
  }
  if (await offscreenExists()) {
    const s = await toOffscreen({ type: 'bg-os-status' });
    if (s.packUrl === ref) return { ...s, packName: s.packName || name };
    if (s.state !== 'idle') return derived('idle', ref, name);
    return { ...s, packUrl: ref, packName: name };
  }
  return derived('idle', ref, name);
}
