/**
 * Engine fuzz in Chromium: about 1,100 seeded hostile inputs (see test/captioner/helpers/fuzz-cases.ts) through the
 * engine's decode + preprocess path on a plain page, and every 25th case that decodes through a whole toy-pack caption.
 *
 * Every outcome must be a finite pixel tensor of the right shape or a named engine error: never a plain
 * Error/TypeError, never a hang (decodes have a time limit), never a crash. Hostile SVG must neither run script nor
 * fetch anything. The per-category table is printed and written to .tmp/fuzz-engine.json.
 *
 * Run: npx vitest run --project browser test/browser/fuzz.test.ts
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateFuzzCases, type FuzzCase } from '../captioner/helpers/fuzz-cases';
import { goldenPackDirs, packMissingMessage, REPO } from '../captioner/helpers/packs';
import type { StaticServer } from '../captioner/helpers/static-server';
import { buildTestPage, launchChromium, openReadyPage, serveTestPage } from './launch';
import type { PageResult } from './fuzz-page';

const OUT = resolve(REPO, '.tmp/browser-fuzz');
const BROWSER_TMP = resolve(REPO, '.tmp/chromium-tmp-fuzz');
const REPORT = resolve(REPO, '.tmp/fuzz-engine.json');
const SEED = Number(process.env.FUZZ_SEED ?? 20261125);
const TIMEOUT_MS = 15_000;
const CAPTION_EVERY = 25;

const packDir = goldenPackDirs()[0];
let server: StaticServer;
let browser: Browser;
let page: Page;
const requests: string[] = [];
const pageErrors: string[] = [];

beforeAll(async () => {
  await buildTestPage('fuzz-page.html', OUT);
  server = await serveTestPage(OUT);
  browser = await launchChromium(BROWSER_TMP);
  page = await openReadyPage(browser, `${server.url}/page/fuzz-page.html`, (p) => {
    p.on('request', (r) => requests.push(r.url()));
    p.on('pageerror', (e) => pageErrors.push(e.message));
  });
}, 300_000);

afterAll(async () => {
  await browser?.close();
  await server?.close();
  rmSync(BROWSER_TMP, { recursive: true, force: true });
});

interface Row {
  cases: number;
  ok: number;
  named: number;
  unnamed: number;
  unexpected: number;
  names: Record<string, number>;
}

describe('engine fuzz in Chromium', () => {
  it('≥1000 hostile inputs: each a valid tensor or a named error; no script, no fetch, no hang', async () => {
    const missing = packMissingMessage(packDir);
    if (missing) throw new Error(missing);
    const t0 = Date.now();
    const leak = `${server.url}/leak/`;
    const cases = await generateFuzzCases({ seed: SEED, leak, cacheDir: resolve(REPO, '.tmp/test-images') });
    expect(cases.length).toBeGreaterThanOrEqual(1000);
    const packId = await page.evaluate(([u]) => window.fuzzTest.init(u), [`${server.url}/repo/${packDir.slice(REPO.length + 1)}/`]);
    expect(packId).toBeTruthy();
    requests.length = 0;
    server.log.length = 0;

    const results: PageResult[] = [];
    const BATCH = 40;
    for (let i = 0; i < cases.length; i += BATCH) {
      const batch = cases.slice(i, i + BATCH).map((c) => ({ id: c.id, mime: c.mime, b64: Buffer.from(c.bytes).toString('base64') }));
      results.push(
        ...(await page.evaluate(([b, o]) => window.fuzzTest.runCases(b, o), [
          batch,
          { timeoutMs: TIMEOUT_MS, captionEvery: CAPTION_EVERY },
        ] as const)),
      );
    }
    const pwned = await page.evaluate(() => window.__svgPwned ?? null);
    // Positive control: a request the page itself makes to the leak prefix is seen by both watchers.
    await page.evaluate(([u]) => fetch(u).then((r) => r.status), [`${leak}control`]);
    expect(requests.some((u) => u.endsWith('/leak/control'))).toBe(true);
    expect(server.log.some((l) => l.path === '/leak/control')).toBe(true);
    requests.splice(0, requests.length, ...requests.filter((u) => !u.endsWith('/leak/control')));
    server.log.splice(0, server.log.length, ...server.log.filter((l) => l.path !== '/leak/control'));
    await page.evaluate(() => window.fuzzTest.dispose());
    const fuzzMs = Date.now() - t0;

    // Tally per category; a case is "unexpected" when it broke its own promise (a valid image that failed, say).
    const table: Record<string, Row> = {};
    const problems: string[] = [];
    const slowest: Array<{ label: string; ms: number; outcome: string }> = [];
    const byId = new Map(cases.map((c) => [c.id, c]));
    let captions = 0;
    let captionsOk = 0;
    for (const r of results) {
      const c = byId.get(r.id) as FuzzCase;
      const row = (table[c.category] ??= { cases: 0, ok: 0, named: 0, unnamed: 0, unexpected: 0, names: {} });
      row.cases++;
      row[r.outcome]++;
      if (r.name) row.names[r.name] = (row.names[r.name] ?? 0) + 1;
      const why = checkCase(c, r);
      if (why) {
        row.unexpected++;
        problems.push(`#${c.id} ${c.category} ${c.label} (${c.mime || 'no type'}): ${why}`);
      }
      if (r.caption) {
        captions++;
        if (r.caption.outcome === 'ok') captionsOk++;
        else if (r.caption.outcome !== 'named')
          problems.push(`#${c.id} ${c.label}: caption failed with unnamed ${r.caption.name}: ${r.caption.message}`);
      }
      slowest.push({ label: `${c.category}: ${c.label}`, ms: Math.round(r.ms), outcome: r.name ?? 'ok' });
    }
    slowest.sort((a, b) => b.ms - a.ms);
    // The engine's own object URLs (blob:) are how SVG reaches the <img>; anything else is a request the image made.
    const leaks = [
      ...requests.filter((u) => !u.startsWith('blob:') && (u.includes('/leak/') || !u.startsWith(server.url))),
      ...server.log.filter((l) => l.path.startsWith('/leak/')).map((l) => l.path),
    ];

    const total = Object.values(table).reduce(
      (t, r) => ({
        cases: t.cases + r.cases,
        ok: t.ok + r.ok,
        named: t.named + r.named,
        unnamed: t.unnamed + r.unnamed,
        unexpected: t.unexpected + r.unexpected,
      }),
      { cases: 0, ok: 0, named: 0, unnamed: 0, unexpected: 0 },
    );
    console.log(
      `\n[fuzz engine, Chromium] seed ${SEED}: ${total.cases} cases in ${(fuzzMs / 1000).toFixed(0)} s; ${captions} full captions (${captionsOk} ok)`,
    );
    console.log(
      ['category'.padEnd(13), 'cases'.padStart(6), 'ok'.padStart(6), 'named'.padStart(6), 'other'.padStart(6), '  errors seen'].join(''),
    );
    for (const [cat, r] of Object.entries(table)) {
      console.log(
        [
          cat.padEnd(13),
          String(r.cases).padStart(6),
          String(r.ok).padStart(6),
          String(r.named).padStart(6),
          String(r.unnamed).padStart(6),
          '  ' +
            Object.entries(r.names)
              .map(([n, k]) => `${n} ${k}`)
              .join(', '),
        ].join(''),
      );
    }
    console.log(
      [
        'total'.padEnd(13),
        String(total.cases).padStart(6),
        String(total.ok).padStart(6),
        String(total.named).padStart(6),
        String(total.unnamed).padStart(6),
      ].join(''),
    );
    console.log(
      `slowest: ${slowest
        .slice(0, 5)
        .map((s) => `${s.label} ${s.ms} ms (${s.outcome})`)
        .join('; ')}`,
    );
    if (problems.length) console.log(`problems:\n  ${problems.join('\n  ')}`);
    mkdirSync(resolve(REPO, '.tmp'), { recursive: true });
    writeFileSync(
      REPORT,
      JSON.stringify(
        {
          where: 'chromium',
          seed: SEED,
          seconds: Math.round(fuzzMs / 1000),
          decodeTimeoutMs: TIMEOUT_MS,
          total,
          table,
          fullCaptions: { tried: captions, ok: captionsOk, named: captions - captionsOk },
          svg: { scriptRan: pwned, requestsToLeakUrls: leaks },
          pageErrors,
          problems,
          slowest: slowest.slice(0, 10),
        },
        null,
        2,
      ),
    );

    expect(total.unnamed, problems.join('\n')).toBe(0);
    expect(problems).toEqual([]);
    expect(pwned, 'a hostile SVG ran script').toBeNull();
    expect(leaks, 'a hostile SVG made a request').toEqual([]);
    expect(pageErrors).toEqual([]);
    expect(captions).toBeGreaterThanOrEqual(10);
  }, 600_000);
});

/** null when the outcome keeps the case's promise; else what went wrong. */
function checkCase(c: FuzzCase, r: PageResult): string | null {
  if (r.outcome === 'unnamed') return `unnamed ${r.name}: ${r.message}`;
  if (c.expect === 'ok' && r.outcome !== 'ok') return `should decode, got ${r.name}: ${r.message}`;
  if (c.expect === 'error' && r.outcome === 'ok') return `should be refused, decoded ${r.width}×${r.height}`;
  if (r.outcome === 'ok') {
    if (c.maxPixels && r.width! * r.height! > c.maxPixels) return `decoded ${r.width}×${r.height}, over the ${c.maxPixels}-pixel cap`;
    if (c.firstFrame) {
      const d = Math.abs(r.rgb![0] - c.firstFrame[0]) + Math.abs(r.rgb![1] - c.firstFrame[1]) + Math.abs(r.rgb![2] - c.firstFrame[2]);
      if (d > 30) return `first frame should be rgb(${c.firstFrame}), got rgb(${r.rgb})`;
    }
  }
  return null;
}
