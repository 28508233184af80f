/**
 * Builds the extension with @crxjs/vite-plugin. Environment:
 *   CAPTION_PACK_URL  pack base URL(s) the build preconfigures (comma separated)
 *   CAPTION_CATALOGUE  path to a catalogue JSON that replaces src/shared/catalogue.json (test builds: synthetic files
 *                      cannot have the published hashes)
 *   CAPTION_MIRROR_BASE  when set, every catalogue URL https://HOST/PATH becomes ${CAPTION_MIRROR_BASE}/HOST/PATH
 *   TEST_HOOKS=1      compile in the test-only hooks (__TEST__); release builds leave them out
 *   EXT_OUT_DIR       output folder (default dist)
 */
import { copyFileSync, cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { crx } from '@crxjs/vite-plugin';
import { defaultClientConditions, defineConfig, type Plugin } from 'vite';
import manifest from './manifest.json' with { type: 'json' };

const root = dirname(fileURLToPath(import.meta.url));
const outDir = process.env.EXT_OUT_DIR ?? 'dist';

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
      manifest: manifest,
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
      },
    },
  },
});
