// The whole page, not only the screen: a screen-reader user reading on in the document reaches images nobody scrolled
// to. Lazy images the page has not loaded, beyond the queue's bound, are described in the background, nearest to the
// reading position (the viewport, which screen readers scroll along) first, with the model's true captions.
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sameCaption, toyHeldout } from './harness.mjs';
import { MARKER, env, launch, type Ext } from './env';

const truth = Object.fromEntries(toyHeldout().map((h) => [h.file, h.caption]));
/**
 * Images on the page, ten to a row of 100 px: 20 eager, the rest lazy, ten times the content queue's bound of 100.
 * Midway down, Chromium loads the lazy ones within about 1,250-2,500 px of the viewport; the rest it never loads.
 */
const N = 1000;
/** The one waited for: 4,500 px below the viewport's centre. */
const FAR = 950;
/** Nearer than this (in images) from the centre: described before FAR. */
const NEAR = 250;

interface Row {
  k: number;
  file: string;
  /** The page has loaded it (it came near the viewport). */
  loaded: boolean;
  label: string | null;
}

function rows(page: Page): Promise<Row[]> {
  return page.$$eval('#grid img', (ims) =>
    ims.map((im) => ({
      k: Number(im.getAttribute('data-k')),
      file: im.getAttribute('data-file')!,
      loaded: (im as HTMLImageElement).complete && (im as HTMLImageElement).naturalWidth > 0,
      label: im.hasAttribute('data-alt-text-generated') ? im.getAttribute('aria-label') : null,
    })),
  );
}

describe('the whole page, nearest first', () => {
  let ext: Ext;
  let page: Page;
  beforeAll(async () => {
    ext = await launch({ name: 'whole-page' });
    page = await ext.context.newPage();
  });
  afterAll(async () => {
    await ext?.close();
  });

  it('lazy images nobody scrolled to get true captions, nearest to the viewport first', async () => {
    await page.goto(`${env.origin}/hostile/load.html?n=${N}&eager=20`);
    // Midway down: the images above and below the viewport are both off screen, at known distances.
    const mid = Math.floor(N / 2);
    await page.evaluate((k) => document.querySelector(`[data-k="${k}"]`)!.scrollIntoView({ block: 'center' }), mid);
    const t0 = Date.now();
    await expect
      .poll(async () => (await rows(page)).find((r) => r.k === FAR)?.label ?? null, { timeout: 170_000, interval: 1000 })
      .not.toBeNull();
    const all = await rows(page);
    const notLoaded = all.filter((r) => !r.loaded);
    // The page itself never loaded these (no one scrolled there), yet they are described, with the true caption.
    expect(notLoaded.length).toBeGreaterThan(N / 4);
    const described = notLoaded.filter((r) => r.label);
    expect(described.length).toBeGreaterThan(N / 4);
    for (const r of described)
      expect(sameCaption(r.label!.slice(MARKER.length), truth[r.file]), `${r.label} vs ${truth[r.file]}`).toBe(true);
    // Nearest first: when the image 4,500 px away got its label, the images within 2,500 px had theirs.
    const near = all.filter((r) => Math.abs(r.k - mid) <= NEAR);
    const nearMissing = near.filter((r) => !r.label).map((r) => r.k);
    console.info(
      `whole page: image ${FAR} (4,500 px below) labelled after ${((Date.now() - t0) / 1000).toFixed(1)} s; ${described.length} of ${notLoaded.length} images the page never loaded are described; ${near.length - nearMissing.length} of ${near.length} within ${NEAR} images of the centre`,
    );
    expect(nearMissing.length, JSON.stringify(nearMissing)).toBeLessThanOrEqual(near.length * 0.02);
    // ...and the lazy images farther away than it, above the viewport, mostly still wait (in document order they
    // would all have come first).
    const beyond = all.filter((r) => r.k >= 20 && mid - r.k > FAR - mid + 10);
    const beyondDone = beyond.filter((r) => r.label).length;
    console.info(`whole page: ${beyondDone} of ${beyond.length} images farther above than image ${FAR} were described before it`);
    expect(beyondDone).toBeLessThanOrEqual(beyond.length / 2);
  });
});
