/** Fixtures of the worker's install tests: the set-up page as a message's sender, and a catalogue model as the worker
 * lists it to the pages. */
import type { CatalogueModel } from '../../src/shared/messages';

export const setupPage = {
  id: 'fake-ext-id',
  url: 'chrome-extension://fake-ext-id/src/onboarding/index.html',
  tab: { id: 5 } as chrome.tabs.Tab,
  frameId: 0,
};

export const COCO: CatalogueModel = {
  id: 'clipcap-coco',
  name: 'ClipCap COCO',
  description: 'Everyday scenes.',
  downloadBytes: 290e6,
  diskBytes: 480e6,
  default: true,
  userFiles: [],
};
