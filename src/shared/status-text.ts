/** The model status as a sentence that says what is happening, or what to do. */
import type { ModelStatus } from './messages';
import { msg } from './i18n';

export function describeStatus(s: ModelStatus): { text: string; hint: string; percent: number | null } {
  switch (s.state) {
    case 'no-pack':
      return { text: msg('statusNoPack'), hint: msg('hintNoPack'), percent: null };
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
