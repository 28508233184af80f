// "Describe this image" still gives a caption the model is unsure of, but says so first (en and de, through the real
// messages.json); a caption it is sure of, or one from a pack without CLIP's text tower, is announced as it is.
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { announcement } from '../../src/content/describe';

type Messages = Record<string, { message: string }>;
const g = globalThis as { chrome?: unknown };
const withLocale = (locale: string) => {
  const messages = JSON.parse(readFileSync(`public/_locales/${locale}/messages.json`, 'utf8')) as Messages;
  g.chrome = { i18n: { getMessage: (key: string) => messages[key]?.message ?? '' } };
};

describe('the describe panel announces an unsure caption as unsure', () => {
  afterEach(() => delete g.chrome);
  const text = 'A red circle on a white background.';

  it('English: "Not sure, may be wrong:" first, then the caption', () => {
    withLocale('en');
    expect(announcement({ text, uncertain: true })).toBe('Not sure, may be wrong: A red circle on a white background.');
    expect(announcement({ text, uncertain: false })).toBe(text);
    expect(announcement({ text })).toBe(text);
  });

  it('German: the same, in German', () => {
    withLocale('de');
    expect(announcement({ text, uncertain: true })).toBe(`Unsicher, vielleicht falsch: ${text}`);
    expect(announcement({ text, uncertain: false })).toBe(text);
  });

  it('the words before the caption stay short (a screen reader reads them before every unsure caption)', () => {
    for (const locale of ['en', 'de']) {
      withLocale(locale);
      expect(announcement({ text: '', uncertain: true }).trim().split(/\s+/).length, locale).toBeLessThanOrEqual(5);
    }
  });
});
