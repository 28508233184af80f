// The "allow on all websites" part of the set-up page and the popup, on plain objects for its elements and a fake
// browser.permissions: shown only while access is missing, asked for inside the click itself, the outcome said in the
// live region (and the focus moved there when the button hides), and changes made elsewhere followed. Then the two
// pages' HTML: the part starts hidden (Chrome grants access, so nothing shows there), and the live region stays
// outside it, where a screen reader still hears it.
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { showSiteAccess } from '../../src/onboarding/site-access-view';
import { event } from '../helpers/chrome-fake';

type Messages = Record<string, { message: string }>;
const EN = JSON.parse(readFileSync('public/_locales/en/messages.json', 'utf8')) as Messages;

function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

/** A fake browser with `granted` access; each request waits for the test to answer it. */
function fakeBrowser(granted: boolean, { events = true } = {}) {
  const state = { granted, requests: [] as { perms: unknown; answer: ReturnType<typeof deferred<boolean>> }[] };
  const onAdded = event();
  const onRemoved = event();
  const permissions = {
    contains: vi.fn(async () => state.granted),
    request: vi.fn((perms: unknown) => {
      const answer = deferred<boolean>();
      state.requests.push({ perms, answer });
      return answer.promise;
    }),
    ...(events ? { onAdded, onRemoved } : {}),
  };
  (globalThis as { chrome?: unknown }).chrome = {
    permissions,
    i18n: { getMessage: (key: string) => EN[key]?.message ?? '' },
  };
  return { state, permissions, onAdded, onRemoved };
}

/** The elements, as plain objects; `said` is every text the live region was given, in order. */
function fakeParts() {
  const clicks: (() => void)[] = [];
  const said: string[] = [];
  let text = '';
  const parts = {
    section: { hidden: true },
    button: { addEventListener: (_type: 'click', l: () => void) => void clicks.push(l) },
    status: {
      get textContent() {
        return text;
      },
      set textContent(v: string | null) {
        text = v ?? '';
        said.push(text);
      },
      focus: vi.fn(),
    },
  };
  return { parts, said, click: () => clicks.forEach((l) => l()) };
}

const settle = () => new Promise((r) => setTimeout(r, 0));

afterEach(() => {
  delete (globalThis as { chrome?: unknown }).chrome;
});

