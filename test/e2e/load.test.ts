// Load (issue 7): 10,000 images, more appended as on an infinite-scroll page, a mutation storm, and an image whose src
// never stops changing. The content queue stays bounded, none of our tasks is long, the page keeps painting, heap and
// requests stay bounded, and the labels are the true captions.
//
// "Tasks of ours" are measured from outside, with a Chrome trace of the page (CDP Tracing): every call into our content
// script's code (timers, idle callbacks, observers, events: FunctionCall, and its first run: EvaluateScript), with what
// it forces (style, layout). The page's Long Animation Frames observer cannot do this: Chrome hides extension scripts
// from its script attribution. A positive control first proves the trace sees our script (a deliberate 80 ms task from
// it must show up), so "no long task of ours" cannot pass by seeing nothing. The work loop's own slice timing (read
// through the content script's test hook, in its isolated world, which the page cannot see) is checked too.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CDPSession, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sameCaption, toyHeldout, waitFor } from './harness.mjs';
import { hostilePlan } from './fixtures-hostile.mjs';
import { MARKER, env, launch, setSettings, type Ext } from './env';

const held = toyHeldout();
const truth = Object.fromEntries(held.map((h) => [h.file, h.caption]));
const plan = hostilePlan(held);
/** CaptionRequests' maxQueued (LIMITS.queue.frameQueued, src/shared/limits.ts). */
const QUEUE_BOUND = 100;
/** A long task, by the definition. Measured longest call of ours (less GC): 12-37 ms on a shared 2-core box. */
const LONG_MS = 50;
// Bounds from measured runs (2-core shared machine, Debian Chromium headless), with margin; each says what it was.
/** V8 heap growth vs the same page with auto-alt off: measured 1.0-1.2 MB. */
const HEAP_GROWTH_MB = 16;
/** Frames per second during the storm (untraced): a floor only; the ratio to the page alone is printed (goal 0.9). */
const MIN_STORM_FPS = 5;
/**
 * Verdicts for restyles during both storms: a restyle of an image already queued or labelled needs none (6,000
 * restyles a second over 400 images; judging each forced a style and layout pass, and the page fell from 40-50 to
 * 10-15 frames/s). Other verdicts go on meanwhile: the rest of the page is being described in the background.
 */
const MAX_STORM_VERDICTS = 50;
/** Attribute changes per second the page still manages with us on: measured 490-800 (alone: 1,200-2,500). */
const MIN_STORM_RATE = 250;
/**
 * Caption requests for images off screen that go out during the two 3-second storms. A request counts once its image
 * is ready to send, so the bound is: the 3 the queue may have in flight when the storm begins
 * (LIMITS.queue.frameInFlight), 3 more that may start before the storm's first 200 changes mark the page busy (the toy
 * model answers within tens of ms), and one let through 5 s after the page turned busy and every 5 s after that
 * (LIMITS.queue.busyPage; the storms and the trace's start between them span 7-9 s: 2 at most). Measured 1-7 in full
 * e2e runs. Before background requests waited, 101-108 went out, and the page kept 0.56-0.82 of its frame rate.
 * Images on screen are never held.
 */
const MAX_STORM_BACKGROUND_REQUESTS = 3 + 3 + 2;
/** src changes the churn timer manages in 3 s on this busy page: measured 8-22. */
const MIN_CHURN_CHANGES = 5;
/** Caption requests for the churning image: measured 1 every run; more only if the page stalls past SETTLE_MS. */
const MAX_CHURN_REQUESTS = 3;

interface Stats {
  queue: { pending: number; maxPending: number; sent: number; sentBackground: number; cancelled: number; dropped: number };
  loop: { slices: number; maxSliceMs: number; units: number };
  tracked: number;
  /** Verdicts reached (each may read styles and layout), and those for a change of an image's looks only. */
  judged: number;
  judgedForLooks: number;
  /** Images watched for visibility: only those waiting for a caption. */
  observed: number;
  dropped: number;
  dirty: number;
  labelled: number;
  /** How often the page turned busy, and background captions held back meanwhile (content/page-activity.ts). */
  busy: { busySpells: number; held: number; now: boolean };
}

