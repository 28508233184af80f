// Security audit of the manifest and the built extension: a CSP with no 'unsafe-eval' and no remote sources, exactly
// the permissions the README justifies (one row each), and no remote script in the JS the extension loads.
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '../..');
const read = (p: string) => readFileSync(join(ROOT, p), 'utf8');

/** The permissions the extension needs, each justified in the README's table. Adding one means adding a row there. */
const PERMISSIONS = ['offscreen', 'storage', 'unlimitedStorage', 'contextMenus'];
const HOST_PERMISSIONS = ['<all_urls>'];

/**
 * Every test-only name: the globals test builds define (background, content script) and the message types only the
 * test hooks answer. Release builds must contain none of them. The source scan below keeps this list complete.
 */
const TEST_ONLY = [
  'altTextTest',
  'altTextContentTest',
  'test-os-lose-device',
  'test-os-engine-bench',
  'test-sb-lose-device',
  'test-cs-panel',
];

/** Builds that exist on this machine: the release builds (dist/, dist-firefox/) and the e2e builds (.tmp/). */
const ALL_BUILDS = ['dist', 'dist-firefox', '.tmp/ext-e2e', '.tmp/ext-firefox-e2e'];
const BUILDS = ALL_BUILDS.filter((d) => existsSync(join(ROOT, d, 'manifest.json')));
const isTestBuild = (b: string) => b.startsWith('.tmp/');
/** npm test sets this after building both, so that the build checks can't be skipped there. */
const BUILDS_REQUIRED = process.env.AUDIT_BUILDS === '1';

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : [p];
  });
}

/** Every CSP directive of the manifest, as {directive: sources[]}; an absent CSP means Chrome's default (checked below). */
function cspOf(manifest: Record<string, unknown>): Record<string, Record<string, string[]>> {
  const csp = (manifest.content_security_policy ?? {}) as Record<string, string>;
  return Object.fromEntries(
    Object.entries(csp).map(([k, v]) => [
      k,
      Object.fromEntries(
        v
          .split(';')
          .map((d) => d.trim().split(/\s+/))
          .filter((d) => d[0])
          .map(([name, ...src]) => [name, src]),
      ),
    ]),
  );
}

/** Chrome's manifest, or Firefox's (vite.config.ts firefoxManifest: no offscreen document, no sandbox key). */
function auditManifest(m: Record<string, unknown>, where: string) {
  expect(m.manifest_version, where).toBe(3);
  const csp = cspOf(m);
  const gecko = (m.browser_specific_settings as { gecko?: Record<string, unknown> } | undefined)?.gecko;
  if (gecko) {
    expect(Object.keys(csp), `${where}: extension pages only (Firefox has no sandbox key)`).toEqual(['extension_pages']);
    expect(m.sandbox, where).toBeUndefined();
    expect([m.cross_origin_embedder_policy, m.cross_origin_opener_policy], `${where}: no isolation keys`).toEqual([undefined, undefined]);
    expect(gecko.id, `${where}: the add-on id Firefox requires`).toMatch(/^[\w.-]+@[\w.-]+$/);
    // Firefox's built-in consent: this extension collects no data at all.
    expect(gecko.data_collection_permissions, where).toEqual({ required: ['none'] });
    expect(m.permissions, where).toEqual(PERMISSIONS.filter((p) => p !== 'offscreen'));
  } else {
    expect(Object.keys(csp), `${where}: extension pages, and the engine's sandbox page`).toEqual(['extension_pages', 'sandbox']);
    // The engine's frame (src/sandbox/, src/shared/engine-link.ts): scripts, and nothing else a sandbox can allow.
    // Above all not allow-same-origin, which would give it the extension's origin (and its storage) back.
    expect(csp.sandbox.sandbox, `${where}: sandbox flags`).toEqual(['allow-scripts']);
    // blob: only for the boot script of ORT's worker threads, which the frame itself makes (src/sandbox/module-workers.ts);
    // a blob: URL belongs to the origin that made it, and no other document has the frame's opaque origin.
    expect(csp.sandbox['script-src'], `${where}: sandbox script-src`).toEqual(["'self'", "'wasm-unsafe-eval'", 'blob:']);
    expect(csp.sandbox['object-src'], `${where}: sandbox object-src`).toEqual(["'none'"]);
    expect(m.sandbox, `${where}: the one sandbox page`).toEqual({ pages: ['src/sandbox/index.html'] });
    // Cross-origin isolated pages: SharedArrayBuffer in the engine's frame, so ORT runs worker threads there.
    expect(m.cross_origin_embedder_policy, where).toEqual({ value: 'require-corp' });
    expect(m.cross_origin_opener_policy, where).toEqual({ value: 'same-origin' });
    expect(m.permissions, where).toEqual(PERMISSIONS);
  }
  const pages = csp.extension_pages;
  // script-src: our own files, and WebAssembly compilation; nothing looser.
  expect(pages['script-src'], where).toEqual(["'self'", "'wasm-unsafe-eval'"]);
  // The sandbox's blob: was checked above; every other source of both policies is held to the same rule.
  const sandboxRest = Object.entries(csp.sandbox ?? {}).map(
    ([d, list]) => [d, d === 'script-src' ? list.filter((x) => x !== 'blob:') : list] as const,
  );
  for (const [directive, sources] of [...Object.entries(pages), ...sandboxRest]) {
    for (const s of sources) {
      expect(s, `${where}: ${directive}`).not.toMatch(/^'unsafe-eval'|unsafe-inline|unsafe-hashes|^\*|^https?:|^data:|^blob:|^wss?:|\*\./);
    }
  }
  expect(m.host_permissions, where).toEqual(HOST_PERMISSIONS);
  expect(m.optional_permissions ?? [], where).toEqual([]);
  expect(m.optional_host_permissions ?? [], where).toEqual([]);
  // No web page or other extension may message us; nothing of ours is readable by pages.
  expect(m.externally_connectable, where).toBeUndefined();
  const war = (m.web_accessible_resources ?? []) as { resources: string[] }[];
  for (const w of war) for (const r of w.resources) expect(r, `${where}: web-accessible`).not.toMatch(/\.html$|\*/);
}

