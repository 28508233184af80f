/**
 * src/converter/readers/: every tensor of the synthetic published files (model/published.py), read here, must equal
 * what torch itself reads (test/converter/readers/fixtures.py writes reference.json: dtype, shape and the SHA-256 of
 * `t.float().contiguous()`); hostile, damaged and foreign files are refused with the named errors; and a vision-only
 * read touches only the index and the vision tensors' bytes.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CaptionAbortedError,
  CheckpointError,
  CompressedEntryError,
  CorruptCheckpointError,
  NotACheckpointError,
  TruncatedCheckpointError,
  UnsafeCheckpointError,
  UnsupportedCheckpointError,
} from '../../../src/shared/errors';
import { blobSource, bytesSource, openCheckpoint, type Checkpoint, type RandomAccess } from '../../../src/converter/readers/checkpoint';

interface Digest {
  dtype: string;
  shape: number[];
  sha256: string;
}
type Reference = Record<string, Record<string, Digest>> & { _storage_bytes: Record<string, number> };

const OUT = join('.tmp', `readers-test-${process.pid}`);
let ref: Reference;

const file = (name: string) => new Uint8Array(readFileSync(join(OUT, name)));
const open = (name: string) => openCheckpoint(bytesSource(file(name)));
const sha = (f: Float32Array) =>
  createHash('sha256')
    .update(new Uint8Array(f.buffer, f.byteOffset, f.byteLength))
    .digest('hex');

beforeAll(() => {
  mkdirSync(OUT, { recursive: true });
  execFileSync('/usr/bin/python3', ['test/converter/readers/fixtures.py', OUT], {
    stdio: ['ignore', 'ignore', 'inherit'],
    timeout: 110_000,
  });
  ref = JSON.parse(readFileSync(join(OUT, 'reference.json'), 'utf8')) as Reference;
});

afterAll(() => rmSync(OUT, { recursive: true, force: true }));

/** Every tensor: same names in the same order as torch, same dtype and shape, and bit-identical float32 values. */
async function expectMatchesTorch(ck: Checkpoint, expected: Record<string, Digest>): Promise<void> {
  expect([...ck.tensors.keys()]).toEqual(Object.keys(expected));
  for (const [name, want] of Object.entries(expected)) {
    const t = ck.tensors.get(name)!;
    expect({ name, dtype: t.dtype, shape: t.shape }).toEqual({ name, dtype: want.dtype, shape: want.shape });
    expect({ name, sha256: sha(await ck.readFloat32(name)) }).toEqual({ name, sha256: want.sha256 });
  }
}

