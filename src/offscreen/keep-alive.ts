/**
 * Firefox frames the engine page in its event page (background/engine-page.ts), and unloads an event page after a
 * while with no event coming in: a reply it still owes a content script does not count. A model that takes longer to
 * load, or a long queue, would be cut off mid-way, and every waiting image fail. So while the engine page has work,
 * and for a grace period after it (LIMITS.queue.keepAliveGraceMs: the next page should not wait for the model to load
 * again), it sends the background an event every LIMITS.queue.keepAliveMs. Then it stops, and the event page may go;
 * the next request frames the engine page again.
 */
import { LIMITS } from '../shared/limits';
import { emit } from '../shared/messages';

export interface KeepAlive {
  everyMs: number;
  graceMs: number;
  /** The beat (tests give a fake). */
  beat(queued: number): void;
}

/** Beat while `queued()` says there is work, and for `graceMs` after; returns a function that stops. */
export function keepBackgroundAwake(
  queued: () => number,
  {
    everyMs = LIMITS.queue.keepAliveMs,
    // Test builds may shorten it (vite.config.ts KEEP_ALIVE_GRACE_MS), to see the event page go and come back.
    graceMs = __KEEP_ALIVE_GRACE_MS__ ?? LIMITS.queue.keepAliveGraceMs,
    beat = (n: number) => emit({ type: 'os-bg-alive', queued: n }),
  }: Partial<KeepAlive> = {},
): () => void {
  let lastBusy = -Infinity;
  const timer = setInterval(() => {
    const n = queued();
    const now = performance.now();
    if (n > 0) lastBusy = now;
    if (now - lastBusy <= graceMs) beat(n);
  }, everyMs);
  return () => clearInterval(timer);
}
