/**
 * The frame's queue of images to caption. The same URL is asked once; visible images go first (lower priority
 * number), then document order; a few requests are in flight at a time, so the worker's queue stays short and
 * priorities stay current. Images that leave the page, and everything on teardown, are cancelled.
 */
import { toWire } from '../shared/errors';
import { PRIORITY, newRequestId, type CaptionResult, type ImageSource } from '../shared/messages';
import { logOnce } from './log';
import { request } from './messaging';

interface Entry {
  src: string;
  elements: Set<Element>;
  priority: number;
  seq: number;
  requestId: string | null;
}

export interface QueueCallbacks {
  onResult(el: Element, src: string, result: CaptionResult): void;
  onError(el: Element, src: string, err: Error): void;
}

async function toSource(src: string): Promise<ImageSource> {
  if (!src.startsWith('blob:')) return { kind: 'url', url: src };
  // blob: URLs belong to the page, so only this script can read them.
  const blob = await (await fetch(src)).blob();
  const dataUrl = await new Promise<string>((resolve, reject) => {
    const r = new FileReader();
    r.onload = () => resolve(r.result as string);
    r.onerror = () => reject(r.error ?? new Error('could not read the blob'));
    r.readAsDataURL(blob);
  });
  return { kind: 'bytes', dataUrl };
}

const PERMANENT = new Set(['ImageFetchError', 'ImageDecodeError', 'EmptyImageError', 'EmptyCaptionError']);

export class CaptionQueue {
  private entries = new Map<string, Entry>();
  private byElement = new Map<Element, string>();
  private inFlight = 0;
  private seq = 0;
  private results = new Map<string, CaptionResult>();
  private failed = new Map<string, Error>();

  constructor(
    private readonly cb: QueueCallbacks,
    private readonly signal: AbortSignal,
    private readonly maxInFlight = 3,
    private readonly maxQueued = 5000,
  ) {
    signal.addEventListener('abort', () => this.cancelAll(), { once: true });
  }

  /** Number of distinct images waiting or in flight. */
  get pending(): number {
    return this.entries.size;
  }

  add(el: Element, src: string, priority: number): void {
    if (this.signal.aborted) return;
    if (this.byElement.get(el) === src) {
      this.setPriority(el, priority);
      return;
    }
    this.remove(el);
    const done = this.results.get(src);
    if (done) {
      queueMicrotask(() => this.cb.onResult(el, src, done));
      return;
    }
    const failed = this.failed.get(src);
    if (failed) {
      queueMicrotask(() => this.cb.onError(el, src, failed));
      return;
    }
    let e = this.entries.get(src);
    if (!e) {
      if (this.entries.size >= this.maxQueued) {
        logOnce('warn', 'queue-full', 'too many images on this page; some are left without a label');
        return;
      }
      this.seq += 1;
      e = { src, elements: new Set(), priority, seq: this.seq, requestId: null };
      this.entries.set(src, e);
    }
    e.elements.add(el);
    e.priority = Math.min(e.priority, priority);
    this.byElement.set(el, src);
    this.pump();
  }

  setPriority(el: Element, priority: number): void {
    const src = this.byElement.get(el);
    const e = src ? this.entries.get(src) : undefined;
    if (!e) return;
    e.priority = Math.min(e.priority, priority);
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
    if (e.requestId) void request({ type: 'cs-bg-cancel', requestIds: [e.requestId] }).catch(() => null);
  }

  cancelAll(): void {
    const ids = [...this.entries.values()].map((e) => e.requestId).filter((x): x is string => !!x);
    this.entries.clear();
    this.byElement.clear();
    if (ids.length) void request({ type: 'cs-bg-cancel', requestIds: ids }, undefined, 1).catch(() => null);
  }

  private next(): Entry | undefined {
    let best: Entry | undefined;
    for (const e of this.entries.values()) {
      if (e.requestId) continue;
      if (!best || e.priority < best.priority || (e.priority === best.priority && e.seq < best.seq)) best = e;
    }
    return best;
  }

  private pump(): void {
    while (!this.signal.aborted && this.inFlight < this.maxInFlight) {
      const e = this.next();
      if (!e) return;
      e.requestId = newRequestId('cs');
      this.inFlight += 1;
      void this.run(e).finally(() => {
        this.inFlight -= 1;
        this.pump();
      });
    }
  }

  private async run(e: Entry): Promise<void> {
    const requestId = e.requestId!;
    try {
      const source = await toSource(e.src);
      const result = await request({ type: 'cs-bg-caption', requestId, source, priority: e.priority }, this.signal);
      if (this.signal.aborted || this.entries.get(e.src) !== e) return;
      this.results.set(e.src, result);
      this.finish(e, (el) => this.cb.onResult(el, e.src, result));
    } catch (err) {
      if (this.signal.aborted || this.entries.get(e.src) !== e) return;
      const error = err instanceof Error ? err : new Error(toWire(err).message);
      // Only failures that asking again cannot fix are remembered.
      if (PERMANENT.has(error.name)) this.failed.set(e.src, error);
      this.finish(e, (el) => this.cb.onError(el, e.src, error));
    }
  }

  private finish(e: Entry, each: (el: Element) => void): void {
    this.entries.delete(e.src);
    for (const el of e.elements) {
      this.byElement.delete(el);
      each(el);
    }
  }
}

export { PRIORITY };
