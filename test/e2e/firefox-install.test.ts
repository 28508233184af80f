// The one-click install in Firefox, as a new user meets it: the Firefox build with a catalogue whose mirrors are the
// loopback imitation of the Hub (test/helpers/hub-server.ts, serving the toy model's files in the published
// containers), installed in firefox-esr -> the set-up page opens by itself -> Download -> the progress bar reaches
// 100% -> a page is labelled with the toy model's true captions. The download, the check and the conversion run in
// the engine page framed in Firefox's event page, which Firefox would unload when idle: it must stay for the install.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHubServer, type HubServer } from '../helpers/hub-server';
import { ensureInstallFixture, testCatalogue } from '../helpers/test-catalogue';
import { MARKER, env } from './env';
import { firstRunPage, launchFirefox, type FirefoxWithExtension } from './firefox.mjs';
import { ROOT, TMP, buildExtension, sameCaption } from './harness.mjs';

const PUBLISHED = join(ROOT, 'packs/published/toy');
const TEMPLATES = join(ROOT, 'packs/templates');
const TEMPLATE_ID = 'toy-fp32';
const MODEL = 'toy-coco';
const ELIGIBLE = ['no-alt', 'space-alt', 'file-alt', 'stop-alt', 'empty-title', 'input-image', 'role-img'];

describe('Firefox: install a model from the catalogue with one click', () => {
  let hub: HubServer;
  let ff: FirefoxWithExtension | null = null;
  let extDir: string;

  beforeAll(async () => {
    if (!existsSync(join(PUBLISHED, 'clipcap.pt')) || !existsSync(join(TEMPLATES, TEMPLATE_ID, 'template.json')))
      throw new Error('packs/published/toy and packs/templates/toy-fp32 are missing: run `bash scripts/packs.sh`');
    hub = await startHubServer();
    Object.assign(process.env, { PUBLISHED_DIR: PUBLISHED, TEMPLATES_DIR: TEMPLATES, TEMPLATE_ID });
    const catalogue = testCatalogue(hub, ensureInstallFixture(), (m) => {
      m.id = MODEL;
      m.name = 'Toy shapes';
    });
    mkdirSync(TMP, { recursive: true });
    const file = join(TMP, 'firefox-install-catalogue.json');
    writeFileSync(file, JSON.stringify(catalogue, null, 1));
    extDir = await buildExtension({
      outDir: join(TMP, 'ext-firefox-install'),
      testHooks: true,
      env: { CAPTION_CATALOGUE: file, TARGET_BROWSER: 'firefox' },
    });
  }, 120_000);
  afterAll(async () => {
    await ff?.close();
    await hub?.close();
  });

  it('the set-up page opens, Download sets the model up, a page is labelled with its true captions, and the model stays through a pause', async () => {
    // A short idle timeout: the install's quiet stretches (checking, converting) must not let the event page go, nor
    // may a pause after the labels. Access to websites not granted yet, as after a real install: the one click asks
    // for it too (Firefox's prompt answered yes by a pref), or nothing would be labelled.
    ff = await launchFirefox(extDir, {
      grantSites: false,
      prefs: { 'extensions.background.idle.timeout': 2500, 'extensions.webextOptionalPermissionPrompts': false },
    });
    const setup = await firstRunPage(ff);
    await setup.waitForFunction(() => !(document.querySelector('#access') as HTMLElement).hidden, { timeout: 10_000 });
    await setup.waitForSelector(`#m-${MODEL}`);
    expect(await setup.$eval(`#m-${MODEL}`, (el) => (el as HTMLInputElement).checked)).toBe(true);
    await setup.click('#go');
    await setup.waitForFunction(() => (document.querySelector('#access') as HTMLElement).hidden, { timeout: 10_000 });
    await setup.waitForFunction(() => document.querySelector('#bar')?.getAttribute('aria-valuenow') === '100', { timeout: 180_000 });
    await setup.waitForFunction(
      () =>
        document.querySelector('#status')?.textContent ===
        'Toy shapes is ready. Images without a description are now described as you browse.',
      { timeout: 60_000 },
    );
    // Every byte came from the catalogue's mirrors on the loopback hub.
    expect(hub.log.some((r) => r.path.startsWith('/cdn/'))).toBe(true);

    const page = ff.track(await ff.browser.newPage());
    await page.goto(`${env.origin}/fixtures/basic.html`, { waitUntil: 'load' });
    await page.waitForFunction(
      (n) => document.querySelectorAll('[data-alt-text-generated]').length >= n,
      { timeout: 120_000 },
      ELIGIBLE.length,
    );
    for (const id of ELIGIBLE) {
      const label = (await page.$eval(`[data-test="${id}"]`, (el) => el.getAttribute('aria-label'))) ?? '';
      expect(sameCaption(label.slice(MARKER.length), env.expected[id]), `${id}: ${label} vs ${env.expected[id]}`).toBe(true);
    }

    // The model stays loaded for a while after the last label (LIMITS.queue.keepAliveGraceMs): a pause longer than
    // the idle timeout does not unload the event page, so the next page does not wait for the model again.
    const eventPageStarted = () =>
      setup.evaluate(
        async () =>
          (
            await (
              globalThis as unknown as { browser: { runtime: { getBackgroundPage(): Promise<Window> } } }
            ).browser.runtime.getBackgroundPage()
          ).performance.timeOrigin,
      );
    const before = await eventPageStarted();
    await new Promise((r) => setTimeout(r, 6000));
    expect(await eventPageStarted()).toBe(before);
    expect(ff.errors).toEqual([]);
  });
});
