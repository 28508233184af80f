/**
 * How busy the page is, from the mutation records it makes: while it changes many things a second (an animation done in
 * the DOM, a storm of restyles), captions for images off screen wait, so the model does not take the CPU from the page
 * (on a 2-core machine, background inference during a storm cost the page a third of its frames). Images on screen
 * and "Describe this image" never wait. A page that never calms down still gets one background caption now and then.
 */
import { LIMITS } from '../shared/limits';

const { windowMs, changes, quietMs, trickleMs } = LIMITS.queue.busyPage;

export class PageActivity {
  private windowStart = -Infinity;
  private count = 0;
  /** Busy until then (performance.now() ms). */
  private busyUntil = -Infinity;
  /** When the last background caption went out while the page was busy. */
  private lastTrickle = -Infinity;
  /** Test builds: how often the page turned busy, and background captions held back. */
  readonly stats = { busySpells: 0, held: 0 };

  constructor(private readonly now: () => number = () => performance.now()) {}

  /** The page made `n` changes that we watch. */
  note(n: number): void {
    const t = this.now();
    if (t - this.windowStart > windowMs) {
      this.windowStart = t;
      this.count = 0;
    }
    this.count += n;
    if (this.count < changes) return;
    if (t >= this.busyUntil) {
      // It just turned busy: the first background caption it lets through goes a whole trickle period later.
      this.stats.busySpells += 1;
      this.lastTrickle = t;
    }
    this.busyUntil = t + quietMs;
  }

  get busy(): boolean {
    return this.now() < this.busyUntil;
  }

  /**
   * May a caption for an image off screen go out now? 0: yes (while busy, that uses up the trickle's turn); otherwise
   * the milliseconds to wait before asking again.
   */
  backgroundTurn(): number {
    const t = this.now();
    if (t >= this.busyUntil) return 0;
    const wait = this.lastTrickle + trickleMs - t;
    if (wait <= 0) {
      this.lastTrickle = t;
      return 0;
    }
    this.stats.held += 1;
    return Math.min(wait, this.busyUntil - t);
  }
}
