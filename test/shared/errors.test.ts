// One of each: every named error is defined once and registered (with a message key that exists in every locale, and
// whether a retry can help); every validator takes its bounds from the one limits table.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as registry from '../../src/shared/errors';
import { ERRORS, errorInfo, fromWire, isPermanent, toWire } from '../../src/shared/errors';
import { LIMITS } from '../../src/shared/limits';
import { VALIDATORS } from '../../src/shared/messages';
import { validate } from '../../src/shared/settings';

const PARTS = ['engine', 'install', 'extension'].map((p) => `src/shared/errors/${p}.ts`);
/** Names two classes share on purpose (see ERRORS): the registry rebuilds one class for both. */
const SHARED_NAMES = new Set(['AbortError', 'StorageQuotaError']);

function declaredClasses(): { cls: string; name: string }[] {
  const out: { cls: string; name: string }[] = [];
  for (const file of PARTS) {
    const src = readFileSync(file, 'utf8');
    for (const m of src.matchAll(/export class (\w+) extends \w+ \{\n {2}override name = '(\w+)';/g)) out.push({ cls: m[1], name: m[2] });
  }
  return out;
}

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? tsFiles(p) : p.endsWith('.ts') ? [p] : [];
  });
}

describe('the error registry', () => {
  it('registers every named class, by its name', () => {
    const declared = declaredClasses();
    expect(declared.length).toBeGreaterThan(40);
    for (const { cls, name } of declared) {
      expect(ERRORS[name], `${cls} (${name})`).toBeDefined();
      const exported = (registry as unknown as Record<string, unknown>)[cls];
      if (!SHARED_NAMES.has(name)) expect(ERRORS[name].cls, cls).toBe(exported);
    }
    expect(Object.keys(ERRORS).sort()).toEqual([...new Set(declared.map((d) => d.name))].sort());
  });

  it('is the only place error classes are defined', () => {
    const outside = tsFiles('src')
      .filter((f) => !f.replaceAll('\\', '/').startsWith('src/shared/errors/'))
      .flatMap((f) => [...readFileSync(f, 'utf8').matchAll(/class (\w+) extends (?:\w*Error)\b/g)].map((m) => `${f}: ${m[1]}`));
    // fetch-file.ts's Retryable is control flow inside one function, reported as a NetworkError or MirrorHttpError.
    expect(outside.filter((x) => !x.endsWith(': Retryable'))).toEqual([]);
  });

  it('gives every error a message key that exists in every locale', () => {
    for (const locale of readdirSync('public/_locales')) {
      const messages = JSON.parse(readFileSync(`public/_locales/${locale}/messages.json`, 'utf8')) as Record<string, unknown>;
      for (const [name, info] of Object.entries(ERRORS)) {
        if (info.messageKey !== null) expect(messages[info.messageKey], `${locale}: ${name} -> ${info.messageKey}`).toBeDefined();
      }
    }
  });

  it('rebuilds every registered class from the wire, with its name and message', () => {
    for (const [name, info] of Object.entries(ERRORS)) {
      const back = fromWire(toWire({ name, message: `m-${name}` }));
      expect(back, name).toBeInstanceOf(info.cls);
      expect(back).toBeInstanceOf(Error);
      expect(back.name).toBe(name);
      expect(back.message).toBe(`m-${name}`);
      expect(errorInfo(back)).toBe(info);
    }
    const unknown = fromWire({ name: 'SomethingElse', message: 'x' });
    expect(unknown.name).toBe('SomethingElse');
    expect(errorInfo(unknown)).toBeUndefined();
    expect(errorInfo({ name: 'toString', message: '' })).toBeUndefined();
  });

  it('says which failures a retry cannot fix, as the content queue always remembered them', () => {
    const before = [
      'ImageFetchError',
      'ImageDecodeError',
      'ImageDecodeTimeoutError',
      'EmptyImageError',
      'EmptyCaptionError',
      'UnsafeSourceError',
      'ContextInvalidatedError',
    ];
    for (const name of before) expect(isPermanent({ name, message: '' }), name).toBe(true);
    const retried = [
      'NoPackError',
      'QueueFullError',
      'AbortError',
      'OffscreenUnavailableError',
      'TransportError',
      'BadMessageError',
      'ForbiddenSenderError',
      'BackendUnavailableError',
      'PackIntegrityError',
      'PackDownloadError',
      'StorageQuotaError',
      'InvalidOptionError',
      'NetworkError',
      'Error',
    ];
    for (const name of retried) expect(isPermanent({ name, message: '' }), name).toBe(false);
    expect(isPermanent(new registry.CaptionAbortedError())).toBe(false);
    expect(isPermanent(new registry.ContextInvalidatedError())).toBe(true);
    expect(isPermanent('not an error')).toBe(false);
  });
});

describe('the limits table', () => {
  const request = (decoding: { beams: number; maxTokens: number }) => ({
    type: 'bg-os-caption',
    requestId: 'r',
    key: 'k',
    source: { kind: 'url', url: 'https://x.test/a.png' },
    priority: 0,
    packUrl: 'model:toy',
    decoding: { strategy: 'beam', ...decoding },
    backend: 'auto',
  });

  it('bounds settings and messages alike', () => {
    const { beams, maxTokens } = LIMITS.decoding;
    for (const [b, t, ok] of [
      [beams.max, maxTokens.max, true],
      [beams.max + 1, maxTokens.max, false],
      [beams.max, maxTokens.max + 1, false],
      [beams.min, maxTokens.min, true],
      [0, 1, false],
    ] as const) {
      expect(VALIDATORS['bg-os-caption'](request({ beams: b, maxTokens: t })), `beams ${b}, maxTokens ${t}`).toBe(ok);
      const { settings } = validate({ beams: b, maxTokens: t });
      expect(settings.beams === b && settings.maxTokens === t, `settings beams ${b}, maxTokens ${t}`).toBe(ok);
    }
  });

  it('is frozen', () => {
    expect(Object.isFrozen(LIMITS)).toBe(true);
    expect(Object.isFrozen(LIMITS.decoding.beams)).toBe(true);
  });
});
