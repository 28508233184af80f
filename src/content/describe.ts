/**
 * "Describe this image", on request: from the context menu (the right-clicked image) or the keyboard command (the
 * focused or hovered image). It works on images that already have a name too, because the user asked.
 */
import browser, { type Runtime } from 'webextension-polyfill';
import { messageKeyOf } from '../shared/errors';
import { PRIORITY, addMessageListener, makeListener, newRequestId, type Caption, type ModelStatus } from '../shared/messages';
import { CANDIDATE_SELECTOR, OWN_UI_ATTR, backgroundUrl } from './eligibility';
import { request } from './messaging';
import { deepActiveElement, openPanel, openPanelSays } from './panel';
import { loadedImageSrc, toImageSource } from './safe-source';

// `?.`: unit tests run this with no fake i18n.
const t = (key: string, fallback: string, sub?: string) => browser.i18n?.getMessage(key, sub) || fallback;

function imageFrom(path: EventTarget[]): Element | null {
  for (const n of path) {
    if (n instanceof Element && n.matches(CANDIDATE_SELECTOR)) return n;
    if (n instanceof Element && n.hasAttribute(OWN_UI_ATTR)) return null;
  }
  return null;
}

function srcOf(el: Element): string | null {
  if (el instanceof HTMLImageElement) return el.currentSrc || el.src || null;
  if (el instanceof HTMLInputElement) return el.src || null;
  const inner = el.querySelector('img');
  if (inner) return inner.currentSrc || inner.src;
  return backgroundUrl(el);
}

/** The element's picture, and whether the page has already shown it as a loaded <img> (then it is not re-checked). */
function pictureOf(el: Element): { src: string; verified: boolean } | null {
  const img = el instanceof HTMLImageElement ? el : el instanceof HTMLInputElement ? null : el.querySelector('img');
  const loaded = img ? loadedImageSrc(img) : null;
  if (loaded) return { src: loaded, verified: true };
  const src = srcOf(el);
  return src ? { src, verified: false } : null;
}

/**
 * What the panel announces for a caption. One the model is unsure of (CLIP scored it below the pack's threshold) is
 * still given, since the user asked, but says so first: a screen reader reads the doubt before the words.
 */
export function announcement(res: Pick<Caption, 'text' | 'uncertain'>): string {
  return res.uncertain === true ? `${t('panelUnsure', 'Not sure, may be wrong:')} ${res.text}` : res.text;
}

/**
 * What the panel says when a description failed: what happened, in the user's language (the error registry's message
 * for it: no model set up, the model could not start, or this image), then the error's own words on what to do.
 */
export function failureAnnouncement(err: unknown): string {
  const key = messageKeyOf(err, 'panelFailed') ?? 'panelFailed';
  return `${t(key, 'This image could not be described.')} ${err instanceof Error ? err.message : ''}`.trim();
}

function statusText(s: ModelStatus): string {
  if (s.state === 'downloading' && s.progress && s.progress.total > 0) {
    const pct = String(Math.floor((100 * s.progress.done) / s.progress.total));
    return t('statusDownloadingPct', `Downloading the model… ${pct}%`, pct);
  }
  if (s.state === 'downloading' || s.state === 'loading') return t('statusLoading', 'Starting the model…');
  return t('panelWorking', 'Describing the image…');
}

export function init(signal: AbortSignal): void {
  let contextTarget: Element | null = null;
  let hovered: Element | null = null;
  // Only what the user did: events the page dispatches itself (isTrusted false) can't pick the image.
  document.addEventListener('contextmenu', (e) => e.isTrusted && (contextTarget = imageFrom(e.composedPath())), { capture: true, signal });
  document.addEventListener('pointerover', (e) => e.isTrusted && (hovered = imageFrom(e.composedPath())), { capture: true, signal });

  const pick = (via: 'menu' | 'command', srcUrl?: string): Element | null => {
    if (via === 'menu') {
      if (contextTarget && (!srcUrl || srcOf(contextTarget) === srcUrl)) return contextTarget;
      if (srcUrl) return [...document.querySelectorAll(CANDIDATE_SELECTOR)].find((el) => srcOf(el) === srcUrl) ?? null;
      return null;
    }
    const active = deepActiveElement();
    if (active) {
      const own = active.matches(CANDIDATE_SELECTOR) ? active : active.querySelector(CANDIDATE_SELECTOR);
      if (own) return own;
    }
    return hovered;
  };

  const describe = async (el: Element | null, srcUrl?: string) => {
    const panel = openPanel(signal);
    const picture = (el && pictureOf(el)) ?? (srcUrl ? { src: srcUrl, verified: false } : null);
    if (!picture) {
      panel.setStatus(t('panelNoImage', 'No image is focused or under the pointer. Focus an image, or point at it, and ask again.'));
      return;
    }
    panel.setStatus(t('panelWorking', 'Describing the image…'));
    const ac = new AbortController();
    const poll = setInterval(() => {
      request({ type: 'cs-bg-status' }, ac.signal, 1).then(
        (s) => panel.setStatus(statusText(s)),
        () => null,
      );
    }, 500);
    try {
      // Only a picture the page can show itself, and never a file:, chrome: or extension URL (safe-source.ts).
      const source = await toImageSource(picture.src, picture.verified);
      const res = await request(
        { type: 'cs-bg-caption', requestId: newRequestId('describe'), source, priority: PRIORITY.describe },
        signal,
      );
      panel.setCaption(res.text, announcement(res));
    } catch (err) {
      panel.setStatus(failureAnnouncement(err));
    } finally {
      clearInterval(poll);
      ac.abort();
    }
  };

  const listener = makeListener(
    ['bg-cs-'],
    {
      'bg-cs-describe': (m) => {
        const el = pick(m.via, m.srcUrl);
        void describe(el, m.srcUrl);
        return { opened: true };
      },
    },
    (_type, sender) => sender.id === browser.runtime.id && !sender.tab,
  );
  // Only the frame that has the image (menu) or the focus (command) answers; other frames stay silent.
  const gated = (msg: unknown, sender: Runtime.MessageSender, sendResponse: (r: unknown) => void) => {
    const m = msg as { type?: string; via?: string; srcUrl?: string };
    if (m?.type !== 'bg-cs-describe') return false;
    if (m.via === 'command' && (hasFocusedChildFrame() || (window !== window.top && !document.hasFocus()))) return false;
    return listener(msg, sender, sendResponse);
  };
  addMessageListener(gated, signal);
  if (__TEST__) {
    // Test builds only: what the open panel announces, for browsers whose tests cannot read its closed shadow root or
    // the accessibility tree (Firefox over WebDriver BiDi). Only a frame with a panel answers.
    addMessageListener((raw, sender, reply) => {
      const says = openPanelSays();
      if ((raw as { type?: string } | null)?.type !== 'test-cs-panel' || sender.id !== browser.runtime.id || says === null) return false;
      reply({ ok: true, value: says });
      return true;
    }, signal);
  }
}

function hasFocusedChildFrame(): boolean {
  const a = document.activeElement;
  return a instanceof HTMLIFrameElement || a instanceof HTMLFrameElement;
}
