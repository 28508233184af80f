/**
 * A file the user picked (their ClipCap checkpoint), kept in the extension's IndexedDB so the installer in the
 * offscreen document can read it: pages and that document share the extension's origin, not their memory.
 */
import { InstallerUnavailableError } from '../shared/errors';

/** Returns the key to pass as `picked[role]` in ui-bg-model-install. */
export async function stashPicked(file: File): Promise<string> {
  void file;
  throw new InstallerUnavailableError();
}
