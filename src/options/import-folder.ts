/** Verify a picked pack folder and put it in the pack store (the one the offscreen document reads), under its id. */
import type { FolderPack } from '../shared/settings';

export async function importFolder(files: FileList, onPercent: (pct: number) => void): Promise<FolderPack> {
  const { loadPackFromFiles, defaultPackStore } = await import('../captioner/index');
  const pack = await loadPackFromFiles(files, {
    store: defaultPackStore(),
    onProgress: (p) => onPercent(p.total ? Math.floor((100 * p.bytes) / p.total) : 0),
  });
  return { id: pack.manifest.id, name: pack.manifest.name };
}
