import { defineConfig } from 'vitest/config';

// Projects, so each tier can run alone:
//   unit    - everything under test/ that runs in Node (vitest run --project unit): unit and handler tests
//   browser - tests under test/browser/ that drive Chromium through playwright-core (vitest run --project browser)
//   e2e     - the built extension in Debian Chromium on loopback fixture pages (vitest run --project e2e); headless,
//             except test/e2e/real-ui.test.ts, which needs an X display and xdotool and skips without them (npm test
//             runs this project under xvfb-run)
//   bench   - bench/*.bench.ts: engine timings, printed and written to bench/results/ (npm run bench); not tests
export default defineConfig({
  test: {
    projects: [
      {
        // What test builds define (vite.config.ts): the code under test answers its test-only requests.
        define: { __TEST__: 'true', __BROWSER__: JSON.stringify('chrome'), __KEEP_ALIVE_GRACE_MS__: 'null', __ENGINE_THREADS__: 'null' },
        test: {
          name: 'unit',
          include: ['test/**/*.test.ts'],
          // The polyfill only loads inside an extension; in Node it reads the test's fake chrome.* (see the helper).
          alias: { 'webextension-polyfill': new URL('./test/helpers/browser-global.ts', import.meta.url).pathname },
          exclude: ['test/browser/**', 'test/e2e/**', '**/node_modules/**'],
          environment: 'node',
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
      {
        test: {
          name: 'browser',
          include: ['test/browser/**/*.test.ts'],
          environment: 'node',
          testTimeout: 300_000,
          hookTimeout: 300_000,
          fileParallelism: false,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          environment: 'node',
          globalSetup: ['test/e2e/global-setup.ts'],
          testTimeout: 180_000,
          hookTimeout: 180_000,
          fileParallelism: false,
        },
      },
      {
        test: {
          name: 'bench',
          include: ['bench/**/*.bench.ts'],
          environment: 'node',
          testTimeout: 1_800_000,
          hookTimeout: 600_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
