// Access to the pages the user visits, which the content script needs to find and label images. Chrome grants the
// manifest's host permissions at install (the user may withhold them later); Firefox's MV3 treats them as optional, so
// until the user grants them nothing is labelled. Pages ask the browser what it granted, never which browser it is.
import browser, { type Permissions } from 'webextension-polyfill';

export const SITE_ACCESS: Permissions.Permissions = { origins: ['<all_urls>'] };

export function hasSiteAccess(): Promise<boolean> {
  return browser.permissions.contains(SITE_ACCESS);
}

/**
 * Asks the user. Browsers honour this only inside a user gesture: call it first thing in a click handler, with no
 * await before it (both browsers reject the request otherwise).
 */
export function requestSiteAccess(): Promise<boolean> {
  return browser.permissions.request(SITE_ACCESS);
}
