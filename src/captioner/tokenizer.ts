/**
 * GPT-2 tokenizer from the pack's tokenizer.json, through transformers.js, entirely offline (no hub, no fetch).
 */
import { PackFormatError } from '../shared/errors';

export interface CaptionTokenizer {
  /** Decode generated ids to text, special tokens skipped; [] gives "". */
  decode(ids: readonly number[]): string;
  encode(text: string): number[];
}

/** The tokenizer_config transformers.js needs beside tokenizer.json (model/tokenizer.py: tokenizer_config()). */
const GPT2_TOKENIZER_CONFIG = {
  tokenizer_class: 'GPT2Tokenizer',
  bos_token: '<|endoftext|>',
  eos_token: '<|endoftext|>',
  unk_token: '<|endoftext|>',
  add_prefix_space: false,
  // transformers.js defaults this to true, which rewrites " ." to "." and would disagree with PyTorch's decode.
  clean_up_tokenization_spaces: false,
  model_max_length: 1024,
};

/** A tokenizer file's JSON, from text, bytes or an object; `file` names it in the error. */
export function readTokenizerJson(input: string | Uint8Array | object, file: string): object {
  try {
    return typeof input === 'string'
      ? (JSON.parse(input) as object)
      : input instanceof Uint8Array
        ? (JSON.parse(new TextDecoder().decode(input)) as object)
        : input;
  } catch (e) {
    throw new PackFormatError(`The pack's ${file} is not valid JSON. Download the pack again.`, { cause: e });
  }
}

export async function loadTokenizer(tokenizerJson: string | Uint8Array | object): Promise<CaptionTokenizer> {
  const json = readTokenizerJson(tokenizerJson, 'tokenizer.json');
  const { PreTrainedTokenizer } = await import('@huggingface/transformers');
  let tok: InstanceType<typeof PreTrainedTokenizer>;
  try {
    tok = new PreTrainedTokenizer(json, GPT2_TOKENIZER_CONFIG);
  } catch (e) {
    throw new PackFormatError(
      `The pack's tokenizer.json could not be loaded (${(e as Error).message}). Use a pack built by model/export.py.`,
      { cause: e },
    );
  }
  return {
    decode: (ids) => (ids.length === 0 ? '' : tok.decode(Array.from(ids), { skip_special_tokens: true })),
    encode: (text) => tok.encode(text, { add_special_tokens: false }),
  };
}
