// The "allow on all websites" part of the set-up page and the popup: shown only while the browser has not granted
// access to websites (in Firefox until the user allows it; in Chrome only if the user withheld it), a button that
// asks, and the outcome in a live region that stays in the page when the part hides.
import browser from 'webextension-polyfill';
import { msg } from '../shared/i18n';
import { hasSiteAccess, requestSiteAccess } from '../shared/site-access';

/** The elements it drives: only what it uses, so Node tests can pass plain objects. */
export interface SiteAccessParts {
  /** Hidden while access is granted. */
  section: { hidden: boolean };
  /** A real <button> inside `section`. */
  button: { addEventListener(type: 'click', listener: () => void): void };
  /** role=status, outside `section` (a hidden live region says nothing), tabindex=-1 to take the focus. */
  status: { textContent: string | null; focus(): void };
  /** Told what the browser says each time it is asked: a page may act on it in its own click handlers. */
  onKnown?(granted: boolean): void;
}

const errorText = (err: unknown) => (err instanceof Error ? err.message : String(err));

/** Wires the parts; resolves once the section shows the current state. Never rejects: errors go to the status. */
export async function showSiteAccess(parts: SiteAccessParts): Promise<void> {
  let granted: boolean | null = null;
  /** Bumped by every answer, so an older check that resolves late cannot undo a newer one. */
  let latest = 0;
  /** While the user's request is open, its answer is the one to announce (onAdded may fire before it). */
  let asking = false;
  const say = (key: 'siteAccessGranted' | 'siteAccessDenied') => (parts.status.textContent = msg(key));
  const fail = (err: unknown) => (parts.status.textContent = errorText(err));

  parts.button.addEventListener('click', () => {
    // First thing in the handler, before any await: outside the user's gesture the browser refuses to ask.
    const asked = requestSiteAccess();
    asking = true;
    latest += 1;
    asked.then(
      (ok) => {
        asking = false;
        latest += 1;
        granted = ok;
        parts.onKnown?.(ok);
        parts.section.hidden = ok;
        say(ok ? 'siteAccessGranted' : 'siteAccessDenied');
        // The focused button just hid with its section: keep keyboard and screen-reader users at the outcome.
        if (ok) parts.status.focus();
      },
      (err: unknown) => {
        asking = false;
        fail(err);
      },
    );
  });

  const check = async () => {
    const mine = (latest += 1);
    let now: boolean;
    try {
      now = await hasSiteAccess();
    } catch (err) {
      fail(err);
      return;
    }
    if (mine !== latest) return;
    const changed = granted !== null && granted !== now;
    granted = now;
    parts.onKnown?.(now);
    parts.section.hidden = now;
    // Granted or withdrawn elsewhere (another page, the browser's settings for the extension): say so.
    if (changed && !asking) say(now ? 'siteAccessGranted' : 'siteAccessDenied');
  };
  browser.permissions.onAdded?.addListener(() => void check());
  browser.permissions.onRemoved?.addListener(() => void check());
  await check();
}
