/**
 * The install's progress on the set-up page: an ARIA progressbar whose value text says percent, bytes and time left
 * (read when the user asks for it), and a polite status that speaks only when the phase changes, so a screen reader
 * hears "Downloading…", "Checking…", "Ready" and not every byte.
 */
import { msg } from '../shared/i18n';
import type { InstallState } from '../shared/messages';
import { installPercent, isBusy, phaseText, progressText } from '../shared/status-text';

export interface ProgressElements {
  section: HTMLElement;
  bar: HTMLElement;
  detail: HTMLElement;
  status: HTMLElement;
  todo: HTMLElement;
  pause: HTMLButtonElement;
  resume: HTMLButtonElement;
  retry: HTMLButtonElement;
  cancel: HTMLButtonElement;
  next: HTMLElement;
}

export class ProgressView {
  private phase: InstallState['phase'] | null = null;

  constructor(private readonly el: ProgressElements) {}

  get lastPhase(): InstallState['phase'] | null {
    return this.phase;
  }

  show(s: InstallState, name: string): void {
    const e = this.el;
    e.section.hidden = false;
    const pct = installPercent(s);
    e.bar.setAttribute('aria-valuenow', String(pct));
    e.bar.setAttribute('aria-valuetext', progressText(s));
    e.bar.style.setProperty('--pct', `${pct}%`);
    e.detail.textContent = progressText(s);
    if (s.phase !== this.phase) {
      this.phase = s.phase;
      e.status.textContent = phaseText(s, name);
      e.todo.textContent = s.phase === 'failed' ? msg('onboardingFailedTodo') : s.phase === 'ready' ? msg('onboardingReadyTodo') : '';
    }
    const busy = isBusy(s);
    const hadFocus = [e.pause, e.resume, e.retry, e.cancel].find((b) => b === document.activeElement);
    e.pause.hidden = !busy;
    e.resume.hidden = s.phase !== 'paused';
    e.retry.hidden = s.phase !== 'failed';
    e.cancel.hidden = !(busy || s.phase === 'paused');
    e.next.hidden = s.phase !== 'ready';
    // A pressed button that just hid (Pause -> Resume) hands focus to its replacement, never to the page's top.
    if (hadFocus?.hidden) ([e.resume, e.pause, e.retry].find((b) => !b.hidden) ?? e.status).focus();
  }

  /** A failure before the installer had a job (a refused request): said the same way as a failed job. */
  fail(message: string, name: string): void {
    this.show(
      {
        id: '',
        phase: 'failed',
        bytes: 0,
        total: 0,
        rate: 0,
        etaSeconds: null,
        error: { name: 'Error', message },
        storeId: null,
        needsFiles: [],
      },
      name,
    );
  }
}
