/**
 * Builds the extension with @crxjs/vite-plugin. Environment:
 *   CAPTION_PACK_URL  pack base URL(s) the build preconfigures (comma separated)
 *   CAPTION_CATALOGUE  path to a catalogue JSON that replaces src/shared/catalogue.json (test builds: synthetic files
 *                      cannot have the published hashes)
 *   CAPTION_MIRROR_BASE  when set, every catalogue URL https://HOST/PATH becomes ${CAPTION_MIRROR_BASE}/HOST/PATH
 *   TEST_HOOKS=1      compile in the test-only hooks (__TEST__); release builds leave them out
 *   EXT_OUT_DIR       output folder (default dist)
 *   TARGET_BROWSER    'chrome' (default) or 'firefox': the manifest and the engine page's host (src/background/engine-page.ts)
 *   KEEP_ALIVE_GRACE_MS  test builds only: Firefox's keep-alive grace (src/offscreen/keep-alive.ts), to see the event
 *                     page unload within a test
 *   ENGINE_THREADS    test builds only: the engine's wasm threads instead of the automatic choice (src/sandbox/), so
 *                     that a 2-core machine runs ORT's worker threads too
 */
import { copyFileSync, cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { crx } from '@crxjs/vite-plugin';
import { defaultClientConditions, defineConfig, type Plugin } from 'vite';
import manifest from './manifest.json' with { type: 'json' };

const root = dirname(fileURLToPath(import.meta.url));
const target = process.env.TARGET_BROWSER === 'firefox' ? 'firefox' : 'chrome';
const outDir = process.env.EXT_OUT_DIR ?? (target === 'firefox' ? 'dist-firefox' : 'dist');

/**
 * Firefox's manifest, from the one source (manifest.json is Chrome's):
 * - the background is an event page (`scripts`), which hosts the engine's page in a frame: no offscreen document;
 * - no `sandbox` key (Firefox has none): the engine's page is framed there as an ordinary extension page, in the same
 *   process, so an engine crash is not contained as it is in Chrome; and no cross-origin isolation keys, which only
 *   Chrome's sandboxed engine frame needs (for SharedArrayBuffer, so that ORT runs worker threads);
 * - `options_ui` instead of Chrome's `options_page`; no `minimum_chrome_version`;
 * - what Firefox requires of a new extension: its id, and the data-collection declaration (this collects nothing).
 * Host permissions are the same key, but Firefox treats them as optional in MV3: the user grants them (the first-run
 * page and the popup ask, src/shared/site-access.ts).
 */
type Manifest = typeof manifest & Record<string, unknown>;
function firefoxManifest(m: typeof manifest): Manifest {
  const {
    minimum_chrome_version: _chrome,
    sandbox: _sandbox,
    cross_origin_embedder_policy: _coep,
    cross_origin_opener_policy: _coop,
    options_page,
    content_security_policy,
    ...rest
  } = m;
  return {
    ...rest,
    permissions: m.permissions.filter((p) => p !== 'offscreen'),
    background: { scripts: [m.background.service_worker], type: 'module' },
    options_ui: { page: options_page, open_in_tab: true },
    content_security_policy: { extension_pages: content_security_policy.extension_pages },
    browser_specific_settings: {
      gecko: {
        id: 'clipcap-alt-text@alt-text.local',
        strict_min_version: '142.0',
        data_collection_permissions: { required: ['none'] },
      },
    },
  } as unknown as Manifest;
}

// The ORT runtime files the engine loads (wasmPaths points at /ort/); bundled, never fetched from a CDN.
const ORT_FILES = ['ort-wasm-simd-threaded.asyncify.mjs', 'ort-wasm-simd-threaded.asyncify.wasm'];

function copyOrtRuntime(): Plugin {
  return {
    name: 'copy-ort-runtime',
    apply: 'build',
    writeBundle() {
      const dest = resolve(root, outDir, 'ort');
      mkdirSync(dest, { recursive: true });
      for (const f of ORT_FILES) copyFileSync(join(root, 'node_modules/onnxruntime-web/dist', f), join(dest, f));
    },
  };
}

// The catalogue this build installs from: the CAPTION_CATALOGUE replacement, or the bundled one. Read here too, to
// know which graph templates to ship; src/installer/catalogue.ts validates it at run time.
const cataloguePath = process.env.CAPTION_CATALOGUE ? resolve(process.env.CAPTION_CATALOGUE) : null;
const catalogue = JSON.parse(readFileSync(cataloguePath ?? join(root, 'src/shared/catalogue.json'), 'utf8')) as {
  models?: { template?: unknown }[];
};

/**
 * Ship packs/templates/<id>/ as templates/<id>/ for every template the catalogue names (the installer fetches them from
 * chrome.runtime.getURL('templates/')). A missing template fails the build here, not a user's install later.
 */
function copyTemplates(): Plugin {
  const ids = [...new Set((catalogue.models ?? []).map((m) => m.template).filter((t): t is string => typeof t === 'string'))];
  const src = (id: string) => join(root, 'packs/templates', id);
  return {
    name: 'copy-templates',
    apply: 'build',
    buildStart() {
      const missing = ids.filter((id) => !existsSync(join(src(id), 'template.json')));
      if (missing.length) {
        this.error(
          `The catalogue${cataloguePath ? ` ${cataloguePath}` : ''} names graph template(s) ${missing.join(', ')}, but ` +
            `${missing.map((id) => `packs/templates/${id}/template.json`).join(', ')} is missing. Build them with: ` +
            `npm run pack:templates (bash scripts/packs.sh --release: the full-size ones, about 10 minutes)`,
        );
      }
    },
    writeBundle() {
      // Not the build's own bookkeeping (.source-stamp): only what the installer reads.
      for (const id of ids)
        cpSync(src(id), resolve(root, outDir, 'templates', id), { recursive: true, filter: (p) => !basename(p).startsWith('.') });
    },
  };
}

/**
 * Web-accessible resources expose as little as possible: none today (the content script is one classic script). Should
 * any entry come back (a crxjs change, a new asset), it is only reachable through the per-session dynamic URL, never
 * at chrome-extension://<id>/..., so pages can't fingerprint the extension by it. test/e2e/hostile.test.ts checks.
 */
function dynamicWarUrls(): Plugin {
  return {
    name: 'dynamic-war-urls',
    apply: 'build',
    enforce: 'post',
    writeBundle() {
      const file = resolve(root, outDir, 'manifest.json');
      if (!existsSync(file)) return;
      const m = JSON.parse(readFileSync(file, 'utf8')) as { web_accessible_resources?: { use_dynamic_url?: boolean }[] };
      if (!m.web_accessible_resources?.length) return;
      for (const war of m.web_accessible_resources) war.use_dynamic_url = true;
      writeFileSync(file, JSON.stringify(m, null, 2));
    },
  };
}

export default defineConfig({
  plugins: [
    crx({
      manifest: target === 'firefox' ? firefoxManifest(manifest) : manifest,
      browser: target,
      // The content script is built as one self-contained classic script, not an ES-module loader that imports its
      // chunks from chrome-extension:// URLs: then nothing has to be web-accessible, and no page can fetch (or
      // fingerprint the extension by) any of our files. test/e2e/hostile.test.ts (exposure) and
      // test/audit/security-audit.test.ts check that it stays so; dynamicWarUrls() below covers any entry that comes back.
      contentScripts: { standaloneFiles: ['src/content/index.ts'] },
    }),
    copyOrtRuntime(),
    copyTemplates(),
    dynamicWarUrls(),
  ],
  define: {
    __TEST__: JSON.stringify(process.env.TEST_HOOKS === '1'),
    __BROWSER__: JSON.stringify(target),
    __KEEP_ALIVE_GRACE_MS__:
      process.env.TEST_HOOKS === '1' && process.env.KEEP_ALIVE_GRACE_MS ? String(Number(process.env.KEEP_ALIVE_GRACE_MS)) : 'null',
    __ENGINE_THREADS__: process.env.TEST_HOOKS === '1' && process.env.ENGINE_THREADS ? String(Number(process.env.ENGINE_THREADS)) : 'null',
    __PACK_URLS__: JSON.stringify(process.env.CAPTION_PACK_URL ?? ''),
    // Read by src/installer/catalogue.ts: the replacement catalogue object (null: the bundled one), and the mirror base.
    __CAPTION_CATALOGUE__: cataloguePath ? JSON.stringify(catalogue) : 'null',
    __CAPTION_MIRROR_BASE__: JSON.stringify(process.env.CAPTION_MIRROR_BASE ?? ''),
  },
  resolve: {
    // Without this Vite emits a second copy of each large .wasm.
    conditions: ['onnxruntime-web-use-extern-wasm', ...defaultClientConditions],
  },
  optimizeDeps: { exclude: ['onnxruntime-web'] },
  build: {
    outDir,
    emptyOutDir: true,
    target: 'esnext',
    chunkSizeWarningLimit: 4096,
    rolldownOptions: {
      input: {
        // Pages no manifest key names must be listed, or chrome.offscreen.createDocument fails "Page failed to load".
        offscreen: 'src/offscreen/index.html',
        caption: 'src/caption-page/index.html',
        onboarding: 'src/onboarding/index.html',
        // Chrome's manifest names it (`sandbox`); Firefox's does not.
        sandbox: 'src/sandbox/index.html',
      },
    },
  },
});
