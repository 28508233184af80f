// A user with a working model gets an extension update whose catalogue has a new version of that model
// (docs/model-install.md section 5; src/background/install-watch.ts updateInstalled). The update downloads and converts
// the new version beside the old one, and the old pack keeps captioning until the switch:
//   install v1 from the set-up page -> a page is labelled -> the extension updates in place (a build with v2 of the
//   catalogue loads; onInstalled "update", see updateInPlace) -> the download is held at a crawl by the hub ->
//   a page is labelled, by the old pack -> the offscreen document is closed and the worker stopped -> a page is
//   labelled again, by the old pack, while the job resumes -> the crawl is released (Pause, Resume) -> the switch:
//   the model's pointer moves to the new entry, and only then is the old entry deleted -> a page is labelled by v2.
// Labels are compared with the toy model's true captions, each time with the caption cache cleared, so they come from
// the model. The hub's byte counts show that no stored byte was fetched twice. Every launch is audited.
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ModelStatus, ModelsView } from '../../src/shared/messages';
import type { Catalogue } from '../../src/installer/catalogue';
import { startHubServer, type HubServer } from '../helpers/hub-server';
import { PATHS, ensureInstallFixture, testCatalogue } from '../helpers/test-catalogue';
import { ROOT, TMP, buildExtension, sameCaption, waitFor } from './harness.mjs';
import { MARKER, env, labelOf, launch, mirrorAllowList, stopWorker, waitForLabels, type Ext } from './env';

const READY = existsSync(join(ROOT, 'packs/published/toy/clipcap.pt')) && existsSync(join(ROOT, 'packs/templates/toy-fp32/template.json'));
const MODEL = 'toy-coco';
const V1 = { version: '1.0.0', name: 'Toy shapes' };
const V2 = { version: '1.1.0', name: 'Toy shapes 2' };
/** The crawl: slow enough that each check below ends long before the file does, so the release is ours to make. */
const CRAWL_BYTES_PER_SECOND = 80 * 1024;

/** One request as an extension page sends it (src/shared/messages.ts send()): exactly one reply, ok or an error. */
async function ask<T>(page: Page, msg: { type: string } & Record<string, unknown>): Promise<T> {
  const r: { ok: boolean; value?: T; error?: { name: string; message: string } } = await page.evaluate(
    (m) => chrome.runtime.sendMessage(m),
    msg,
  );
  if (!r.ok) throw new Error(`${msg.type}: ${r.error?.name}: ${r.error?.message}`);
  return r.value as T;
}

interface StoreView {
  /** pack-store entries with a record (complete, verified packs) */
  entries: Array<{ id: string; version: string; name: string }>;
  /** entries holding any bytes (packs, half-built packs, downloaded inputs) */
  withBytes: string[];
  job: { readyStoreId: string | null; targetId: string | null; phase: string; running: boolean } | null;
}

/** The pack store (src/captioner/pack-store.ts, IndexedDB `clipcap-packs`) as one read-only transaction sees it. */
function storeView(page: Page): Promise<StoreView> {
  return page.evaluate(async (model) => {
    const get = <T>(r: IDBRequest<T>) =>
      new Promise<T>((res, rej) => ((r.onsuccess = () => res(r.result)), (r.onerror = () => rej(r.error))));
    const db = await get(indexedDB.open('clipcap-packs'));
    try {
      // Bytes are in chunks while a file is written, and in `files` once it is complete and sealed.
      const tx = db.transaction(['packs', 'chunks', 'files', 'jobs']);
      const [packs, keys, sealed, job] = await Promise.all([
        get(tx.objectStore('packs').getAll()) as Promise<Array<{ id: string; manifest: { version: string; name: string } }>>,
        get(tx.objectStore('chunks').getAllKeys()) as Promise<Array<[string, string, number]>>,
        get(tx.objectStore('files').getAllKeys()) as Promise<Array<[string, string]>>,
        get(tx.objectStore('jobs').get(model)) as Promise<StoreView['job'] | undefined>,
      ]);
      return {
        entries: packs
          .map((p) => ({ id: p.id, version: p.manifest.version, name: p.manifest.name }))
          .sort((a, b) => a.id.localeCompare(b.id)),
        withBytes: [...new Set([...keys, ...sealed].map((k) => k[0]))].sort(),
        job: job ? { readyStoreId: job.readyStoreId, targetId: job.targetId, phase: job.phase, running: job.running } : null,
      };
    } finally {
      db.close();
    }
  }, MODEL);
}

