/** A loopback HTTP server for tests: serves files from a directory with Range support, and can misbehave on demand. */
import { createReadStream, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, normalize } from 'node:path';

interface RequestLog {
  path: string;
  range: string | undefined;
}

export interface StaticServer {
  url: string;
  log: RequestLog[];
  /** path -> hook run before serving; return true if the hook answered the request itself */
  hooks: Map<string, (req: IncomingMessage, res: ServerResponse) => boolean>;
  close(): Promise<void>;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html',
  '.js': 'text/javascript',
  '.mjs': 'text/javascript',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.png': 'image/png',
  '.onnx': 'application/octet-stream',
  '.css': 'text/css',
};

/** Serve `mounts` (URL prefix -> directory) on 127.0.0.1. */
export async function startStaticServer(mounts: Record<string, string>, headers: Record<string, string> = {}): Promise<StaticServer> {
  const log: RequestLog[] = [];
  const hooks = new Map<string, (req: IncomingMessage, res: ServerResponse) => boolean>();
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const path = decodeURIComponent(url.pathname);
    log.push({ path, range: req.headers.range });
    for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
    const hook = hooks.get(path);
    if (hook && hook(req, res)) return;
    const prefix = Object.keys(mounts)
      .sort((a, b) => b.length - a.length)
      .find((p) => path.startsWith(p));
    if (prefix === undefined) return void res.writeHead(404).end();
    const file = normalize(join(mounts[prefix], path.slice(prefix.length)));
    if (!file.startsWith(normalize(mounts[prefix]))) return void res.writeHead(403).end();
    let size: number;
    try {
      const st = statSync(file);
      if (!st.isFile()) return void res.writeHead(404).end();
      size = st.size;
    } catch {
      return void res.writeHead(404).end();
    }
    res.setHeader('Content-Type', TYPES[extname(file)] ?? 'application/octet-stream');
    res.setHeader('Accept-Ranges', 'bytes');
    const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    if (m) {
      const start = Number(m[1]);
      const end = m[2] ? Math.min(Number(m[2]), size - 1) : size - 1;
      if (start >= size) return void res.writeHead(416, { 'Content-Range': `bytes */${size}` }).end();
      res.writeHead(206, { 'Content-Range': `bytes ${start}-${end}/${size}`, 'Content-Length': String(end - start + 1) });
      createReadStream(file, { start, end }).pipe(res);
      return;
    }
    res.writeHead(200, { 'Content-Length': String(size) });
    createReadStream(file).pipe(res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    log,
    hooks,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
