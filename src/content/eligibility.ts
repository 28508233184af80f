/**
 * Which elements get a label: axe-core's image-alt / input-image-alt / role-img-alt semantics, plus Chrome's own
 * image-annotation rules. An element needs text when it has no accessible name; some are never touched at all.
 */
import { isWeakName } from './weak-names';
import { authorAriaLabel } from './labeller';
import { allowedScheme } from './safe-source';

export const CANDIDATE_SELECTOR = 'img, input[type="image" i], [role="img" i]';
const MIN_SIDE = 16;
/** Our own UI (the describe panel) carries this attribute on its host. */
export const OWN_UI_ATTR = 'data-alt-text-ui';

export type Verdict =
  /** `verified`: a complete <img> the page loaded; other URLs are loaded as an image first (safe-source.ts). */
  | { kind: 'label'; src: string; verified: boolean }
  /** Not loaded yet: ask again on `load`. */
  | { kind: 'wait' }
  | { kind: 'skip'; reason: string }
  /** Has an author name (or is decorative): never touched. */
  | { kind: 'named' };

const isImg = (el: Element): el is HTMLImageElement => el.localName === 'img';
const isInputImage = (el: Element): el is HTMLInputElement => el.localName === 'input' && (el as HTMLInputElement).type === 'image';

function roleOf(el: Element): string {
  return (el.getAttribute('role') ?? '').trim().toLowerCase().split(/\s+/)[0] ?? '';
}

function labelledByText(el: Element): string {
  const ids = (el.getAttribute('aria-labelledby') ?? '').trim().split(/\s+/).filter(Boolean);
  if (ids.length === 0) return '';
  const root = el.getRootNode() as Document | ShadowRoot;
  return ids
    .map((id) => (root.getElementById ? root.getElementById(id) : el.ownerDocument.getElementById(id))?.textContent ?? '')
    .join(' ')
    .trim();
}

/** aria-hidden="true" on the element or any ancestor, across shadow boundaries. */
function isAriaHidden(el: Element): boolean {
  let n: Node | null = el;
  while (n) {
    if (n instanceof Element && n.getAttribute('aria-hidden')?.trim().toLowerCase() === 'true') return true;
    n = n.parentNode instanceof ShadowRoot ? n.parentNode.host : n.parentNode;
  }
  return false;
}

function isOwnUi(el: Element): boolean {
  const root = el.getRootNode();
  return root instanceof ShadowRoot && root.host.hasAttribute(OWN_UI_ATTR);
}

/**
 * The author's name for the element, or why it counts as having one. `null` = no usable name.
 * An author aria-label or aria-labelledby, even a weak one, is never overridden: our aria-label would replace theirs.
 */
function authorName(el: Element, weakCountsAsMissing: boolean): { name: string; decorative: boolean } | null {
  const lb = labelledByText(el);
  if (lb) return { name: lb, decorative: false };
  const aria = authorAriaLabel(el)?.trim();
  if (aria) return { name: aria, decorative: false };
  const strong = (s: string | null | undefined) => !!s && s.trim() !== '' && !(weakCountsAsMissing && isWeakName(s));
  if (isImg(el) || isInputImage(el)) {
    const alt = el.getAttribute('alt');
    // alt="" on an <img> is the author saying "decorative"; an aria-label would un-hide it.
    if (isImg(el) && alt === '') return { name: '', decorative: true };
    if (strong(alt)) return { name: alt!.trim(), decorative: false };
  }
  const title = el.getAttribute('title');
  if (strong(title)) return { name: title!.trim(), decorative: false };
  return null;
}

export function backgroundUrl(el: Element): string | null {
  const bg = getComputedStyle(el).backgroundImage;
  const m = /url\((['"]?)(.*?)\1\)/.exec(bg);
  if (!m) return null;
  try {
    return new URL(m[2], el.baseURI).href;
  } catch {
    return null;
  }
}

export function judge(el: Element, weakCountsAsMissing: boolean): Verdict {
  if (isOwnUi(el)) return { kind: 'named' };
  const role = roleOf(el);
  if (role === 'presentation' || role === 'none') return { kind: 'named' };
  if (authorName(el, weakCountsAsMissing)) return { kind: 'named' };
  if (isAriaHidden(el)) return { kind: 'skip', reason: 'aria-hidden' };

  let src: string | null;
  let verified = false;
  if (isImg(el)) {
    // Inside a role=img container, the container is what gets the name (its children are presentational).
    if (el.parentElement?.closest('[role="img" i]')) return { kind: 'named' };
    if (!el.complete) return { kind: 'wait' };
    src = el.currentSrc || el.src;
    if (!src) return { kind: 'skip', reason: 'no source' };
    if (el.naturalWidth === 0 || el.naturalHeight === 0) return { kind: 'skip', reason: 'broken image (it did not load)' };
    if (el.naturalWidth < MIN_SIDE || el.naturalHeight < MIN_SIDE) return { kind: 'skip', reason: 'smaller than 16×16' };
    verified = true;
  } else if (isInputImage(el)) {
    src = el.src;
  } else if (role === 'img') {
    const inner = el.querySelector('img');
    src = inner ? inner.currentSrc || inner.src : backgroundUrl(el);
    verified = !!inner && inner.complete && inner.naturalWidth > 0;
    if (!src) return { kind: 'skip', reason: 'role=img shows no raster image' };
  } else {
    return { kind: 'skip', reason: 'not an image' };
  }
  if (!allowedScheme(src)) return { kind: 'skip', reason: `unsupported URL scheme` };
  const visible = (el as HTMLElement).checkVisibility?.({ visibilityProperty: true, contentVisibilityAuto: true }) ?? true;
  if (!visible) return { kind: 'skip', reason: 'hidden' };
  const r = el.getBoundingClientRect();
  if (r.width < MIN_SIDE || r.height < MIN_SIDE) return { kind: 'skip', reason: 'rendered smaller than 16×16' };
  return { kind: 'label', src, verified };
}
