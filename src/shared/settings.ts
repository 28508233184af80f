/**
 * User settings: one DEFAULTS object (the type is derived from it), a schema version with dated migrations, and a
 * validator that repairs bad values and says what it fixed. Stored in storage.local (browser.*) under `settings`.
 */
import { LIMITS, inRange, inRealRange, type IntRange } from './limits';

export interface PackSource {
  /** Base URL of the pack directory (ends with '/'); pack.json lives at `${url}pack.json`. */
  url: string;
  /** Shown to users; the pack's own name once known. */
  name: string;
  /** True for sources the build preconfigured; those can't be removed in the options page. */
  builtIn: boolean;
}

/**
 * The model in use, as a typed reference (schema 3; schema 2 kept a URL, with imported folders under a made-up
 * `chrome-extension://…/local-pack/<id>/` address):
 *   catalogue  a model of src/shared/catalogue.json, installed on this device by the installer
 *   url        a pack directory on the web (Advanced: "pack address")
 *   folder     a pack folder the user imported from disk, kept in the pack store under its id
 */
export type ModelRef = { kind: 'catalogue'; id: string } | { kind: 'url'; url: string } | { kind: 'folder'; id: string };

/** A pack folder the user imported; its files live in the pack store under `id`. */
export interface FolderPack {
  id: string;
  name: string;
}

/** Catalogue model ids and pack ids: what src/shared/catalogue.json and pack.json allow. */
export const MODEL_ID = new RegExp(`^[a-z0-9][a-z0-9._-]{0,${LIMITS.message.modelIdChars - 1}}$`);

export type Strategy = 'greedy' | 'beam';
export type BackendChoice = 'auto' | 'wasm' | 'webgpu';

function builtInSources(): PackSource[] {
  const raw = typeof __PACK_URLS__ === 'string' ? __PACK_URLS__ : '';
  return raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((url) => ({ url: normaliseBaseUrl(url), name: '', builtIn: true }));
}

export const SCHEMA_VERSION = 3;

export const DEFAULTS = {
  schemaVersion: SCHEMA_VERSION,
  /** Auto-alt on every page. */
  enabled: true,
  /** Hosts where auto-alt is off (exact hostnames). */
  disabledSites: [] as string[],
  /** Pack addresses (Advanced): built in by the build (CAPTION_PACK_URL) or added by the user. */
  packSources: builtInSources(),
  /** Pack folders imported from disk. */
  folders: [] as FolderPack[],
  /** The model in use; null: none chosen yet (then the first pack address, if the build has one). */
  model: null as ModelRef | null,
  /**
   * Catalogue models whose install was started and has not finished: the offscreen document that runs the install
   * does not survive a browser restart, so the worker recreates it at start-up and it resumes them.
   */
  installing: [] as string[],
  /** 'greedy' is fast; 'beam' is better. */
  strategy: 'greedy' as Strategy,
  beams: 3,
  maxTokens: 30,
  /**
   * Beam re-ranking's weight on CLIP's score (docs/pack-format.md, "CLIP scores"); null: the pack's own measured
   * default. Only packs with CLIP's text tower re-rank; 0 turns re-ranking off.
   */
  rerankWeight: null as number | null,
  /**
   * A caption CLIP scores below the pack's threshold (the model is unsure) is not written as a label: the image is
   * left as its author left it. "Describe this image" still gives it, marked as unsure. Packs without CLIP's text
   * tower never say they are unsure.
   */
  skipUncertain: true,
  /** Text put before every caption; '' uses the localised default ("Appears to be: "). */
  marker: '',
  /** A name that is only a file name ("IMG_2034.jpg") or only stopwords ("image") counts as missing. */
  weakNamesCountAsMissing: true,
  backend: 'auto' as BackendChoice,
  /** Most captions kept in the cache (least recently used go first). */
  cacheMaxEntries: 5000,
};

export type Settings = typeof DEFAULTS;

