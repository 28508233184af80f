/**
 * convertPack (and convertTextTower) with hand-made templates, checkpoints and sinks: the file bytes, hashes, manifest, chunking, progress,
 * the memory bound, wrong checkpoints, aborts and damaged templates. Byte equality with the Python pipeline on real
 * templates is test/converter/python-parity.test.ts.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { CaptionAbortedError, TemplateFormatError, WrongCheckpointError } from '../../src/shared/errors';
import { parseManifest } from '../../src/captioner/pack-format';
import { convertPack, convertTextTower, type ConvertArgs, type ConvertStats } from '../../src/converter/convert';
import { float32ToFloat16 } from '../../src/converter/half';
import { applyOp, materialize } from '../../src/converter/ops';
import { parseTemplate, textOnly, withoutText } from '../../src/converter/template';
import { textManifest } from '../captioner/helpers/synthetic-pack';
import { FakeCheckpoint, MemorySink, type FakeTensor } from './helpers/fakes';

const WTE: [number, number] = [1000, 300]; // 1.2 MB in float32: several chunks of 64 KiB

const CLIP: Record<string, number[]> = {
  'visual.conv1.weight': [4, 3, 2, 2],
  'visual.bn1.weight': [4],
  'visual.bn1.bias': [4],
  'visual.bn1.running_mean': [4],
  'visual.bn1.running_var': [4],
  'visual.proj': [6, 5],
};
const CLIPCAP: Record<string, number[]> = {
  'clip_project.model.0.weight': [8, 5],
  'gpt.transformer.wte.weight': WTE,
};
const BN = ['visual.conv1.weight', 'visual.bn1.weight', 'visual.bn1.bias', 'visual.bn1.running_mean', 'visual.bn1.running_var'];

const skeletons: Record<string, Uint8Array> = {
  'vision.skel': Uint8Array.from({ length: 100 }, (_, i) => i),
  'mapper.skel': Uint8Array.from({ length: 30 }, (_, i) => 200 - i),
  'decoder.skel': Uint8Array.from({ length: 10 }, (_, i) => 7 * i),
};

function templateJson() {
  return {
    format: 'clipcap-template',
    formatVersion: 1,
    id: 'fake-fp16',
    precision: 'fp16',
    manifest: {
      format: 'clipcap-pack',
      formatVersion: 1,
      precision: 'fp16',
      preprocess: {
        imageSize: 32,
        resize: 'shortest_edge',
        interpolation: 'bicubic',
        crop: 'center',
        rescale: 1 / 255,
        mean: [0.5, 0.5, 0.5],
        std: [0.25, 0.25, 0.25],
        channelOrder: 'RGB',
      },
      embedding: { dim: 5, l2Normalize: false },
      mapper: { type: 'mlp', prefixLength: 1, clipLength: null },
      decoder: { nLayer: 1, nHead: 1, nEmbd: 300, headDim: 300, vocabSize: 1000, nPositions: 16 },
      tokens: { bos: 0, eos: 0, stop: [0] },
      generation: { strategy: 'beam', beams: 2, maxTokens: 8, lengthNormalize: true },
    },
    inputs: {
      clip: { params: CLIP, ignore: ['^transformer\\.', '^logit_scale$'] },
      clipcap: { params: CLIPCAP, ignore: ['\\.attn\\.bias$'], optional: { 'gpt.lm_head.weight': 'gpt.transformer.wte.weight' } },
    },
    keyMaps: {},
    graphs: [
      {
        role: 'vision',
        path: 'vision.onnx',
        skeleton: 'vision.skel',
        skeletonBytes: 100,
        bytes: 40 + 4 * 48 + 20 + 16 + 40 + 60,
        pieces: [
          { copy: [0, 40] },
          { op: 'bn_fold_weight', args: BN, attrs: { eps: 1e-5 }, dtype: 'float32', shape: [4, 3, 2, 2] },
          { copy: [40, 60] },
          { op: 'bn_fold_bias', args: BN, attrs: { eps: 1e-5 }, dtype: 'float32', shape: [4] },
          { copy: [60, 100] },
          { op: 'transpose', args: ['visual.proj'], dtype: 'float16', shape: [5, 6] },
        ],
      },
      {
        role: 'mapper',
        path: 'mapper.onnx',
        skeleton: 'mapper.skel',
        bytes: 30 + 80,
        pieces: [{ op: 'identity', args: ['clip_project.model.0.weight'], dtype: 'float16', shape: [8, 5] }, { copy: [0, 30] }],
      },
      {
        role: 'decoder',
        path: 'decoder.onnx',
        skeleton: 'decoder.skel',
        bytes: 10 + WTE[0] * WTE[1] * 4 + WTE[0] * WTE[1] * 2,
        pieces: [
          { copy: [0, 5] },
          { op: 'identity', args: ['gpt.transformer.wte.weight'], dtype: 'float32', shape: WTE },
          { op: 'transpose', args: ['clipcap:gpt.transformer.wte.weight'], dtype: 'float16', shape: [WTE[1], WTE[0]] },
          { copy: [5, 10] },
        ],
      },
    ],
  };
}

const shapes = (s: Record<string, number[]>): Record<string, FakeTensor> =>
  Object.fromEntries(Object.entries(s).map(([k, v]) => [k, { shape: v }]));
const clipFile = (extra: Record<string, FakeTensor> = {}) =>
  new FakeCheckpoint(
    { ...shapes(CLIP), 'transformer.resblocks.0.attn.in_proj_weight': { shape: [12, 4] }, logit_scale: { shape: [] }, ...extra },
    11,
  );
const clipcapFile = (extra: Record<string, FakeTensor> = {}) =>
  new FakeCheckpoint(
    {
      ...shapes(CLIPCAP),
      'gpt.transformer.h.0.attn.bias': { shape: [1, 1, 4, 4], dtype: 'uint8' },
      'gpt.lm_head.weight': { shape: WTE, tiedTo: 'gpt.transformer.wte.weight' },
      ...extra,
    },
    12,
  );
const TOKENIZER = new TextEncoder().encode('{"model":{"type":"BPE"}}');

function args(over: Partial<ConvertArgs> = {}): ConvertArgs & { sink: MemorySink } {
  return {
    template: parseTemplate(JSON.stringify(templateJson())),
    skeleton: async (p) => skeletons[p],
    tokenizer: TOKENIZER,
    inputs: { clip: clipFile(), clipcap: clipcapFile() },
    sink: new MemorySink(),
    meta: { id: 'fake', version: '1.0.0', name: 'Fake', description: 'd', provenance: { builder: 'test' } },
    chunkBytes: 64 << 10,
    ...over,
  } as ConvertArgs & { sink: MemorySink };
}

/** The expected file, assembled independently of the converter's streaming: whole results, concatenated. */
function expectedFile(role: string, a: ConvertArgs): Uint8Array {
  const t = templateJson();
  const g = t.graphs.find((x) => x.role === role)!;
  const parts: Uint8Array[] = [];
  for (const p of g.pieces as Array<Record<string, unknown>>) {
    if ('copy' in p) {
      const [s, e] = p.copy as number[];
      parts.push(skeletons[g.skeleton].slice(s, e));
      continue;
    }
    const names = (p.args as string[]).map((n) => n.replace(/^clipcap:/, ''));
    const ins = names.map((n) => {
      const ck = (n in CLIP ? a.inputs.clip : a.inputs.clipcap) as FakeCheckpoint;
      return { data: ck.data.get(n)!, shape: ck.tensors.get(n)!.shape };
    });
    const f32 = materialize(applyOp(p.op as never, ins, (p.attrs as { eps?: number } | undefined)?.eps));
    const out = p.dtype === 'float16' ? float32ToFloat16(f32) : f32;
    parts.push(new Uint8Array(out.buffer.slice(out.byteOffset, out.byteOffset + out.byteLength)));
  }
  return Buffer.concat(parts);
}

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