describe('security audit', () => {
  it.runIf(BUILDS_REQUIRED)('every build exists to be audited (release and e2e, Chrome and Firefox)', () => {
    expect(BUILDS).toEqual(ALL_BUILDS);
  });

  it('manifest.json: CSP with no unsafe-eval or remote sources, and exactly the justified permissions', () => {
    auditManifest(JSON.parse(read('manifest.json')), 'manifest.json');
  });

  it.runIf(BUILDS.length > 0 || BUILDS_REQUIRED)('the built manifests say the same', () => {
    for (const b of BUILDS) auditManifest(JSON.parse(read(`${b}/manifest.json`)), `${b}/manifest.json`);
  });

  it('README: every permission has a justification row, and no row justifies a permission we do not ask for', () => {
    const readme = read('README.md');
    const start = readme.indexOf('## Permissions');
    expect(start).toBeGreaterThan(0);
    const section = readme.slice(start, readme.indexOf('\n## ', start + 1) >>> 0 || undefined);
    const rows = section
      .split('\n')
      .filter((l) => l.startsWith('|') && !/^\|\s*-/.test(l) && !/^\|\s*permission\s*\|/i.test(l))
      .map((l) =>
        l
          .split('|')
          .slice(1, -1)
          .map((c) => c.trim()),
      );
    const named = new Map<string, string>();
    for (const [perm, why] of rows) for (const p of perm.match(/`([^`]+)`/g) ?? []) named.set(p.slice(1, -1), why);
    for (const p of [...PERMISSIONS, ...HOST_PERMISSIONS]) {
      expect(named.has(p), `README has no row for ${p}`).toBe(true);
      expect(named.get(p)!.length, `README's reason for ${p}`).toBeGreaterThan(30);
    }
    expect([...named.keys()].sort()).toEqual([...PERMISSIONS, ...HOST_PERMISSIONS].sort());
  });

  /**
   * Strings in third-party bundles that name a CDN but are never loaded. transformers.js points ORT's wasmPaths at
   * jsdelivr only when none is set; the engine sets chrome.runtime.getURL('ort/') before importing it and puts it
   * back after (src/captioner/captioner.ts), and script-src 'self' would refuse the script anyway. The e2e network
   * audit shows no request to it. Any other remote script URL fails this test.
   */
  const KNOWN_DEAD = [/^https:\/\/cdn\.jsdelivr\.net\/npm\/onnxruntime-web@\$\{[a-z]+\.versions\.web\}\/dist\/$/];

  it.runIf(BUILDS.length > 0 || BUILDS_REQUIRED)('the built JS loads no remote script: no http(s) script src, importScripts or CDN', () => {
    const found: string[] = [];
    for (const b of BUILDS) {
      for (const f of files(join(ROOT, b)).filter((p) => /\.(m?js|html)$/.test(p))) {
        const text = readFileSync(f, 'utf8');
        const where = relative(ROOT, f);
        for (const m of text.matchAll(/<script[^>]*\ssrc=["']?(https?:)?\/\//gi)) found.push(`${where}: ${m[0]}`);
        for (const m of text.matchAll(/importScripts\s*\(\s*[`'"]?https?:/g)) found.push(`${where}: ${m[0]}`);
        for (const m of text.matchAll(/\bimport\s*\(\s*[`'"]https?:/g)) found.push(`${where}: ${m[0]}`);
        for (const m of text.matchAll(/\bfrom\s*[`'"]https?:/g)) found.push(`${where}: ${m[0]}`);
        for (const m of text.matchAll(/https?:\/\/[a-z0-9.-]*(jsdelivr|unpkg|cdnjs|googleapis|gstatic|cdn\.)[^\s`'"]*/gi)) {
          if (!KNOWN_DEAD.some((k) => k.test(m[0]))) found.push(`${where}: ${m[0]}`);
        }
      }
    }
    expect(found).toEqual([]);
  });

  it('the list of test-only names covers every test-only global and message type in the source', () => {
    const found = new Set<string>();
    for (const f of files(join(ROOT, 'src')).filter((p) => p.endsWith('.ts'))) {
      const text = readFileSync(f, 'utf8');
      for (const m of text.matchAll(/\(globalThis as [^)]*\)\.(\w+)\s*=/g)) found.add(m[1]);
      for (const m of text.matchAll(/['"`](test-[a-z0-9-]+)['"`]/g)) found.add(m[1]);
    }
    expect([...found].sort()).toEqual([...TEST_ONLY].sort());
  });

  it.runIf(BUILDS.length > 0 || BUILDS_REQUIRED)('the release build leaves every test-only name out; the e2e build has each one', () => {
    for (const b of BUILDS) {
      const js = files(join(ROOT, b))
        .filter((p) => p.endsWith('.js'))
        .map((p) => readFileSync(p, 'utf8'))
        .join('\n');
      const present = TEST_ONLY.filter((name) => js.includes(name));
      expect(present, b).toEqual(isTestBuild(b) ? TEST_ONLY : []);
    }
  });
});
