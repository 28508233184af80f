/**
 * The labels auto-alt puts on and takes off (labeller.ts does the DOM work), and the count the toolbar badge shows:
 * sent to the worker a moment after the labels stop changing, and only when it changed.
 */
import { send, type CaptionResult } from '../shared/messages';
import { judge } from './eligibility';
import { applyLabel, disown, labelCount, labelText, removeAllLabels, removeLabel } from './labeller';

/** Count reports wait this long for the labels to settle, ms. */
const COUNT_DELAY_MS = 250;

export class AutoLabels {
  private countTimer: ReturnType<typeof setTimeout> | undefined;
  private lastCount = -1;

  constructor(
    private readonly opts: { marker: string; weakNamesCountAsMissing: boolean },
    private readonly signal: AbortSignal,
  ) {}

  /** A caption came back: label the element if it still shows that picture and still has no name. */
  put(el: Element, src: string, result: CaptionResult): boolean {
    if (this.signal.aborted || !el.isConnected) return false;
    const v = judge(el, this.opts.weakNamesCountAsMissing);
    if (v.kind !== 'label' || v.src !== src) return false;
    applyLabel(el, labelText(this.opts.marker, result.text), result.packId, src);
    this.changed();
    return true;
  }

  /** Our label no longer applies: take it off. */
  remove(el: Element): void {
    removeLabel(el);
    this.changed();
  }

  /** The author wrote over our aria-label, or took it off: it is theirs now, and the element is never labelled again. */
  disown(el: Element): void {
    disown(el);
    this.changed();
  }

  /** Switched off: every label we added goes, and the count falls to 0. */
  removeAll(): void {
    removeAllLabels();
    this.changed();
  }

  /** The number of labels may have changed: report it soon. */
  changed(): void {
    clearTimeout(this.countTimer);
    this.countTimer = setTimeout(() => {
      const n = this.signal.aborted ? 0 : labelCount();
      if (n === this.lastCount) return;
      this.lastCount = n;
      send({ type: 'cs-bg-label-count', count: n }).catch(() => null);
    }, COUNT_DELAY_MS);
  }
}
