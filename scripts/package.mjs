// npm run package: build the release extension (no test hooks, no preconfigured pack) and write a store-ready zip of
// dist/ to release/alt-text-<version>.zip. The zip is written here (stored or deflated entries, CRC-32) so packaging
// needs no extra dependency.
// npm run build:firefox (--browser firefox): the Firefox release build in dist-firefox/, checked by `web-ext lint`
// (any error fails) and packed by `web-ext build` into release/alt-text-firefox-<version>.zip, ready for AMO signing.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deflateRawSync } from 'node:zlib';

const ROOT = resolve(fileURLToPath(import.meta.url), '../..');
const FIREFOX = process.argv.includes('--browser') && process.argv[process.argv.indexOf('--browser') + 1] === 'firefox';
const DIST = join(ROOT, FIREFOX ? 'dist-firefox' : 'dist');

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k += 1) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function files(dir) {
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? files(join(dir, e.name)) : e.isFile() ? [join(dir, e.name)] : []))
    .sort();
}

/** A zip of `paths` (relative to `base`), entries in sorted order with a fixed date, so the same build zips the same. */
export function zip(base, paths) {
  const locals = [];
  const centrals = [];
  let offset = 0;
  // 1980-01-01 00:00, the DOS epoch: no build-time noise in the archive.
  const time = 0;
  const date = (0 << 9) | (1 << 5) | 1;
  for (const p of paths) {
    const name = Buffer.from(relative(base, p).split(sep).join('/'));
    const data = readFileSync(p);
    const deflated = deflateRawSync(data, { level: 9 });
    // Already-compressed files (wasm is not, png is) are stored when deflate does not help.
    const useDeflate = deflated.length < data.length;
    const body = useDeflate ? deflated : data;
    const crc = crc32(data);
    const head = Buffer.alloc(30);
    head.writeUInt32LE(0x04034b50, 0);
    head.writeUInt16LE(20, 4);
    head.writeUInt16LE(0x0800, 6); // UTF-8 names
    head.writeUInt16LE(useDeflate ? 8 : 0, 8);
    head.writeUInt16LE(time, 10);
    head.writeUInt16LE(date, 12);
    head.writeUInt32LE(crc, 14);
    head.writeUInt32LE(body.length, 18);
    head.writeUInt32LE(data.length, 22);
    head.writeUInt16LE(name.length, 26);
    locals.push(head, name, body);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(20, 4);
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(0x0800, 8);
    central.writeUInt16LE(useDeflate ? 8 : 0, 10);
    central.writeUInt16LE(time, 12);
    central.writeUInt16LE(date, 14);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(body.length, 20);
    central.writeUInt32LE(data.length, 24);
    central.writeUInt16LE(name.length, 28);
    central.writeUInt32LE(offset, 42);
    centrals.push(central, name);
    offset += head.length + name.length + body.length;
  }
  const cd = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(paths.length, 8);
  end.writeUInt16LE(paths.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, end]);
}

function main() {
  // A release build: no test hooks, no pack address, the bundled catalogue and its real mirrors.
  const env = {
    ...process.env,
    TEST_HOOKS: '',
    CAPTION_PACK_URL: '',
    CAPTION_CATALOGUE: '',
    CAPTION_MIRROR_BASE: '',
    EXT_OUT_DIR: DIST,
    TARGET_BROWSER: FIREFOX ? 'firefox' : 'chrome',
  };
  const built = spawnSync(process.execPath, [join(ROOT, 'node_modules/vite/bin/vite.js'), 'build', '--logLevel', 'warn'], {
    cwd: ROOT,
    env,
    stdio: 'inherit',
  });
  if (built.status !== 0) throw new Error(`vite build failed (${built.status})`);
  const { version } = JSON.parse(readFileSync(join(DIST, 'manifest.json'), 'utf8'));
  const paths = files(DIST);
  if (!paths.some((p) => relative(DIST, p) === 'manifest.json')) throw new Error(`${DIST} has no manifest.json`);
  if (FIREFOX) return webExt(version);
  const out = join(ROOT, 'release', `alt-text-${version}.zip`);
  mkdirSync(join(ROOT, 'release'), { recursive: true });
  writeFileSync(out, zip(DIST, paths));
  console.log(`${relative(ROOT, out)}: ${paths.length} files, ${(statSync(out).size / 1e6).toFixed(1)} MB`);
}

/** web-ext lint (errors fail; warnings are printed), then web-ext build into release/. */
function webExt(version) {
  const bin = join(ROOT, 'node_modules/.bin/web-ext');
  const lint = spawnSync(bin, ['lint', '--source-dir', DIST, '--output', 'json'], { cwd: ROOT, encoding: 'utf8' });
  const report = JSON.parse(lint.stdout);
  for (const w of report.warnings) console.warn(`web-ext lint warning ${w.code}: ${w.message} (${w.file ?? 'manifest'})`);
  if (report.errors.length > 0 || lint.status !== 0) {
    for (const e of report.errors) console.error(`web-ext lint error ${e.code}: ${e.message} (${e.file ?? 'manifest'})`);
    throw new Error(`web-ext lint found ${report.errors.length} error(s) in ${relative(ROOT, DIST)}`);
  }
  const name = `alt-text-firefox-${version}.zip`;
  const built = spawnSync(
    bin,
    ['build', '--source-dir', DIST, '--artifacts-dir', join(ROOT, 'release'), '--filename', name, '--overwrite-dest'],
    { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] },
  );
  if (built.status !== 0) throw new Error(`web-ext build failed (${built.status})`);
  const out = join(ROOT, 'release', name);
  console.log(
    `web-ext lint: 0 errors, ${report.warnings.length} warning(s); ${relative(ROOT, out)}: ${(statSync(out).size / 1e6).toFixed(1)} MB`,
  );
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
