// The offscreen document only wires: the queue, the engine host, and the bg-os- handlers.
import { makeListener, senderOf, type Handlers } from '../shared/messages';
import { EngineHost } from './engine-host';
import { JobQueue } from './job-queue';
import { sourceToBlob } from './pixels';
import { clearCachedPacks } from './engine-adapter';
import { registerOffscreenTestHooks } from './test-hooks';

type Result = Awaited<ReturnType<EngineHost['caption']>>;

/** Images fetched ahead of their turn, at most. */
const PREFETCH_LIMIT = 8;

let host: EngineHost;
const queue = new JobQueue<Result>(512, 256, () => host?.update({}));
host = new EngineHost(() => queue.size);

const handlers: Handlers<'bg-os-'> = {
  'bg-os-caption': (m) => {
    // Fetch while earlier images are being captioned, so the one-at-a-time model never waits for the network.
    const bytes = queue.size < PREFETCH_LIMIT ? sourceToBlob(m.source) : null;
    bytes?.catch(() => {
      // Reported by the job that awaits it.
    });
    return queue.submit(m.requestId, m.key, m.priority, (signal) => host.caption(m.packUrl, m.backend, bytes ?? m.source, m.decoding, signal));
  },
  'bg-os-cancel': (m) => {
    queue.cancel(m.requestIds);
    return null;
  },
  'bg-os-status': () => ({ ...host.status, queued: queue.size }),
  'bg-os-load': async (m) => {
    // Start (or keep) loading; the reply is the status right now, progress follows as events.
    host.get(m.packUrl, m.backend).catch(() => {
      // The error is in the status, which the UI shows.
    });
    await Promise.resolve();
    return { ...host.status, queued: queue.size };
  },
  'bg-os-clear': async (m) => {
    // Captions remembered in memory go with the cache; the queue and the packs only when the packs go.
    if (m.packs) queue.clear();
    else queue.forget();
    return { packs: m.packs ? await clearCachedPacks() : 0 };
  },
};

// Only the service worker (or one of our pages) may drive the model: same extension, not a tab.
chrome.runtime.onMessage.addListener(
  makeListener(['bg-os-'], handlers, senderOf),
);

// Compiled out of release builds.
if (__TEST__) registerOffscreenTestHooks(host);
