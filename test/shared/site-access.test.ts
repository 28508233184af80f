// The one place that asks the browser for access to websites: both calls name exactly the manifest's <all_urls>, and
// answer what the browser answers (Firefox leaves host permissions to the user; Chrome grants them at install).
import { afterEach, describe, expect, it, vi } from 'vitest';
import { SITE_ACCESS, hasSiteAccess, requestSiteAccess } from '../../src/shared/site-access';

function fakePermissions(granted: boolean, answer: boolean) {
  const permissions = { contains: vi.fn(async () => granted), request: vi.fn(async () => answer) };
  (globalThis as { chrome?: unknown }).chrome = { permissions };
  return permissions;
}

afterEach(() => {
  delete (globalThis as { chrome?: unknown }).chrome;
});

describe('site access', () => {
  it('is all websites, as the manifest asks', () => {
    expect(SITE_ACCESS).toEqual({ origins: ['<all_urls>'] });
  });

  it('reports what the browser has granted', async () => {
    const p = fakePermissions(false, false);
    expect(await hasSiteAccess()).toBe(false);
    fakePermissions(true, false);
    expect(await hasSiteAccess()).toBe(true);
    expect(p.contains).toHaveBeenCalledWith({ origins: ['<all_urls>'] });
    expect(p.request).not.toHaveBeenCalled();
  });

  it('asks for all websites, in the same tick (the user gesture), and answers the outcome', async () => {
    const p = fakePermissions(false, true);
    const asked = requestSiteAccess();
    expect(p.request).toHaveBeenCalledTimes(1);
    expect(p.request).toHaveBeenCalledWith({ origins: ['<all_urls>'] });
    expect(await asked).toBe(true);
    fakePermissions(false, false);
    expect(await requestSiteAccess()).toBe(false);
  });
});
