/**
 * Looking at what changed, one element at a time (from the work loop's slices), and deciding what each candidate
 * needs: a caption (queued), our label off (the author named it, or its picture changed), or nothing. An image whose
 * src keeps changing waits until it settles; an element that left the page is forgotten.
 */
import type { AutoLabels } from './auto-labels';
import { F_ADDED, F_LABEL, F_NAME, F_REMOVED, F_SRC, F_STYLE, F_TREE, type Changes } from './changes';
import { CANDIDATE_SELECTOR, judge } from './eligibility';
import { adopt, authorTookOver, hasOurLabel, isRefused, labelledSrc, release } from './labeller';
import { logSkip } from './log';
import type { PageWatch } from './page-watch';
import type { QueueFeed } from './queue-feed';
import type { Visibility } from './visibility';
import type { WorkLoop } from './work-loop';

/** An image whose picture changed is asked about once its src has stayed the same this long. */
const SETTLE_MS = 300;

interface DeciderParts {
  loop: WorkLoop;
  changes: Changes;
  page: PageWatch;
  visibility: Visibility;
  feed: QueueFeed;
  labels: AutoLabels;
}

export class Decider {
  /** Elements we track (candidates), so that mutations outside them are cheap to ignore. */
  private readonly tracked = new Set<Element>();
  /**
   * Candidates skipped for how they look now (hidden, rendered too small, aria-hidden): the only ones a class or style
   * change can make eligible. A page that restyles its images in a storm costs us no layout work for the others.
   */
  private readonly unseen = new Set<Element>();
  /** Images whose picture changed a moment ago, looked at again when the settle timer fires. */
  private readonly settling = new Set<Element>();
  private settleTimer: ReturnType<typeof setTimeout> | undefined;
  /**
   * Ancestors whose unseen candidates are being judged again. One walk per ancestor at a time, however often it
   * changes (a page that flips a class on a container of 10,000 images every few ms): a change during a walk makes it
   * run once more when it ends, so the work a storm makes is bounded and what changed last is still seen.
   */
  private readonly treeWalks = new Map<Element, { again: boolean }>();

  constructor(
    private readonly parts: DeciderParts,
    private readonly weakNamesCountAsMissing: boolean,
    private readonly signal: AbortSignal,
  ) {}

  /** Verdicts reached so far, and those for a change of looks only (test builds report them: each may force layout). */
  judged = 0;
  judgedForLooks = 0;

  /** Elements tracked now (test builds report it). */
  get trackedCount(): number {
    return this.tracked.size;
  }

  isTracked(el: Element): boolean {
    return this.tracked.has(el);
  }

  /** Look at every candidate in a root or subtree, and watch the open shadow roots inside it. */
  scan(root: ParentNode): void {
    const { loop, page } = this.parts;
    if (root instanceof Element && root.matches(CANDIDATE_SELECTOR)) this.consider(root);
    loop.each(root.querySelectorAll(CANDIDATE_SELECTOR), (el) => this.consider(el));
    loop.each(root.querySelectorAll('*'), (el) => el.shadowRoot && page.watch(el.shadowRoot));
    if (root instanceof Element && root.shadowRoot) page.watch(root.shadowRoot);
  }

  /** One changed element, with what changed on it (changes.ts flags). */
  handle(el: Element, f: number): void {
    if (this.signal.aborted) return;
    if (f & F_REMOVED) {
      if (!el.isConnected) {
        if (this.tracked.has(el)) this.forget(el);
        this.parts.loop.each(el.querySelectorAll(CANDIDATE_SELECTOR), (c) => this.tracked.has(c) && this.forget(c));
        return;
      }
      f |= F_ADDED; // moved, not removed
    }
    if (!el.isConnected) return;
    if (f & F_ADDED) {
      this.scan(el);
      return;
    }
    const isCandidate = el.matches(CANDIDATE_SELECTOR);
    // A style or aria-hidden change on an ancestor can change what is inside it.
    if (f & F_TREE && !isCandidate) this.rejudgeInside(el);
    if (!isCandidate) return;
    // Only its looks changed: that matters to a candidate skipped for how it looked, or to a role=img element whose
    // picture is a CSS background; an image queued or labelled stays as it is (no layout read in a restyle storm).
    const looksOnly = (f & ~(F_TREE | F_STYLE)) === 0;
    if (looksOnly && this.tracked.has(el) && !this.unseen.has(el) && el.matches('img, input')) return;
    if (looksOnly) this.judgedForLooks += 1;
    this.onCandidate(el, f);
  }

