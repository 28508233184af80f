/**
 * Auto-alt: find images without a name (here, in open shadow roots, and as they appear or change), caption them
 * (visible first) and label them. Aborting the signal tears it all down and removes every label we added.
 *
 * Built for hostile and huge pages: mutation records are only noted (a Map of element -> what changed, so a storm of
 * changes to one element is one unit of work); the DOM work runs later in short idle slices (work-loop.ts); an image
 * whose src keeps changing waits until it settles; the caption queue is bounded (caption-queue.ts). Only trusted
 * (browser-made) load and error events count.
 */
import { PRIORITY, send } from '../shared/messages';
import { CaptionQueue } from './caption-queue';
import { CANDIDATE_SELECTOR, judge } from './eligibility';
import {
  adopt, applyLabel, authorTookOver, disown, hasOurLabel, isRefused, labelCount, labelText, labelledSrc, release, removeAllLabels, removeLabel,
} from './labeller';
import { logOnce, logSkip } from './log';
import { WorkLoop, eachOf } from './work-loop';

export interface AutoAltOptions {
  marker: string;
  weakNamesCountAsMissing: boolean;
}

const WATCHED = ['src', 'srcset', 'sizes', 'alt', 'aria-label', 'aria-labelledby', 'title', 'role', 'aria-hidden', 'hidden', 'style', 'class', 'type'];
const SRC_ATTRS = new Set(['src', 'srcset', 'sizes']);
const TREE_ATTRS = new Set(['aria-hidden', 'hidden', 'style', 'class']);
/** An image whose picture changed is asked about once its src has stayed the same this long. */
const SETTLE_MS = 300;
/** Lists longer than this are walked in slices rather than at once. */
const INLINE_MAX = 32;

// What changed on an element (bit flags).
const F_NAME = 1; // a naming or visibility attribute, or a load: judge it again
const F_SRC = 2; // its picture changed
const F_LABEL = 4; // its aria-label changed
const F_TREE = 8; // an ancestor-style change: what is inside may have changed
const F_ADDED = 16; // inserted: scan it
const F_REMOVED = 32; // removed: forget it (unless it came back)

