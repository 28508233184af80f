/**
 * A plain page with the engine frame's Worker shim (src/sandbox/module-workers.ts) installed, for
 * test/browser/module-workers.test.ts: a module worker that sets its message handler only after a pause must still get
 * the messages posted to it at once, though the shim revoked its boot script's URL as soon as the worker had it.
 */
import { moduleWorkersAsClassic } from '../../src/sandbox/module-workers';

moduleWorkersAsClassic();

// blob: URLs not yet revoked, to see that the shim's boot script URL does not outlive the worker's start
const live = new Set<string>();
const create = URL.createObjectURL.bind(URL);
const revoke = URL.revokeObjectURL.bind(URL);
URL.createObjectURL = (o: Blob | MediaSource) => {
  const u = create(o);
  live.add(u);
  return u;
};
URL.revokeObjectURL = (u: string) => {
  live.delete(u);
  revoke(u);
};

/** A worker whose module listens only after `pauseMs`; every message posted at once comes back, or null after 5 s. */
async function echoAfterPause(
  pauseMs: number,
  messages: string[],
): Promise<{ classic: boolean; echoed: string[]; bootUrlsLeft: number } | null> {
  const module = [
    `await new Promise((r) => setTimeout(r, ${pauseMs}));`,
    // A classic worker's global scope has importScripts; a module worker's does not.
    "self.onmessage = (e) => postMessage({ classic: typeof importScripts === 'function', data: e.data });",
  ].join('\n');
  const url = URL.createObjectURL(new Blob([module], { type: 'text/javascript' }));
  const before = live.size;
  const worker = new Worker(url, { type: 'module' });
  const bootUrlsLeft = live.size - before;
  const echoed: string[] = [];
  let classic = false;
  const done = new Promise<boolean>((resolve) => {
    worker.onmessage = (e: MessageEvent<{ classic: boolean; data: string }>) => {
      classic = e.data.classic;
      echoed.push(e.data.data);
      if (echoed.length === messages.length) resolve(true);
    };
    setTimeout(() => resolve(false), 5000);
  });
  for (const m of messages) worker.postMessage(m);
  const ok = await done;
  worker.terminate();
  URL.revokeObjectURL(url);
  return ok ? { classic, echoed, bootUrlsLeft } : null;
}

(window as unknown as { echoAfterPause: typeof echoAfterPause }).echoAfterPause = echoAfterPause;
document.getElementById('status')!.textContent = 'ready';
