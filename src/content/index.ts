// The content script only wires: describe is always available (the user asks for it); auto-alt runs while it is
// switched on for this site, and is torn down (every label removed) when it is switched off.
import browser from 'webextension-polyfill';
import { SETTINGS_KEY, isEnabledFor, validate, type Settings } from '../shared/settings';
import * as autoAlt from './auto-alt';
import * as describe from './describe';
import { logOnce } from './log';
import { contextAlive } from './messaging';

/** The site whose switch applies: the top-level page's host, also inside iframes. */
function siteHost(): string {
  const ancestors = location.ancestorOrigins;
  const top = ancestors && ancestors.length > 0 ? ancestors[ancestors.length - 1] : location.origin;
  try {
    return new URL(top).hostname;
  } catch {
    return location.hostname;
  }
}

function marker(s: Settings): string {
  return s.marker || browser.i18n.getMessage('labelMarker') || 'Appears to be: ';
}

function main(): void {
  const lifetime = new AbortController();
  describe.init(lifetime.signal);

  let running: AbortController | null = null;
  let runningConfig = '';
  const apply = (s: Settings) => {
    const on = isEnabledFor(s, siteHost());
    const config = on
      ? JSON.stringify([
          marker(s),
          s.weakNamesCountAsMissing,
          s.skipUncertain,
          s.model,
          s.installing,
          s.strategy,
          s.beams,
          s.maxTokens,
          s.rerankWeight,
          s.packSources,
        ])
      : '';
    if (config === runningConfig) return;
    running?.abort();
    running = null;
    runningConfig = config;
    if (on) {
      running = new AbortController();
      autoAlt.init(running.signal, {
        marker: marker(s),
        weakNamesCountAsMissing: s.weakNamesCountAsMissing,
        skipUncertain: s.skipUncertain,
      });
    }
  };
  const load = () =>
    browser.storage.local.get(SETTINGS_KEY).then(
      (got) => apply(validate(got[SETTINGS_KEY]).settings),
      (err: unknown) => logOnce('warn', 'settings', 'could not read settings:', err),
    );
  browser.storage.onChanged.addListener((changes, area) => {
    if (!contextAlive()) {
      running?.abort();
      lifetime.abort();
      return;
    }
    if (area === 'local' && SETTINGS_KEY in changes) apply(validate(changes[SETTINGS_KEY].newValue).settings);
  });
  void load();
}

try {
  main();
} catch (err) {
  // Never break the page.
  logOnce('warn', 'init', 'could not start:', err);
}
