/**
 * A plain page that runs the content script's eligibility rules (src/content/eligibility.ts) on markup the test
 * mounts, for test/browser/eligibility.test.ts: layout, checkVisibility and the accessible-name computation need a
 * real browser.
 */
import type { Changes } from '../../src/content/changes';
import { judge, type Verdict } from '../../src/content/eligibility';
import { applyLabel } from '../../src/content/labeller';
import { PageActivity } from '../../src/content/page-activity';
import { PageWatch } from '../../src/content/page-watch';

const cases = document.getElementById('cases')!;

/** Every [data-test] element, in open shadow roots too. */
function byTestId(): Map<string, Element> {
  const out = new Map<string, Element>();
  const walk = (root: Document | ShadowRoot) => {
    for (const el of root.querySelectorAll('[data-test]')) out.set(el.getAttribute('data-test')!, el);
    for (const el of root.querySelectorAll('*')) if (el.shadowRoot) walk(el.shadowRoot);
  };
  walk(document);
  return out;
}

/** A picture smaller than 16×16 (TINY in the markup). */
function tinyPng(): string {
  const c = document.createElement('canvas');
  c.width = 8;
  c.height = 8;
  c.getContext('2d')!.fillRect(0, 0, 8, 8);
  return c.toDataURL('image/png');
}

/** Replace the cases with `html` (declarative shadow roots included) and wait until every image loaded or failed. */
async function mount(html: string): Promise<void> {
  cases.setHTMLUnsafe(html.replaceAll('TINY', tinyPng()));
  const imgs = [...byTestId().values()].flatMap((el) => [el, ...el.querySelectorAll('img')]).filter((e) => e instanceof HTMLImageElement);
  await Promise.all(imgs.map((im) => im.decode().catch(() => undefined)));
  await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
}

function describe(v: Verdict): string {
  return v.kind === 'skip' ? `skip: ${v.reason}` : v.kind;
}

function judgeAll(weakCountsAsMissing: boolean): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [id, el] of byTestId()) out[id] = describe(judge(el, weakCountsAsMissing));
  return out;
}

/** Put our generated label on an element the way auto-alt does (labeller.ts). */
function labelOurs(id: string): void {
  const el = byTestId().get(id)!;
  const v = judge(el, true);
  applyLabel(el, 'Appears to be: a test caption', 'toy', v.kind === 'label' ? v.src : '');
}

function judgeOne(id: string): string {
  return describe(judge(byTestId().get(id)!, true));
}

/** Mean judge() time per candidate over `rounds` passes on the mounted cases, in microseconds. */
function timeJudge(rounds: number): { images: number; usPerImage: number } {
  const els = [...cases.querySelectorAll('img, input[type="image" i], [role="img" i]')];
  const t0 = performance.now();
  for (let r = 0; r < rounds; r += 1) for (const el of els) judge(el, true);
  return { images: els.length, usPerImage: ((performance.now() - t0) * 1000) / (rounds * els.length) };
}

/**
 * Whether the page counts as busy (page-activity.ts) after `n` of the mounted images get an aria-label: ours (as
 * auto-alt puts them on) or the page's own. The page watch counts what the observer delivers.
 */
async function busyAfterLabels(whose: 'ours' | 'page', n: number): Promise<boolean> {
  const activity = new PageActivity();
  const stop = new AbortController();
  const noChanges = { mark() {} } as unknown as Changes;
  const watch = new PageWatch(noChanges, { onRoot() {}, isTracked: () => false, onBroken() {} }, activity, stop.signal);
  watch.watch(document);
  [...cases.querySelectorAll('img')].slice(0, n).forEach((el, i) => {
    if (whose === 'ours') applyLabel(el, `Appears to be: caption ${i}`, 'toy', '');
    else el.setAttribute('aria-label', `Author words ${i}`);
  });
  await new Promise((r) => setTimeout(r, 0)); // the observer's records are delivered
  watch.disconnect();
  stop.abort();
  return activity.busy;
}

declare global {
  interface Window {
    eligibilityTest: {
      mount: typeof mount;
      judgeAll: typeof judgeAll;
      labelOurs: typeof labelOurs;
      judgeOne: typeof judgeOne;
      timeJudge: typeof timeJudge;
      busyAfterLabels: typeof busyAfterLabels;
    };
  }
}

window.eligibilityTest = { mount, judgeAll, labelOurs, judgeOne, timeJudge, busyAfterLabels };
document.getElementById('status')!.textContent = 'ready';
