/**
 * Synthetic "published" files and a catalogue that points at them on the loopback hub (test/helpers/hub-server.ts),
 * with their real sizes and hashes, for the installer tests.
 *
 * The files come from the Python toolkit, in the exact containers of the published ones (model/published.py: clip.pt
 * a TorchScript archive like OpenAI's, clip.safetensors like timm's, clipcap.pt a torch.save zip like ClipCap's), and
 * the graph template from model/template.py (see ensureInstallFixture).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
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

/** Build `dir` with `python args… --out dir` unless it exists: beside it first, then renamed, so a test file running
 * in parallel never sees half a folder. */
export function buildOnce(dir: string, args: string[]): void {
  if (existsSync(dir)) return;
  const tmp = `${dir}.${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(dirname(dir), { recursive: true });
  execFileSync('/usr/bin/python3', [...args, '--out', tmp], { cwd: root, stdio: 'pipe', env: { ...process.env, OMP_NUM_THREADS: '1' } });
  try {
    renameSync(tmp, dir);
  } catch {
    rmSync(tmp, { recursive: true, force: true }); // another process won the race
  }
}

function fixture(publishedDir: string, templatesDir: string, templateId: string): InstallFixture {
  return { publishedDir, templatesDir, templateId, file: (name) => readFileSync(join(publishedDir, name)) };
}

/**
 * The synthetic published files and their template.
 *   'small' (default): random weights of the small config, built once into .tmp/installer-fixtures/ (about 30 s);
 *           PUBLISHED_DIR, TEMPLATES_DIR and TEMPLATE_ID replace them (they must exist then).
 *   'toy':  the toy model's weights (packs/published/toy, made here from packs/.build/toy/model.pt) and the toy-fp32
 *           template, so that the installed pack can be compared with packs/toy. Needs `bash scripts/packs.sh`.
 */
export function ensureInstallFixture(kind: 'small' | 'toy' = 'small'): InstallFixture {
  if (kind === 'toy') {
    const need = ['packs/templates/toy-fp32/template.json', 'packs/toy/pack.json'];
    if (!existsSync(join(root, 'packs/published/toy/clipcap.pt'))) need.push('packs/.build/toy/model.pt');
    const missing = need.filter((p) => !existsSync(join(root, p)));
    if (missing.length) throw new Error(`missing ${missing.join(', ')}: build them with \`bash scripts/packs.sh\``);
    buildOnce(join(root, 'packs/published/toy'), ['-m', 'model.published', '--from-checkpoint', 'packs/.build/toy/model.pt']);
    return fixture(join(root, 'packs/published/toy'), join(root, 'packs/templates'), 'toy-fp32');
  }
  if (process.env.PUBLISHED_DIR || process.env.TEMPLATES_DIR) {
    const fx = fixture(process.env.PUBLISHED_DIR ?? '', process.env.TEMPLATES_DIR ?? '', process.env.TEMPLATE_ID ?? 'small-fp32');
    for (const p of [join(fx.publishedDir, 'clipcap.pt'), join(fx.templatesDir, fx.templateId, 'template.json')]) {
      if (!existsSync(p)) throw new Error(`${p} is missing (PUBLISHED_DIR/TEMPLATES_DIR point there)`);
    }
    return fx;
  }
  const publishedDir = join(root, '.tmp/installer-fixtures/published/small');
  const templatesDir = join(root, '.tmp/installer-fixtures/templates');
  buildOnce(publishedDir, ['-m', 'model.published', '--random', 'small']);
  buildOnce(join(templatesDir, 'small-fp32'), ['-m', 'model.template', '--config', 'small', '--precision', 'fp32', '--id', 'small-fp32']);
  return fixture(publishedDir, templatesDir, 'small-fp32');
}

/** Logical paths (as the hub serves them, and as https://… URLs before CAPTION_MIRROR_BASE rewrites them). */
export const PATHS = {
  clipAzure: 'openaipublic.azureedge.net/clip/models/test/clip.pt',
  clipHub: 'huggingface.co/timm/test-clip/resolve/0000000000000000000000000000000000000001/clip.safetensors',
  clipcapHub: 'huggingface.co/akhaliq/test-clipcap/resolve/main/clipcap.pt',
  clipcapMirror: 'huggingface.co/mirror/test-clipcap/resolve/0000000000000000000000000000000000000002/clipcap.pt',
} as const;

