/**
 * Putting our label on an element and taking it off. The label is `aria-label` = marker + caption; a data attribute
 * marks it generated and names the pack. Caption text only ever goes in through setAttribute, never innerHTML.
 *
 * What is ours is remembered here (a WeakMap: the exact text, and the picture it describes), never read back from the
 * DOM: a page can forge `data-alt-text-generated` or an aria-label that looks like ours, and neither makes us touch
 * its element. An author's later aria-label is recognised as theirs and left alone.
 */
const GENERATED_ATTR = 'data-alt-text-generated';

interface Ours {
  text: string;
  /** The image URL the caption describes. */
  src: string;
}

const ours = new WeakMap<Element, Ours>();
/** Elements in the document that carry our label (strong references: dropped by release() when they leave). */
const labelled = new Set<Element>();
/** Elements whose author took our label off or wrote over it: never labelled again (no tug of war with a framework). */
const refused = new WeakSet<Element>();

export function labelText(marker: string, caption: string): string {
  const c = caption.trim();
  // "Appears to be: a dog", not "Appears to be: A dog" (keep "TV", "UK" as they are).
  const tidy = c.length > 1 && /^[A-Z][^A-Z]/.test(c) ? c[0].toLowerCase() + c.slice(1) : c;
  return `${marker}${tidy}`;
}

export function applyLabel(el: Element, text: string, packId: string, src = ''): void {
  if (refused.has(el)) return;
  ours.set(el, { text, src });
  labelled.add(el);
  el.setAttribute('aria-label', text);
  el.setAttribute(GENERATED_ATTR, packId);
}

/** Is our label (still) on this element? False once the author replaced the aria-label. */
export function hasOurLabel(el: Element): boolean {
  const o = ours.get(el);
  return o !== undefined && el.getAttribute('aria-label') === o.text;
}

/** The picture our label describes ('' when not ours). */
export function labelledSrc(el: Element): string {
  return hasOurLabel(el) ? ours.get(el)!.src : '';
}

/** We labelled it, and the author has since changed or removed that aria-label. */
export function authorTookOver(el: Element): boolean {
  return ours.has(el) && !hasOurLabel(el);
}

export function isRefused(el: Element): boolean {
  return refused.has(el);
}

/** The author's aria-label, ignoring ours. */
export function authorAriaLabel(el: Element): string | null {
  return hasOurLabel(el) ? null : el.getAttribute('aria-label');
}

/** Take our label off; an author's aria-label stays. Elements we never labelled are not touched at all. */
export function removeLabel(el: Element): void {
  if (!ours.has(el)) return;
  if (hasOurLabel(el)) {
    el.removeAttribute('aria-label');
    el.removeAttribute(GENERATED_ATTR);
  }
  ours.delete(el);
  labelled.delete(el);
}

/**
 * The author took over the element's aria-label: forget it, drop our marker (it was ours), and never label it again.
 * An element we never labelled is not touched, even if the page put our marker attribute on it.
 */
export function disown(el: Element): void {
  if (!ours.has(el)) return;
  if (el.hasAttribute(GENERATED_ATTR)) el.removeAttribute(GENERATED_ATTR);
  ours.delete(el);
  labelled.delete(el);
  refused.add(el);
}

/** The element left the document: let it be collected (the weak record still knows the label if it comes back). */
export function release(el: Element): void {
  labelled.delete(el);
}

/** The element came back into the document with our label still on it. */
export function adopt(el: Element): void {
  if (hasOurLabel(el)) labelled.add(el);
}

export function removeAllLabels(): void {
  for (const el of [...labelled]) removeLabel(el);
}

export function labelCount(): number {
  let n = 0;
  for (const el of labelled) if (el.isConnected) n += 1;
  return n;
}
