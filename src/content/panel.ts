/**
 * The "Describe this image" panel: in a closed shadow root (the page's styles can't reach it, ours don't leak, and the
 * page's scripts get `host.shadowRoot === null`, so they can neither read the caption nor reach in to change it), with an
 * aria-live region that announces progress and then the caption, a Copy button and a Close button. It takes focus
 * when it opens, Esc closes it, and focus goes back where it was. Text only ever goes in through textContent.
 */
import browser from 'webextension-polyfill';
import { OWN_UI_ATTR } from './eligibility';

const CSS = `
:host { all: initial; }
.panel { position: fixed; z-index: 2147483647; right: 16px; bottom: 16px; max-width: 420px; min-width: 260px;
  box-sizing: border-box; padding: 14px 16px; border-radius: 10px; background: #fff; color: #111;
  border: 2px solid #1a4fd6; box-shadow: 0 6px 24px rgba(0,0,0,.25); font: 15px/1.45 system-ui, sans-serif; }
.panel:focus { outline: 3px solid #f0a400; outline-offset: 2px; }
h2 { margin: 0 0 6px; font-size: 15px; }
p { margin: 0 0 10px; }
.row { display: flex; gap: 8px; justify-content: flex-end; }
button { font: inherit; padding: 4px 12px; border-radius: 6px; border: 1px solid #1a4fd6; background: #eef3ff; color: #0b2d8a; cursor: pointer; }
button:focus-visible { outline: 3px solid #f0a400; outline-offset: 1px; }
.note { font-size: 13px; color: #444; min-height: 1em; }
`;

// `?.`: unit tests run this with no fake i18n.
const t = (key: string, fallback: string) => browser.i18n?.getMessage(key) || fallback;

export interface Panel {
  setStatus(text: string): void;
  /** The caption: Copy copies it; the live region announces `announce` (by default the caption itself). */
  setCaption(text: string, announce?: string): void;
  close(): void;
  readonly host: HTMLElement;
  /** What its live region says now. */
  readonly says: string;
}

let current: Panel | null = null;

export function openPanel(signal: AbortSignal): Panel {
  current?.close();
  const previous = deepActiveElement();
  const host = document.createElement('div');
  host.setAttribute(OWN_UI_ATTR, '');
  const shadow = host.attachShadow({ mode: 'closed' });
  const style = document.createElement('style');
  style.textContent = CSS;

  const panel = document.createElement('div');
  panel.className = 'panel';
  panel.setAttribute('role', 'dialog');
  panel.setAttribute('aria-labelledby', 'alt-text-title');
  panel.tabIndex = -1;

  const h = document.createElement('h2');
  h.id = 'alt-text-title';
  h.textContent = t('panelTitle', 'Image description');
  const live = document.createElement('p');
  live.className = 'caption';
  live.setAttribute('aria-live', 'polite');
  live.setAttribute('role', 'status');
  const note = document.createElement('p');
  note.className = 'note';
  note.setAttribute('aria-live', 'polite');

  const row = document.createElement('div');
  row.className = 'row';
  const copy = document.createElement('button');
  copy.type = 'button';
  copy.className = 'copy';
  copy.textContent = t('panelCopy', 'Copy');
  copy.disabled = true;
  const close = document.createElement('button');
  close.type = 'button';
  close.className = 'close';
  close.textContent = t('panelClose', 'Close');
  row.append(copy, close);
  panel.append(h, live, note, row);
  shadow.append(style, panel);

  let caption = '';
  const doClose = () => {
    host.remove();
    if (current === api) current = null;
    if (previous && previous.isConnected && typeof previous.focus === 'function') previous.focus();
  };
  close.addEventListener('click', doClose);
  panel.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') {
      e.stopPropagation();
      doClose();
    }
  });
  copy.addEventListener('click', () => {
    void copyText(caption, shadow).then((ok) => {
      note.textContent = ok ? t('panelCopied', 'Copied.') : t('panelCopyFailed', 'Could not copy; select the text instead.');
    });
  });
  signal.addEventListener('abort', doClose, { once: true });

  (document.body ?? document.documentElement).append(host);
  panel.focus();

  const api: Panel = {
    host,
    get says() {
      return live.textContent ?? '';
    },
    setStatus(text) {
      if (!caption) live.textContent = text;
    },
    setCaption(text, announce = text) {
      caption = text;
      live.textContent = announce;
      copy.disabled = false;
    },
    close: doClose,
  };
  current = api;
  return api;
}

/** What the open panel's live region says; null when no panel is open in this frame. */
export function openPanelSays(): string | null {
  return current ? current.says : null;
}

async function copyText(text: string, shadow: ShadowRoot): Promise<boolean> {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    // The async clipboard needs focus and permission; the old path works from a click.
    const ta = document.createElement('textarea');
    ta.value = text;
    ta.style.position = 'fixed';
    ta.style.opacity = '0';
    shadow.append(ta);
    ta.select();
    const ok = document.execCommand('copy');
    ta.remove();
    return ok;
  }
}

export function deepActiveElement(): HTMLElement | null {
  let a: Element | null = document.activeElement;
  while (a?.shadowRoot?.activeElement) a = a.shadowRoot.activeElement;
  return a instanceof HTMLElement ? a : null;
}
