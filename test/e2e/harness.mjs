// Shared by the e2e tests, `npm run demo` and `npm run bench:page`: build the extension, serve fixtures and a pack
// over loopback HTTP, and launch Debian Chromium with the extension (playwright-core, never its browser download).
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const ROOT = resolve(fileURLToPath(import.meta.url), '../../..');
export const TMP = join(ROOT, '.tmp');
const TYPES = { '.html': 'text/html; charset=utf-8', '.png': 'image/png', '.jpg': 'image/jpeg', '.json': 'application/json', '.onnx': 'application/octet-stream', '.js': 'text/javascript', '.svg': 'image/svg+xml' };

/** Build the extension into `outDir` with the given pack URL; `testHooks` compiles in the test-only hooks. */
export async function buildExtension({ outDir, packUrl, testHooks = false }) {
  const env = { ...process.env, CAPTION_PACK_URL: packUrl ?? '', EXT_OUT_DIR: outDir, TEST_HOOKS: testHooks ? '1' : '' };
  await new Promise((res, rej) => {
    const p = spawn(process.execPath, [join(ROOT, 'node_modules/vite/bin/vite.js'), 'build', '--logLevel', 'warn'], { cwd: ROOT, env, stdio: ['ignore', 'inherit', 'inherit'] });
    p.on('exit', (code) => (code === 0 ? res() : rej(new Error(`vite build failed (${code})`))));
  });
  return outDir;
}

/**
 * A loopback HTTP server. `routes` maps a path to a function (req, url) => {status, type, body} | undefined;
 * other paths are served from `staticDirs` ({ '/packs/': dir }). Every request is recorded in `log`.
 */
export async function startServer({ staticDirs = {}, routes = {}, port = 0 } = {}) {
  const log = [];
  const server = createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    log.push({ method: req.method, path: url.pathname, host: req.headers.host, at: Date.now() });
    const route = routes[url.pathname];
    if (route) {
      const r = route(req, url);
      if (r) {
        res.writeHead(r.status ?? 200, { 'content-type': r.type ?? 'text/html; charset=utf-8', 'cache-control': 'no-store', ...(r.headers ?? {}) });
        res.end(r.body);
        return;
      }
    }
    for (const [prefix, dir] of Object.entries(staticDirs)) {
      if (!url.pathname.startsWith(prefix)) continue;
      const file = resolve(dir, decodeURIComponent(url.pathname.slice(prefix.length)));
      if (!file.startsWith(resolve(dir)) || !existsSync(file) || !statSync(file).isFile()) break;
      res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream', 'content-length': statSync(file).size, 'cache-control': 'max-age=3600' });
      createReadStream(file).pipe(res);
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not found');
  });
  await new Promise((r) => server.listen(port, '127.0.0.1', r));
  const bound = server.address().port;
  return {
    port: bound,
    /** Mutable: add routes once the port is known. */
    routes,
    /** Two origins on one server: 127.0.0.1 and localhost differ. */
    origin: `http://127.0.0.1:${bound}`,
    otherOrigin: `http://localhost:${bound}`,
    log,
    close: () => new Promise((r) => { server.closeAllConnections?.(); server.close(() => r()); }),
  };
}

