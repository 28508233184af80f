// Encode and decode strings with transformers.js, for model/tests/test_tokenizer.py to compare with Python.
// Usage: node model/tests/tokenizer_parity.mjs DIR < strings.json, where DIR holds tokenizer.json and
// tokenizer_config.json. Prints {"constructor": {...}, "auto": {...}}: for each way of loading, ids and texts.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AutoTokenizer, PreTrainedTokenizer, env } from '@huggingface/transformers';

const dir = process.argv[2];
const strings = JSON.parse(readFileSync(0, 'utf8'));
const readJson = (name) => JSON.parse(readFileSync(join(dir, name), 'utf8'));

function run(tokenizer) {
  const ids = strings.map((s) => tokenizer.encode(s, { add_special_tokens: false }));
  // decode() throws on an empty array, so an empty encoding decodes to '' here, as the engine must do itself.
  const texts = ids.map((x) => (x.length ? tokenizer.decode(x, { skip_special_tokens: true }) : ''));
  return { ids, texts };
}

// Route 1: the constructor, from plain objects (no file access by the library at all).
const constructed = new PreTrainedTokenizer(readJson('tokenizer.json'), readJson('tokenizer_config.json'));

// Route 2: AutoTokenizer from a local directory, with every remote lookup disabled.
env.allowRemoteModels = false;
env.localModelPath = join(dir, '..');
const auto = await AutoTokenizer.from_pretrained(dir.split(/[\\/]/).filter(Boolean).pop());

process.stdout.write(JSON.stringify({ constructor: run(constructed), auto: run(auto) }));
