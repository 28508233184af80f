// What the e2e global setup prepared, and small helpers shared by the e2e tests.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Page, type Worker } from 'playwright-core';
import { TMP, launchWithExtension } from './harness.mjs';
import { axLiveText, axTree } from './ax';
import type { UncertainPlan } from './fixtures-uncertain.mjs';
import { parseHubUrl } from '../../src/installer/hub-api';

export interface E2eEnv {
  origin: string;
  otherOrigin: string;
  packUrl: string;
  extDir: string;
  /** data-test id -> true caption, for the images that must be labelled */
  expected: Record<string, string>;
  /** data-test id -> true caption, for every image */
  truth: Record<string, string>;
  untouchedIds: string[];
  /** the gating page (/fixtures/uncertain.html): which images the engine marks uncertain, and which it is sure of */
  uncertain: UncertainPlan;
}

export const env: E2eEnv = JSON.parse(readFileSync(join(TMP, 'e2e-env.json'), 'utf8'));

export type Ext = Awaited<ReturnType<typeof launchWithExtension>>;

/**
 * Launch Chromium with the extension. Every launch carries the network audit (test/e2e/harness.mjs): the extension's
 * own contexts may fetch only images a page asked for and the configured pack's files (any pack under the fixture
 * server's /packs/), or, for a build with a catalogue, only its mirror URLs (`allow`, see mirrorAllowList);
 * `close()` throws otherwise, failing the test that launched it.
 */
export function launch(
  opts: {
    headless?: boolean;
    webgpu?: boolean;
    debugPort?: boolean;
    args?: string[];
    name?: string;
    extDir?: string;
    allow?: string[];
    profile?: string;
  } = {},
): Promise<Ext> {
  const { name, extDir, allow, ...rest } = opts;
  return launchWithExtension(extDir ?? env.extDir, {
    ...rest,
    audit: { allow: allow ?? [new URL('/packs/', env.packUrl).href], name: name ?? 'e2e' },
  });
}

/**
 * What a catalogue build may fetch: each source URL of each model, the CDN paths the Hub redirects them to
 * (`<hub>/cdn/<sha256>`, the way huggingface.co answers `resolve` with a 302), and for a Hub source the Hub's
 * paths-info API of its repository and revision (its SHA-256, which a browser cannot read off the redirect). Nothing
 * else on the hub.
 */
export function mirrorAllowList(
  catalogue: { models: { inputs: Record<string, { sources: { url: string }[] }> }[] },
  hubUrl: string,
): string[] {
  const urls = catalogue.models.flatMap((m) => Object.values(m.inputs).flatMap((i) => i.sources.map((s) => s.url)));
  const apis = urls
    .map(parseHubUrl)
    .flatMap((r) => (r ? [`${r.hubUrl}/api/models/${r.repo}/paths-info/${encodeURIComponent(r.revision)}`] : []));
  return [...new Set([...urls, ...apis]), `${hubUrl.replace(/\/$/, '')}/cdn/`];
}

/**
 * Stop the service worker the way Chrome does when it idles, over CDP from an extension page already open (a page
 * opened for it would message the worker, and wake it, itself).
 */
export async function stopWorker(ext: Ext, p: Page): Promise<void> {
  const cdp = await ext.context.newCDPSession(p);
  const stopped = new Promise<void>((resolve) =>
    cdp.on('ServiceWorker.workerVersionUpdated', (e) => {
      if (e.versions.some((v) => v.scriptURL.includes(ext.extensionId) && v.runningStatus === 'stopped')) resolve();
    }),
  );
  await cdp.send('ServiceWorker.enable');
  await cdp.send('ServiceWorker.stopAllWorkers');
  await stopped;
  await cdp.detach();
}

/** Patch the settings the way the popup does (the content scripts follow storage changes). */
export async function setSettings(sw: Worker, patch: Record<string, unknown>): Promise<void> {
  await sw.evaluate(async (p) => {
    const got = await chrome.storage.local.get('settings');
    await chrome.storage.local.set({ settings: { ...(got.settings ?? {}), ...p } });
  }, patch);
}

export async function activeTabId(page: Page, sw: Worker): Promise<number> {
  await page.bringToFront();
  return sw.evaluate(async () => (await chrome.tabs.query({ active: true, lastFocusedWindow: true }))[0].id!);
}

/** Wait until `n` elements (here or in open shadow roots) carry our generated-label marker. */
export async function waitForLabels(page: Page, n: number, timeout = 120_000): Promise<void> {
  await page.waitForFunction(
    (min) => {
      let count = 0;
      const walk = (root: Document | ShadowRoot) => {
        count += root.querySelectorAll('[data-alt-text-generated]').length;
        for (const el of root.querySelectorAll('*')) if (el.shadowRoot) walk(el.shadowRoot);
      };
      walk(document);
      return count >= min;
    },
    n,
    { timeout, polling: 200 },
  );
}