/** Evaluate in the content script's isolated world of the top frame, found over CDP. */
async function contentWorld(cdp: CDPSession): Promise<(expr: string) => Promise<unknown>> {
  const contexts: { id: number; auxData?: { type?: string } }[] = [];
  cdp.on('Runtime.executionContextCreated', (e) => contexts.push(e.context));
  cdp.on('Runtime.executionContextsCleared', () => (contexts.length = 0));
  await cdp.send('Runtime.enable');
  const evaluate = async (expr: string): Promise<unknown> => {
    for (const c of contexts.filter((c) => c.auxData?.type === 'isolated')) {
      const r = await cdp
        .send('Runtime.evaluate', {
          contextId: c.id,
          expression: `globalThis.altTextContentTest ? (${expr}) : undefined`,
          returnByValue: true,
        })
        .catch(() => null);
      if (r?.result?.value !== undefined) return r.result.value;
    }
    return undefined;
  };
  await waitFor(async () => (await evaluate('1')) === 1, { timeout: 60_000, what: 'the content script test hook' });
  return evaluate;
}

/** Images in the viewport, with their files and labels. */
const visibleLabels = (page: Page) =>
  page.evaluate(() =>
    [...document.querySelectorAll('#grid img')]
      .filter((im) => {
        const r = im.getBoundingClientRect();
        return r.bottom > 0 && r.top < innerHeight && r.right > 0 && r.left < innerWidth;
      })
      .map((im) => ({ k: im.getAttribute('data-k'), file: im.getAttribute('data-file'), label: im.getAttribute('aria-label') })),
  );

/** Wait until every image in the viewport carries our label, then check each is its picture's true caption. */
async function expectVisibleTrue(page: Page, timeout: number): Promise<number> {
  const t0 = Date.now();
  await expect
    .poll(async () => (await visibleLabels(page)).filter((v) => !v.label?.startsWith(MARKER)).length, { timeout, interval: 250 })
    .toBe(0);
  const vis = await visibleLabels(page);
  expect(vis.length).toBeGreaterThan(40);
  for (const v of vis) expect(sameCaption(v.label!.slice(MARKER.length), truth[v.file!]), `#${v.k} ${v.file}: ${v.label}`).toBe(true);
  return Date.now() - t0;
}

interface Perf {
  frames: number;
  now: number;
  loafN: number;
  loafMax: number;
}

/** From the page's own observers: rAF ticks, and long animation frames since `since` (page time), whoever caused them. */
const perf = (page: Page, since = 0): Promise<Perf> =>
  page.evaluate((since) => {
    const w = window as unknown as { __loaf: { start: number; duration: number }[]; __frames: number };
    const loaf = w.__loaf.filter((f) => f.start >= since);
    return { frames: w.__frames, now: performance.now(), loafN: loaf.length, loafMax: Math.max(0, ...loaf.map((f) => f.duration)) };
  }, since);

/**
 * Records a Chrome trace and keeps the calls into our content script (its URL, from the built manifest), with what ran
 * inside each on the same thread (style, layout, garbage collection), to say what a long one spent its time on.
 */
