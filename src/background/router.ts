/** The worker's router: every cs-bg-/ui-bg- request is sender-checked, validated, dispatched and answered once. */
import browser from 'webextension-polyfill';
import { addMessageListener, makeListener, type Handlers } from '../shared/messages';
import { CaptionCache } from './caption-cache';
import { captionImage } from './caption-service';
import { setFrameCount, tabCount } from './label-counts';
import { markInstalling } from './install-watch';
import { currentStatus } from './model-status';
import { offscreenExists, toOffscreen } from './offscreen-doc';
import { senderAllowed } from './senders';
import { getSettings } from './settings-store';

function makeHandlers(cache: CaptionCache): Handlers<'cs-bg-' | 'ui-bg-'> {
  return {
    'cs-bg-caption': async (m) => captionImage(cache, await getSettings(), m),
    'cs-bg-cancel': async (m) => {
      await toOffscreen({ type: 'bg-os-cancel', requestIds: m.requestIds }, 1).catch(() => null);
      return null;
    },
    'cs-bg-label-count': async (m, sender) => {
      await setFrameCount(sender.tab!.id!, sender.frameId ?? 0, m.count, m.unsure ?? 0);
      return null;
    },
    'cs-bg-status': () => currentStatus(),
    'ui-bg-status': () => currentStatus(),
    'ui-bg-tab-info': (m) => tabCount(m.tabId),
    'ui-bg-caption': async (m) => captionImage(cache, await getSettings(), { ...m, priority: 0 }),
    'ui-bg-load-pack': async (m) => {
      const settings = await getSettings();
      return toOffscreen({ type: 'bg-os-load', packUrl: m.packUrl, backend: settings.backend });
    },
    'ui-bg-clear-cache': async (m) => {
      const captions = await cache.clear();
      // The offscreen document remembers recent captions in memory; with no document there is nothing to forget.
      const packs = m.packs || (await offscreenExists()) ? (await toOffscreen({ type: 'bg-os-clear', packs: m.packs })).packs : 0;
      return { captions, packs };
    },
    'ui-bg-models': () => toOffscreen({ type: 'bg-os-models' }),
    'ui-bg-model-install': async (m) => {
      // Remembered first: should the browser close now, the next start resumes it.
      await markInstalling(m.modelId, true);
      return toOffscreen({
        type: 'bg-os-model-install',
        modelId: m.modelId,
        ...(m.picked ? { picked: m.picked } : {}),
        ...(m.text !== undefined ? { text: m.text } : {}),
      });
    },
    'ui-bg-model-pause': (m) => toOffscreen({ type: 'bg-os-model-pause', modelId: m.modelId }),
    'ui-bg-model-resume': async (m) => {
      await markInstalling(m.modelId, true);
      return toOffscreen({ type: 'bg-os-model-resume', modelId: m.modelId });
    },
    'ui-bg-model-cancel': async (m) => {
      const view = await toOffscreen({ type: 'bg-os-model-cancel', modelId: m.modelId });
      await markInstalling(m.modelId, false);
      return view;
    },
    'ui-bg-model-remove': async (m) => {
      const view = await toOffscreen({ type: 'bg-os-model-remove', modelId: m.modelId });
      await markInstalling(m.modelId, false);
      // Its captions go with it: set up again later, the model may be built otherwise (caption checking on or off).
      await cache.deletePack(m.modelId);
      return view;
    },
  };
}

export function registerRouter(): CaptionCache {
  let max = 5000;
  const cache = new CaptionCache(() => max);
  // The age bound holds even for a browser that was closed for a month: purge at every worker start.
  void cache.purgeExpired().catch((err: unknown) => console.warn('[alt-text] caption cache purge failed:', err));
  void getSettings().then((s) => (max = s.cacheMaxEntries));
  browser.storage.onChanged.addListener(() => void getSettings().then((s) => (max = s.cacheMaxEntries)));
  addMessageListener(makeListener(['cs-bg-', 'ui-bg-'], makeHandlers(cache), senderAllowed));
  return cache;
}
