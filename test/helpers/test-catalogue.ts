/**
 * Synthetic "published" files and a catalogue that points at them on the loopback hub (test/helpers/hub-server.ts),
 * with their real sizes and hashes, for the installer tests.
 *
 * The files come from the Python toolkit, in the exact containers of the published ones (model/published.py: clip.pt
 * a TorchScript archive like OpenAI's, clip.safetensors like timm's, clipcap.pt a torch.save zip like ClipCap's), and
 * the graph template from model/template.py. They are built once into .tmp/installer-fixtures/ (about 30 s) and
 * reused; `PUBLISHED_DIR`/`TEMPLATES_DIR` point elsewhere (e.g. packs/published/toy and packs/templates) when set.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Catalogue, CatalogueModel } from '../../src/installer/catalogue';
import { withMirrorBase } from '../../src/installer/catalogue';
import type { HubServer } from './hub-server';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

export interface InstallFixture {
  /** folder with clip.pt, clip.safetensors, clipcap.pt */
  publishedDir: string;
  /** folder holding <templateId>/template.json etc. (served as templateBase) */
  templatesDir: string;
  templateId: string;
  file(name: 'clip.pt' | 'clip.safetensors' | 'clipcap.pt'): Buffer;
}

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** Build (once) the synthetic published files and their template; about 30 s with /usr/bin/python3 and torch. */
export function ensureInstallFixture(): InstallFixture {
  const publishedDir = process.env.PUBLISHED_DIR ?? join(root, '.tmp/installer-fixtures/published/small');
  const templatesDir = process.env.TEMPLATES_DIR ?? join(root, '.tmp/installer-fixtures/templates');
  const templateId = process.env.TEMPLATE_ID ?? 'small-fp32';
  const build = (dir: string, args: string[]) => {
    if (existsSync(dir)) return;
    // Build beside, then rename: a test file running in parallel never sees half a folder.
    const tmp = `${dir}.${process.pid}`;
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(dirname(dir), { recursive: true });
    execFileSync('/usr/bin/python3', [...args, '--out', tmp], { cwd: root, stdio: 'pipe', env: { ...process.env, OMP_NUM_THREADS: '1' } });
    try {
      renameSync(tmp, dir);
    } catch {
      rmSync(tmp, { recursive: true, force: true }); // another process won the race
    }
  };
  build(publishedDir, ['-m', 'model.published', '--random', 'small']);
  build(join(templatesDir, templateId), ['-m', 'model.template', '--config', 'small', '--precision', 'fp32', '--id', templateId]);
  return { publishedDir, templatesDir, templateId, file: (name) => readFileSync(join(publishedDir, name)) };
}

/** Logical paths (as the hub serves them, and as https://… URLs before CAPTION_MIRROR_BASE rewrites them). */
export const PATHS = {
  clipAzure: 'openaipublic.azureedge.net/clip/models/test/clip.pt',
  clipHub: 'huggingface.co/timm/test-clip/resolve/0000000000000000000000000000000000000001/clip.safetensors',
  clipcapHub: 'huggingface.co/akhaliq/test-clipcap/resolve/main/clipcap.pt',
  clipcapMirror: 'huggingface.co/mirror/test-clipcap/resolve/0000000000000000000000000000000000000002/clipcap.pt',
} as const;

/**
 * Put the fixture's files on the hub and return a catalogue whose URLs point there (through withMirrorBase, as a
 * CAPTION_MIRROR_BASE build does). The first clipcap source, like akhaliq's, pins neither size nor hash.
 */
export function testCatalogue(hub: HubServer, fx: InstallFixture, edit?: (m: CatalogueModel) => void): Catalogue {
  const clipPt = fx.file('clip.pt');
  const clipSt = fx.file('clip.safetensors');
  const clipcap = fx.file('clipcap.pt');
  hub.add(PATHS.clipAzure, clipPt);
  hub.add(PATHS.clipHub, clipSt);
  hub.add(PATHS.clipcapHub, clipcap);
  hub.add(PATHS.clipcapMirror, clipcap);
  const model: CatalogueModel = {
    id: 'toy-coco', default: true, name: 'Toy COCO', description: 'synthetic weights', template: fx.templateId, precision: 'fp32',
    version: '1.0.0', downloadBytes: clipPt.length + clipcap.length, diskBytes: 8_000_000, license: 'test',
    inputs: {
      clip: {
        fetch: 'vision-only',
        sources: [
          { url: `https://${PATHS.clipAzure}`, format: 'torchscript', bytes: clipPt.length, sha256: sha256(clipPt) },
          { url: `https://${PATHS.clipHub}`, format: 'safetensors', bytes: clipSt.length, sha256: sha256(clipSt) },
        ],
      },
      clipcap: {
        fetch: 'whole',
        sources: [
          { url: `https://${PATHS.clipcapHub}`, format: 'torch-zip', bytes: null, sha256: null },
          { url: `https://${PATHS.clipcapMirror}`, format: 'torch-zip', bytes: clipcap.length, sha256: sha256(clipcap) },
        ],
      },
    },
  };
  edit?.(model);
  return withMirrorBase({ format: 'clipcap-catalogue', formatVersion: 1, models: [model] }, hub.url);
}
