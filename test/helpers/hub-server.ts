/**
 * A loopback server that imitates the mirrors the catalogue names, as seen by a client (see /tmp/mirror-facts.md 6a,
 * 6b): the Hugging Face Hub's `resolve` answers 302 to a CDN path with X-Linked-Etag (quoted SHA-256 = LFS oid),
 * X-Linked-Size, X-Repo-Commit and ETag; the CDN serves the bytes with Range (206 + Content-Range) and an ETag that is
 * NOT the SHA-256 (as the xet CDN's is not); openaipublic.azureedge.net serves plain files with Range.
 *
 * The Hub's paths-info API (POST /huggingface.co/api/models/<repo>/paths-info/<rev>) states the same oid and size
 * as JSON, for the browser, which cannot read the redirect's headers.
 *
 * URL layout (as CAPTION_MIRROR_BASE rewrites https://HOST/PATH): /huggingface.co/<repo>/resolve/<rev>/<file>,
 * /openaipublic.azureedge.net/<path>, /cdn/<sha256>, and any directory mounted with mount().
 *
 * It counts the bytes it sends per file (the file's logical path, without the leading slash) and injects faults per
 * path: cut the connection after N bytes, an HTTP status (5xx, 404), slow, wrong bytes (same size, the declared hash
 * is the real one), truncated (a shorter file, declared as such), ignore Range (200 with the whole file).
 *
 * A file is served from memory (add) or streamed from disk (addFile: full-size files, so that the hub does not hold a
 * gigabyte in the memory of the process it shares with the installer it serves).
 */
import { createHash } from 'node:crypto';
import { closeSync, createReadStream, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, normalize } from 'node:path';
import { pipeline } from 'node:stream';

export type Fault =
  /** send `after` bytes of the answer, then destroy the socket */
  | { kind: 'cut'; after: number; times?: number }
  | { kind: 'status'; status: number; times?: number }
  /** about `bytesPerSecond`, in 16 KiB slices; never longer than `maxMs` in all */
  | { kind: 'slow'; bytesPerSecond: number; maxMs?: number; times?: number }
  /** the same size, other bytes: every 997th byte flipped, or only the byte at `at` (e.g. inside one tensor) */
  | { kind: 'wrong-bytes'; at?: number; times?: number }
  | { kind: 'truncate'; to: number; times?: number }
  | { kind: 'ignore-range'; times?: number };

interface HubLogEntry {
  path: string;
  /** the file the request is about (logical path), or null */
  file: string | null;
  range: string | undefined;
  status: number;
}

interface HubFile {
  size: number;
  sha256: string;
  commit: string;
  /** the bytes in memory, or the path of the file on disk */
  bytes: Uint8Array | null;
  path: string | null;
}

export interface HubServer {
  url: string;
  /** every request, in order */
  log: HubLogEntry[];
  /** body bytes sent per logical file path (e.g. "huggingface.co/org/repo/resolve/main/x.pt") */
  sent: Map<string, number>;
  /** serve `bytes` at a logical path (no leading slash); returns its SHA-256 */
  add(path: string, bytes: Uint8Array, opts?: { commit?: string }): string;
  /** serve the file at `file` on disk at a logical path, read as requested; resolves to its SHA-256 (hashed unless given) */
  addFile(path: string, file: string, opts?: { commit?: string; sha256?: string }): Promise<string>;
  /** a fault for a logical path until cleared (or `times` requests) */
  fault(path: string, f: Fault): void;
  clearFaults(): void;
  /** serve a directory at a URL prefix (e.g. "/templates/") */
  mount(prefix: string, dir: string): void;
  /** forget the log and the byte counts */
  reset(): void;
  close(): Promise<void>;
}

const DEFAULT_COMMIT = '0123456789abcdef0123456789abcdef01234567';
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

async function shaOfFile(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file, { highWaterMark: 4 << 20 })) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** Bytes [start, end) of an entry, in memory (a file on disk is read: only faults, on small test files, need this). */
function bytesOf(entry: HubFile, start: number, end: number): Uint8Array {
  if (entry.bytes) return entry.bytes.subarray(start, end);
  const out = new Uint8Array(Math.max(0, end - start));
  const fd = openSync(entry.path!, 'r');
  try {
    for (let done = 0; done < out.length;) done += readSync(fd, out, done, out.length - done, start + done);
  } finally {
    closeSync(fd);
  }
  return out;
}

