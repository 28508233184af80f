// The accessibility tree as the judge. Each page is read twice through Chrome's own accessibility tree (over CDP, as a
// screen reader reads it): in a plain Chromium without the extension, and with it once its labels are on. From the
// plain tree comes the set of images that must be labelled: whatever Chrome exposes as an image (or an image button)
// with no name, only its default name ("Submit") or a weak one (a file name, "image") that is not an aria-label or
// aria-labelledby, less the few a documented non-name rule leaves alone. Each of those must then be named with our
// marker and its picture's true caption; every other element's role and name must be exactly what they were.
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isWeakName } from '../../src/content/weak-names';
import { axByAttribute, type AxNode, type RawAxNodeView } from './ax';
import { MARKER, env, launch, type Ext } from './env';
import { TMP, sameCaption, toyHeldout, waitFor } from './harness.mjs';

interface AxPage {
  name: string;
  path: string;
  /** The attribute that identifies each element of interest. */
  key: string;
  /** Elements Chrome exposes as unnamed images that we leave alone, each with the documented rule. */
  leftAlone: Record<string, string>;
}

const PAGES: AxPage[] = [
  {
    name: 'names',
    path: '/fixtures/names.html',
    key: 'data-test',
    leftAlone: {
      'n-alt-empty-title': 'alt="" is the author saying "decorative" (Chrome keeps a titled image in the tree, unnamed)',
      'n-inside-role-img': 'the role=img container around it is what gets the name',
      'n-svg-vector': 'a role=img with no raster image: nothing to caption',
      'n-tiny': 'rendered smaller than 16×16',
    },
  },
  { name: 'demo (gallery)', path: '/fixtures/gallery.html?n=18', key: 'data-test', leftAlone: {} },
  {
    name: 'hostile: spoofing',
    path: '/hostile/spoof.html',
    key: 'data-test',
    leftAlone: {
      'secret-img': 'a URL that is not an image (it does not load as one)',
      'secret-input': 'a URL that is not an image (the page does not show it as one)',
      'secret-bg': 'a URL that is not an image (the page does not show it as one)',
      'file-img': 'a file: URL (not an allowed scheme; it does not load either)',
      'ext-img': 'a chrome-extension: URL (not an allowed scheme; it does not load either)',
    },
  },
  { name: 'hostile: injection', path: '/hostile/inject.html', key: 'data-test', leftAlone: {} },
  { name: 'hostile: many images', path: '/hostile/load.html?n=48&eager=48', key: 'data-k', leftAlone: {} },
];

