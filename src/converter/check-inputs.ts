/**
 * Does each checkpoint hold the weights the template needs? Checked before any byte is written, from the files'
 * indexes alone (names, dtypes, shapes), so a wrong file is refused in seconds and with every problem at once:
 * the user learns "this is the CLIP file, not the ClipCap one" instead of a failure on the first missing key.
 */
import { WrongCheckpointError, throwIfAborted, type CheckpointShapeMismatch } from '../shared/errors';
import type { Template } from './template';

/** What the converter needs of a reader's Checkpoint (src/converter/readers/): its index and float32 reads. */
export interface CheckpointTensorInfo {
  dtype: string;
  shape: number[];
  strides?: number[];
  offset: number;
  byteLength: number;
}
export interface ConverterCheckpoint {
  tensors: ReadonlyMap<string, CheckpointTensorInfo>;
  readFloat32(name: string, signal?: AbortSignal): Promise<Float32Array>;
}

const FLOAT_DTYPES = new Set(['float32', 'float16', 'bfloat16', 'float64']);
const sameShape = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((d, i) => d === b[i]);

export interface CheckpointProblems {
  missing: string[];
  unexpected: string[];
  wrongShape: CheckpointShapeMismatch[];
}

/** Every key and shape problem of one checkpoint for one input role of the template (no reads). */
export function findCheckpointProblems(template: Template, input: string, ckpt: Pick<ConverterCheckpoint, 'tensors'>): CheckpointProblems {
  const spec = template.inputs[input];
  const ignore = spec.ignore.map((r) => new RegExp(r));
  const missing: string[] = [];
  const wrongShape: CheckpointShapeMismatch[] = [];
  const check = (key: string, expected: readonly number[], info: CheckpointTensorInfo) => {
    if (!sameShape(info.shape, expected) || !FLOAT_DTYPES.has(info.dtype)) {
      wrongShape.push({ key, expected, actual: info.shape, ...(FLOAT_DTYPES.has(info.dtype) ? {} : { dtype: info.dtype }) });
    }
  };
  for (const [key, shape] of Object.entries(spec.params)) {
    const info = ckpt.tensors.get(key);
    if (!info) missing.push(key);
    else check(key, shape, info);
  }
  const unexpected: string[] = [];
  for (const [key, info] of ckpt.tensors) {
    if (key in spec.params) continue;
    const equalTo = spec.optional[key];
    if (equalTo !== undefined) check(key, spec.params[equalTo], info);
    else if (!ignore.some((r) => r.test(key))) unexpected.push(key);
  }
  return { missing, unexpected, wrongShape };
}

/**
 * Check every input against the template: missing, unexpected and mis-shaped keys, and optional keys that must
 * equal another tensor. Throws WrongCheckpointError for the first input that does not fit, listing all of its
 * problems and what the file seems to be.
 */
export async function checkInputs(
  template: Template,
  inputs: Record<string, Pick<ConverterCheckpoint, 'tensors' | 'readFloat32'>>,
  signal?: AbortSignal,
): Promise<void> {
  for (const given of Object.keys(inputs)) {
    if (!(given in template.inputs)) {
      throw new RangeError(
        `convertPack: template "${template.id}" has no input "${given}" (it takes ${Object.keys(template.inputs).join(', ')})`,
      );
    }
  }
  for (const [input, spec] of Object.entries(template.inputs)) {
    const ckpt = inputs[input];
    if (!ckpt) throw new WrongCheckpointError(input, template.id, 'no file at all', Object.keys(spec.params), [], []);
    const p = findCheckpointProblems(template, input, ckpt);
    const notEqual: string[] = [];
    if (p.missing.length === 0 && p.unexpected.length === 0 && p.wrongShape.length === 0) {
      for (const [key, equalTo] of Object.entries(spec.optional)) {
        throwIfAborted(signal);
        if (ckpt.tensors.has(key) && !(await tensorsEqual(ckpt, key, equalTo, signal))) notEqual.push(key);
      }
    }
    if (p.missing.length || p.unexpected.length || p.wrongShape.length || notEqual.length) {
      throw new WrongCheckpointError(input, template.id, describeCheckpoint(ckpt.tensors), p.missing, p.unexpected, p.wrongShape, notEqual);
    }
  }
}

