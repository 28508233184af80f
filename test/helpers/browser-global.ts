/**
 * What `import browser from 'webextension-polyfill'` gives code under test in Node (vitest.config.ts aliases it here).
 * The real polyfill refuses to load outside an extension and captures `chrome` once; handler tests install a fresh
 * fake `globalThis.chrome` (test/helpers/chrome-fake.ts, promise-based like `browser.*`) per test, so every property
 * is looked up on the current one at call time. The built extension bundles the real polyfill (the e2e tests run it).
 * With no fake installed every namespace reads as undefined, so the guards of code that Node tests run bare
 * (`browser.i18n?.getMessage` in src/shared/i18n.ts, status-text.ts, the content panel) fall back to their defaults.
 */
const current = () =>
  (globalThis as unknown as { browser?: object; chrome?: object }).browser ?? (globalThis as unknown as { chrome?: object }).chrome;

const browser = new Proxy(
  {},
  {
    get(_target, key) {
      const api = current() as Record<string | symbol, unknown> | undefined;
      return api?.[key];
    },
  },
);

export default browser;
