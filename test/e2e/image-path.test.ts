// Fuzzing the extension's image path through real pages: images whose URLs answer 404 or 500, redirect to HTML or
// JSON or in a loop, stall past the fetch timeout, are cross-origin with and without CORS, or send corrupt, truncated,
// empty, oversized or lying bytes with image types, and an SVG with a script. `page-*` faults break the page's own
// load too; `ext-*` faults hit only the extension's fetch (harness.mjs, fuzzRoute). Every eligible image must end
// labelled with its true caption or skipped with a logged, named reason; none silently lost; the page keeps working.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FUZZ_CATEGORIES, TMP, sameCaption, toyHeldout } from './harness.mjs';
import { MARKER, env, launch, type Ext } from './env';

const SETS = [0, 1, 2];
const truth = Object.fromEntries(toyHeldout().map((h) => [h.file, h.caption]));

type Outcome = 'labelled' | 'wrong-label' | 'skipped' | 'lost';
interface Row {
  id: string;
  cat: string;
  src: string;
  outcome: Outcome;
  detail: string;
}

describe('image path fuzz', () => {
  let ext: Ext;
  const rows: Row[] = [];
  const pageErrors: string[] = [];
  const ourConsoleErrors: string[] = [];

  beforeAll(async () => {
    ext = await launch({ name: 'image-path' });
  });
  afterAll(async () => {
    await ext?.close();
  });

  it.each(SETS)('fuzz page %i: every image labelled truly or skipped with a reason; the page keeps working', async (set) => {
    const page = await ext.context.newPage();
    const skips = new Map<string, string>();
    page.on('console', (m) => {
      const text = m.text();
      const skip = /^\[alt-text\] skipped (\S+): (.*)$/.exec(text);
      if (skip) skips.set(skip[1], skip[2]);
      if (m.type() === 'error' && text.includes('[alt-text]')) ourConsoleErrors.push(text);
    });
    page.on('pageerror', (e) => pageErrors.push(`${e.name}: ${e.message}`));
    await page.goto(`${env.origin}/fuzz/page.html?set=${set}`);
    const images = await page.$$eval('img[data-cat]', (ims) =>
      ims.map((im) => ({
        id: im.getAttribute('data-test')!,
        cat: im.getAttribute('data-cat')!,
        file: im.getAttribute('data-file')!,
        src: (im as HTMLImageElement).src,
      })),
    );
    const settled = async () => {
      const labels = await page.$$eval('img[data-cat]', (ims) =>
        Object.fromEntries(
          ims.map((im) => [
            im.getAttribute('data-test'),
            im.hasAttribute('data-alt-text-generated') ? im.getAttribute('aria-label') : null,
          ]),
        ),
      );
      return images.every((im) => labels[im.id] !== null || skips.has(im.src)) ? labels : null;
    };
    let labels: Record<string, string | null> | null;
    const end = Date.now() + 150_000;
    while (!(labels = await settled()) && Date.now() < end) await page.waitForTimeout(500);
    labels ??= await page.$$eval('img[data-cat]', (ims) =>
      Object.fromEntries(ims.map((im) => [im.getAttribute('data-test'), im.getAttribute('aria-label')])),
    );
    for (const im of images) {
      const label = labels![im.id];
      let outcome: Outcome;
      let detail = '';
      if (label?.startsWith(MARKER)) {
        // The SVG draws its own picture, not the held-out one: any caption is its own.
        outcome = im.cat === 'svg-script' || sameCaption(label.slice(MARKER.length), truth[im.file]) ? 'labelled' : 'wrong-label';
        detail = label;
      } else if (skips.has(im.src)) {
        outcome = 'skipped';
        detail = skips.get(im.src)!;
      } else outcome = 'lost';
      rows.push({ id: im.id, cat: im.cat, src: im.src, outcome, detail });
    }
    // The page still runs its own script and answers clicks.
    const ticks = await page.evaluate(() => (window as unknown as { ticks: number }).ticks);
    await page.click('#ping');
    expect(await page.evaluate(() => (window as unknown as { clicks: number }).clicks)).toBe(1);
    expect(ticks).toBeGreaterThan(0);
    expect(await page.evaluate(() => (window as unknown as { svgRan?: number }).svgRan)).toBeUndefined();
    await page.close();

    const mine = rows.filter((r) => r.id.startsWith(`s${set}-`));
    const lost = mine.filter((r) => r.outcome === 'lost');
    expect(
      lost.map((r) => r.id),
      'silently lost',
    ).toEqual([]);
    for (const r of mine) {
      const want = FUZZ_CATEGORIES[r.cat];
      if (want === 'label') expect(r.outcome, `${r.id}: ${r.detail}`).toBe('labelled');
      if (want === 'skip') expect(r.outcome, `${r.id}: ${r.detail}`).toBe('skipped');
      if (want === 'either') expect(['labelled', 'skipped'], r.id).toContain(r.outcome);
      // A skip names its reason: an error name, or what was wrong with the image.
      if (r.outcome === 'skipped') expect(r.detail, r.id).toMatch(/^([A-Z][A-Za-z]+Error: .+|broken image .+|.{8,})$/);
    }
  });

  it('summary: per category, and the server never saw the SVG script run', async () => {
    expect(rows.length).toBeGreaterThanOrEqual(200);
    const table: Record<string, Record<string, number | string>> = {};
    for (const r of rows) {
      const t = (table[r.cat] ??= {
        expected: FUZZ_CATEGORIES[r.cat],
        tried: 0,
        labelled: 0,
        'wrong-label': 0,
        skipped: 0,
        lost: 0,
        reason: '',
      });
      t.tried = (t.tried as number) + 1;
      t[r.outcome] = (t[r.outcome] as number) + 1;
      if (r.outcome === 'skipped' && !t.reason) t.reason = r.detail.slice(0, 110);
    }
    console.table(table);
    mkdirSync(TMP, { recursive: true });
    writeFileSync(join(TMP, 'fuzz-image-path.json'), JSON.stringify({ cases: rows.length, table, rows }, null, 1));
    expect(pageErrors, 'errors thrown into the page').toEqual([]);
    expect(ourConsoleErrors, 'console errors from the extension').toEqual([]);
    const beacon = await (await fetch(`${env.origin}/fuzz/beacon-count`)).json();
    expect(beacon.hits, 'the SVG script ran somewhere').toBe(0);
  });
});