describe('site access part', () => {
  it('stays hidden and silent where access is granted (Chrome), and asks nothing', async () => {
    const b = fakeBrowser(true);
    const { parts, said } = fakeParts();
    await showSiteAccess(parts);
    expect(parts.section.hidden).toBe(true);
    expect(said).toEqual([]);
    expect(b.permissions.request).not.toHaveBeenCalled();
  });

  it('shows where access is missing; the click asks at once, and a grant hides it, says so, and takes the focus', async () => {
    const b = fakeBrowser(false);
    const { parts, said, click } = fakeParts();
    await showSiteAccess(parts);
    expect(parts.section.hidden).toBe(false);
    expect(said).toEqual([]);

    click();
    // Still inside the click, before any await: the browser only asks during the user's gesture.
    expect(b.permissions.request).toHaveBeenCalledTimes(1);
    expect(b.state.requests[0].perms).toEqual({ origins: ['<all_urls>'] });

    b.state.granted = true;
    b.state.requests[0].answer.resolve(true);
    await settle();
    expect(parts.section.hidden).toBe(true);
    expect(said).toEqual([EN.siteAccessGranted.message]);
    expect(parts.status.focus).toHaveBeenCalledTimes(1);
  });

  it('says that nothing is labelled when the user refuses, and keeps the button', async () => {
    const b = fakeBrowser(false);
    const { parts, said, click } = fakeParts();
    await showSiteAccess(parts);
    click();
    b.state.requests[0].answer.resolve(false);
    await settle();
    expect(parts.section.hidden).toBe(false);
    expect(said).toEqual([EN.siteAccessDenied.message]);
    expect(said[0]).toMatch(/nothing is labelled/);
    expect(parts.status.focus).not.toHaveBeenCalled();
  });

  it('says what went wrong when the browser refuses to ask', async () => {
    const b = fakeBrowser(false);
    const { parts, said, click } = fakeParts();
    await showSiteAccess(parts);
    click();
    b.state.requests[0].answer.reject(new Error('permissions.request may only be called from a user input handler'));
    await settle();
    expect(parts.section.hidden).toBe(false);
    expect(said).toEqual(['permissions.request may only be called from a user input handler']);
  });

  it('follows access granted or withdrawn elsewhere, and says so', async () => {
    const b = fakeBrowser(false);
    const { parts, said } = fakeParts();
    await showSiteAccess(parts);

    b.state.granted = true;
    b.onAdded.fire({ origins: ['<all_urls>'] });
    await settle();
    expect(parts.section.hidden).toBe(true);
    expect(said).toEqual([EN.siteAccessGranted.message]);

    b.state.granted = false;
    b.onRemoved.fire({ origins: ['<all_urls>'] });
    await settle();
    expect(parts.section.hidden).toBe(false);
    expect(said).toEqual([EN.siteAccessGranted.message, EN.siteAccessDenied.message]);
    // Following is not asking.
    expect(b.permissions.request).not.toHaveBeenCalled();
  });

  it('tells the page each answer (the set-up page asks again from its Download click while access is missing)', async () => {
    const b = fakeBrowser(false);
    const { parts, click } = fakeParts();
    const known: boolean[] = [];
    await showSiteAccess({ ...parts, onKnown: (g) => known.push(g) });
    expect(known).toEqual([false]);
    click();
    b.state.granted = true;
    b.state.requests[0].answer.resolve(true);
    await settle();
    b.state.granted = false;
    b.onRemoved.fire({ origins: ['<all_urls>'] });
    await settle();
    expect(known).toEqual([false, true, false]);
  });

  it('announces a grant once when the browser reports it (onAdded) before the request answers, as it may', async () => {
    const b = fakeBrowser(false);
    const { parts, said, click } = fakeParts();
    await showSiteAccess(parts);
    click();
    b.state.granted = true;
    b.onAdded.fire({ origins: ['<all_urls>'] });
    await settle();
    b.state.requests[0].answer.resolve(true);
    await settle();
    expect(parts.section.hidden).toBe(true);
    expect(said).toEqual([EN.siteAccessGranted.message]);
  });

  it('works where the browser has no permission events', async () => {
    const b = fakeBrowser(false, { events: false });
    const { parts, said, click } = fakeParts();
    await showSiteAccess(parts);
    expect(parts.section.hidden).toBe(false);
    click();
    b.state.requests[0].answer.resolve(true);
    await settle();
    expect(parts.section.hidden).toBe(true);
    expect(said).toEqual([EN.siteAccessGranted.message]);
  });
});

describe.each(['src/onboarding/index.html', 'src/popup/index.html'])('%s', (path) => {
  const html = readFileSync(path, 'utf8');
  const start = html.indexOf('<section id="access"');
  const end = html.indexOf('</section>', start);
  const section = html.slice(start, end);

  it('has the part: hidden at first, a heading, and a real button, all in en/messages.json', () => {
    expect(start).toBeGreaterThan(-1);
    expect(html.slice(start, html.indexOf('>', start))).toMatch(/\baria-labelledby="access-h"[^>]*\bhidden\b/);
    expect(section).toMatch(/<h2 id="access-h" data-i18n="siteAccessHeading">/);
    expect(section).toMatch(/<button id="allow" type="button"[^>]* data-i18n="siteAccessAllow">/);
    for (const [, key] of section.matchAll(/data-i18n="(\w+)"/g)) expect(EN[key], key).toBeDefined();
  });

  it('keeps the live region outside the part, so it is heard after the part hides', () => {
    const status = html.indexOf('<p id="access-status" role="status" aria-live="polite" tabindex="-1">');
    expect(status).toBeGreaterThan(end);
  });
});

it('the popup says it first, before the model status', () => {
  const html = readFileSync('src/popup/index.html', 'utf8');
  const access = html.indexOf('<section id="access"');
  expect(access).toBeGreaterThan(html.indexOf('<h1'));
  expect(access).toBeLessThan(html.indexOf('<section aria-labelledby="status-h">'));
  expect(html.slice(access, html.indexOf('</section>', access))).toContain('data-i18n="popupSiteAccessMissing"');
});
