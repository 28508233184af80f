/**
 * The only writes an extension page makes to the pack store; the offscreen document makes every other one
 * (installs, downloads, deletions). Both are files the user picked on a page: a File can't cross a runtime message
 * (those are JSON), so handing one to the offscreen document means writing it to the extension's IndexedDB anyway,
 * which the pages and that document share. A picked pack folder is therefore verified and stored here, once, rather
 * than stashed whole for the offscreen document to copy again; a picked checkpoint is stashed for the installer.
 */
import { stashPickedFile } from './installer';
import { loadPack, type PickedFile } from '../captioner/pack-loader';
import { defaultPackStore } from '../captioner/pack-store';

/** Verify a picked pack folder and put it in the pack store under its id, where a `folder:<id>` reference finds it. */
export async function importPackFolder(
  files: ArrayLike<PickedFile>,
  onPercent: (pct: number) => void,
): Promise<{ id: string; name: string }> {
  const pack = await loadPack(
    { kind: 'files', files },
    { store: defaultPackStore(), onProgress: (p) => onPercent(p.total ? Math.floor((100 * p.bytes) / p.total) : 0) },
  );
  return { id: pack.manifest.id, name: pack.manifest.name };
}

/** Keep a picked checkpoint for the installer; returns the key to pass as `picked[role]` in ui-bg-model-install. */
export function stashPicked(file: Blob): Promise<string> {
  return stashPickedFile(defaultPackStore(), file);
}
