/**
 * Elements that changed and have not been looked at yet: a Map of element -> what changed (bit flags), so a storm of
 * changes to one element is one unit of work. Whoever notices a change only marks it; the work runs later, one element
 * per step of the work loop.
 */
import type { WorkLoop } from './work-loop';

// What changed on an element (bit flags).
export const F_NAME = 1; // a naming or visibility attribute, or a load: judge it again
export const F_SRC = 2; // its picture changed
export const F_LABEL = 4; // its aria-label changed
export const F_TREE = 8; // an ancestor-style change: what is inside may have changed
export const F_ADDED = 16; // inserted: scan it
export const F_REMOVED = 32; // removed: forget it (unless it came back)
export const F_STYLE = 64; // its own class, style or hidden changed: only its box or visibility can have changed

export class Changes {
  private readonly dirty = new Map<Element, number>();
  private draining = false;

  constructor(
    private readonly loop: WorkLoop,
    private readonly signal: AbortSignal,
    /** Looks at one changed element; called from the loop's slices. */
    private readonly handle: (el: Element, flags: number) => void,
  ) {}

  /** Elements waiting to be looked at. */
  get size(): number {
    return this.dirty.size;
  }

  mark(el: Element, flag: number): void {
    if (this.signal.aborted) return;
    this.dirty.set(el, (this.dirty.get(el) ?? 0) | flag);
    if (!this.draining) {
      this.draining = true;
      this.loop.add(this.drain);
    }
  }

  clear(): void {
    this.dirty.clear();
  }

  private readonly drain = (): boolean => {
    const next = this.dirty.entries().next();
    if (!next.done) {
      this.dirty.delete(next.value[0]);
      this.handle(next.value[0], next.value[1]);
    }
    this.draining = this.dirty.size > 0;
    return this.draining;
  };
}
