/** The model status and install progress as sentences that say what is happening, or what to do. */
import browser from 'webextension-polyfill';
import type { CatalogueModel, InstallState, ModelStatus } from './messages';
import { msg } from './i18n';

export function describeStatus(s: ModelStatus): { text: string; hint: string; percent: number | null } {
  switch (s.state) {
    case 'no-pack':
      return { text: s.packName ? msg('statusNotSetUp', s.packName) : msg('statusNoPack'), hint: msg('hintNoPack'), percent: null };
    case 'idle':
      return { text: msg('statusIdle'), hint: '', percent: null };
    case 'downloading': {
      const pct = s.progress && s.progress.total > 0 ? Math.floor((100 * s.progress.done) / s.progress.total) : 0;
      return { text: msg('statusDownloadingPct', String(pct)), hint: '', percent: pct };
    }
    case 'loading':
      return { text: msg('statusLoading'), hint: '', percent: 100 };
    case 'ready':
      return {
        text: msg('statusReady', [s.packName || s.packId, (s.backend ?? '').toUpperCase() === 'WEBGPU' ? 'WebGPU' : 'WASM']),
        hint: s.backendReason,
        percent: null,
      };
    case 'error':
      return { text: msg('statusError'), hint: s.error?.message ?? '', percent: null };
  }
}

function lang(): string {
  // `?.`: Node unit tests run this with no fake i18n (test/helpers/browser-global.ts answers undefined).
  return browser.i18n?.getUILanguage?.() || 'en';
}

/** Bytes in the unit a person reads: "290 MB", "1.2 GB", "850 kB" (decimal units, as download sizes are given). */
export function formatBytes(n: number, per = ''): string {
  const [unit, div] = n >= 1e9 ? (['gigabyte', 1e9] as const) : n >= 1e6 ? (['megabyte', 1e6] as const) : (['kilobyte', 1e3] as const);
  const v = n / div;
  return new Intl.NumberFormat(lang(), { style: 'unit', unit: `${unit}${per}`, maximumFractionDigits: v < 10 ? 1 : 0 }).format(v);
}

/** A download rate: "4.2 MB/s" ("4,2 MB/s" in German); Intl's compound unit, so no message to translate. */
export function formatRate(bytesPerSecond: number): string {
  return formatBytes(bytesPerSecond, '-per-second');
}

/** "about 2 minutes left"; rounded up, so it never promises less than it takes. */
export function formatEta(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds)) return '';
  if (seconds < 60) return msg('etaUnderMinute');
  const [unit, v] = seconds >= 5400 ? (['hour', Math.ceil(seconds / 3600)] as const) : (['minute', Math.ceil(seconds / 60)] as const);
  return msg('etaLeft', new Intl.NumberFormat(lang(), { style: 'unit', unit, unitDisplay: 'long' }).format(v));
}

/**
 * Share of the whole job each phase stands for, so one bar goes 0 -> 100 once: the installer counts bytes per phase
 * (the download, then the pack being written), and a bar that fell back to 2% when conversion starts would tell a
 * screen-reader user the job went backwards.
 */
const PHASE_SPAN: Partial<Record<InstallState['phase'], [number, number]>> = {
  queued: [0, 0],
  downloading: [0, 85],
  paused: [0, 85],
  verifying: [85, 90],
  converting: [90, 99],
};

/** Whole percent of the whole job, never 100 before it is ready. */
export function installPercent(s: InstallState): number {
  if (s.phase === 'ready') return 100;
  const span = PHASE_SPAN[s.phase];
  if (!span) return 0;
  const frac = s.total > 0 ? Math.min(1, s.bytes / s.total) : 0;
  return Math.min(99, Math.floor(span[0] + (span[1] - span[0]) * frac));
}

const BUSY = new Set<InstallState['phase']>(['queued', 'downloading', 'verifying', 'converting']);
export function isBusy(s: InstallState | undefined): boolean {
  return !!s && BUSY.has(s.phase);
}

/** The progress bar's aria-valuetext: "42%, 120 MB of 290 MB, 4.2 MB/s, about 2 minutes left". */
export function progressText(s: InstallState): string {
  const parts = [`${installPercent(s)}%`];
  // Bytes mean "downloaded" to a person: shown while downloading (or paused in it), not for the pack being written.
  if (s.total > 0 && (s.phase === 'downloading' || s.phase === 'paused'))
    parts.push(msg('bytesOf', [formatBytes(s.bytes), formatBytes(s.total)]));
  if (s.phase === 'downloading' && s.rate > 0) parts.push(formatRate(s.rate));
  if (s.phase === 'downloading' || s.phase === 'converting') {
    const eta = formatEta(s.etaSeconds);
    if (eta) parts.push(eta);
  }
  return parts.join(', ');
}

/** One sentence per phase: what the pages announce (politely) when the phase changes, never per byte. */
export function phaseText(s: InstallState, name: string): string {
  switch (s.phase) {
    case 'not-installed':
      return msg('phaseNotInstalled', name);
    case 'queued':
      return msg('phaseQueued', name);
    case 'downloading':
      return msg('phaseDownloading', name);
    case 'verifying':
      return msg('phaseVerifying', name);
    case 'converting':
      return msg('phaseConverting', name);
    case 'paused':
      return msg('phasePaused', name);
    case 'ready':
      return msg('phaseReady', name);
    case 'failed':
      return msg('phaseFailed', [name, s.error?.message || msg('phaseFailedUnknown')]);
  }
}

/** The model's name as the user reads it: localised through messages.json where a translation exists. */
export function modelLabel(m: Pick<CatalogueModel, 'id' | 'name'>): string {
  const key = `catalogue_${m.id.replace(/[^a-zA-Z0-9_]/g, '_')}_name`;
  const t = msg(key);
  return t && t !== key ? t : m.name;
}

export function modelDescription(m: Pick<CatalogueModel, 'id' | 'description'>): string {
  const key = `catalogue_${m.id.replace(/[^a-zA-Z0-9_]/g, '_')}_description`;
  const t = msg(key);
  return t && t !== key ? t : m.description;
}

/** "290 MB download, 480 MB on disk" */
export function sizeText(m: Pick<CatalogueModel, 'downloadBytes' | 'diskBytes'>): string {
  return msg('modelSizes', [formatBytes(m.downloadBytes), formatBytes(m.diskBytes)]);
}
