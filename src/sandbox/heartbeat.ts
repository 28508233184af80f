/**
 * The engine frame's heartbeat: a worker thread in the frame's process that answers every message on its port at once.
 * The frame's own thread can be busy inside ORT for seconds (a session's creation, a full-size vision run), so its
 * silence says little; the worker is never busy, so its silence means the process is gone. The offscreen document
 * gets the port (engine-link-client.ts) and notices a crash within LIMITS.sandbox.heartbeatSilentMs instead of the
 * frame's own limit of tens of seconds.
 *
 * The worker is a classic one from a blob: URL, as in module-workers.ts: a sandboxed page's origin is opaque, and
 * Chromium refuses it a worker from the extension's URL. A browser that refuses this one too (a policy without blob:
 * scripts) leaves the frame without a heartbeat: the port resolves to null, and the frame's own limit applies.
 */
import { LIMITS } from '../shared/limits';

// The worker's whole script: take the port it is sent, beat once to say it runs, then answer each message.
const SCRIPT = 'onmessage = (e) => { const port = e.ports[0]; port.onmessage = () => port.postMessage(0); port.postMessage(0); };';

/** Workers started here, referenced for the frame's lifetime so that none is collected while its port is in use. */
const running: Worker[] = [];

/** Start the heartbeat; resolves with the port to hand on once the worker has beaten once, or null without one. */
export function startHeartbeat(startMs: number = LIMITS.sandbox.heartbeatStartMs): Promise<MessagePort | null> {
  let worker: Worker;
  try {
    const url = URL.createObjectURL(new Blob([SCRIPT], { type: 'text/javascript' }));
    worker = new Worker(url);
    URL.revokeObjectURL(url);
  } catch (err) {
    console.warn('[alt-text] engine: no heartbeat worker:', err instanceof Error ? err.message : String(err));
    return Promise.resolve(null);
  }
  const channel = new MessageChannel();
  return new Promise((resolve) => {
    const done = (port: MessagePort | null) => {
      clearTimeout(timer);
      worker.onerror = null;
      channel.port1.onmessage = null;
      if (port) running.push(worker);
      else worker.terminate();
      resolve(port);
    };
    const timer = setTimeout(() => done(null), startMs);
    worker.onerror = (e) => {
      console.warn('[alt-text] engine: the heartbeat worker failed:', e.message);
      done(null);
    };
    channel.port1.onmessage = () => done(channel.port1);
    worker.postMessage(null, [channel.port2]);
  });
}