/** The contract of the switch: the model's pointer always names a complete entry (the old one until the switch). */
function expectPointerValid(v: StoreView, what: string): void {
  const ready = v.job?.readyStoreId ?? null;
  expect(
    ready !== null && v.entries.some((e) => e.id === ready),
    `${what}: the model points at ${ready}, and the store holds ${JSON.stringify(v.entries)}`,
  ).toBe(true);
}

/** Open basic.html in a new tab and check its labels against the toy model's true captions. */
async function expectTrueLabels(ext: Ext, what: string): Promise<void> {
  const page = await ext.context.newPage();
  await page.goto(`${env.origin}/fixtures/basic.html`);
  await waitForLabels(page, 7);
  const ids = await page.evaluate(() =>
    [...document.querySelectorAll('[data-alt-text-generated][data-test]')].map((e) => e.getAttribute('data-test')!),
  );
  expect(ids.length, what).toBeGreaterThanOrEqual(7);
  for (const id of ids) {
    const label = (await labelOf(page, id)) ?? '';
    expect(sameCaption(label.slice(MARKER.length), env.expected[id]), `${what}, ${id}: ${label} vs ${env.expected[id]}`).toBe(true);
  }
  await page.close();
}

/**
 * Update the extension in place to the files now in its folder, as Chrome applies an update: the new files load and
 * onInstalled says "update" (a browser restart would not do: this Chromium reinstalls a command-line extension at every
 * launch, reason "install"). Here chrome.runtime.reload() leaves such an extension disabled (reason "unknown");
 * enabling it again, as chrome://extensions does, loads the files on disk and fires onInstalled("update").
 */
async function updateInPlace(ext: Ext): Promise<void> {
  const old = ext.serviceWorker();
  const next = ext.context.waitForEvent('serviceworker', {
    predicate: (w) => w !== old && w.url().includes(ext.extensionId),
    timeout: 30_000,
  });
  // The worker goes away with the reload, so the evaluation may never answer.
  void old.evaluate(() => chrome.runtime.reload()).catch(() => undefined);
  const manager = await ext.context.newPage();
  await manager.goto('chrome://extensions');
  await manager.waitForFunction((id) => new Promise<boolean>((res) => chrome.management.get(id, (i) => res(!i.enabled))), ext.extensionId, {
    timeout: 30_000,
  });
  await manager.evaluate((id) => chrome.management.setEnabled(id, true), ext.extensionId);
  await next;
  await manager.close();
}

