/**
 * The labels auto-alt puts on and takes off (labeller.ts does the DOM work), and the count the toolbar badge shows:
 * sent to the worker a moment after the labels stop changing, and only when it changed.
 *
 * A caption the model is unsure of (CLIP scored it below the pack's threshold: `uncertain`) is not written: a wrong
 * label is worse than none, since a screen-reader user cannot see that it is wrong. The image stays as its author left
 * it, the log says why, and the count of such images goes with the label count, so the popup can say why an image has
 * no label. "Describe this image" still gives the caption, marked as unsure (describe.ts).
 */
import { send, type CaptionResult } from '../shared/messages';
import { judge } from './eligibility';
import { applyLabel, disown, labelCount, labelText, removeAllLabels, removeLabel } from './labeller';
import { logSkip } from './log';

/** Count reports wait this long for the labels to settle, ms. */
const COUNT_DELAY_MS = 250;

export interface LabelOptions {
  marker: string;
  weakNamesCountAsMissing: boolean;
  /** Leave an image unlabelled when its caption is uncertain (settings.ts skipUncertain). */
  skipUncertain: boolean;
}

/** What became of a caption: written as our label, left out because the model was unsure, or no longer wanted. */
export type PutOutcome = 'labelled' | 'unsure' | 'stale';

/** Why an uncertain caption was not written, for the log (the score when the engine gave one). */
export function unsureReason(result: Pick<CaptionResult, 'clipScore'>): string {
  const score = result.clipScore === undefined ? '' : ` (CLIP score ${result.clipScore.toFixed(3)})`;
  return `uncertain: the model is unsure of its caption${score}, so no label was added`;
}

export class AutoLabels {
  private countTimer: ReturnType<typeof setTimeout> | undefined;
  private lastCount = -1;
  private lastUnsure = -1;
  /** Elements left unlabelled because the model was unsure (until they are judged again: Decider.consider). */
  private readonly unsure = new Set<Element>();

  constructor(
    private readonly opts: LabelOptions,
    private readonly signal: AbortSignal,
  ) {}

  /** A caption came back: label the element if it still shows that picture, still has no name, and the model is sure. */
  put(el: Element, src: string, result: CaptionResult): PutOutcome {
    if (this.signal.aborted || !el.isConnected) return 'stale';
    const v = judge(el, this.opts.weakNamesCountAsMissing);
    if (v.kind !== 'label' || v.src !== src) return 'stale';
    if (result.uncertain === true && this.opts.skipUncertain) {
      logSkip(src, unsureReason(result));
      this.unsure.add(el);
      this.changed();
      return 'unsure';
    }
    this.unsure.delete(el);
    applyLabel(el, labelText(this.opts.marker, result.text), result.packId, src);
    this.changed();
    return 'labelled';
  }

  /** The element is looked at again (its picture or name changed) or left the page: it no longer counts as unsure. */
  reconsider(el: Element): void {
    if (this.unsure.delete(el)) this.changed();
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
    this.unsure.clear();
    this.changed();
  }

  /** Images on the page left unlabelled because the model was unsure. */
  unsureCount(): number {
    let n = 0;
    for (const el of [...this.unsure]) {
      if (el.isConnected) n += 1;
      // Gone from the page: let it be collected (should it come back, it is judged again and asked again).
      else this.unsure.delete(el);
    }
    return n;
  }

  /** The number of labels may have changed: report it soon. */
  changed(): void {
    clearTimeout(this.countTimer);
    this.countTimer = setTimeout(() => {
      const n = this.signal.aborted ? 0 : labelCount();
      const unsure = this.signal.aborted ? 0 : this.unsureCount();
      if (n === this.lastCount && unsure === this.lastUnsure) return;
      this.lastCount = n;
      this.lastUnsure = unsure;
      send({ type: 'cs-bg-label-count', count: n, unsure }).catch(() => null);
    }, COUNT_DELAY_MS);
  }
}