/** Launch Debian Chromium with the extension loaded (new headless loads extensions; no Xvfb). */
export async function launchWithExtension(extDir, { headless = true, webgpu = false, args = [], debugPort = false } = {}) {
  mkdirSync(TMP, { recursive: true });
  const profile = mkdtempSync(join(TMP, 'profile-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    headless,
    ignoreDefaultArgs: ['--disable-extensions'],
    env: { ...process.env, TMPDIR: profile },
    args: [
      `--disable-extensions-except=${extDir}`,
      `--load-extension=${extDir}`,
      '--no-sandbox',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--disable-quic',
      '--lang=en-US',
      ...(webgpu ? ['--enable-unsafe-webgpu'] : []),
      // A second, browser-level CDP endpoint (loopback only) for audits that need the browser target.
      ...(debugPort ? ['--remote-debugging-port=0', '--remote-debugging-address=127.0.0.1'] : []),
      ...args,
    ],
    viewport: { width: 1100, height: 800 },
  });
  let sw = context.serviceWorkers()[0];
  if (!sw) sw = await context.waitForEvent('serviceworker', { timeout: 30_000 });
  const extensionId = new URL(sw.url()).host;
  let cdpUrl = null;
  if (debugPort) {
    const file = join(profile, 'DevToolsActivePort');
    for (let i = 0; i < 100 && !existsSync(file); i += 1) await new Promise((r) => setTimeout(r, 50));
    cdpUrl = `http://127.0.0.1:${readFileSync(file, 'utf8').split('\n')[0].trim()}`;
  }
  return {
    context,
    extensionId,
    cdpUrl,
    serviceWorker: () => context.serviceWorkers().find((w) => w.url().includes(extensionId)) ?? sw,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** The toy pack's held-out images the model captions correctly (report.json lists its misses). */
export function toyHeldout(packDir = join(ROOT, 'packs/toy')) {
  const captions = JSON.parse(readFileSync(join(packDir, 'heldout/captions.json'), 'utf8'));
  let misses = new Set();
  const reportPath = join(packDir, 'report.json');
  if (existsSync(reportPath)) misses = new Set((JSON.parse(readFileSync(reportPath, 'utf8')).misses ?? []).map((m) => m.file));
  // Images the TS engine gets wrong though PyTorch gets them right (written by test/e2e/engine-check.ts).
  const manifest = join(packDir, 'pack.json');
  const hash = existsSync(manifest) ? createHash('sha256').update(readFileSync(manifest)).digest('hex').slice(0, 16) : 'none';
  const enginePath = join(TMP, `toy-engine-misses-${hash}.json`);
  if (existsSync(enginePath)) for (const f of JSON.parse(readFileSync(enginePath, 'utf8'))) misses.add(f);
  return Object.entries(captions)
    .filter(([f]) => !misses.has(f))
    .map(([file, caption]) => ({ file, caption }));
}

/** Captions compare without case and final full stop: the engine capitalises, and the label lowercases again. */
export function sameCaption(a, b) {
  const n = (s) => String(s).trim().toLowerCase().replace(/[.\s]+$/, '');
  return n(a) === n(b);
}

/** Every image-like element on the page (and in open shadow roots and same-origin iframes), with its attributes. */
export async function collectImages(frame) {
  return frame.evaluate(() => {
    const out = [];
    const walk = (root) => {
      for (const el of root.querySelectorAll('*')) {
        if (el.matches('img, input[type=image], [role=img]')) {
          const attrs = {};
          for (const a of el.attributes) attrs[a.name] = a.value;
          out.push({ id: el.id || el.getAttribute('data-test') || '', attrs, html: el.outerHTML });
        }
        if (el.shadowRoot) walk(el.shadowRoot);
      }
    };
    walk(document);
    return out;
  });
}

export async function waitFor(fn, { timeout = 60_000, interval = 100, what = 'condition' } = {}) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    last = await fn();
    if (last) return last;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, interval));
  }
}

/**
 * Network audit over CDP: every request the extension's own contexts (service worker, offscreen document, extension
 * pages) make, including ones created later (a restarted worker, a recreated offscreen document). Playwright cannot
 * open sessions on workers, so this attaches through a second, browser-level CDP connection (non-flattened sessions).
 */
export async function startNetworkAudit(cdpUrl, extensionId) {
  const browser = await chromium.connectOverCDP(cdpUrl);
  const s = await browser.newBrowserCDPSession();
  const requests = [];
  const sessions = new Map();
  let id = 1;
  const ours = (t) => t.url.startsWith(`chrome-extension://${extensionId}/`);
  const attach = async (t) => {
    if (!ours(t) || [...sessions.values()].includes(t.targetId)) return;
    try {
      const { sessionId } = await s.send('Target.attachToTarget', { targetId: t.targetId, flatten: false });
      sessions.set(sessionId, t.targetId);
      for (const method of ['Network.enable', 'Runtime.runIfWaitingForDebugger']) {
        await s.send('Target.sendMessageToTarget', { sessionId, message: JSON.stringify({ id: id++, method }) });
      }
    } catch {
      // The target went away before we could attach (a worker stopping); its successor is attached instead.
    }
  };
  const kinds = new Map();
  s.on('Target.targetCreated', (e) => {
    kinds.set(e.targetInfo.targetId, e.targetInfo.type);
    void attach(e.targetInfo);
  });
  s.on('Target.targetInfoChanged', (e) => void attach(e.targetInfo));
  s.on('Target.receivedMessageFromTarget', (e) => {
    const m = JSON.parse(e.message);
    if (m.method === 'Network.requestWillBeSent') {
      const targetId = sessions.get(e.sessionId);
      requests.push({ context: kinds.get(targetId) ?? 'unknown', url: m.params.request.url, method: m.params.request.method });
    }
  });
  await s.send('Target.setDiscoverTargets', { discover: true });
  const { targetInfos } = await s.send('Target.getTargets');
  for (const t of targetInfos) {
    kinds.set(t.targetId, t.type);
    await attach(t);
  }
  return {
    requests,
    async stop() {
      await browser.close();
    },
  };
}
