/** The model's status for the UI: asked of the offscreen document when it exists, else derived from settings. */
import type { ModelStatus } from '../shared/messages';
import { activePack } from '../shared/settings';
import { offscreenExists, toOffscreen } from './offscreen-doc';
import { getSettings } from './settings-store';

export async function currentStatus(): Promise<ModelStatus> {
  const settings = await getSettings();
  const pack = activePack(settings);
  if (await offscreenExists()) {
    const s = await toOffscreen({ type: 'bg-os-status' });
    if (pack && s.packUrl === pack.url) return s;
    if (pack && s.state !== 'idle') return { ...s, state: 'idle', packUrl: pack.url, packId: '', packName: pack.name, progress: null, error: null };
    if (pack) return s;
  }
  return {
    state: pack ? 'idle' : 'no-pack',
    packUrl: pack?.url ?? '',
    packId: '',
    packName: pack?.name ?? '',
    progress: null,
    backend: null,
    backendReason: '',
    queued: 0,
    error: null,
  };
}
