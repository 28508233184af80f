import { describe, expect, it } from 'vitest';
import { InferenceQueue, type JobRunner } from '../../src/offscreen/inference-queue';

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
    const q = new InferenceQueue<string>({ maxQueued: 1 });
    const gate = deferred<void>();
    void q.submit('r1', 'k1', 1, async () => (await gate.promise, 'x'));
    void q.submit('r2', 'k2', 1, async () => 'y');
    await expect(q.submit('r3', 'k3', 1, async () => 'z')).rejects.toMatchObject({ name: 'QueueFullError' });
    gate.resolve();
  });

  describe('batches and urgent jobs', () => {
    /** Items are names; 'beam…' never batches; 'bad…' fails alone inside its batch. Every call is recorded. */
    function recorder(gate: Promise<void>) {
      const calls: { kind: 'one' | 'many'; items: string[]; urgent?: boolean; signal: AbortSignal }[] = [];
      const runner: JobRunner<string, string> = {
        async one(item, signal, urgent) {
          calls.push({ kind: 'one', items: [item], urgent, signal });
          if (!urgent) await gate;
          return `one:${item}`;
        },
        async many(items, signal) {
          calls.push({ kind: 'many', items, signal });
          await gate;
          return items.map((i) =>
            i.startsWith('bad') ? { ok: false, error: new Error(`${i} failed`) } : { ok: true, value: `many:${i}` },
          );
        },
        group: (item) => (item.startsWith('beam') ? null : 'greedy'),
      };
      return { calls, runner };
    }

    it('queued jobs of one group run as one batch (at most maxBatch rows), in priority order; each gets its own answer', async () => {
      const gate = deferred<void>();
      const { calls, runner } = recorder(gate.promise);
      const q = new InferenceQueue<string, string>({ runner, maxBatch: 3, urgentBelow: 1 });
      const first = q.submit('r0', 'k0', 2, 'a');
      const rest = ['b', 'bad', 'c', 'beam', 'd'].map((item, i) =>
        q.submit(`r${i + 1}`, `k${i + 1}`, item === 'd' ? 1 : 2, item).catch((e: Error) => e.message),
      );
      gate.resolve();
      expect(await first).toBe('one:a');
      expect(await Promise.all(rest)).toEqual(['many:b', 'bad failed', 'one:c', 'one:beam', 'many:d']);
      expect(calls.map((c) => `${c.kind}(${c.items.join(',')})`)).toEqual(['one(a)', 'many(d,b,bad)', 'one(c)', 'one(beam)']);
    });

    it('after a pause the first job runs alone at once; then the queue waits gatherMs for a batch to fill', async () => {
      const { calls, runner } = recorder(Promise.resolve());
      const q = new InferenceQueue<string, string>({ runner, maxBatch: 4, gatherMs: 40, idleMs: 1000 });
      // Idle: the first image (the first label on a page) neither waits nor shares a batch.
      const head = [q.submit('r0', 'k0', 2, 'first'), q.submit('r00', 'k00', 2, 'second')];
      expect(calls.map((x) => x.items.join(','))).toEqual(['first']);
      expect(await Promise.all(head)).toEqual(['one:first', 'one:second']);
      calls.length = 0;
      // Streaming (a job just ended): requests a few ms apart share one batch.
      const a = q.submit('r1', 'k1', 2, 'a');
      await new Promise((r) => setTimeout(r, 5));
      const b = q.submit('r2', 'k2', 2, 'b');
      await new Promise((r) => setTimeout(r, 5));
      const c = q.submit('r3', 'k3', 2, 'c');
      expect(calls).toEqual([]);
      expect(await Promise.all([a, b, c])).toEqual(['many:a', 'many:b', 'many:c']);
      expect(calls.map((x) => x.items.join(','))).toEqual(['a,b,c']);
      // A full batch does not wait.
      const full = ['d', 'e', 'f', 'g'].map((item, i) => q.submit(`s${i}`, `j${i}`, 2, item));
      expect(calls.map((x) => x.items.join(','))).toEqual(['a,b,c', 'd,e,f,g']);
      await Promise.all(full);
    });

    it('an urgent job runs at once beside a running batch, and is told so', async () => {
      const gate = deferred<void>();
      const { calls, runner } = recorder(gate.promise);
      const q = new InferenceQueue<string, string>({ runner, maxBatch: 4, urgentBelow: 1 });
      const p1 = q.submit('r1', 'k1', 2, 'x');
      const p2 = q.submit('r2', 'k2', 2, 'y');
      expect(await q.submit('r3', 'k3', 0, 'describe')).toBe('one:describe');
      expect(calls.find((c) => c.items[0] === 'describe')?.urgent).toBe(true);
      expect(calls.filter((c) => c.items[0] !== 'describe').length).toBe(1);
      gate.resolve();
      expect(await Promise.all([p1, p2])).toEqual(['one:x', 'one:y']);
    });

    it('a running batch is aborted only when none of its images is wanted any more', async () => {
      const signals: AbortSignal[] = [];
      const runner: JobRunner<string, string> = {
        one: async (item) => item,
        many: (items, signal) => {
          signals.push(signal);
          return new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason as Error)));
        },
        group: () => 'greedy',
      };
      const q = new InferenceQueue<string, string>({ runner, maxBatch: 4 });
      const first = q.submit('r0', 'k0', 2, 'a');
      const b = q.submit('r1', 'k1', 2, 'b').catch((e: Error) => e.name);
      const c = q.submit('r2', 'k2', 2, 'c').catch((e: Error) => e.name);
      await first;
      await expect.poll(() => signals.length).toBe(1);
      q.cancel(['r1']);
      expect(signals[0].aborted).toBe(false);
      q.cancel(['r2']);
      expect(signals[0].aborted).toBe(true);
      expect(await Promise.all([b, c])).toEqual(['AbortError', 'AbortError']);
      await expect.poll(() => q.size).toBe(0);
    });
  });
});
