/**
 * A pack's files in the store, between two entries: copied from an installed pack into a new entry (a change that
 * keeps most of the pack, like adding or dropping CLIP's text tower), and verified from the store before a job
 * switches to the entry (what loadCachedPack will read is what the job meant to write).
 */
import { SourceIntegrityError, throwIfAborted } from '../shared/errors';
import { manifestFiles, type PackFileEntry, type PackManifest } from '../captioner/pack-format';
import type { InstallStore } from '../captioner/pack-store';
import { hashStoredFile } from './fetch-file';

/** Bytes per store write when copying: as many as a conversion writes at once. */
const COPY_BYTES = 4 << 20;

/**
 * Copy `files` of entry `from` into entry `to` (which holds none of them yet), slice by slice; `onBytes` is told the
 * bytes copied after each slice. A file the entry lacks, or holds at another size, is refused: the caller's pack is
 * not what its record says.
 */
export async function copyFiles(
  store: InstallStore,
  from: string,
  to: string,
  files: readonly PackFileEntry[],
  signal: AbortSignal,
  onBytes: (n: number) => void,
): Promise<void> {
  for (const f of files) {
    const blob = await store.readBlob(from, f.path);
    if (blob?.size !== f.bytes) throw new SourceIntegrityError(`file:///${f.path}`, 'size', f.bytes, blob?.size ?? 0);
    for (let o = 0; o < f.bytes; o += COPY_BYTES) {
      throwIfAborted(signal);
      const data = new Uint8Array(await blob.slice(o, Math.min(f.bytes, o + COPY_BYTES)).arrayBuffer());
      await store.append(to, f.path, o, data);
      onBytes(data.byteLength);
    }
  }
}

/** Check every file of `manifest` in entry `id` (size, then SHA-256, read back from the store); their hashes by path. */
export async function verifyEntry(
  store: InstallStore,
  id: string,
  manifest: PackManifest,
  signal: AbortSignal,
): Promise<Record<string, string>> {
  const complete: Record<string, string> = {};
  for (const f of manifestFiles(manifest)) {
    const size = await store.storedBytes(id, f.path);
    if (size !== f.bytes) throw new SourceIntegrityError(`file:///${f.path}`, 'size', f.bytes, size);
    const got = await hashStoredFile(store, id, f.path, size, signal);
    if (got !== f.sha256) throw new SourceIntegrityError(`file:///${f.path}`, 'sha256', f.sha256, got);
    complete[f.path] = got;
  }
  return complete;
}