describe('published containers, read as torch reads them', () => {
  it('a TorchScript archive (OpenAI CLIP): names are exactly torch.jit.load(p).state_dict() keys', async () => {
    const ck = await open('published/clip.pt');
    expect(ck.format).toBe('torchscript');
    await expectMatchesTorch(ck, ref['published/clip.pt']);
    // the text blocks' attn_mask is a plain tensor attribute: stored in the archive, not in state_dict()
    expect([...ck.tensors.keys()].some((k) => k.endsWith('attn_mask'))).toBe(false);
    // OpenAI's archives are mixed: fp16 weights, fp32 embeddings and LayerNorms, int64 extras
    expect(ck.tensors.get('visual.conv1.weight')!.dtype).toBe('float16');
    expect(ck.tensors.get('visual.ln_pre.weight')!.dtype).toBe('float32');
    expect(ck.tensors.get('input_resolution')!.dtype).toBe('int64');
    expect(Array.from(await ck.readFloat32('input_resolution'))).toEqual([32]);
  });

  it('a torch zip checkpoint (ClipCap coco_weights.pt): GPT-2 mask buffers and the tied LM head', async () => {
    const ck = await open('published/clipcap.pt');
    expect(ck.format).toBe('torch-zip');
    await expectMatchesTorch(ck, ref['published/clipcap.pt']);
    expect(ck.tensors.get('gpt.transformer.h.0.attn.bias')).toMatchObject({ dtype: 'uint8', shape: [1, 1, 128, 128] });
    expect(ck.tensors.get('gpt.lm_head.weight')!.offset).toBe(ck.tensors.get('gpt.transformer.wte.weight')!.offset);
  });

  it('safetensors (timm open_clip_model.safetensors), also through a Blob', async () => {
    const ck = await openCheckpoint(blobSource(new Blob([file('published/clip.safetensors')])));
    expect(ck.format).toBe('safetensors');
    await expectMatchesTorch(ck, ref['published/clip.safetensors']);
    await expectMatchesTorch(await open('odd.safetensors'), ref['odd.safetensors']);
  });

  it('views (transposed, sliced, narrowed), fp16/bf16 with inf/NaN/subnormals, fp64 rounding, integers, 0-d, empty', async () => {
    const ck = await open('odd.pt'); // {"config": …, "state_dict": …}: the reader takes the state_dict
    expect(ck.format).toBe('torch-zip');
    await expectMatchesTorch(ck, ref['odd.pt']);
    expect(ck.tensors.get('transposed')).toMatchObject({ shape: [7, 5], strides: [1, 7] });
    const sliced = ck.tensors.get('sliced')!;
    expect(sliced.offset - ck.tensors.get('narrow')!.offset).toBe((18 - 1) * 4); // storage offsets 18 and 1
  });

  it('protocol 4 pickles (FRAME, MEMOIZE, STACK_GLOBAL) and ZIP64 records', async () => {
    await expectMatchesTorch(await open('proto4.pt'), ref['odd.pt']);
    await expectMatchesTorch(await open('zip64.pt'), ref['odd.pt']);
    // zipfile also fills the classic record where values fit; a > 4 GiB file has only 0xFFFF… there, as here
    const z = file('zip64.pt').slice();
    const eocd = new DataView(z.buffer, z.length - 22);
    for (const at of [8, 10]) eocd.setUint16(at, 0xffff, true);
    for (const at of [12, 16]) eocd.setUint32(at, 0xffffffff, true);
    await expectMatchesTorch(await openCheckpoint(bytesSource(z)), ref['odd.pt']);
  });

  it("storages saved on a GPU (location cuda:0, as in OpenAI's archives)", async () => {
    await expectMatchesTorch(await open('cuda.pt'), ref['odd.pt']);
  });

  it('without DecompressionStream (no class sources), a TorchScript archive keeps every tensor attribute', async () => {
    const saved = globalThis.DecompressionStream;
    try {
      // @ts-expect-error -- simulating a runtime without it
      delete globalThis.DecompressionStream;
      const ck = await open('published/clip.pt');
      // OpenAI's archives keep each text block's causal mask as a plain tensor attribute: one per block of the text tower
      const keys = Object.keys(ref['published/clip.pt']);
      const blocks = new Set(keys.map((k) => /^transformer\.resblocks\.(\d+)\./.exec(k)?.[1]).filter((n) => n !== undefined));
      expect(blocks.size).toBeGreaterThan(0);
      const masks = [...blocks].map((n) => `transformer.resblocks.${n}.attn_mask`);
      expect([...ck.tensors.keys()].sort()).toEqual([...keys, ...masks].sort());
    } finally {
      globalThis.DecompressionStream = saved;
    }
  });

  it('a declared format that the file does not have is refused', async () => {
    await expect(openCheckpoint(bytesSource(file('published/clip.pt')), 'torch-zip')).rejects.toThrow(NotACheckpointError);
    await expect(openCheckpoint(bytesSource(file('published/clip.pt')), 'torchscript')).resolves.toBeTruthy();
  });
});

describe('hostile and damaged files', () => {
  it.each([
    ['evil-system.pt', 'posix.system'],
    ['evil-eval.pt', 'builtins.eval'],
    ['evil-eval-py2.pt', '__builtin__.eval'],
    ['evil-nested.pt', 'subprocess.Popen'],
  ])('%s is refused with UnsafeCheckpointError naming %s, and nothing runs', async (name, global) => {
    const err = await open(name).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(UnsafeCheckpointError);
    expect(err).toMatchObject({ name: 'UnsafeCheckpointError', global });
    expect((err as Error).message).toContain(global);
    expect(existsSync(join(OUT, 'PWNED'))).toBe(false);
  });

  it('a deflated entry is refused with CompressedEntryError', async () => {
    await expect(open('deflated.pt')).rejects.toThrow(CompressedEntryError);
  });

  it('an unknown pickle opcode, a pickle cut short, and nesting deeper than any model', async () => {
    await expect(open('bad-opcode.pt')).rejects.toThrow(UnsupportedCheckpointError);
    await expect(open('short-pickle.pt')).rejects.toThrow(CorruptCheckpointError);
    await expect(open('deep.pt')).rejects.toThrow(UnsupportedCheckpointError);
  });

  it('truncated files', async () => {
    const zip = file('published/clipcap.pt');
    await expect(openCheckpoint(bytesSource(zip.subarray(0, zip.length >> 1)))).rejects.toThrow(CorruptCheckpointError);
    const st = file('published/clip.safetensors');
    await expect(openCheckpoint(bytesSource(st.subarray(0, st.length - 1)))).rejects.toThrow(TruncatedCheckpointError);
    await expect(openCheckpoint(bytesSource(st.subarray(0, 100)))).rejects.toThrow(TruncatedCheckpointError);
  });

  it('a damaged central directory, and a storage missing from the archive', async () => {
    const zip = file('odd.pt').slice();
    const view = new DataView(zip.buffer);
    const cd = view.getUint32(zip.length - 22 + 16, true);
    view.setUint32(cd, 0x12345678, true);
    await expect(openCheckpoint(bytesSource(zip))).rejects.toThrow(CorruptCheckpointError);
    // rename the first "odd/data/…" name in the central directory, so a storage id points at nothing
    const renamed = file('odd.pt').slice();
    const at = Buffer.from(renamed).indexOf('odd/data/0', cd);
    renamed[at + 4] = 'D'.charCodeAt(0);
    await expect(openCheckpoint(bytesSource(renamed))).rejects.toThrow(CorruptCheckpointError);
  });

  it('files that are no checkpoint say what they are', async () => {
    const text = (s: string) => bytesSource(new TextEncoder().encode(s));
    await expect(openCheckpoint(text('<!DOCTYPE html><html><body>404</body></html>'))).rejects.toThrow(/web page/);
    await expect(openCheckpoint(bytesSource(new Uint8Array(0)))).rejects.toThrow(/empty/);
    await expect(open('legacy.pt')).rejects.toThrow(/legacy/);
    await expect(openCheckpoint(bytesSource(new Uint8Array(40).fill(7)))).rejects.toThrow(NotACheckpointError);
  });

  it('an aborted signal stops the read', async () => {
    const ctl = new AbortController();
    ctl.abort();
    await expect(openCheckpoint(bytesSource(file('odd.pt')), undefined, ctl.signal)).rejects.toThrow(CaptionAbortedError);
    const ck = await open('odd.pt');
    await expect(ck.readFloat32('narrow', ctl.signal)).rejects.toThrow(CaptionAbortedError);
    await expect(ck.readFloat32('nope')).rejects.toThrow(CheckpointError);
  });
});