/** Dated migrations: each takes the stored object at `from` and returns it at `from + 1`. */
const MIGRATIONS: {
  from: number;
  date: string;
  why: string;
  /** `notes` collects anything the migration could not carry over as it was */
  up: (s: Record<string, unknown>, notes: string[]) => Record<string, unknown>;
}[] = [
  {
    from: 1,
    date: '2026-11-25',
    why: 'v1 kept per-site switches as a map {host: boolean} and the marker as markerText',
    up: (s, notes) => {
      const { sites, markerText, ...rest } = s;
      const out: Record<string, unknown> = { ...rest, schemaVersion: 2 };
      if (sites !== undefined) {
        if (typeof sites === 'object' && sites !== null && !Array.isArray(sites)) {
          const map = sites as Record<string, unknown>;
          // Only "off" needs keeping: every other site follows the global switch.
          const off = Object.keys(map).filter((h) => map[h] === false || map[h] === 'false' || map[h] === 0);
          out.disabledSites = [...(Array.isArray(rest.disabledSites) ? (rest.disabledSites as unknown[]) : []), ...off];
        } else notes.push(`sites: ${JSON.stringify(sites) ?? typeof sites} is not a map of sites; no site was switched off`);
      }
      // A v1 object that somehow has the new key too keeps it; markerText fills it only when it is missing.
      if (markerText !== undefined && !('marker' in rest)) out.marker = markerText;
      return out;
    },
  },
  {
    from: 2,
    date: '2026-12-02',
    why: 'v2 named the model in use by a URL (activePackUrl), and imported folders by a made-up local-pack/ URL among the pack addresses',
    up: (s, notes) => {
      const { activePackUrl, ...rest } = s;
      const out: Record<string, unknown> = { ...rest, schemaVersion: 3 };
      const folders: FolderPack[] = [];
      if (Array.isArray(rest.packSources)) {
        const kept: unknown[] = [];
        for (const p of rest.packSources as unknown[]) {
          const url = typeof p === 'object' && p !== null ? (p as { url?: unknown }).url : undefined;
          const id = typeof url === 'string' ? localPackIdOf(url) : null;
          if (id) folders.push({ id, name: typeof (p as { name?: unknown }).name === 'string' ? (p as { name: string }).name : '' });
          else kept.push(p);
        }
        out.packSources = kept;
        if (folders.length) out.folders = [...(Array.isArray(rest.folders) ? (rest.folders as unknown[]) : []), ...folders];
      }
      if (typeof activePackUrl === 'string' && activePackUrl.trim() !== '') {
        const id = localPackIdOf(activePackUrl.trim());
        if (id) out.model = { kind: 'folder', id };
        else if (/^https?:/i.test(activePackUrl.trim()) && isHttpUrl(activePackUrl.trim())) out.model = { kind: 'url', url: activePackUrl };
        else notes.push(`activePackUrl: ${show(activePackUrl)} is not a pack address; no model is selected`);
      } else if (activePackUrl !== undefined && activePackUrl !== '') {
        notes.push(`activePackUrl: ${show(activePackUrl)} is not a pack address; no model is selected`);
      }
      return out;
    },
  },
];

/** The pack id in a schema-2 address of an imported folder (`chrome-extension://<ext>/local-pack/<id>/`), else null. */
function localPackIdOf(url: string): string | null {
  const m = /^chrome-extension:\/\/[^/]+\/local-pack\/([^/]+)\/?$/i.exec(url);
  return m && MODEL_ID.test(m[1]) ? m[1] : null;
}

/** Keys that only ever existed in an old schema; seeing them with no schemaVersion means that schema. */
const V1_ONLY_KEYS = ['sites', 'markerText'];
const V2_ONLY_KEYS = ['activePackUrl'];

/** The stored schema version: a number, a numeric string (hand-edited), or inferred from keys only v1 had. */
function storedVersion(raw: Record<string, unknown>): { version: number; fix: string | null } {
  const v = raw.schemaVersion;
  if (typeof v === 'number' && Number.isInteger(v) && v >= 1) return { version: v, fix: null };
  if (typeof v === 'string' && /^\d+$/.test(v.trim()) && Number(v) >= 1)
    return { version: Number(v), fix: `schemaVersion: ${JSON.stringify(v)} read as ${Number(v)}` };
  const guess = V1_ONLY_KEYS.some((k) => k in raw) ? 1 : V2_ONLY_KEYS.some((k) => k in raw) ? 2 : SCHEMA_VERSION;
  if (v === undefined)
    return { version: guess, fix: guess < SCHEMA_VERSION ? `schemaVersion: missing; the keys are those of version ${guess}` : null };
  return { version: guess, fix: `schemaVersion: ${show(v)} is not a version; read as ${guess}` };
}

