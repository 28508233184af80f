/**
 * The converter against the Python pipeline, byte for byte: published-format files (model/published.py) converted
 * with a graph template (model/template.py) must give exactly the .onnx files model/export.py writes for the same
 * weights, and the converted pack must caption the golden images with PyTorch's token ids.
 *
 * Prerequisites are built by `bash scripts/packs.sh` (packs/toy, packs/templates/*, packs/published/toy); when one
 * is missing the test fails and says so. The references for other weights are made here, by the project's Python.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-web';
import { beforeAll, describe, expect, it } from 'vitest';
import { createCaptioner } from '../../src/captioner/captioner';
import { decodeImageWithSharp } from '../../src/captioner/node-decode';
import { verifyFile, type LoadedPack } from '../../src/captioner/pack-loader';
import type { PackFileKey, PackManifest } from '../../src/captioner/pack-format';
import { convertPack, type ConvertStats } from '../../src/converter/convert';
import { openCheckpoint } from '../../src/converter/readers/checkpoint';
import { readGolden, REPO } from '../captioner/helpers/packs';
import { MemorySink } from './helpers/fakes';
import { PYTHON } from './helpers/numpy';
import { fileSource, missingOf, readTemplateDir } from './helpers/node-files';

const BUILD = 'bash scripts/packs.sh';
const TMP = join(REPO, '.tmp', 'converter-parity');
const ROLES = ['vision', 'mapper', 'decoder'] as const;
const FILES = ['vision.onnx', 'mapper.onnx', 'decoder.onnx', 'tokenizer.json'];

function requireFiles(paths: string[]): void {
  const missing = missingOf(REPO, paths);
  if (!missing.length) return;
  // scripts/packs.sh builds the packs and templates; the published toy files are R's model/published.py
  const published = missing.some((p) => p.startsWith('packs/published/toy'))
    ? ' and `/usr/bin/python3 -m model.published --from-checkpoint packs/.build/toy/model.pt --out packs/published/toy`'
    : '';
  throw new Error(`missing ${missing.join(', ')}: build them with \`${BUILD}\`${published}`);
}

function python(args: string[]): void {
  execFileSync(PYTHON, args, { cwd: REPO, env: { ...process.env, PYTHONPATH: REPO }, stdio: ['ignore', 'ignore', 'inherit'] });
}

interface Converted {
  manifest: PackManifest;
  files: Record<string, Uint8Array>;
  stats: ConvertStats;
}

async function convertFiles(templateDir: string, clip: string, clipcap: string): Promise<Converted> {
  const t = readTemplateDir(join(REPO, templateDir));
  const sources = [fileSource(join(REPO, clip)), fileSource(join(REPO, clipcap))];
  try {
    const inputs = { clip: await openCheckpoint(sources[0]), clipcap: await openCheckpoint(sources[1]) };
    const sink = new MemorySink();
    const stats: ConvertStats = { maxBufferedBytes: 0, bytesWritten: 0, tensors: 0, chunks: 0 };
    const manifest = await convertPack({
      template: t.template,
      skeleton: t.skeleton,
      tokenizer: t.tokenizer,
      inputs,
      sink,
      stats,
      chunkBytes: 1 << 20,
      meta: { id: 'converted', version: '1.0.0', name: 'Converted', provenance: { by: 'python-parity.test.ts' } },
    });
    return { manifest, files: Object.fromEntries(FILES.map((f) => [f, sink.bytes(f)])), stats };
  } finally {
    for (const s of sources) s.close();
  }
}

/** Names of the files that differ from the ones in `dir` (first differing byte, for the report). */
function differing(c: Converted, dir: string, names = FILES): string[] {
  const out: string[] = [];
  for (const f of names) {
    const want = readFileSync(join(REPO, dir, f));
    const got = Buffer.from(c.files[f]);
    if (!got.equals(want)) {
      let i = 0;
      while (i < Math.min(got.length, want.length) && got[i] === want[i]) i++;
      out.push(`${f} (${got.length} vs ${want.length} bytes, first difference at byte ${i})`);
    }
  }
  return out;
}

function loaded(c: Converted): LoadedPack {
  const files = {} as Record<PackFileKey, Uint8Array>;
  for (const key of [...ROLES, 'tokenizer'] as const) files[key] = c.files[c.manifest.files[key].path];
  return { manifest: c.manifest, files, source: 'files' };
}

