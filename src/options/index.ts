// Options: pack sources (add by URL with download progress and verification), marker text, weak names, backend,
// and clearing the caches.
import { localize, msg } from '../shared/i18n';
import { isEvent, send, type ModelStatus } from '../shared/messages';
import { loadSettings, normaliseBaseUrl, saveSettings, type BackendChoice, type Settings } from '../shared/settings';
import { describeStatus } from '../shared/status-text';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
let settings: Settings;

function render(): void {
  const list = $('sources');
  list.replaceChildren(
    ...settings.packSources.map((p) => {
      const li = document.createElement('li');
      li.textContent = `${p.name || msg('optionsUnnamed')} — ${p.url}`;
      if (!p.builtIn) {
        const b = document.createElement('button');
        b.type = 'button';
        b.textContent = msg('optionsRemove');
        b.setAttribute('aria-label', `${msg('optionsRemove')} ${p.url}`);
        b.addEventListener('click', () => void save({ packSources: settings.packSources.filter((x) => x.url !== p.url) }));
        li.append(' ', b);
      }
      return li;
    }),
  );
  $<HTMLInputElement>('marker').value = settings.marker;
  $<HTMLInputElement>('marker').placeholder = msg('labelMarker');
  $<HTMLInputElement>('weak').checked = settings.weakNamesCountAsMissing;
  $<HTMLSelectElement>('backend').value = settings.backend;
}

async function save(patch: Partial<Settings>): Promise<void> {
  const r = await saveSettings(chrome.storage.local, patch);
  settings = r.settings;
  render();
}

function showPackStatus(s: ModelStatus): void {
  const d = describeStatus(s);
  $('pack-status').textContent = [d.text, d.hint].filter(Boolean).join(' ');
  const bar = $<HTMLProgressElement>('pack-progress');
  bar.hidden = d.percent === null;
  if (d.percent !== null) bar.value = d.percent;
}

async function main(): Promise<void> {
  localize();
  settings = (await loadSettings(chrome.storage.local)).settings;
  render();
  chrome.runtime.onMessage.addListener((m) => {
    if (isEvent(m, 'os-bg-status')) showPackStatus(m.status);
    return false;
  });
  $('add-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const url = normaliseBaseUrl($<HTMLInputElement>('add-url').value);
    const sources = settings.packSources.some((p) => p.url === url) ? settings.packSources : [...settings.packSources, { url, name: '', builtIn: false }];
    void save({ packSources: sources, activePackUrl: url })
      .then(() => send({ type: 'ui-bg-load-pack', packUrl: url }))
      .then(showPackStatus, (err: unknown) => ($('pack-status').textContent = err instanceof Error ? err.message : String(err)));
  });
  $<HTMLInputElement>('folder').addEventListener('change', (e) => {
    const files = (e.target as HTMLInputElement).files;
    if (files?.length) void importFolder(files);
  });
  $('marker').addEventListener('change', (e) => void save({ marker: (e.target as HTMLInputElement).value }));
  $('weak').addEventListener('change', (e) => void save({ weakNamesCountAsMissing: (e.target as HTMLInputElement).checked }));
  $('backend').addEventListener('change', (e) => void save({ backend: (e.target as HTMLSelectElement).value as BackendChoice }));
  $('clear').addEventListener('click', () => {
    send({ type: 'ui-bg-clear-cache', packs: true }).then(
      (r) => ($('clear-status').textContent = msg('optionsCleared', [String(r.captions), String(r.packs)])),
      (err: unknown) => ($('clear-status').textContent = err instanceof Error ? err.message : String(err)),
    );
  });
}

/** Verify a picked pack folder and put it in the pack cache (the same one the offscreen document reads). */
async function importFolder(files: FileList): Promise<void> {
  const { loadPackFromFiles, defaultPackStore } = await import('../captioner/index');
  const bar = $<HTMLProgressElement>('pack-progress');
  bar.hidden = false;
  try {
    const pack = await loadPackFromFiles(files, {
      store: defaultPackStore(),
      onProgress: (p) => (bar.value = p.total ? Math.floor((100 * p.bytes) / p.total) : 0),
    });
    const url = chrome.runtime.getURL(`local-pack/${pack.manifest.id}/`);
    const others = settings.packSources.filter((p) => p.url !== url);
    await save({ packSources: [...others, { url, name: pack.manifest.name, builtIn: false }], activePackUrl: url });
    $('pack-status').textContent = msg('optionsImported', pack.manifest.name);
    await send({ type: 'ui-bg-load-pack', packUrl: url });
  } catch (err) {
    $('pack-status').textContent = err instanceof Error ? err.message : String(err);
  } finally {
    bar.hidden = true;
  }
}

void main();
