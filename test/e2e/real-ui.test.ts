// "Describe this image" through the browser's own UI: Chromium's native context menu and the extension's keyboard
// command, driven with xdotool in headful Chromium (an X display: scripts/test-all.sh runs the e2e project under
// xvfb-run). The other e2e files call the service worker's handlers directly; only this one exercises
// registerDescribe() (contextMenus.create in onInstalled, the onClicked and onCommand listeners) and the manifest's
// suggested key. What counts is what a screen reader hears: the panel's live region, read from the accessibility tree.
import { execFileSync, spawnSync } from 'node:child_process';
import type { Page, Worker } from 'playwright-core';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { sameCaption, waitFor } from './harness.mjs';
import { axFocused } from './ax';
import { env, launch, panelText, waitForAnnouncement, type Ext } from './env';

/** From apt (scripts/setup.sh installs it), not npm. */
const XDOTOOL = 'xdotool';

const skipWhy = !process.env.DISPLAY ? 'no DISPLAY' : spawnSync(XDOTOOL, ['version'], { stdio: 'ignore' }).error ? 'no xdotool' : null;
if (skipWhy)
  console.warn(
    `real-ui.test.ts skipped (${skipWhy}): it drives Chromium's real context menu and shortcut with xdotool, headful. ` +
      `Run it under xvfb-run -a -s "-screen 0 1280x800x24" with xdotool installed (npm test does).`,
  );

/** Run xdotool; throws when it fails. */
const xdo = (...args: string[]): string => execFileSync(XDOTOOL, args, { encoding: 'utf8', timeout: 10_000 }).trim();
/** Run xdotool where failing is an answer: `search` exits 1 when it finds nothing, `windowfocus` may be refused. */
const xdoLines = (...args: string[]): string[] =>
  spawnSync(XDOTOOL, args, { encoding: 'utf8', timeout: 10_000 }).stdout.split('\n').filter(Boolean);

/** Visible X windows. */
const visibleWindows = (): Set<string> => new Set(xdoLines('search', '--onlyvisible', '--name', ''));

/** A trusted mousemove, as the page saw it. */
interface Seen {
  x: number;
  y: number;
  testId: string | null;
}

interface Observed {
  menuClicks: { menuItemId: string | number; srcUrl?: string }[];
  commands: string[];
}

