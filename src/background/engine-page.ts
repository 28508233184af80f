/**
 * Where the engine's page (src/offscreen/index.html: the queue, the engine host, the installer) lives, per browser:
 * the three things offscreen-doc.ts needs of it. Chrome's service worker has no DOM, so the page is an offscreen
 * document; Firefox has no offscreen documents, but its background is an event page with a DOM, so the same page is
 * framed there. Both are extension pages, reached with runtime.sendMessage, so nothing else differs.
 */
import browser from 'webextension-polyfill';

const PAGE_PATH = 'src/offscreen/index.html';

export interface EnginePage {
  exists(): Promise<boolean>;
  /** Resolves once the page listens; may throw "Only a single offscreen document…" when another create won. */
  create(): Promise<void>;
  /** Close it, even when it no longer answers (navigated away, renderer gone); no-op when there is none. */
  close(): Promise<void>;
}

// chrome.offscreen and chrome.runtime.getContexts are Chrome-only (no polyfill, no typing there); they stay here.
const chromeOffscreen: EnginePage = {
  async exists() {
    // No documentUrls filter: it matches exactly, query string included.
    const contexts = await chrome.runtime.getContexts({ contextTypes: ['OFFSCREEN_DOCUMENT'] });
    return contexts.length > 0;
  },
  create: () =>
    chrome.offscreen.createDocument({
      url: PAGE_PATH,
      reasons: ['WORKERS'],
      justification: 'Runs the on-device image captioning model (WebAssembly/WebGPU workers) outside the service worker.',
    }),
  async close() {
    try {
      await chrome.offscreen.closeDocument();
    } catch (err) {
      // None open: nothing to close.
      console.debug('[alt-text] offscreen close:', err instanceof Error ? err.message : String(err));
    }
  },
};

/**
 * Firefox: a hidden frame of the event page. It goes when the event page is unloaded (idle), like Chrome's document
 * when its worker stops listening; the next request frames it again, and the engine reads its pack from the store.
 */
let frame: HTMLIFrameElement | null = null;
const firefoxFrame: EnginePage = {
  exists: async () => frame?.isConnected === true,
  async create() {
    const f = document.createElement('iframe');
    f.hidden = true;
    f.src = browser.runtime.getURL(PAGE_PATH);
    // 'load' fires after the page's module script ran, so its message listener is in place.
    const loaded = new Promise<void>((resolve) => f.addEventListener('load', () => resolve(), { once: true }));
    document.body.append(f);
    frame = f;
    await loaded;
  },
  async close() {
    frame?.remove();
    frame = null;
  },
};

export const enginePage: EnginePage = __BROWSER__ === 'firefox' ? firefoxFrame : chromeOffscreen;