export function migrate(raw: Record<string, unknown>): { value: Record<string, unknown>; applied: string[]; notes: string[] } {
  let value = { ...raw };
  const applied: string[] = [];
  const notes: string[] = [];
  const { version, fix } = storedVersion(value);
  if (fix) notes.push(fix);
  let v = version;
  if (v > SCHEMA_VERSION)
    notes.push(`schemaVersion: ${v} was saved by a newer version of the extension; kept every setting this version understands`);
  for (const m of MIGRATIONS) {
    if (m.from === v) {
      value = m.up(value, notes);
      applied.push(`${m.from}->${m.from + 1} (${m.date})`);
      v = m.from + 1;
    }
  }
  return { value, applied, notes };
}

export function normaliseBaseUrl(url: string): string {
  const u = url.trim().replace(/pack\.json$/, '');
  return u.endsWith('/') ? u : `${u}/`;
}

function isHttpUrl(s: string): boolean {
  try {
    const u = new URL(s);
    return u.protocol === 'http:' || u.protocol === 'https:' || u.protocol === 'chrome-extension:';
  } catch {
    return false; // not a URL at all: the caller reports it
  }
}

/** JSON for a report line, short, and safe for values JSON can't hold (BigInt, cycles, functions). */
function show(v: unknown): string {
  let s: string | undefined;
  try {
    s = JSON.stringify(v);
  } catch {
    s = undefined; // cyclic or BigInt: fall through to String()
  }
  s ??= String(v);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

const MARKER_MAX = LIMITS.settings.markerChars;

/** A value that means the same as a valid one, written the wrong way (a number as text, a boolean as text). */
function coerceInt(v: unknown): number | undefined {
  if (typeof v === 'number' && Number.isFinite(v) && Number.isInteger(v)) return v;
  if (typeof v === 'string' && /^\s*-?\d+\s*$/.test(v)) return Number(v);
  return undefined;
}
/** A number that may have a fraction (a weight), or the same written as text. */
function coerceReal(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) ? v : undefined;
  if (typeof v === 'string' && /^\s*-?(\d+\.?\d*|\.\d+)\s*$/.test(v)) return Number(v);
  return undefined;
}
function coerceBool(v: unknown): boolean | undefined {
  if (typeof v === 'boolean') return v;
  if (v === 'true' || v === 1) return true;
  if (v === 'false' || v === 0) return false;
  return undefined;
}

/**
 * Repair anything wrong, keeping every valid choice: bad values are replaced by defaults, values that mean a valid
 * one (a number stored as text) are converted, lists keep their good entries, unknown keys are dropped. Every change
 * that is more than normalisation (trimming, lower-casing, de-duplicating) is reported.
 */
