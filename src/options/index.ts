// Options: the models (install, progress, remove), and under Advanced pack addresses and imported folders; marker
// text, weak names, backend, and clearing the caches.
import browser from 'webextension-polyfill';
import { localize, msg } from '../shared/i18n';
import { addMessageListener, isEvent, send, type ModelStatus } from '../shared/messages';
import {
  loadSettings,
  normaliseBaseUrl,
  packRef,
  saveSettings,
  type BackendChoice,
  type ModelRef,
  type Settings,
} from '../shared/settings';
import { describeStatus } from '../shared/status-text';
import { ModelManager } from './model-manager';
import { parseRerankWeight } from './rerank-weight';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
let settings: Settings;

const errorText = (err: unknown) => (err instanceof Error ? err.message : String(err));

function removeButton(label: string, onClick: () => void): HTMLButtonElement {
  const b = document.createElement('button');
  b.type = 'button';
  b.textContent = msg('optionsRemove');
  b.setAttribute('aria-label', msg('optionsRemoveNamed', label));
  b.addEventListener('click', onClick);
  return b;
}

function render(): void {
  const list = $('sources');
  list.replaceChildren(
    ...settings.packSources.map((p) => {
      const li = document.createElement('li');
      li.textContent = `${p.name || msg('optionsUnnamed')} — ${p.url}`;
      if (!p.builtIn)
        li.append(
          ' ',
          removeButton(p.name || p.url, () => void save({ packSources: settings.packSources.filter((x) => x.url !== p.url) })),
        );
      return li;
    }),
    ...settings.folders.map((f) => {
      const li = document.createElement('li');
      li.textContent = msg('optionsFolderItem', f.name || f.id);
      li.append(
        ' ',
        removeButton(f.name || f.id, () => void save({ folders: settings.folders.filter((x) => x.id !== f.id) })),
      );
      return li;
    }),
  );
  $<HTMLInputElement>('marker').value = settings.marker;
  $<HTMLInputElement>('marker').placeholder = msg('labelMarker');
  $<HTMLInputElement>('weak').checked = settings.weakNamesCountAsMissing;
  $<HTMLInputElement>('skip-uncertain').checked = settings.skipUncertain;
  // Not while the user is typing in it: a half-typed number is theirs until they leave the field.
  if (document.activeElement !== $('rerank'))
    $<HTMLInputElement>('rerank').value = settings.rerankWeight === null ? '' : String(settings.rerankWeight);
  $<HTMLSelectElement>('backend').value = settings.backend;
}

async function save(patch: Partial<Settings>): Promise<void> {
  const r = await saveSettings(browser.storage.local, patch);
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

async function useModel(model: ModelRef): Promise<void> {
  await save({ model });
  showPackStatus(await send({ type: 'ui-bg-load-pack', packUrl: packRef(model) }));
}

async function main(): Promise<void> {
  localize();
  settings = (await loadSettings(browser.storage.local)).settings;
  render();
  const manager = new ModelManager({
    list: $('models'),
    announce: $('models-status'),
    selected: () => settings.model,
    onUse: (id) => useModel({ kind: 'catalogue', id }),
    onboardingUrl: browser.runtime.getURL('src/onboarding/index.html'),
    onError: (err) => ($('models-status').textContent = errorText(err)),
  });
  addMessageListener((m) => {
    if (isEvent(m, 'os-bg-status')) showPackStatus(m.status);
    if (isEvent(m, 'os-bg-models')) manager.update(m.states);
    return false;
  });
  browser.storage.onChanged.addListener(() => void loadSettings(browser.storage.local).then((r) => ((settings = r.settings), render())));
  $('add-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const url = normaliseBaseUrl($<HTMLInputElement>('add-url').value);
    const sources = settings.packSources.some((p) => p.url === url)
      ? settings.packSources
      : [...settings.packSources, { url, name: '', builtIn: false }];
    void save({ packSources: sources })
      .then(() => useModel({ kind: 'url', url }))
      .catch((err: unknown) => ($('pack-status').textContent = errorText(err)));
  });
  $<HTMLInputElement>('folder').addEventListener('change', (e) => {
    const files = (e.target as HTMLInputElement).files;
    if (!files?.length) return;
    const bar = $<HTMLProgressElement>('pack-progress');
    bar.hidden = false;
    // Loaded on demand: the pack loader is only needed here.
    import('../installer/picked-files')
      .then(({ importPackFolder }) => importPackFolder(files, (pct) => (bar.value = pct)))
      .then(async (folder) => {
        await save({ folders: [...settings.folders.filter((f) => f.id !== folder.id), folder] });
        $('pack-status').textContent = msg('optionsImported', folder.name);
        await useModel({ kind: 'folder', id: folder.id });
      })
      .catch((err: unknown) => ($('pack-status').textContent = errorText(err)))
      .finally(() => (bar.hidden = true));
  });
  $('marker').addEventListener('change', (e) => void save({ marker: (e.target as HTMLInputElement).value }));
  $('weak').addEventListener('change', (e) => void save({ weakNamesCountAsMissing: (e.target as HTMLInputElement).checked }));
  $('skip-uncertain').addEventListener('change', (e) => void save({ skipUncertain: (e.target as HTMLInputElement).checked }));
  $('rerank').addEventListener('change', (e) => {
    const input = e.target as HTMLInputElement;
    // A number field gives '' for text that is no number: that is a mistake to point out, not "the model's own".
    const weight = input.validity.badInput ? undefined : parseRerankWeight(input.value);
    $('rerank-status').textContent = weight === undefined ? msg('optionsRerankInvalid') : '';
    if (weight !== undefined) void save({ rerankWeight: weight });
  });
  $('backend').addEventListener('change', (e) => void save({ backend: (e.target as HTMLSelectElement).value as BackendChoice }));
  $('clear').addEventListener('click', () => {
    send({ type: 'ui-bg-clear-cache', packs: true }).then(
      (r) => ($('clear-status').textContent = msg('optionsCleared', [String(r.captions), String(r.packs)])),
      (err: unknown) => ($('clear-status').textContent = errorText(err)),
    );
  });
  await manager.refresh();
}

void main().catch((err: unknown) => ($('models-status').textContent = errorText(err)));
