/**
 * The frame's caption requests: its queue of images to caption. The same URL is asked once; visible images go first (lower priority
 * number), then document order; a few requests are in flight at a time, so the worker's queue stays short and
 * priorities stay current. Images that leave the page, and everything on teardown, are cancelled.
 *
 * Bounded, whatever the page does: at most `maxQueued` distinct images wait. When it is full, an image off screen is
 * turned away, and a visible one takes the place of the oldest waiting image off screen; whoever is turned away is
 * handed back (onDrop) and offered again when there is room (onRoom). Remembered results and failures are bounded too.
 * Images off screen may be held while the page is busy (backgroundTurn); a visible one is asked about at once.
 */
import { BoundedMap } from '../shared/bounded-map';
import { isPermanent, toWire } from '../shared/errors';
import { LIMITS } from '../shared/limits';
import { PRIORITY, newRequestId, type CaptionResult } from '../shared/messages';
import { request } from './messaging';
import { toImageSource } from './safe-source';

interface Entry {
  src: string;
  elements: Set<Element>;
  priority: number;
  /** Where it is among equal priorities: its place on the page (px from the top) when known, else its arrival. */
  order: number;
  requestId: string | null;
  /** Some element showed this URL as a loaded <img>; otherwise it is loaded as an image before it is sent. */
  verified: boolean;
}

export interface QueueCallbacks {
  onResult(el: Element, src: string, result: CaptionResult): void;
  onError(el: Element, src: string, err: Error): void;
  /** The element was turned away (the queue was full), with the `order` it came with; offer it again after onRoom. */
  onDrop?(el: Element, order: number): void;
  /** The queue has room again. */
  onRoom?(): void;
  /** A caption request for this URL went out (test builds count them). */
  onSent?(src: string): void;
}

export interface QueueOptions {
  maxInFlight?: number;
  maxQueued?: number;
  /** Where the user reads now, on the same scale as `order`: the nearest waiting image goes first. */
  readingAt?: () => number;
  /** May an image off screen be asked about now? 0: yes; else ms to wait (the page is busy: page-activity.ts). */
  backgroundTurn?: () => number;
}

/** What a test build reads (through the content script's test hook). */
export interface QueueStats {
  pending: number;
  maxPending: number;
  sent: number;
  /** Of those sent, for images off screen (the rest of the page, described in the background). */
  sentBackground: number;
  cancelled: number;
  dropped: number;
}

export class CaptionRequests {
  private entries = new Map<string, Entry>();
  private byElement = new Map<Element, string>();
  private inFlight = 0;
  private seq = 0;
  private answeredBySrc = new BoundedMap<string, CaptionResult>(LIMITS.queue.frameRemembered);
  private failedBySrc = new BoundedMap<string, Error>(LIMITS.queue.frameRemembered);
  private full = false;
  readonly stats: QueueStats = { pending: 0, maxPending: 0, sent: 0, sentBackground: 0, cancelled: 0, dropped: 0 };

