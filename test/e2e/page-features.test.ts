// Page features on the dynamic fixture: srcset and <picture> (currentSrc), data: and blob: URLs, open shadow roots,
// same- and cross-origin iframes, lazy images, inserted images and src changes.
import type { Frame, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sameCaption } from './harness.mjs';
import { MARKER, env, launch, type Ext } from './env';

async function labelIn(where: Page | Frame, id: string): Promise<string | null> {
  return where.evaluate((testId) => {
    const find = (root: Document | ShadowRoot): Element | null => {
      const hit = root.querySelector(`[data-test="${testId}"]`);
      if (hit) return hit;
      for (const el of root.querySelectorAll('*'))
        if (el.shadowRoot) {
          const h = find(el.shadowRoot);
          if (h) return h;
        }
      return null;
    };
    return find(document)?.getAttribute('aria-label') ?? null;
  }, id);
}

/** Wait for our label on the element (or for it to change from `previous`), then compare it with the true caption. */
async function expectCaption(where: Page | Frame, id: string, caption = env.expected[id], previous?: string | null): Promise<string> {
  let label: string | null = null;
  await expect
    .poll(
      async () => {
        label = await labelIn(where, id);
        return !!label && label.startsWith(MARKER) && label !== previous;
      },
      { timeout: 120_000, interval: 200 },
    )
    .toBe(true);
  expect(sameCaption(label!.slice(MARKER.length), caption), `${id}: "${label}" vs true "${caption}"`).toBe(true);
  return label!;
}

describe('page features', () => {
  let ext: Ext;
  let page: Page;

  beforeAll(async () => {
    ext = await launch();
    page = await ext.context.newPage();
    await page.goto(`${env.origin}/fixtures/dynamic.html`);
  });
  afterAll(async () => {
    await ext?.close();
  });

  it('srcset and <picture>: the picture shown (currentSrc) is the one described', async () => {
    await expectCaption(page, 'srcset');
    await expectCaption(page, 'picture');
  });

  it('data: and blob: images', async () => {
    await expectCaption(page, 'data');
    await expectCaption(page, 'blob');
  });

  it('an image in an open shadow root', async () => {
    await expectCaption(page, 'shadow');
  });

  it('same-origin and cross-origin iframes', async () => {
    const same = page.frames().find((f) => f.url().startsWith(`${env.origin}/fixtures/frame.html`))!;
    const cross = page.frames().find((f) => f.url().startsWith(`${env.otherOrigin}/fixtures/frame.html`))!;
    await expectCaption(same, 'in-frame-same');
    await expectCaption(cross, 'in-frame-cross');
  });

  it('a lazy image is described once it loads', async () => {
    await page.locator('[data-test="lazy"]').scrollIntoViewIfNeeded();
    await expectCaption(page, 'lazy');
  });

  it('an inserted image', async () => {
    await page.evaluate(() => (window as unknown as { insertImage(): void }).insertImage());
    await expectCaption(page, 'inserted');
  });

  it("a changed src gets the new picture's caption", async () => {
    const before = await expectCaption(page, 'change', env.expected['change-before']);
    await page.evaluate(() => (window as unknown as { changeSrc(): void }).changeSrc());
    if (env.expected['change-before'] === env.expected['change-after']) {
      // Two pictures with the same true caption: the label must still come back for the new picture.
      await expect.poll(() => labelIn(page, 'change'), { timeout: 120_000 }).toBe(before);
    } else await expectCaption(page, 'change', env.expected['change-after'], before);
  });
});
