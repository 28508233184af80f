import { describe, expect, it } from 'vitest';
import { DEFAULTS, SCHEMA_VERSION, activePack, decodingKey, isEnabledFor, migrate, validate } from '../../src/shared/settings';

describe('settings', () => {
  it('nothing stored gives the defaults, with nothing to fix', () => {
    expect(validate(undefined)).toEqual({ settings: DEFAULTS, fixes: [] });
    expect(DEFAULTS.schemaVersion).toBe(SCHEMA_VERSION);
  });

  it('repairs bad values, drops unknown keys, and says what it fixed', () => {
    const { settings, fixes } = validate({ enabled: 'yes', strategy: 'sampling', beams: 99, marker: 'Maybe: ', extra: 1, disabledSites: [' Example.COM ', 'example.com'] });
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
    expect(migrate(v1).applied).toHaveLength(1);
    const { settings, fixes } = validate(v1);
    expect(settings.disabledSites).toEqual(['a.test']);
    expect(settings.marker).toBe('Looks like: ');
    expect(settings.schemaVersion).toBe(SCHEMA_VERSION);
    expect(fixes[0]).toMatch(/^migrated 1->2/);
  });

  it('keeps user pack sources, normalised, and refuses non-URLs', () => {
    const { settings, fixes } = validate({ packSources: [{ url: 'http://127.0.0.1:8/packs/toy/pack.json', name: 'Toy' }, { url: 'not a url' }] });
    expect(settings.packSources).toEqual([{ url: 'http://127.0.0.1:8/packs/toy/', name: 'Toy', builtIn: false }]);
    expect(fixes.some((f) => f.includes('not a url'))).toBe(true);
    expect(activePack(settings)?.url).toBe('http://127.0.0.1:8/packs/toy/');
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
});
