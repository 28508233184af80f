/**
 * PyTorch zip checkpoints (torch.save) and TorchScript archives (torch.jit.save) -> flat state-dict names and where
 * each tensor's bytes lie in the file. Both are a zip of `<root>/data.pkl` (the pickled object) and
 * `<root>/data/<key>` (one entry per storage, stored uncompressed); a TorchScript archive adds `constants.pkl` and
 * `code/` (the TorchScript source of each class, deflated).
 *
 * Only the index is read here: the central directory, data.pkl, the local header of each storage entry and, for
 * TorchScript, the class sources (to tell parameters and buffers from plain tensor attributes). Tensor bytes are
 * read later, by name.
 */
import { CorruptCheckpointError, NotACheckpointError, UnsupportedCheckpointError } from '../../shared/errors';
import type { RandomAccess } from './random-access';
import { spanBytes } from './to-float32';
import { DTYPE_BYTES, type TensorInfo } from './types';
import { PyGlobal, PyObject, StorageRef, TensorRef, unpickle, type PyValue } from './unpickle';
import { entryDataOffset, readEntry, readZipIndex, type ZipEntry, type ZipIndex } from './zip';

const MAX_PICKLE_BYTES = 64 * 2 ** 20;
/** Deeper nesting than any state dict or module tree has: a hostile file, refused before it exhausts the JS stack. */
const MAX_DEPTH = 100;

export interface TorchFile {
  torchscript: boolean;
  tensors: Map<string, TensorInfo>;
}

/** `<root>/data.pkl`: torch names the root `archive/` or after the file (`ViT-B-32/`), so it is found, not assumed. */
function findRoot(index: ZipIndex): string {
  const roots = [...index.entries.keys()].filter((n) => /^[^/]+\/data\.pkl$/.test(n) || n === 'data.pkl');
  if (roots.length !== 1) {
    throw new NotACheckpointError(
      roots.length ? 'a zip archive with several data.pkl' : 'a zip archive without data.pkl, not a PyTorch file',
    );
  }
  return roots[0].slice(0, -'data.pkl'.length);
}

function persistentLoad(pid: PyValue): PyValue {
  if (!Array.isArray(pid) || pid[0] !== 'storage' || pid.length !== 5)
    throw new CorruptCheckpointError('a persistent id that is not a storage');
  const [, type, key, location, numel] = pid;
  if (!(type instanceof PyGlobal) || type.kind !== 'storage' || !type.storageDtype)
    throw new CorruptCheckpointError('a storage of no known type');
  if (
    typeof key !== 'string' ||
    !/^[A-Za-z0-9_.-]+$/.test(key) ||
    typeof location !== 'string' ||
    typeof numel !== 'number' ||
    !Number.isSafeInteger(numel) ||
    numel < 0
  ) {
    throw new CorruptCheckpointError('a malformed storage id');
  }
  return new StorageRef(type.storageDtype, key, location, numel);
}

/** A checkpoint's tensors by name: the dict itself, or the dict under `state_dict`/`model` (training checkpoints). */
function flattenCheckpoint(top: PyValue): Map<string, TensorRef> {
  const out = new Map<string, TensorRef>();
  let root = top;
  if (root instanceof Map) {
    for (const k of ['state_dict', 'model']) {
      const inner = root.get(k);
      if (inner instanceof Map) {
        root = inner;
        break;
      }
    }
  }
  if (!(root instanceof Map)) throw new NotACheckpointError('a PyTorch file that holds no dict of tensors');
  const walk = (d: Map<PyValue, PyValue>, prefix: string, seen: Set<unknown>, depth = 0) => {
    if (depth > MAX_DEPTH) throw new UnsupportedCheckpointError(`dicts nested over ${MAX_DEPTH} deep`);
    if (seen.has(d)) return;
    seen.add(d);
    for (const [k, v] of d) {
      if (typeof k !== 'string' && typeof k !== 'number') continue;
      if (v instanceof TensorRef) out.set(prefix + String(k), v);
      else if (v instanceof Map) walk(v, `${prefix}${String(k)}.`, seen, depth + 1);
    }
  };
  walk(root, '', new Set());
  return out;
}

