/** Build-time constants, replaced by vite.config.ts `define`. */

/** True only in test builds (TEST_HOOKS=1); test-only code behind it is compiled out of release builds. */
declare const __TEST__: boolean;
/** Pack base URL(s) the build preconfigures (CAPTION_PACK_URL, comma separated); '' when none. */
declare const __PACK_URLS__: string;
/** The browser this build is for (TARGET_BROWSER): 'chrome' (the default) or 'firefox'. */
declare const __BROWSER__: 'chrome' | 'firefox';
/** Test builds only (KEEP_ALIVE_GRACE_MS): the keep-alive grace in ms instead of LIMITS.queue.keepAliveGraceMs; else null. */
declare const __KEEP_ALIVE_GRACE_MS__: number | null;
/** Test builds only (ENGINE_THREADS): the engine's wasm thread count instead of the automatic choice; else null. */
declare const __ENGINE_THREADS__: number | null;
