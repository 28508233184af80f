/**
 * convertPack (docs/model-install.md, section 4): a graph template plus published checkpoints -> the pack's files,
 * streamed into a PackSink, byte for byte what model/export.py writes for the same weights.
 *
 * Memory: at any moment the converter holds the current graph's skeleton, the source tensors of ONE piece (as
 * float32, straight from the reader), one chunk being filled and a small float32 scratch. Ops fill their output
 * slice by slice into the scratch (see ops.ts), so a transposed or folded tensor never exists twice, and the
 * float16 form never exists whole. `stats.maxBufferedBytes` reports the peak of that accounting, for tests.
 *
 * Failure and abort: pieces are streamed as they are made, so when convertPack throws (a wrong checkpoint is
 * caught before the first byte; a reader failure, a sink failure or an abort are not) the sink may hold partial
 * files. convertPack never claims them: only the returned manifest says a file is complete, with its size and
 * SHA-256. Deleting the partial output is the caller's job (the install job deletes the store entry).
 *
 * CLIP's text tower: a template with a "text" graph also writes text.onnx and text-tokenizer.json and keeps
 * pack.json's "text" section, unless the caller passes `text: false` (the user turned caption checking off); the
 * pack is then exactly the one a template without the text graph makes.
 */
import { CorruptCheckpointError, OpArgumentError, TemplateFormatError, throwIfAborted } from '../shared/errors';
import {
  PACK_FILE_KEYS,
  TEXT_FILE_KEYS,
  parseManifest,
  type AnyPackFileKey,
  type PackFileEntry,
  type PackManifest,
  type TextTowerFiles,
} from '../captioner/pack-format';
import { checkInputs, type ConverterCheckpoint } from './check-inputs';
import { float32ToFloat16 } from './half';
import { applyOp, type OpInput, type OpOutput } from './ops';
import { Sha256Stream } from './sha256-stream';
import {
  TEXT_TOKENIZER_PATH,
  TOKENIZER_PATH,
  hasText,
  templateGraphBytes,
  textOnly,
  withoutText,
  type Piece,
  type Template,
} from './template';

export interface PackSink {
  /** Append `data` to the file at `path`, at `offset` (the bytes appended to that file so far). The converter does
   * not touch `data` after the returned promise settles, nor reuse its buffer. */
  append(path: string, offset: number, data: Uint8Array): Promise<void>;
}

interface PackMeta {
  id: string;
  version: string;
  name: string;
  description?: string;
  provenance?: Record<string, unknown>;
}

export interface ConvertStats {
  /** peak bytes the converter held itself: skeleton + one piece's source tensors + chunk + scratch */
  maxBufferedBytes: number;
  /** bytes appended to the sink, every file */
  bytesWritten: number;
  /** tensor pieces written */
  tensors: number;
  /** sink.append calls */
  chunks: number;
}

export interface ConvertArgs {
  template: Template;
  /** the bytes of a file of the template: a skeleton it names (e.g. "vision.skel"), and text-tokenizer.json when
   * the pack gets CLIP's text tower and `textTokenizer` is not given */
  skeleton(path: string): Promise<Uint8Array>;
  tokenizer: Uint8Array;
  /** CLIP's text tower (text.onnx, text-tokenizer.json, pack.json "text"), when the template has it: default true.
   * false: the pack is made without it, and the checkpoints' text-tower keys are not read (nor required). */
  text?: boolean;
  /** text-tokenizer.json's bytes; default: read through `skeleton` */
  textTokenizer?: Uint8Array;
  /** one checkpoint per input role the template names */
  inputs: Record<string, ConverterCheckpoint>;
  sink: PackSink;
  meta: PackMeta;
  signal?: AbortSignal;
  /** bytes written and the total, after each chunk */
  onProgress?(written: number, total: number): void;
  /** bytes per sink.append (default 4 MiB): large enough for few store transactions, small beside a tensor */
  chunkBytes?: number;
  /** filled in as the conversion goes (also when it fails) */
  stats?: ConvertStats;
}

