/**
 * Firefox frames the engine page in its event page (background/engine-page.ts), and unloads an event page after a
 * while with no event coming in: a reply it still owes a content script does not count. A model that takes longer to
 * load, or a long queue, would be cut off mid-way, and every waiting image fail. So while the engine page has work it
 * sends the background an event every LIMITS.queue.keepAliveMs; when it is idle it sends nothing, and the event page
 * may go (the next request frames the engine page again).
 */
import { LIMITS } from '../shared/limits';
import { emit } from '../shared/messages';

/** Beat while `queued()` says there is work; returns a function that stops. */
export function keepBackgroundAwake(queued: () => number, everyMs = LIMITS.queue.keepAliveMs): () => void {
  const timer = setInterval(() => {
    const n = queued();
    if (n > 0) emit({ type: 'os-bg-alive', queued: n });
  }, everyMs);
  return () => clearInterval(timer);
}
