/**
 * Shared setup for the Chromium tests: bundle a test page, serve it cross-origin isolated, launch Chromium, and open
 * the page once it says it is ready.
 */
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { build, defaultClientConditions } from 'vite';
import { REPO } from '../captioner/helpers/packs';
import { startStaticServer, type StaticServer } from '../captioner/helpers/static-server';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Bundle test/browser/<page> into outDir the way the extension bundles the engine: external ORT wasm, served from /ort/. */
export async function buildTestPage(page: string, outDir: string): Promise<void> {
  await build({
    root: resolve(REPO, 'test/browser'),
    base: './',
    configFile: false,
    logLevel: 'warn',
    resolve: { conditions: ['onnxruntime-web-use-extern-wasm', ...defaultClientConditions] },
    build: {
      outDir,
      emptyOutDir: true,
      target: 'es2022',
      minify: false,
      reportCompressedSize: false,
      rollupOptions: { input: resolve(REPO, 'test/browser', page) },
    },
  });
}

/** Serve the built page at /page/, ORT at /ort/ and the repository at /repo/, plus `extra` mounts. */
export function serveTestPage(outDir: string, extra: Record<string, string> = {}): Promise<StaticServer> {
  return startStaticServer(
    { '/page/': outDir, '/ort/': resolve(REPO, 'node_modules/onnxruntime-web/dist'), ...extra, '/repo/': REPO },
    // cross-origin isolation, so that SharedArrayBuffer (and so wasm threads) is available
    { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' },
  );
}

/** Headless Chromium with its temporary files under tmpDir, and no background traffic. */
export async function launchChromium(tmpDir: string, extraArgs: string[] = []): Promise<Browser> {
  mkdirSync(tmpDir, { recursive: true });
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    env: { ...process.env, TMPDIR: tmpDir },
    args: [
      '--no-sandbox',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--disable-quic',
      ...extraArgs,
    ],
  });
}

/** A new page at url, with `listen` attached first, returned once its #status says "ready". */
export async function openReadyPage(browser: Browser, url: string, listen: (page: Page) => void = () => {}): Promise<Page> {
  const page = await browser.newPage();
  listen(page);
  await page.goto(url);
  await page.waitForFunction(() => document.getElementById('status')?.textContent === 'ready');
  return page;
}