function tracer(cdp: CDPSession) {
  const script = (JSON.parse(readFileSync(join(env.extDir, 'manifest.json'), 'utf8')) as { content_scripts: { js: string[] }[] })
    .content_scripts[0].js[0];
  type Ev = {
    name: string;
    ts: number;
    dur?: number;
    tdur?: number;
    tid: number;
    pid: number;
    args?: { data?: { url?: string; functionName?: string } };
  };
  const INNER =
    /^(Layout|UpdateLayoutTree|RecalculateStyles|MajorGC|MinorGC|V8\.GC.*|BlinkGC.*|ParseHTML|IntersectionObserverController::computeIntersections)$/;
  let ours: Ev[] = [];
  let inner: Ev[] = [];
  cdp.on('Tracing.dataCollected', (e) => {
    for (const ev of e.value as unknown as Ev[]) {
      if (ev.dur === undefined) continue;
      const u = ev.args?.data?.url;
      if (typeof u === 'string' && u.startsWith('chrome-extension://') && u.endsWith(`/${script}`)) ours.push(ev);
      else if (INNER.test(ev.name)) inner.push(ev);
    }
  });
  const within = (c: Ev, x: Ev) => x.pid === c.pid && x.tid === c.tid && x.ts >= c.ts && x.ts < c.ts + c.dur!;
  /**
   * A call's own time: the thread's CPU time in it (`tdur`; wall time when the trace has none), so a call the OS
   * preempted on a loaded machine does not read as a long task of ours; less garbage collection, which is the page's
   * and ours alike (one heap).
   */
  const cpu = (x: Ev) => x.tdur ?? x.dur!;
  const own = (c: Ev) =>
    (cpu(c) - inner.filter((x) => (x.name === 'MajorGC' || x.name === 'MinorGC') && within(c, x)).reduce((a, x) => a + cpu(x), 0)) / 1000;
  const what = (c: Ev) => {
    const by: Record<string, number> = {};
    for (const x of inner) if (within(c, x) && !/^V8\.GC_/.test(x.name)) by[x.name] = (by[x.name] ?? 0) + x.dur! / 1000;
    return Object.entries(by)
      .filter(([, ms]) => ms >= 1)
      .map(([n, ms]) => `${n} ${ms.toFixed(0)}`)
      .join(' ');
  };
  return {
    async start() {
      ours = [];
      inner = [];
      await cdp.send('Tracing.start', {
        traceConfig: { includedCategories: ['devtools.timeline', 'toplevel'], recordMode: 'recordAsMuchAsPossible' },
        transferMode: 'ReportEvents',
      });
    },
    /** Stop; our calls: how many, the longest, in all, and the longest three with what they spent time on. */
    async stop() {
      const complete = new Promise((r) => cdp.once('Tracing.tracingComplete', r));
      await cdp.send('Tracing.end');
      await complete;
      const sorted = ours.map((c) => ({ c, own: own(c) })).sort((a, b) => b.own - a.own);
      return {
        calls: sorted.length,
        /** The longest call of ours, less garbage collection inside it, ms. */
        maxMs: sorted[0]?.own ?? 0,
        /** The longest call of ours, all in, ms. */
        maxAllInMs: Math.max(0, ...ours.map((c) => c.dur! / 1000)),
        totalMs: sorted.reduce((a, x) => a + x.own, 0),
        /** IntersectionObserver work in the renderer that runs our script (ours and the page's alike), ms. */
        ioMs: inner
          .filter((x) => x.name.startsWith('IntersectionObserver') && ours.some((c) => c.pid === x.pid))
          .reduce((a, x) => a + x.dur! / 1000, 0),
        top: sorted
          .slice(0, 3)
          .map(
            ({ c, own }) =>
              `${c.name} ${c.args?.data?.functionName ?? ''} ${own.toFixed(1)} ms, ${(c.dur! / 1000).toFixed(1)} all in (${what(c)})`,
          )
          .join(', '),
      };
    },
  };
}

/** Run the page's storm for `ms`; attribute changes per second, frames per second, and the page's long frames. */
async function storm(page: Page, ms: number) {
  const p0 = await perf(page);
  const t0 = Date.now();
  const changes = await page.evaluate((ms) => (window as unknown as { storm(ms: number): Promise<number> }).storm(ms), ms);
  const secs = (Date.now() - t0) / 1000;
  const p = await perf(page, p0.now);
  return { perSec: (changes * 2) / secs, fps: (p.frames - p0.frames) / secs, loafN: p.loafN, loafMax: p.loafMax };
}

