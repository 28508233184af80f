/**
 * What goes into the frame's caption requests (caption-requests.ts), and in which order: images on screen first. The queue
 * is bounded; an image it turns away is kept here and offered again, visible ones first, when it has room. Results go
 * to the labels; failures are logged (each distinct one once).
 */
import { PRIORITY } from '../shared/messages';
import type { AutoLabels } from './auto-labels';
import { CaptionRequests, type QueueStats } from './caption-requests';
import { F_NAME, type Changes } from './changes';
import { hasOurLabel } from './labeller';
import { logOnce, logSkip } from './log';
import type { Visibility } from './visibility';

/** Test builds remember this many URLs asked about. */
const SENT_LOG_MAX = 5000;

export class QueueFeed {
  private readonly queue: CaptionRequests;
  /** Turned away by a full queue; offered again when it has room. */
  private readonly dropped = new Set<Element>();
  /** Test builds: the URLs asked about, oldest first (bounded). */
  private readonly sentLog: string[] = [];

  constructor(
    private readonly changes: Changes,
    private readonly visibility: Visibility,
    labels: AutoLabels,
    signal: AbortSignal,
  ) {
    this.queue = new CaptionRequests(
      {
        onSent: __TEST__
          ? (src) => {
              this.sentLog.push(src);
              if (this.sentLog.length > SENT_LOG_MAX) this.sentLog.shift();
            }
          : undefined,
        onResult: (el, src, result) => {
          if (labels.put(el, src, result)) visibility.watch(el, false);
        },
        onError(_el, src, err) {
          // Aborted: nothing to say. An extension that was reloaded or crashed is said once with what to do
          // (messaging.ts), and every image it leaves undescribed still gets its own skip line: none is lost silently.
          if (err.name === 'AbortError') return;
          if (err.name === 'NoPackError') logOnce('warn', 'no-pack', err.message);
          else logSkip(src, `${err.name}: ${err.message}`);
        },
        onDrop: (el) => {
          this.dropped.add(el);
          logOnce('info', 'queue-full', 'many images on this page: those on screen are described first');
        },
        onRoom: () => this.offerDropped(),
      },
      signal,
    );
  }

  /** Ask about the element's picture; visible images (now, or by their box) go first. */
  add(el: Element, src: string, verified: boolean): void {
    this.dropped.delete(el);
    this.visibility.watch(el, true);
    this.queue.add(el, src, this.visibility.onScreen(el) ? PRIORITY.visible : PRIORITY.rest, verified);
  }

  /** The element no longer waits (changed, named, broken); the request is cancelled if nobody else waits for it. */
  remove(el: Element): void {
    this.queue.remove(el);
  }

  /** The element left the page. */
  forget(el: Element): void {
    this.queue.remove(el);
    this.dropped.delete(el);
  }

  /** The page is going away: cancel what was asked. */
  cancelAll(): void {
    this.queue.cancelAll();
  }

  /** The element came on screen or left it. */
  visibilityChanged(el: Element, visible: boolean): void {
    if (!visible) this.queue.setPriority(el, PRIORITY.rest);
    else if (this.queue.has(el)) this.queue.setPriority(el, PRIORITY.visible);
    else if (!hasOurLabel(el)) this.changes.mark(el, F_NAME);
  }

  clear(): void {
    this.dropped.clear();
  }

  /** What a test build reads. */
  stats(): { queue: QueueStats; dropped: number } {
    return { queue: { ...this.queue.stats }, dropped: this.dropped.size };
  }

  /** Test builds: how many requests went out for URLs containing `part`. */
  sentMatching(part: string): number {
    return this.sentLog.filter((u) => u.includes(part)).length;
  }

  /** The queue has room again: visible ones first, then in document order, as many as there is room for. */
  private offerDropped(): void {
    let room = this.queue.maxQueued - this.queue.pending;
    for (const pass of [true, false]) {
      for (const el of this.dropped) {
        if (room <= 0) return;
        if (this.visibility.isVisible(el) !== pass) continue;
        this.dropped.delete(el);
        this.changes.mark(el, F_NAME);
        room -= 1;
      }
    }
  }
}
