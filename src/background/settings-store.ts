/** Settings as the worker sees them: validated on every read; fixes (and migrations) written back at start-up. */
import browser from 'webextension-polyfill';
import { loadSettings, saveSettings, type Settings } from '../shared/settings';

export async function getSettings(): Promise<Settings> {
  return (await loadSettings(browser.storage.local)).settings;
}

export async function patchSettings(patch: Partial<Settings>): Promise<Settings> {
  return (await saveSettings(browser.storage.local, patch)).settings;
}

export function registerSettings(): void {
  const repair = async () => {
    const { settings, fixes } = await loadSettings(browser.storage.local);
    if (fixes.length > 0) {
      console.info('[alt-text] settings repaired:', fixes.join('; '));
      await browser.storage.local.set({ settings });
    }
  };
  browser.runtime.onInstalled.addListener(() => void repair());
  browser.runtime.onStartup.addListener(() => void repair());
}
