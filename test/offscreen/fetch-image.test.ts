// The offscreen document's image fetch against a misbehaving loopback server: every failure is a named
// ImageFetchError with a reason, a stalled server is given up on after the timeout, and a cancel is a cancel.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchImage } from '../../src/offscreen/fetch-image';

const PNG = Buffer.from(
  '89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d4944415478da63f8cfc0f01f0005000201a1e2f6b40000000049454e44ae426082',
  'hex',
);
let server: Server;
let base = '';

beforeAll(async () => {
  server = createServer((req, res) => {
    const path = req.url ?? '/';
    if (path === '/ok.png') return res.writeHead(200, { 'content-type': 'image/png' }).end(PNG);
    if (path === '/404') return res.writeHead(404, { 'content-type': 'text/html' }).end('nope');
    if (path === '/html') return res.writeHead(302, { location: '/landing' }).end();
    if (path === '/landing') return res.writeHead(200, { 'content-type': 'text/html' }).end('<form>sign in</form>');
    if (path === '/loop') return res.writeHead(302, { location: '/loop' }).end();
    if (path === '/empty') return res.writeHead(200, { 'content-type': 'image/png', 'content-length': 0 }).end();
    if (path === '/huge') {
      res.writeHead(200, { 'content-type': 'image/png', 'content-length': 500 * 2 ** 20 });
      return res.write(PNG);
    }
    if (path === '/lie') {
      res.writeHead(200, { 'content-type': 'image/png', 'content-length': PNG.length + 5000 });
      return res.write(PNG, () => setTimeout(() => res.socket?.destroy(), 20));
    }
    if (path === '/stall') return; // never answers
    res.writeHead(500).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

const get = (path: string, signal?: AbortSignal, timeoutMs = 1500) => fetchImage({ kind: 'url', url: `${base}${path}` }, signal, timeoutMs);

describe('image fetch', () => {
  it('returns the bytes of a good image', async () => {
    const blob = await get('/ok.png');
    expect(blob.size).toBe(PNG.length);
    expect(blob.type).toBe('image/png');
  });

  it.each([
    ['/404', /HTTP 404/],
    ['/html', /text\/html, not an image, after a redirect/],
    ['/loop', /could not be downloaded/],
    ['/empty', /empty body/],
    ['/huge', /500 MB is more than the 32 MB limit/],
    ['/lie', /broke off/],
    ['/stall', /no answer within 2 s/],
  ])('%s fails with a named, readable reason', async (path, reason) => {
    const t0 = Date.now();
    const err = await get(path).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).name).toBe('ImageFetchError');
    expect((err as Error).message).toMatch(reason);
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it('a cancelled fetch is a cancel, not a fetch error', async () => {
    const ac = new AbortController();
    const p = get('/stall', ac.signal, 10_000);
    setTimeout(() => ac.abort(new DOMException('Cancelled.', 'AbortError')), 50);
    const err = (await p.catch((e: Error) => e)) as Error;
    expect(err.name).toBe('AbortError');
  });
});
