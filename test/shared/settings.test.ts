import { describe, expect, it } from 'vitest';
import {
  DEFAULTS,
  SCHEMA_VERSION,
  activeModel,
  decodingKey,
  packRef,
  parsePackRef,
  isEnabledFor,
  loadSettings,
  migrate,
  saveSettings,
  validate,
  type Settings,
} from '../../src/shared/settings';
import { rng } from '../helpers/rng';

describe('settings', () => {
  it('nothing stored gives the defaults, with nothing to fix', () => {
    expect(validate(undefined)).toEqual({ settings: DEFAULTS, fixes: [] });
    expect(DEFAULTS.schemaVersion).toBe(SCHEMA_VERSION);
  });

  it('repairs bad values, drops unknown keys, and says what it fixed', () => {
    const { settings, fixes } = validate({
      enabled: 'yes',
      strategy: 'sampling',
      beams: 99,
      marker: 'Maybe: ',
      extra: 1,
      disabledSites: [' Example.COM ', 'example.com'],
    });
    expect(settings.enabled).toBe(true);
    expect(settings.strategy).toBe('greedy');
    expect(settings.beams).toBe(DEFAULTS.beams);
    expect(settings.marker).toBe('Maybe: ');
    expect(settings.disabledSites).toEqual(['example.com']);
    expect('extra' in settings).toBe(false);
    expect(fixes.join('\n')).toMatch(/enabled/);
    expect(fixes.join('\n')).toMatch(/strategy/);
    expect(fixes.join('\n')).toMatch(/beams/);
  });

  it('migrates a v1 object (per-site map, markerText) to the current schema', () => {
    const v1 = { schemaVersion: 1, enabled: true, sites: { 'a.test': false, 'b.test': true }, markerText: 'Looks like: ' };
    expect(migrate(v1).applied).toEqual(['1->2 (2026-11-25)', '2->3 (2026-12-02)']);
    const { settings, fixes } = validate(v1);
    expect(settings.disabledSites).toEqual(['a.test']);
    expect(settings.marker).toBe('Looks like: ');
    expect(settings.schemaVersion).toBe(SCHEMA_VERSION);
    expect(fixes[0]).toMatch(/^migrated 1->2/);
  });

  it('keeps user pack sources, normalised, and refuses non-URLs', () => {
    const { settings, fixes } = validate({
      packSources: [{ url: 'http://127.0.0.1:8/packs/toy/pack.json', name: 'Toy' }, { url: 'not a url' }],
    });
    expect(settings.packSources).toEqual([{ url: 'http://127.0.0.1:8/packs/toy/', name: 'Toy', builtIn: false }]);
    expect(fixes.some((f) => f.includes('not a url'))).toBe(true);
    expect(activeModel(settings)).toEqual({ kind: 'url', url: 'http://127.0.0.1:8/packs/toy/' });
  });

  it('switches: global and per site', () => {
    const s = validate({ disabledSites: ['news.test'] }).settings;
    expect(isEnabledFor(s, 'news.test')).toBe(false);
    expect(isEnabledFor(s, 'other.test')).toBe(true);
    expect(isEnabledFor({ ...s, enabled: false }, 'other.test')).toBe(false);
  });

  it('decoding key changes with the decoding settings', () => {
    expect(decodingKey({ strategy: 'greedy', beams: 5, maxTokens: 30 })).toBe('greedy-30');
    expect(decodingKey({ strategy: 'beam', beams: 5, maxTokens: 30 })).toBe('beam5-30');
  });

  it('decoding key: a chosen re-ranking weight changes beam captions, so it is part of their key', () => {
    const beam = { strategy: 'beam' as const, beams: 5, maxTokens: 30 };
    // The pack's own weight (null) keeps the key beam captions always had.
    expect(decodingKey({ ...beam, rerankWeight: null })).toBe('beam5-30');
    expect(decodingKey({ ...beam, rerankWeight: 0 })).toBe('beam5-30-rr0');
    expect(decodingKey({ ...beam, rerankWeight: 2.5 })).toBe('beam5-30-rr2.5');
    const keys = [null, 0, 0.5, 1, 2.5, 10].map((w) => decodingKey({ ...beam, rerankWeight: w }));
    expect(new Set(keys).size).toBe(keys.length);
    // Greedy captions are scored, never re-ranked: the weight does not change them, nor their key.
    expect(decodingKey({ strategy: 'greedy', beams: 5, maxTokens: 30, rerankWeight: 3 })).toBe('greedy-30');
  });

  it("skipUncertain and rerankWeight: defaults (leave unsure images unlabelled; the pack's own weight), kept, repaired", () => {
    expect(DEFAULTS.skipUncertain).toBe(true);
    expect(DEFAULTS.rerankWeight).toBeNull();
    let r = validate({ skipUncertain: false, rerankWeight: 0.75 });
    expect(r.settings).toMatchObject({ skipUncertain: false, rerankWeight: 0.75 });
    expect(r.fixes).toEqual([]);
    r = validate({ rerankWeight: 0 });
    expect(r.settings.rerankWeight).toBe(0);
    r = validate({ rerankWeight: null });
    expect(r).toMatchObject({ settings: { rerankWeight: null }, fixes: [] });
    // Written as text (hand-edited): read as the number, and reported.
    r = validate({ rerankWeight: ' 2.5 ', skipUncertain: 'false' });
    expect(r.settings).toMatchObject({ rerankWeight: 2.5, skipUncertain: false });
    expect(r.fixes.join('\n')).toMatch(/rerankWeight: " 2\.5 " read as 2\.5/);
    // Outside LIMITS.decoding.rerankWeight (0..10): the default, reported.
    for (const w of [-0.5, 10.01, 1e9]) {
      r = validate({ rerankWeight: w });
      expect(r.settings.rerankWeight, String(w)).toBeNull();
      expect(r.fixes.join('\n'), String(w)).toMatch(/^rerankWeight: /m);
    }
  });

  it('settings saved before skipUncertain and rerankWeight existed (schema 3) keep every choice, with nothing to fix', () => {
    const old = {
      schemaVersion: 3,
      enabled: true,
      disabledSites: ['a.test'],
      packSources: [],
      folders: [],
      model: { kind: 'catalogue', id: 'clipcap-coco' },
      installing: [],
      strategy: 'beam',
      beams: 5,
      maxTokens: 20,
      marker: 'Looks like: ',
      weakNamesCountAsMissing: false,
      backend: 'wasm',
      cacheMaxEntries: 100,
    };
    const { settings, fixes } = validate(old);
    expect(fixes).toEqual([]);
    expect(settings).toEqual({ ...old, skipUncertain: true, rerankWeight: null });
    // ...and the key of their cached beam captions is the one they were stored under.
    expect(decodingKey(settings)).toBe('beam5-20');
    // A v1 object still migrates all the way, and gets the new defaults.
    expect(validate({ schemaVersion: 1, sites: { 'b.test': false } }).settings).toMatchObject({
      disabledSites: ['b.test'],
      skipUncertain: true,
      rerankWeight: null,
    });
  });
});

