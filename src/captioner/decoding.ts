/**
 * The decode loop: greedy and ClipCap beam search over a decoder that keeps its own KV cache.
 *
 * The model is reached only through `DecoderSteps`, so this file knows nothing about ONNX and is unit-tested on fake
 * step functions. Semantics follow docs/pack-format.md ("Decoding semantics"); in short:
 *  - tokenIds include the stop token that ended a caption ("." = 13) but never <|endoftext|> (eos);
 *  - greedy takes the argmax (ties to the lower id);
 *  - beam search keeps `beams` candidates ranked by score / length (or score when not length-normalised), a stopped
 *    beam re-proposes itself unchanged, ties go to the lower (beam index, token id), and the best beam wins.
 *
 * Beams are the decoder's batch dimension. Only live beams are run: a stopped beam never extends again, so its KV rows
 * are dropped. Each step tells the decoder which previous row every new row continues (`parents`) and which token it
 * appends, and the decoder gathers its cache rows accordingly: one decoder run per step, whatever the beam count.
 */
import { throwIfAborted } from '../shared/errors';

export interface DecoderSteps {
  /**
   * Continue row `parents[i]` of the previous run with token `tokens[i]`, for every new row i.
   * Returns the logits of the new rows, row-major [rows, vocab].
   */
  step(parents: number[], tokens: number[]): Promise<Float32Array>;
}

export interface DecodeOptions {
  vocabSize: number;
  /** tokens that end a caption; the pack's tokens.stop */
  stop: readonly number[];
  /** <|endoftext|>: ends a caption without being part of it */
  eos: number;
  maxTokens: number;
  signal?: AbortSignal;
  /** called after each step with the number of tokens generated so far (for progress and tests) */
  onStep?: (generated: number) => void;
  /**
   * Awaited between two decoder steps: other work on the same sessions may run there (captioner.ts runs an urgent
   * caption, so that one asked for by the user never waits for a whole batch). The decoder's cache rows are this
   * caption's own, so nothing it needs is touched.
   */
  between?: () => Promise<void>;
  /**
   * Greedy: also compute each token's log-probability (logprobs, score). Off by default: the argmax needs no softmax,
   * and the float64 log-softmax over the vocabulary cost 1.3-1.9 ms a token (7-11% of a step). Beam search always
   * computes them: it ranks by them.
   */
  scores?: boolean;
}

export interface DecodeResult {
  tokenIds: number[];
  /**
   * log-probability of each generated token: those of tokenIds, plus that of <|endoftext|> when it ended the caption
   * (as the reference's greedy logprobs do); empty for greedy decoding without `scores`
   */
  logprobs: number[];
  /** summed log-prob of every generated token (eos included); score / length is the confidence (0 when not computed) */
  score: number;
  /** number of decoder steps whose output was used for the answer (tokens generated, eos included) */
  length: number;
}

/**
 * Log-softmax of one logits row in double precision, as a function of the token. It is computed as
 * (x - max) - log(sum(exp(x - max))), the order of operations of torch.log_softmax in float64 that the reference uses.
 */
function logSoftmaxRow(logits: Float32Array, offset: number, n: number): (token: number) => number {
  let max = -Infinity;
  for (let i = 0; i < n; i++) {
    const v = logits[offset + i];
    if (v > max) max = v;
  }
  let sum = 0;
  for (let i = 0; i < n; i++) sum += Math.exp(logits[offset + i] - max);
  const logSum = Math.log(sum);
  return (t) => logits[offset + t] - max - logSum;
}

/** Index of the largest value of a row; ties go to the lower index. */
export function argmax(logits: Float32Array, offset: number, n: number): number {
  let best = 0;
  let bestV = logits[offset];
  for (let i = 1; i < n; i++) {
    const v = logits[offset + i];
    if (v > bestV) {
      bestV = v;
      best = i;
    }
  }
  return best;
}

/** The k largest entries of a row, descending, ties to the lower index. */
export function topK(logits: Float32Array, offset: number, n: number, k: number): number[] {
  const idx: number[] = [];
  const val: number[] = [];
  for (let i = 0; i < n; i++) {
    const v = logits[offset + i];
    if (idx.length === k && !(v > val[k - 1])) continue; // equal to the current k-th: the lower index stays
    let j = idx.length === k ? k - 1 : idx.length;
    if (idx.length < k) {
      idx.push(i);
      val.push(v);
    }
    while (j > 0 && v > val[j - 1]) {
      idx[j] = idx[j - 1];
      val[j] = val[j - 1];
      j--;
    }
    idx[j] = i;
    val[j] = v;
  }
  return idx;
}

/**
 * Greedy decoding of several captions at once. `first` holds the prefill logits [rows, vocab], one row per caption.
 * Finished rows leave the batch.
 */
