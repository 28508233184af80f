#!/usr/bin/env node
// npm run demo: build the extension with the toy pack, serve a page of toy images (some missing alt, some
// decorative, some named), open it in Chromium with the extension, wait for the labels, print each image with its
// label, and save a screenshot. Headless by default; `npm run demo -- --headed` where a display exists;
// `npm run demo -- --browser firefox` builds the Firefox version and runs it in firefox-esr.
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, TMP, buildExtension, launchWithExtension, startServer, toyHeldout, toyTemplateCatalogueEnv } from '../test/e2e/harness.mjs';
import { buildFixtures } from '../test/e2e/fixtures.mjs';
import { launchFirefox } from '../test/e2e/firefox.mjs';

const headed = process.argv.includes('--headed');
const at = process.argv.indexOf('--browser');
const target = at > 0 ? process.argv[at + 1] : 'chrome';
if (target !== 'chrome' && target !== 'firefox') {
  console.error(`--browser ${target}: chrome or firefox`);
  process.exit(1);
}
const count = Number(process.env.DEMO_IMAGES ?? 18);
const packDir = join(ROOT, 'packs/toy');
if (!existsSync(join(packDir, 'pack.json'))) {
  console.error('No toy pack at packs/toy. Build it first: npm run pack:toy');
  process.exit(1);
}

const heldout = toyHeldout(packDir);
const server = await startServer({ staticDirs: { '/packs/': join(ROOT, 'packs'), '/heldout/': join(packDir, 'heldout') } });
let browser;
try {
  Object.assign(server.routes, buildFixtures(heldout, { packDir, otherOrigin: server.otherOrigin }).routes);
  const packUrl = `${server.origin}/packs/toy/`;
  const outDir = join(ROOT, target === 'firefox' ? 'dist-firefox' : 'dist');
  console.log(`building the ${target} extension into ${outDir} with the toy pack at ${packUrl} …`);
  // Its model catalogue is on the toy template: the full-size templates come with `npm run pack:templates`.
  const env = { ...toyTemplateCatalogueEnv(), TARGET_BROWSER: target };
  const extDir = await buildExtension({ outDir, packUrl, env });
  let page;
  if (target === 'firefox') {
    browser = await launchFirefox(extDir, { headless: !headed });
    page = await browser.browser.newPage();
  } else {
    browser = await launchWithExtension(extDir, { headless: !headed });
    page = await browser.context.newPage();
  }
  const t0 = Date.now();
  await page.goto(`${server.origin}/fixtures/gallery.html?n=${count}`);
  const eligible = await page.$$eval('figure[data-kind=missing] img, figure[data-kind=file-name] img', (els) => els.length);
  console.log(`waiting for ${eligible} labels (the model downloads, verifies and starts on first use) …`);
  // Polled here (playwright and puppeteer order waitForFunction's arguments differently).
  const labelled = () => page.evaluate(() => document.querySelectorAll('img[data-alt-text-generated]').length);
  while ((await labelled()) < eligible) {
    if (Date.now() - t0 > 180_000) throw new Error(`only ${await labelled()} of ${eligible} labels after 180 s`);
    await new Promise((r) => setTimeout(r, 250));
  }
  const rows = await page.$$eval('figure', (figs) =>
    figs.map((f) => {
      const im = f.querySelector('img');
      return {
        kind: f.dataset.kind,
        file: im.dataset.file,
        alt: im.getAttribute('alt'),
        label: im.getAttribute('aria-label'),
        pack: im.getAttribute('data-alt-text-generated'),
      };
    }),
  );
  const truth = Object.fromEntries(heldout.map((h) => [h.file, h.caption]));
  console.log(`\nall labels after ${((Date.now() - t0) / 1000).toFixed(1)} s:\n`);
  for (const r of rows) {
    const what = r.label
      ? `aria-label="${r.label}" (pack ${r.pack})`
      : r.alt === ''
        ? 'alt="": decorative, untouched'
        : `alt="${r.alt}": named, untouched`;
    console.log(`  ${r.file.padEnd(10)} ${r.kind.padEnd(10)} ${what}`);
    if (r.label) console.log(`  ${''.padEnd(21)} true caption: "${truth[r.file]}"`);
  }
  mkdirSync(TMP, { recursive: true });
  const shot = join(TMP, 'demo-screenshot.png');
  await page.screenshot({ path: shot, fullPage: true });
  console.log(`\nscreenshot: ${shot}`);
} finally {
  await browser?.close();
  await server.close();
}
