// The model manager (options page and popup) says whether an installed model checks its captions against the picture
// (its pack carries CLIP's text tower), so a user can find the set-up page's choice again. Messages from the real
// en/de messages.json.
import { readFileSync } from 'node:fs';
import { afterEach, expect, it } from 'vitest';
import { checkingText } from '../../src/options/model-manager';
import type { InstallState } from '../../src/shared/messages';

type Messages = Record<string, { message: string }>;

function useLocale(locale: string) {
  const messages = JSON.parse(readFileSync(`public/_locales/${locale}/messages.json`, 'utf8')) as Messages;
  (globalThis as { chrome?: unknown }).chrome = {
    i18n: { getUILanguage: () => locale, getMessage: (key: string) => messages[key]?.message ?? '' },
  };
}

afterEach(() => {
  delete (globalThis as { chrome?: unknown }).chrome;
});

const ready = (extra: Partial<InstallState>): InstallState => ({
  id: 'clipcap-coco',
  phase: 'ready',
  bytes: 0,
  total: 0,
  rate: 0,
  etaSeconds: null,
  error: null,
  storeId: 'clipcap-coco@1',
  needsFiles: [],
  ...extra,
});

it('says "Caption checking: on/off" from the installed pack, and nothing where the state does not say', () => {
  useLocale('en');
  expect(checkingText(ready({ text: true, readyText: true }))).toBe('Caption checking: on.');
  // a job that asked for it but has not finished: the pack in use does not check yet
  expect(checkingText(ready({ text: true, readyText: false }))).toBe('Caption checking: off.');
  expect(checkingText(ready({}))).toBe('');
  useLocale('de');
  expect(checkingText(ready({ readyText: true }))).toBe('Abgleich mit dem Bild: an.');
});
