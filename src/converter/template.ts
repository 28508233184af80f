/**
 * Graph templates (docs/model-install.md, section 3): template.json, parsed and checked before anything is
 * converted, so that a damaged template fails at once with TemplateFormatError rather than halfway through a
 * 600 MB conversion.
 */
import { TemplateFormatError } from '../shared/errors';
import { PACK_FILE_KEYS, TEXT_FILE_KEYS } from '../captioner/pack-format';
import { OP_ARITY, OP_NAMES, type OpName } from './ops';

const TEMPLATE_FORMAT_VERSIONS = [1] as const;
/** The graphs every template has. */
const REQUIRED_GRAPH_ROLES = ['vision', 'mapper', 'decoder'] as const;
/** CLIP's text tower: optional; a template with it also holds text-tokenizer.json and a pack.json "text" section. */
const TEXT_ROLE = 'text';
const GRAPH_ROLES = [...REQUIRED_GRAPH_ROLES, TEXT_ROLE] as const;
type GraphRole = (typeof GRAPH_ROLES)[number];
export const TOKENIZER_PATH = 'tokenizer.json';
export const TEXT_TOKENIZER_PATH = 'text-tokenizer.json';
const PIECE_DTYPES = { float32: 4, float16: 2 } as const;
type PieceDtype = keyof typeof PIECE_DTYPES;

/** The pack.json keys a template must leave to the converter's caller. */
const META_KEYS = ['id', 'version', 'name', 'description', 'provenance', 'files'] as const;

interface TemplateInput {
  /** our state-dict name -> shape */
  params: Record<string, number[]>;
  /** regex sources of keys that may be present and are not used */
  ignore: string[];
  /** key -> the params key it must equal when present (GPT-2's tied lm_head) */
  optional: Record<string, string>;
}

interface TensorRef {
  input: string;
  name: string;
}

export type Piece =
  | { kind: 'copy'; start: number; end: number }
  | { kind: 'tensor'; op: OpName; args: TensorRef[]; eps?: number; dtype: PieceDtype; shape: number[]; bytes: number };

interface TemplateGraph {
  role: GraphRole;
  path: string;
  skeleton: string;
  /** the skeleton file's size, when the template states it (model/template.py does) */
  skeletonBytes?: number;
  bytes: number;
  pieces: Piece[];
}

