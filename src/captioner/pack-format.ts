/**
 * The model pack manifest (pack.json), as docs/pack-format.md defines it, and its validation.
 */
import { PackFormatError, UnsupportedPackVersionError } from '../shared/errors';

export const SUPPORTED_FORMAT_VERSIONS = [1] as const;
export const PACK_FILE_KEYS = ['vision', 'mapper', 'decoder', 'tokenizer'] as const;
type PackFileKey = (typeof PACK_FILE_KEYS)[number];
/** CLIP's text tower and its tokenizer: optional, both or neither, present exactly when pack.json has `text`. */
export const TEXT_FILE_KEYS = ['text', 'textTokenizer'] as const;
type TextFileKey = (typeof TEXT_FILE_KEYS)[number];
export type AnyPackFileKey = PackFileKey | TextFileKey;
/** Something per file of a pack: the four every pack has, and the text tower's two when it has one. */
export type PackFiles<T> = Record<PackFileKey, T> & Partial<Record<TextFileKey, T>>;

export interface PackFileEntry {
  path: string;
  bytes: number;
  sha256: string;
}

export interface PackManifest {
  format: 'clipcap-pack';
  formatVersion: number;
  id: string;
  version: string;
  name: string;
  description?: string;
  provenance?: Record<string, unknown>;
  /** q4, q8: weight-only MatMulNBits (model/lowbit.py); onnxruntime-web's wasm runs it far slower than fp32 */
  precision: 'fp32' | 'fp16' | 'int8' | 'q4' | 'q8';
  preprocess: {
    imageSize: number;
    resize: 'shortest_edge';
    interpolation: 'bicubic';
    crop: 'center';
    rescale: number;
    mean: [number, number, number];
    std: [number, number, number];
    channelOrder: 'RGB';
  };
  embedding: { dim: number; l2Normalize: boolean };
  mapper: { type: string; prefixLength: number; clipLength: number | null };
  decoder: { nLayer: number; nHead: number; nEmbd: number; headDim: number; vocabSize: number; nPositions: number };
  tokens: { bos: number; eos: number; stop: number[] };
  generation: { strategy: 'greedy' | 'beam'; beams: number; maxTokens: number; lengthNormalize: boolean };
  files: PackFiles<PackFileEntry>;
  /** CLIP's text tower (docs/pack-format.md, "text"): absent = no gating, no re-ranking */
  text?: TextTower;
}

export interface TextTower {
  /** = embedding.dim: image and text embeddings share CLIP's joint space */
  dim: number;
  /** CLIP's 77; a longer text is cut to contextLength - 1 tokens + eot */
  contextLength: number;
  bos: number;
  eot: number;
  /** CLIPScore's w: clipScore = w * max(cos, 0) */
  clipScoreWeight: number;
  /** beam re-ranking: rank = score / length + rerankWeight * clipScore */
  rerankWeight: number;
  /** a caption whose clipScore is below this is uncertain */
  gateThreshold: number;
  calibration?: Record<string, unknown>;
}

