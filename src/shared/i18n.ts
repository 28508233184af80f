/** Localised UI text: `data-i18n="key"` sets textContent, `data-i18n-attr="attr:key,…"` sets attributes. */
export function msg(key: string, subs?: string | string[]): string {
  return (typeof chrome !== 'undefined' && chrome.i18n?.getMessage(key, subs)) || key;
}

export function localize(root: ParentNode = document): void {
  for (const el of root.querySelectorAll<HTMLElement>('[data-i18n]')) el.textContent = msg(el.dataset.i18n!);
  for (const el of root.querySelectorAll<HTMLElement>('[data-i18n-attr]')) {
    for (const pair of el.dataset.i18nAttr!.split(',')) {
      const [attr, key] = pair.split(':');
      el.setAttribute(attr.trim(), msg(key.trim()));
    }
  }
  if (typeof chrome !== 'undefined' && chrome.i18n) document.documentElement.lang = chrome.i18n.getUILanguage();
}