export async function greedyDecode(first: Float32Array, rows: number, model: DecoderSteps, opts: DecodeOptions): Promise<DecodeResult[]> {
  const V = opts.vocabSize;
  const stop = new Set(opts.stop);
  const results: DecodeResult[] = Array.from({ length: rows }, () => ({ tokenIds: [], logprobs: [], score: 0, length: 0 }));
  let live = Array.from({ length: rows }, (_, i) => i); // caption index of each current row
  let logits = first;
  for (let generated = 0; generated < opts.maxTokens; generated++) {
    throwIfAborted(opts.signal);
    const parents: number[] = [];
    const tokens: number[] = [];
    const nextLive: number[] = [];
    live.forEach((cap, row) => {
      const off = row * V;
      const tok = argmax(logits, off, V);
      const r = results[cap];
      r.length++;
      if (opts.scores) {
        const lp = logSoftmaxRow(logits, off, V)(tok);
        r.logprobs.push(lp);
        r.score += lp;
      }
      if (tok !== opts.eos) r.tokenIds.push(tok);
      if (!stop.has(tok) && tok !== opts.eos) {
        parents.push(row);
        tokens.push(tok);
        nextLive.push(cap);
      }
    });
    opts.onStep?.(generated + 1);
    live = nextLive;
    if (live.length === 0 || generated + 1 >= opts.maxTokens) break;
    await opts.between?.();
    throwIfAborted(opts.signal);
    logits = await model.step(parents, tokens);
  }
  return results;
}

/** Beam search's answer, and every final beam in its own order (best score / length first), for re-ranking. */
export interface BeamResult extends DecodeResult {
  beams: DecodeResult[];
}

interface Beam {
  tokenIds: number[];
  logprobs: number[];
  score: number;
  length: number;
  stopped: boolean;
  /** for a live beam: the decoder row that computed its last token's successor logits (set after each run) */
  row: number;
  lastToken: number;
}

/**
 * ClipCap beam search for one caption. `first` is the prefill logits of a single row [1, vocab].
 */
export async function beamDecode(
  first: Float32Array,
  model: DecoderSteps,
  opts: DecodeOptions & { beams: number; lengthNormalize: boolean },
): Promise<BeamResult> {
  const V = opts.vocabSize;
  const B = opts.beams;
  const stop = new Set(opts.stop);
  const rank = (b: { score: number; length: number }) => (opts.lengthNormalize ? b.score / b.length : b.score);

  const extend = (parent: Beam | null, tok: number, lp: number, row: number): Beam => {
    const keep = tok !== opts.eos;
    return {
      tokenIds: keep ? [...(parent?.tokenIds ?? []), tok] : [...(parent?.tokenIds ?? [])],
      logprobs: [...(parent?.logprobs ?? []), lp],
      score: (parent?.score ?? 0) + lp,
      length: (parent?.length ?? 0) + 1,
      stopped: stop.has(tok) || tok === opts.eos,
      row,
      lastToken: tok,
    };
  };

  // Step 1: the top-B tokens of the prefill.
  throwIfAborted(opts.signal);
  const lp0 = logSoftmaxRow(first, 0, V);
  let beams: Beam[] = topK(first, 0, V, B).map((tok) => extend(null, tok, lp0(tok), 0));
  opts.onStep?.(1);

  for (let generated = 1; generated < opts.maxTokens; generated++) {
    const live = beams.filter((b) => !b.stopped);
    if (live.length === 0) break;
    await opts.between?.();
    throwIfAborted(opts.signal);
    const logits = await model.step(
      live.map((b) => b.row),
      live.map((b) => b.lastToken),
    );
    throwIfAborted(opts.signal);
    // Candidates in (beam index, token id) order, so a stable sort on the rank alone breaks ties as required.
    const cands: Beam[] = [];
    let row = 0;
    for (const b of beams) {
      if (b.stopped) {
        cands.push(b);
        continue;
      }
      const off = row * V;
      const lp = logSoftmaxRow(logits, off, V);
      // Within one beam the rank is monotonic in the token's logit, so its top-B tokens are the only ones that can
      // survive; sort them by id so ties keep the lower id first.
      const toks = topK(logits, off, V, B).sort((x, y) => x - y);
      for (const tok of toks) cands.push(extend(b, tok, lp(tok), row));
      row++;
    }
    const order = cands.map((c, i) => ({ c, i, r: rank(c) }));
    order.sort((x, y) => (y.r !== x.r ? (y.r > x.r ? 1 : -1) : x.i - y.i));
    beams = order.slice(0, B).map((o) => o.c);
    opts.onStep?.(generated + 1);
  }
  // Each step leaves the beams sorted by rank (ties in candidate order), and so does the first: topK's order.
  const final = beams.map((b) => ({ tokenIds: b.tokenIds, logprobs: b.logprobs, score: b.score, length: b.length }));
  return { ...final[0], beams: final };
}