export function validate(input: unknown): { settings: Settings; fixes: string[] } {
  const fixes: string[] = [];
  const isObject = typeof input === 'object' && input !== null && !Array.isArray(input);
  const raw: Record<string, unknown> = isObject ? { ...input } : {};
  if (input !== undefined && !isObject) fixes.push(`settings were not an object (${show(input)}); reset to the defaults`);
  const { value, applied, notes } = migrate(raw);
  fixes.push(...notes);
  for (const a of applied) fixes.push(`migrated ${a}`);
  const out: Settings = structuredClone(DEFAULTS);
  const has = (k: string) => Object.prototype.hasOwnProperty.call(value, k);

  const bad = (key: keyof Settings) => fixes.push(`${key}: ${show(value[key])} is not valid; using ${show(DEFAULTS[key])}`);
  const bool = (key: 'enabled' | 'weakNamesCountAsMissing' | 'skipUncertain') => {
    if (!has(key)) return;
    const b = coerceBool(value[key]);
    if (b === undefined) return bad(key);
    if (b !== value[key]) fixes.push(`${key}: ${show(value[key])} read as ${b}`);
    out[key] = b;
  };
  const int = (key: 'beams' | 'maxTokens' | 'cacheMaxEntries', range: IntRange) => {
    if (!has(key)) return;
    const n = coerceInt(value[key]);
    if (n === undefined || !inRange(n, range)) return bad(key);
    if (n !== value[key]) fixes.push(`${key}: ${show(value[key])} read as ${n}`);
    out[key] = n;
  };
  const oneOf = <K extends 'strategy' | 'backend'>(key: K, allowed: readonly Settings[K][]) => {
    if (!has(key)) return;
    const v = value[key];
    const lower = typeof v === 'string' ? v.trim().toLowerCase() : v;
    if (!allowed.includes(lower as Settings[K])) return bad(key);
    if (lower !== v) fixes.push(`${key}: ${show(v)} read as ${show(lower)}`);
    out[key] = lower as Settings[K];
  };

  bool('enabled');
  bool('weakNamesCountAsMissing');
  bool('skipUncertain');
  int('beams', LIMITS.decoding.beams);
  int('maxTokens', LIMITS.decoding.maxTokens);
  int('cacheMaxEntries', LIMITS.settings.cacheMaxEntries);
  oneOf('strategy', ['greedy', 'beam']);
  oneOf('backend', ['auto', 'wasm', 'webgpu']);

  if (has('rerankWeight') && value.rerankWeight !== null) {
    const w = coerceReal(value.rerankWeight);
    if (w === undefined || !inRealRange(w, LIMITS.decoding.rerankWeight)) bad('rerankWeight');
    else {
      if (w !== value.rerankWeight) fixes.push(`rerankWeight: ${show(value.rerankWeight)} read as ${w}`);
      out.rerankWeight = w;
    }
  }

  if (has('marker')) {
    const m = value.marker;
    if (typeof m !== 'string') bad('marker');
    else if (m.length > MARKER_MAX) {
      out.marker = m.slice(0, MARKER_MAX);
      fixes.push(`marker: longer than ${MARKER_MAX} characters; cut to ${show(out.marker)}`);
    } else out.marker = m;
  }

  if (has('folders')) {
    const list = value.folders;
    if (!Array.isArray(list)) bad('folders');
    else {
      const seen = new Set<string>();
      for (const f of list) {
        const src = (typeof f === 'object' && f !== null ? f : {}) as Partial<Record<keyof FolderPack, unknown>>;
        if (typeof src.id !== 'string' || !MODEL_ID.test(src.id)) {
          fixes.push(`folders: dropped ${show(f)} (not an imported pack)`);
          continue;
        }
        if (seen.has(src.id)) continue;
        seen.add(src.id);
        out.folders.push({ id: src.id, name: typeof src.name === 'string' ? src.name.slice(0, LIMITS.settings.folderNameChars) : '' });
      }
    }
  }

  if (has('installing')) {
    const list = value.installing;
    if (!Array.isArray(list)) bad('installing');
    else {
      for (const id of list) {
        if (typeof id === 'string' && MODEL_ID.test(id)) {
          if (!out.installing.includes(id)) out.installing.push(id);
        } else fixes.push(`installing: dropped ${show(id)} (not a model id)`);
      }
    }
  }

  if (has('disabledSites')) {
    const list = value.disabledSites;
    if (!Array.isArray(list)) bad('disabledSites');
    else {
      const good: string[] = [];
      for (const h of list) {
        if (typeof h === 'string' && h.trim() && !/[\s/]/.test(h.trim())) good.push(h.trim().toLowerCase());
        else fixes.push(`disabledSites: dropped ${show(h)} (not a host name)`);
      }
      out.disabledSites = [...new Set(good)];
    }
  }

  if (has('packSources')) {
    const list = value.packSources;
    if (!Array.isArray(list)) {
      fixes.push(`packSources: ${show(list)} is not a list; using the built-in sources`);
    } else {
      const builtInUrls = new Set(DEFAULTS.packSources.map((p) => p.url));
      const user: PackSource[] = [];
      const names = new Map<string, string>();
      for (const p of list) {
        const src = (typeof p === 'object' && p !== null ? p : {}) as Partial<Record<keyof PackSource, unknown>>;
        if (typeof src.url !== 'string' || !isHttpUrl(src.url.trim())) {
          fixes.push(`packSources: dropped ${show(p)} (not an http(s) address)`);
          continue;
        }
        const url = normaliseBaseUrl(src.url);
        let name = '';
        if (typeof src.name === 'string') name = src.name;
        else if (src.name !== undefined) fixes.push(`packSources: the name of ${url} was ${show(src.name)}; cleared`);
        if (builtInUrls.has(url)) {
          // Built-in sources always come from this build; a stored name is kept.
          if (name) names.set(url, name);
        } else if (src.builtIn === true) {
          // Built in by an earlier build: the user may still want it, so it stays, now as their own.
          fixes.push(`packSources: ${url} is no longer built in; kept as a source you added`);
          user.push({ url, name, builtIn: false });
        } else user.push({ url, name, builtIn: false });
      }
      const seen = new Set<string>(builtInUrls);
      const unique = user.filter((u) => !seen.has(u.url) && (seen.add(u.url), true));
      out.packSources = [...DEFAULTS.packSources.map((p) => ({ ...p, name: names.get(p.url) ?? p.name })), ...unique];
    }
  }

  if (has('model') && value.model !== null) {
    const ref = checkModelRef(value.model);
    if (ref) out.model = ref;
    else bad('model');
  }

  const known = new Set<string>(Object.keys(DEFAULTS));
  for (const k of Object.keys(value))
    if (!known.has(k)) fixes.push(`${k}: not a setting of this version; dropped (it was ${show(value[k])})`);
  out.schemaVersion = SCHEMA_VERSION;
  return { settings: out, fixes };
}

