/**
 * A file the user picked (their ClipCap checkpoint), kept in the extension's IndexedDB so the installer in the
 * offscreen document can read it: pages and that document share the extension's origin, not their memory.
 */
import { defaultPackStore } from '../captioner/pack-store';
import { stashPickedFile } from '../installer/installer';

/** Returns the key to pass as `picked[role]` in ui-bg-model-install. */
export function stashPicked(file: File): Promise<string> {
  return stashPickedFile(defaultPackStore(), file);
}
