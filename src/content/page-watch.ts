/**
 * Watching the page: the document and each open shadow root get a MutationObserver and capturing load/error
 * listeners. Mutation records are only noted (changes.ts) and counted (page-activity.ts); nothing here touches the DOM. Only trusted (browser-made)
 * load and error events count: events the page makes itself (dispatchEvent) do not.
 */
import { F_ADDED, F_LABEL, F_NAME, F_REMOVED, F_SRC, F_STYLE, F_TREE, type Changes } from './changes';
import { CANDIDATE_SELECTOR } from './eligibility';
import { hasOurLabel } from './labeller';
import type { PageActivity } from './page-activity';

const WATCHED = [
  'src',
  'srcset',
  'sizes',
  'alt',
  'aria-label',
  'aria-labelledby',
  'title',
  'role',
  // Make role=presentation or alt="" not presentational (ARIA's conflict rules), or name an <input type=image>.
  'tabindex',
  'aria-describedby',
  'aria-live',
  'value',
  'aria-hidden',
  'hidden',
  'style',
  'class',
  'type',
];
const SRC_ATTRS = new Set(['src', 'srcset', 'sizes']);
/** Attributes that change only how things look (boxes, visibility): pages change these in storms. */
const STYLE_ATTRS = new Set(['hidden', 'style', 'class']);

interface PageWatchHooks {
  /** A root is newly watched: look at what is already in it. */
  onRoot(root: Document | ShadowRoot): void;
  /** An element we track: a load on it counts even if it no longer looks like a candidate. */
  isTracked(el: Element): boolean;
  /** An image did not load. */
  onBroken(img: HTMLImageElement): void;
}

export class PageWatch {
  private readonly roots = new Set<Document | ShadowRoot>();
  /** When each element's picture (src, srcset, sizes) last changed. */
  private readonly srcChangedAt = new WeakMap<Element, number>();
  private readonly mo: MutationObserver;

  constructor(
    private readonly changes: Changes,
    private readonly hooks: PageWatchHooks,
    private readonly activity: PageActivity,
    private readonly signal: AbortSignal,
  ) {
    this.mo = new MutationObserver((records) => this.note(records));
  }

  /** Watch a root (the document, or an open shadow root) and look at what is in it; once per root. */
  watch(root: Document | ShadowRoot): void {
    if (this.roots.has(root)) return;
    this.roots.add(root);
    this.mo.observe(root, { subtree: true, childList: true, attributes: true, attributeFilter: WATCHED });
    // load/error don't bubble (nor cross shadow boundaries), but capture sees them.
    root.addEventListener('load', this.onLoad, { capture: true, signal: this.signal });
    root.addEventListener('error', this.onError, { capture: true, signal: this.signal });
    this.hooks.onRoot(root);
  }

  /** Milliseconds since the element's picture last changed (Infinity: not since we started watching). */
  srcAge(el: Element): number {
    const changed = this.srcChangedAt.get(el);
    return changed === undefined ? Infinity : performance.now() - changed;
  }

  disconnect(): void {
    this.mo.disconnect();
  }

  private note(records: MutationRecord[]): void {
    let byPage = 0;
    for (const r of records) {
      if (r.type === 'attributes') {
        const el = r.target as Element;
        const a = r.attributeName ?? '';
        if (SRC_ATTRS.has(a)) {
          this.srcChangedAt.set(el, performance.now());
          this.changes.mark(el, F_SRC);
        } else if (a === 'aria-label') {
          this.changes.mark(el, F_LABEL);
          // Our own labels going on do not make the page busy (a burst of cached captions would hold the rest).
          if (hasOurLabel(el)) continue;
        } else if (STYLE_ATTRS.has(a)) this.changes.mark(el, F_TREE | F_STYLE);
        else this.changes.mark(el, a === 'aria-hidden' ? F_TREE | F_NAME : F_NAME);
      } else if (r.type === 'childList') {
        for (const n of r.removedNodes) if (n instanceof Element) this.changes.mark(n, F_REMOVED);
        for (const n of r.addedNodes) if (n instanceof Element) this.changes.mark(n, F_ADDED);
      }
      byPage += 1;
    }
    this.activity.note(byPage);
  }

  private readonly onLoad = (e: Event): void => {
    const t = e.target;
    if (e.isTrusted && t instanceof Element && (this.hooks.isTracked(t) || t.matches(CANDIDATE_SELECTOR))) this.changes.mark(t, F_NAME);
  };

  private readonly onError = (e: Event): void => {
    const t = e.target;
    if (e.isTrusted && t instanceof HTMLImageElement) this.hooks.onBroken(t);
  };
}