  /** A trusted error event: the image did not load. */
  broken(img: HTMLImageElement): void {
    logSkip(img.currentSrc || img.src, 'broken image (it did not load)');
    this.parts.feed.remove(img);
  }

  /** Switched off: stop the timer, let go of every element. */
  clear(): void {
    clearTimeout(this.settleTimer);
    this.tracked.clear();
    this.unseen.clear();
    this.settling.clear();
    this.treeWalks.clear();
  }

  private consider(el: Element): void {
    if (this.signal.aborted || !el.isConnected) return;
    const { visibility, feed, labels, page } = this.parts;
    this.tracked.add(el);
    // Left unlabelled because the model was unsure: judged afresh now (the same picture comes back unsure at once).
    labels.reconsider(el);
    if (isRefused(el)) {
      visibility.watch(el, false);
      return;
    }
    const v = this.judge(el);
    if (v.kind === 'skip' && v.looks) this.unseen.add(el);
    else this.unseen.delete(el);
    if (hasOurLabel(el)) {
      adopt(el);
      // Still the picture we described, still unnamed: nothing to do. Otherwise our label no longer applies.
      if (v.kind === 'label' && v.src === labelledSrc(el)) {
        visibility.watch(el, false);
        return;
      }
      labels.remove(el);
    }
    if (v.kind === 'label') {
      if (page.srcAge(el) < SETTLE_MS) {
        feed.remove(el);
        this.settle(el);
        return;
      }
      feed.add(el, v.src, v.verified);
    } else {
      visibility.watch(el, false);
      feed.remove(el);
      if (v.kind === 'skip' && /broken/.test(v.reason))
        logSkip((el as HTMLImageElement).currentSrc || (el as HTMLImageElement).src, v.reason);
    }
  }

  private onCandidate(el: Element, f: number): void {
    const { feed, labels } = this.parts;
    if (f & F_LABEL && authorTookOver(el)) {
      // The author wrote over our aria-label, or took it off: it is theirs now, and we leave the element alone.
      labels.disown(el);
      feed.remove(el);
      return;
    }
    if (f & F_SRC && hasOurLabel(el)) {
      // A new picture: our caption no longer applies.
      labels.remove(el);
    }
    if (hasOurLabel(el) && !(f & F_SRC)) {
      // The author may have named it since: then ours goes.
      const v = this.judge(el);
      if (v.kind !== 'label' || v.src !== labelledSrc(el)) {
        labels.remove(el);
        this.consider(el);
      }
      return;
    }
    this.consider(el);
  }

  private judge(el: Element): ReturnType<typeof judge> {
    this.judged += 1;
    return judge(el, this.weakNamesCountAsMissing);
  }

  private forget(el: Element): void {
    this.parts.feed.forget(el);
    this.parts.labels.reconsider(el);
    this.parts.visibility.forget(el);
    this.tracked.delete(el);
    this.unseen.delete(el);
    this.settling.delete(el);
    release(el);
  }

  private settle(el: Element): void {
    this.settling.add(el);
    this.settleTimer ??= setTimeout(() => {
      this.settleTimer = undefined;
      for (const s of this.settling) this.parts.changes.mark(s, F_NAME);
      this.settling.clear();
    }, SETTLE_MS);
  }

  private rejudgeInside(el: Element): void {
    const walk = this.treeWalks.get(el);
    if (walk) {
      walk.again = true;
      return;
    }
    const state = { again: false };
    let list: Element[] | null = null;
    let i = 0;
    this.treeWalks.set(el, state);
    this.parts.loop.add(() => {
      if (this.signal.aborted || !el.isConnected) {
        this.treeWalks.delete(el);
        return false;
      }
      list ??= [...this.unseen];
      if (i < list.length) {
        const c = list[i++];
        if (containsComposed(el, c)) this.parts.changes.mark(c, F_NAME);
        return true;
      }
      if (state.again) {
        state.again = false;
        list = null;
        i = 0;
        return true;
      }
      this.treeWalks.delete(el);
      return false;
    });
  }
}

/** `el` is `root` or inside it, across shadow boundaries. */
function containsComposed(root: Element, el: Element): boolean {
  for (let n: Node | null = el; n; n = n.parentNode instanceof ShadowRoot ? n.parentNode.host : n.parentNode) if (n === root) return true;
  return false;
}
