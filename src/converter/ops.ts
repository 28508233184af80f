/**
 * The ops a template piece applies to checkpoint tensors (docs/model-install.md, section 3), the same as Python's
 * model/template.py. Results must be bit-identical to what torch's ONNX export wrote, so every float32 operation
 * is emulated with Math.fround in torch's order: a float32 +, *, / or sqrt done in double and rounded once to
 * float32 is correctly rounded (double has more than 2 * 24 + 2 significand bits), hence equal to torch's.
 *
 * Each op is an `OpOutput`: it fills any slice of its row-major result on demand, so the converter can stream a
 * transposed or folded tensor chunk by chunk without holding a second full-size copy of it.
 */
import { OpArgumentError } from '../shared/errors';

export const OP_NAMES = ['identity', 'transpose', 'bn_fold_weight', 'bn_fold_bias'] as const;
export type OpName = (typeof OP_NAMES)[number];

/** Per op: how many tensor arguments it takes and whether a trailing number (eps) follows them. */
export const OP_ARITY: Record<OpName, { tensors: number; eps: boolean }> = {
  identity: { tensors: 1, eps: false },
  transpose: { tensors: 1, eps: false },
  bn_fold_weight: { tensors: 5, eps: true },
  bn_fold_bias: { tensors: 5, eps: true },
};

export interface OpInput {
  data: Float32Array;
  shape: readonly number[];
}

export interface OpOutput {
  /** elements in the result */
  readonly length: number;
  /** write result elements [start, start + dst.length) into dst */
  fill(dst: Float32Array, start: number): void;
  /** the result itself when it already exists in memory (identity), so it can be written without a copy */
  readonly whole?: Float32Array;
}

const count = (shape: readonly number[]) => shape.reduce((n, d) => n * d, 1);

function need(cond: boolean, what: string): asserts cond {
  if (!cond) throw new OpArgumentError(what);
}

function identity(x: OpInput): OpOutput {
  return { length: x.data.length, whole: x.data, fill: (dst, start) => dst.set(x.data.subarray(start, start + dst.length)) };
}

/** 2-D transpose: input [R, C] -> output [C, R] (nn.Linear's [out, in] stored as MatMul's [in, out], or back). */
export function transpose(x: OpInput): OpOutput {
  need(x.shape.length === 2, `transpose needs a 2-D tensor, got shape [${x.shape.join(', ')}]`);
  const [rows, cols] = x.shape;
  const src = x.data;
  return {
    length: src.length,
    fill(dst, start) {
      // output element i is at (c, r) = (i / rows, i % rows), read from src[r * cols + c]
      let c = Math.floor(start / rows);
      let r = start - c * rows;
      for (let i = 0; i < dst.length; i++) {
        dst[i] = src[r * cols + c];
        if (++r === rows) {
          r = 0;
          c++;
        }
      }
    },
  };
}

/** s = bn_w / sqrt(bn_var + eps), each step rounded to float32 as torch computes it. */
function bnScale(bnW: Float32Array, bnVar: Float32Array, eps: number): Float32Array {
  const e = Math.fround(eps); // torch casts the Python scalar to the tensor's float32 before adding
  const s = new Float32Array(bnW.length);
  for (let c = 0; c < s.length; c++) s[c] = Math.fround(bnW[c] / Math.fround(Math.sqrt(Math.fround(bnVar[c] + e))));
  return s;
}

function checkBn(conv: OpInput, bn: OpInput[]): number {
  need(conv.shape.length >= 1, 'bn_fold needs a convolution weight with an output-channel axis');
  const channels = conv.shape[0];
  for (const t of bn)
    need(t.shape.length === 1 && t.shape[0] === channels, `BatchNorm vectors must have shape [${channels}], got [${t.shape.join(', ')}]`);
  need(count(conv.shape) === conv.data.length, 'convolution weight has the wrong number of elements');
  return channels;
}

/** w' = conv_w * s[c], c the output channel (first axis). */
export function bnFoldWeight(convW: OpInput, bnW: OpInput, bnB: OpInput, bnMean: OpInput, bnVar: OpInput, eps: number): OpOutput {
  const channels = checkBn(convW, [bnW, bnB, bnMean, bnVar]);
  const s = bnScale(bnW.data, bnVar.data, eps);
  const per = convW.data.length / channels;
  const src = convW.data;
  return {
    length: src.length,
    fill(dst, start) {
      for (let i = 0; i < dst.length; i++) {
        const j = start + i;
        dst[i] = Math.fround(src[j] * s[Math.floor(j / per)]);
      }
    },
  };
}

/** b' = bn_b - bn_mean * s (the convolutions BatchNorm follows in CLIP's ResNet have no bias of their own). */
export function bnFoldBias(convW: OpInput, bnW: OpInput, bnB: OpInput, bnMean: OpInput, bnVar: OpInput, eps: number): OpOutput {
  const channels = checkBn(convW, [bnW, bnB, bnMean, bnVar]);
  const s = bnScale(bnW.data, bnVar.data, eps);
  const out = new Float32Array(channels);
  for (let c = 0; c < channels; c++) out[c] = Math.fround(bnB.data[c] - Math.fround(bnMean.data[c] * s[c]));
  return identity({ data: out, shape: [channels] });
}

/** Apply an op by name; `eps` is required by the BatchNorm folds. */
export function applyOp(op: OpName, args: OpInput[], eps?: number): OpOutput {
  const { tensors, eps: needsEps } = OP_ARITY[op];
  need(args.length === tensors, `${op} takes ${tensors} tensor(s), got ${args.length}`);
  need(!needsEps || (typeof eps === 'number' && Number.isFinite(eps)), `${op} needs a finite eps`);
  switch (op) {
    case 'identity':
      return identity(args[0]);
    case 'transpose':
      return transpose(args[0]);
    case 'bn_fold_weight':
      return bnFoldWeight(args[0], args[1], args[2], args[3], args[4], eps!);
    case 'bn_fold_bias':
      return bnFoldBias(args[0], args[1], args[2], args[3], args[4], eps!);
  }
}

/** The whole result as one array (tests, and callers that need it all at once). */
export function materialize(out: OpOutput): Float32Array {
  if (out.whole) return out.whole;
  const dst = new Float32Array(out.length);
  out.fill(dst, 0);
  return dst;
}