  private readonly maxInFlight: number;
  readonly maxQueued: number;
  private readonly readingAt: () => number;
  private readonly backgroundTurn: () => number;
  /** Background captions are held (the page is busy): the pump looks again then. */
  private wake: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly cb: QueueCallbacks,
    private readonly signal: AbortSignal,
    opts: QueueOptions = {},
  ) {
    this.maxInFlight = opts.maxInFlight ?? LIMITS.queue.frameInFlight;
    this.maxQueued = opts.maxQueued ?? LIMITS.queue.frameQueued;
    this.readingAt = opts.readingAt ?? (() => 0);
    this.backgroundTurn = opts.backgroundTurn ?? (() => 0);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(this.wake);
        this.cancelAll();
      },
      { once: true },
    );
  }

  /** Number of distinct images waiting or in flight. */
  get pending(): number {
    return this.entries.size;
  }

  has(el: Element): boolean {
    return this.byElement.has(el);
  }

  /**
   * Queue the element's picture. `order` ranks it among equal priorities, nearest to `readingAt()` first (the feed
   * passes its place on the page); by default, arrival. False when it was turned away (full) and onDrop was called.
   */
  add(el: Element, src: string, priority: number, verified = false, order?: number): boolean {
    if (this.signal.aborted) return false;
    if (this.byElement.get(el) === src) {
      this.setPriority(el, priority);
      return true;
    }
    this.remove(el);
    const done = this.answeredBySrc.get(src);
    if (done) {
      queueMicrotask(() => this.cb.onResult(el, src, done));
      return true;
    }
    const failed = this.failedBySrc.get(src);
    if (failed) {
      queueMicrotask(() => this.cb.onError(el, src, failed));
      return true;
    }
    let e = this.entries.get(src);
    if (!e) {
      if (this.entries.size >= this.maxQueued && !this.makeRoom(priority)) {
        this.full = true;
        this.stats.dropped += 1;
        this.cb.onDrop?.(el, order ?? this.seq);
        return false;
      }
      this.seq += 1;
      e = { src, elements: new Set(), priority, order: order ?? this.seq, requestId: null, verified };
      this.entries.set(src, e);
      this.note();
    }
    e.verified ||= verified;
    e.elements.add(el);
    e.priority = Math.min(e.priority, priority);
    this.byElement.set(el, src);
    this.pump();
    return true;
  }

  /** A visible image may take the place of the waiting image off screen that is last in order (not one asked for). */
  private makeRoom(priority: number): boolean {
    if (priority > PRIORITY.visible) return false;
    let victim: Entry | undefined;
    const at = this.readingAt();
    for (const e of this.entries.values()) {
      if (e.requestId || e.priority <= PRIORITY.visible) continue;
      if (!victim || Math.abs(e.order - at) > Math.abs(victim.order - at)) victim = e;
    }
    if (!victim) return false;
    this.entries.delete(victim.src);
    for (const el of victim.elements) {
      this.byElement.delete(el);
      this.stats.dropped += 1;
      this.cb.onDrop?.(el, victim.order);
    }
    return true;
  }

  /** The element's current priority (visible or not): set, not only raised, so images scrolled past fall back. */
  setPriority(el: Element, priority: number): void {
    const src = this.byElement.get(el);
    const e = src ? this.entries.get(src) : undefined;
    if (!e) return;
    e.priority = e.elements.size > 1 ? Math.min(e.priority, priority) : priority;
  }

  /** The element left the page or changed: it no longer waits; the request is cancelled if nobody else waits. */
  remove(el: Element): void {
    const src = this.byElement.get(el);
    if (src === undefined) return;
    this.byElement.delete(el);
    const e = this.entries.get(src);
    if (!e) return;
    e.elements.delete(el);
    if (e.elements.size > 0) return;
    this.entries.delete(src);
    this.note();
    if (e.requestId) {
      this.stats.cancelled += 1;
      void request({ type: 'cs-bg-cancel', requestIds: [e.requestId] }).catch(() => null);
    }
  }

  /** Call onRoom once the queue is down to half, even if it turns nobody away before then. */
  callOnRoom(): void {
    this.full = true;
    this.note();
  }

  cancelAll(): void {
    const ids = [...this.entries.values()].map((e) => e.requestId).filter((x): x is string => !!x);
    this.entries.clear();
    this.byElement.clear();
    this.note();
    this.stats.cancelled += ids.length;
    if (ids.length) void request({ type: 'cs-bg-cancel', requestIds: ids }, undefined, 1).catch(() => null);
  }

  private note(): void {
    this.stats.pending = this.entries.size;
    this.stats.maxPending = Math.max(this.stats.maxPending, this.entries.size);
    if (this.full && this.entries.size <= this.maxQueued / 2) {
      this.full = false;
      queueMicrotask(() => this.cb.onRoom?.());
    }
  }

  private next(): Entry | undefined {
    let best: Entry | undefined;
    const at = this.readingAt();
    for (const e of this.entries.values()) {
      if (e.requestId) continue;
      if (!best || e.priority < best.priority || (e.priority === best.priority && Math.abs(e.order - at) < Math.abs(best.order - at)))
        best = e;
    }
    return best;
  }

  private pump(): void {
    while (!this.signal.aborted && this.inFlight < this.maxInFlight) {
      const e = this.next();
      if (!e) return;
      // The best waiting image is off screen, so all are: they may have to wait for the page to calm down.
      if (e.priority > PRIORITY.visible && !this.mayGoInBackground()) return;
      e.requestId = newRequestId('cs');
      this.inFlight += 1;
      void this.run(e).finally(() => {
        this.inFlight -= 1;
        this.pump();
      });
    }
  }

  private mayGoInBackground(): boolean {
    if (this.wake !== undefined) return false;
    const wait = this.backgroundTurn();
    if (wait <= 0) return true;
    this.wake = setTimeout(() => {
      this.wake = undefined;
      this.pump();
    }, wait);
    return false;
  }

  private async run(e: Entry): Promise<void> {
    const requestId = e.requestId!;
    try {
      const source = await toImageSource(e.src, e.verified);
      if (this.signal.aborted || this.entries.get(e.src) !== e) return;
      this.stats.sent += 1;
      if (e.priority > PRIORITY.visible) this.stats.sentBackground += 1;
      this.cb.onSent?.(e.src);
      const result = await request({ type: 'cs-bg-caption', requestId, source, priority: e.priority }, this.signal);
      if (this.signal.aborted || this.entries.get(e.src) !== e) return;
      this.answeredBySrc.set(e.src, result);
      this.finish(e, (el) => this.cb.onResult(el, e.src, result));
    } catch (err) {
      if (this.signal.aborted || this.entries.get(e.src) !== e) return;
      const error = err instanceof Error ? err : new Error(toWire(err).message);
      // Only failures that asking again cannot fix are remembered (the error registry says which those are).
      if (isPermanent(error)) this.failedBySrc.set(e.src, error);
      this.finish(e, (el) => this.cb.onError(el, e.src, error));
    }
  }

  private finish(e: Entry, each: (el: Element) => void): void {
    this.entries.delete(e.src);
    this.note();
    for (const el of e.elements) {
      this.byElement.delete(el);
      each(el);
    }
  }
}
