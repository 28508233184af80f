/**
 * A full install from the toy model's published-format files (packs/published/toy: OpenAI's TorchScript container for
 * CLIP, torch.save's zip for ClipCap) served by the loopback hub, with the toy-fp32 template: the installed pack's
 * mapper, decoder and tokenizer are packs/toy's bytes (model/export.py), and its vision graph is what convertPack
 * makes from the same files read locally (OpenAI's archive keeps vision weights in fp16, so the vision graph holds
 * those values, not packs/toy's fp32 ones; test/converter/python-parity.test.ts checks that graph against export_pack).
 * Needs `bash scripts/packs.sh` (packs/toy, packs/templates/toy-fp32, packs/.build/toy/model.pt).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCachedPack } from '../../src/captioner/pack-loader';
import { MemoryPackStore } from '../../src/captioner/pack-store';
import { convertPack } from '../../src/converter/convert';
import { bytesSource, openCheckpoint } from '../../src/converter/readers/checkpoint';
import { parseTemplate } from '../../src/converter/template';
import { Installer } from '../../src/installer/installer';
import { startHubServer, type HubServer } from '../helpers/hub-server';
import { PATHS, ensureInstallFixture, testCatalogue, type InstallFixture } from '../helpers/test-catalogue';

let hub: HubServer;
let fx: InstallFixture;
beforeAll(async () => {
  fx = ensureInstallFixture('toy');
  hub = await startHubServer();
  hub.mount('/templates/', fx.templatesDir);
}, 300_000);
afterAll(() => hub?.close());

describe('installing the toy model from its published files', () => {
  it('gives packs/toy\u2019s mapper, decoder and tokenizer, and the locally converted vision graph', async () => {
    const store = new MemoryPackStore();
    const inst = new Installer({
      store,
      catalogue: testCatalogue(hub, fx),
      templateBase: `${hub.url}/templates/`,
      onState: () => undefined,
      retries: 2,
      retryDelayMs: 5,
      minRequest: 4096,
    });
    const s = await inst.install('toy-coco');
    expect(s.error).toBeNull();
    const pack = await loadCachedPack((await inst.readyStoreId('toy-coco'))!, { store });
    const toy = (f: string) => readFileSync(join('packs/toy', f));
    expect(Buffer.from(pack.files.mapper).equals(toy('mapper.onnx'))).toBe(true);
    expect(Buffer.from(pack.files.decoder).equals(toy('decoder.onnx'))).toBe(true);
    expect(Buffer.from(pack.files.tokenizer).equals(toy('tokenizer.json'))).toBe(true);
    // Only the visual tensors of clip.pt crossed the network.
    expect(hub.sent.get(PATHS.clipAzure)).toBeLessThan(fx.file('clip.pt').length);

    const tdir = join(fx.templatesDir, fx.templateId);
    const template = parseTemplate(readFileSync(join(tdir, 'template.json'), 'utf8'));
    const out = new MemoryPackStore();
    const local = await convertPack({
      template,
      text: false, // as installed: the user did not turn the caption check on (test/installer/text.test.ts turns it on)
      tokenizer: readFileSync(join(tdir, 'tokenizer.json')),
      skeleton: async (p) => readFileSync(join(tdir, p)),
      inputs: {
        clip: await openCheckpoint(bytesSource(new Uint8Array(fx.file('clip.pt'))), 'torchscript'),
        clipcap: await openCheckpoint(bytesSource(new Uint8Array(fx.file('clipcap.pt'))), 'torch-zip'),
      },
      sink: { append: (path, offset, data) => out.append('x', path, offset, data) },
      meta: { id: 'toy-coco', version: '1.0.0', name: 'x' },
    });
    expect(pack.manifest.files).toEqual(local.files);
    expect(Buffer.from(pack.files.vision).equals(Buffer.from((await out.read('x', 'vision.onnx'))!))).toBe(true);
  });
});
