// The offscreen document only wires: the queue, the engine host, the installer, and the bg-os- handlers.
import { LIMITS } from '../shared/limits';
import {
  PRIORITY,
  addMessageListener,
  emit,
  makeListener,
  senderOf,
  type Caption,
  type Decoding,
  type Handlers,
  type ImageSource,
} from '../shared/messages';
import { decodingKey, type BackendChoice } from '../shared/settings';
import { OffscreenEngineHost } from './engine-host';
import { fetchImage } from './fetch-image';
import { InferenceQueue } from './inference-queue';
import { InstallerHost } from './installer-host';
import { keepBackgroundAwake } from './keep-alive';
import { openInstaller } from './installer-factory';
import { resolvePack } from './pack-resolver';
import { registerOffscreenTestHooks } from './test-hooks';

/** Images fetched ahead of their turn, at most. */
const PREFETCH_LIMIT = 8;

let installs: InstallerHost | null = null;
const installer = openInstaller(() => installs?.changed()).then((bundle) => {
  installs = new InstallerHost(bundle, (states) => emit({ type: 'os-bg-models', states }));
  // The document does not survive a browser restart (nor a close): jobs that were running continue where they were.
  void bundle.installer.resumeInterrupted().catch((err: unknown) => console.warn('[alt-text] resuming installs failed:', err));
  return installs;
});

/** One caption request as the queue holds it: the image (or its bytes, already on their way) and how to caption it. */
interface CaptionJob {
  packUrl: string;
  backend: BackendChoice;
  decoding: Decoding;
  image: ImageSource | Promise<Blob>;
}

// The queue reports its size to the host's status, and the host reads the queue's size: the queue comes first.
const queue: InferenceQueue<Caption, CaptionJob> = new InferenceQueue<Caption, CaptionJob>({
  runner: {
    one: (j, signal, urgent) => host.caption(j.packUrl, j.backend, j.image, j.decoding, signal, urgent),
    many: (jobs, signal) =>
      host.captionBatch(
        jobs[0].packUrl,
        jobs[0].backend,
        jobs.map((j) => j.image),
        jobs[0].decoding,
        signal,
      ),
    // Greedy captions of one model share batches; beam search decodes its beams as the rows already.
    group: (j) => (j.decoding.strategy === 'greedy' ? `${j.backend}|${j.packUrl}|${decodingKey(j.decoding)}` : null),
  },
  maxBatch: LIMITS.queue.batchRows,
  gatherMs: LIMITS.queue.batchGatherMs,
  idleMs: LIMITS.queue.batchIdleMs,
  urgentBelow: PRIORITY.visible,
  onChange: () => host.statusChanged(),
});
const host = new OffscreenEngineHost(
  () => queue.size,
  async (ref) => {
    const i = await installer;
    return resolvePack(ref, (id) => i.installer.readyStoreId(id), (await i.view()).catalogue);
  },
);

const handlers: Handlers<'bg-os-'> = {
  'bg-os-caption': (m) => {
    // Fetch while earlier images are being captioned, so the one-at-a-time model never waits for the network.
    const bytes = queue.size < PREFETCH_LIMIT ? fetchImage(m.source) : null;
    bytes?.catch(() => {
      // Reported by the job that awaits it.
    });
    return queue.submit(m.requestId, m.key, m.priority, {
      packUrl: m.packUrl,
      backend: m.backend,
      decoding: m.decoding,
      image: bytes ?? m.source,
    });
  },
  'bg-os-cancel': (m) => {
    queue.cancel(m.requestIds);
    return null;
  },
  'bg-os-status': () => ({ ...host.status, queued: queue.size }),
  'bg-os-load': async (m) => {
    // Start (or keep) loading; the reply is the status right now, progress follows as events.
    host.load(m.packUrl, m.backend).catch(() => {
      // The error is in the status, which the UI shows.
    });
    await Promise.resolve();
    return { ...host.status, queued: queue.size };
  },
  'bg-os-clear': async (m) => {
    // Captions remembered in memory go with the cache; the queue and the packs only when the packs go.
    if (m.packs) queue.clear();
    else queue.forget();
    return { packs: m.packs ? await host.deletePacks() : 0 };
  },
  'bg-os-models': async () => (await installer).view(),
  'bg-os-model-install': async (m) => (await installer).install(m.modelId, m.picked, m.text),
  'bg-os-model-pause': async (m) => (await installer).act('pause', m.modelId),
  'bg-os-model-resume': async (m) => (await installer).act('resume', m.modelId),
  'bg-os-model-cancel': async (m) => (await installer).act('cancel', m.modelId),
  'bg-os-model-remove': async (m) => (await installer).act('remove', m.modelId),
};

// Only the service worker (or one of our pages) may drive the model: same extension, not a tab.
addMessageListener(makeListener(['bg-os-'], handlers, senderOf));

// Firefox unloads an idle event page, and this page with it: keep it while there is work (keep-alive.ts). Chrome's
// offscreen document outlives its service worker.
if (__BROWSER__ === 'firefox') {
  const loading = () => host.status.state === 'downloading' || host.status.state === 'loading';
  keepBackgroundAwake(() => queue.size + (loading() ? 1 : 0) + (installs?.busy ? 1 : 0));
}

// Compiled out of release builds.
if (__TEST__) registerOffscreenTestHooks(host);
