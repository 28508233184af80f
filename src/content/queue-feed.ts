/**
 * What goes into the frame's caption requests (caption-requests.ts), and in which order: images on screen first, then
 * the rest of the page nearest to the reading position first, so a screen-reader user reading ahead of the viewport
 * finds labels there too. The queue is bounded; an image it turns away is kept here (the element and its place on
 * the page then) and offered again, nearest first, when it has room. Results go to the labels; failures are logged (each
 * distinct one once).
 */
import { PRIORITY } from '../shared/messages';
import type { AutoLabels } from './auto-labels';
import { CaptionRequests, type QueueStats } from './caption-requests';
import { F_NAME, type Changes } from './changes';
import { hasOurLabel } from './labeller';
import { logOnce, logSkip } from './log';
import type { PageActivity } from './page-activity';
import { pagePosition, readingPosition, type Visibility } from './visibility';
import type { WorkLoop } from './work-loop';

/** Test builds remember this many URLs asked about. */
const SENT_LOG_MAX = 5000;
/** After scrolling stops for this long, turned-away images now on screen are offered at once. */
const SCROLL_SETTLE_MS = 250;
/** How far beyond the viewport's edges "on screen" reaches, px (as the visibility observer's margin). */
const NEAR_VIEW_PX = 200;

export class QueueFeed {
  private readonly queue: CaptionRequests;
  /** Turned away by a full queue, with their place on the page then; offered again when it has room. */
  private readonly dropped = new Map<Element, number>();
  /** Test builds: the URLs asked about, oldest first (bounded). */
  private readonly sentLog: string[] = [];
  /** A pass over the turned-away images is under way (one at a time). */
  private offering = false;
  /** The reader moved during a pass: one more pass for what is on screen now. */
  private moved = false;
  private scrollTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly loop: WorkLoop,
    private readonly changes: Changes,
    private readonly visibility: Visibility,
    labels: AutoLabels,
    activity: PageActivity,
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
          // Labelled, or left unlabelled on purpose (the model was unsure): either way done until it changes.
          if (labels.put(el, src, result) !== 'stale') visibility.watch(el, false);
        },
        onError(_el, src, err) {
          // Aborted: nothing to say. An extension that was reloaded or crashed is said once with what to do
          // (messaging.ts), and every image it leaves undescribed still gets its own skip line: none is lost silently.
          if (err.name === 'AbortError') return;
          if (err.name === 'NoPackError') logOnce('warn', 'no-pack', `No model is set up yet. ${err.message}`);
          else logSkip(src, `${err.name}: ${err.message}`);
        },
        onDrop: (el, place) => {
          // Not watched while turned away: an intersection observer with thousands of targets costs the page frames
          // whenever its layout changes. Where it is matters again when it is offered (nearest first, or on screen).
          visibility.watch(el, false);
          this.dropped.set(el, place);
          logOnce('info', 'queue-full', 'many images on this page: those on screen are described first');
        },
        onRoom: () => this.offerDropped(),
      },
      signal,
      { readingAt: readingPosition, backgroundTurn: () => activity.backgroundTurn() },
    );
    // The reader moved: turned-away images now on screen go ahead of the rest without waiting for room.
    document.addEventListener(
      'scroll',
      () => {
        clearTimeout(this.scrollTimer);
        this.scrollTimer = setTimeout(() => this.offerDropped(true), SCROLL_SETTLE_MS);
      },
      { capture: true, passive: true, signal },
    );
    signal.addEventListener('abort', () => clearTimeout(this.scrollTimer), { once: true });
  }

  /** Ask about the element's picture; visible images (now, or by their box) go first. */
  add(el: Element, src: string, verified: boolean): void {
    this.dropped.delete(el);
    this.visibility.watch(el, true);
    // The box was just read to judge the element, so its place costs no layout.
    this.queue.add(el, src, this.visibility.onScreen(el) ? PRIORITY.visible : PRIORITY.rest, verified, pagePosition(el));
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

  /**
   * The queue has room again (or the reader moved): offer the turned-away images nearest the reading position, as many
   * as there is room for, and after a scroll every one now on screen (each takes the place of a waiting image farther
   * away). One step of the work loop, with no layout read: the places were noted when the images were turned away.
   */
  private offerDropped(onScreenToo = false): void {
    if (this.offering) {
      this.moved ||= onScreenToo;
      return;
    }
    if (this.dropped.size === 0) return;
    this.offering = true;
    // In a step of the work loop, after the changes already noted; no layout read (places were noted when turned away).
    this.loop.add(() => {
      const at = readingPosition();
      const near = [...this.dropped].map(([el, place]) => ({ el, d: Math.abs(place - at) })).sort((a, b) => a.d - b.d);
      let room = this.queue.maxQueued - this.queue.pending;
      const onScreen = innerHeight / 2 + NEAR_VIEW_PX;
      for (const { el, d } of near) {
        if (room-- <= 0 && !(onScreenToo && d <= onScreen)) break;
        this.dropped.delete(el);
        if (el.isConnected) this.changes.mark(el, F_NAME);
      }
      this.offering = false;
      if (this.moved) {
        this.moved = false;
        this.offerDropped(true);
      }
      // More than there was room for: offer the rest when the queue has room again, whether or not it turns any away.
      if (this.dropped.size > 0) this.queue.callOnRoom();
      return false;
    });
  }
}