/** What convertTextTower takes: the arguments about the graphs, their inputs and the output. */
type GraphArgs = Omit<ConvertArgs, 'tokenizer' | 'meta' | 'text'>;

const DEFAULT_CHUNK_BYTES = 4 << 20;
const FILE_ORDER: readonly AnyPackFileKey[] = [...PACK_FILE_KEYS, ...TEXT_FILE_KEYS];
/** float32 elements per scratch slice: 256 KiB, so the scratch stays small beside a chunk */
const SCRATCH_ELEMENTS = 1 << 16;

// ONNX stores tensors little-endian; typed arrays use the platform's order, which is little-endian on every
// platform a browser extension runs on. Checked once rather than assumed silently.
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Bytes held, and their peak. */
class Budget {
  held = 0;
  constructor(private readonly stats: ConvertStats) {}
  take(n: number) {
    this.held += n;
    if (this.held > this.stats.maxBufferedBytes) this.stats.maxBufferedBytes = this.held;
  }
  give(n: number) {
    this.held -= n;
  }
}

/** One output file: fills fixed-size chunks, hashes them and hands them to the sink in order. */
class ChunkWriter {
  private buf: Uint8Array | null = null;
  private pos = 0;
  private written = 0;
  private readonly hash = new Sha256Stream();

  constructor(
    private readonly path: string,
    private readonly args: GraphArgs,
    private readonly chunkBytes: number,
    private readonly budget: Budget,
    private readonly stats: ConvertStats,
    private readonly progress: () => void,
  ) {}

  async write(data: Uint8Array): Promise<void> {
    let i = 0;
    while (i < data.byteLength) {
      if (!this.buf) {
        // A fresh buffer for every chunk: the sink may keep the one it got (MemoryPackStore copies, others may not).
        this.buf = new Uint8Array(this.chunkBytes);
        this.budget.take(this.chunkBytes);
      }
      const n = Math.min(data.byteLength - i, this.chunkBytes - this.pos);
      this.buf.set(data.subarray(i, i + n), this.pos);
      this.pos += n;
      i += n;
      if (this.pos === this.chunkBytes) await this.flush();
    }
  }

  async flush(): Promise<void> {
    if (!this.buf) return;
    throwIfAborted(this.args.signal);
    // A file's last chunk is usually short: hand over its own small buffer, not a view that pins a whole chunk.
    const out = this.pos === this.chunkBytes ? this.buf : this.buf.slice(0, this.pos);
    const extra = out === this.buf ? 0 : out.byteLength;
    this.budget.take(extra);
    // Hash before handing over: a sink may transfer (detach) the buffer.
    this.hash.update(out);
    try {
      await this.args.sink.append(this.path, this.written, out);
    } finally {
      this.budget.give(extra);
    }
    this.written += out.byteLength;
    this.stats.bytesWritten += out.byteLength;
    this.stats.chunks++;
    this.buf = null;
    this.pos = 0;
    this.budget.give(this.chunkBytes);
    this.progress();
  }

  async finish(): Promise<PackFileEntry> {
    await this.flush();
    return { path: this.path, bytes: this.written, sha256: this.hash.hex() };
  }
}

/** What one conversion shares between its files. */
interface Run {
  args: GraphArgs;
  template: Template;
  chunkBytes: number;
  budget: Budget;
  stats: ConvertStats;
  /** bytes the conversion writes: its graphs, and the whole files once they are known (see addWhole) */
  total: number;
  progress: () => void;
}