function fail(what: string): never {
  throw new PackFormatError(`pack.json is not a valid model pack manifest: ${what}. Use a pack built by model/export.py.`);
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isPosInt = (v: unknown): v is number => Number.isInteger(v) && (v as number) > 0;
const isNonNegInt = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 0;
const isNonNegNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v >= 0;

/** Parse and validate pack.json (text or parsed). Throws PackFormatError / UnsupportedPackVersionError. */
export function parseManifest(input: unknown): PackManifest {
  let m: unknown = input;
  if (typeof input === 'string') {
    try {
      m = JSON.parse(input);
    } catch (e) {
      throw new PackFormatError('pack.json is not valid JSON. Download the pack again.', { cause: e });
    }
  }
  if (!isObj(m)) fail('not a JSON object');
  if (m.format !== 'clipcap-pack') fail(`"format" is ${JSON.stringify(m.format)}, expected "clipcap-pack"`);
  if (!(SUPPORTED_FORMAT_VERSIONS as readonly unknown[]).includes(m.formatVersion)) {
    throw new UnsupportedPackVersionError(m.formatVersion, SUPPORTED_FORMAT_VERSIONS);
  }
  if (typeof m.id !== 'string' || !/^[a-z0-9-]+$/.test(m.id)) fail('"id" must match [a-z0-9-]+');
  if (typeof m.version !== 'string') fail('"version" must be a string');
  if (!['fp32', 'fp16', 'int8', 'q4', 'q8'].includes(m.precision as string)) fail(`unknown "precision" ${JSON.stringify(m.precision)}`);

  const p = m.preprocess;
  if (!isObj(p)) fail('"preprocess" missing');
  if (!isPosInt(p.imageSize)) fail('"preprocess.imageSize" must be a positive integer');
  if (p.resize !== 'shortest_edge') fail(`unsupported "preprocess.resize" ${JSON.stringify(p.resize)}`);
  if (p.interpolation !== 'bicubic') fail(`unsupported "preprocess.interpolation" ${JSON.stringify(p.interpolation)}`);
  if (p.crop !== 'center') fail(`unsupported "preprocess.crop" ${JSON.stringify(p.crop)}`);
  if (typeof p.rescale !== 'number') fail('"preprocess.rescale" must be a number');
  for (const k of ['mean', 'std'] as const) {
    const a = p[k];
    if (!Array.isArray(a) || a.length !== 3 || !a.every((x) => typeof x === 'number')) fail(`"preprocess.${k}" must be 3 numbers`);
  }
  if ((p.std as number[]).some((x) => x === 0)) fail('"preprocess.std" has a zero');
  if (p.channelOrder !== undefined && p.channelOrder !== 'RGB') fail('"preprocess.channelOrder" must be "RGB"');

  const e = m.embedding;
  if (!isObj(e) || !isPosInt(e.dim) || typeof e.l2Normalize !== 'boolean') fail('"embedding" must have dim and l2Normalize');
  const mp = m.mapper;
  if (!isObj(mp) || !isPosInt(mp.prefixLength)) fail('"mapper.prefixLength" must be a positive integer');
  const d = m.decoder;
  if (!isObj(d)) fail('"decoder" missing');
  for (const k of ['nLayer', 'nHead', 'nEmbd', 'headDim', 'vocabSize', 'nPositions']) {
    if (!isPosInt(d[k])) fail(`"decoder.${k}" must be a positive integer`);
  }
  const t = m.tokens;
  if (!isObj(t) || !isNonNegInt(t.eos) || !Array.isArray(t.stop) || !t.stop.every(isNonNegInt)) {
    fail('"tokens" must have eos and stop ids');
  }
  const g = m.generation;
  if (!isObj(g) || !isPosInt(g.beams) || !isPosInt(g.maxTokens)) fail('"generation" must have beams and maxTokens');
  const f = m.files;
  if (!isObj(f)) fail('"files" missing');
  const textFiles = TEXT_FILE_KEYS.filter((k) => f[k] !== undefined);
  if (textFiles.length === 1) fail(`"files.${textFiles[0]}" needs "files.${TEXT_FILE_KEYS.find((k) => k !== textFiles[0])}" too`);
  if (m.text === undefined && textFiles.length > 0) fail('"files.text" is listed, but the "text" section is missing');
  if (m.text !== undefined) {
    if (textFiles.length === 0) fail('"text" is present, but "files.text" and "files.textTokenizer" are missing');
    checkText(m.text, e.dim);
  }
  for (const key of [...PACK_FILE_KEYS, ...textFiles]) {
    const entry = f[key];
    if (!isObj(entry)) fail(`"files.${key}" missing`);
    if (typeof entry.path !== 'string' || entry.path === '' || entry.path.includes('..') || entry.path.startsWith('/')) {
      fail(`"files.${key}.path" must be a relative path inside the pack`);
    }
    if (!isNonNegInt(entry.bytes)) fail(`"files.${key}.bytes" must be a byte count`);
    if (typeof entry.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(entry.sha256)) fail(`"files.${key}.sha256" must be 64 hex digits`);
  }
  return m as unknown as PackManifest;
}

/** The `text` section: CLIP's text tower, in the joint space of the image embeddings (`dim`). */
function checkText(t: unknown, embeddingDim: number): void {
  if (!isObj(t)) fail('"text" must be an object');
  if (t.dim !== embeddingDim) fail(`"text.dim" must equal "embedding.dim" (${embeddingDim}), got ${JSON.stringify(t.dim)}`);
  if (!isPosInt(t.contextLength) || t.contextLength < 2) fail('"text.contextLength" must be an integer of at least 2');
  if (!isNonNegInt(t.bos) || !isNonNegInt(t.eot)) fail('"text.bos" and "text.eot" must be token ids');
  // text.onnx finds each row's end as argmax(input_ids): eot must be the largest id, and the padding (0) below it.
  if (t.eot <= t.bos || t.eot === 0) fail('"text.eot" must be larger than "text.bos" (the text tower finds it as the largest id)');
  if (typeof t.clipScoreWeight !== 'number' || !(t.clipScoreWeight > 0) || !Number.isFinite(t.clipScoreWeight)) {
    fail('"text.clipScoreWeight" must be a positive number');
  }
  if (!isNonNegNum(t.rerankWeight)) fail('"text.rerankWeight" must be a number >= 0');
  if (!isNonNegNum(t.gateThreshold)) fail('"text.gateThreshold" must be a number >= 0');
  if (t.calibration !== undefined && !isObj(t.calibration)) fail('"text.calibration" must be an object');
}

/** The files of a pack in a fixed order, with their keys: the text tower's two last, when the pack has them. */
export function manifestFiles(m: PackManifest): Array<{ key: AnyPackFileKey } & PackFileEntry> {
  const keys: AnyPackFileKey[] = [...PACK_FILE_KEYS, ...TEXT_FILE_KEYS.filter((k) => m.files[k] !== undefined)];
  return keys.map((key) => ({ key, ...m.files[key]! }));
}

/** CLIP's text tower as a pack holds it: its two files and pack.json's "text" section. */
export interface TextTowerFiles {
  files: Pick<PackFiles<PackFileEntry>, TextFileKey>;
  text: unknown;
}

/**
 * The manifest with CLIP's text tower put in (its two files and "text" section) or, for null, taken out; the rest as
 * it was, in the same key order (model/export.py's), with `provenance` when given. Checked like any pack.json.
 */
export function withTextTower(m: PackManifest, tower: TextTowerFiles | null, provenance = m.provenance): PackManifest {
  const { files, text: _text, ...rest } = m;
  const base = Object.fromEntries(PACK_FILE_KEYS.map((k) => [k, files[k]]));
  return parseManifest({
    ...rest,
    provenance,
    files: tower ? { ...base, ...tower.files } : base,
    ...(tower ? { text: tower.text } : {}),
  });
}
