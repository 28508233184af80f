/**
 * The model manager, shared by the popup and the options page: each catalogue model by name, with its sizes, its
 * state (downloading 42%, ready and whether it checks captions against the picture, failed: why) and the buttons that
 * apply (install, pause, resume, cancel, remove, use). Rows are updated in place, so a button keeps focus while
 * progress moves; phase changes (not bytes) are announced in one polite live region.
 */
import { msg } from '../shared/i18n';
import { send, type CatalogueModel, type InstallState, type ModelsView } from '../shared/messages';
import type { ModelRef } from '../shared/settings';
import { installPercent, isBusy, modelLabel, phaseText, progressText, sizeText } from '../shared/status-text';

type Action = 'install' | 'pause' | 'resume' | 'cancel' | 'remove' | 'use';

export interface ManagerOptions {
  list: HTMLElement;
  /** A polite live region for phase changes. */
  announce: HTMLElement;
  selected: () => ModelRef | null;
  /** Make this (ready) model the one in use. */
  onUse: (modelId: string) => Promise<void>;
  /** Where a model that needs a file the user picks is installed from (the set-up page). */
  onboardingUrl: string;
  onError: (err: unknown) => void;
}

function actionsFor(s: InstallState, selected: boolean, needsPick: boolean): Action[] {
  switch (s.phase) {
    case 'not-installed':
    case 'failed':
      return needsPick ? [] : ['install'];
    case 'paused':
      return ['resume', 'cancel'];
    case 'ready':
      return selected ? ['remove'] : ['use', 'remove'];
    default:
      return ['pause', 'cancel'];
  }
}

/** Whether the installed pack checks its captions against the picture (CLIP's text tower); empty where not known. */
export function checkingText(s: InstallState): string {
  if (s.readyText === undefined) return '';
  return msg(s.readyText ? 'modelTextCheckOn' : 'modelTextCheckOff');
}

const LABEL: Record<Action, string> = {
  install: 'modelInstall',
  pause: 'modelPause',
  resume: 'modelResume',
  cancel: 'modelCancel',
  remove: 'modelRemove',
  use: 'modelUse',
};

export class ModelManager {
  private view: ModelsView | null = null;
  private phases = new Map<string, InstallState['phase']>();

  constructor(private readonly o: ManagerOptions) {}

  async refresh(): Promise<void> {
    this.show(await send({ type: 'ui-bg-models' }));
  }

  /** A full view (a reply); phase changes since the last one are announced. */
  show(view: ModelsView): void {
    this.view = view;
    this.update(view.states);
  }

  /** Install progress (os-bg-models): states of some models. */
  update(states: InstallState[]): void {
    if (!this.view) return;
    const byId = new Map(this.view.states.map((s) => [s.id, s]));
    for (const s of states) byId.set(s.id, s);
    this.view = { ...this.view, states: [...byId.values()] };
    const said: string[] = [];
    for (const s of states) {
      const before = this.phases.get(s.id);
      this.phases.set(s.id, s.phase);
      const m = this.view.catalogue.find((c) => c.id === s.id);
      if (m && before !== undefined && before !== s.phase) said.push(phaseText(s, modelLabel(m)));
    }
    if (said.length) this.o.announce.textContent = said.join(' ');
    this.render();
  }

  private render(): void {
    if (!this.view) return;
    const selected = this.o.selected();
    for (const m of this.view.catalogue) {
      const s = this.view.states.find((x) => x.id === m.id);
      if (s) this.renderRow(m, s, selected?.kind === 'catalogue' && selected.id === m.id);
    }
  }

  private renderRow(m: CatalogueModel, s: InstallState, inUse: boolean): void {
    const rowId = `model-${m.id}`;
    let li = this.o.list.querySelector<HTMLLIElement>(`#${CSS.escape(rowId)}`);
    if (!li) {
      li = document.createElement('li');
      li.id = rowId;
      li.className = 'model';
      const name = document.createElement('strong');
      name.id = `${rowId}-name`;
      name.textContent = modelLabel(m);
      const sizes = document.createElement('span');
      sizes.className = 'hint';
      sizes.textContent = sizeText(m);
      const state = document.createElement('span');
      state.className = 'model-state';
      state.id = `${rowId}-state`;
      // Focus lands here when a row's last button goes away (Remove), so the keyboard user is not thrown to the top.
      state.tabIndex = -1;
      const bar = document.createElement('progress');
      bar.max = 100;
      bar.setAttribute('aria-labelledby', `${rowId}-name`);
      const buttons = document.createElement('span');
      buttons.className = 'buttons';
      li.append(name, ' ', sizes, document.createElement('br'), state, bar, buttons);
      this.o.list.append(li);
    }
    const stateEl = li.querySelector<HTMLElement>('.model-state')!;
    const bar = li.querySelector('progress')!;
    const busy = isBusy(s) || s.phase === 'paused';
    if (s.phase === 'ready')
      stateEl.textContent = [inUse ? msg('modelStateInUse') : msg('modelStateReady'), checkingText(s)].join(' ').trim();
    else if (s.phase === 'failed') stateEl.textContent = msg('modelStateFailed', s.error?.message || msg('phaseFailedUnknown'));
    else if (busy) stateEl.textContent = `${phaseText(s, modelLabel(m))} ${progressText(s)}`;
    else stateEl.textContent = msg('modelStateNotInstalled');
    bar.hidden = !busy;
    bar.value = installPercent(s);
    bar.setAttribute('aria-valuetext', progressText(s));

    const needsPick = m.userFiles.length > 0;
    const actions = actionsFor(s, inUse, needsPick);
    const buttons = li.querySelector<HTMLElement>('.buttons')!;
    const now = [...buttons.children].map((b) => (b as HTMLElement).dataset.action ?? 'link').join();
    const want = [...actions, ...(needsPick && (s.phase === 'not-installed' || s.phase === 'failed') ? ['link'] : [])].join();
    if (now === want) return;
    const hadFocus = buttons.contains(document.activeElement);
    buttons.replaceChildren(
      ...actions.map((a) => {
        const b = document.createElement('button');
        b.type = 'button';
        b.dataset.action = a;
        b.textContent = msg(LABEL[a]);
        b.setAttribute('aria-describedby', `${rowId}-name`);
        b.addEventListener('click', () => void this.act(a, m.id));
        return b;
      }),
    );
    if (needsPick && (s.phase === 'not-installed' || s.phase === 'failed')) {
      // The file picker lives on the set-up page, with the explanation of where to get the file.
      const a = document.createElement('a');
      a.href = `${this.o.onboardingUrl}?model=${encodeURIComponent(m.id)}`;
      a.target = '_blank';
      a.textContent = msg('modelSetUpWithFile');
      a.setAttribute('aria-describedby', `${rowId}-name`);
      buttons.append(a);
    }
    // The button pressed is usually replaced (Install -> Pause): keep focus in the row, on its nearest successor.
    if (hadFocus) (buttons.querySelector<HTMLElement>('button, a') ?? stateEl).focus();
  }

  private async act(a: Action, modelId: string): Promise<void> {
    try {
      if (a === 'use') {
        await this.o.onUse(modelId);
        this.render();
        return;
      }
      const type = (
        {
          install: 'ui-bg-model-install',
          pause: 'ui-bg-model-pause',
          resume: 'ui-bg-model-resume',
          cancel: 'ui-bg-model-cancel',
          remove: 'ui-bg-model-remove',
        } as const
      )[a];
      this.show(await send({ type, modelId }));
    } catch (err) {
      this.o.onError(err);
    }
  }
}