describe.skipIf(skipWhy !== null)('the real context menu and the real shortcut (headful, xdotool)', () => {
  let ext: Ext;
  let sw: Worker;
  let page: Page;
  /** The browser window's X id, and where the page's (0, 0) is in its coordinates. */
  let win: string;
  let origin: { x: number; y: number };

  /**
   * Watch, beside the extension's own listeners, what reached the service worker: if the panel never opens, this
   * tells a menu choice that never reached the extension from one that did and then went wrong.
   */
  const observe = () =>
    sw.evaluate(() => {
      const g = globalThis as unknown as { observed?: Observed };
      if (g.observed) return;
      const o: Observed = { menuClicks: [], commands: [] };
      g.observed = o;
      chrome.contextMenus.onClicked.addListener((info) => o.menuClicks.push({ menuItemId: info.menuItemId, srcUrl: info.srcUrl }));
      chrome.commands.onCommand.addListener((command) => o.commands.push(command));
    });
  const observed = () => sw.evaluate(() => (globalThis as unknown as { observed: Observed }).observed);

  /**
   * Move the real pointer to (x, y) in window coordinates, until the page sees it move there; returns where the page
   * saw it, in page coordinates, and the data-test id under it. Chromium drops an occasional synthetic X motion (seen
   * here, right after other input), so each try nudges the pointer by a pixel.
   */
  async function movePointer(x: number, y: number): Promise<{ x: number; y: number; client: Seen }> {
    for (let i = 0; i < 10; i += 1) {
      const at = { x: x + (i % 2), y };
      await page.evaluate(() => ((window as unknown as { pointerSeen: Seen | null }).pointerSeen = null));
      xdo('mousemove', '--window', win, String(at.x), String(at.y));
      const seen = await page
        .waitForFunction(() => (window as unknown as { pointerSeen: Seen | null }).pointerSeen, undefined, { timeout: 1000 })
        .then((h) => h.jsonValue())
        .catch(() => null);
      if (seen) return { ...at, client: seen };
    }
    throw new Error(`the page never saw the pointer move to (${x}, ${y}) in window ${win}`);
  }

  /** Move the real pointer onto the middle of an element. */
  async function pointAt(testId: string): Promise<void> {
    const el = page.locator(`[data-test="${testId}"]`);
    await el.evaluate((e) => e.scrollIntoView({ block: 'center', inline: 'center' }));
    const box = await el.boundingBox();
    if (!box) throw new Error(`${testId} has no box`);
    const { client } = await movePointer(Math.round(origin.x + box.x + box.width / 2), Math.round(origin.y + box.y + box.height / 2));
    expect(client.testId, `the element under the pointer (page ${client.x}, ${client.y})`).toBe(testId);
  }

  /** Right-click the image with the real pointer, and choose "Describe this image" in Chromium's own menu. */
  async function describeFromMenu(testId: string): Promise<void> {
    await observe();
    await pointAt(testId);
    const before = visibleWindows();
    const clicksBefore = (await observed()).menuClicks.length;
    // A click can be dropped like a motion (see movePointer): one more try before giving up.
    let menu: string | undefined;
    for (let i = 0; i < 2 && !menu; i += 1) {
      xdo('click', '3');
      menu = await waitFor(() => [...visibleWindows()].find((w) => !before.has(w)), { timeout: 5000, what: 'the menu' }).catch(
        () => undefined,
      );
    }
    if (!menu) throw new Error(`no native context menu opened on ${testId}`);
    // The extension's one item sits just above "Inspect", the last item: Up (Inspect), Up (ours), Return.
    xdo('key', 'Up', 'Up', 'Return');
    await waitFor(() => !visibleWindows().has(menu), { timeout: 10_000, what: 'the context menu to close' });
    const src = await page.locator(`[data-test="${testId}"]`).evaluate((e) => (e as HTMLImageElement).currentSrc);
    const chosen =
      (await waitFor(
        async () => {
          const clicks = (await observed()).menuClicks.slice(clicksBefore);
          return clicks.length > 0 ? clicks : undefined;
        },
        { timeout: 10_000, what: 'a menu click' },
      ).catch(() => undefined)) ?? [];
    if (chosen.length === 0) {
      const tabs = ext.context.pages().map((p) => p.url());
      throw new Error(
        `Up Up Return in the real menu did not choose the extension's item (is "Describe this image" still just above "Inspect"?); tabs now: ${tabs.join(', ')}`,
      );
    }
    expect(chosen).toEqual([{ menuItemId: 'describe-image', srcUrl: src }]);
  }

  /**
   * The fixture page as the only tab, in front, and its window focused: a test that chose the wrong menu item may
   * have opened a tab (or DevTools) and taken the focus.
   */
  async function frontmost(): Promise<void> {
    for (const p of ext.context.pages()) if (p !== page) await p.close();
    await page.bringToFront();
    const title = await page.title();
    const found = xdoLines('search', '--onlyvisible', '--name', `^${title}`);
    expect(found, `one visible browser window titled "${title}"`).toHaveLength(1);
    win = found[0];
    // No window manager: focus the window the X way (windowactivate needs a WM and fails harmlessly).
    xdoLines('windowfocus', win);
  }

  beforeEach(frontmost);

  beforeAll(async () => {
    ext = await launch({ headless: false, args: ['--window-position=0,0', '--ozone-platform=x11'], name: 'real-ui' });
    sw = ext.serviceWorker();
    page = ext.context.pages()[0] ?? (await ext.context.newPage());
    await page.goto(`${env.origin}/fixtures/basic.html`);
    // No wait for auto-labelling: "Describe this image" goes ahead of it in the model's queue.
    await frontmost();
    // Where the page starts in the window. outerHeight - innerHeight is a first guess; the page's own view of one real
    // pointer move gives the exact offset (without a window manager Chromium draws its own frame, and the guess was
    // 12 px short here).
    await page.evaluate(() =>
      addEventListener(
        'mousemove',
        (e) =>
          ((window as unknown as { pointerSeen: Seen | null }).pointerSeen = {
            x: e.clientX,
            y: e.clientY,
            testId: e.target instanceof Element ? (e.target.closest('[data-test]')?.getAttribute('data-test') ?? null) : null,
          }),
        true,
      ),
    );
    const guess = await page.evaluate(() => ({ x: 0, y: window.outerHeight - window.innerHeight }));
    const moved = await movePointer(300, guess.y + 300);
    origin = { x: moved.x - moved.client.x, y: moved.y - moved.client.y };
    console.info(`real-ui: window ${win}; page origin in it (${origin.x}, ${origin.y}); outerHeight - innerHeight said ${guess.y}`);
  });

  afterAll(async () => {
    await ext?.close();
  });

  it('the describe command got its suggested key, Alt+Shift+D', async () => {
    const commands = await sw.evaluate(() => chrome.commands.getAll());
    expect(commands.find((c) => c.name === 'describe-image')?.shortcut).toBe('Alt+Shift+D');
  });

  for (const [testId, kind] of [
    ['named-alt', 'an image its author named'],
    ['no-alt', 'an unnamed image'],
  ] as const) {
    it(`right-click ${kind} (${testId}), "Describe this image" in the real menu: the live region announces its caption`, async () => {
      await describeFromMenu(testId);
      await expect
        .poll(() => panelText(page), { timeout: 10_000, message: 'the menu click reached the extension, but no panel opened' })
        .not.toBeNull();
      await waitForAnnouncement(
        page,
        (t) => sameCaption(t, env.truth[testId]),
        `"${env.truth[testId]}" (the model's caption of ${testId})`,
      );
      expect(await axFocused(page), 'focus moves into the panel').toMatchObject({ role: 'dialog' });
      xdo('key', 'Escape');
      await expect.poll(() => panelText(page), { message: 'Esc closes the panel' }).toBeNull();
    });
  }

  it("the real Alt+Shift+D with an image focused announces that image's caption; Esc returns focus to it", async () => {
    await observe();
    const commandsBefore = (await observed()).commands.length;
    // The pointer rests on another image: the focused one wins.
    await pointAt('named-alt');
    await page.focus('[data-test="input-image"]');
    xdoLines('windowfocus', win);
    xdo('key', 'alt+shift+d');
    await expect
      .poll(async () => (await observed()).commands.slice(commandsBefore), {
        timeout: 10_000,
        message: 'Chromium did not fire the command for alt+shift+d',
      })
      .toEqual(['describe-image']);
    await expect
      .poll(() => panelText(page), { timeout: 10_000, message: 'the command reached the service worker, but no panel opened' })
      .not.toBeNull();
    await waitForAnnouncement(
      page,
      (t) => sameCaption(t, env.truth['input-image']),
      `"${env.truth['input-image']}" (the model's caption of the focused input-image)`,
    );
    xdo('key', 'Escape');
    await expect.poll(() => panelText(page), { message: 'Esc closes the panel' }).toBeNull();
    expect(await page.evaluate(() => document.activeElement?.getAttribute('data-test'))).toBe('input-image');
  });
});