/** Check the arguments and the inputs, before anything else is read or written. */
async function startRun(args: GraphArgs, template: Template): Promise<Run> {
  const stats = args.stats ?? { maxBufferedBytes: 0, bytesWritten: 0, tensors: 0, chunks: 0 };
  const chunkBytes = args.chunkBytes ?? DEFAULT_CHUNK_BYTES;
  if (!Number.isSafeInteger(chunkBytes) || chunkBytes < 16)
    throw new RangeError(`convertPack: chunkBytes must be an integer >= 16, got ${chunkBytes}`);
  if (!LITTLE_ENDIAN) throw new RangeError('convertPack: this platform is big-endian; ONNX files are little-endian');
  throwIfAborted(args.signal);
  await checkInputs(template, args.inputs, args.signal);
  const run: Run = {
    args,
    template,
    chunkBytes,
    budget: new Budget(stats),
    stats,
    total: templateGraphBytes(template),
    progress: () => {},
  };
  run.progress = () => args.onProgress?.(stats.bytesWritten, run.total);
  return run;
}

/** Count files copied whole (tokenizers) in the progress total, before the first byte is written. */
function addWhole(run: Run, files: Array<Uint8Array | null>): void {
  for (const f of files) run.total += f?.byteLength ?? 0;
}

/** A file the converter copies whole (a tokenizer). */
async function writeWhole(run: Run, path: string, bytes: Uint8Array): Promise<PackFileEntry> {
  throwIfAborted(run.args.signal);
  const out = new ChunkWriter(path, run.args, run.chunkBytes, run.budget, run.stats, run.progress);
  await out.write(bytes);
  return out.finish();
}

const textTokenizerOf = (args: GraphArgs) => args.textTokenizer ?? args.skeleton(TEXT_TOKENIZER_PATH);

/** Convert published checkpoints into a pack with a graph template. Returns the pack's manifest (pack.json). */
export async function convertPack(args: ConvertArgs): Promise<PackManifest> {
  const template = args.text === false ? withoutText(args.template) : args.template;
  const run = await startRun(args, template);
  const textTokenizer = hasText(template) ? await textTokenizerOf(args) : null;
  addWhole(run, [args.tokenizer, textTokenizer]);
  const files: Partial<Record<AnyPackFileKey, PackFileEntry>> = {};
  for (const graph of template.graphs) files[graph.role] = await writeGraph(run, graph);
  files.tokenizer = await writeWhole(run, TOKENIZER_PATH, args.tokenizer);
  if (textTokenizer) files.textTokenizer = await writeWhole(run, TEXT_TOKENIZER_PATH, textTokenizer);

  const { id, version, name, description, provenance } = args.meta;
  const { text, ...described } = template.manifest;
  // Key order follows model/export.py's pack_manifest, so a pack.json written from this reads the same.
  const manifest = {
    format: 'clipcap-pack',
    formatVersion: 1,
    id,
    version,
    name,
    description: description ?? '',
    provenance: provenance ?? {},
    ...described,
    precision: template.precision,
    // in pack_manifest's order: the three graphs, tokenizer.json, then the text tower's two
    files: Object.fromEntries(FILE_ORDER.filter((k) => files[k]).map((k) => [k, files[k]])),
    ...(text !== undefined ? { text } : {}),
  };
  return parseManifest(manifest);
}

/**
 * CLIP's text tower alone, for a pack that was made without it (the user turned caption checking on later): writes
 * text.onnx and text-tokenizer.json, byte for byte what convertPack writes for them, and returns their entries and
 * pack.json's "text" section; withTextTower puts them into the pack's manifest. `args.template` is the whole template;
 * only the inputs its text graph reads are needed.
 */
export async function convertTextTower(args: GraphArgs): Promise<TextTowerFiles> {
  const template = textOnly(args.template);
  const run = await startRun(args, template);
  const textTokenizer = await textTokenizerOf(args);
  addWhole(run, [textTokenizer]);
  const text = await writeGraph(run, template.graphs[0]);
  return { files: { text, textTokenizer: await writeWhole(run, TEXT_TOKENIZER_PATH, textTokenizer) }, text: args.template.manifest.text };
}