/** The true caption of an element's picture: its data-file, or the held-out file its src names. */
const captions = new Map(toyHeldout().map((h) => [h.file, h.caption]));
function truthOf(n: AxNode): string | undefined {
  const file = n.attrs['data-file'] ?? /\/heldout\/([^?#]+)/.exec(n.attrs.src ?? '')?.[1];
  return file === undefined ? undefined : captions.get(file);
}

const imageLike = (n: AxNode) => n.role === 'image' || (n.role === 'button' && n.attrs.type?.toLowerCase() === 'image');
const fromAria = (n: AxNode) => n.nameFrom === 'aria-label' || n.nameFrom === 'aria-labelledby';

/** What the plain tree says must be labelled. */
function mustLabel(n: AxNode): boolean {
  if (n.ignored || !imageLike(n)) return false;
  const name = n.name.trim();
  return name === '' || n.nameFrom === 'type' || (!fromAria(n) && isWeakName(name));
}

const shown = (n: AxNode | undefined) => (n ? `${n.ignored ? 'ignored ' : ''}${n.role} "${n.name}"` : 'absent');
const onlyImageish = (v: RawAxNodeView) => v.role === 'image' || v.role === 'button';

/** Read the page's tree once nothing more is loading: every element of interest, by its key. */
async function readTree(page: Page, p: AxPage): Promise<Map<string, AxNode>> {
  return axByAttribute(page, p.key, { frames: [page.mainFrame()] });
}

/** Evaluate in the content script's isolated world (test builds expose altTextContentTest there). */
async function contentStats(page: Page): Promise<() => Promise<{ dirty: number; queue: { pending: number } } | undefined>> {
  const cdp = await page.context().newCDPSession(page);
  const contexts: { id: number; auxData?: { type?: string } }[] = [];
  cdp.on('Runtime.executionContextCreated', (e) => contexts.push(e.context));
  await cdp.send('Runtime.enable');
  return async () => {
    for (const c of contexts.filter((x) => x.auxData?.type === 'isolated')) {
      const r = await cdp
        .send('Runtime.evaluate', {
          contextId: c.id,
          expression: 'globalThis.altTextContentTest?.stats()',
          returnByValue: true,
        })
        .catch(() => null);
      if (r?.result?.value !== undefined) return r.result.value as { dirty: number; queue: { pending: number } };
    }
    return undefined;
  };
}

describe('the accessibility tree as the judge', () => {
  const plain = new Map<string, Map<string, AxNode>>();
  let browser: Browser;
  let ext: Ext;
  const tmp = join(TMP, 'ax-names-plain');

  beforeAll(async () => {
    // Without the extension: the page as its author wrote it, read with the same helper.
    mkdirSync(tmp, { recursive: true });
    browser = await chromium.launch({
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      headless: true,
      env: { ...process.env, TMPDIR: tmp },
      args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--lang=en-US'],
    });
    for (const p of PAGES) {
      const page = await browser.newPage({ viewport: { width: 1100, height: 800 } });
      await page.goto(`${env.origin}${p.path}`, { waitUntil: 'load' });
      plain.set(p.name, await readTree(page, p));
      await page.close();
    }
    await browser.close();
    ext = await launch({ name: 'ax-names' });
  });

  afterAll(async () => {
    await browser?.close();
    await ext?.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('the names page: what Chrome says needs a name is what the fixture expects to be labelled', () => {
    const tree = plain.get('names')!;
    const must = [...tree].filter(([id, n]) => mustLabel(n) && !PAGES[0].leftAlone[id]).map(([id]) => id);
    const expected = Object.keys(env.expected).filter((id) => id.startsWith('n-'));
    expect(must.sort()).toEqual(expected.sort());
    // ...and every documented exception really is one Chrome exposes unnamed.
    for (const id of Object.keys(PAGES[0].leftAlone)) expect(mustLabel(tree.get(id)!), `${id}: ${shown(tree.get(id))}`).toBe(true);
  });

  for (const p of PAGES) {
    it(`${p.name}: the images Chrome exposes unnamed get our caption; everything else is exactly as without the extension`, async () => {
      const before = plain.get(p.name)!;
      expect(before.size, 'elements found in the plain tree').toBeGreaterThan(0);
      const must = new Set([...before].filter(([id, n]) => mustLabel(n) && !p.leftAlone[id]).map(([id]) => id));
      expect(must.size).toBeGreaterThan(0);
      const page = await ext.context.newPage();
      const stats = await contentStats(page);
      await page.goto(`${env.origin}${p.path}`, { waitUntil: 'load' });
      // Wait for every label Chrome says is needed, then for the content script to have nothing left to look at.
      const missing = async () => {
        const now = await axByAttribute(page, p.key, { frames: [page.mainFrame()], where: onlyImageish });
        return [...must].filter((id) => !now.get(id)?.name.startsWith(MARKER) || now.get(id)?.name === before.get(id)?.name);
      };
      await expect.poll(missing, { timeout: 150_000, interval: 1000 }).toEqual([]);
      await waitFor(
        async () => {
          const s = await stats();
          return s !== undefined && s.dirty === 0 && s.queue.pending === 0;
        },
        { timeout: 30_000, what: 'the content script to settle' },
      );
      const after = await readTree(page, p);
      const problems: string[] = [];
      for (const [id, b] of before) {
        const a = after.get(id);
        if (must.has(id)) {
          const caption = a?.name.slice(MARKER.length);
          const truth = truthOf(b);
          if (!a?.name.startsWith(MARKER) || truth === undefined || !sameCaption(caption, truth) || a.role !== b.role)
            problems.push(`${id}: ${shown(a)}, want ${b.role} "${MARKER}${truth}"`);
        } else if (!a || a.role !== b.role || a.name !== b.name || a.ignored !== b.ignored) {
          problems.push(`${id}: ${shown(b)} without the extension, ${shown(a)} with it`);
        }
      }
      console.info(`ax ${p.name}: ${must.size} labelled, ${before.size - must.size} unchanged`);
      expect(problems).toEqual([]);
      await page.close();
    });
  }
});
