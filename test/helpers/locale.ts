/**
 * `chrome.i18n` answering from the real public/_locales/<locale>/messages.json, placeholders filled as the browser
 * does, so UI tests check the words a user reads. Call `dropLocale` after each test.
 */
import { readFileSync } from 'node:fs';

type Messages = Record<string, { message: string; placeholders?: Record<string, { content: string }> }>;

export const readMessages = (locale: string) => JSON.parse(readFileSync(`public/_locales/${locale}/messages.json`, 'utf8')) as Messages;

export function useLocale(locale: string): void {
  const messages = readMessages(locale);
  (globalThis as { chrome?: unknown }).chrome = {
    i18n: {
      getUILanguage: () => locale,
      getMessage(key: string, subs?: string | string[]) {
        const m = messages[key];
        if (!m) return '';
        const args = subs === undefined ? [] : Array.isArray(subs) ? subs : [subs];
        return m.message.replace(/\$([A-Za-z_]+)\$/g, (_, name: string) =>
          (m.placeholders?.[name.toLowerCase()]?.content ?? '').replace(/\$(\d)/g, (_x, n: string) => args[Number(n) - 1] ?? ''),
        );
      },
    },
  };
}

export function dropLocale(): void {
  delete (globalThis as { chrome?: unknown }).chrome;
}
