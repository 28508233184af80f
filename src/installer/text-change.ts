/**
 * Turning caption checking on or off for an installed model: CLIP's text tower added to, or dropped from, the pack in
 * use, without setting the whole model up again. On, only the text tower's tensors are downloaded (a range read of
 * the CLIP checkpoint) and converted; off, nothing is downloaded. Either way the pack's other files are copied from
 * the installed entry into a new one, everything is verified from the store, and the installer switches to the new
 * entry as after any install, so a failure or a cancel leaves the pack in use as it was.
 *
 * The result is the pack a whole install with the same choice makes: the same files, byte for byte (the converter
 * is deterministic), and the same pack.json but for its provenance.
 */
import { withTextTower, type PackManifest } from '../captioner/pack-format';
import type { InstallStore, StoredPackRecord } from '../captioner/pack-store';
import type { ConverterCheckpoint } from '../converter/check-inputs';
import { convertTextTower } from '../converter/convert';
import { textOnly, type Template } from '../converter/template';
import { copyFiles, verifyEntry } from './stored-pack';

/** The provenance key that says where an added text tower came from. */
const TEXT_PROVENANCE = 'textTower';

export interface TextChange {
  store: InstallStore;
  /** the installed pack */
  ready: StoredPackRecord;
  /** the new entry, empty */
  targetId: string;
  /** the model's whole template; it has a text tower */
  template: Template;
  /** true: add the text tower; false: drop it */
  add: boolean;
  signal: AbortSignal;
  /** the checkpoints `template` reads, downloaded as an install downloads them (called with the text tower alone) */
  inputs(template: Template): Promise<Record<string, ConverterCheckpoint>>;
  /** a file of the template (the text graph's skeleton, text-tokenizer.json) */
  skeleton(path: string): Promise<Uint8Array>;
  /** what the added text tower was made from, for the pack's provenance */
  provenance(): Record<string, unknown>;
  /** the job moves on to converting (the copy counts as converting) or verifying */
  phase(p: 'converting' | 'verifying'): Promise<void>;
  /** bytes written to the new entry, and the total */
  onProgress(written: number, total: number): void;
}

/** Fill the new entry with the pack as changed, verify it and write its record. Returns its manifest. */
export async function changeTextTower(c: TextChange): Promise<PackManifest> {
  const { store, ready, targetId, signal } = c;
  const old = ready.manifest;
  const { [TEXT_PROVENANCE]: _was, ...kept } = old.provenance ?? {};
  const inputs = c.add ? await c.inputs(textOnly(c.template)) : {};
  await c.phase('converting');
  const base = withTextTower(old, null, kept);
  const copyBytes = Object.values(base.files).reduce((n, f) => n + f.bytes, 0);
  let manifest = base;
  let textBytes = 0;
  if (c.add) {
    const tower = await convertTextTower({
      template: c.template,
      inputs,
      signal,
      skeleton: (path) => c.skeleton(path),
      sink: { append: (path, offset, data) => store.append(targetId, path, offset, data) },
      onProgress: (written, total) => c.onProgress((textBytes = written), total + copyBytes),
    });
    manifest = withTextTower(old, tower, { ...kept, [TEXT_PROVENANCE]: c.provenance() });
  }
  let copied = 0;
  await copyFiles(store, ready.id, targetId, Object.values(base.files), signal, (n) =>
    c.onProgress(textBytes + (copied += n), textBytes + copyBytes),
  );
  await c.phase('verifying');
  const complete = await verifyEntry(store, targetId, manifest, signal);
  await store.putRecord({ id: targetId, manifest, complete, savedAt: Date.now() });
  return manifest;
}