/** A TorchScript class's parameter and buffer names, from its source. */
interface Slots {
  parameters: string[];
  buffers: string[];
}

const MAX_SOURCE_BYTES = 16 * 2 ** 20;

/**
 * state_dict() of a TorchScript module lists parameters and buffers, not every tensor attribute (OpenAI's text
 * blocks hold `attn_mask` as a plain attribute). The class sources say which is which (`__parameters__ = [...]`,
 * `__buffers__ = [...]`); where they cannot be read, every tensor attribute is kept.
 */
async function readSlots(
  src: RandomAccess,
  index: ZipIndex,
  root: string,
  classes: Set<string>,
  signal?: AbortSignal,
): Promise<Map<string, Slots> | null> {
  if (typeof DecompressionStream === 'undefined') return null;
  const files = new Map<string, string[]>(); // source file -> classes defined in it
  for (const q of classes) {
    const mod = q.slice(0, q.lastIndexOf('.'));
    const file = `${root}code/${mod.replaceAll('.', '/')}.py`;
    files.set(file, [...(files.get(file) ?? []), q]);
  }
  const texts = await Promise.all(
    [...files.keys()].map((file) => {
      const entry = index.entries.get(file);
      return entry && entry.size <= MAX_SOURCE_BYTES ? readText(src, entry, signal) : Promise.resolve(null);
    }),
  );
  const slots = new Map<string, Slots>();
  for (const [i, qs] of [...files.values()].entries()) {
    const text = texts[i];
    if (text === null) return null;
    for (const block of text.split(/^(?=class )/m)) {
      const m = /^class (\w+)\(/.exec(block);
      if (!m) continue;
      const list = (name: string) => {
        const decl = new RegExp(`^\\s+${name} = \\[([^\\]]*)\\]`, 'm').exec(block);
        return decl ? Array.from(decl[1].matchAll(/"([^"]+)"/g), (x) => x[1]) : null;
      };
      const parameters = list('__parameters__');
      const buffers = list('__buffers__');
      if (!parameters || !buffers) return null;
      const q = qs.find((c) => c.endsWith(`.${m[1]}`));
      if (q) slots.set(q, { parameters, buffers });
    }
  }
  return classes.size === slots.size ? slots : null;
}

/** A code entry's text (stored or deflated); null if it cannot be read, so the caller falls back. */
async function readText(src: RandomAccess, entry: ZipEntry, signal?: AbortSignal): Promise<string | null> {
  if (entry.method !== 0 && entry.method !== 8) return null;
  const stored = { ...entry, method: 0, size: entry.compressedSize };
  const raw = await readEntry(src, stored, signal);
  if (entry.method === 0) return new TextDecoder().decode(raw);
  try {
    const stream = new Blob([raw.slice()]).stream().pipeThrough(new DecompressionStream('deflate-raw'));
    return await new Response(stream).text();
  } catch {
    return null; // a damaged source file only costs the parameter/buffer distinction
  }
}

function collectClasses(obj: PyObject, out: Set<string>, seen: Set<PyObject>, depth = 0): void {
  if (depth > MAX_DEPTH) throw new UnsupportedCheckpointError(`modules nested over ${MAX_DEPTH} deep`);
  if (seen.has(obj)) return;
  seen.add(obj);
  out.add(obj.cls);
  for (const v of obj.attrs.values()) if (v instanceof PyObject) collectClasses(v, out, seen, depth + 1);
}

/**
 * Walk the module tree as nn.Module.state_dict() does: a module's parameters, then its buffers, then each submodule
 * under its attribute name (without class sources: its tensor attributes in slot order, then submodules).
 */
function flattenModule(root: PyObject, slots: Map<string, Slots> | null): Map<string, TensorRef> {
  const out = new Map<string, TensorRef>();
  const walk = (obj: PyObject, prefix: string, seen: Set<PyObject>, depth = 0) => {
    if (depth > MAX_DEPTH) throw new UnsupportedCheckpointError(`modules nested over ${MAX_DEPTH} deep`);
    if (seen.has(obj)) return;
    seen.add(obj);
    const s = slots?.get(obj.cls);
    const names = s ? [...s.parameters, ...s.buffers] : [...obj.attrs.keys()].filter((k) => typeof k === 'string');
    for (const k of names) {
      const v = obj.attrs.get(k);
      if (v instanceof TensorRef) out.set(prefix + String(k), v); // a None parameter (bias=False) has no entry
    }
    for (const [k, v] of obj.attrs) if (typeof k === 'string' && v instanceof PyObject) walk(v, `${prefix}${k}.`, seen, depth + 1);
  };
  walk(root, '', new Set());
  return out;
}

export async function readTorchFile(src: RandomAccess, signal?: AbortSignal): Promise<TorchFile> {
  const index = await readZipIndex(src, signal);
  const root = findRoot(index);
  const torchscript = index.entries.has(`${root}constants.pkl`);
  const pklEntry = index.entries.get(`${root}data.pkl`) as ZipEntry;
  // data.pkl is the index, tens of KB for CLIP or GPT-2; a huge one is not a model file, and is not loaded whole.
  if (pklEntry.size > MAX_PICKLE_BYTES) throw new UnsupportedCheckpointError(`a ${pklEntry.size}-byte data.pkl`);
  const pkl = await readEntry(src, pklEntry, signal);
  const top = unpickle(pkl, { persistentLoad });

  let refs: Map<string, TensorRef>;
  if (torchscript) {
    if (!(top instanceof PyObject)) throw new NotACheckpointError('a TorchScript archive whose data.pkl is not a module');
    const classes = new Set<string>();
    collectClasses(top, classes, new Set());
    refs = flattenModule(top, await readSlots(src, index, root, classes, signal));
  } else {
    refs = flattenCheckpoint(top);
  }

  // Where each storage's bytes start: its local header, read once per storage (tied tensors share one), a few at a
  // time so that over HTTP the round trips overlap without flooding the server.
  const keys = [...new Set([...refs.values()].map((t) => t.storage.key))];
  const starts = new Map<string, { start: number; entry: ZipEntry }>();
  let next = 0;
  const worker = async () => {
    while (next < keys.length) {
      const key = keys[next++];
      const entry = index.entries.get(`${root}data/${key}`);
      if (!entry) throw new CorruptCheckpointError(`storage "${key}" is missing from the archive`);
      starts.set(key, { start: await entryDataOffset(src, entry, signal), entry });
    }
  };
  await Promise.all(Array.from({ length: Math.min(16, keys.length) }, worker));
  const tensors = new Map<string, TensorInfo>();
  for (const [name, t] of refs) {
    const { start, entry } = starts.get(t.storage.key) as { start: number; entry: ZipEntry };
    const elem = DTYPE_BYTES[t.storage.dtype];
    if (t.storageOffset < 0 || t.strides.some((s) => s < 0) || t.shape.some((s) => s < 0)) {
      throw new CorruptCheckpointError(`tensor "${name}" has a negative size, stride or offset`);
    }
    const byteLength = spanBytes(t.shape, t.strides, elem);
    if (t.storage.numel * elem > entry.size || (byteLength > 0 && t.storageOffset * elem + byteLength > entry.size)) {
      throw new CorruptCheckpointError(`tensor "${name}" lies outside its storage`);
    }
    tensors.set(name, { dtype: t.storage.dtype, shape: t.shape, strides: t.strides, offset: start + t.storageOffset * elem, byteLength });
  }
  return { torchscript, tensors };
}