export function isEnabledFor(s: Settings, host: string): boolean {
  return s.enabled && !s.disabledSites.includes(host.toLowerCase());
}

/** A model reference, repaired where it only needs normalising (a URL without its final '/'); null if it is not one. */
function checkModelRef(v: unknown): ModelRef | null {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return null;
  const r = v as Record<string, unknown>;
  if (r.kind === 'catalogue' && typeof r.id === 'string' && MODEL_ID.test(r.id)) return { kind: 'catalogue', id: r.id };
  if (r.kind === 'folder' && typeof r.id === 'string' && MODEL_ID.test(r.id)) return { kind: 'folder', id: r.id };
  if (r.kind === 'url' && typeof r.url === 'string' && /^https?:/i.test(r.url.trim()) && isHttpUrl(r.url.trim()))
    return { kind: 'url', url: normaliseBaseUrl(r.url) };
  return null;
}

/** The model in use: the chosen one, else the build's first pack address, else none. */
export function activeModel(s: Settings): ModelRef | null {
  if (s.model) return s.model;
  const first = s.packSources[0];
  return first ? { kind: 'url', url: first.url } : null;
}

/**
 * The reference as one string, for the wire (bg-os- requests) and the caption cache key: a pack address stays its URL
 * (so cache keys of URL packs are what they were in schema 2); the others get a scheme of their own.
 */
export function packRef(ref: ModelRef): string {
  if (ref.kind === 'url') return ref.url;
  return ref.kind === 'catalogue' ? `model:${ref.id}` : `folder:${ref.id}`;
}

/** Inverse of packRef; null for a string that is no reference. */
export function parsePackRef(s: string): ModelRef | null {
  const m = /^(model|folder):(.+)$/.exec(s);
  if (m) return checkModelRef({ kind: m[1] === 'model' ? 'catalogue' : 'folder', id: m[2] });
  return checkModelRef({ kind: 'url', url: s });
}

/**
 * The part of the settings that changes a caption; part of the cache key. The re-ranking weight changes only beam
 * search's answer (a greedy caption is scored, never re-ranked), and no weight (the pack's default) keeps the key it
 * had before re-ranking existed.
 */
export function decodingKey(s: Pick<Settings, 'strategy' | 'beams' | 'maxTokens'> & { rerankWeight?: number | null }): string {
  if (s.strategy !== 'beam') return `greedy-${s.maxTokens}`;
  const rerank = s.rerankWeight === undefined || s.rerankWeight === null ? '' : `-rr${s.rerankWeight}`;
  return `beam${s.beams}-${s.maxTokens}${rerank}`;
}

export interface StorageAreaLike {
  get(key: string): Promise<Record<string, unknown>>;
  set(items: Record<string, unknown>): Promise<void>;
}

export const SETTINGS_KEY = 'settings';

export async function loadSettings(area: StorageAreaLike): Promise<{ settings: Settings; fixes: string[] }> {
  const got = await area.get(SETTINGS_KEY);
  return validate(got[SETTINGS_KEY]);
}

export async function saveSettings(area: StorageAreaLike, patch: Partial<Settings>): Promise<{ settings: Settings; fixes: string[] }> {
  const { settings: current } = await loadSettings(area);
  const result = validate({ ...current, ...patch });
  await area.set({ [SETTINGS_KEY]: result.settings });
  return result;
}
