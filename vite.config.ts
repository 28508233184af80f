/**
 * Builds the extension with @crxjs/vite-plugin. Environment:
 *   CAPTION_PACK_URL  pack base URL(s) the build preconfigures (comma separated)
 *   TEST_HOOKS=1      compile in the test-only hooks (__TEST__); release builds leave them out
 *   EXT_OUT_DIR       output folder (default dist)
 */
import { copyFileSync, mkdirSync } from 'node:fs';
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

export default defineConfig({
  plugins: [crx({ manifest: manifest as never }), copyOrtRuntime()],
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
      },
    },
  },
});
