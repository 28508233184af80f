/**
 * The bg-os-model-* requests, answered by the one Installer, and the os-bg-models progress event.
 *
 * Progress is broadcast on every phase change at once, and otherwise at most every PROGRESS_INTERVAL_MS: the pages
 * redraw a bar from it, and a screen reader must not be flooded (the pages announce phases, not bytes).
 */
import { UnknownModelError } from '../shared/errors';
import { toWire } from '../shared/errors';
import type { InstallState, ModelsView } from '../shared/messages';
import type { InstallerBundle } from './installer-port';

export const PROGRESS_INTERVAL_MS = 250;

/** A state as it crosses the wire: numbers clamped, the error as a plain { name, message }. */
function toInstallState(s: InstallState): InstallState {
  return {
    id: s.id,
    phase: s.phase,
    bytes: Math.max(0, s.bytes || 0),
    total: Math.max(0, s.total || 0),
    rate: Math.max(0, s.rate || 0),
    etaSeconds: typeof s.etaSeconds === 'number' && Number.isFinite(s.etaSeconds) ? Math.max(0, s.etaSeconds) : null,
    error: s.error ? toWire(s.error) : null,
    storeId: s.storeId ?? null,
    needsFiles: [...(s.needsFiles ?? [])],
    text: s.text === true,
    readyText: s.readyText === true,
  };
}

export class InstallerHost {
  private lastPhases = '';
  private lastSent = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly bundle: InstallerBundle,
    private readonly broadcast: (states: InstallState[]) => void,
    private readonly now: () => number = Date.now,
  ) {}

  get installer() {
    return this.bundle.installer;
  }

  async view(): Promise<ModelsView> {
    const states = (await this.bundle.installer.states()).map(toInstallState);
    const known = new Set(states.map((s) => s.id));
    // Every catalogue model has a state, so the pages never have to guess "not installed".
    for (const m of this.bundle.catalogue) {
      if (!known.has(m.id))
        states.push({
          id: m.id,
          phase: 'not-installed',
          bytes: 0,
          total: 0,
          rate: 0,
          etaSeconds: null,
          error: null,
          storeId: null,
          needsFiles: [],
          text: false,
          readyText: false,
        });
    }
    return { catalogue: this.bundle.catalogue, states };
  }

  private known(modelId: string): void {
    if (!this.bundle.catalogue.some((m) => m.id === modelId)) throw new UnknownModelError(modelId);
  }

  /** Start (or restart) an install; the reply is the state right after, progress follows as events. */
  /** text: also build CLIP's text tower (the set-up page's opt-in); undefined keeps what the job remembers. */
  async install(modelId: string, picked?: Record<string, string>, text?: boolean): Promise<ModelsView> {
    this.known(modelId);
    // The job runs for minutes; its end (ready or failed) is in the states, which the events carry.
    this.bundle.installer
      .install(modelId, picked, text)
      .catch((err: unknown) => console.warn('[alt-text] install failed:', toWire(err).message))
      .finally(() => this.changed());
    return this.afterChange();
  }

  async act(action: 'pause' | 'resume' | 'cancel' | 'remove', modelId: string): Promise<ModelsView> {
    this.known(modelId);
    const op = this.bundle.installer[action](modelId);
    // Resume continues the job in the background, like install; the others are quick and are awaited.
    if (action === 'resume')
      op.catch((err: unknown) => console.warn('[alt-text] resume failed:', toWire(err).message)).finally(() => this.changed());
    else await op;
    return this.afterChange();
  }

  private async afterChange(): Promise<ModelsView> {
    await Promise.resolve();
    this.changed();
    return this.view();
  }

  /** Whether an install is on its way (queued, downloading, verifying or converting), as last broadcast. */
  get busy(): boolean {
    return /:(queued|downloading|verifying|converting)\b/.test(this.lastPhases);
  }

  /** The installer says something moved: broadcast now on a phase change, else at most every PROGRESS_INTERVAL_MS. */
  changed(): void {
    void this.bundle.installer.states().then(
      (raw) => {
        const states = raw.map(toInstallState);
        const phases = states.map((s) => `${s.id}:${s.phase}`).join(',');
        const due = this.now() - this.lastSent >= PROGRESS_INTERVAL_MS;
        if (phases !== this.lastPhases || due) {
          this.lastPhases = phases;
          this.lastSent = this.now();
          if (this.timer) clearTimeout(this.timer);
          this.timer = null;
          this.broadcast(states);
        } else {
          // The last bytes of a burst still get out, a little later.
          this.timer ??= setTimeout(() => {
            this.timer = null;
            this.changed();
          }, PROGRESS_INTERVAL_MS);
        }
      },
      (err: unknown) => console.warn('[alt-text] install states unreadable:', toWire(err).message),
    );
  }
}
