// Popup: access to websites (only while the browser withholds it), status (and why nothing is labelled yet), switches
// (everywhere / this site), the models, decoding, and the number of labels on this page.
import browser from 'webextension-polyfill';
import { localize, msg } from '../shared/i18n';
import { addMessageListener, isEvent, send, type InstallState, type ModelStatus, type ModelsView } from '../shared/messages';
import { messageKeyOf } from '../shared/errors';
import { fillModelSelect } from '../shared/model-choice';
import { loadSettings, parsePackRef, saveSettings, type Settings, type Strategy } from '../shared/settings';
import { describeStatus, installPercent, isBusy, modelLabel, phaseText } from '../shared/status-text';
import { ModelManager } from '../options/model-manager';
import { showSiteAccess } from '../onboarding/site-access-view';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

async function targetTab(): Promise<{ id: number | undefined; host: string }> {
  // Opened as a page (tests, or from the options page) it can be pointed at a tab: ?tab=ID.
  const param = new URLSearchParams(location.search).get('tab');
  const tab = param
    ? await browser.tabs.get(Number(param)).catch(() => undefined)
    : (await browser.tabs.query({ active: true, currentWindow: true }))[0];
  let host: string;
  try {
    host = tab?.url ? new URL(tab.url).hostname : '';
  } catch {
    host = ''; // a URL the browser shows but URL() refuses: no site to name
  }
  return { id: tab?.id, host };
}

function showStatus(s: ModelStatus): void {
  const d = describeStatus(s);
  $('status').textContent = d.text;
  $('hint').textContent = d.hint;
  const bar = $<HTMLProgressElement>('progress');
  bar.hidden = d.percent === null;
  if (d.percent !== null) bar.value = d.percent;
  // Nothing is labelled until a model is set up: say so, and where to do it.
  $('setup').hidden = s.state !== 'no-pack';
  document.body.dataset.state = s.state;
}

let models: ModelsView | null = null;
let lastPhase = '';

/**
 * The install of the model in use, as it moves: the bar follows every event, the status sentence (a live region)
 * changes only with the phase, so a screen reader hears "Downloading…", "Setting up…", not every percent.
 */
function showInstall(s: InstallState): void {
  if (!(isBusy(s) || s.phase === 'paused')) return;
  const bar = $<HTMLProgressElement>('progress');
  bar.hidden = false;
  bar.value = installPercent(s);
  if (s.phase === lastPhase) return;
  lastPhase = s.phase;
  const m = models?.catalogue.find((c) => c.id === s.id);
  $('status').textContent = phaseText(s, m ? modelLabel(m) : s.id);
  $('hint').textContent = '';
  $('setup').hidden = true;
}

function renderSettings(s: Settings, host: string): void {
  $<HTMLInputElement>('enabled').checked = s.enabled;
  const site = $<HTMLInputElement>('site');
  site.disabled = !host || !s.enabled;
  site.checked = !!host && !s.disabledSites.includes(host);
  $('site-label').textContent = host ? msg('popupSiteNamed', host) : msg('popupSite');
  const choices = fillModelSelect($<HTMLSelectElement>('pack'), s, models);
  // Nothing to choose from yet: the set-up link says what to do, an empty list would only add noise.
  $('pack').closest('p')!.hidden = choices.length === 0;
  for (const r of document.querySelectorAll<HTMLInputElement>('input[name=strategy]')) r.checked = r.value === s.strategy;
}

async function main(): Promise<void> {
  localize();
  // First in the popup, and not waiting on the worker: without access to websites nothing else here matters yet.
  void showSiteAccess({ section: $('access'), button: $('allow'), status: $('access-status') });
  const tab = await targetTab();
  let { settings } = await loadSettings(browser.storage.local);
  renderSettings(settings, tab.host);

  const save = async (patch: Partial<Settings>) => {
    settings = (await saveSettings(browser.storage.local, patch)).settings;
    renderSettings(settings, tab.host);
  };
  const use = async (key: string) => {
    const ref = parsePackRef(key);
    if (!ref) return;
    await save({ model: ref });
    showStatus(await send({ type: 'ui-bg-load-pack', packUrl: key }));
  };
  $<HTMLInputElement>('enabled').addEventListener('change', (e) => void save({ enabled: (e.target as HTMLInputElement).checked }));
  $<HTMLInputElement>('site').addEventListener('change', (e) => {
    const on = (e.target as HTMLInputElement).checked;
    const others = settings.disabledSites.filter((h) => h !== tab.host);
    void save({ disabledSites: on ? others : [...others, tab.host] });
  });
  $<HTMLSelectElement>('pack').addEventListener('change', (e) => void use((e.target as HTMLSelectElement).value).catch(showError));
  for (const r of document.querySelectorAll<HTMLInputElement>('input[name=strategy]')) {
    r.addEventListener('change', () => void save({ strategy: r.value as Strategy }));
  }

  const manager = new ModelManager({
    list: $('models'),
    announce: $('models-status'),
    selected: () => settings.model,
    onUse: (id) => use(`model:${id}`),
    onboardingUrl: browser.runtime.getURL('src/onboarding/index.html'),
    onError: showError,
  });
  addMessageListener((m) => {
    if (isEvent(m, 'os-bg-status')) showStatus(m.status);
    if (isEvent(m, 'os-bg-models')) {
      manager.update(m.states);
      const inUse = settings.model;
      const mine = inUse?.kind === 'catalogue' ? m.states.find((s) => s.id === inUse.id) : undefined;
      if (mine) showInstall(mine);
      // A model that just became ready joins the choices, and the status follows.
      if (m.states.some((s) => s.phase === 'ready')) void refreshModels().catch(showError);
    }
    return false;
  });
  const refreshModels = async () => {
    models = await send({ type: 'ui-bg-models' });
    manager.show(models);
    renderSettings(settings, tab.host);
    showStatus(await send({ type: 'ui-bg-status' }));
  };

  const status = await send({ type: 'ui-bg-status' });
  showStatus(status);
  // Opening the popup is a good moment to fetch the model, so the first caption doesn't wait for it.
  if (status.state === 'idle' && status.packUrl) send({ type: 'ui-bg-load-pack', packUrl: status.packUrl }).then(showStatus, showError);

  const refreshCount = async () => {
    if (tab.id === undefined) return;
    const { count, unsure } = await send({ type: 'ui-bg-tab-info', tabId: tab.id });
    $('count').textContent = msg('popupCount', String(count));
    // Why an image has no label: the model was unsure of it (said only when it happened).
    $('unsure').hidden = unsure === 0;
    $('unsure').textContent = unsure === 0 ? '' : msg('popupUnsure', String(unsure));
  };
  await refreshCount();
  browser.storage.session.onChanged.addListener(() => void refreshCount());
  // Last: it starts the offscreen document, and the status and count must not wait for that.
  await refreshModels();
}

function showError(err: unknown): void {
  $('status').textContent = msg(messageKeyOf(err, 'statusError') ?? 'statusError');
  $('hint').textContent = err instanceof Error ? err.message : String(err);
}

main().catch(showError);
