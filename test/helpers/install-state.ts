/** An InstallState as the installer reports it, with nothing downloaded: a ready model has the store entry `<id>@1`. */
import type { InstallState } from '../../src/shared/messages';

export const installState = (id: string, phase: InstallState['phase'], extra: Partial<InstallState> = {}): InstallState => ({
  id,
  phase,
  bytes: 0,
  total: 0,
  rate: 0,
  etaSeconds: null,
  error: null,
  storeId: phase === 'ready' ? `${id}@1` : null,
  needsFiles: [],
  text: false,
  readyText: false,
  ...extra,
});
