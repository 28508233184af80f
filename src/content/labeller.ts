/**
 * Putting our label on an element and taking it off. The label is `aria-label` = marker + caption; a data attribute
 * marks it generated and names the pack. Caption text only ever goes in through setAttribute, never innerHTML.
 * We remember the exact text we set, so an author's later aria-label is recognised as theirs and left alone.
 */
export const GENERATED_ATTR = 'data-alt-text-generated';

const ourText = new WeakMap<Element, string>();
const labelled = new Set<Element>();

export function labelText(marker: string, caption: string): string {
  const c = caption.trim();
  // "Appears to be: a dog", not "Appears to be: A dog" (keep "TV", "UK" as they are).
  const tidy = c.length > 1 && /^[A-Z][^A-Z]/.test(c) ? c[0].toLowerCase() + c.slice(1) : c;
  return `${marker}${tidy}`;
}

export function applyLabel(el: Element, text: string, packId: string): void {
  ourText.set(el, text);
  labelled.add(el);
  el.setAttribute('aria-label', text);
  el.setAttribute(GENERATED_ATTR, packId);
}

/** Is our label (still) on this element? False once the author replaced the aria-label. */
export function hasOurLabel(el: Element): boolean {
  const t = ourText.get(el);
  return t !== undefined && el.getAttribute('aria-label') === t;
}

/** The author's aria-label, ignoring ours. */
export function authorAriaLabel(el: Element): string | null {
  return hasOurLabel(el) ? null : el.getAttribute('aria-label');
}

/** Take our label off; an author's aria-label stays. */
export function removeLabel(el: Element): void {
  if (!ourText.has(el)) return;
  if (hasOurLabel(el)) el.removeAttribute('aria-label');
  if (el.hasAttribute(GENERATED_ATTR)) el.removeAttribute(GENERATED_ATTR);
  ourText.delete(el);
  labelled.delete(el);
}

/** Forget the element without touching it (the author took over its aria-label). */
export function disown(el: Element): void {
  if (el.hasAttribute(GENERATED_ATTR)) el.removeAttribute(GENERATED_ATTR);
  ourText.delete(el);
  labelled.delete(el);
}

export function removeAllLabels(): void {
  for (const el of [...labelled]) removeLabel(el);
}

export function labelCount(): number {
  let n = 0;
  for (const el of labelled) if (el.isConnected) n += 1;
  return n;
}
