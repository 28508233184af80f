/** How many labels each tab's frames added; kept in session storage so a worker restart keeps the numbers. */
import browser from 'webextension-polyfill';

const KEY = 'labelCounts';
type Counts = Record<string, Record<string, number>>;

async function read(): Promise<Counts> {
  return ((await browser.storage.session.get(KEY))[KEY] as Counts | undefined) ?? {};
}

export async function setFrameCount(tabId: number, frameId: number, count: number): Promise<void> {
  const all = await read();
  // A new top-level document starts the tab afresh.
  const frames = frameId === 0 && count === 0 ? {} : (all[tabId] ?? {});
  frames[frameId] = count;
  all[tabId] = frames;
  await browser.storage.session.set({ [KEY]: all });
}

export async function tabCount(tabId: number): Promise<number> {
  const frames = (await read())[tabId] ?? {};
  return Object.values(frames).reduce((a, b) => a + b, 0);
}

export function registerLabelCounts(): void {
  browser.tabs.onRemoved.addListener((tabId) => {
    void read().then((all) => {
      delete all[tabId];
      return browser.storage.session.set({ [KEY]: all });
    });
  });
}
