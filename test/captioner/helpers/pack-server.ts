/**
 * A temporary pack root served over loopback at /packs/ for the life of a test file, for the pack-loading tests.
 * Registers its own beforeAll/afterAll/beforeEach hooks: the request log and the hooks are cleared before each test.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach } from 'vitest';
import { startStaticServer, type StaticServer } from './static-server';

export interface PackServer {
  /** the directory served at /packs/ (set in beforeAll) */
  root: string;
  server: StaticServer;
}

/** Short retry delays and small chunks, so that retries and progress events happen quickly in tests. */
export const fast = { retryDelayMs: 5, chunkBytes: 64 * 1024 };

export function usePackServer(tmpPrefix: string): PackServer {
  const ctx = {} as PackServer;
  beforeAll(async () => {
    ctx.root = mkdtempSync(join(tmpdir(), tmpPrefix));
    ctx.server = await startStaticServer({ '/packs/': ctx.root });
  });
  afterAll(async () => {
    await ctx.server?.close();
    if (ctx.root) rmSync(ctx.root, { recursive: true, force: true });
  });
  beforeEach(() => {
    ctx.server.log.length = 0;
    ctx.server.hooks.clear();
  });
  return ctx;
}
