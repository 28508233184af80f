// The set-up page only wires: the model choice, the one button, the progress of the install it starts, and the request
// for access to websites where the browser withholds it.
import browser from 'webextension-polyfill';
import { stashPicked } from '../installer/picked-files';
import { localize, msg } from '../shared/i18n';
import { addMessageListener, isEvent, send, type CatalogueModel, type InstallState, type ModelsView } from '../shared/messages';
import { activeModel, loadSettings, saveSettings } from '../shared/settings';
import { isBusy, modelLabel } from '../shared/status-text';
import { chosenModel, renderModelRadios } from './model-radios';
import { ProgressView } from './progress-view';
import { requestSiteAccess } from '../shared/site-access';
import { showSiteAccess } from './site-access-view';
import { setupAction } from './setup-action';
import { showTextOption, textChecked, textChoice, textOffer, type TextOffer, type TextOptionParts } from './text-option';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

/** No progress event for this long while a job should be running: ask again (see watchdog()). */
const STALL_MS = 4000;
let lastEvent = Date.now();
const errorText = (err: unknown) => (err instanceof Error ? err.message : String(err));

let view: ModelsView = { catalogue: [], states: [] };
/** The model this page is setting up (null until the button is pressed, or an install is found running). */
let current: string | null = null;

const progress = new ProgressView({
  section: $('progress'),
  bar: $('bar'),
  detail: $('detail'),
  status: $('status'),
  todo: $('todo'),
  pause: $<HTMLButtonElement>('pause'),
  resume: $<HTMLButtonElement>('resume'),
  retry: $<HTMLButtonElement>('retry'),
  cancel: $<HTMLButtonElement>('cancel'),
  next: $('next'),
});

const textParts: TextOptionParts = {
  row: $('text-option'),
  check: $<HTMLInputElement>('text-check'),
  label: $('text-check-label'),
  size: $('text-check-size'),
};

/** The bundled graph template of a catalogue model (its folder under templates/). */
async function readTemplate(folder: string): Promise<string> {
  const res = await fetch(browser.runtime.getURL(`templates/${folder}/template.json`));
  if (!res.ok) throw new Error(`templates/${folder}/template.json: HTTP ${res.status}`);
  return res.text();
}

/** The text tower the chosen model offers (null: none, or not known yet). */
let offer: TextOffer | null = null;
const stateOf = (id: string | null) => view.states.find((x) => x.id === id);

/**
 * Offer the text tower for the chosen model, if its template has one (the answer for an older choice is dropped), with
 * the box as that model has it: on when its pack carries the text tower, or its running or last job asked for it.
 */
async function updateTextOption(): Promise<void> {
  const id = chosenModel($('models'));
  const got = id ? await textOffer(id, readTemplate).catch(() => null) : null;
  if (chosenModel($('models')) !== id) return;
  offer = got;
  showTextOption(textParts, offer);
  syncBox(stateOf(id));
  updateGo();
}

const model = (id: string | null): CatalogueModel | undefined => view.catalogue.find((m) => m.id === id);
const nameOf = (id: string | null) => {
  const m = model(id);
  return m ? modelLabel(m) : (id ?? '');
};

/** Set when the install started while another model captioned: the choice is saved once this one is ready. */
let switchWhenReady = false;
/** Whether the browser grants access to websites, as last asked (null: not known yet). */
let siteAccess: boolean | null = null;
/** Set the box from the model's state, where the state says. */
function syncBox(s: InstallState | undefined): void {
  const on = textChecked(s);
  if (on !== null) textParts.check.checked = on;
}
/** The phase each model was last shown in: the box follows a job when one starts or ends, not the user's every click. */
const shownPhase = new Map<string, InstallState['phase']>();

/** Whether the model in use captions today: a pack address or folder, or a catalogue model with a ready pack. */
async function hasWorkingModel(): Promise<boolean> {
  const model = activeModel((await loadSettings(browser.storage.local)).settings);
  if (!model) return false;
  return model.kind !== 'catalogue' || !!view.states.find((x) => x.id === model.id)?.storeId;
}

function showState(s: InstallState): void {
  const before = shownPhase.get(s.id);
  shownPhase.set(s.id, s.phase);
  const chosen = s.id === chosenModel($('models'));
  if (before !== s.phase && chosen && !textParts.row.hidden) syncBox(s);
  if (s.id !== current) {
    // A job this page did not start (the options page's): the button still follows it.
    if (chosen) updateGo();
    return;
  }
  if (switchWhenReady && s.phase === 'ready') {
    switchWhenReady = false;
    saveSettings(browser.storage.local, { model: { kind: 'catalogue', id: s.id } }).catch((err: unknown) =>
      progress.fail(errorText(err), nameOf(s.id)),
    );
  }
  progress.show(s, nameOf(current));
  // While a job runs the choice is fixed; it opens again once the job has ended.
  $<HTMLFieldSetElement>('choice').disabled = isBusy(s) || s.phase === 'paused';
  updateGo();
}

/**
 * The one button sets up a model that is not set up and not being set up, or changes caption checking of one that is
 * (setup-action.ts); its text and hint say which.
 */
