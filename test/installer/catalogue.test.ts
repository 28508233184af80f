/**
 * The catalogue: the bundled one is valid and honest (unverified figures are null, never invented), a bad one is a
 * named error, CAPTION_MIRROR_BASE rewrites every URL, and scripts/pin-catalogue.mjs fills in what the loopback hub
 * declares.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CatalogueError } from '../../src/shared/errors';
import { loadCatalogue, modelSizes, parseCatalogue, rewriteUrl, withMirrorBase } from '../../src/installer/catalogue';
import bundled from '../../src/shared/catalogue.json';
import { startHubServer, type HubServer } from '../helpers/hub-server';

const clone = () => structuredClone(bundled) as unknown as ReturnType<typeof parseCatalogue> & Record<string, unknown>;

describe('the bundled catalogue', () => {
  it('is valid, with one default model and the contract\u2019s templates', () => {
    const c = loadCatalogue();
    expect(c.models.filter((m) => m.default).map((m) => m.id)).toEqual(['clipcap-coco']);
    expect(c.models.map((m) => [m.id, m.template])).toEqual([
      ['clipcap-coco', 'vit-b32-mlp-fp16'],
      ['clipcap-conceptual', 'vit-b32-mlp-fp16'],
      ['clipcap-coco-transformer', 'rn50x4-transformer-fp16'],
    ]);
  });

  it('pins what was verified and leaves the rest null', () => {
    const c = loadCatalogue();
    const src = (id: string, role: string) => c.models.find((m) => m.id === id)!.inputs[role].sources;
    // OpenAI's URL carries the SHA-256 that clip.py checks; its size is confirmed by an LFS pointer of a mirror.
    expect(src('clipcap-coco', 'clip')[0]).toMatchObject({
      bytes: 353_976_522,
      sha256: '40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af',
    });
    // akhaliq's files: no size or hash was seen; COCO's commit is unknown (main), Conceptual's is pinned.
    expect(src('clipcap-coco', 'clipcap')[0]).toMatchObject({ bytes: null, sha256: null });
    expect(src('clipcap-coco', 'clipcap')[0].url).toContain('/resolve/main/');
    expect(src('clipcap-conceptual', 'clipcap')[0]).toMatchObject({ bytes: null, sha256: null });
    expect(src('clipcap-conceptual', 'clipcap')[0].url).toContain('/resolve/7851f7b3a552313405818648fe807ada460478b0/');
    // RN50x4's size comes from one third-party file only: not pinned.
    expect(src('clipcap-coco-transformer', 'clip')[0].bytes).toBeNull();
    expect(c.models.find((m) => m.id === 'clipcap-coco-transformer')!.inputs.clipcap).toMatchObject({ fetch: 'user-file', sources: [] });
  });
});

describe('the text tower\u2019s sizes', () => {
  it('are given for every model, from the text transformer\u2019s parameter count at 2 bytes each', () => {
    const c = loadCatalogue();
    // (vocab 49408, context 77, 12 layers of width w, projection w x w): 63,428,096 and 91,163,520 parameters
    const params = (w: number) => 49408 * w + 77 * w + 12 * (12 * w * w + 13 * w) + 2 * w + w * w;
    const tokenizer = readFileSync('packs/templates/small-fp32/text-tokenizer.json').length;
    for (const m of c.models) {
      const w = m.template.startsWith('vit-b32') ? 512 : 640;
      expect(m.textDownloadBytes, m.id).toBe(2 * params(w));
      expect(m.textDiskBytes, m.id).toBe(2 * params(w) + tokenizer);
    }
    expect(modelSizes(c.models[0], false)).toEqual({ downloadBytes: c.models[0].downloadBytes, diskBytes: c.models[0].diskBytes });
    expect(modelSizes(c.models[0], true)).toEqual({
      downloadBytes: c.models[0].downloadBytes + 126_856_192,
      diskBytes: c.models[0].diskBytes + 128_342_131,
    });
  });
});

describe('validation', () => {
  const bad: Array<[string, (c: ReturnType<typeof clone>) => void, RegExp]> = [
    ['two defaults', (c) => void (c.models[1].default = true), /exactly one model must be the default, found 2/],
    [
      'an invented-looking hash',
      (c) => void (c.models[0].inputs.clip.sources[0].sha256 = 'abc'),
      /"sha256" of .* must be 64 lowercase hex digits or null/,
    ],
    ['a negative size', (c) => void (c.models[0].inputs.clip.sources[0].bytes = -1), /"bytes" of .* must be a byte count or null/],
    ['an unknown fetch mode', (c) => void ((c.models[0].inputs.clip as { fetch: string }).fetch = 'some'), /"fetch" must be/],
    ['a template path', (c) => void (c.models[0].template = '../x'), /"template" must be a plain folder name/],
    ['a duplicate id', (c) => void (c.models[1].id = 'clipcap-coco'), /listed twice/],
    ['a text tower of -1 bytes', (c) => void (c.models[0].textDownloadBytes = -1), /"textDownloadBytes" must be a byte count when given/],
    ['a text tower of 1.5 bytes on disk', (c) => void (c.models[0].textDiskBytes = 1.5), /"textDiskBytes" must be a byte count when given/],
  ];
  it.each(bad)('%s is a CatalogueError naming the problem', (_n, edit, msg) => {
    const c = clone();
    edit(c);
    expect(() => parseCatalogue(c)).toThrow(CatalogueError);
    expect(() => parseCatalogue(c)).toThrow(msg);
  });

  it('CAPTION_MIRROR_BASE rewrites https://HOST/PATH to BASE/HOST/PATH', () => {
    expect(rewriteUrl('https://huggingface.co/a/b/resolve/main/x.pt', 'http://127.0.0.1:9/m/')).toBe(
      'http://127.0.0.1:9/m/huggingface.co/a/b/resolve/main/x.pt',
    );
    expect(rewriteUrl('https://x.test/y', '')).toBe('https://x.test/y');
    const c = withMirrorBase(parseCatalogue(clone()), 'http://127.0.0.1:9');
    for (const m of c.models)
      for (const i of Object.values(m.inputs))
        for (const s of i.sources) expect(s.url).toMatch(/^http:\/\/127\.0\.0\.1:9\/(huggingface\.co|openaipublic\.azureedge\.net)\//);
  });
});

describe('scripts/pin-catalogue.mjs against the loopback hub', () => {
  let hub: HubServer;
  let dir: string;
  beforeAll(async () => {
    hub = await startHubServer();
    dir = mkdtempSync(join(tmpdir(), 'pin-'));
  });
  afterAll(async () => {
    await hub?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('fills size and SHA-256 from the Hub\u2019s redirect, pins the branch to its commit, and keeps unstated figures null', async () => {
    const body = new Uint8Array(54_321).fill(7);
    const commit = 'a'.repeat(40);
    const sha = hub.add('huggingface.co/akhaliq/CLIP-prefix-captioning-COCO-weights/resolve/main/coco_weights.pt', body, { commit });
    hub.add(
      'openaipublic.azureedge.net/clip/models/40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af/ViT-B-32.pt',
      new Uint8Array(353_976_522 % 100_000),
    );
    const c = clone();
    c.models = [c.models[0]];
    c.models[0].inputs.clip.sources = [{ ...c.models[0].inputs.clip.sources[0], bytes: null }];
    const file = join(dir, 'catalogue.json');
    writeFileSync(file, JSON.stringify(c));
    await promisify(execFile)('node', ['scripts/pin-catalogue.mjs', '--catalogue', file, '--base', hub.url]);
    const out = JSON.parse(readFileSync(file, 'utf8'));
    const cc = out.models[0].inputs.clipcap.sources[0];
    expect(cc).toMatchObject({ bytes: 54_321, sha256: sha });
    expect(cc.url).toBe(`https://huggingface.co/akhaliq/CLIP-prefix-captioning-COCO-weights/resolve/${commit}/coco_weights.pt`);
    // Azure declares the size (Content-Range) but no hash; the pinned one (the URL's own) stays.
    expect(out.models[0].inputs.clip.sources[0]).toMatchObject({
      bytes: 353_976_522 % 100_000,
      sha256: '40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af',
    });
    expect(out.models[0].downloadBytes).toBe((353_976_522 % 100_000) + 54_321);
    expect(out.models[0]).toMatchObject({ textDownloadBytes: 126_856_192, textDiskBytes: 128_342_131 }); // kept as they were
    expect(() => parseCatalogue(out)).not.toThrow();
  });
});
