// CLIP's tokenizer from a text-tokenizer.json (the layout openai/clip-vit-base-patch32 publishes), checked against
// clip-bpe-js, an independent port of OpenAI's simple_tokenizer.py.
import { beforeAll, describe, expect, it } from 'vitest';
import { PackFormatError } from '../../src/shared/errors';
import { loadTextTokenizer, type TextTokenizer } from '../../src/captioner/text-tokenizer';
import { clipTokenizerJson, referenceClipIds } from './helpers/clip-tokenizer-json';

const TEXT = { contextLength: 77, bos: 49406, eot: 49407 };
let json: object;
let tok: TextTokenizer;
beforeAll(async () => {
  json = clipTokenizerJson();
  tok = await loadTextTokenizer(JSON.stringify(json), TEXT);
});

describe("CLIP's tokenizer from text-tokenizer.json", () => {
  it("encodes captions as OpenAI's tokenizer does: [bos, ..., eot], lowercased, whitespace collapsed", () => {
    const texts = [
      'a red circle on a white background.',
      'A Man   holding\tan umbrella,  in the rain!',
      "there's a dog's ball (blue) 42 times",
      'a',
    ];
    for (const t of texts) expect(tok.encode(t), t).toEqual(referenceClipIds(t));
    expect(tok.encode('')).toEqual([49406, 49407]);
  });

  it('encodes text beyond ASCII byte by byte in UTF-8 (clip-bpe-js cannot: it maps UTF-16 code units)', () => {
    const ids = tok.encode('café');
    expect(ids[0]).toBe(49406);
    expect(ids.at(-1)).toBe(49407);
    expect(ids.every((i) => Number.isInteger(i) && i >= 0 && i <= 49407)).toBe(true);
    expect(ids.length).toBeGreaterThan(2);
  });

  it('cuts a long text to contextLength - 1 ids and eot', () => {
    const long = Array.from({ length: 100 }, (_, i) => `word${i}`).join(' ');
    const full = referenceClipIds(long);
    expect(full.length).toBeGreaterThan(77);
    const ids = tok.encode(long);
    expect(ids.length).toBe(77);
    expect(ids).toEqual([...full.slice(0, 76), 49407]);
  });

  it('refuses a corrupt file, and one whose specials disagree with pack.json, with named errors', async () => {
    await expect(loadTextTokenizer('{not json', TEXT)).rejects.toBeInstanceOf(PackFormatError);
    await expect(loadTextTokenizer(json, { ...TEXT, eot: 49405 })).rejects.toThrow(/encodes an empty text as \[49406, 49407\]/);
  });
});