function updateGo(): void {
  const a = setupAction(stateOf(chosenModel($('models'))), textParts.row.hidden ? null : offer, textParts.check.checked);
  const go = $<HTMLButtonElement>('go');
  go.disabled = a.disabled;
  go.textContent = a.label;
  $('go-hint').textContent = a.hint;
}

/**
 * The worker and the offscreen document can both go away mid-install (Chrome stops idle workers; a crash closes the
 * document). Asking for the states wakes the worker, which recreates the document, which resumes the job.
 */
function watchdog(): void {
  setInterval(() => {
    const s = view.states.find((x) => x.id === current);
    if (!s || !isBusy(s) || Date.now() - lastEvent < STALL_MS) return;
    lastEvent = Date.now();
    send({ type: 'ui-bg-models' }).then(
      (v) => {
        view = v;
        const now = v.states.find((x) => x.id === current);
        if (now) showState(now);
      },
      (err: unknown) => console.warn('[alt-text] set-up page: no answer yet:', err instanceof Error ? err.message : String(err)),
    );
  }, STALL_MS / 2);
}

function showPick(): void {
  const m = model(chosenModel($('models')));
  const pick = m?.userFiles[0];
  $('pick').hidden = !pick;
  $('pick-hint').textContent = pick ? msg('onboardingPickHint', pick.hint) : '';
}

async function start(): Promise<void> {
  const id = chosenModel($('models'));
  if (!id) return;
  current = id;
  const m = model(id)!;
  let picked: Record<string, string> | undefined;
  if (m.userFiles.length > 0) {
    const file = $<HTMLInputElement>('file').files?.[0];
    if (!file) {
      progress.fail(msg('onboardingPickNeeded'), nameOf(id));
      $('file').focus();
      return;
    }
    picked = { [m.userFiles[0].role]: await stashPicked(file) };
  }
  // This page sets up the model the user will use. With none working yet it is chosen now (and loads by itself once
  // ready); a model that already captions stays in use until the new one is ready, so a failed or cancelled set-up
  // never leaves the user with no descriptions.
  switchWhenReady = await hasWorkingModel();
  if (!switchWhenReady) await saveSettings(browser.storage.local, { model: { kind: 'catalogue', id } });
  view = await send({ type: 'ui-bg-model-install', modelId: id, ...(picked ? { picked } : {}), ...textChoice(textParts) });
  const s = view.states.find((x) => x.id === id);
  if (s) showState(s);
  // Keyboard and screen-reader users land on what now matters: the progress.
  $('status').focus();
}

async function main(): Promise<void> {
  localize();
  void showSiteAccess({ section: $('access'), button: $('allow'), status: $('access-status'), onKnown: (g) => (siteAccess = g) });
  addMessageListener((m) => {
    if (isEvent(m, 'os-bg-models')) {
      lastEvent = Date.now();
      view = { ...view, states: view.states.map((old) => m.states.find((s) => s.id === old.id) ?? old) };
      for (const s of m.states) showState(s);
    }
    return false;
  });
  view = await send({ type: 'ui-bg-models' });
  for (const s of view.states) shownPhase.set(s.id, s.phase);
  // Reopened while an install runs: the choice is that model's, and locked until the job ends.
  const running = view.states.find((s) => isBusy(s) || s.phase === 'paused');
  const wanted = new URLSearchParams(location.search).get('model');
  renderModelRadios($('models'), view.catalogue, running?.id ?? wanted);
  if (view.catalogue.length === 0) progress.fail(msg('onboardingNoCatalogue'), '');
  showPick();
  void updateTextOption();
  $('models').addEventListener('change', () => {
    showPick();
    void updateTextOption();
    updateGo();
  });
  $('text-check').addEventListener('change', updateGo);
  updateGo();
  if (running) {
    current = running.id;
    showState(running);
  }
  $('setup').addEventListener('submit', (e) => {
    e.preventDefault();
    // One click for both (Firefox): the model is of no use without access to websites, and the browser asks only
    // inside the user's gesture, so before any await. The install does not wait for the answer.
    if (siteAccess === false) requestSiteAccess().catch((err: unknown) => console.warn('[alt-text] site access:', errorText(err)));
    start().catch((err: unknown) => progress.fail(errorText(err), nameOf(current)));
  });
  const act = (type: 'ui-bg-model-pause' | 'ui-bg-model-resume' | 'ui-bg-model-cancel') => () => {
    if (!current) return;
    send({ type, modelId: current }).then(
      (v) => {
        view = v;
        const s = v.states.find((x) => x.id === current);
        if (s) showState(s);
      },
      (err: unknown) => progress.fail(errorText(err), nameOf(current)),
    );
  };
  $('pause').addEventListener('click', act('ui-bg-model-pause'));
  $('resume').addEventListener('click', act('ui-bg-model-resume'));
  $('cancel').addEventListener('click', act('ui-bg-model-cancel'));
  watchdog();
  $('retry').addEventListener('click', () => void start().catch((err: unknown) => progress.fail(errorText(err), nameOf(current))));
}

main().catch((err: unknown) => progress.fail(errorText(err), ''));
