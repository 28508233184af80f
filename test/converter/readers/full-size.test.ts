/**
 * Acceptance run on FULL-SIZE synthetic published files (real shapes: ViT-B/32 + GPT-2 small, about 1 GB), not part
 * of npm test. Write them, then point READERS_FULL at the folder:
 *
 *   /usr/bin/python3 -m model.published --random full-vit-b32-mlp --out .tmp/published/full
 *   READERS_FULL=.tmp/published/full npx vitest run --project unit test/converter/readers/full-size
 *
 * Every tensor is compared with what torch reads (fixtures.py --reference), and the vision-only read of clip.pt must
 * touch only its index and the visual tensors.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openCheckpoint, type RandomAccess } from '../../../src/converter/readers/checkpoint';

const DIR = process.env.READERS_FULL ?? '';

/** A file read with positioned reads, so the test never holds a whole 600 MB file. */
function fileSource(path: string, counter: { bytes: number }): RandomAccess {
  const fd = openSync(path, 'r');
  return {
    size: statSync(path).size,
    read(offset, length) {
      const out = new Uint8Array(length);
      let got = 0;
      while (got < length) got += readSync(fd, out, got, length - got, offset + got);
      counter.bytes += length;
      return Promise.resolve(out);
    },
  };
}

describe.skipIf(!DIR)('full-size published files', () => {
  it('every tensor of clip.pt, clip.safetensors and clipcap.pt equals what torch reads', { timeout: 900_000 }, async () => {
    if (!existsSync(join(DIR, 'reference.json'))) {
      execFileSync('/usr/bin/python3', ['test/converter/readers/fixtures.py', '--reference', DIR], { stdio: 'inherit', timeout: 600_000 });
    }
    const ref = JSON.parse(readFileSync(join(DIR, 'reference.json'), 'utf8')) as Record<
      string,
      Record<string, { dtype: string; shape: number[]; sha256: string }>
    >;
    for (const name of ['clip.pt', 'clip.safetensors', 'clipcap.pt']) {
      const counter = { bytes: 0 };
      const ck = await openCheckpoint(fileSource(join(DIR, name), counter));
      expect([...ck.tensors.keys()]).toEqual(Object.keys(ref[name]));
      for (const [k, want] of Object.entries(ref[name])) {
        const f = await ck.readFloat32(k);
        const sha = createHash('sha256')
          .update(new Uint8Array(f.buffer, f.byteOffset, f.byteLength))
          .digest('hex');
        expect({ k, dtype: ck.tensors.get(k)!.dtype, shape: ck.tensors.get(k)!.shape, sha }).toEqual({
          k,
          dtype: want.dtype,
          shape: want.shape,
          sha: want.sha256,
        });
      }
    }
    const counter = { bytes: 0 };
    const clip = await openCheckpoint(fileSource(join(DIR, 'clip.pt'), counter));
    const visual = [...clip.tensors.keys()].filter((k) => k.startsWith('visual.'));
    for (const k of visual) await clip.readFloat32(k);
    const visualBytes = visual.reduce((a, k) => a + clip.tensors.get(k)!.byteLength, 0);
    console.log(`clip.pt: ${statSync(join(DIR, 'clip.pt')).size} bytes, vision-only read ${counter.bytes} (visual tensors ${visualBytes})`);
    expect(counter.bytes - visualBytes).toBeLessThan(2 ** 20); // the index: zip records, data.pkl, class sources
  });
});