describe('convertPack', () => {
  it('writes each graph as skeleton bytes and converted tensors, in order, and returns a valid manifest', async () => {
    const a = args();
    const progress: Array<[number, number]> = [];
    const m = await convertPack({ ...a, onProgress: (w, t) => progress.push([w, t]) });
    expect(parseManifest(JSON.stringify(m))).toEqual(m);
    expect(m).toMatchObject({
      format: 'clipcap-pack',
      formatVersion: 1,
      id: 'fake',
      version: '1.0.0',
      name: 'Fake',
      precision: 'fp16',
      provenance: { builder: 'test' },
    });
    expect(Object.keys(m).slice(0, 8)).toEqual([
      'format',
      'formatVersion',
      'id',
      'version',
      'name',
      'description',
      'provenance',
      'precision',
    ]);
    for (const role of ['vision', 'mapper', 'decoder'] as const) {
      const want = expectedFile(role, a);
      const got = a.sink.bytes(`${role}.onnx`);
      expect(Buffer.from(got).equals(Buffer.from(want))).toBe(true);
      expect(m.files[role]).toEqual({ path: `${role}.onnx`, bytes: want.byteLength, sha256: sha(want) });
    }
    expect(a.sink.bytes('tokenizer.json')).toEqual(TOKENIZER);
    expect(m.files.tokenizer).toEqual({ path: 'tokenizer.json', bytes: TOKENIZER.byteLength, sha256: sha(TOKENIZER) });
    // chunks of at most chunkBytes, in order; progress rises to the total
    expect(a.sink.appends.every((x) => x.bytes > 0 && x.bytes <= 64 << 10)).toBe(true);
    const total = Object.values(m.files).reduce((n, f) => n + f.bytes, 0);
    expect(progress.at(-1)).toEqual([total, total]);
    expect(progress.every(([w], i) => i === 0 || w >= progress[i - 1][0])).toBe(true);
  });

  it("holds at most one piece's source tensors, one chunk and a small scratch (maxBufferedBytes)", async () => {
    const stats: ConvertStats = { maxBufferedBytes: 0, bytesWritten: 0, tensors: 0, chunks: 0 };
    const a = args({ stats });
    await convertPack(a);
    const wte = WTE[0] * WTE[1] * 4;
    const scratch = (1 << 16) * (4 + 2);
    console.log(
      `[convert] maxBufferedBytes ${stats.maxBufferedBytes} (wte ${wte}, chunk ${64 << 10}, scratch ${scratch}), ${stats.chunks} chunks, ${stats.tensors} tensors`,
    );
    expect(stats.maxBufferedBytes).toBeGreaterThanOrEqual(wte);
    expect(stats.maxBufferedBytes).toBeLessThanOrEqual(wte + (64 << 10) + scratch + skeletons['decoder.skel'].byteLength);
    expect(stats.tensors).toBe(6);
    expect(stats.bytesWritten).toBe(a.sink.appends.reduce((n, x) => n + x.bytes, 0));
  });

  it('refuses the clip file given as clipcap (and the reverse), naming the keys, before writing anything', async () => {
    const a = args({ inputs: { clip: clipcapFile(), clipcap: clipFile() } });
    const e = await convertPack(a).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(WrongCheckpointError);
    const w = e as WrongCheckpointError;
    expect(w.name).toBe('WrongCheckpointError');
    expect(w.input).toBe('clip');
    expect(w.seemsToBe).toMatch(/ClipCap weights/);
    expect(w.missing).toEqual(Object.keys(CLIP));
    expect(w.unexpected).toEqual(
      expect.arrayContaining(['clip_project.model.0.weight', 'gpt.transformer.wte.weight', 'gpt.lm_head.weight']),
    );
    expect(w.unexpected).toContain('gpt.transformer.h.0.attn.bias'); // ignored in clipcap's file, not in clip's: listed
    expect(w.message).toMatch(/"clip" weights does not fit model "fake-fp16": it seems to be ClipCap weights/);
    expect(w.message).toMatch(/missing \(visual\.conv1\.weight/);
    expect(a.sink.appends).toEqual([]);
  });

  it('lists every mis-shaped, missing and unexpected key of one file in one error', async () => {
    const clip = clipFile({ 'visual.proj': { shape: [5, 6] }, 'visual.extra': { shape: [2] } });
    clip.tensors.delete('visual.bn1.bias');
    const e = (await convertPack(args({ inputs: { clip, clipcap: clipcapFile() } })).catch((x: unknown) => x)) as WrongCheckpointError;
    expect(e).toBeInstanceOf(WrongCheckpointError);
    expect(e.missing).toEqual(['visual.bn1.bias']);
    expect(e.unexpected).toEqual(['visual.extra']);
    expect(e.wrongShape).toEqual([{ key: 'visual.proj', expected: [6, 5], actual: [5, 6] }]);
    expect(e.message).toMatch(/visual\.proj is \[5, 6\], needs \[6, 5\]/);
    expect(e.seemsToBe).toMatch(/CLIP/);
  });

  it('refuses a parameter stored as integers, and an optional key that differs from the tensor it must equal', async () => {
    const ints = clipFile({ 'visual.bn1.running_var': { shape: [4], dtype: 'int64' } });
    const e1 = (await convertPack(args({ inputs: { clip: ints, clipcap: clipcapFile() } })).catch(
      (x: unknown) => x,
    )) as WrongCheckpointError;
    expect(e1.wrongShape).toEqual([{ key: 'visual.bn1.running_var', expected: [4], actual: [4], dtype: 'int64' }]);

    const untied = clipcapFile({ 'gpt.lm_head.weight': { shape: WTE } }); // own storage, other values
    const e2 = (await convertPack(args({ inputs: { clip: clipFile(), clipcap: untied } })).catch(
      (x: unknown) => x,
    )) as WrongCheckpointError;
    expect(e2).toBeInstanceOf(WrongCheckpointError);
    expect(e2.notEqual).toEqual(['gpt.lm_head.weight']);

    const copy = clipcapFile();
    copy.data.set('gpt.lm_head.weight', copy.data.get('gpt.transformer.wte.weight')!.slice());
    copy.tensors.set('gpt.lm_head.weight', { ...copy.tensors.get('gpt.lm_head.weight')!, offset: 1 << 30 }); // equal values, own storage
    await expect(convertPack(args({ inputs: { clip: clipFile(), clipcap: copy } }))).resolves.toBeTruthy();
    expect(copy.reads).toContain('gpt.lm_head.weight'); // compared by value, since it is not the same storage

    const tied = clipcapFile();
    await convertPack(args({ inputs: { clip: clipFile(), clipcap: tied } }));
    expect(tied.reads).not.toContain('gpt.lm_head.weight'); // one storage: equal without reading
  });

  it('stops between pieces when aborted, claims no file, and leaves the partial output in the sink', async () => {
    const ctl = new AbortController();
    const clipcap = clipcapFile();
    const a = args({ signal: ctl.signal, inputs: { clip: clipFile(), clipcap } });
    a.sink.beforeAppend = (path) => {
      if (path === 'decoder.onnx') ctl.abort(new Error('user cancelled'));
    };
    const progress: number[] = [];
    const e = await convertPack({ ...a, onProgress: (w) => progress.push(w) }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(CaptionAbortedError);
    expect((e as Error).name).toBe('AbortError');
    // the decoder's first chunk went out; the transposed second piece of the decoder was never started
    expect(a.sink.size('decoder.onnx')).toBe(64 << 10);
    expect(clipcap.reads.filter((r) => r === 'gpt.transformer.wte.weight')).toHaveLength(1);
    expect(a.sink.files.has('tokenizer.json')).toBe(false);
  });

  it('does not start when the signal is already aborted', async () => {
    const ctl = new AbortController();
    ctl.abort();
    const a = args({ signal: ctl.signal });
    await expect(convertPack(a)).rejects.toBeInstanceOf(CaptionAbortedError);
    expect(a.sink.appends).toEqual([]);
  });

  it('passes a sink failure (a full disk) through unchanged', async () => {
    const a = args();
    const quota = Object.assign(new Error('quota'), { name: 'QuotaExceededError' });
    a.sink.beforeAppend = (path) => {
      if (path === 'mapper.onnx') throw quota;
    };
    await expect(convertPack(a)).rejects.toBe(quota);
  });

  it('refuses a skeleton of the wrong size with TemplateFormatError', async () => {
    const a = args({ skeleton: async (p) => (p === 'vision.skel' ? skeletons[p].subarray(0, 90) : skeletons[p]) });
    await expect(convertPack(a)).rejects.toThrow(TemplateFormatError);
    await expect(convertPack(a)).rejects.toThrow(/vision\.skel has 90 bytes, but the template says 100/);
  });

  it('refuses a missing input', async () => {
    const e = (await convertPack(args({ inputs: { clip: clipFile() } })).catch((x: unknown) => x)) as WrongCheckpointError;
    expect(e).toBeInstanceOf(WrongCheckpointError);
    expect(e.input).toBe('clipcap');
  });
});

describe('parseTemplate', () => {
  const bad = (mutate: (t: ReturnType<typeof templateJson>) => void, message: RegExp) => {
    const t = templateJson();
    mutate(t);
    expect(() => parseTemplate(JSON.stringify(t))).toThrow(TemplateFormatError);
    expect(() => parseTemplate(JSON.stringify(t))).toThrow(message);
  };

  it('reads a good template, resolving each argument to its input; a result may be stored under another shape of its size', () => {
    const j = templateJson();
    (j.graphs[1].pieces[0] as { shape: number[] }).shape = [1, 8, 5];
    expect(parseTemplate(j).graphs[1].pieces[0]).toMatchObject({ shape: [1, 8, 5], bytes: 80 });
    const t = parseTemplate(templateJson());
    expect(t.graphs.map((g) => g.role)).toEqual(['vision', 'mapper', 'decoder']);
    const p = t.graphs[0].pieces[1];
    expect(p).toMatchObject({ kind: 'tensor', op: 'bn_fold_weight', eps: 1e-5, dtype: 'float32', bytes: 192 });
    expect(p.kind === 'tensor' && p.args[0]).toEqual({ input: 'clip', name: 'visual.conv1.weight' });
  });

  it('names the first problem of a damaged template', () => {
    expect(() => parseTemplate('{')).toThrow(/not valid JSON/);
    bad((t) => (t.format = 'clipcap-pack'), /"format"/);
    bad((t) => (t.formatVersion = 2), /formatVersion/);
    bad((t) => (t.graphs[0].bytes += 1), /add up to 368 bytes, but "bytes" says 369/);
    bad((t) => ((t.graphs[1].pieces[0] as { args: string[] }).args = ['clip_project.nope']), /not declared by any input/);
    bad(
      (t) => (((t.graphs[1].pieces[0] as { shape: number[] }).shape = [5, 7]), (t.graphs[1].bytes -= 10)),
      /gives \[8, 5\], but the piece stores \[5, 7\]/,
    );
    bad((t) => ((t.graphs[1].pieces[0] as { op: string }).op = 'eval'), /unknown op/);
    bad((t) => (t.graphs[2].path = '../evil.onnx'), /relative paths/);
    bad((t) => t.graphs.pop(), /no "decoder" graph/);
    bad((t) => delete (t.graphs[0].pieces[1] as { attrs?: unknown }).attrs, /needs a non-negative "eps"/);
    bad((t) => ((t.manifest as Record<string, unknown>).id = 'x'), /manifest\.id/);
    bad((t) => (t.inputs.clip.ignore = ['(']), /invalid regex/);
    bad((t) => ((t.graphs[0].pieces[0] = { copy: [0, 120] }), (t.graphs[0].bytes += 80)), /copies up to byte 120 of a 100-byte skeleton/);
  });
});

describe('CLIP\'s text tower (an optional "text" graph)', () => {
  // the text tower's keys, at the CLIP file's top level as OpenAI stores them
  const TEXT: Record<string, number[]> = { 'token_embedding.weight': [9, 5], text_projection: [5, 5] };
  const TEXT_TOKENIZER = new TextEncoder().encode('{"model":{"type":"BPE","clip":true}}');
  const textSkeleton = Uint8Array.from({ length: 12 }, (_, i) => 100 + i);
  const textSection = textManifest(5, { calibration: { method: 'assumed', note: 'test' } });

  function withTextJson() {
    const t = templateJson();
    const clip = t.inputs.clip;
    clip.params = { ...clip.params, ...TEXT };
    clip.ignore = ['^logit_scale$'];
    (t.manifest as Record<string, unknown>).text = textSection;
    (t.graphs as unknown[]).push({
      role: 'text',
      path: 'text.onnx',
      skeleton: 'text.skel',
      skeletonBytes: 12,
      bytes: 12 + 45 * 2 + 25 * 4,
      pieces: [
        { copy: [0, 6] },
        { op: 'identity', args: ['token_embedding.weight'], dtype: 'float16', shape: [9, 5] },
        { op: 'transpose', args: ['text_projection'], dtype: 'float32', shape: [5, 5] },
        { copy: [6, 12] },
      ],
    });
    return t;
  }
  const files: Record<string, Uint8Array> = { ...skeletons, 'text.skel': textSkeleton, 'text-tokenizer.json': TEXT_TOKENIZER };
  const textArgs = (over: Partial<ConvertArgs> = {}) =>
    args({
      template: parseTemplate(withTextJson()),
      skeleton: async (p) => files[p],
      inputs: { clip: new FakeCheckpoint({ ...shapes(CLIP), ...shapes(TEXT), logit_scale: { shape: [] } }, 11), clipcap: clipcapFile() },
      ...over,
    });

  it('writes text.onnx and text-tokenizer.json (read like a skeleton) and keeps the "text" section', async () => {
    const a = textArgs();
    const progress: Array<[number, number]> = [];
    const m = await convertPack({ ...a, onProgress: (w, t) => progress.push([w, t]) });
    expect(Object.keys(m.files)).toEqual(['vision', 'mapper', 'decoder', 'tokenizer', 'text', 'textTokenizer']);
    expect(m.text).toEqual(textSection);
    expect(Object.keys(m).slice(-2)).toEqual(['files', 'text']); // pack_manifest's key order
    const clip = a.inputs.clip as FakeCheckpoint;
    const emb = float32ToFloat16(clip.data.get('token_embedding.weight')!);
    const proj = materialize(applyOp('transpose', [{ data: clip.data.get('text_projection')!, shape: [5, 5] }]));
    const want = Buffer.concat([textSkeleton.slice(0, 6), new Uint8Array(emb.buffer), new Uint8Array(proj.buffer), textSkeleton.slice(6)]);
    expect(Buffer.from(a.sink.bytes('text.onnx')).equals(want)).toBe(true);
    expect(m.files.text).toEqual({ path: 'text.onnx', bytes: want.byteLength, sha256: sha(want) });
    expect(a.sink.bytes('text-tokenizer.json')).toEqual(TEXT_TOKENIZER);
    expect(m.files.textTokenizer).toEqual({ path: 'text-tokenizer.json', bytes: TEXT_TOKENIZER.byteLength, sha256: sha(TEXT_TOKENIZER) });
    const total = Object.values(m.files).reduce((n, f) => n + f.bytes, 0);
    expect(progress.at(-1)).toEqual([total, total]);
    // the other graphs are the ones a template without the text graph writes
    for (const role of ['vision', 'mapper', 'decoder'] as const)
      expect(Buffer.from(a.sink.bytes(`${role}.onnx`)).equals(Buffer.from(expectedFile(role, a)))).toBe(true);
  });

  it('text: false writes the pack without it, reads none of its keys, and accepts a CLIP file with another text tower', async () => {
    const other = new FakeCheckpoint({ ...shapes(CLIP), 'token_embedding.weight': { shape: [3, 5] } }, 11);
    const on = await convertPack(textArgs({ inputs: { clip: other, clipcap: clipcapFile() } })).catch((x: unknown) => x);
    expect(on).toBeInstanceOf(WrongCheckpointError);
    expect((on as WrongCheckpointError).missing).toEqual(['text_projection']);
    expect((on as WrongCheckpointError).wrongShape).toEqual([{ key: 'token_embedding.weight', expected: [9, 5], actual: [3, 5] }]);
    const asked: string[] = [];
    const a = textArgs({ inputs: { clip: other, clipcap: clipcapFile() }, text: false, skeleton: async (p) => (asked.push(p), files[p]) });
    const m = await convertPack(a);
    expect(Object.keys(m.files)).toEqual(['vision', 'mapper', 'decoder', 'tokenizer']);
    expect(m.text).toBeUndefined();
    expect([...a.sink.files.keys()].sort()).toEqual(['decoder.onnx', 'mapper.onnx', 'tokenizer.json', 'vision.onnx']);
    expect(asked).not.toContain('text.skel');
    expect(asked).not.toContain('text-tokenizer.json');
    expect(other.reads.filter((k) => !k.startsWith('visual.'))).toEqual([]);
    // withoutText: the text-only keys become ignored keys; the template without a text graph is returned as it is
    const t = withoutText(parseTemplate(withTextJson()));
    expect(Object.keys(t.inputs.clip.params)).toEqual(Object.keys(CLIP));
    expect(t.inputs.clip.ignore).toEqual(['^logit_scale$', '^token_embedding\\.weight$', '^text_projection$']);
    const plain = parseTemplate(templateJson());
    expect(withoutText(plain)).toBe(plain);
  });

  it('convertTextTower writes the text tower alone, as convertPack writes it, reading only its keys of the CLIP file', async () => {
    const whole = textArgs();
    const m = await convertPack(whole);
    const clip = new FakeCheckpoint({ ...shapes(CLIP), ...shapes(TEXT), logit_scale: { shape: [] } }, 11);
    const asked: string[] = [];
    const progress: Array<[number, number]> = [];
    const a = textArgs({ inputs: { clip }, skeleton: async (p) => (asked.push(p), files[p]), onProgress: (w, t) => progress.push([w, t]) });
    const tower = await convertTextTower(a); // no clipcap input: the text tower does not read it
    expect(tower).toEqual({ files: { text: m.files.text, textTokenizer: m.files.textTokenizer }, text: m.text });
    expect([...a.sink.files.keys()].sort()).toEqual(['text-tokenizer.json', 'text.onnx']);
    for (const path of ['text.onnx', 'text-tokenizer.json']) expect(a.sink.bytes(path)).toEqual(whole.sink.bytes(path));
    expect(asked.sort()).toEqual(['text-tokenizer.json', 'text.skel']);
    expect(clip.reads.sort()).toEqual(Object.keys(TEXT).sort());
    const total = m.files.text!.bytes + m.files.textTokenizer!.bytes;
    expect(progress.at(-1)).toEqual([total, total]);
    // textOnly: the text graph, the one input it reads, and that input's other keys ignored
    const t = textOnly(parseTemplate(withTextJson()));
    expect(t.graphs.map((g) => g.role)).toEqual(['text']);
    expect(Object.keys(t.inputs)).toEqual(['clip']);
    expect(Object.keys(t.inputs.clip.params)).toEqual(Object.keys(TEXT));
    expect(t.inputs.clip.ignore).toEqual(['^logit_scale$', ...Object.keys(CLIP).map((k) => `^${k.replace(/\./g, '\\.')}$`)]);
    // a CLIP file whose text tower has another shape is refused before anything is written
    const other = new FakeCheckpoint({ ...shapes(CLIP), 'token_embedding.weight': { shape: [3, 5] }, text_projection: { shape: [5, 5] } });
    const bad = textArgs({ inputs: { clip: other } });
    expect(await convertTextTower(bad).catch((x: unknown) => x)).toBeInstanceOf(WrongCheckpointError);
    expect(bad.sink.files.size).toBe(0);
    // a template without a text tower has none to convert
    const plain = args();
    expect(await convertTextTower(plain).catch((x: unknown) => x)).toBeInstanceOf(TemplateFormatError);
  });

  it('a template without the text graph converts as before, ignoring the text tower OpenAI files hold', async () => {
    const a = args({ inputs: { clip: new FakeCheckpoint({ ...shapes(CLIP), ...shapes(TEXT) }, 11), clipcap: clipcapFile() } });
    // the fake template ignores ^transformer\. only: this file's top-level text keys would be unexpected
    const e = await convertPack(a).catch((x: unknown) => x);
    expect((e as WrongCheckpointError).unexpected).toEqual(['token_embedding.weight', 'text_projection']);
    const m = await convertPack(args());
    expect(m.text).toBeUndefined();
    expect(Object.keys(m.files)).toEqual(['vision', 'mapper', 'decoder', 'tokenizer']);
  });

  it('parseTemplate: a text graph needs the "text" section, the section needs the graph; the tokenizers\' paths are reserved', () => {
    expect(parseTemplate(withTextJson()).graphs.map((g) => g.role)).toEqual(['vision', 'mapper', 'decoder', 'text']);
    const noSection = withTextJson();
    delete (noSection.manifest as Record<string, unknown>).text;
    expect(() => parseTemplate(noSection)).toThrow(/needs "manifest\.text"/);
    const noGraph = templateJson();
    (noGraph.manifest as Record<string, unknown>).text = textSection;
    expect(() => parseTemplate(noGraph)).toThrow(/"manifest\.text" is set, but the template has no "text" graph/);
    const reserved = withTextJson();
    (reserved.graphs[3] as { path: string }).path = 'text-tokenizer.json';
    expect(() => parseTemplate(reserved)).toThrow(/used twice/);
    const twice = withTextJson();
    (twice.graphs as unknown[]).push({ ...(twice.graphs[3] as object), path: 'text2.onnx' });
    expect(() => parseTemplate(twice)).toThrow(/graph role "text" appears twice/);
  });
});
