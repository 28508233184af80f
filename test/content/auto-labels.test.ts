// The content script's decision on each caption: a caption the model is sure of is written as our label; one CLIP
// judged uncertain is not (the image stays as its author left it, the log says why, the count says how many), unless
// the user turned that off (skipUncertain false). A cached answer carries the same verdict.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { CaptionResult } from '../../src/shared/messages';

const sent: { type: string; count?: number; unsure?: number }[] = [];
vi.mock('../../src/shared/messages', () => ({
  send: (msg: { type: string; count?: number; unsure?: number }) => {
    sent.push(msg);
    return Promise.resolve(null);
  },
}));
// The element's verdict as eligibility.ts would give it: still unnamed, still showing `src`.
vi.mock('../../src/content/eligibility', () => ({
  judge: (el: FakeElement) => ({ kind: 'label', src: el.src, verified: true }),
}));

const { AutoLabels, unsureReason } = await import('../../src/content/auto-labels');
const { hasOurLabel } = await import('../../src/content/labeller');

/** Just what the labeller touches: attributes, and whether it is in the document. */
class FakeElement {
  readonly attrs = new Map<string, string>();
  isConnected = true;
  constructor(readonly src: string) {}
  setAttribute(k: string, v: string) {
    this.attrs.set(k, v);
  }
  getAttribute(k: string) {
    return this.attrs.get(k) ?? null;
  }
  hasAttribute(k: string) {
    return this.attrs.has(k);
  }
  removeAttribute(k: string) {
    this.attrs.delete(k);
  }
}
const el = (name: string) => new FakeElement(`https://example.test/${name}.png`) as unknown as Element & FakeElement;

const caption = (text: string, extra: Partial<CaptionResult> = {}): CaptionResult => ({
  text,
  packId: 'toy',
  backend: 'wasm',
  cached: false,
  ...extra,
});
const SURE = { clipScore: 0.83, uncertain: false };
const UNSURE = { clipScore: 0.2117, uncertain: true };
const MARKER = 'Appears to be: ';

describe('auto labels: what the model is unsure of is not written', () => {
  let info: ReturnType<typeof vi.spyOn>;
  beforeEach(() => {
    vi.useFakeTimers();
    sent.length = 0;
    info = vi.spyOn(console, 'info').mockImplementation(() => undefined);
  });
  afterEach(() => {
    vi.useRealTimers();
    vi.restoreAllMocks();
  });

  const labels = (skipUncertain = true) =>
    new AutoLabels({ marker: MARKER, weakNamesCountAsMissing: true, skipUncertain }, new AbortController().signal);

  it('a certain caption is labelled, with the marker', () => {
    const a = el('sure');
    expect(labels().put(a, a.src, caption('A red circle on a white background.', SURE))).toBe('labelled');
    expect(a.getAttribute('aria-label')).toBe(`${MARKER}a red circle on a white background.`);
    expect(a.getAttribute('data-alt-text-generated')).toBe('toy');
  });

  it('an uncertain caption is not labelled: the element is untouched, and the log gives the reason and the score', () => {
    const a = el('ood');
    expect(labels().put(a, a.src, caption('A blue square on a black background.', UNSURE))).toBe('unsure');
    expect([...a.attrs]).toEqual([]);
    expect(hasOurLabel(a)).toBe(false);
    const logged = info.mock.calls.map((c: unknown[]) => c.join(' '));
    expect(logged).toEqual([`[alt-text] skipped ${a.src}: ${unsureReason(UNSURE)}`]);
    expect(logged[0]).toMatch(/uncertain: .*CLIP score 0\.212/);
  });

  it('with skipUncertain off, an uncertain caption is labelled as before, marked as generated', () => {
    const a = el('ood-kept');
    expect(labels(false).put(a, a.src, caption('A blue square on a black background.', UNSURE))).toBe('labelled');
    expect(a.getAttribute('aria-label')).toBe(`${MARKER}a blue square on a black background.`);
    expect(a.getAttribute('data-alt-text-generated')).toBe('toy');
  });

  it('a pack without a text tower (no verdict) labels as it always did', () => {
    const a = el('no-tower');
    expect(labels().put(a, a.src, caption('A red circle on a white background.'))).toBe('labelled');
    expect(a.getAttribute('aria-label')).toBe(`${MARKER}a red circle on a white background.`);
  });

  it('a cached uncertain caption is not written either', () => {
    const a = el('cached-ood');
    expect(labels().put(a, a.src, caption('A blue square on a black background.', { ...UNSURE, cached: true }))).toBe('unsure');
    expect(a.hasAttribute('aria-label')).toBe(false);
  });

  it('the count report carries the images left unlabelled because the model was unsure, in the document only', () => {
    const l = labels();
    const [a, b, c] = [el('count-a'), el('count-b'), el('count-c')];
    l.put(a, a.src, caption('A red circle.', SURE));
    l.put(b, b.src, caption('A green square.', UNSURE));
    l.put(c, c.src, caption('A blue star.', UNSURE));
    vi.advanceTimersByTime(300);
    expect(sent.at(-1)).toMatchObject({ type: 'cs-bg-label-count', unsure: 2 });
    const labelled = sent.at(-1)!.count!;
    // One leaves the page, one is looked at again (its picture changed): neither counts any more.
    c.isConnected = false;
    l.reconsider(b);
    vi.advanceTimersByTime(300);
    expect(sent.at(-1)).toEqual({ type: 'cs-bg-label-count', count: labelled, unsure: 0 });
    // Switched off: both counts fall to 0.
    l.removeAll();
    vi.advanceTimersByTime(300);
    expect(sent.at(-1)).toEqual({ type: 'cs-bg-label-count', count: 0, unsure: 0 });
  });
});
