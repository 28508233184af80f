/**
 * The model catalogue (src/shared/catalogue.json, docs/model-install.md section 1): which models exist and where every
 * byte comes from. Loaded once, validated, and with mirror URLs rewritten for test builds.
 *
 * Build-time settings (vite.config.ts `define`; unset in Node tests, where callers pass a catalogue explicitly):
 *   __CAPTION_CATALOGUE__    a replacement catalogue object (CAPTION_CATALOGUE=path), or null for the bundled one
 *   __CAPTION_MIRROR_BASE__  '' or a base URL: https://HOST/PATH becomes ${BASE}/HOST/PATH (CAPTION_MIRROR_BASE)
 */
import { CatalogueError } from '../shared/errors';
import bundled from '../shared/catalogue.json';

declare const __CAPTION_CATALOGUE__: unknown;
declare const __CAPTION_MIRROR_BASE__: string;

type FetchMode = 'whole' | 'vision-only' | 'user-file';
type SourceFormat = 'torch-zip' | 'torchscript' | 'safetensors';

export interface CatalogueSource {
  url: string;
  format: SourceFormat;
  /** null: not verified; the size the server declares is used and checked against Content-Range / X-Linked-Size */
  bytes: number | null;
  /** null: not verified; the SHA-256 the server declares (X-Linked-Etag) is used when readable */
  sha256: string | null;
}

export interface CatalogueInput {
  fetch: FetchMode;
  sources: CatalogueSource[];
  /** user-file: the checkpoint's format, and what to tell the user about where to get it */
  format?: SourceFormat;
  hint?: string;
  /** user-file: pinned hash of the file the user picks, when known */
  sha256?: string | null;
  bytes?: number | null;
}

export interface CatalogueModel {
  id: string;
  default: boolean;
  name: string;
  description: string;
  template: string;
  precision: string;
  version?: string;
  downloadBytes: number;
  diskBytes: number;
  /**
   * What CLIP's text tower adds when the user turns on "check each caption against the picture" (the range read of
   * its tensors, and text.onnx + text-tokenizer.json in the pack). Absent: not known (the template may still have it).
   */
  textDownloadBytes?: number;
  textDiskBytes?: number;
  license: string;
  inputs: Record<string, CatalogueInput>;
}

