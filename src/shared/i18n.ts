import browser from 'webextension-polyfill';

// `browser.i18n?.`: Node unit tests run this with no fake i18n (test/helpers/browser-global.ts answers undefined).
/** Localised UI text: `data-i18n="key"` sets textContent, `data-i18n-attr="attr:key,…"` sets attributes. */
export function msg(key: string, subs?: string | string[]): string {
  return browser.i18n?.getMessage(key, subs) || key;
}

export function localize(root: ParentNode = document): void {
  for (const el of root.querySelectorAll<HTMLElement>('[data-i18n]')) el.textContent = msg(el.dataset.i18n!);
  for (const el of root.querySelectorAll<HTMLElement>('[data-i18n-attr]')) {
    for (const pair of el.dataset.i18nAttr!.split(',')) {
      const [attr, key] = pair.split(':');
      el.setAttribute(attr.trim(), msg(key.trim()));
    }
  }
  if (browser.i18n) document.documentElement.lang = browser.i18n.getUILanguage();
}