export function labelOf(page: Page, testId: string): Promise<string | null> {
  return page.locator(`[data-test="${testId}"]`).getAttribute('aria-label');
}

/** Run in a page (Playwright's or puppeteer's evaluate): outerHTML per data-test id, open shadow roots included. */
export function outerHtmlByTestId(): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (root: Document | ShadowRoot) => {
    for (const el of root.querySelectorAll('[data-test]')) out[el.getAttribute('data-test')!] = el.outerHTML;
    for (const el of root.querySelectorAll('*')) if (el.shadowRoot) walk(el.shadowRoot);
  };
  walk(document);
  return out;
}

/** Snapshot of outerHTML per data-test id (open shadow roots included). */
export function snapshot(page: Page): Promise<Record<string, string>> {
  return page.evaluate(outerHtmlByTestId);
}

export const MARKER = 'Appears to be: ';

/**
 * The "Describe this image" panel as a screen reader meets it (its shadow root is closed to the page, and to
 * playwright's locators): the text of its dialog in the accessibility tree, or null when no panel is open.
 */
export async function panelText(page: Page): Promise<string | null> {
  const dialogs = await axTree(page, { frames: [page.mainFrame()], where: (n) => n.role === 'dialog' && !n.ignored });
  return dialogs.length > 0 ? dialogs.map((d) => d.text).join(' ') : null;
}

/**
 * Wait until a live region (role=status) of the page announces a text that `match` accepts, and return it. On timeout
 * the error says what the live regions announced instead.
 */
export async function waitForAnnouncement(page: Page, match: (text: string) => boolean, what: string, timeout = 60_000): Promise<string> {
  const end = Date.now() + timeout;
  for (;;) {
    const heard = await axLiveText(page);
    const hit = heard.find(match);
    if (hit !== undefined) return hit;
    if (Date.now() > end) throw new Error(`no live region announced ${what} within ${timeout} ms; they say ${JSON.stringify(heard)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * Send one CDP command to the first target of the browser whose URL matches (an out-of-process frame is a target of
 * its own), through the browser-level endpoint every launch opens. Resolves with the target's type, and with the
 * command's result when `reply` is asked for (a command such as Page.crash never answers).
 */
export async function sendToTarget(
  cdpUrl: string,
  match: (url: string) => boolean,
  method: string,
  params: object = {},
  reply = false,
): Promise<{ type: string; result?: unknown }> {
  const browser = await chromium.connectOverCDP(cdpUrl);
  try {
    const s = await browser.newBrowserCDPSession();
    const { targetInfos } = await s.send('Target.getTargets');
    const t = targetInfos.find((x) => match(x.url));
    if (!t) throw new Error(`no target matches (${targetInfos.map((x) => x.url).join(', ')})`);
    const { sessionId } = await s.send('Target.attachToTarget', { targetId: t.targetId, flatten: false });
    const answer = reply
      ? new Promise<unknown>((resolve) => {
          s.on('Target.receivedMessageFromTarget', (e) => {
            const m = JSON.parse(e.message) as { id?: number; result?: unknown };
            if (m.id === 1) resolve(m.result);
          });
        })
      : undefined;
    // Page.crash never answers, and the connection closes right after: wait until the browser says the target's
    // process is gone, or a test could go on (and time out) with the renderer still alive.
    const crashed =
      method === 'Page.crash'
        ? new Promise<string>((resolve, reject) => {
            const timer = setTimeout(() => reject(new Error(`Page.crash: ${t.url} did not crash within 15 s`)), 15_000);
            const done = (how: string) => (clearTimeout(timer), resolve(how));
            s.on('Target.targetCrashed', (e) => e.targetId === t.targetId && done('targetCrashed'));
            s.on('Target.detachedFromTarget', (e) => e.sessionId === sessionId && done('detached'));
            s.on('Target.receivedMessageFromTarget', (e) => {
              if ((JSON.parse(e.message) as { method?: string }).method === 'Inspector.targetCrashed') done('Inspector.targetCrashed');
            });
          })
        : null;
    if (crashed) await s.send('Target.setDiscoverTargets', { discover: true });
    await s.send('Target.sendMessageToTarget', { sessionId, message: JSON.stringify({ id: 1, method, params }) });
    if (crashed) console.info(`[e2e] ${t.type} crashed (${await crashed})`);
    return { type: t.type, result: await answer };
  } finally {
    await browser.close().catch(() => null);
  }
}
