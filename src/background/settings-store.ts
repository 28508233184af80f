/** Settings as the worker sees them: validated on every read; fixes (and migrations) written back at start-up. */
import { loadSettings, saveSettings, type Settings } from '../shared/settings';

export async function getSettings(): Promise<Settings> {
  return (await loadSettings(chrome.storage.local)).settings;
}

export async function patchSettings(patch: Partial<Settings>): Promise<Settings> {
  return (await saveSettings(chrome.storage.local, patch)).settings;
}

export function registerSettings(): void {
  const repair = async () => {
    const { settings, fixes } = await loadSettings(chrome.storage.local);
    if (fixes.length > 0) {
      console.info('[alt-text] settings repaired:', fixes.join('; '));
      await chrome.storage.local.set({ settings });
    }
  };
  chrome.runtime.onInstalled.addListener(() => void repair());
  chrome.runtime.onStartup.addListener(() => void repair());
}
