/**
 * Auto-alt: find images without a name (here, in open shadow roots, and as they appear or change), caption them
 * (visible first) and label them. Aborting the signal tears it all down and removes every label we added.
 */
import { PRIORITY, send } from '../shared/messages';
import { CaptionQueue } from './caption-queue';
import { CANDIDATE_SELECTOR, judge } from './eligibility';
import { applyLabel, disown, hasOurLabel, labelCount, labelText, removeAllLabels, removeLabel } from './labeller';
import { logOnce, logSkip } from './log';

export interface AutoAltOptions {
  marker: string;
  weakNamesCountAsMissing: boolean;
}

const WATCHED = ['src', 'srcset', 'sizes', 'alt', 'aria-label', 'aria-labelledby', 'title', 'role', 'aria-hidden', 'hidden', 'style', 'class', 'type'];

export function init(signal: AbortSignal, opts: AutoAltOptions): void {
  const roots = new Set<Document | ShadowRoot>();
  const visible = new WeakSet<Element>();
  /** Elements we track (candidates), so that mutations outside them are cheap to ignore. */
  const tracked = new Set<Element>();

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

  const queue = new CaptionQueue(
    {
      onResult(el, src, result) {
        if (signal.aborted || !el.isConnected) return;
        // Still the same image, and still without a name?
        const v = judge(el, opts.weakNamesCountAsMissing);
        if (v.kind !== 'label' || v.src !== src) return;
        applyLabel(el, labelText(opts.marker, result.text), result.packId);
        reportCount();
      },
      onError(_el, src, err) {
        if (err.name === 'AbortError') return;
        if (err.name === 'NoPackError') logOnce('warn', 'no-pack', err.message);
        else logSkip(src, `${err.name}: ${err.message}`);
      },
    },
    signal,
  );

  const io = new IntersectionObserver(
    (entries) => {
      for (const e of entries) {
        if (e.isIntersecting) {
          visible.add(e.target);
          queue.setPriority(e.target, PRIORITY.visible);
        } else visible.delete(e.target);
      }
    },
    { rootMargin: '200px' },
  );

  const consider = (el: Element) => {
    if (signal.aborted) return;
    if (!tracked.has(el)) {
      tracked.add(el);
      io.observe(el);
    }
    if (hasOurLabel(el)) return;
    const v = judge(el, opts.weakNamesCountAsMissing);
    if (v.kind === 'label') queue.add(el, v.src, visible.has(el) || inViewport(el) ? PRIORITY.visible : PRIORITY.rest);
    else {
      queue.remove(el);
      if (v.kind === 'skip' && /broken/.test(v.reason)) logSkip((el as HTMLImageElement).currentSrc || (el as HTMLImageElement).src, v.reason);
    }
  };

  const forget = (el: Element) => {
    queue.remove(el);
    io.unobserve(el);
    tracked.delete(el);
  };

  const scan = (root: ParentNode) => {
    if (root instanceof Element && root.matches(CANDIDATE_SELECTOR)) consider(root);
    for (const el of root.querySelectorAll(CANDIDATE_SELECTOR)) consider(el);
    // Open shadow roots: look inside each host.
    const all = root.querySelectorAll('*');
    for (const el of all) if (el.shadowRoot) watch(el.shadowRoot);
    if (root instanceof Element && root.shadowRoot) watch(root.shadowRoot);
  };

  const onAttr = (el: Element, attr: string) => {
    if (!el.matches(CANDIDATE_SELECTOR)) {
      // A style or aria-hidden change on an ancestor can change what is inside it.
      if (attr === 'aria-hidden' || attr === 'hidden' || attr === 'style' || attr === 'class') {
        for (const c of el.querySelectorAll(CANDIDATE_SELECTOR)) if (!hasOurLabel(c)) consider(c);
      }
      return;
    }
    if (attr === 'aria-label' && !hasOurLabel(el) && el.hasAttribute('data-alt-text-generated')) {
      // The author wrote their own aria-label over ours: it is theirs now.
      disown(el);
      reportCount();
      return;
    }
    if (attr === 'src' || attr === 'srcset' || attr === 'sizes') {
      // A new picture: our caption no longer applies.
      if (hasOurLabel(el)) {
        removeLabel(el);
        reportCount();
      }
      consider(el);
      return;
    }
    if (hasOurLabel(el)) {
      // The author may have named it since: then ours goes.
      const v = judge(el, opts.weakNamesCountAsMissing);
      if (v.kind !== 'label') {
        removeLabel(el);
        reportCount();
      }
      return;
    }
    consider(el);
  };

  const mo = new MutationObserver((records) => {
    for (const r of records) {
      if (r.type === 'attributes' && r.target instanceof Element) onAttr(r.target, r.attributeName ?? '');
      else if (r.type === 'childList') {
        for (const n of r.removedNodes) {
          if (!(n instanceof Element) || n.isConnected) continue;
          if (tracked.has(n)) forget(n);
          for (const el of n.querySelectorAll(CANDIDATE_SELECTOR)) if (tracked.has(el)) forget(el);
        }
        for (const n of r.addedNodes) if (n instanceof Element) scan(n);
      }
    }
  });

  const onLoad = (e: Event) => {
    const t = e.target;
    if (t instanceof Element && t.matches(CANDIDATE_SELECTOR)) consider(t);
  };
  const onError = (e: Event) => {
    const t = e.target;
    if (t instanceof HTMLImageElement) {
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
      removeAllLabels();
      tracked.clear();
      reportCount();
    },
    { once: true },
  );

  watch(document);
  reportCount();
}

function inViewport(el: Element): boolean {
  const r = el.getBoundingClientRect();
  return r.bottom > 0 && r.right > 0 && r.top < innerHeight && r.left < innerWidth;
}
