/**
 * CLIP's tokenizer for the text tower, from the pack's text-tokenizer.json through transformers.js, offline (no hub,
 * no fetch), as tokenizer.ts does GPT-2's. Encoding gives [bos, ..., eot], cut to the pack's context length.
 */
import { PackFormatError } from '../shared/errors';
import type { TextTower } from './pack-format';
import { readTokenizerJson } from './tokenizer';

export interface TextTokenizer {
  /** CLIP's ids of a text, [bos, tokens..., eot], at most text.contextLength of them */
  encode(text: string): number[];
}

/**
 * The tokenizer_config transformers.js needs beside tokenizer.json: CLIP's special tokens, as openai/clip-vit-base-patch32
 * publishes them. The normalisation (NFC, whitespace, lowercase), the split and the bos/eot post-processor are in the
 * tokenizer.json itself.
 */
const clipTokenizerConfig = (contextLength: number) => ({
  tokenizer_class: 'CLIPTokenizer',
  bos_token: '<|startoftext|>',
  eos_token: '<|endoftext|>',
  unk_token: '<|endoftext|>',
  pad_token: '<|endoftext|>',
  clean_up_tokenization_spaces: false,
  model_max_length: contextLength,
});

export async function loadTextTokenizer(
  tokenizerJson: string | Uint8Array | object,
  text: Pick<TextTower, 'contextLength' | 'bos' | 'eot'>,
): Promise<TextTokenizer> {
  const json = readTokenizerJson(tokenizerJson, 'text-tokenizer.json');
  const { PreTrainedTokenizer } = await import('@huggingface/transformers');
  let tok: InstanceType<typeof PreTrainedTokenizer>;
  try {
    tok = new PreTrainedTokenizer(json, clipTokenizerConfig(text.contextLength));
  } catch (e) {
    throw new PackFormatError(
      `The pack's text-tokenizer.json could not be loaded (${(e as Error).message}). Use a pack built by model/export.py.`,
      { cause: e },
    );
  }
  // The text tower finds each text's end as its largest id: a tokenizer whose specials disagree with pack.json would
  // give embeddings of the wrong position, silently.
  const empty = tok.encode('');
  if (empty.length !== 2 || empty[0] !== text.bos || empty[1] !== text.eot) {
    throw new PackFormatError(
      `The pack's text-tokenizer.json encodes an empty text as [${empty.join(', ')}], not [${text.bos}, ${text.eot}] as ` +
        'pack.json says. Use a pack built by model/export.py.',
    );
  }
  const max = text.contextLength;
  return {
    encode(s) {
      const ids = tok.encode(s);
      // As OpenAI's clip.tokenize(truncate=True): the first contextLength - 1 ids (bos included), then eot.
      return ids.length <= max ? ids : [...ids.slice(0, max - 1), text.eot];
    },
  };
}
