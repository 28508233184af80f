// "Describe this image" still gives a caption the model is unsure of, but says so first (en and de, through the real
// messages.json); a caption it is sure of, or one from a pack without CLIP's text tower, is announced as it is.
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { announcement, failureAnnouncement } from '../../src/content/describe';
import { CancelledError, ImageFetchError, NoPackError, PackIntegrityError } from '../../src/shared/errors';

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

describe("the describe panel says what went wrong, in the user's language first (the error registry's message)", () => {
  afterEach(() => delete g.chrome);

  it('English: no model, a model that cannot start, this image, and an error of no known name', () => {
    withLocale('en');
    const none = new NoPackError();
    expect(failureAnnouncement(none)).toBe(`No model is set up yet. ${none.message}`);
    const corrupt = new PackIntegrityError('decoder.onnx', 'a'.repeat(64), 'b'.repeat(64));
    expect(failureAnnouncement(corrupt)).toBe(`The model could not start. ${corrupt.message}`);
    expect(failureAnnouncement(new ImageFetchError('HTTP 404'))).toBe('This image could not be described. HTTP 404');
    expect(failureAnnouncement(new TypeError('x is undefined'))).toBe('This image could not be described. x is undefined');
    // A cancellation says nothing of its own; a panel still open says the description did not come.
    expect(failureAnnouncement(new CancelledError())).toMatch(/^This image could not be described\./);
  });

  it("German: what happened is in German, before the error's own words", () => {
    withLocale('de');
    expect(failureAnnouncement(new NoPackError())).toMatch(/^Noch kein Modell eingerichtet\. Open the set-up page/);
    const corrupt = new PackIntegrityError('decoder.onnx', 'a'.repeat(64), 'b'.repeat(64));
    expect(failureAnnouncement(corrupt)).toBe(`Das Modell konnte nicht gestartet werden. ${corrupt.message}`);
    expect(failureAnnouncement(new ImageFetchError('HTTP 404'))).toBe('Dieses Bild konnte nicht beschrieben werden. HTTP 404');
  });
});