export interface Catalogue {
  format: 'clipcap-catalogue';
  formatVersion: 1;
  models: CatalogueModel[];
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isSize = (v: unknown) => v === null || (Number.isSafeInteger(v) && (v as number) >= 0);
const isHash = (v: unknown) => v === null || (typeof v === 'string' && /^[0-9a-f]{64}$/.test(v));

/** Validate a parsed catalogue; throws CatalogueError naming the first problem. */
export function parseCatalogue(input: unknown): Catalogue {
  const c = typeof input === 'string' ? (JSON.parse(input) as unknown) : input;
  if (!isObj(c) || c.format !== 'clipcap-catalogue') throw new CatalogueError('"format" must be "clipcap-catalogue"');
  if (c.formatVersion !== 1) throw new CatalogueError(`formatVersion ${JSON.stringify(c.formatVersion)} is not 1`);
  if (!Array.isArray(c.models) || c.models.length === 0) throw new CatalogueError('"models" must be a non-empty list');
  const ids = new Set<string>();
  for (const m of c.models as unknown[]) {
    if (!isObj(m) || typeof m.id !== 'string' || !/^[a-z0-9-]+$/.test(m.id))
      throw new CatalogueError('every model needs an "id" matching [a-z0-9-]+');
    const at = `model "${m.id}"`;
    if (ids.has(m.id)) throw new CatalogueError(`${at} is listed twice`);
    ids.add(m.id);
    for (const k of ['name', 'description', 'template', 'precision', 'license'] as const) {
      if (typeof m[k] !== 'string' || m[k] === '') throw new CatalogueError(`${at}: "${k}" must be a non-empty string`);
    }
    if (!/^[a-z0-9][a-z0-9._-]*$/.test(m.template as string)) throw new CatalogueError(`${at}: "template" must be a plain folder name`);
    if (typeof m.default !== 'boolean') throw new CatalogueError(`${at}: "default" must be true or false`);
    for (const k of ['downloadBytes', 'diskBytes'] as const) {
      if (!Number.isSafeInteger(m[k]) || (m[k] as number) < 0) throw new CatalogueError(`${at}: "${k}" must be a byte count`);
    }
    for (const k of ['textDownloadBytes', 'textDiskBytes'] as const) {
      if (m[k] !== undefined && (!Number.isSafeInteger(m[k]) || (m[k] as number) < 0)) {
        throw new CatalogueError(`${at}: "${k}" must be a byte count when given`);
      }
    }
    if (!isObj(m.inputs) || Object.keys(m.inputs).length === 0) throw new CatalogueError(`${at}: "inputs" must name at least one input`);
    for (const [role, inp] of Object.entries(m.inputs)) {
      const where = `${at}, input "${role}"`;
      if (!/^[a-z0-9_-]+$/.test(role)) throw new CatalogueError(`${where}: role names are [a-z0-9_-]+`);
      if (!isObj(inp) || !['whole', 'vision-only', 'user-file'].includes(inp.fetch as string)) {
        throw new CatalogueError(`${where}: "fetch" must be "whole", "vision-only" or "user-file"`);
      }
      if (!Array.isArray(inp.sources)) throw new CatalogueError(`${where}: "sources" must be a list`);
      if (inp.fetch !== 'user-file' && inp.sources.length === 0) throw new CatalogueError(`${where}: needs at least one source`);
      if (inp.fetch === 'user-file' && !['torch-zip', 'torchscript', 'safetensors'].includes(inp.format as string)) {
        throw new CatalogueError(`${where}: a user file needs a "format"`);
      }
      if (!isHash(inp.sha256 ?? null) || !isSize(inp.bytes ?? null)) throw new CatalogueError(`${where}: bad "sha256" or "bytes"`);
      for (const s of inp.sources as unknown[]) {
        if (!isObj(s) || typeof s.url !== 'string' || !/^https?:\/\//.test(s.url))
          throw new CatalogueError(`${where}: every source needs an http(s) "url"`);
        if (!['torch-zip', 'torchscript', 'safetensors'].includes(s.format as string))
          throw new CatalogueError(`${where}: unknown format ${JSON.stringify(s.format)}`);
        // null is allowed on purpose: an unverified figure must never be invented (scripts/pin-catalogue.mjs fills them).
        if (!isSize(s.bytes)) throw new CatalogueError(`${where}: "bytes" of ${s.url} must be a byte count or null`);
        if (!isHash(s.sha256)) throw new CatalogueError(`${where}: "sha256" of ${s.url} must be 64 lowercase hex digits or null`);
      }
    }
  }
  const defaults = (c.models as CatalogueModel[]).filter((m) => m.default).length;
  if (defaults !== 1) throw new CatalogueError(`exactly one model must be the default, found ${defaults}`);
  return c as unknown as Catalogue;
}

/** https://HOST/PATH -> ${base}/HOST/PATH (test builds point every mirror at one loopback server). */
export function rewriteUrl(url: string, mirrorBase: string): string {
  if (!mirrorBase) return url;
  const m = /^https?:\/\/(.*)$/.exec(url);
  return m ? `${mirrorBase.replace(/\/+$/, '')}/${m[1]}` : url;
}

/** A copy of the catalogue with every source URL rewritten. */
export function withMirrorBase(c: Catalogue, mirrorBase: string): Catalogue {
  if (!mirrorBase) return c;
  const out = structuredClone(c);
  for (const m of out.models) for (const inp of Object.values(m.inputs)) for (const s of inp.sources) s.url = rewriteUrl(s.url, mirrorBase);
  return out;
}

let cached: Catalogue | null = null;

/** The build's catalogue: the CAPTION_CATALOGUE replacement or the bundled one, validated, mirrors rewritten. */
export function loadCatalogue(): Catalogue {
  if (!cached) {
    const replacement = typeof __CAPTION_CATALOGUE__ !== 'undefined' ? __CAPTION_CATALOGUE__ : null;
    const base = typeof __CAPTION_MIRROR_BASE__ !== 'undefined' ? __CAPTION_MIRROR_BASE__ : '';
    cached = withMirrorBase(parseCatalogue(replacement ?? bundled), base);
  }
  return cached;
}

/** What installing `m` downloads and stores, with or without CLIP's text tower. */
export function modelSizes(m: CatalogueModel, text: boolean): { downloadBytes: number; diskBytes: number } {
  return {
    downloadBytes: m.downloadBytes + (text ? (m.textDownloadBytes ?? 0) : 0),
    diskBytes: m.diskBytes + (text ? (m.textDiskBytes ?? 0) : 0),
  };
}

export function findModel(c: Catalogue, id: string): CatalogueModel | undefined {
  return c.models.find((m) => m.id === id);
}
