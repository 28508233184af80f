/**
 * Who has a name, and what an element is exposed as: the accessible name and role as Chrome computes them, by the
 * accname and role algorithms of dom-accessibility-api, patched where Chrome 156 differs from it (each patch below says
 * where), and seen without our own generated aria-label (it must not count as the author's name).
 */
import { computeAccessibleName, getRole } from 'dom-accessibility-api';
import { hasOurLabel } from './labeller';
import { isWeakName } from './weak-names';

/** Roles Chrome exposes as an image (ARIA 1.3 adds `image` as a synonym of `img`). */
export const IMAGE_ROLES = new Set(['img', 'image']);
export const PRESENTATIONAL = new Set(['presentation', 'none']);

/** dom-accessibility-api's name for an <input type=image> the author did not name (Chrome says "Submit"). */
const LIB_INPUT_DEFAULT = 'Submit Query';

/**
 * The element as the computation sees it: with the attributes in `hide` absent. The library reads attributes through
 * getAttribute, getAttributeNode and hasAttribute; everything else goes to the element itself.
 */
function without(el: Element, hide: readonly string[]): Element {
  if (hide.length === 0) return el;
  const gone = (n: string) => hide.includes(n.toLowerCase());
  return new Proxy(el, {
    get(t, p) {
      if (p === 'getAttribute') return (n: string) => (gone(n) ? null : t.getAttribute(n));
      if (p === 'getAttributeNode') return (n: string) => (gone(n) ? null : t.getAttributeNode(n));
      if (p === 'hasAttribute') return (n: string) => !gone(n) && t.hasAttribute(n);
      const v: unknown = Reflect.get(t, p, t);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v;
    },
  });
}

interface AuthorView {
  /** The element, or a view of it without the attributes in `hide`. */
  view: Element;
  hide: string[];
  role: string;
}

/** A tabindex (any integer, -1 too), or a control that is focusable by nature. */
function focusable(el: Element): boolean {
  if (/^\s*[-+]?\d/.test(el.getAttribute('tabindex') ?? '')) return true;
  return el.localName === 'input' && !(el as HTMLInputElement).disabled;
}

/**
 * The element as the author wrote it (without our label when it is on), and the role Chrome exposes it with. getRole
 * applies presentational-role conflict resolution for global ARIA attributes (an <img alt=""> or role=none with
 * aria-live is an image again); Chrome also does it for a focusable element, which then is named as if the
 * presentational role (or empty alt) were not there.
 * Limitation: the first role token counts (role="foo img" is "foo"), where Chrome takes the first it knows.
 */
export function authorView(el: Element): AuthorView {
  const hide = hasOurLabel(el) ? ['aria-label'] : [];
  const role = (getRole(without(el, hide)) ?? '').toLowerCase();
  if (PRESENTATIONAL.has(role) && focusable(el)) hide.push('role', ...(el.getAttribute('alt') === '' ? ['alt'] : []));
  const view = without(el, hide);
  return { view, hide, role: hide.includes('role') ? (getRole(view) ?? '') : role };
}

/**
 * The accessible name, trimmed. The library's own hidden test of the element (a getComputedStyle, most of the cost) is
 * skipped: a hidden element gets no label whatever its name (judge() checks visibility itself). It stays on where the
 * name may come from other elements (aria-labelledby, a <label>), whose hidden parts must not count.
 */
function nameOf(view: Element, real: Element): string {
  return computeAccessibleName(view, {
    hidden: !real.hasAttribute('aria-labelledby') && real.localName !== 'input',
    computedStyleSupportsPseudoElements: true,
    getComputedStyle: (e, pseudo) => getComputedStyle(e === view ? real : e, pseudo),
  }).trim();
}

/** An aria-labelledby that points at an element (whose text, even empty, is then what Chrome reads first). */
function labelledByResolves(el: Element): boolean {
  const root = el.getRootNode() as Document | ShadowRoot;
  return (el.getAttribute('aria-labelledby') ?? '').split(/\s+/).some((id) => id !== '' && root.getElementById(id) !== null);
}

/**
 * The author's name for an element exposed as an image ('' = none). An aria-labelledby name is the author's even when
 * weak (and it outranks any aria-label we could add); other weak names (a file name, "image") count as missing when
 * `weakCountsAsMissing`. The caller has already ruled out an author aria-label (never overridden either).
 */
export function authorName(el: Element, { view, hide }: AuthorView, weakCountsAsMissing: boolean): string {
  let name = nameOf(view, el);
  const labelledBy = el.hasAttribute('aria-labelledby');
  if (name && labelledBy && labelledByResolves(el)) return name;
  // Chrome: an aria-labelledby whose text is empty falls through to alt, title...; the library stops there.
  if (!name && labelledBy) name = nameOf(without(el, [...hide, 'aria-labelledby']), el);
  // Chrome names an <input type=image> from its value too, and otherwise "Submit": that is not the author's name.
  if (name === LIB_INPUT_DEFAULT && el.localName === 'input' && !['alt', 'title'].some((a) => el.getAttribute(a)?.trim() === name))
    name = (el.getAttribute('value') ?? '').trim();
  return name && weakCountsAsMissing && isWeakName(name) ? '' : name;
}
