/**
 * Which waiting images are on screen (or near it), so the queue asks about those first.
 *
 * Only images waiting for a caption are watched: an IntersectionObserver with every image of a 10,000-image page as a
 * target costs the page most of its frame time whenever its layout or style changes (measured in
 * test/e2e/load.test.ts).
 */
export class Visibility {
  private readonly visible = new Set<Element>();
  private readonly observed = new Set<Element>();
  private readonly io: IntersectionObserver;

  constructor(onChange: (el: Element, visible: boolean) => void) {
    this.io = new IntersectionObserver(
      (entries) => {
        for (const e of entries) {
          if (e.isIntersecting) this.visible.add(e.target);
          else this.visible.delete(e.target);
          onChange(e.target, e.isIntersecting);
        }
      },
      { rootMargin: '200px' },
    );
  }

  /** Images watched now (test builds report it). */
  get watching(): number {
    return this.observed.size;
  }

  /** Start or stop watching the element. */
  watch(el: Element, on: boolean): void {
    if (on === this.observed.has(el)) return;
    if (on) {
      this.observed.add(el);
      this.io.observe(el);
    } else {
      this.observed.delete(el);
      this.io.unobserve(el);
      this.visible.delete(el);
    }
  }

  /** The observer last said it is on screen. */
  isVisible(el: Element): boolean {
    return this.visible.has(el);
  }

  /** On screen by the observer, or (before it has reported) by the element's box. */
  onScreen(el: Element): boolean {
    return this.visible.has(el) || inViewport(el);
  }

  /** The element left the page. */
  forget(el: Element): void {
    this.watch(el, false);
    this.visible.delete(el);
  }

  disconnect(): void {
    this.io.disconnect();
    this.visible.clear();
    this.observed.clear();
  }
}

/** The element's place on the page: px from the document's top to the middle of its box. */
export function pagePosition(el: Element): number {
  const r = el.getBoundingClientRect();
  return r.top + r.height / 2 + scrollY;
}

/**
 * Where the user reads now, on the pagePosition scale: the middle of the viewport. Screen readers scroll what they
 * read into view, so the viewport follows their reading position.
 */
export function readingPosition(): number {
  return scrollY + innerHeight / 2;
}

function inViewport(el: Element): boolean {
  const r = el.getBoundingClientRect();
  return r.bottom > 0 && r.right > 0 && r.top < innerHeight && r.left < innerWidth;
}
