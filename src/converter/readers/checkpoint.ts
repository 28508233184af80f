/**
 * openCheckpoint: one entry point for the three published containers (docs/model-install.md section 2). It reads
 * only the index on open; tensor bytes are read by name, so a vision-only install fetches the vision tower alone.
 */
import { CheckpointError, NotACheckpointError } from '../../shared/errors';
import type { RandomAccess } from './random-access';
import { safetensorsHeaderLength, readSafetensors } from './safetensors';
import { toFloat32 } from './to-float32';
import { readTorchFile } from './torch-file';
import type { Checkpoint, CheckpointFormat, TensorInfo } from './types';
import { looksLikeZip } from './zip';

export type { Checkpoint, CheckpointFormat } from './types';
export type { RandomAccess } from './random-access';
export { blobSource, bytesSource } from './random-access';

/** What a file that is none of the formats looks like, so the error can say (an HTML error page is the usual one). */
function describe(head: Uint8Array, size: number): string {
  if (size === 0) return 'the file is empty';
  const text = new TextDecoder('latin1').decode(head).trimStart().toLowerCase();
  if (text.startsWith('<!doctype') || text.startsWith('<html') || text.startsWith('<?xml'))
    return 'it is a web page, probably an error page from the server';
  if (text.startsWith('{') || text.startsWith('[')) return 'it is a JSON document';
  if (head[0] === 0x1f && head[1] === 0x8b) return 'it is gzip-compressed';
  if (head[0] === 0x80 && head[1] <= 5) return 'it is a bare pickle, the legacy format of torch before 1.6, which is not supported';
  const hex = Array.from(head.subarray(0, 8), (b) => b.toString(16).padStart(2, '0')).join(' ');
  return `it starts with bytes ${hex}`;
}

export async function openCheckpoint(src: RandomAccess, format?: CheckpointFormat, signal?: AbortSignal): Promise<Checkpoint> {
  const head = await src.read(0, Math.min(src.size, 64), signal);
  let detected: CheckpointFormat;
  let tensors: Map<string, TensorInfo>;
  if (looksLikeZip(head)) {
    const file = await readTorchFile(src, signal);
    detected = file.torchscript ? 'torchscript' : 'torch-zip';
    tensors = file.tensors;
  } else if (safetensorsHeaderLength(head) !== null) {
    detected = 'safetensors';
    tensors = await readSafetensors(src, signal, head);
  } else {
    throw new NotACheckpointError(describe(head, src.size));
  }
  if (format && format !== detected) throw new NotACheckpointError(`it is a ${detected} file, but a ${format} file was expected`);

  const info = (name: string): TensorInfo => {
    const t = tensors.get(name);
    if (!t) throw new CheckpointError(`The model file has no tensor "${name}".`);
    return t;
  };
  return {
    format: detected,
    tensors,
    ranges(names, gap = 0) {
      const spans = [...new Set(names)]
        .map(info)
        .filter((t) => t.byteLength > 0)
        .map((t): [number, number] => [t.offset, t.offset + t.byteLength])
        .sort((a, b) => a[0] - b[0]);
      const out: Array<[number, number]> = [];
      for (const [s, e] of spans) {
        const last = out[out.length - 1];
        // touching or overlapping spans (tied tensors) always merge; others when the bytes between are under `gap`
        if (last && s - last[1] < Math.max(gap, 1)) last[1] = Math.max(last[1], e);
        else out.push([s, e]);
      }
      return out;
    },
    // The result may be a view of the buffer the source's read returned (a fresh one, from a Blob or HTTP): no copy.
    async readFloat32(name, sig) {
      const t = info(name);
      return toFloat32(t, t.byteLength ? await src.read(t.offset, t.byteLength, sig ?? signal) : new Uint8Array(0));
    },
  };
}