// --- issue 7: corrupt and old settings are repaired, and nothing the user chose is silently lost -----------------

/** Every field of a repaired object is valid: the validator's postcondition, checked independently of it. */
function checkValid(s: Settings): string[] {
  const bad: string[] = [];
  const intIn = (v: unknown, lo: number, hi: number) => Number.isInteger(v) && (v as number) >= lo && (v as number) <= hi;
  if (Object.keys(s).sort().join() !== Object.keys(DEFAULTS).sort().join()) bad.push(`keys ${Object.keys(s)}`);
  if (s.schemaVersion !== SCHEMA_VERSION) bad.push('schemaVersion');
  if (typeof s.enabled !== 'boolean') bad.push('enabled');
  if (typeof s.weakNamesCountAsMissing !== 'boolean') bad.push('weakNamesCountAsMissing');
  if (typeof s.skipUncertain !== 'boolean') bad.push('skipUncertain');
  if (!(s.rerankWeight === null || (Number.isFinite(s.rerankWeight) && s.rerankWeight >= 0 && s.rerankWeight <= 10)))
    bad.push('rerankWeight');
  if (!['greedy', 'beam'].includes(s.strategy)) bad.push('strategy');
  if (!['auto', 'wasm', 'webgpu'].includes(s.backend)) bad.push('backend');
  if (!intIn(s.beams, 1, 8)) bad.push('beams');
  if (!intIn(s.maxTokens, 1, 67)) bad.push('maxTokens');
  if (!intIn(s.cacheMaxEntries, 0, 100_000)) bad.push('cacheMaxEntries');
  if (typeof s.marker !== 'string' || s.marker.length > 80) bad.push('marker');
  const m = s.model;
  const idOk = (id: unknown) => typeof id === 'string' && /^[a-z0-9][a-z0-9._-]{0,63}$/.test(id);
  if (
    m !== null &&
    !(m.kind === 'catalogue' || m.kind === 'folder'
      ? idOk(m.id) && Object.keys(m).length === 2
      : m.kind === 'url' && /^https?:\/\/.*\/$/.test(m.url) && Object.keys(m).length === 2)
  )
    bad.push('model');
  if (
    !Array.isArray(s.folders) ||
    s.folders.some((f) => !idOk(f.id) || typeof f.name !== 'string') ||
    new Set(s.folders.map((f) => f.id)).size !== s.folders.length
  )
    bad.push('folders');
  if (!Array.isArray(s.installing) || s.installing.some((id) => !idOk(id)) || new Set(s.installing).size !== s.installing.length)
    bad.push('installing');
  if (
    !Array.isArray(s.disabledSites) ||
    s.disabledSites.some((h) => typeof h !== 'string' || h !== h.trim().toLowerCase() || !h) ||
    new Set(s.disabledSites).size !== s.disabledSites.length
  )
    bad.push('disabledSites');
  if (
    !Array.isArray(s.packSources) ||
    s.packSources.some(
      (p) => typeof p.url !== 'string' || !p.url.endsWith('/') || typeof p.name !== 'string' || typeof p.builtIn !== 'boolean',
    ) ||
    new Set(s.packSources.map((p) => p.url)).size !== s.packSources.length
  )
    bad.push('packSources');
  return bad;
}