describe('update a model in use to a new catalogue version', () => {
  // Built by `npm test` (scripts/packs.sh): missing inputs fail here, by name, instead of skipping the suite.
  beforeAll(() => {
    if (!READY) throw new Error('packs/published/toy and packs/templates/toy-fp32 are missing: run `bash scripts/packs.sh`');
  });
  let hub: HubServer;
  let ext: Ext | null = null;
  let extDir: string;
  let nextDir: string;
  let allow: string[];
  let fileSize: number;

  beforeAll(async () => {
    hub = await startHubServer();
    const fx = ensureInstallFixture('toy');
    fileSize = fx.file('clipcap.pt').length;
    const v1 = testCatalogue(hub, fx, (m) =>
      Object.assign(m, { id: MODEL, description: 'A tiny model of coloured shapes, for tests.' }, V1),
    );
    // The next extension version ships the next version of the model: same mirrors, a new catalogue entry.
    const v2: Catalogue = structuredClone(v1);
    Object.assign(v2.models[0], V2);
    mkdirSync(TMP, { recursive: true });
    allow = mirrorAllowList({ models: [...v1.models, ...v2.models] }, hub.url);
    extDir = join(TMP, 'ext-update');
    nextDir = join(TMP, 'ext-update-next');
    rmSync(`${extDir}-prev`, { recursive: true, force: true });
    for (const [dir, catalogue, name] of [
      [extDir, v1, 'v1'],
      [nextDir, v2, 'v2'],
    ] as const) {
      const file = join(TMP, `update-catalogue-${name}.json`);
      writeFileSync(file, JSON.stringify(catalogue, null, 1));
      await buildExtension({ outDir: dir, testHooks: true, env: { CAPTION_CATALOGUE: file } });
    }
  }, 400_000);
  afterAll(async () => {
    await ext?.close();
    await hub?.close();
  });

  it('the old pack captions while the update downloads, across a closed offscreen document and a stopped worker; the switch comes after', async () => {
    // --- v1, installed from the set-up page and in use.
    ext = await launch({ extDir, allow, name: 'update' });
    const setupUrl = `chrome-extension://${ext.extensionId}/src/onboarding/index.html`;
    const setup = (await waitFor(() => ext!.context.pages().find((p) => p.url() === setupUrl), {
      timeout: 30_000,
      what: 'the set-up page opening by itself',
    }))!;
    await setup.waitForSelector('input[name=model]');
    await setup.locator('#go').click();
    await expect
      .poll(() => setup.locator('#status').textContent(), { timeout: 120_000 })
      .toBe('Toy shapes is ready. Images without a description are now described as you browse.');
    const v1View = await storeView(setup);
    const oldId = v1View.job!.readyStoreId!;
    expect(v1View.entries).toEqual([{ id: oldId, version: V1.version, name: V1.name }]);
    await expectTrueLabels(ext, 'v1 in use');

    // --- The extension updates in place. Its catalogue has v2: the worker's onInstalled("update") installs it again.
    hub.reset();
    hub.fault(PATHS.clipcapHub, { kind: 'slow', bytesPerSecond: CRAWL_BYTES_PER_SECOND, maxMs: 3_600_000 });
    for (const p of ext.context.pages()) await p.close();
    renameSync(extDir, `${extDir}-prev`);
    renameSync(nextDir, extDir);
    await updateInPlace(ext);
    // The options page: where a user would watch the update; the test's window on the store and the worker.
    const ctl = await ext.context.newPage();
    await ctl.goto(`chrome-extension://${ext.extensionId}/src/options/index.html`);
    await waitFor(() => (hub.sent.get(PATHS.clipcapHub) ?? 0) > 64 * 1024, { timeout: 120_000, what: "the update's download under way" });
    const during = await storeView(ctl);
    expect(during.job).toMatchObject({ readyStoreId: oldId, phase: 'downloading', running: true });
    expectPointerValid(during, 'downloading');
    const models = await ask<ModelsView>(ctl, { type: 'ui-bg-models' });
    expect(models.catalogue.find((m) => m.id === MODEL)?.name).toBe(V2.name);
    expect(models.states.find((s) => s.id === MODEL)).toMatchObject({ phase: 'downloading', storeId: oldId });

    // --- Mid-download, the old pack captions: fresh captions (the cache is emptied first), true ones.
    expect((await ask<{ captions: number }>(ctl, { type: 'ui-bg-clear-cache', packs: false })).captions).toBeGreaterThanOrEqual(7);
    await expectTrueLabels(ext, 'mid-download');
    const midway = await storeView(ctl);
    expect(midway.job).toMatchObject({ readyStoreId: oldId, phase: 'downloading' });
    expect(midway.entries.map((e) => e.id)).toEqual([oldId]);

    // --- Close the offscreen document (as a crash would), then stop the worker (as Chrome does when idle).
    await waitFor(() => (hub.sent.get(PATHS.clipcapHub) ?? 0) > fileSize / 5, {
      timeout: 120_000,
      what: 'a fifth of the checkpoint downloaded',
    });
    expect((await ask<{ captions: number }>(ctl, { type: 'ui-bg-clear-cache', packs: false })).captions).toBeGreaterThanOrEqual(7);
    await ext.serviceWorker().evaluate(() => chrome.offscreen.closeDocument());
    const killedAt = hub.log.length;
    const sentBeforeKill = hub.sent.get(PATHS.clipcapHub) ?? 0;
    await stopWorker(ext, ctl);

    // --- A page wakes the worker: the document comes back, the job resumes, and the old pack captions meanwhile.
    await expectTrueLabels(ext, 'after the kill');
    const cdp = (from: number) => hub.log.slice(from).filter((r) => r.file === PATHS.clipcapHub && r.path.startsWith('/cdn/'));
    await waitFor(() => cdp(killedAt).length > 0, { timeout: 60_000, what: 'the download resumed' });
    const resumed = await storeView(ctl);
    expect(resumed.job).toMatchObject({ readyStoreId: oldId, phase: 'downloading', running: true });
    expect(resumed.entries.map((e) => e.id)).toEqual([oldId]);

    // --- Release the crawl: Pause and Resume (the popup's buttons) end the slow request; the rest comes at full speed.
    hub.clearFaults();
    const pausedAt = hub.log.length;
    await ask(ctl, { type: 'ui-bg-model-pause', modelId: MODEL });
    const sentBeforePause = hub.sent.get(PATHS.clipcapHub) ?? 0;
    expectPointerValid(await storeView(ctl), 'paused');
    await ask(ctl, { type: 'ui-bg-model-resume', modelId: MODEL });

    // --- The switch. Every look at the store until then finds the pointer on a complete entry: never deleted first.
    const seen: StoreView[] = [];
    const switched = await waitFor(
      async () => {
        const v = await storeView(ctl);
        seen.push(v);
        expectPointerValid(v, `finishing (look ${seen.length})`);
        return v.job?.phase === 'ready' && v.job.readyStoreId !== oldId ? v : null;
      },
      { timeout: 180_000, interval: 50, what: 'the switch to the new entry' },
    );
    const newId = switched!.job!.readyStoreId!;
    expect(
      seen.some((v) => v.job?.readyStoreId === oldId),
      'a look before the switch',
    ).toBe(true);
    const after = await waitFor(
      async () => {
        const v = await storeView(ctl);
        return v.withBytes.length === 1 ? v : null;
      },
      { timeout: 30_000, what: 'the old entry and the downloaded inputs deleted' },
    );
    expect(after!.entries).toEqual([{ id: newId, version: V2.version, name: V2.name }]);
    expect(after!.withBytes).toEqual([newId]);

    // --- v2 in use: the switch itself forgot what v1 said (install-watch.ts: the worker notes which entry the model's
    // captions come from, once they are deleted), so nothing of v1 is left to clear; fresh true captions, and the
    // engine has the new pack (its manifest carries v2's name).
    await waitFor(
      async () => {
        const got = await ext!.serviceWorker().evaluate(() => chrome.storage.local.get('captionsFrom'));
        return (got.captionsFrom as Record<string, string> | undefined)?.[MODEL] === newId;
      },
      { timeout: 30_000, what: "the worker noting the new entry as its captions' source" },
    );
    expect((await ask<{ captions: number }>(ctl, { type: 'ui-bg-clear-cache', packs: false })).captions).toBe(0);
    await expectTrueLabels(ext, 'after the switch');
    await expect
      .poll(async () => ask<ModelStatus>(ctl, { type: 'ui-bg-status' }), { timeout: 60_000 })
      .toMatchObject({ state: 'ready', packName: V2.name });

    // No stored byte fetched twice: each resumed request starts where the stored bytes end, so only the unflushed
    // tail of the interrupted request (sent, not yet stored) comes again.
    const resumedAt = (from: number) =>
      Number(/^bytes=(\d+)-/.exec(cdp(from).find((r) => r.range !== 'bytes=0-0')?.range ?? '')?.[1] ?? NaN);
    const atKill = resumedAt(killedAt);
    const atPause = resumedAt(pausedAt);
    expect(atKill).toBeGreaterThan(0);
    expect(atKill).toBeLessThanOrEqual(sentBeforeKill);
    // The resumed request had sent sentBeforePause - sentBeforeKill bytes from atKill when Pause stopped it.
    const heldAtPause = atKill + (sentBeforePause - sentBeforeKill);
    expect(atPause).toBeGreaterThan(atKill);
    expect(atPause).toBeLessThanOrEqual(heldAtPause);
    const refetched = (hub.sent.get(PATHS.clipcapHub) ?? 0) - fileSize;
    // One 16 KiB slice per interruption may be counted as the socket closes.
    expect(refetched).toBeLessThanOrEqual(sentBeforeKill - atKill + (heldAtPause - atPause) + 2 * 16 * 1024);
    // A kill loses at most the unflushed buffer (1 MiB); a pause stores what arrived.
    expect(sentBeforeKill - atKill).toBeLessThanOrEqual((1 << 20) + 64 * 1024);
    expect(heldAtPause - atPause).toBeLessThanOrEqual(64 * 1024);
    // Range-read (vision-only) input: no byte range asked for twice during the update.
    const clipRanges = hub.log.filter((r) => r.file === PATHS.clipAzure && r.range).map((r) => r.range);
    expect(new Set(clipRanges).size).toBe(clipRanges.length);
  }, 600_000);
});
