/** A new user with no model gets the set-up page in a tab, once, right after installing the extension. */
import browser from 'webextension-polyfill';
import { activeModel } from '../shared/settings';
import { getSettings } from './settings-store';

export const ONBOARDING_PATH = 'src/onboarding/index.html';

async function openOnboarding(): Promise<void> {
  await browser.tabs.create({ url: browser.runtime.getURL(ONBOARDING_PATH) });
}

export async function onInstalled(details: { reason: string }): Promise<boolean> {
  if (details.reason !== 'install') return false;
  // A build that preconfigures a pack address already works: nothing to set up.
  if (activeModel(await getSettings())) return false;
  await openOnboarding();
  return true;
}

export function registerOnboarding(): void {
  browser.runtime.onInstalled.addListener(
    (details) => void onInstalled(details).catch((err: unknown) => console.warn('[alt-text] onboarding:', err)),
  );
}