describe('toy-fp32: packs/published/toy converted equals packs/toy (model/export.py)', () => {
  const PUB = 'packs/published/toy';
  const TEMPLATE = 'packs/templates/toy-fp32';
  const dir = join(TMP, 'toy');
  const rel = (p: string) => join(dir, p).slice(REPO.length + 1);
  let prereq: Error | null = null;
  let fromPt: Converted;

  beforeAll(() => {
    try {
      requireFiles([
        `${TEMPLATE}/template.json`,
        `${PUB}/clip.pt`,
        `${PUB}/clip.safetensors`,
        `${PUB}/clipcap.pt`,
        'packs/toy/pack.json',
        'packs/toy/golden.json',
        ...FILES.map((f) => `packs/toy/${f}`),
        'packs/.build/toy/model.pt',
      ]);
    } catch (e) {
      prereq = e as Error;
      return;
    }
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    // the same toy weights, in OpenAI's container but kept in fp32; and what export_pack writes for the values the
    // published files hold (OpenAI's archives keep most vision weights in fp16)
    python([
      'test/converter/helpers/parity_ref.py',
      'clip-fp32',
      '--checkpoint',
      'packs/.build/toy/model.pt',
      '--out',
      rel('clip-fp32.pt'),
    ]);
    python([
      'test/converter/helpers/parity_ref.py',
      'export',
      '--config',
      'toy',
      '--checkpoint',
      'packs/.build/toy/model.pt',
      '--published',
      PUB,
      '--precision',
      'fp32',
      '--out',
      rel('ref-fp32'),
    ]);
  }, 600_000);

  const ready = () => {
    if (prereq) throw prereq;
  };

  it("clip.pt (TorchScript) + clipcap.pt (torch zip): mapper, decoder and tokenizer are packs/toy's bytes; vision is export_pack's for the published values", async () => {
    ready();
    fromPt = await convertFiles(TEMPLATE, `${PUB}/clip.pt`, `${PUB}/clipcap.pt`);
    expect(differing(fromPt, 'packs/toy', ['mapper.onnx', 'decoder.onnx', 'tokenizer.json'])).toEqual([]);
    expect(differing(fromPt, rel('ref-fp32'))).toEqual([]);
    const ref = JSON.parse(readFileSync(join(dir, 'ref-fp32', 'pack.json'), 'utf8')) as PackManifest;
    expect(fromPt.manifest.files).toEqual(ref.files);
    for (const [key, e] of Object.entries(fromPt.manifest.files)) await verifyFile(key, fromPt.files[e.path], e);
  });

  it('clip.safetensors instead of clip.pt: the same bytes', async () => {
    ready();
    const fromSt = await convertFiles(TEMPLATE, `${PUB}/clip.safetensors`, `${PUB}/clipcap.pt`);
    expect(differing(fromSt, rel('ref-fp32'))).toEqual([]);
  });

  it("the toy weights in fp32 containers: every file is packs/toy's, byte for byte, and the engine reproduces golden.json", async () => {
    ready();
    const c = await convertFiles(TEMPLATE, rel('clip-fp32.pt'), `${PUB}/clipcap.pt`);
    expect(differing(c, 'packs/toy')).toEqual([]);
    const toy = JSON.parse(readFileSync(join(REPO, 'packs/toy/pack.json'), 'utf8')) as PackManifest;
    expect(c.manifest.files).toEqual(toy.files);
    const { id: _i, name: _n, version: _v, description: _d, provenance: _p, ...rest } = toy;
    const { id: _i2, name: _n2, version: _v2, description: _d2, provenance: _p2, ...ours } = c.manifest;
    expect(ours).toEqual(rest);
    await expectGolden(c, 'packs/toy');
  });

  it('the pack converted from the published (fp16 vision) files captions the golden images as PyTorch does', async () => {
    ready();
    await expectGolden(fromPt ?? (await convertFiles(TEMPLATE, `${PUB}/clip.pt`, `${PUB}/clipcap.pt`)), 'packs/toy');
  });
});

async function expectGolden(c: Converted, goldenDir: string): Promise<void> {
  const golden = readGolden(join(REPO, goldenDir));
  const cap = await createCaptioner({ pack: loaded(c), ort: ort, backend: 'wasm', threads: 1, decodeImage: decodeImageWithSharp });
  try {
    for (const img of golden.images) {
      const g = await cap.caption(readFileSync(join(REPO, goldenDir, img.file)), {
        strategy: 'greedy',
        maxTokens: golden.decoding.maxTokens,
      });
      expect(g.tokenIds, img.file).toEqual(img.greedy.tokenIds);
    }
  } finally {
    await cap.dispose();
  }
}

