// What the pages say about an install: one bar that only moves forward across phases, value text with percent, bytes
// and time left in human units, one sentence per phase, in English and German (through the real messages.json).
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InstallState } from '../../src/shared/messages';

type Messages = Record<string, { message: string; placeholders?: Record<string, { content: string }> }>;

/** chrome.i18n.getMessage over a locale's messages.json: named placeholders, then $1..$9. */
function i18n(locale: string) {
  const messages = JSON.parse(readFileSync(`public/_locales/${locale}/messages.json`, 'utf8')) as Messages;
  return {
    getUILanguage: () => locale,
    getMessage(key: string, subs?: string | string[]) {
      const m = messages[key];
      if (!m) return '';
      const args = subs === undefined ? [] : Array.isArray(subs) ? subs : [subs];
      const fill = (t: string) => t.replace(/\$(\d)/g, (_, n: string) => args[Number(n) - 1] ?? '');
      return m.message.replace(/\$([A-Za-z_]+)\$/g, (_, name: string) => fill(m.placeholders?.[name.toLowerCase()]?.content ?? ''));
    },
  };
}

const st = (phase: InstallState['phase'], bytes: number, total: number, etaSeconds: number | null = null): InstallState => ({
  id: 'clipcap-coco',
  phase,
  bytes,
  total,
  rate: 1e6,
  etaSeconds,
  error: null,
  storeId: null,
  needsFiles: [],
});

describe('install progress text', () => {
  const saved = (globalThis as { chrome?: unknown }).chrome;
  beforeAll(() => {
    (globalThis as { chrome?: unknown }).chrome = { i18n: i18n('en') };
  });
  afterAll(() => {
    (globalThis as { chrome?: unknown }).chrome = saved;
  });

  it('the value text says percent, bytes, rate and time left, in human units', async () => {
    const { progressText, formatBytes, formatEta, formatRate } = await import('../../src/shared/status-text');
    expect(formatBytes(290e6)).toBe('290 MB');
    expect(formatBytes(1.234e9)).toBe('1.2 GB');
    expect(formatBytes(850e3)).toBe('850 kB');
    expect(formatEta(30)).toBe('less than a minute left');
    expect(formatEta(100)).toBe('about 2 minutes left');
    expect(formatEta(7200)).toBe('about 2 hours left');
    expect(formatEta(null)).toBe('');
    expect(formatRate(4.2e6)).toBe('4.2 MB/s');
    expect(progressText(st('downloading', 120e6, 290e6, 100))).toBe('35%, 120 MB of 290 MB, 1 MB/s, about 2 minutes left');
    expect(progressText(st('paused', 120e6, 290e6, 100))).toBe('35%, 120 MB of 290 MB');
  });

  it('one bar for the whole job: it never goes back when a phase ends, and reaches 100 only when ready', async () => {
    const { installPercent } = await import('../../src/shared/status-text');
    const run = [
      st('queued', 0, 0),
      st('downloading', 0, 100),
      st('downloading', 50, 100),
      st('downloading', 100, 100),
      st('verifying', 0, 100),
      st('verifying', 100, 100),
      st('converting', 0, 8),
      st('converting', 8, 8),
      st('ready', 8, 8),
    ];
    const pcts = run.map(installPercent);
    for (let i = 1; i < pcts.length; i += 1) expect(pcts[i], `${run[i].phase}`).toBeGreaterThanOrEqual(pcts[i - 1]);
    expect(pcts.slice(0, -1).every((p) => p < 100)).toBe(true);
    expect(pcts.at(-1)).toBe(100);
  });

  it('a phase sentence for every phase; a failure says why', async () => {
    const { phaseText } = await import('../../src/shared/status-text');
    expect(phaseText(st('downloading', 0, 1), 'ClipCap COCO')).toBe('Downloading ClipCap COCO…');
    expect(phaseText(st('ready', 1, 1), 'ClipCap COCO')).toMatch(/^ClipCap COCO is ready\./);
    expect(
      phaseText({ ...st('failed', 0, 1), error: { name: 'NetworkError', message: 'The mirror did not answer.' } }, 'ClipCap COCO'),
    ).toBe('Setting up ClipCap COCO failed: The mirror did not answer.');
    for (const phase of ['not-installed', 'queued', 'downloading', 'verifying', 'converting', 'paused', 'ready', 'failed'] as const) {
      expect(phaseText(st(phase, 0, 1), 'X'), phase).not.toMatch(/^phase|\$/);
    }
  });

  it('German: every string of the install is translated, and units follow the language', async () => {
    (globalThis as { chrome?: unknown }).chrome = { i18n: i18n('de') };
    const { progressText, phaseText } = await import('../../src/shared/status-text');
    expect(progressText(st('downloading', 120e6, 290e6, 100))).toBe('35%, 120 MB von 290 MB, 1 MB/s, noch etwa 2 Minuten');
    expect(phaseText(st('converting', 0, 1), 'ClipCap COCO')).toBe('ClipCap COCO wird auf diesem Gerät eingerichtet…');
    const en = JSON.parse(readFileSync('public/_locales/en/messages.json', 'utf8')) as Messages;
    const de = JSON.parse(readFileSync('public/_locales/de/messages.json', 'utf8')) as Messages;
    expect(Object.keys(de).sort()).toEqual(Object.keys(en).sort());
    (globalThis as { chrome?: unknown }).chrome = { i18n: i18n('en') };
  });
});
