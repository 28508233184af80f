/**
 * Our DOM work, cut into short slices run when the page is idle, so that however much a page changes (10,000 images,
 * thousands of attribute changes a second) none of our tasks holds the main thread for long. Work is a list of
 * steps; each step does one small unit and says whether it has more.
 */
export type Step = () => boolean;

/** Lists longer than this are walked in slices rather than at once. */
const INLINE_MAX = 32;

export interface LoopStats {
  slices: number;
  /** The longest slice, ms: our longest task on the main thread. */
  maxSliceMs: number;
  units: number;
}

export class WorkLoop {
  private steps: Step[] = [];
  private handle: number | null = null;
  readonly stats: LoopStats = { slices: 0, maxSliceMs: 0, units: 0 };

  constructor(
    private readonly signal: AbortSignal,
    /** Time per slice, ms. */
    private readonly budgetMs = 5,
  ) {
    signal.addEventListener(
      'abort',
      () => {
        this.steps = [];
        if (this.handle !== null) cancelIdleCallback(this.handle);
      },
      { once: true },
    );
  }

  /** Add a step (run until it says it is done). */
  add(step: Step): void {
    if (this.signal.aborted) return;
    this.steps.push(step);
    this.schedule();
  }

  /** Run `fn` on each item of the list: now if it is short, in slices if it is long. */
  each<T>(list: ArrayLike<T>, fn: (item: T) => void): void {
    if (list.length <= INLINE_MAX) for (let i = 0; i < list.length; i += 1) fn(list[i]);
    else this.add(eachOf(list, fn));
  }

  schedule(): void {
    if (this.handle !== null || this.signal.aborted) return;
    // A busy page still gets our work done: at the latest after the timeout, still in short slices.
    this.handle = requestIdleCallback(this.run, { timeout: 300 });
  }

  private run = (deadline: IdleDeadline): void => {
    this.handle = null;
    const t0 = performance.now();
    const budget = deadline.didTimeout ? this.budgetMs : Math.min(this.budgetMs, Math.max(1, deadline.timeRemaining()));
    const end = t0 + budget;
    let units = 0;
    while (this.steps.length > 0 && !this.signal.aborted) {
      if (!this.steps[0]()) this.steps.shift();
      units += 1;
      // Checked after every unit: one unit can force a style or layout pass, which is not cheap on a huge page.
      if (performance.now() >= end) break;
    }
    const took = performance.now() - t0;
    this.stats.slices += 1;
    this.stats.units += units;
    this.stats.maxSliceMs = Math.max(this.stats.maxSliceMs, took);
    if (this.steps.length > 0) this.schedule();
  };
}

/** A step that runs `fn` over each item of a list (a static NodeList, an array), a few per call. */
function eachOf<T>(list: ArrayLike<T>, fn: (item: T) => void): Step {
  let i = 0;
  return () => {
    if (i < list.length) fn(list[i++]);
    return i < list.length;
  };
}