describe('small (transformer mapper): published files of random weights converted equal export_pack', () => {
  const dir = join(TMP, 'small');
  const rel = (p: string) => join(dir, p).slice(REPO.length + 1);
  const TEMPLATE32 = 'packs/templates/small-fp32';
  let template16 = 'packs/templates/small-fp16';
  let prereq: Error | null = null;

  beforeAll(() => {
    try {
      requireFiles([`${TEMPLATE32}/template.json`]);
    } catch (e) {
      prereq = e as Error;
      return;
    }
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    // random weights with no two tensors equal, in the published containers (parity_ref.py says why not --random)
    python(['test/converter/helpers/parity_ref.py', 'checkpoint', '--config', 'small', '--seed', '7', '--out', rel('model.pt')]);
    python(['-m', 'model.published', '--from-checkpoint', rel('model.pt'), '--out', rel('published')]);
    for (const p of ['fp32', 'fp16']) {
      python([
        'test/converter/helpers/parity_ref.py',
        'export',
        '--config',
        'small',
        '--published',
        rel('published'),
        '--precision',
        p,
        '--out',
        rel(`ref-${p}`),
      ]);
    }
    if (!existsSync(join(REPO, template16, 'template.json'))) {
      // no fp16 template of this config among the built ones: make one (seconds at this size)
      template16 = rel('small-fp16');
      python(['-m', 'model.template', '--config', 'small', '--precision', 'fp16', '--out', template16]);
    }
  }, 600_000);

  const ready = () => {
    if (prereq) throw prereq;
  };

  for (const clip of ['clip.pt', 'clip.safetensors']) {
    it(`fp32 from ${clip}: every file equals export_pack's`, async () => {
      ready();
      const c = await convertFiles(TEMPLATE32, rel(`published/${clip}`), rel('published/clipcap.pt'));
      expect(differing(c, rel('ref-fp32'))).toEqual([]);
      expect(c.manifest.files).toEqual((JSON.parse(readFileSync(join(dir, 'ref-fp32', 'pack.json'), 'utf8')) as PackManifest).files);
    });
  }

  it("fp16 (float16 storage, round to nearest even): every file equals export_pack's", async () => {
    ready();
    const c = await convertFiles(template16, rel('published/clip.pt'), rel('published/clipcap.pt'));
    expect(c.manifest.precision).toBe('fp16');
    expect(differing(c, rel('ref-fp16'))).toEqual([]);
  });

  it('refuses the published clip file given as clipcap, naming the keys and what the file is', async () => {
    ready();
    const e = await convertFiles(TEMPLATE32, rel('published/clip.pt'), rel('published/clip.pt')).catch((x: unknown) => x);
    expect((e as Error).name).toBe('WrongCheckpointError');
    expect((e as Error).message).toMatch(/"clipcap" weights does not fit model "small-fp32": it seems to be a CLIP checkpoint/);
    expect((e as Error).message).toMatch(/missing \(clip_project\./);
  });
});

describe('tiny ResNet (BatchNorm folded into convolutions): published files converted equal export_pack', () => {
  const dir = join(TMP, 'resnet');
  const rel = (p: string) => join(dir, p).slice(REPO.length + 1);

  beforeAll(() => {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    python(['test/converter/helpers/parity_ref.py', 'resnet', '--seed', '7', '--out', rel('')]);
    for (const p of ['fp32', 'fp16']) {
      python([
        'test/converter/helpers/parity_ref.py',
        'export',
        '--config',
        'tiny-resnet',
        '--published',
        rel('published'),
        '--precision',
        p,
        '--out',
        rel(`ref-${p}`),
      ]);
    }
  }, 600_000);

  for (const p of ['fp32', 'fp16']) {
    it(`${p}: every file equals export_pack's, bn_fold_weight/bn_fold_bias included`, async () => {
      const t = readTemplateDir(join(dir, 'templates', `tiny-resnet-${p}`)).template;
      const ops = new Set(t.graphs.flatMap((g) => g.pieces.map((x) => (x.kind === 'tensor' ? x.op : 'copy'))));
      expect([...ops]).toEqual(expect.arrayContaining(['bn_fold_weight', 'bn_fold_bias']));
      const c = await convertFiles(rel(`templates/tiny-resnet-${p}`), rel('published/clip.pt'), rel('published/clipcap.pt'));
      expect(differing(c, rel(`ref-${p}`))).toEqual([]);
    });
  }
});