/** Bit equality of two same-shaped tensors; tied tensors (one storage, as torch.save writes GPT-2's lm_head) without reading. */
async function tensorsEqual(
  ckpt: Pick<ConverterCheckpoint, 'tensors' | 'readFloat32'>,
  a: string,
  b: string,
  signal?: AbortSignal,
): Promise<boolean> {
  const ia = ckpt.tensors.get(a)!;
  const ib = ckpt.tensors.get(b)!;
  const sameStrides = (ia.strides ?? []).length === (ib.strides ?? []).length && (ia.strides ?? []).every((s, i) => s === ib.strides![i]);
  if (ia.offset === ib.offset && ia.byteLength === ib.byteLength && ia.dtype === ib.dtype && sameStrides && sameShape(ia.shape, ib.shape))
    return true;
  const x = new Uint32Array((await ckpt.readFloat32(a, signal)).buffer);
  const y = new Uint32Array((await ckpt.readFloat32(b, signal)).buffer);
  if (x.length !== y.length) return false;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

/** A short description of what a checkpoint holds, from its names and shapes, for error messages. */
export function describeCheckpoint(tensors: ReadonlyMap<string, Pick<CheckpointTensorInfo, 'shape'>>): string {
  const shape = (k: string) => tensors.get(k)?.shape;
  const keys = [...tensors.keys()];
  const has = (prefix: string) => keys.some((k) => k.startsWith(prefix));
  if (keys.length === 0) return 'a file with no tensors';
  if (has('visual.')) {
    const conv1 = shape('visual.conv1.weight');
    const text = has('token_embedding.') || has('transformer.resblocks.') ? ', with its text tower' : '';
    if (has('visual.transformer.')) {
      const width = conv1?.[0];
      const patch = conv1?.[2];
      const layers = new Set(keys.map((k) => /^visual\.transformer\.resblocks\.(\d+)\./.exec(k)?.[1]).filter(Boolean)).size;
      const known: Record<string, string> = { '768/32/12': 'ViT-B/32', '768/16/12': 'ViT-B/16', '1024/14/24': 'ViT-L/14' };
      const name = known[`${width}/${patch}/${layers}`];
      return `a CLIP checkpoint (${name ?? 'ViT'}: width ${width ?? '?'}, patch ${patch ?? '?'}, ${layers} layers${text})`;
    }
    if (has('visual.layer1.')) {
      const out = shape('visual.attnpool.c_proj.weight')?.[0];
      const known: Record<string, string> = { '32/1024': 'RN50', '40/640': 'RN50x4', '48/768': 'RN50x16', '64/1024': 'RN50x64' };
      const name = known[`${conv1?.[0]}/${out}`];
      return `a CLIP checkpoint (${name ?? 'ResNet'}: stem width ${conv1?.[0] ?? '?'}, embedding ${out ?? '?'}${text})`;
    }
    return `a CLIP checkpoint of an unknown vision tower${text}`;
  }
  if (has('clip_project.') || has('gpt.')) {
    const wte = shape('gpt.transformer.wte.weight');
    const gpt = wte ? `GPT-2 width ${wte[1]}, vocabulary ${wte[0]}` : 'no GPT-2';
    const mlp = shape('clip_project.model.0.weight');
    if (mlp) return `ClipCap weights (MLP mapper from a ${mlp[1]}-wide CLIP embedding, ${gpt})`;
    const lin = shape('clip_project.linear.weight');
    const pre = shape('clip_project.prefix_const');
    if (lin) return `ClipCap weights (transformer mapper from a ${lin[1]}-wide CLIP embedding, prefix length ${pre?.[0] ?? '?'}, ${gpt})`;
    return `ClipCap weights (${gpt}, no mapper)`;
  }
  if (has('vision_model.') || has('text_model.'))
    return 'a Hugging Face CLIPModel checkpoint (its names are not the OpenAI CLIP names this model reads)';
  if (has('transformer.h.') || has('h.0.')) return 'a GPT-2 checkpoint alone, without the ClipCap mapper';
  const sample = keys.slice(0, 3).join(', ');
  return `an unknown checkpoint (${keys.length} tensors, such as ${sample})`;
}