/** Values of every JSON type (and a few worse), none valid for any setting. */
const JUNK: unknown[] = [
  null,
  undefined,
  NaN,
  Infinity,
  -1,
  1.5,
  1e308,
  '',
  'yes',
  '   ',
  'greedy!',
  {},
  [],
  [1, 2],
  { a: 1 },
  true,
  false,
  0,
  '0x10',
  'x'.repeat(10_000),
  '<script>alert(1)</script>',
  Symbol.iterator.toString(),
  -0.0001,
];

describe('settings repair (issue 7)', () => {
  const fields: Array<[keyof Settings, unknown[]]> = [
    ['enabled', [null, 'yes', 2, {}, [], 'TRUE']],
    ['weakNamesCountAsMissing', [null, 'no', -1, {}, []]],
    ['skipUncertain', [null, 'no', -1, {}, []]],
    ['rerankWeight', [-0.1, 10.5, 'heavy', '0x10', NaN, Infinity, {}, [], true, '']],
    ['strategy', [null, 'sampling', 3, {}, [], true]],
    ['backend', [null, 'cuda', 1, {}, ['wasm']]],
    ['beams', [null, 0, 9, 2.5, '2.5', 'three', NaN, Infinity, {}, [], true]],
    ['maxTokens', [null, 0, 68, -5, 1.1, 'many', {}, []]],
    ['cacheMaxEntries', [null, -1, 100_001, 0.5, 'lots', {}, []]],
    ['marker', [null, 42, {}, [], true]],
    [
      'model',
      [
        42,
        'not a url',
        { kind: 'url', url: 'ftp://x.test/p/' },
        { kind: 'url', url: 'javascript:alert(1)' },
        { kind: 'catalogue', id: 'Bad Id' },
        { kind: 'folder' },
        { kind: 'disk', id: 'x' },
        {},
        [],
      ],
    ],
    ['folders', [null, 'toy', 42, { id: 'toy' }]],
    ['installing', [null, 'clipcap-coco', 42, {}]],
    ['disabledSites', [null, 'a.test', 42, { 'a.test': true }]],
  ];
  for (const [key, values] of fields) {
    it(`corrupt ${key}: the default, and a fix that names it`, () => {
      for (const v of values) {
        const { settings, fixes } = validate({ [key]: v });
        expect(settings[key], `${key}=${String(v)}`).toEqual(DEFAULTS[key]);
        expect(
          fixes.some((f) => f.startsWith(`${key}:`)),
          `${key}=${String(v)}: ${fixes}`,
        ).toBe(true);
        expect(checkValid(settings)).toEqual([]);
      }
    });
  }

  it('values stored as the wrong type but meaning a valid one are converted, and reported', () => {
    const { settings, fixes } = validate({
      beams: '5',
      maxTokens: ' 20 ',
      cacheMaxEntries: 0,
      enabled: 'false',
      weakNamesCountAsMissing: 1,
      strategy: 'Beam',
      backend: ' WASM ',
    });
    expect(settings).toMatchObject({
      beams: 5,
      maxTokens: 20,
      cacheMaxEntries: 0,
      enabled: false,
      weakNamesCountAsMissing: true,
      strategy: 'beam',
      backend: 'wasm',
    });
    for (const k of ['beams', 'maxTokens', 'enabled', 'weakNamesCountAsMissing', 'strategy', 'backend'])
      expect(
        fixes.some((f) => f.startsWith(`${k}:`)),
        k,
      ).toBe(true);
    expect(fixes.some((f) => f.startsWith('cacheMaxEntries'))).toBe(false); // 0 is valid as it is
  });

  it('lists keep their good entries; a long marker is cut, not dropped', () => {
    const { settings, fixes } = validate({
      disabledSites: ['News.test', 42, '', 'a b', null, 'news.test', 'localhost:8080'],
      marker: 'M'.repeat(100),
      packSources: [
        { url: 'https://p.test/a' },
        'https://bad',
        { url: 'https://p.test/a/', name: 'dup' },
        { url: 'https://p.test/b/', name: 7 },
        null,
      ],
    });
    expect(settings.disabledSites).toEqual(['news.test', 'localhost:8080']);
    expect(fixes.filter((f) => f.startsWith('disabledSites:'))).toHaveLength(4);
    expect(settings.marker).toBe('M'.repeat(80));
    expect(fixes.some((f) => f.startsWith('marker:'))).toBe(true);
    expect(settings.packSources).toEqual([
      { url: 'https://p.test/a/', name: '', builtIn: false },
      { url: 'https://p.test/b/', name: '', builtIn: false },
    ]);
    expect(fixes.filter((f) => f.startsWith('packSources:'))).toHaveLength(3); // "https://bad" string, name 7, null
  });

  it("a source an older build had built in is kept as the user's own, and reported", () => {
    const { settings, fixes } = validate({ packSources: [{ url: 'https://old-build.test/coco/', name: 'COCO', builtIn: true }] });
    expect(settings.packSources).toEqual([{ url: 'https://old-build.test/coco/', name: 'COCO', builtIn: false }]);
    expect(fixes.join()).toMatch(/no longer built in/);
  });

  it('unknown keys are dropped and each is reported', () => {
    const { settings, fixes } = validate({ enabled: false, colour: 'blue', __proto__x: 1 });
    expect(settings.enabled).toBe(false);
    expect('colour' in settings).toBe(false);
    expect(
      fixes
        .filter((f) => /not a setting of this version/.test(f))
        .map((f) => f.split(':')[0])
        .sort(),
    ).toEqual(['__proto__x', 'colour']);
  });

  it('something that is not an object at all gives the defaults, and says so', () => {
    for (const v of [null, 42, 'settings', true, [], [{ enabled: false }], () => 1]) {
      const { settings, fixes } = validate(v);
      expect(settings).toEqual(DEFAULTS);
      expect(fixes.length, String(v)).toBeGreaterThan(0);
      expect(fixes[0]).toMatch(/not an object/);
    }
  });

  it('migrations: v1 in every shape; a version written as text; a v1 object without its version; a newer version', () => {
    // v1 with sites as a map, including odd values
    let r = validate({
      schemaVersion: 1,
      sites: { 'a.test': false, 'b.test': true, 'c.test': 'false', 'D.test': 0 },
      markerText: 'Seen: ',
      beams: 4,
    });
    expect(r.settings).toMatchObject({
      disabledSites: ['a.test', 'c.test', 'd.test'],
      marker: 'Seen: ',
      beams: 4,
      schemaVersion: SCHEMA_VERSION,
    });
    // v1 with sites that is not a map: reported, nothing invented
    r = validate({ schemaVersion: 1, sites: ['a.test'], markerText: 5 });
    expect(r.settings.disabledSites).toEqual([]);
    expect(r.settings.marker).toBe('');
    expect(r.fixes.join('\n')).toMatch(/sites: .* not a map/);
    expect(r.fixes.join('\n')).toMatch(/marker: 5 is not valid/);
    // version as text
    r = validate({ schemaVersion: '1', sites: { 'x.test': false } });
    expect(r.settings.disabledSites).toEqual(['x.test']);
    expect(r.fixes[0]).toMatch(/schemaVersion: "1" read as 1/);
    // no version, but v1's keys
    r = validate({ markerText: 'Old: ', sites: { 'y.test': false } });
    expect(r.settings).toMatchObject({ marker: 'Old: ', disabledSites: ['y.test'] });
    expect(r.fixes.join('\n')).toMatch(/migrated 1->2/);
    // nonsense version on a current object: read as current, reported
    r = validate({ schemaVersion: { v: 2 }, enabled: false });
    expect(r.settings.enabled).toBe(false);
    expect(r.fixes[0]).toMatch(/schemaVersion: .* is not a version/);
    // newer version: everything understood is kept; the rest is reported, never silently dropped
    r = validate({ schemaVersion: SCHEMA_VERSION + 1, enabled: false, beams: 6, newThing: { a: 1 } });
    expect(r.settings).toMatchObject({ enabled: false, beams: 6, schemaVersion: SCHEMA_VERSION });
    expect(r.fixes.join('\n')).toMatch(/newer version/);
    expect(r.fixes.join('\n')).toMatch(/newThing: not a setting of this version/);
    // a current object goes through untouched
    expect(migrate({ schemaVersion: SCHEMA_VERSION, enabled: true }).applied).toEqual([]);
  });

  it('fuzz: 300 random settings objects; output always valid, valid choices kept, every repair reported, idempotent', () => {
    const rand = rng(7);
    const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)];
    const validChoice: Record<string, () => unknown> = {
      enabled: () => rand() < 0.5,
      weakNamesCountAsMissing: () => rand() < 0.5,
      skipUncertain: () => rand() < 0.5,
      rerankWeight: () => pick([null, 0, 0.25, 1, 2.5, 10]),
      strategy: () => pick(['greedy', 'beam']),
      backend: () => pick(['auto', 'wasm', 'webgpu']),
      beams: () => 1 + Math.floor(rand() * 8),
      maxTokens: () => 1 + Math.floor(rand() * 67),
      cacheMaxEntries: () => Math.floor(rand() * 100_001),
      marker: () => pick(['', 'Maybe: ', 'Looks like — ', 'x'.repeat(80), '🖼 ']),
      model: () =>
        pick([
          null,
          { kind: 'url', url: 'https://a.test/packs/coco/' },
          { kind: 'catalogue', id: 'clipcap-coco' },
          { kind: 'folder', id: 'toy' },
        ]),
      folders: () =>
        pick([
          [],
          [{ id: 'toy', name: 'Toy' }],
          [
            { id: 'a', name: '' },
            { id: 'b', name: 'B' },
          ],
        ]),
      installing: () => pick([[], ['clipcap-coco'], ['clipcap-coco', 'toy']]),
      disabledSites: () => [
        ...new Set(Array.from({ length: Math.floor(rand() * 4) }, () => pick(['a.test', 'b.example', 'localhost:3000', 'news.test']))),
      ],
      packSources: () =>
        Array.from({ length: Math.floor(rand() * 3) }, (_, i) => ({
          url: `https://src${i}.test/p${Math.floor(rand() * 3)}/`,
          name: pick(['', 'COCO', 'Mine']),
          builtIn: false,
        })),
    };
    const keys = Object.keys(validChoice);
    let repaired = 0;
    for (let n = 0; n < 300; n++) {
      const input: Record<string, unknown> = {};
      const chosen: Record<string, unknown> = {};
      const corrupted = new Set<string>();
      for (const k of keys) {
        const r = rand();
        if (r < 0.45) input[k] = chosen[k] = validChoice[k]();
        else if (r < 0.7) {
          input[k] = pick(JUNK);
          corrupted.add(k);
        }
      }
      const extra = rand() < 0.3 ? `junk${n}` : null;
      if (extra) input[extra] = pick(JUNK);
      if (rand() < 0.2) input.schemaVersion = SCHEMA_VERSION;
      // Duplicate pack sources are a normalisation, so compare against the de-duplicated list.
      if (Array.isArray(chosen.packSources))
        chosen.packSources = (chosen.packSources as Array<{ url: string }>).filter((p, i, a) => a.findIndex((q) => q.url === p.url) === i);

      const { settings, fixes } = validate(input);
      const ctx = `case ${n}: ${JSON.stringify(input)?.slice(0, 300)} -> ${fixes.join(' | ')}`;
      expect(checkValid(settings), ctx).toEqual([]);
      for (const [k, v] of Object.entries(chosen)) expect(settings[k as keyof Settings], `${ctx} (${k})`).toEqual(v);
      for (const k of corrupted) {
        const v = input[k];
        // JUNK that happens to mean a valid value (0 for cacheMaxEntries, false for enabled, '' for marker, ...) is kept.
        const reported = fixes.some((f) => f.startsWith(`${k}:`));
        const kept = JSON.stringify(settings[k as keyof Settings]) === JSON.stringify(v);
        if (!kept)
          expect(
            reported ||
              (JSON.stringify(settings[k as keyof Settings]) === JSON.stringify(DEFAULTS[k as keyof Settings]) && v === undefined),
            `${ctx} (${k} changed without a report)`,
          ).toBe(true);
      }
      if (extra)
        expect(
          fixes.some((f) => f.startsWith(`${extra}:`)),
          ctx,
        ).toBe(true);
      if (fixes.length) repaired++;
      // Repair is a fixed point: the repaired object needs no further repair.
      expect(validate(settings), ctx).toEqual({ settings, fixes: [] });
    }
    expect(repaired).toBeGreaterThan(100);
  });

  it('migration 2->3 (2026-12-02): the URL of the pack in use becomes a typed reference; imported folders leave the pack addresses', () => {
    const ext = 'chrome-extension://abcdefghijklmnop/';
    const v2 = {
      schemaVersion: 2,
      strategy: 'beam',
      disabledSites: ['a.test'],
      packSources: [
        { url: 'https://p.test/coco/', name: 'COCO', builtIn: false },
        { url: `${ext}local-pack/toy/`, name: 'Toy shapes', builtIn: false },
      ],
      activePackUrl: `${ext}local-pack/toy/`,
    };
    expect(migrate(v2).applied).toEqual(['2->3 (2026-12-02)']);
    let r = validate(v2);
    expect(r.settings).toMatchObject({
      schemaVersion: 3,
      strategy: 'beam',
      disabledSites: ['a.test'],
      packSources: [{ url: 'https://p.test/coco/', name: 'COCO', builtIn: false }],
      folders: [{ id: 'toy', name: 'Toy shapes' }],
      model: { kind: 'folder', id: 'toy' },
      installing: [],
    });
    expect('activePackUrl' in r.settings).toBe(false);
    expect(r.fixes).toEqual(['migrated 2->3 (2026-12-02)']);
    // A web pack in use stays in use, as a URL reference, normalised.
    r = validate({ ...v2, activePackUrl: 'https://p.test/coco' });
    expect(r.settings.model).toEqual({ kind: 'url', url: 'https://p.test/coco/' });
    // '' meant "the first pack address": no choice, and the first address is still the one used.
    r = validate({ ...v2, activePackUrl: '' });
    expect(r.settings.model).toBeNull();
    expect(activeModel(r.settings)).toEqual({ kind: 'url', url: 'https://p.test/coco/' });
    // Junk in the old key: reported, nothing invented.
    r = validate({ ...v2, activePackUrl: 'javascript:alert(1)' });
    expect(r.settings.model).toBeNull();
    expect(r.fixes.join('\n')).toMatch(/activePackUrl: .* is not a pack address/);
    // No schemaVersion, but v2's key: read as v2 and migrated.
    r = validate({ activePackUrl: 'https://p.test/x/' });
    expect(r.settings.model).toEqual({ kind: 'url', url: 'https://p.test/x/' });
    expect(r.fixes.join('\n')).toMatch(/migrated 2->3/);
    // v1 goes all the way.
    r = validate({ schemaVersion: 1, sites: { 'b.test': false }, activePackUrl: 'https://p.test/y/' });
    expect(r.settings).toMatchObject({ disabledSites: ['b.test'], model: { kind: 'url', url: 'https://p.test/y/' } });
  });

  it('pack references round-trip, and a URL pack keeps its URL (so its cached captions stay valid)', () => {
    for (const ref of [
      { kind: 'url', url: 'https://p.test/coco/' },
      { kind: 'catalogue', id: 'clipcap-coco' },
      { kind: 'folder', id: 'toy' },
    ] as const) {
      expect(parsePackRef(packRef(ref))).toEqual(ref);
    }
    expect(packRef({ kind: 'url', url: 'https://p.test/coco/' })).toBe('https://p.test/coco/');
    expect(parsePackRef('model:../etc')).toBeNull();
    expect(parsePackRef('javascript:alert(1)')).toBeNull();
    const s = validate({ packSources: [{ url: 'https://p.test/a/' }], model: { kind: 'catalogue', id: 'clipcap-coco' } }).settings;
    expect(activeModel(s)).toEqual({ kind: 'catalogue', id: 'clipcap-coco' });
  });

  it('saving a patch keeps every other choice, and repairs a corrupt store on the way', async () => {
    const store: Record<string, unknown> = { settings: { schemaVersion: 1, sites: { 'a.test': false }, markerText: 'Seen: ', beams: 'x' } };
    const area = {
      get: async (k: string) => ({ [k]: store[k] }),
      set: async (items: Record<string, unknown>) => void Object.assign(store, items),
    };
    const r = await saveSettings(area, { strategy: 'beam' });
    expect(r.settings).toMatchObject({ strategy: 'beam', disabledSites: ['a.test'], marker: 'Seen: ', beams: DEFAULTS.beams });
    expect((await loadSettings(area)).fixes).toEqual([]);
  });
});
