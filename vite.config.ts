/**
 * Builds the extension with @crxjs/vite-plugin. Environment:
 *   CAPTION_PACK_URL  pack base URL(s) the build preconfigures (comma separated)
 *   TEST_HOOKS=1      compile in the test-only hooks (__TEST__); release builds leave them out
 *   EXT_OUT_DIR       output folder (default dist)
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
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
      manifest: manifest as never,
      // The content script is built as one self-contained classic script, not an ES-module loader that imports its
      // chunks from chrome-extension:// URLs: then nothing has to be web-accessible, and no page can fetch (or
      // fingerprint the extension by) any of our files. webAccessibleResources() checks that it stays so.
      contentScripts: { standaloneFiles: ['src/content/index.ts'] },
    }),
    copyOrtRuntime(),
    dynamicWarUrls(),
  ],
  define: {
    __TEST__: JSON.stringify(process.env.TEST_HOOKS === '1'),
    __PACK_URLS__: JSON.stringify(process.env.CAPTION_PACK_URL ?? ''),
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