export interface Template {
  format: 'clipcap-template';
  formatVersion: 1;
  id: string;
  precision: 'fp32' | 'fp16' | 'int8';
  /** pack.json without id, version, name, description, provenance and files */
  manifest: Record<string, unknown>;
  inputs: Record<string, TemplateInput>;
  keyMaps: Record<string, unknown>;
  graphs: TemplateGraph[];
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isNonNegInt = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const isShape = (v: unknown): v is number[] => Array.isArray(v) && v.every(isNonNegInt);
const elements = (shape: readonly number[]) => shape.reduce((n, d) => n * d, 1);
const sameShape = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((d, i) => d === b[i]);
const isSafePath = (p: unknown): p is string =>
  typeof p === 'string' && p !== '' && !p.startsWith('/') && !p.split(/[\\/]/).includes('..') && !/^[a-z]+:/i.test(p);

/** Parse and check template.json (text or parsed). Throws TemplateFormatError naming the first problem. */
export function parseTemplate(input: unknown): Template {
  let t: unknown = input;
  if (typeof input === 'string') {
    try {
      t = JSON.parse(input);
    } catch (e) {
      throw new TemplateFormatError('?', `template.json is not valid JSON: ${(e as Error).message}`);
    }
  }
  if (!isObj(t)) throw new TemplateFormatError('?', 'template.json is not a JSON object');
  const id = typeof t.id === 'string' && /^[a-z0-9-]+$/.test(t.id) ? t.id : '?';
  // Explicitly typed, so TypeScript narrows after `if (…) fail(…)`.
  const fail: (what: string) => never = (what) => {
    throw new TemplateFormatError(id, what);
  };
  if (t.format !== 'clipcap-template') fail(`"format" is ${JSON.stringify(t.format)}, expected "clipcap-template"`);
  if (!(TEMPLATE_FORMAT_VERSIONS as readonly unknown[]).includes(t.formatVersion)) {
    fail(`"formatVersion" ${JSON.stringify(t.formatVersion)} is not one this extension reads (${TEMPLATE_FORMAT_VERSIONS.join(', ')})`);
  }
  if (id === '?') fail('"id" must match [a-z0-9-]+');
  if (!['fp32', 'fp16', 'int8'].includes(t.precision as string)) fail(`unknown "precision" ${JSON.stringify(t.precision)}`);
  if (!isObj(t.manifest)) fail('"manifest" must be an object');
  const manifest = t.manifest;
  for (const k of META_KEYS) if (k in manifest) fail(`"manifest.${k}" belongs to the pack, not the template`);
  if (manifest.precision !== undefined && manifest.precision !== t.precision) fail('"manifest.precision" differs from "precision"');
  if (t.keyMaps !== undefined && !isObj(t.keyMaps)) fail('"keyMaps" must be an object');

  if (!isObj(t.inputs) || Object.keys(t.inputs).length === 0) fail('"inputs" must name at least one input');
  const inputs: Record<string, TemplateInput> = {};
  /** param name -> the input roles declaring it */
  const owners = new Map<string, string[]>();
  for (const [role, raw] of Object.entries(t.inputs)) {
    if (!/^[a-z][a-z0-9_-]*$/.test(role)) fail(`input role ${JSON.stringify(role)} must match [a-z][a-z0-9_-]*`);
    if (!isObj(raw) || !isObj(raw.params)) fail(`"inputs.${role}.params" must be an object`);
    const params: Record<string, number[]> = {};
    for (const [name, shape] of Object.entries(raw.params)) {
      if (!isShape(shape)) fail(`"inputs.${role}.params.${name}" must be a shape (non-negative integers)`);
      params[name] = shape;
      owners.set(name, [...(owners.get(name) ?? []), role]);
    }
    const ignore = raw.ignore ?? [];
    if (!Array.isArray(ignore) || !ignore.every((r) => typeof r === 'string')) fail(`"inputs.${role}.ignore" must be a list of regexes`);
    for (const r of ignore) {
      try {
        new RegExp(r);
      } catch {
        fail(`"inputs.${role}.ignore" has an invalid regex ${JSON.stringify(r)}`);
      }
    }
    const optional = raw.optional ?? {};
    if (!isObj(optional)) fail(`"inputs.${role}.optional" must be an object`);
    for (const [k, v] of Object.entries(optional)) {
      if (typeof v !== 'string' || !(v in params)) fail(`"inputs.${role}.optional.${k}" must name a parameter of "${role}"`);
      if (k in params) fail(`"inputs.${role}.optional.${k}" is also a required parameter`);
    }
    inputs[role] = { params, ignore: ignore, optional: optional as Record<string, string> };
  }

  const resolve = (arg: unknown, where: string): TensorRef => {
    if (typeof arg !== 'string' || arg === '') return fail(`${where}: a tensor argument must be a parameter name`);
    // "role:name" pins the input; a bare name is looked up among every input's params.
    const colon = arg.indexOf(':');
    if (colon > 0 && arg.slice(0, colon) in inputs) {
      const input = arg.slice(0, colon);
      const name = arg.slice(colon + 1);
      if (!(name in inputs[input].params)) fail(`${where}: "${name}" is not a parameter of input "${input}"`);
      return { input, name };
    }
    const roles = owners.get(arg) ?? [];
    if (roles.length !== 1)
      fail(`${where}: "${arg}" is ${roles.length ? `declared by several inputs (${roles.join(', ')})` : 'not declared by any input'}`);
    return { input: roles[0], name: arg };
  };

  if (!Array.isArray(t.graphs)) fail('"graphs" must be a list');
  const graphs: TemplateGraph[] = [];
  const paths = new Set<string>();
  for (const [gi, g] of (t.graphs as unknown[]).entries()) {
    const where = `graphs[${gi}]`;
    if (!isObj(g)) fail(`${where} must be an object`);
    if (!(GRAPH_ROLES as readonly unknown[]).includes(g.role)) fail(`${where}.role must be one of ${GRAPH_ROLES.join(', ')}`);
    const role = g.role as GraphRole;
    if (graphs.some((x) => x.role === role)) fail(`graph role "${role}" appears twice`);
    if (!isSafePath(g.path) || !isSafePath(g.skeleton)) fail(`${where}: "path" and "skeleton" must be relative paths inside the template`);
    if (paths.has(g.path) || g.path === TOKENIZER_PATH || g.path === TEXT_TOKENIZER_PATH)
      fail(`${where}: "path" ${JSON.stringify(g.path)} is used twice`);
    paths.add(g.path);
    if (!isNonNegInt(g.bytes)) fail(`${where}.bytes must be a byte count`);
    if (g.skeletonBytes !== undefined && !isNonNegInt(g.skeletonBytes)) fail(`${where}.skeletonBytes must be a byte count`);
    if (!Array.isArray(g.pieces)) fail(`${where}.pieces must be a list`);
    const pieces: Piece[] = [];
    let total = 0;
    for (const [pi, p] of (g.pieces as unknown[]).entries()) {
      const pw = `${where}.pieces[${pi}]`;
      if (!isObj(p)) fail(`${pw} must be an object`);
      if ('copy' in p) {
        const c = p.copy;
        if (!Array.isArray(c) || c.length !== 2 || !isNonNegInt(c[0]) || !isNonNegInt(c[1]) || c[1] < c[0])
          fail(`${pw}.copy must be [start, end] with start <= end`);
        const [start, end] = c as [number, number];
        pieces.push({ kind: 'copy', start, end });
        total += end - start;
        continue;
      }
      if (!(OP_NAMES as readonly unknown[]).includes(p.op)) fail(`${pw}: unknown op ${JSON.stringify(p.op)}`);
      const op = p.op as OpName;
      if (!Array.isArray(p.args)) fail(`${pw}.args must be a list`);
      const arity = OP_ARITY[op];
      let rawArgs = p.args as unknown[];
      if (p.attrs !== undefined && !isObj(p.attrs)) fail(`${pw}.attrs must be an object`);
      // model/template.py writes eps under "attrs"; a top-level "eps" or a trailing number argument (the Python
      // signature bn_fold_weight(conv_w, …, bn_var, eps)) say the same.
      let eps = p.attrs?.eps ?? p.eps;
      if (arity.eps && eps === undefined && rawArgs.length === arity.tensors + 1 && typeof rawArgs[arity.tensors] === 'number') {
        eps = rawArgs[arity.tensors];
        rawArgs = rawArgs.slice(0, arity.tensors);
      }
      if (rawArgs.length !== arity.tensors) fail(`${pw}: ${op} takes ${arity.tensors} tensor argument(s), got ${rawArgs.length}`);
      if (arity.eps && (typeof eps !== 'number' || !Number.isFinite(eps) || eps < 0)) fail(`${pw}: ${op} needs a non-negative "eps"`);
      if (!arity.eps && eps !== undefined) fail(`${pw}: ${op} takes no "eps"`);
      const args = rawArgs.map((a, i) => resolve(a, `${pw}.args[${i}]`));
      if (!((p.dtype as string) in PIECE_DTYPES)) fail(`${pw}: dtype must be float32 or float16, got ${JSON.stringify(p.dtype)}`);
      const dtype = p.dtype as PieceDtype;
      if (!isShape(p.shape)) fail(`${pw}.shape must be a shape`);
      const shape = p.shape;
      const argShapes = args.map((a) => inputs[a.input].params[a.name]);
      const expected = outputShape(op, argShapes);
      if (typeof expected === 'string') fail(`${pw}: ${expected}`);
      // The graph may store a result under another shape of the same size (an initialiser [1, P, E] for a
      // parameter [P, E]): the row-major bytes are the same, so only the element count must agree.
      if (elements(expected) !== elements(shape)) {
        fail(`${pw}: ${op} of [${argShapes[0].join(', ')}] gives [${expected.join(', ')}], but the piece stores [${shape.join(', ')}]`);
      }
      const bytes = elements(shape) * PIECE_DTYPES[dtype];
      pieces.push({ kind: 'tensor', op, args, ...(eps !== undefined ? { eps: eps as number } : {}), dtype, shape, bytes });
      total += bytes;
    }
    if (total !== g.bytes) fail(`${where} ("${role}"): its pieces add up to ${total} bytes, but "bytes" says ${g.bytes}`);
    const skeletonBytes = g.skeletonBytes;
    const copied = pieces.reduce((n, p) => Math.max(n, p.kind === 'copy' ? p.end : 0), 0);
    if (skeletonBytes !== undefined && copied > skeletonBytes)
      fail(`${where}: a piece copies up to byte ${copied} of a ${skeletonBytes}-byte skeleton`);
    graphs.push({
      role,
      path: g.path,
      skeleton: g.skeleton,
      ...(skeletonBytes !== undefined ? { skeletonBytes } : {}),
      bytes: g.bytes,
      pieces,
    });
  }
  for (const role of REQUIRED_GRAPH_ROLES) if (!graphs.some((x) => x.role === role)) fail(`no "${role}" graph`);
  // every graph role is a pack file key, so the manifest the converter writes is complete
  const fileKeys: readonly string[] = [...PACK_FILE_KEYS, ...TEXT_FILE_KEYS];
  if (!GRAPH_ROLES.every((r) => fileKeys.includes(r))) fail('graph roles and pack files disagree');
  // pack.json has "text" exactly when it lists text.onnx (docs/pack-format.md)
  const text = graphs.some((g) => g.role === TEXT_ROLE);
  if (text && !isObj(manifest.text)) fail('a template with a "text" graph needs "manifest.text"');
  if (!text && manifest.text !== undefined) fail('"manifest.text" is set, but the template has no "text" graph');

  return {
    format: 'clipcap-template',
    formatVersion: 1,
    id,
    precision: t.precision as Template['precision'],
    manifest,
    inputs,
    keyMaps: t.keyMaps ?? {},
    graphs,
  };
}

/** The shape an op produces from its arguments' shapes, or why it cannot. */
function outputShape(op: OpName, args: readonly (readonly number[])[]): number[] | string {
  switch (op) {
    case 'identity':
      return [...args[0]];
    case 'transpose':
      return args[0].length === 2 ? [args[0][1], args[0][0]] : `transpose needs a 2-D tensor, not [${args[0].join(', ')}]`;
    case 'bn_fold_weight':
    case 'bn_fold_bias': {
      const [conv, ...bn] = args;
      if (conv.length < 1) return `${op} needs a convolution weight with an output-channel axis`;
      if (bn.some((s) => !sameShape(s, [conv[0]]))) return `${op}: the BatchNorm vectors must have shape [${conv[0]}]`;
      return op === 'bn_fold_weight' ? [...conv] : [conv[0]];
    }
  }
}

/** Does the template make CLIP's text tower (text.onnx, text-tokenizer.json)? */
export function hasText(t: Template): boolean {
  return t.graphs.some((g) => g.role === TEXT_ROLE);
}

/**
 * The template as a pack without CLIP's text tower (the user turned the feature off): no text graph, no "text"
 * section, and the keys only the text graph reads become ignored keys, like the others a file may hold and no
 * graph uses. The installer passes this one to the downloader too, so a range read skips the text tower's bytes.
 * model/template.py: without_text does the same.
 */
export function withoutText(t: Template): Template {
  if (!hasText(t)) return t;
  const { text: _text, ...manifest } = t.manifest;
  return { ...keepGraphs(t, (role) => role !== TEXT_ROLE), manifest };
}

/**
 * The template as CLIP's text tower alone (the user turned the feature on for a model already installed): only the
 * text graph, only the inputs it reads, and every other key of those inputs ignored, so the downloader fetches the
 * text tower's bytes and nothing else. convertTextTower writes what it describes; the template must have a text tower.
 */
export function textOnly(t: Template): Template {
  if (!hasText(t)) throw new TemplateFormatError(t.id, 'the template has no text tower');
  return keepGraphs(t, (role) => role === TEXT_ROLE);
}

const exactly = (key: string) => `^${key.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`;

/**
 * The template with only the graphs `keep` picks. A key no kept graph reads becomes an ignored key (kept where an
 * optional key must equal it, as GPT-2's tied lm_head must equal wte); an input no kept graph reads is dropped.
 */
function keepGraphs(t: Template, keep: (role: GraphRole) => boolean): Template {
  const graphs = t.graphs.filter((g) => keep(g.role));
  const read = new Set(
    graphs.flatMap((g) => g.pieces.flatMap((p) => (p.kind === 'tensor' ? p.args.map((a) => `${a.input}:${a.name}`) : []))),
  );
  const inputs: Record<string, TemplateInput> = {};
  for (const [role, spec] of Object.entries(t.inputs)) {
    if (![...read].some((k) => k.startsWith(`${role}:`))) continue;
    const kept = new Set(Object.values(spec.optional).filter((k) => read.has(`${role}:${k}`)));
    const unread = Object.keys(spec.params).filter((k) => !read.has(`${role}:${k}`) && !kept.has(k));
    const params = Object.fromEntries(Object.entries(spec.params).filter(([k]) => !unread.includes(k)));
    const optional = Object.fromEntries(Object.entries(spec.optional).filter(([, k]) => k in params));
    const dropped = Object.keys(spec.optional).filter((k) => !(k in optional));
    inputs[role] = { params, ignore: [...spec.ignore, ...[...unread, ...dropped].map(exactly)], optional };
  }
  return { ...t, inputs, graphs };
}

/** Bytes of every graph the template writes (what the converter's progress counts, with tokenizer.json). */
export function templateGraphBytes(t: Template): number {
  return t.graphs.reduce((n, g) => n + g.bytes, 0);
}
