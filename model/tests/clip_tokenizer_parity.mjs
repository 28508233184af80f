// Encode strings with CLIP's tokenizer two ways, for model/tests/test_clip_tokenizer.py to compare with Python.
// Usage: node model/tests/clip_tokenizer_parity.mjs DIR < strings.json, where DIR holds text-tokenizer.json and
// tokenizer_config.json. Prints {"transformers": ids[], "batch": ids[], "clipBpe": ids[]}:
//   transformers: transformers.js with the JSON, one text at a time, [bos, ..., eot] cut to 76 ids + eot HERE:
//     transformers.js's own `truncation: true, max_length: 77` cuts after adding bos/eot and so drops the eot;
//   batch: the same texts as one padded batch (what an engine feeds text.onnx), padding included
//     (texts longer than 77 ids left out: see above);
//   clipBpe: clip-bpe-js's own encoder (a port of OpenAI's SimpleTokenizer), its 0 padding stripped.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PreTrainedTokenizer } from '@huggingface/transformers';
import ClipBpe from 'clip-bpe-js';

const dir = process.argv[2];
const strings = JSON.parse(readFileSync(0, 'utf8'));
const readJson = (name) => JSON.parse(readFileSync(join(dir, name), 'utf8'));

const tok = new PreTrainedTokenizer(readJson('text-tokenizer.json'), readJson('tokenizer_config.json'));
const cut = (ids) => (ids.length > 77 ? [...ids.slice(0, 76), ids[ids.length - 1]] : ids);
const transformers = strings.map((s) => cut(tok.encode(s)));
const short = strings.filter((s) => tok.encode(s).length <= 77);
const enc = tok(short, { padding: true });
const [rows, cols] = enc.input_ids.dims;
const flat = Array.from(enc.input_ids.data, Number);
const batch = Array.from({ length: rows }, (_, r) => flat.slice(r * cols, (r + 1) * cols));
const bpe = new ClipBpe();
const clipBpe = strings.map((s) => {
  const ids = bpe.encodeForCLIP(s);
  return ids.slice(0, ids.indexOf(49407) + 1);
});
process.stdout.write(JSON.stringify({ transformers, batch, clipBpe }));
