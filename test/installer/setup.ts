/** Shared set-up of the installer tests: one loopback hub per test file, the synthetic fixture, fast retries. */
import { afterAll, beforeAll, beforeEach } from 'vitest';
import type { InstallStore } from '../../src/captioner/pack-store';
import type { Catalogue } from '../../src/installer/catalogue';
import { Installer, type InstallerDeps, type ModelState } from '../../src/installer/installer';
import { startHubServer, type HubServer } from '../helpers/hub-server';
import { ensureInstallFixture, type InstallFixture } from '../helpers/test-catalogue';

const fast = { retries: 2, retryDelayMs: 5, flushBytes: 64 * 1024, progressIntervalMs: 0, minRequest: 4096 };

export interface InstallTestContext {
  hub: HubServer;
  fx: InstallFixture;
  /** an Installer over `store` and `catalogue`, recording every state it reports */
  installer(store: InstallStore, catalogue: Catalogue, extra?: Partial<InstallerDeps>): { inst: Installer; states: ModelState[] };
}

export function useInstallHub(): InstallTestContext {
  const ctx = {} as InstallTestContext;
  beforeAll(async () => {
    ctx.fx = ensureInstallFixture();
    ctx.hub = await startHubServer();
    ctx.hub.mount('/templates/', ctx.fx.templatesDir);
  });
  afterAll(() => ctx.hub?.close());
  beforeEach(() => {
    ctx.hub.reset();
    ctx.hub.clearFaults();
  });
  ctx.installer = (store, catalogue, extra = {}) => {
    const states: ModelState[] = [];
    const inst = new Installer({
      store,
      catalogue,
      templateBase: `${ctx.hub.url}/templates/`,
      onState: (s) => states.push(s),
      ...fast,
      ...extra,
    });
    return { inst, states };
  };
  return ctx;
}

/** Wait on a condition (never a fixed sleep). */
export async function waitFor(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
