/**
 * The loopback hub (test/helpers/hub-server.ts) answers the same for a file streamed from disk (addFile, used at full
 * size by bench/accept-convert.bench.ts) as for the same bytes in memory (add): bodies, Range, faults, byte counts.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startHubServer, type Fault, type HubServer } from '../helpers/hub-server';

const tmp = mkdtempSync(`${tmpdir()}/hub-`);
const data = randomBytes(50_000);
let hub: HubServer;
beforeAll(async () => {
  writeFileSync(join(tmp, 'f.bin'), data);
  hub = await startHubServer();
  hub.add('openaipublic.azureedge.net/mem.bin', data);
  hub.add('huggingface.co/o/mem/resolve/main/f.bin', data);
  expect(await hub.addFile('openaipublic.azureedge.net/disk.bin', join(tmp, 'f.bin'))).toBe(hub.add('x', data));
  await hub.addFile('huggingface.co/o/disk/resolve/main/f.bin', join(tmp, 'f.bin'));
});
afterAll(async () => {
  await hub?.close();
  rmSync(tmp, { recursive: true, force: true });
});

async function get(path: string, range?: string) {
  try {
    const res = await fetch(`${hub.url}/${path}`, { headers: range ? { Range: range } : {} });
    const body = Buffer.from(await res.arrayBuffer());
    return { status: res.status, range: res.headers.get('content-range'), linkedSize: res.headers.get('x-linked-size'), body };
  } catch (e) {
    return { error: (e as Error).name };
  }
}

it.each<[string, Fault | null, string | undefined]>([
  ['whole', null, undefined],
  ['a range', null, 'bytes=1000-20999'],
  ['an open range', null, 'bytes=49000-'],
  ['past the end', null, 'bytes=60000-'],
  ['ignore-range', { kind: 'ignore-range' }, 'bytes=1000-1999'],
  ['truncate', { kind: 'truncate', to: 30_000 }, 'bytes=25000-'],
  ['wrong-bytes (every 997th)', { kind: 'wrong-bytes' }, 'bytes=1000-5999'],
  ['wrong-bytes (one)', { kind: 'wrong-bytes', at: 1234 }, undefined],
  ['cut', { kind: 'cut', after: 5000 }, undefined],
  ['status', { kind: 'status', status: 503 }, undefined],
])('%s: the same from disk as from memory', async (_n, fault, range) => {
  for (const [mem, disk] of [
    ['openaipublic.azureedge.net/mem.bin', 'openaipublic.azureedge.net/disk.bin'],
    ['huggingface.co/o/mem/resolve/main/f.bin', 'huggingface.co/o/disk/resolve/main/f.bin'],
  ]) {
    hub.reset();
    if (fault) {
      hub.fault(mem, fault);
      hub.fault(disk, fault);
    }
    const a = await get(mem, range);
    const b = await get(disk, range);
    hub.clearFaults();
    expect(b).toEqual(a);
    expect(hub.sent.get(disk)).toBe(hub.sent.get(mem));
  }
});

it('serves the file\u2019s bytes from disk, and wrong-bytes changes them', async () => {
  expect(await get('openaipublic.azureedge.net/disk.bin', 'bytes=1000-20999')).toMatchObject({
    status: 206,
    range: 'bytes 1000-20999/50000',
    body: data.subarray(1000, 21000),
  });
  hub.fault('openaipublic.azureedge.net/disk.bin', { kind: 'wrong-bytes', at: 1234, times: 1 });
  const r = await get('openaipublic.azureedge.net/disk.bin', 'bytes=1000-1999');
  expect(r.body!.length).toBe(1000);
  expect([...r.body!].map((x, i) => x ^ data[1000 + i]).flatMap((x, i) => (x ? [i + 1000] : []))).toEqual([1234]);
});