describe('vision-only reads', () => {
  /** A RandomAccess that records every byte range it serves. */
  function counting(bytes: Uint8Array) {
    const reads: Array<[number, number]> = [];
    const inner = bytesSource(bytes);
    const src: RandomAccess = {
      size: bytes.length,
      read: (o, l, s) => {
        reads.push([o, o + l]);
        return inner.read(o, l, s);
      },
    };
    return { src, reads, total: () => reads.reduce((a, [s, e]) => a + e - s, 0) };
  }

  it.each([['published/clip.pt'], ['published/clip.safetensors']])(
    '%s: the index plus the visual tensors, nothing of the text tower',
    async (name) => {
      const bytes = file(name);
      const { src, reads, total } = counting(bytes);
      const ck = await openCheckpoint(src);
      const visual = [...ck.tensors.keys()].filter((k) => k.startsWith('visual.'));
      const other = [...ck.tensors].filter(([k]) => !k.startsWith('visual.'));
      const indexBytes = total();
      for (const n of visual) await ck.readFloat32(n);
      const visualBytes = visual.reduce((a, n) => a + ck.tensors.get(n)!.byteLength, 0);

      expect(total()).toBeLessThan(bytes.length);
      expect(total() - indexBytes).toBe(visualBytes); // each visual tensor's bytes, once
      // the index: everything in the file that is not tensor bytes (zip records, pickle, class sources; JSON header)
      const tensorBytes = name.endsWith('.pt') ? ref._storage_bytes[name] : [...ck.tensors.values()].reduce((a, t) => a + t.byteLength, 0);
      expect(indexBytes).toBeLessThanOrEqual(bytes.length - tensorBytes);
      for (const [k, t] of other) {
        if (t.byteLength === 0) continue;
        const overlap = reads.some(([s, e]) => s < t.offset + t.byteLength && t.offset < e);
        expect({ k, overlap }).toEqual({ k, overlap: false });
      }
      // ranges() covers exactly the visual bytes, merged into fewer requests when gaps are allowed
      const exact = ck.ranges(visual);
      expect(exact.reduce((a, [s, e]) => a + e - s, 0)).toBe(visualBytes);
      const merged = ck.ranges(visual, 4096);
      expect(merged.length).toBeLessThanOrEqual(exact.length);
      if (name.endsWith('.pt')) expect(merged.length).toBeLessThan(exact.length); // fp16/fp32 tensors alternate there
      for (const [k, t] of other) {
        if (t.byteLength === 0) continue;
        expect({ k, inExact: exact.some(([s, e]) => s < t.offset + t.byteLength && t.offset < e) }).toEqual({ k, inExact: false });
      }
    },
  );

  it('ranges() merges only gaps under `gap`, and refuses unknown names', async () => {
    const ck = await open('odd.safetensors');
    const names = [...ck.tensors.keys()];
    const spans = ck.ranges(names, 1 << 20);
    expect(spans.length).toBe(1);
    const [a, b] = ['f64', 'i64'].map((n) => ck.tensors.get(n)!);
    const apart = ck.ranges(['f64', 'i64']);
    const gap = Math.abs(b.offset - (a.offset + a.byteLength));
    expect(apart.length).toBe(gap === 0 ? 1 : 2);
    expect(() => ck.ranges(['missing'])).toThrow(CheckpointError);
  });
});