/** One graph: its skeleton's bytes with the converted tensors in their places, streamed to the sink. */
async function writeGraph(run: Run, graph: Template['graphs'][number]): Promise<PackFileEntry> {
  const { args, template, budget, stats } = run;
  const { signal } = args;
  throwIfAborted(signal);
  const skel = await args.skeleton(graph.skeleton);
  if (graph.skeletonBytes !== undefined && skel.byteLength !== graph.skeletonBytes) {
    throw new TemplateFormatError(
      template.id,
      `${graph.skeleton} has ${skel.byteLength} bytes, but the template says ${graph.skeletonBytes}`,
    );
  }
  budget.take(skel.byteLength);
  const out = new ChunkWriter(graph.path, args, run.chunkBytes, budget, stats, run.progress);
  for (const [i, piece] of graph.pieces.entries()) {
    throwIfAborted(signal);
    if (piece.kind === 'copy') {
      if (piece.end > skel.byteLength) {
        throw new TemplateFormatError(
          template.id,
          `${graph.skeleton} has ${skel.byteLength} bytes, but piece ${i} of "${graph.role}" copies up to byte ${piece.end}`,
        );
      }
      await out.write(skel.subarray(piece.start, piece.end));
    } else {
      await writeTensor(args, piece, out, budget, `piece ${i} of "${graph.role}"`);
      stats.tensors++;
    }
  }
  const entry = await out.finish();
  budget.give(skel.byteLength);
  if (entry.bytes !== graph.bytes) {
    // Unreachable while parseTemplate checks the piece sizes; kept so a bug cannot produce a mislabelled file.
    throw new TemplateFormatError(template.id, `"${graph.role}" came out at ${entry.bytes} bytes, not ${graph.bytes}`);
  }
  return entry;
}

async function writeTensor(
  args: GraphArgs,
  piece: Extract<Piece, { kind: 'tensor' }>,
  out: ChunkWriter,
  budget: Budget,
  where: string,
): Promise<void> {
  const { template } = args;
  const sources: OpInput[] = [];
  let held = 0;
  try {
    for (const ref of piece.args) {
      const data = await args.inputs[ref.input].readFloat32(ref.name, args.signal);
      budget.take(data.byteLength);
      held += data.byteLength;
      const shape = template.inputs[ref.input].params[ref.name];
      const n = shape.reduce((a, d) => a * d, 1);
      if (data.length !== n)
        throw new CorruptCheckpointError(
          `tensor "${ref.name}" reads as ${data.length} values, but its shape [${shape.join(', ')}] needs ${n}`,
        );
      sources.push({ data, shape });
    }
    let result: OpOutput;
    try {
      result = applyOp(piece.op, sources, piece.eps);
    } catch (e) {
      if (e instanceof OpArgumentError) throw new TemplateFormatError(template.id, `${where}: ${e.message}`);
      throw e;
    }
    await encode(result, piece.dtype, out, budget);
  } finally {
    budget.give(held);
  }
}

/** Write an op's result as little-endian float32 or float16, slice by slice. */
async function encode(result: OpOutput, dtype: 'float32' | 'float16', out: ChunkWriter, budget: Budget): Promise<void> {
  if (dtype === 'float32' && result.whole) {
    const w = result.whole;
    await out.write(new Uint8Array(w.buffer, w.byteOffset, w.byteLength));
    return;
  }
  const size = Math.min(SCRATCH_ELEMENTS, result.length);
  const scratch = new Float32Array(size);
  const half = dtype === 'float16' ? new Uint16Array(size) : null;
  const scratchBytes = scratch.byteLength + (half?.byteLength ?? 0);
  budget.take(scratchBytes);
  try {
    for (let start = 0; start < result.length; start += size) {
      const k = Math.min(size, result.length - start);
      const s = scratch.subarray(0, k);
      result.fill(s, start);
      if (half) {
        const h = float32ToFloat16(s, half.subarray(0, k));
        await out.write(new Uint8Array(h.buffer, h.byteOffset, h.byteLength));
      } else {
        await out.write(new Uint8Array(s.buffer, s.byteOffset, s.byteLength));
      }
    }
  } finally {
    budget.give(scratchBytes);
  }
}
