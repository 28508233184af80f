/**
 * Which elements get a label. An element needs text when Chrome exposes it as an image with no accessible name
 * (names.ts computes both the way Chrome does); some are never touched at all: decorative images, our own UI, what
 * assistive technology cannot reach, and pictures we cannot describe (tiny, broken, hidden, not a raster image).
 */
import { authorAriaLabel } from './labeller';
import { IMAGE_ROLES, PRESENTATIONAL, authorName, authorView } from './names';
import { allowedScheme } from './safe-source';

export const CANDIDATE_SELECTOR = 'img, input[type="image" i], [role="img" i], [role="image" i]';
const MIN_SIDE = 16;
/** Our own UI (the describe panel) carries this attribute on its host. */
export const OWN_UI_ATTR = 'data-alt-text-ui';

export type Verdict =
  /** `verified`: a complete <img> the page loaded; other URLs are loaded as an image first (safe-source.ts). */
  | { kind: 'label'; src: string; verified: boolean }
  /** Not loaded yet: ask again on `load`. */
  | { kind: 'wait' }
  /** `looks`: skipped for how the page shows it now (hidden, too small on screen), which a style change can undo. */
  | { kind: 'skip'; reason: string; looks?: true }
  /** Has an author name (or is decorative): never touched. */
  | { kind: 'named' };

const isImg = (el: Element): el is HTMLImageElement => el.localName === 'img';
const isInputImage = (el: Element): el is HTMLInputElement => el.localName === 'input' && (el as HTMLInputElement).type === 'image';

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

/** The raster picture a role=img element shows: an <img> inside, an SVG <image>, or else its CSS background. */
function containerPicture(el: Element): { src: string | null; verified: boolean } {
  const inner = el.querySelector('img');
  if (inner) return { src: inner.currentSrc || inner.src, verified: inner.complete && inner.naturalWidth > 0 };
  const href = el.localName === 'svg' ? el.querySelector('image')?.href.baseVal : undefined;
  if (href) {
    try {
      return { src: new URL(href, el.baseURI).href, verified: false };
    } catch {
      return { src: null, verified: false };
    }
  }
  return { src: backgroundUrl(el), verified: false };
}

/** Cheap rejections first: the accessible-name computation runs only for a loaded picture we could describe. */
export function judge(el: Element, weakCountsAsMissing: boolean): Verdict {
  if (isOwnUi(el)) return { kind: 'named' };
  // An author aria-label, even a weak one, is never overridden: ours would replace it.
  if (authorAriaLabel(el)?.trim()) return { kind: 'named' };
  const seen = authorView(el);
  const role = seen.role;
  // alt="" or role=none/presentation, not focusable and without global ARIA attributes: decorative.
  if (PRESENTATIONAL.has(role)) return { kind: 'named' };
  // <input type=image> is a button whose picture is its only content; anything else must be exposed as an image.
  if (!IMAGE_ROLES.has(role) && !(isInputImage(el) && role === 'button'))
    return { kind: 'skip', reason: `role=${role || 'none'}, not an image` };
  if (isAriaHidden(el)) return { kind: 'skip', reason: 'aria-hidden', looks: true };

  let src: string | null;
  let verified = false;
  if (isImg(el)) {
    // Inside a role=img container, the container is what gets the name (its children are presentational).
    if (el.parentElement?.closest('[role="img" i]')) return { kind: 'named' };
    if (!el.complete) {
      // A lazy image the browser has not loaded yet, far from the viewport: a screen reader reading the whole page may
      // reach it first, so it is described now. Its URL is loaded as an image in the page first (safe-source.ts), as
      // the page itself will when it scrolls there. Any other image still loading is asked about on `load`.
      if (el.loading !== 'lazy' || !el.src) return { kind: 'wait' };
      src = el.src;
    } else {
      src = el.currentSrc || el.src;
      if (!src) return { kind: 'skip', reason: 'no source' };
      if (el.naturalWidth === 0 || el.naturalHeight === 0) return { kind: 'skip', reason: 'broken image (it did not load)' };
      if (el.naturalWidth < MIN_SIDE || el.naturalHeight < MIN_SIDE) return { kind: 'skip', reason: 'smaller than 16×16' };
      verified = true;
    }
  } else if (isInputImage(el)) {
    src = el.src;
  } else {
    ({ src, verified } = containerPicture(el));
    if (!src) return { kind: 'skip', reason: 'role=img shows no raster image' };
  }
  if (!allowedScheme(src)) return { kind: 'skip', reason: `unsupported URL scheme` };
  // Mostly attribute reads: cheaper than the style and layout checks below, and most images on a page are named.
  if (authorName(el, seen, weakCountsAsMissing)) return { kind: 'named' };
  const visible = (el as HTMLElement).checkVisibility?.({ visibilityProperty: true, contentVisibilityAuto: true }) ?? true;
  if (!visible) return { kind: 'skip', reason: 'hidden', looks: true };
  const r = el.getBoundingClientRect();
  if (r.width < MIN_SIDE || r.height < MIN_SIDE) return { kind: 'skip', reason: 'rendered smaller than 16×16', looks: true };
  return { kind: 'label', src, verified };
}
