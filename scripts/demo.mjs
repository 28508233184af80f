#!/usr/bin/env node
// npm run demo: build the extension with the toy pack, serve a page of toy images (some missing alt, some
// decorative, some named), open it in Chromium with the extension, wait for the labels, print each image with its
// label, and save a screenshot. Headless by default; `npm run demo -- --headed` where a display exists;
// `npm run demo -- --browser firefox` builds the Firefox version and runs it in firefox-esr.
import { existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
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
// A few pictures from outside the toy world (when the pack has them): with CLIP's text tower, those the model is unsure
// of are left unlabelled, as the README says.
const oodDir = join(packDir, 'ood');
const ood = existsSync(oodDir)
  ? readdirSync(oodDir)
      .filter((f) => f.endsWith('.png'))
      .sort()
  : [];
const unknown = Math.min(ood.length, Number(process.env.DEMO_UNKNOWN ?? 4));
const kindsPath = join(oodDir, 'kinds.json');
const kinds = existsSync(kindsPath) ? JSON.parse(readFileSync(kindsPath, 'utf8')) : {};
const server = await startServer({
  staticDirs: { '/packs/': join(ROOT, 'packs'), '/heldout/': join(packDir, 'heldout'), '/ood/': oodDir },
});
let browser;
try {
  Object.assign(server.routes, buildFixtures(heldout, { packDir, otherOrigin: server.otherOrigin, ood }).routes);
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
  // The content script says in the console why it left an image unlabelled (content/log.ts): "skipped URL: reason".
  const skipped = new Map();
  page.on('console', (m) => {
    const text = typeof m.text === 'function' ? m.text() : String(m.text);
    const hit = /^\[alt-text\] skipped (\S+): (.*)$/.exec(text);
    if (hit) skipped.set(hit[1], hit[2]);
  });
  const t0 = Date.now();
  await page.goto(`${server.origin}/fixtures/gallery.html?n=${count}&unknown=${unknown}`);
  const eligible = await page.$$eval(
    'figure[data-kind=missing] img, figure[data-kind=file-name] img, figure[data-kind=unknown] img',
    (els) => els.length,
  );
  console.log(
    `waiting for ${eligible} images to be labelled or left unlabelled because the model was unsure (the model downloads, verifies and starts on first use) …`,
  );
  // Polled here (playwright and puppeteer order waitForFunction's arguments differently).
  const pending = async () => {
    const srcs = await page.$$eval('figure[data-kind=missing] img, figure[data-kind=file-name] img, figure[data-kind=unknown] img', (els) =>
      els.filter((im) => !im.hasAttribute('data-alt-text-generated')).map((im) => im.currentSrc),
    );
    return srcs.filter((src) => !/^uncertain/.test(skipped.get(src) ?? '')).length;
  };
  while ((await pending()) > 0) {
    if (Date.now() - t0 > 180_000)
      throw new Error(`${await pending()} of ${eligible} images neither labelled nor reported unsure after 180 s`);
    await new Promise((r) => setTimeout(r, 250));
  }
  const rows = await page.$$eval('figure', (figs) =>
    figs.map((f) => {
      const im = f.querySelector('img');
      return {
        kind: f.dataset.kind,
        file: im.dataset.file,
        src: im.currentSrc,
        alt: im.getAttribute('alt'),
        label: im.getAttribute('aria-label'),
        pack: im.getAttribute('data-alt-text-generated'),
      };
    }),
  );
  const truth = Object.fromEntries(heldout.map((h) => [h.file, h.caption]));
  console.log(`\nall labels after ${((Date.now() - t0) / 1000).toFixed(1)} s:\n`);
  for (const r of rows) {
    const unsure = skipped.get(r.src);
    const what = r.label
      ? `aria-label="${r.label}" (pack ${r.pack})`
      : unsure
        ? `no label: ${unsure}`
        : r.alt === ''
          ? 'alt="": decorative, untouched'
          : `alt="${r.alt}": named, untouched`;
    console.log(`  ${r.file.padEnd(10)} ${r.kind.padEnd(10)} ${what}`);
    // ood/ and heldout/ number their files alike: the truth is only the held-out pictures'.
    if (r.kind === 'unknown') console.log(`  ${''.padEnd(21)} from outside the toy world: ${kinds[r.file]?.detail ?? 'unknown'}`);
    else if (r.label) console.log(`  ${''.padEnd(21)} true caption: "${truth[r.file]}"`);
  }
  mkdirSync(TMP, { recursive: true });
  const shot = join(TMP, 'demo-screenshot.png');
  await page.screenshot({ path: shot, fullPage: true });
  console.log(`\nscreenshot: ${shot}`);
} finally {
  await browser?.close();
  await server.close();
}