export async function startHubServer(): Promise<HubServer> {
  const files = new Map<string, HubFile>();
  const byHash = new Map<string, string>();
  const faults = new Map<string, Fault & { used?: number }>();
  const mounts = new Map<string, string>();
  const log: HubLogEntry[] = [];
  const sent = new Map<string, number>();

  const takeFault = (file: string, kinds: Fault['kind'][]): (Fault & { used?: number }) | null => {
    const f = faults.get(file);
    if (!f || !kinds.includes(f.kind)) return null;
    f.used = (f.used ?? 0) + 1;
    if (f.times !== undefined && f.used >= f.times) faults.delete(file);
    return f;
  };

  /** Serve the bytes of `file` with Range, applying byte-level faults. */
  const serveBytes = (
    req: IncomingMessage,
    res: ServerResponse,
    file: string,
    entry: HubFile,
    extra: Record<string, string>,
    logged: HubLogEntry,
  ) => {
    const f = takeFault(file, ['cut', 'slow', 'wrong-bytes', 'truncate', 'ignore-range', 'status']);
    if (f?.kind === 'status') {
      logged.status = f.status;
      return void res.writeHead(f.status).end();
    }
    const size = f?.kind === 'truncate' ? Math.min(f.to, entry.size) : entry.size;
    const m = f?.kind === 'ignore-range' ? null : /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    let start = 0;
    let end = size - 1;
    const headers: Record<string, string> = { 'Content-Type': 'application/octet-stream', ...extra };
    if (f?.kind !== 'ignore-range') headers['Accept-Ranges'] = 'bytes';
    if (m) {
      start = Number(m[1]);
      end = m[2] ? Math.min(Number(m[2]), size - 1) : size - 1;
      if (start >= size) {
        logged.status = 416;
        return void res.writeHead(416, { 'Content-Range': `bytes */${size}` }).end();
      }
      logged.status = 206;
      res.writeHead(206, { ...headers, 'Content-Range': `bytes ${start}-${end}/${size}`, 'Content-Length': String(end - start + 1) });
    } else {
      logged.status = 200;
      res.writeHead(200, { ...headers, 'Content-Length': String(size) });
    }
    const count = (n: number) => sent.set(file, (sent.get(file) ?? 0) + n);
    if (entry.path && f?.kind !== 'cut' && f?.kind !== 'slow' && f?.kind !== 'wrong-bytes') {
      const stream = createReadStream(entry.path, { start, end, highWaterMark: 1 << 20 });
      stream.on('data', (chunk) => count(chunk.length));
      // The client may hang up early (a Range fallback, an abort): pipeline then closes the file.
      return void pipeline(stream, res, () => undefined);
    }
    let part = bytesOf(entry, start, end + 1);
    if (f?.kind === 'wrong-bytes') {
      part = Uint8Array.from(part);
      // the same bytes whatever range is asked for: file offset `at`, or every 997th byte of the file
      if (f.at !== undefined) {
        if (f.at >= start && f.at <= end) part[f.at - start] ^= 0x5a;
      } else {
        for (let i = Math.ceil(start / 997) * 997; i <= end; i += 997) part[i - start] ^= 0x5a;
      }
    }
    if (f?.kind === 'cut') {
      const n = Math.min(f.after, part.length);
      count(n);
      res.write(part.subarray(0, n), () => setTimeout(() => res.socket?.destroy(), 20));
      return;
    }
    if (f?.kind === 'slow') {
      const slice = 16 * 1024;
      const perSlice = Math.min((slice / f.bytesPerSecond) * 1000, (f.maxMs ?? 2000) / Math.max(1, Math.ceil(part.length / slice)));
      let o = 0;
      const next = () => {
        if (res.destroyed) return;
        if (o >= part.length) return void res.end();
        const s = part.subarray(o, o + slice);
        o += s.length;
        count(s.length);
        res.write(s, () => setTimeout(next, perSlice));
      };
      return next();
    }
    count(part.length);
    res.end(part);
  };

  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const path = decodeURIComponent(url.pathname);
    const logged: HubLogEntry = { path, file: null, range: req.headers.range, status: 0 };
    log.push(logged);
    const rel = path.slice(1);

    // The Hub's paths-info API (what @huggingface/hub's pathsInfo posts): each LFS file's oid (its SHA-256) and size.
    const api = /^(huggingface\.co)\/api\/models\/([^/]+\/[^/]+)\/paths-info\/([^/]+)$/.exec(rel);
    if (api && req.method === 'POST') {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const f = takeFault(rel, ['status']);
        let paths: unknown;
        try {
          paths = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { paths?: unknown }).paths;
        } catch {
          paths = null;
        }
        logged.status = f?.kind === 'status' ? f.status : Array.isArray(paths) ? 200 : 400;
        if (logged.status !== 200) return void res.writeHead(logged.status).end();
        const found = (paths as unknown[]).flatMap((p) => {
          const entry = typeof p === 'string' ? files.get(`${api[1]}/${api[2]}/resolve/${api[3]}/${p}`) : undefined;
          return entry
            ? [
                {
                  type: 'file',
                  path: p,
                  oid: entry.sha256.slice(0, 40),
                  size: entry.size,
                  lfs: { oid: entry.sha256, size: entry.size, pointerSize: 134 },
                },
              ]
            : [];
        });
        res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(found));
      });
      return;
    }
    // The Hub's resolve endpoint: a redirect to the CDN, with the file's facts on the redirect itself.
    if (rel.startsWith('huggingface.co/') && rel.includes('/resolve/')) {
      logged.file = rel;
      const entry = files.get(rel);
      const f = takeFault(rel, ['status']);
      if (f?.kind === 'status' || !entry) {
        logged.status = f?.kind === 'status' ? f.status : 404;
        res.writeHead(logged.status, entry ? {} : { 'X-Error-Code': 'EntryNotFound' });
        return void res.end();
      }
      const truncated = faults.get(rel)?.kind === 'truncate' ? (faults.get(rel) as { to: number }).to : entry.size;
      logged.status = 302;
      res.writeHead(302, {
        Location: `/cdn/${entry.sha256}?file=${encodeURIComponent(rel)}`,
        ETag: `"${entry.sha256}"`,
        'X-Linked-Etag': `"${entry.sha256}"`,
        'X-Linked-Size': String(truncated),
        'X-Repo-Commit': entry.commit,
        'Accept-Ranges': 'bytes',
        'Content-Length': '0',
      });
      return void res.end();
    }
    if (rel.startsWith('cdn/')) {
      const file = url.searchParams.get('file') ?? byHash.get(rel.slice(4)) ?? '';
      logged.file = file;
      const entry = files.get(file);
      if (!entry) return void ((logged.status = 404), res.writeHead(404).end());
      // The CDN's ETag is its own content hash, not the SHA-256 (as on the xet CDN).
      return serveBytes(req, res, file, entry, { ETag: `"xet-${entry.sha256.slice(0, 16)}"` }, logged);
    }
    const direct = files.get(rel);
    if (direct) {
      logged.file = rel;
      const f = takeFault(rel, ['status']);
      if (f?.kind === 'status') return void ((logged.status = f.status), res.writeHead(f.status).end());
      return serveBytes(req, res, rel, direct, { ETag: '"0x8D4A1B2C3D4E5F6"' }, logged);
    }
    for (const [prefix, dir] of mounts) {
      if (!path.startsWith(prefix)) continue;
      const file = normalize(join(dir, path.slice(prefix.length)));
      if (!file.startsWith(normalize(dir))) break;
      try {
        if (!statSync(file).isFile()) break;
        const body = readFileSync(file);
        logged.status = 200;
        return void res.writeHead(200, { 'Content-Length': String(body.length) }).end(body);
      } catch {
        break;
      }
    }
    logged.status = 404;
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    log,
    sent,
    add(path, bytes, opts) {
      const h = sha(bytes);
      files.set(path, { size: bytes.length, sha256: h, commit: opts?.commit ?? DEFAULT_COMMIT, bytes, path: null });
      byHash.set(h, path);
      return h;
    },
    async addFile(path, file, opts) {
      const h = opts?.sha256 ?? (await shaOfFile(file));
      files.set(path, { size: statSync(file).size, sha256: h, commit: opts?.commit ?? DEFAULT_COMMIT, bytes: null, path: file });
      byHash.set(h, path);
      return h;
    },
    fault: (path, f) => void faults.set(path, { ...f }),
    clearFaults: () => faults.clear(),
    mount: (prefix, dir) => void mounts.set(prefix, dir),
    reset() {
      log.length = 0;
      sent.clear();
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/**
 * fetch as an extension page sees it: a manual redirect is opaque (no status, no headers), so the Hub's X-Linked-*
 * headers are out of reach (Node's fetch shows them, a browser's does not).
 */
export function browserFetch(): typeof fetch {
  return async (input, init) => {
    const res = await fetch(input, init);
    if (init?.redirect !== 'manual' || res.status < 300 || res.status >= 400) return res;
    await res.body?.cancel();
    return {
      type: 'opaqueredirect',
      status: 0,
      ok: false,
      redirected: false,
      url: '',
      headers: new Headers(),
      body: null,
    } as unknown as Response;
  };
}
