import { describe, expect, it } from 'vitest';
import { InferenceQueue } from '../../src/offscreen/inference-queue';

function deferred<T>() {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

describe('offscreen inference queue', () => {
  it('runs one job at a time, lowest priority number first, then first come', async () => {
    const q = new InferenceQueue<string>();
    const order: string[] = [];
    const gate = deferred<void>();
    const run = (name: string, wait?: Promise<void>) => async () => {
      order.push(name);
      await wait;
      return name;
    };
    const a = q.submit('a', 'ka', 2, run('a', gate.promise));
    const b = q.submit('b', 'kb', 2, run('b'));
    const c = q.submit('c', 'kc', 1, run('c'));
    const d = q.submit('d', 'kd', 0, run('d'));
    expect(q.size).toBe(4);
    gate.resolve();
    expect(await Promise.all([a, b, c, d])).toEqual(['a', 'b', 'c', 'd']);
    expect(order).toEqual(['a', 'd', 'c', 'b']);
  });

  it('runs the same key once for every waiter, and remembers it', async () => {
    const q = new InferenceQueue<number>();
    let runs = 0;
    const job = async () => {
      runs += 1;
      return 42;
    };
    const [x, y] = await Promise.all([q.submit('r1', 'same', 2, job), q.submit('r2', 'same', 1, job)]);
    expect([x, y, runs]).toEqual([42, 42, 1]);
    expect(await q.submit('r3', 'same', 2, job)).toBe(42);
    expect(runs).toBe(1);
  });

  it('cancelling drops a waiter; a running job with no waiters left is aborted', async () => {
    const q = new InferenceQueue<string>();
    let aborted = false;
    const started = deferred<void>();
    const running = q.submit('r1', 'k1', 1, (signal) => {
      started.resolve();
      return new Promise((_, reject) => signal.addEventListener('abort', () => ((aborted = true), reject(signal.reason))));
    });
    const queued = q.submit('r2', 'k2', 1, async () => 'never');
    await started.promise;
    q.cancel(['r2']);
    await expect(queued).rejects.toMatchObject({ name: 'AbortError' });
    q.cancel(['r1']);
    await expect(running).rejects.toMatchObject({ name: 'AbortError' });
    expect(aborted).toBe(true);
  });

  it('a shared job keeps running while one of its waiters remains', async () => {
    const q = new InferenceQueue<string>();
    const gate = deferred<void>();
    const job = async () => {
      await gate.promise;
      return 'done';
    };
    const p1 = q.submit('r1', 'k', 1, job);
    const p2 = q.submit('r2', 'k', 1, job);
    q.cancel(['r1']);
    gate.resolve();
    await expect(p1).rejects.toMatchObject({ name: 'AbortError' });
    expect(await p2).toBe('done');
  });

  it('is bounded', async () => {
    const q = new InferenceQueue<string>(1);
    const gate = deferred<void>();
    void q.submit('r1', 'k1', 1, async () => (await gate.promise, 'x'));
    void q.submit('r2', 'k2', 1, async () => 'y');
    await expect(q.submit('r3', 'k3', 1, async () => 'z')).rejects.toMatchObject({ name: 'QueueFullError' });
    gate.resolve();
  });
});
