/**
 * The one Installer of the offscreen document, over the IndexedDB pack store, and the catalogue it installs from.
 * Until src/installer/ is part of the build, installs are refused with a named error that says what still works.
 */
import { InstallerUnavailableError } from '../shared/errors';
import type { InstallerBundle, InstallerLike } from './installer-port';

const unavailable = async (): Promise<never> => {
  throw new InstallerUnavailableError();
};

const NO_INSTALLER: InstallerLike = {
  install: unavailable,
  pause: unavailable,
  resume: unavailable,
  cancel: unavailable,
  remove: unavailable,
  states: async () => [],
  resumeInterrupted: async () => undefined,
  readyStoreId: async () => null,
};

/** `onChange` is called whenever any job moves (bytes, phase). */
export async function openInstaller(onChange: () => void): Promise<InstallerBundle> {
  void onChange;
  return { installer: NO_INSTALLER, catalogue: [] };
}
