/**
 * How many labels each tab's frames added, and how many images they left unlabelled because the model was unsure;
 * kept in session storage so a worker restart keeps the numbers.
 */
import browser from 'webextension-polyfill';

const KEY = 'labelCounts';
/** Images left without a label because CLIP judged the caption unsure, per tab and frame, like the labels. */
const UNSURE_KEY = 'unsureCounts';
type Counts = Record<string, Record<string, number>>;

async function read(): Promise<{ labels: Counts; unsure: Counts }> {
  const got = await browser.storage.session.get([KEY, UNSURE_KEY]);
  return { labels: (got[KEY] as Counts | undefined) ?? {}, unsure: (got[UNSURE_KEY] as Counts | undefined) ?? {} };
}

/**
 * Each change is a read and a write of session storage, and reports come in together (one per label, and from every
 * frame): two interleaved would lose one, so changes run one after another (one worker, one chain).
 */
let changes: Promise<unknown> = Promise.resolve();
function inTurn(change: () => Promise<void>): Promise<void> {
  const done = changes.then(change);
  changes = done.catch(() => undefined);
  return done;
}

export function setFrameCount(tabId: number, frameId: number, count: number, unsure = 0): Promise<void> {
  return inTurn(() => writeFrameCount(tabId, frameId, count, unsure));
}

async function writeFrameCount(tabId: number, frameId: number, count: number, unsure: number): Promise<void> {
  const all = await read();
  // A new top-level document starts the tab afresh.
  const fresh = frameId === 0 && count === 0 && unsure === 0;
  for (const [counts, n] of [
    [all.labels, count],
    [all.unsure, unsure],
  ] as const) {
    const frames = fresh ? {} : (counts[tabId] ?? {});
    frames[frameId] = n;
    counts[tabId] = frames;
  }
  await browser.storage.session.set({ [KEY]: all.labels, [UNSURE_KEY]: all.unsure });
}

const sum = (frames: Record<string, number> | undefined) => Object.values(frames ?? {}).reduce((a, b) => a + b, 0);

export async function tabCount(tabId: number): Promise<{ count: number; unsure: number }> {
  const all = await read();
  return { count: sum(all.labels[tabId]), unsure: sum(all.unsure[tabId]) };
}

export function registerLabelCounts(): void {
  browser.tabs.onRemoved.addListener((tabId) => {
    void inTurn(async () => {
      const all = await read();
      delete all.labels[tabId];
      delete all.unsure[tabId];
      await browser.storage.session.set({ [KEY]: all.labels, [UNSURE_KEY]: all.unsure });
    });
  });
}
