// Firefox for the e2e suite: Debian's firefox-esr driven by puppeteer-core over WebDriver BiDi, the Firefox build of
// the extension installed temporarily, and a recording proxy that every request for a non-loopback host goes to.
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import puppeteer from 'puppeteer-core';

const FIREFOX = '/usr/bin/firefox-esr';

/**
 * A proxy that answers nothing: it records the first line of each request ("CONNECT host:443 …" or "GET http://host/…")
 * and hangs up. Firefox sends everything except loopback to it, so nothing here can reach the internet, and the log
 * says what anything in the browser tried to reach.
 */
export async function startRecordingProxy() {
  const log = [];
  const server = createServer((socket) => {
    socket.once('data', (d) => {
      log.push(d.toString('latin1').split('\r\n')[0]);
      socket.destroy();
    });
    socket.on('error', () => undefined);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const port = server.address().port;
  return { port, log, close: () => new Promise((r) => server.close(() => r())) };
}

/**
 * Firefox's own service that puppeteer's profile leaves on (remote settings; its pref cannot be pointed elsewhere in a
 * release build). Anything else the proxy logs came from a page or the extension.
 */
export const FIREFOX_OWN = /^CONNECT firefox\.settings\.services\.mozilla\.com:443 /;

/**
 * Launch firefox-esr (headless unless `headless: false`), install the built extension at `extDir` temporarily, and
 * grant it its host permissions (unless `grantSites: false`). With `proxyPort`, every non-loopback request goes to
 * that (recording) proxy; `prefs` adds Firefox preferences.
 */
export async function launchFirefox(extDir, o = {}) {
  if (!existsSync(FIREFOX)) throw new Error(`${FIREFOX} is missing: run scripts/setup.sh (it installs firefox-esr)`);
  const manifest = JSON.parse(readFileSync(join(extDir, 'manifest.json'), 'utf8'));
  const uuid = randomUUID();
  const browser = await puppeteer.launch({
    browser: 'firefox',
    executablePath: FIREFOX,
    headless: o.headless ?? true,
    extraPrefsFirefox: {
      // A known moz-extension:// origin for the extension's pages.
      'extensions.webextensions.uuids': JSON.stringify({ [manifest.browser_specific_settings.gecko.id]: uuid }),
      // MV3 host permissions are the user's to grant (the first-run page asks); a test grants them as the user would,
      // unless it checks what happens without them.
      'extensions.originControls.grantByDefault': o.grantSites ?? true,
      ...(o.proxyPort
        ? {
            'network.proxy.type': 1,
            'network.proxy.http': '127.0.0.1',
            'network.proxy.http_port': o.proxyPort,
            'network.proxy.ssl': '127.0.0.1',
            'network.proxy.ssl_port': o.proxyPort,
            'network.proxy.no_proxies_on': '',
          }
        : {}),
      ...(o.prefs ?? {}),
    },
  });
  const errors = [];
  const track = (page) => {
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(`${page.url()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => errors.push(`${page.url()}: ${e instanceof Error ? e.message : String(e)}`));
    return page;
  };
  await browser.installExtension(extDir);
  return { browser, base: `moz-extension://${uuid}/`, errors, track, close: () => browser.close() };
}

/** Where a page really is: puppeteer's page.url() keeps saying about:blank for Firefox's extension pages. */
const whereIs = (page) => page.evaluate(() => `${location.href} ${document.readyState}`).catch(() => '');

/**
 * An extension page to drive the extension from. WebDriver BiDi may not navigate a tab to moz-extension:// URLs, but
 * the extension opens its first-run page itself when it has no model (a build with no preconfigured pack), and a page
 * of ours may go to another of ours.
 */
export async function firstRunPage(ff, timeout = 30_000) {
  const end = Date.now() + timeout;
  for (;;) {
    for (const page of await ff.browser.pages())
      if ((await whereIs(page)).startsWith(`${ff.base}src/onboarding/index.html`)) return ff.track(page);
    if (Date.now() > end) throw new Error(`the first-run page did not open within ${timeout} ms`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Go, from one of the extension's pages, to another of them, and wait until it has loaded. */
export async function goToOwnPage(page, url, timeout = 30_000) {
  await page.evaluate((u) => void (location.href = u), url);
  await waitForPage(page, url, timeout);
}

/** Wait until `page` shows `url`, loaded. */
async function waitForPage(page, url, timeout = 30_000) {
  const end = Date.now() + timeout;
  while ((await whereIs(page)) !== `${url} complete`) {
    if (Date.now() > end) throw new Error(`${url} did not load within ${timeout} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