type FileName = 'clip.pt' | 'clip.safetensors' | 'clipcap.pt';
type FileFacts = Record<FileName, { bytes: number; sha256: string }>;

/** Where each file is served, in the catalogue's order (clipcap.pt twice: akhaliq's repo and a mirror). */
export const SERVED: ReadonlyArray<readonly [string, FileName]> = [
  [PATHS.clipAzure, 'clip.pt'],
  [PATHS.clipHub, 'clip.safetensors'],
  [PATHS.clipcapHub, 'clipcap.pt'],
  [PATHS.clipcapMirror, 'clipcap.pt'],
];

/** The catalogue of files already on the hub, by their sizes and hashes (through withMirrorBase, as a
 * CAPTION_MIRROR_BASE build does). */
function catalogueOf(hub: HubServer, templateId: string, facts: FileFacts, edit?: (m: CatalogueModel) => void): Catalogue {
  const clipPt = facts['clip.pt'];
  const clipSt = facts['clip.safetensors'];
  const clipcap = facts['clipcap.pt'];
  const model: CatalogueModel = {
    id: 'toy-coco',
    default: true,
    name: 'Toy COCO',
    description: 'synthetic weights',
    template: templateId,
    precision: 'fp32',
    version: '1.0.0',
    downloadBytes: clipPt.bytes + clipcap.bytes,
    diskBytes: 8_000_000,
    license: 'test',
    inputs: {
      clip: {
        fetch: 'vision-only',
        sources: [
          { url: `https://${PATHS.clipAzure}`, format: 'torchscript', bytes: clipPt.bytes, sha256: clipPt.sha256 },
          { url: `https://${PATHS.clipHub}`, format: 'safetensors', bytes: clipSt.bytes, sha256: clipSt.sha256 },
        ],
      },
      clipcap: {
        fetch: 'whole',
        sources: [
          { url: `https://${PATHS.clipcapHub}`, format: 'torch-zip', bytes: null, sha256: null },
          { url: `https://${PATHS.clipcapMirror}`, format: 'torch-zip', bytes: clipcap.bytes, sha256: clipcap.sha256 },
        ],
      },
    },
  };
  edit?.(model);
  return withMirrorBase({ format: 'clipcap-catalogue', formatVersion: 1, models: [model] }, hub.url);
}

/**
 * Put the fixture's files on the hub and return a catalogue whose URLs point there (through withMirrorBase, as a
 * CAPTION_MIRROR_BASE build does). The first clipcap source, like akhaliq's, pins neither size nor hash.
 */
export function testCatalogue(hub: HubServer, fx: InstallFixture, edit?: (m: CatalogueModel) => void): Catalogue {
  const facts = {} as FileFacts;
  const read = new Map<FileName, Buffer>();
  for (const [path, name] of SERVED) {
    const b = read.get(name) ?? fx.file(name);
    read.set(name, b);
    facts[name] = { bytes: b.length, sha256: hub.add(path, b) };
  }
  return catalogueOf(hub, fx.templateId, facts, edit);
}

/**
 * The same catalogue for the files in `publishedDir` (clip.pt, clip.safetensors, clipcap.pt), streamed from disk by
 * the hub rather than held in memory: for full-size files (bench/accept-convert.bench.ts).
 */
export async function diskCatalogue(
  hub: HubServer,
  publishedDir: string,
  templateId: string,
  edit?: (m: CatalogueModel) => void,
): Promise<Catalogue> {
  const facts = {} as FileFacts;
  for (const [path, name] of SERVED) {
    const file = join(publishedDir, name);
    // clipcap.pt is served twice: hash it once
    facts[name] = { bytes: statSync(file).size, sha256: await hub.addFile(path, file, { sha256: facts[name]?.sha256 }) };
  }
  return catalogueOf(hub, templateId, facts, edit);
}