async function heapMB(cdp: CDPSession): Promise<number> {
  await cdp.send('HeapProfiler.collectGarbage');
  return (await cdp.send('Runtime.getHeapUsage')).usedSize / 2 ** 20;
}

describe('load', () => {
  let ext: Ext;
  let page: Page;
  let cdp: CDPSession;
  let trace: ReturnType<typeof tracer>;
  let world: (expr: string) => Promise<unknown>;
  const stats = async () => (await world('globalThis.altTextContentTest.stats()')) as Stats;
  const url = `${env.origin}/hostile/load.html?n=10000&eager=300`;
  let off: Perf & { heapMB: number; storm: Awaited<ReturnType<typeof storm>> };
  let control = '';

  beforeAll(async () => {
    ext = await launch({ name: 'load' });
    const sw = ext.serviceWorker();
    page = await ext.context.newPage();
    cdp = await ext.context.newCDPSession(page);
    trace = tracer(cdp);
    // Positive control, on a small page: an 80 ms task run from our content script's code must show in the trace.
    await page.goto(`${env.origin}/hostile/load.html?n=20&eager=20`);
    world = await contentWorld(cdp);
    await trace.start();
    await world('globalThis.altTextContentTest.spin(80)');
    await page.waitForTimeout(500);
    const c = await trace.stop();
    control = c.top;
    // The spin runs 80 ms of wall time; on a loaded machine the thread gets less CPU than that, so this looks at wall time.
    expect(c.maxAllInMs, `the trace must see our content script: ${c.top}`).toBeGreaterThanOrEqual(75);
    // The same 10,000-image page with auto-alt off: the page's own frames and heap, to compare with.
    await setSettings(sw, { enabled: false });
    await page.goto(url, { waitUntil: 'load', timeout: 60_000 });
    await page.waitForTimeout(3000);
    const offPerf = await perf(page);
    const offHeap = await heapMB(cdp);
    off = { ...offPerf, heapMB: offHeap, storm: await storm(page, 3000) };
    await setSettings(sw, { enabled: true });
    await page.goto('about:blank');
    await trace.start();
    await page.goto(url, { waitUntil: 'domcontentloaded', timeout: 60_000 });
  });
  afterAll(async () => {
    await ext?.close();
  });

  it('10,000 images, then 5,000 more by infinite scroll: true captions on screen; queue, tasks, heap and requests bounded', async () => {
    const firstScreen = await expectVisibleTrue(page, 90_000);
    // Every image is found and tracked (the scan goes on in idle slices after the first screen is labelled).
    await expect.poll(async () => (await stats()).tracked, { timeout: 60_000 }).toBeGreaterThanOrEqual(10_000);
    // Infinite scroll: append 1,000 more and jump to the end, five times; then the images now on screen.
    for (let i = 0; i < 5; i += 1) {
      await page.evaluate(() => (window as unknown as { more(n: number): void }).more(1000));
      await page.evaluate(() => scrollTo({ top: document.documentElement.scrollHeight, behavior: 'instant' }));
      await page.waitForTimeout(300);
    }
    const scrolled = await expectVisibleTrue(page, 60_000);
    expect((await visibleLabels(page)).every((v) => Number(v.k) >= 10_000)).toBe(true); // the appended ones
    await page.waitForTimeout(1000);
    const t = await trace.stop();
    const s = await stats();
    const p = await perf(page);
    const heap = await heapMB(cdp);
    console.info(
      `load 15k: control [${control}]; first screen labelled in ${firstScreen} ms, after scrolling in ${scrolled} ms; ` +
        `queue max ${s.queue.maxPending} (bound ${QUEUE_BOUND}), turned away ${s.queue.dropped}, requests ${s.queue.sent}, labelled ${s.labelled}, tracked ${s.tracked}, watched for visibility ${s.observed}; ` +
        `our calls ${t.calls}, longest ${t.maxMs.toFixed(1)} ms (${t.maxAllInMs.toFixed(1)} ms with GC) [${t.top}]; our longest slice ${s.loop.maxSliceMs.toFixed(1)} ms over ${s.loop.slices} slices (${s.loop.units} units); ` +
        `page long frames ${p.loafN} (max ${p.loafMax.toFixed(0)} ms) vs off ${off.loafN} (max ${off.loafMax.toFixed(0)} ms); ` +
        `heap ${heap.toFixed(1)} MB vs off ${off.heapMB.toFixed(1)} MB`,
    );
    expect(s.queue.maxPending).toBeGreaterThan(QUEUE_BOUND / 2); // the bound was really tested (300 eager images)
    // Only images waiting in the queue are watched for visibility, never the thousands it turned away.
    expect(s.observed).toBeLessThanOrEqual(2 * QUEUE_BOUND);
    expect(s.queue.maxPending).toBeLessThanOrEqual(QUEUE_BOUND);
    expect(t.calls).toBeGreaterThan(100);
    expect(t.maxMs).toBeLessThan(LONG_MS);
    // Our long-task guard is the trace's thread time above. The loop's own slice time is wall clock, which the OS
    // stretches when it deschedules the renderer on a busy 2-core machine (75 ms seen while the trace said 10.6), so it
    // is printed, not asserted; what is asserted is that the 15,000 images were worked through in many slices.
    expect(s.loop.slices).toBeGreaterThan(20);
    expect(heap - off.heapMB).toBeLessThan(HEAP_GROWTH_MB);
    // The page's images are described in the background too (whole-page.test.ts), a few requests at a time through the
    // bounded queue: never more requests than images, each picture asked about once.
    const loaded = await page.evaluate(
      () =>
        [...document.querySelectorAll('#grid img')].filter(
          (im) => (im as HTMLImageElement).complete && (im as HTMLImageElement).naturalWidth > 0,
        ).length,
    );
    console.info(`load 15k: ${loaded} images loaded by the page, ${s.queue.sent} caption requests`);
    expect(s.queue.sent).toBeLessThanOrEqual(s.tracked);
  });

  it('a mutation storm: no long task of ours, the page keeps painting, labels stay right', async () => {
    await page.evaluate(() => scrollTo({ top: 0, behavior: 'instant' }));
    const labelsBefore = await expectVisibleTrue(page, 60_000).then(() => visibleLabels(page));
    // The page watches our labels: during the storm, none of them may be taken off or changed (no tug of war).
    await page.evaluate(() => {
      const w = window as unknown as { __flips: number };
      w.__flips = 0;
      new MutationObserver((rs) => {
        for (const r of rs) if (r.oldValue !== null) w.__flips += 1;
      }).observe(document.getElementById('grid')!, { subtree: true, attributeFilter: ['aria-label'], attributeOldValue: true });
    });
    const before = await stats();
    // Untraced, to compare with the same storm with auto-alt off (tracing slows the page); then traced, to attribute.
    const m = await storm(page, 3000);
    await trace.start();
    const mt = await storm(page, 3000);
    // Read at once: the storm is over, and a second later the page counts as calm and the rest of the page goes on.
    const s = await stats();
    await page.waitForTimeout(500);
    const t = await trace.stop();
    const flips = await page.evaluate(() => (window as unknown as { __flips: number }).__flips);
    console.info(
      `storm: ${Math.round(m.perSec)} attribute changes/s (off: ${Math.round(off.storm.perSec)}); ${m.fps.toFixed(1)} frames/s (off: ${off.storm.fps.toFixed(1)}, ratio ${(m.fps / off.storm.fps).toFixed(2)}); verdicts for restyles ${s.judgedForLooks - before.judgedForLooks} (all verdicts ${s.judged - before.judged}); ` +
        `page long frames ${m.loafN}, max ${m.loafMax.toFixed(0)} ms (off: ${off.storm.loafN}, max ${off.storm.loafMax.toFixed(0)} ms); ` +
        `traced storm ${Math.round(mt.perSec)}/s, ${mt.fps.toFixed(1)} frames/s, intersection observers ${t.ioMs.toFixed(0)} ms; our calls ${t.calls}, ${t.totalMs.toFixed(0)} ms in all, longest ${t.maxMs.toFixed(1)} ms (${t.maxAllInMs.toFixed(1)} with GC) [${t.top}]; our longest slice ${s.loop.maxSliceMs.toFixed(1)} ms; ${s.loop.units - before.loop.units} units of work; ` +
        `queue max ${s.queue.maxPending}; requests +${s.queue.sent - before.queue.sent} (for images off screen +${s.queue.sentBackground - before.queue.sentBackground}), busy spells +${s.busy.busySpells - before.busy.busySpells}, background captions held ${s.busy.held - before.busy.held} times; labels changed or removed ${flips}`,
    );
    expect(off.storm.perSec).toBeGreaterThan(1000); // the page makes a storm
    expect(m.perSec).toBeGreaterThan(MIN_STORM_RATE);
    expect(t.calls).toBeGreaterThan(10); // and we saw it
    expect(t.maxMs).toBeLessThan(LONG_MS); // thread time; the loop's wall-clock slice is printed only (see above)
    // The page keeps painting (a long task of ours would stop it).
    expect(m.fps).toBeGreaterThan(MIN_STORM_FPS);
    expect(s.judgedForLooks - before.judgedForLooks).toBeLessThan(MAX_STORM_VERDICTS);
    expect(s.queue.maxPending).toBeLessThanOrEqual(QUEUE_BOUND);
    expect(flips).toBe(0);
    // The model did not take the CPU from the busy page: the rest of the page waited.
    expect(s.busy.busySpells).toBeGreaterThan(before.busy.busySpells);
    expect(s.queue.sentBackground - before.queue.sentBackground).toBeLessThanOrEqual(MAX_STORM_BACKGROUND_REQUESTS);
    const after = await visibleLabels(page);
    expect(after).toEqual(labelsBefore);
  });

  it("an image whose src changes every 15 ms: requests stay few, and the final label is the final picture's", async () => {
    const sentBefore = (await world("globalThis.altTextContentTest.sentMatching('churn=')")) as number;
    await trace.start();
    const changes = await page.evaluate(() => (window as unknown as { churn(ms: number): Promise<number> }).churn(3000));
    const final = plan.churn[plan.churn.length - 1];
    await expect
      .poll(
        () =>
          page
            .locator('[data-test=churn]')
            .evaluate((im: HTMLImageElement) => (im.currentSrc.endsWith('churn=final') ? im.getAttribute('aria-label') : null)),
        { timeout: 30_000 },
      )
      .toMatch(new RegExp(`^${MARKER}`));
    const t = await trace.stop();
    const label = await page.locator('[data-test=churn]').getAttribute('aria-label');
    expect(sameCaption(label!.slice(MARKER.length), final.caption), `${label} vs ${final.caption}`).toBe(true);
    const sent = ((await world("globalThis.altTextContentTest.sentMatching('churn=')")) as number) - sentBefore;
    console.info(
      `churn: ${changes} src changes in 3 s -> ${sent} caption requests for the churning image; our calls ${t.totalMs.toFixed(0)} ms in all, longest [${t.top}]`,
    );
    expect(changes).toBeGreaterThan(MIN_CHURN_CHANGES);
    expect(sent).toBeGreaterThanOrEqual(1);
    expect(sent).toBeLessThanOrEqual(MAX_CHURN_REQUESTS);
    expect(t.maxMs).toBeLessThan(LONG_MS);
  });
});
