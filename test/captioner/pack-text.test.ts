/**
 * The optional text tower in a pack (docs/pack-format.md: "text", text.onnx, text-tokenizer.json): pack.json's "text"
 * section and its two files are validated together, and every way of loading a pack (URL, cache, picked files) carries,
 * verifies and stores the two files when they are there.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb';
import { describe, expect, it } from 'vitest';
import { PackFormatError, PackIntegrityError } from '../../src/shared/errors';
import { manifestFiles, parseManifest } from '../../src/captioner/pack-format';
import { listCachedPacks, loadCachedPack, loadPackFromFiles, loadPackFromUrl } from '../../src/captioner/pack-loader';
import { IndexedDbPackStore } from '../../src/captioner/pack-store';
import { fast, usePackServer } from './helpers/pack-server';
import { sha256, textManifest, writeSyntheticPack, type SyntheticPack } from './helpers/synthetic-pack';

const packs = usePackServer('pack-text-');

const TEXT = textManifest(16, { calibration: { method: 'assumed', note: 'test' } });

/** Add a text tower (random bytes: these tests never run it) to a synthetic pack's manifest and files. */
function withText(m: SyntheticPack['manifest'], files: Record<string, Buffer>) {
  files['text.onnx'] = randomBytes(50_001);
  files['text-tokenizer.json'] = Buffer.from('{"model":{"type":"BPE"}}');
  m.text = { ...TEXT };
  m.files.text = { path: 'text.onnx', bytes: files['text.onnx'].length, sha256: sha256(files['text.onnx']) };
  m.files.textTokenizer = {
    path: 'text-tokenizer.json',
    bytes: files['text-tokenizer.json'].length,
    sha256: sha256(files['text-tokenizer.json']),
  };
}

describe('pack.json with a text tower', () => {
  const base = () => {
    const p = writeSyntheticPack(packs.root, 'parse', withText);
    return JSON.parse(JSON.stringify(p.manifest));
  };

  it('parses, and lists the two files last; a pack without them lists its four as before', () => {
    const m = parseManifest(base());
    expect(m.text).toEqual(TEXT);
    expect(manifestFiles(m).map((f) => f.key)).toEqual(['vision', 'mapper', 'decoder', 'tokenizer', 'text', 'textTokenizer']);
    const plain = parseManifest(writeSyntheticPack(packs.root, 'plain').manifest);
    expect(plain.text).toBeUndefined();
    expect(manifestFiles(plain).map((f) => f.path)).toEqual(['vision.onnx', 'mapper.onnx', 'decoder.onnx', 'tokenizer.json']);
  });

  it.each([
    [
      'one file without the other',
      (m: SyntheticPack['manifest']) => delete m.files.textTokenizer,
      /"files.text" needs "files.textTokenizer"/,
    ],
    ['the files without the section', (m: SyntheticPack['manifest']) => delete m.text, /"files.text" is listed, but the "text" section/],
    [
      'the section without the files',
      (m: SyntheticPack['manifest']) => (delete m.files.text, delete m.files.textTokenizer),
      /"text" is present, but "files.text"/,
    ],
    [
      'a dim other than the image embedding',
      (m: SyntheticPack['manifest']) => (m.text.dim = 512),
      /"text.dim" must equal "embedding.dim" \(16\)/,
    ],
    ['eot not the largest id', (m: SyntheticPack['manifest']) => (m.text.eot = 3), /"text.eot" must be larger/],
    ['a context shorter than bos + eot', (m: SyntheticPack['manifest']) => (m.text.contextLength = 1), /"text.contextLength"/],
    ['a zero clipScoreWeight', (m: SyntheticPack['manifest']) => (m.text.clipScoreWeight = 0), /"text.clipScoreWeight"/],
    ['a negative rerankWeight', (m: SyntheticPack['manifest']) => (m.text.rerankWeight = -1), /"text.rerankWeight"/],
    ['a missing gateThreshold', (m: SyntheticPack['manifest']) => delete m.text.gateThreshold, /"text.gateThreshold"/],
    ['a bad file entry', (m: SyntheticPack['manifest']) => (m.files.text.path = '../x.onnx'), /"files.text.path"/],
    ['a bad hash', (m: SyntheticPack['manifest']) => (m.files.textTokenizer.sha256 = 'xyz'), /"files.textTokenizer.sha256"/],
  ])('refuses %s with a PackFormatError that says so', (_what, breakIt, message) => {
    const m = base();
    breakIt(m);
    expect(() => parseManifest(m)).toThrow(PackFormatError);
    expect(() => parseManifest(m)).toThrow(message);
  });
});

describe('loading a pack with a text tower', () => {
  it('from a URL, from the cache and from picked files, with both files verified and stored', async () => {
    const p = writeSyntheticPack(packs.root, 'texty', withText);
    const store = new IndexedDbPackStore(new IDBFactory(), IDBKeyRange);
    const total = Object.values(p.files).reduce((n, b) => n + b.length, 0);
    const net = await loadPackFromUrl(`${packs.server.url}/packs/texty/`, { store, ...fast });
    expect(Buffer.from(net.files.text!).equals(p.files['text.onnx'])).toBe(true);
    expect(Buffer.from(net.files.textTokenizer!).equals(p.files['text-tokenizer.json'])).toBe(true);
    expect(await listCachedPacks(store)).toEqual([
      expect.objectContaining({ id: 'texty', complete: true, bytes: total, totalBytes: total }),
    ]);

    const cached = await loadCachedPack('texty', { store });
    expect(Buffer.from(cached.files.text!).equals(p.files['text.onnx'])).toBe(true);
    expect(Buffer.from(cached.files.textTokenizer!).equals(p.files['text-tokenizer.json'])).toBe(true);

    const picked = Object.entries({ ...p.files, 'pack.json': Buffer.from(JSON.stringify(p.manifest)) }).map(([name, b]) => ({
      name,
      size: b.length,
      arrayBuffer: async () => b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength),
    }));
    const other = new IndexedDbPackStore(new IDBFactory(), IDBKeyRange);
    const fromFiles = await loadPackFromFiles(picked, { store: other });
    expect(Buffer.from(fromFiles.files.text!).equals(p.files['text.onnx'])).toBe(true);
    const again = await loadCachedPack('texty', { store: other });
    expect(Buffer.from(again.files.textTokenizer!).equals(p.files['text-tokenizer.json'])).toBe(true);

    const plain = writeSyntheticPack(packs.root, 'plain2');
    const loaded = await loadPackFromUrl(`${packs.server.url}/packs/plain2/`, { store, ...fast });
    expect(Object.keys(loaded.files).sort()).toEqual(['decoder', 'mapper', 'tokenizer', 'vision']);
    expect(plain.manifest.text).toBeUndefined();
  });

  it('a text.onnx that fails its hash is refused like any other file of the pack', async () => {
    const p = writeSyntheticPack(packs.root, 'badtext', withText);
    writeFileSync(join(p.dir, 'text.onnx'), Buffer.alloc(p.files['text.onnx'].length, 1));
    const store = new IndexedDbPackStore(new IDBFactory(), IDBKeyRange);
    await expect(loadPackFromUrl(`${packs.server.url}/packs/badtext/`, { store, ...fast })).rejects.toBeInstanceOf(PackIntegrityError);
    writeFileSync(join(p.dir, 'text.onnx'), p.files['text.onnx']);
    const pack = await loadPackFromUrl(`${packs.server.url}/packs/badtext/`, { store, ...fast });
    expect(sha256(pack.files.text!)).toBe(sha256(readFileSync(join(p.dir, 'text.onnx'))));
  });
});