export function init(signal: AbortSignal, opts: AutoAltOptions): void {
  const roots = new Set<Document | ShadowRoot>();
  const visible = new Set<Element>();
  /** Elements we track (candidates), so that mutations outside them are cheap to ignore. */
  const tracked = new Set<Element>();
  /** Turned away by a full queue; offered again when it has room. */
  const dropped = new Set<Element>();
  const srcChangedAt = new WeakMap<Element, number>();
  const settling = new Set<Element>();
  let settleTimer: ReturnType<typeof setTimeout> | undefined;
  const dirty = new Map<Element, number>();
  const loop = new WorkLoop(signal);

  let countTimer: ReturnType<typeof setTimeout> | undefined;
  let lastCount = -1;
  const reportCount = () => {
    clearTimeout(countTimer);
    countTimer = setTimeout(() => {
      const n = signal.aborted ? 0 : labelCount();
      if (n === lastCount) return;
      lastCount = n;
      send({ type: 'cs-bg-label-count', count: n }).catch(() => null);
    }, 250);
  };

  /** Test builds: the URLs asked about, last first out (bounded). */
  const sentLog: string[] = [];
  const queue = new CaptionQueue(
    {
      onSent: __TEST__
        ? (src) => {
          sentLog.push(src);
          if (sentLog.length > 5000) sentLog.shift();
        }
        : undefined,
      onResult(el, src, result) {
        if (signal.aborted || !el.isConnected) return;
        // Still the same image, and still without a name?
        const v = judge(el, opts.weakNamesCountAsMissing);
        if (v.kind !== 'label' || v.src !== src) return;
        applyLabel(el, labelText(opts.marker, result.text), result.packId, src);
        watchVisibility(el, false);
        reportCount();
      },
      onError(_el, src, err) {
        // Aborted: nothing to say. An extension that was reloaded or crashed is said once with what to do
        // (messaging.ts), and every image it leaves undescribed still gets its own skip line: none is lost silently.
        if (err.name === 'AbortError') return;
        if (err.name === 'NoPackError') logOnce('warn', 'no-pack', err.message);
        else logSkip(src, `${err.name}: ${err.message}`);
      },
      onDrop(el) {
        dropped.add(el);
        logOnce('info', 'queue-full', 'many images on this page: those on screen are described first');
      },
      onRoom() {
        // Visible ones first, then in document order, as many as there is room for.
        let room = queue.maxQueued - queue.pending;
        for (const pass of [true, false]) {
          for (const el of dropped) {
            if (room <= 0) return;
            if (visible.has(el) !== pass) continue;
            dropped.delete(el);
            mark(el, F_NAME);
            room -= 1;
          }
        }
      },
    },
    signal,
  );

  const io = new IntersectionObserver(
    (entries) => {
      for (const e of entries) {
        if (e.isIntersecting) {
          visible.add(e.target);
          if (queue.has(e.target)) queue.setPriority(e.target, PRIORITY.visible);
          else if (!hasOurLabel(e.target)) mark(e.target, F_NAME);
        } else {
          visible.delete(e.target);
          queue.setPriority(e.target, PRIORITY.rest);
        }
      }
    },
    { rootMargin: '200px' },
  );

  const settle = (el: Element) => {
    settling.add(el);
    settleTimer ??= setTimeout(() => {
      settleTimer = undefined;
      for (const s of settling) mark(s, F_NAME);
      settling.clear();
    }, SETTLE_MS);
  };

  /**
   * Only images waiting for a caption are watched for visibility (it orders the queue): an IntersectionObserver with
   * every image of a 10,000-image page as a target costs the page most of its frame time whenever its layout or
   * style changes (measured in test/e2e/load.test.ts).
   */
  const observed = new Set<Element>();
  const watchVisibility = (el: Element, on: boolean) => {
    if (on === observed.has(el)) return;
    if (on) {
      observed.add(el);
      io.observe(el);
    } else {
      observed.delete(el);
      io.unobserve(el);
      visible.delete(el);
    }
  };

  const consider = (el: Element) => {
    if (signal.aborted || !el.isConnected) return;
    tracked.add(el);
    if (isRefused(el)) {
      watchVisibility(el, false);
      return;
    }
    const v = judge(el, opts.weakNamesCountAsMissing);
    if (hasOurLabel(el)) {
      adopt(el);
      // Still the picture we described, still unnamed: nothing to do. Otherwise our label no longer applies.
      if (v.kind === 'label' && v.src === labelledSrc(el)) {
        watchVisibility(el, false);
        return;
      }
      removeLabel(el);
      reportCount();
    }
    if (v.kind === 'label') {
      const changed = srcChangedAt.get(el);
      if (changed !== undefined && performance.now() - changed < SETTLE_MS) {
        queue.remove(el);
        settle(el);
        return;
      }
      dropped.delete(el);
      watchVisibility(el, true);
      queue.add(el, v.src, visible.has(el) || inViewport(el) ? PRIORITY.visible : PRIORITY.rest, v.verified);
    } else {
      watchVisibility(el, false);
      queue.remove(el);
      if (v.kind === 'skip' && /broken/.test(v.reason)) logSkip((el as HTMLImageElement).currentSrc || (el as HTMLImageElement).src, v.reason);
    }
  };

  const forget = (el: Element) => {
    queue.remove(el);
    watchVisibility(el, false);
    tracked.delete(el);
    visible.delete(el);
    dropped.delete(el);
    settling.delete(el);
    release(el);
  };

  /** Run `fn` on each element of the list: now if it is short, in slices if it is long. */
  const each = (list: ArrayLike<Element>, fn: (el: Element) => void) => {
    if (list.length <= INLINE_MAX) for (let i = 0; i < list.length; i += 1) fn(list[i]);
    else loop.add(eachOf(list, fn));
  };

  const scan = (root: ParentNode) => {
    if (root instanceof Element && root.matches(CANDIDATE_SELECTOR)) consider(root);
    each(root.querySelectorAll(CANDIDATE_SELECTOR), consider);
    // Open shadow roots: look inside each host.
    each(root.querySelectorAll('*'), (el) => el.shadowRoot && watch(el.shadowRoot));
    if (root instanceof Element && root.shadowRoot) watch(root.shadowRoot);
  };

  const onCandidate = (el: Element, f: number) => {
    if (f & F_LABEL && authorTookOver(el)) {
      // The author wrote over our aria-label, or took it off: it is theirs now, and we leave the element alone.
      disown(el);
      queue.remove(el);
      reportCount();
      return;
    }
    if (f & F_SRC && hasOurLabel(el)) {
      // A new picture: our caption no longer applies.
      removeLabel(el);
      reportCount();
    }
    if (hasOurLabel(el) && !(f & F_SRC)) {
      // The author may have named it since: then ours goes.
      const v = judge(el, opts.weakNamesCountAsMissing);
      if (v.kind !== 'label' || v.src !== labelledSrc(el)) {
        removeLabel(el);
        reportCount();
        consider(el);
      }
      return;
    }
    consider(el);
  };

  const handle = (el: Element, f: number) => {
    if (signal.aborted) return;
    if (f & F_REMOVED) {
      if (!el.isConnected) {
        if (tracked.has(el)) forget(el);
        each(el.querySelectorAll(CANDIDATE_SELECTOR), (c) => tracked.has(c) && forget(c));
        return;
      }
      f |= F_ADDED; // moved, not removed
    }
    if (!el.isConnected) return;
    if (f & F_ADDED) {
      scan(el);
      return;
    }
    const isCandidate = el.matches(CANDIDATE_SELECTOR);
    // A style or aria-hidden change on an ancestor can change what is inside it.
    if (f & F_TREE && !isCandidate) rejudgeInside(el);
    if (isCandidate) onCandidate(el, f);
  };

  /**
   * Ancestors whose insides are being judged again. One walk per ancestor at a time, however often it changes (a page
   * that flips a class on a container of 10,000 images every few ms): a change during a walk makes it run once more
   * when it ends, so the work a storm makes is bounded and what changed last is still seen.
   */
  const treeWalks = new Map<Element, { again: boolean }>();
  const rejudgeInside = (el: Element) => {
    const walk = treeWalks.get(el);
    if (walk) {
      walk.again = true;
      return;
    }
    const state = { again: false };
    let list: NodeListOf<Element> | null = null;
    let i = 0;
    treeWalks.set(el, state);
    loop.add(() => {
      if (signal.aborted || !el.isConnected) {
        treeWalks.delete(el);
        return false;
      }
      list ??= el.querySelectorAll(CANDIDATE_SELECTOR);
      if (i < list.length) {
        const c = list[i++];
        if (!hasOurLabel(c)) mark(c, F_NAME);
        return true;
      }
      if (state.again) {
        state.again = false;
        list = null;
        i = 0;
        return true;
      }
      treeWalks.delete(el);
      return false;
    });
  };

  let draining = false;
  const drain = (): boolean => {
    const next = dirty.entries().next();
    if (!next.done) {
      dirty.delete(next.value[0]);
      handle(next.value[0], next.value[1]);
    }
    draining = dirty.size > 0;
    return draining;
  };
  function mark(el: Element, flag: number) {
    if (signal.aborted) return;
    dirty.set(el, (dirty.get(el) ?? 0) | flag);
    if (!draining) {
      draining = true;
      loop.add(drain);
    }
  }

  // The observer only notes what changed; the work happens in the loop's slices.
  const mo = new MutationObserver((records) => {
    for (const r of records) {
      if (r.type === 'attributes') {
        const el = r.target as Element;
        const a = r.attributeName ?? '';
        if (SRC_ATTRS.has(a)) {
          srcChangedAt.set(el, performance.now());
          mark(el, F_SRC);
        } else if (a === 'aria-label') mark(el, F_LABEL);
        else mark(el, TREE_ATTRS.has(a) ? F_TREE | F_NAME : F_NAME);
      } else if (r.type === 'childList') {
        for (const n of r.removedNodes) if (n instanceof Element) mark(n, F_REMOVED);
        for (const n of r.addedNodes) if (n instanceof Element) mark(n, F_ADDED);
      }
    }
  });

  // Events the page makes itself (dispatchEvent) are not trusted, and don't count.
  const onLoad = (e: Event) => {
    const t = e.target;
    if (e.isTrusted && t instanceof Element && (tracked.has(t) || t.matches(CANDIDATE_SELECTOR))) mark(t, F_NAME);
  };
  const onError = (e: Event) => {
    const t = e.target;
    if (e.isTrusted && t instanceof HTMLImageElement) {
      logSkip(t.currentSrc || t.src, 'broken image (it did not load)');
      queue.remove(t);
    }
  };

  function watch(root: Document | ShadowRoot) {
    if (roots.has(root)) return;
    roots.add(root);
    mo.observe(root, { subtree: true, childList: true, attributes: true, attributeFilter: WATCHED });
    // load/error don't bubble (nor cross shadow boundaries), but capture sees them.
    root.addEventListener('load', onLoad, { capture: true, signal });
    root.addEventListener('error', onError, { capture: true, signal });
    scan(root);
  }

  const onPageHide = () => queue.cancelAll();
  window.addEventListener('pagehide', onPageHide, { signal });

  signal.addEventListener(
    'abort',
    () => {
      mo.disconnect();
      io.disconnect();
      clearTimeout(settleTimer);
      removeAllLabels();
      for (const s of [tracked, visible, dropped, settling, observed]) s.clear();
      treeWalks.clear();
      dirty.clear();
      reportCount();
    },
    { once: true },
  );

  if (__TEST__) {
    // Test builds only: what the e2e load tests read, from this isolated world (the page cannot see it).
    (globalThis as unknown as { altTextContentTest: unknown }).altTextContentTest = {
      stats: () => ({ queue: { ...queue.stats }, loop: { ...loop.stats }, tracked: tracked.size, observed: observed.size, dropped: dropped.size, dirty: dirty.size, labelled: labelCount() }),
      sentMatching: (part: string) => sentLog.filter((u) => u.includes(part)).length,
      // A positive control for the e2e long-task attribution: a task of `ms` run from this script's own code.
      spin: (ms: number) => setTimeout(() => {
        const t0 = performance.now();
        while (performance.now() - t0 < ms) { /* busy */ }
      }, 0),
    };
  }

  watch(document);
  reportCount();
}

function inViewport(el: Element): boolean {
  const r = el.getBoundingClientRect();
  return r.bottom > 0 && r.right > 0 && r.top < innerHeight && r.left < innerWidth;
}
