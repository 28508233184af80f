/**
 * User settings: one DEFAULTS object (the type is derived from it), a schema version with dated migrations, and a
 * validator that repairs bad values and says what it fixed. Stored in chrome.storage.local under `settings`.
 */

export interface PackSource {
  /** Base URL of the pack directory (ends with '/'); pack.json lives at `${url}pack.json`. */
  url: string;
  /** Shown to users; the pack's own name once known. */
  name: string;
  /** True for sources the build preconfigured; those can't be removed in the options page. */
  builtIn: boolean;
}

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

export const SCHEMA_VERSION = 2;

export const DEFAULTS = {
  schemaVersion: SCHEMA_VERSION,
  /** Auto-alt on every page. */
  enabled: true,
  /** Hosts where auto-alt is off (exact hostnames). */
  disabledSites: [] as string[],
  /** Where packs come from. */
  packSources: builtInSources(),
  /** Base URL of the pack in use; '' means the first source. */
  activePackUrl: '',
  /** 'greedy' is fast; 'beam' is better. */
  strategy: 'greedy' as Strategy,
  beams: 3,
  maxTokens: 30,
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
const MIGRATIONS: { from: number; date: string; why: string; up: (s: Record<string, unknown>) => Record<string, unknown> }[] = [
  {
    from: 1,
    date: '2026-11-25',
    why: 'v1 kept per-site switches as a map {host: boolean} and the marker as markerText',
    up: (s) => {
      const { sites, markerText, ...rest } = s as { sites?: Record<string, boolean>; markerText?: string };
      const disabledSites = sites ? Object.keys(sites).filter((h) => sites[h] === false) : [];
      return { ...rest, disabledSites, marker: markerText ?? '', schemaVersion: 2 };
    },
  },
];

export function migrate(raw: Record<string, unknown>): { value: Record<string, unknown>; applied: string[] } {
  let value = { ...raw };
  const applied: string[] = [];
  let v = typeof value.schemaVersion === 'number' ? value.schemaVersion : SCHEMA_VERSION;
  for (const m of MIGRATIONS) {
    if (m.from === v) {
      value = m.up(value);
      applied.push(`${m.from}->${m.from + 1} (${m.date})`);
      v = m.from + 1;
    }
  }
  return { value, applied };
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
    return false;
  }
}

/** Repair anything wrong: unknown keys dropped, bad values replaced by defaults. Reports each fix. */
export function validate(input: unknown): { settings: Settings; fixes: string[] } {
  const fixes: string[] = [];
  const raw: Record<string, unknown> = typeof input === 'object' && input !== null ? { ...(input as object) } : {};
  if (input !== undefined && (typeof input !== 'object' || input === null)) fixes.push('settings were not an object; reset');
  const { value, applied } = migrate(raw);
  for (const a of applied) fixes.push(`migrated ${a}`);
  const out: Settings = structuredClone(DEFAULTS);

  const pick = <K extends keyof Settings>(key: K, ok: (v: unknown) => boolean) => {
    if (!(key in value)) return;
    if (ok(value[key])) out[key] = value[key] as Settings[K];
    else fixes.push(`${key}: ${JSON.stringify(value[key])} is not valid; using ${JSON.stringify(DEFAULTS[key])}`);
  };
  pick('enabled', (v) => typeof v === 'boolean');
  pick('disabledSites', (v) => Array.isArray(v) && v.every((h) => typeof h === 'string'));
  pick('activePackUrl', (v) => v === '' || (typeof v === 'string' && isHttpUrl(v)));
  pick('strategy', (v) => v === 'greedy' || v === 'beam');
  pick('beams', (v) => Number.isInteger(v) && (v as number) >= 1 && (v as number) <= 8);
  pick('maxTokens', (v) => Number.isInteger(v) && (v as number) >= 1 && (v as number) <= 67);
  pick('marker', (v) => typeof v === 'string' && v.length <= 80);
  pick('weakNamesCountAsMissing', (v) => typeof v === 'boolean');
  pick('backend', (v) => v === 'auto' || v === 'wasm' || v === 'webgpu');
  pick('cacheMaxEntries', (v) => Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 100_000);

  if ('packSources' in value) {
    const list = value.packSources;
    if (!Array.isArray(list)) {
      fixes.push('packSources: not a list; using the built-in sources');
    } else {
      const user: PackSource[] = [];
      for (const p of list) {
        const src = p as Partial<PackSource>;
        if (typeof src?.url === 'string' && isHttpUrl(src.url)) {
          if (!src.builtIn) user.push({ url: normaliseBaseUrl(src.url), name: typeof src.name === 'string' ? src.name : '', builtIn: false });
        } else fixes.push(`packSources: dropped ${JSON.stringify(p)}`);
      }
      // Built-in sources always come from this build; stored names are kept for them.
      const named = new Map(list.filter((p) => (p as PackSource)?.builtIn).map((p) => [(p as PackSource).url, (p as PackSource).name]));
      const builtIn = DEFAULTS.packSources.map((p) => ({ ...p, name: String(named.get(p.url) ?? '') }));
      out.packSources = [...builtIn, ...user.filter((u) => !builtIn.some((b) => b.url === u.url))];
    }
  }
  out.disabledSites = [...new Set(out.disabledSites.map((h) => h.trim().toLowerCase()).filter(Boolean))];
  out.schemaVersion = SCHEMA_VERSION;
  return { settings: out, fixes };
}

export function isEnabledFor(s: Settings, host: string): boolean {
  return s.enabled && !s.disabledSites.includes(host.toLowerCase());
}

export function activePack(s: Settings): PackSource | null {
  return s.packSources.find((p) => p.url === s.activePackUrl) ?? s.packSources[0] ?? null;
}

/** The part of the settings that changes a caption; part of the cache key. */
export function decodingKey(s: Pick<Settings, 'strategy' | 'beams' | 'maxTokens'>): string {
  return s.strategy === 'beam' ? `beam${s.beams}-${s.maxTokens}` : `greedy-${s.maxTokens}`;
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
